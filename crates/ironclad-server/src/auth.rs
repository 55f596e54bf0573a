//! Device authentication: chain, revocation and enrollment on every request; the
//! session-bound challenge-response; device sessions. Every refusal is written to the audit log
//! with its precise reason and returned as [`Error::Refused`], which the wire shows as
//! `AuthFailed` only.

use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ED25519, UnparsedPublicKey, VerificationAlgorithm};
use ironclad_proto::{Challenge, ChallengeResponse, SessionRequest, SessionResponse, auth_message};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::challenges::{ChallengeBook, MAX_OUTSTANDING};
use crate::clock::Clock;
use crate::config::AuthLimits;
use crate::error::{Error, Refusal, Result};
use crate::registry::random_hex;
use crate::store::{
    AuditRecord, ChallengeOp, ChallengeTake, DeviceRecord, Enrollment, EnrollmentKind, EnrollmentStatus,
    MatchKey, Outcome, Store, StoredChallenge, StoredSession,
};
use crate::tls::ConnectionInfo;
use crate::trust::{Trust, VerifiedChain, sha256};

/// A device that passed chain, revocation and enrollment checks on this connection.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) chain: VerifiedChain,
    pub(crate) cert_sha256: [u8; 32],
    pub(crate) enrollment: Enrollment,
}

/// The first enrollment in lookup order: the certificate, then its key, then each CA up the
/// chain (nearest first). Groups waiting for proof are skipped; a disabled match blocks.
pub(crate) fn decide<'a>(
    order: &[MatchKey],
    found: &'a [Enrollment],
    device_id: &str,
) -> std::result::Result<&'a Enrollment, Refusal> {
    for key in order {
        let Some(e) = found.iter().find(|e| e.key == *key) else { continue };
        match (e.status, e.kind()) {
            (EnrollmentStatus::PendingProof, _) => continue,
            (EnrollmentStatus::Disabled, EnrollmentKind::Individual) => {
                return Err(Refusal::IndividualDisabled { enrollment: e.id.clone() });
            }
            (EnrollmentStatus::Disabled, EnrollmentKind::Group) => {
                return Err(Refusal::GroupDisabled { enrollment: e.id.clone() });
            }
            (EnrollmentStatus::Enabled, EnrollmentKind::Individual) => {
                if e.device_id.as_deref().is_some_and(|d| d != device_id) {
                    return Err(Refusal::DeviceIdMismatch);
                }
                return Ok(e);
            }
            (EnrollmentStatus::Enabled, EnrollmentKind::Group) => return Ok(e),
        }
    }
    Err(Refusal::NotEnrolled)
}

/// Verifies `sig` over `msg` with the key in `spki_der` (ECDSA P-256/SHA-256 DER, or Ed25519).
pub(crate) fn verify_signature(spki_der: &[u8], msg: &[u8], sig: &[u8]) -> std::result::Result<(), Refusal> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(|_| Refusal::UnsupportedKey)?;
    let param = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
    let alg: &'static dyn VerificationAlgorithm =
        match (spki.algorithm.algorithm.to_id_string().as_str(), param.as_deref()) {
            ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => &ECDSA_P256_SHA256_ASN1,
            ("1.3.101.112", _) => &ED25519,
            _ => return Err(Refusal::UnsupportedKey),
        };
    UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
        .verify(msg, sig)
        .map_err(|_| Refusal::SignatureInvalid)
}

/// The device side of the server.
#[derive(Debug, Clone)]
pub(crate) struct DeviceAuth {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) trust: Arc<Trust>,
    pub(crate) limits: AuthLimits,
    /// Outstanding challenges of this process (each is bound to a connection it holds).
    pub(crate) challenges: Arc<ChallengeBook>,
}

impl DeviceAuth {
    /// Appends an audit record; a failing audit write fails the request (no unaudited
    /// authentication).
    pub(crate) async fn audit(
        &self,
        event: &str,
        conn: &ConnectionInfo,
        refusal: Option<&Refusal>,
        detail: String,
        device_id: Option<String>,
    ) -> Result<()> {
        let record = self.audit_record(event, conn, refusal, detail, device_id);
        self.store.append_audit(&record).await
    }

    fn audit_record(
        &self,
        event: &str,
        conn: &ConnectionInfo,
        refusal: Option<&Refusal>,
        detail: String,
        device_id: Option<String>,
    ) -> AuditRecord {
        AuditRecord {
            at: self.clock.unix(),
            event: event.to_owned(),
            outcome: if refusal.is_some() { Outcome::Refused } else { Outcome::Ok },
            reason: refusal.map(|r| r.code().to_owned()),
            detail,
            device_id,
            actor: conn.leaf_sha256().map(hex::encode),
            peer: Some(conn.remote_addr().to_string()),
        }
    }

    async fn refuse<T>(
        &self,
        event: &str,
        conn: &ConnectionInfo,
        device: Option<String>,
        r: Refusal,
    ) -> Result<T> {
        tracing::info!(event, reason = r.code(), peer = %conn.remote_addr(), "refused: {r}");
        self.audit(event, conn, Some(&r), r.to_string(), device).await?;
        Err(Error::Refused(r))
    }

    /// The connection's chain, verified under the current trust snapshot. Revocation is the
    /// registry's (and the published CRLs'), checked by the callers for every request, so the
    /// chain is verified without it (the PKI checks the leaf's serial last, after the path).
    /// Usually the handshake verified this chain already.
    fn verified_chain(&self, conn: &ConnectionInfo) -> std::result::Result<VerifiedChain, Refusal> {
        let chain = conn.peer_certificates().ok_or(Refusal::NoClientCertificate)?;
        let snapshot = self.trust.snapshot();
        let now = self.clock.now();
        if let Some(v) = conn.cached_chain(snapshot.generation()).filter(|v| now <= v.device.not_after()) {
            return Ok(v);
        }
        let v = snapshot.verify_remembered(chain, now).map_err(|e| Refusal::ChainInvalid(e.to_string()))?;
        conn.cache_chain(snapshot.generation(), v.clone());
        Ok(v)
    }

    /// Chain (webpki through the PKI), then revocation (registry status by serial, and the
    /// published CRLs) and enrollment (lookup order of [`decide`]), read in one store round
    /// trip ([`Store::admission`]; challenges are this process's, see [`ChallengeBook`]).
    pub(crate) async fn admit(&self, event: &str, conn: &ConnectionInfo) -> Result<Admitted> {
        let Some(cert_sha256) = conn.leaf_sha256() else {
            return self.refuse(event, conn, None, Refusal::NoClientCertificate).await;
        };
        let verified = match self.verified_chain(conn) {
            Ok(v) => v,
            Err(r) => return self.refuse(event, conn, None, r).await,
        };
        let device_id = verified.device.device_id().to_owned();
        let mut order = Vec::with_capacity(2 + verified.ca_path.len());
        order.push(MatchKey::Certificate(cert_sha256));
        order.push(MatchKey::PublicKey(sha256(verified.device.spki_der())));
        order.extend(verified.ca_path.iter().map(|fp| MatchKey::Ca(*fp)));
        let found = self
            .store
            .admission(verified.device.serial(), &verified.crl_keys, &order, ChallengeOp::None)
            .await?;
        if let Some(r) = found.revocation {
            let r = Refusal::Revoked { serial: r.serial, reason: r.reason };
            return self.refuse(event, conn, Some(device_id), r).await;
        }
        match decide(&order, &found.enrollments, &device_id) {
            Ok(e) => Ok(Admitted { enrollment: e.clone(), chain: verified, cert_sha256 }),
            Err(r) => self.refuse(event, conn, Some(device_id), r).await,
        }
    }

    /// `POST /v1/auth/challenge`.
    pub(crate) async fn challenge(&self, conn: &ConnectionInfo) -> Result<ChallengeResponse> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Tls("system RNG failed".into()))?;
        let now = self.clock.unix();
        let ttl = i64::try_from(self.limits.challenge_ttl_secs).unwrap_or(i64::MAX / 4);
        let stored = StoredChallenge {
            id: random_hex(16)?,
            challenge: bytes,
            cert_sha256: conn.leaf_sha256().unwrap_or_default(),
            session_binding: sha256(conn.exporter().as_bytes()),
            issued_at: now,
            expires_at: now.saturating_add(ttl),
        };
        // Kept (in this process: the answer can only come over this connection) and handed out
        // only once the device is admitted.
        self.admit("device.challenge", conn).await?;
        let id = stored.id.clone();
        if !self.challenges.insert(stored, now) {
            return Err(Error::Storage {
                backend: "challenges",
                message: format!("more than {MAX_OUTSTANDING} outstanding challenges"),
            });
        }
        Ok(ChallengeResponse {
            challenge_id: id,
            challenge: Challenge::from(bytes),
            expires_in: self.limits.challenge_ttl_secs,
        })
    }

    /// `POST /v1/auth/session`.
    pub(crate) async fn session(
        &self,
        conn: &ConnectionInfo,
        req: &SessionRequest,
    ) -> Result<SessionResponse> {
        const EVENT: &str = "device.session";
        let now = self.clock.unix();
        let well_formed =
            req.challenge_id.len() == 32 && req.challenge_id.bytes().all(|b| b.is_ascii_hexdigit());
        // Taken before the lookup: a challenge answered by a device that is then refused is
        // spent all the same.
        let taken = well_formed.then(|| self.challenges.take(&req.challenge_id));
        let admitted = self.admit(EVENT, conn).await?;
        let device_id = admitted.chain.device.device_id().to_owned();
        let refuse = |r| self.refuse(EVENT, conn, Some(device_id.clone()), r);
        let challenge = match taken {
            Some(ChallengeTake::Fresh(c)) => c,
            Some(ChallengeTake::Used(_)) => return refuse(Refusal::ChallengeReplayed).await,
            Some(ChallengeTake::Unknown) | None => return refuse(Refusal::ChallengeUnknown).await,
        };
        if now > challenge.expires_at {
            return refuse(Refusal::ChallengeExpired).await;
        }
        if challenge.cert_sha256 != admitted.cert_sha256 {
            return refuse(Refusal::ChallengeOtherDevice).await;
        }
        if challenge.session_binding != sha256(conn.exporter().as_bytes()) {
            return refuse(Refusal::ChallengeOtherSession).await;
        }
        let msg = auth_message(&Challenge::from(challenge.challenge), conn.exporter());
        if let Err(r) = verify_signature(admitted.chain.device.spki_der(), &msg, &req.signature) {
            return refuse(r).await;
        }

        let mut token = [0u8; 32];
        aws_lc_rs::rand::fill(&mut token).map_err(|_| Error::Tls("system RNG failed".into()))?;
        let token = zeroize::Zeroizing::new(hex::encode(token));
        let ttl = i64::try_from(self.limits.session_ttl_secs).unwrap_or(i64::MAX / 4);
        let serial = admitted.chain.device.serial().to_owned();
        let session = StoredSession {
            token_sha256: sha256(token.as_bytes()),
            device_id: device_id.clone(),
            cert_sha256: admitted.cert_sha256,
            serial: serial.clone(),
            created_at: now,
            expires_at: now.saturating_add(ttl),
        };
        let device = DeviceRecord {
            device_id: device_id.clone(),
            cert_sha256: hex::encode(admitted.cert_sha256),
            serial,
            enrollment_id: admitted.enrollment.id.clone(),
            first_seen: now,
            last_seen: now,
            auth_count: 1,
        };
        let detail = format!(
            "session opened via {:?} enrollment {}",
            admitted.enrollment.kind(),
            admitted.enrollment.id
        );
        let audit = self.audit_record(EVENT, conn, None, detail, Some(device_id.clone()));
        // Session, device record and audit record are written together: no session without
        // its audit record.
        self.store.open_session(&session, &device, &audit).await?;
        Ok(SessionResponse { token: token.to_string(), device_id, expires_in: self.limits.session_ttl_secs })
    }

    /// Checks a device session for a request on `/v1/devices/{path_device}/...`: the bearer
    /// token, its expiry, that it is used with the certificate it was issued to, that no
    /// certificate of the chain is revoked since (registry or CRL), and that the device asks
    /// for its own resource.
    pub(crate) async fn device_session(
        &self,
        event: &str,
        conn: &ConnectionInfo,
        bearer: Option<&str>,
        path_device: &str,
    ) -> Result<StoredSession> {
        let Some(leaf) = conn.leaf_sha256() else {
            return self.refuse(event, conn, None, Refusal::NoClientCertificate).await;
        };
        let Some(token) = bearer else {
            return self.refuse(event, conn, None, Refusal::TokenMissing).await;
        };
        let Some(session) = self.store.session(&sha256(token.as_bytes())).await? else {
            return self.refuse(event, conn, None, Refusal::SessionUnknown).await;
        };
        let who = Some(session.device_id.clone());
        if self.clock.unix() > session.expires_at {
            return self.refuse(event, conn, who, Refusal::SessionExpired).await;
        }
        if session.cert_sha256 != leaf {
            return self.refuse(event, conn, who, Refusal::SessionOtherCertificate).await;
        }
        // The chain again (usually remembered by the connection): a CRL names certificates by
        // their issuer.
        let crl_keys = match self.verified_chain(conn) {
            Ok(v) => v.crl_keys,
            Err(r) => return self.refuse(event, conn, who, r).await,
        };
        if let Some(r) = self.store.revocation_for(&session.serial, &crl_keys).await? {
            let r = Refusal::Revoked { serial: r.serial, reason: r.reason };
            return self.refuse(event, conn, who, r).await;
        }
        if session.device_id != path_device {
            let detail = format!("device {} asked for the resources of {path_device}", session.device_id);
            tracing::info!(event, "forbidden: {detail}");
            let record = AuditRecord {
                at: self.clock.unix(),
                event: event.to_owned(),
                outcome: Outcome::Refused,
                reason: Some("other_device".to_owned()),
                detail: detail.clone(),
                device_id: who,
                actor: Some(hex::encode(leaf)),
                peer: Some(conn.remote_addr().to_string()),
            };
            self.store.append_audit(&record).await?;
            return Err(Error::Forbidden(detail));
        }
        Ok(session)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn e(id: &str, key: MatchKey, status: EnrollmentStatus, device: Option<&str>) -> Enrollment {
        Enrollment {
            id: id.into(),
            key,
            status,
            device_id: device.map(Into::into),
            der: None,
            verification_code: None,
            note: String::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn lookup_order_individual_first_then_groups_nearest_first() {
        use EnrollmentStatus::*;
        let cert = MatchKey::Certificate([1; 32]);
        let key = MatchKey::PublicKey([2; 32]);
        let line = MatchKey::Ca([3; 32]);
        let root = MatchKey::Ca([4; 32]);
        let order = [cert, key, line, root];

        let found = [e("root", root, Enabled, None)];
        assert_eq!(decide(&order, &found, "d").unwrap().id, "root");

        let found = [e("root", root, Enabled, None), e("line", line, Disabled, None)];
        assert_eq!(decide(&order, &found, "d"), Err(Refusal::GroupDisabled { enrollment: "line".into() }));

        let found = [e("line", line, Disabled, None), e("ind", cert, Enabled, None)];
        assert_eq!(
            decide(&order, &found, "d").unwrap().id,
            "ind",
            "individual first, even in a disabled group"
        );

        let found = [e("line", line, Enabled, None), e("ind", key, Disabled, None)];
        assert_eq!(
            decide(&order, &found, "d"),
            Err(Refusal::IndividualDisabled { enrollment: "ind".into() })
        );

        let found = [e("line", line, PendingProof, None), e("root", root, Enabled, None)];
        assert_eq!(decide(&order, &found, "d").unwrap().id, "root", "pending groups are skipped");

        assert_eq!(decide(&order, &[], "d"), Err(Refusal::NotEnrolled));

        let found = [e("ind", key, Enabled, Some("other"))];
        assert_eq!(decide(&order, &found, "d"), Err(Refusal::DeviceIdMismatch));
    }

    #[test]
    fn signatures_verify_only_with_the_right_key() {
        let key = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let msg = b"message";
        let sig = rcgen::SigningKey::sign(&key, msg).unwrap();
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        verify_signature(&spki, msg, &sig).unwrap();
        assert_eq!(verify_signature(&spki, b"other", &sig), Err(Refusal::SignatureInvalid));
        let other_spki = rcgen::PublicKeyData::subject_public_key_info(&other);
        assert_eq!(verify_signature(&other_spki, msg, &sig), Err(Refusal::SignatureInvalid));
        assert_eq!(verify_signature(b"junk", msg, &sig), Err(Refusal::UnsupportedKey));
    }
}
