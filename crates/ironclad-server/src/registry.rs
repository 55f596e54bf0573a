//! Operator-side registry operations: enrollments (individual, group with proof of
//! possession, factory-manifest import), revocation, and operator API tokens. The HTTP
//! operator API and the CLI both go through here.

use std::sync::Arc;

use ironclad_pki::{CaCertificate, RevocationReason, normalize_serial};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::crl::{CrlPublication, CrlRefusal, parse_crl};
use crate::error::{Error, Result};
use crate::pop::{check_verification_certificate, new_verification_code};
use crate::store::{
    ApiToken, CrlPublished, Enrollment, EnrollmentKind, EnrollmentStatus, ImportCounts, MatchKey, Revocation,
    Role, Store, StoredCrl,
};
use crate::trust::{Trust, sha256};

/// One line of a factory manifest: the issued certificate's record, optionally with the
/// certificate itself. Both manifests parse as written: `ironclad cert issue-batch`'s
/// `manifest.jsonl` and `ironclad factory provision --manifest` (whose other fields, `order`,
/// `not_after` and `fw_decrypt_public`, are accepted and ignored here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    /// Serial, hex.
    pub serial: String,
    /// Device ID (certificate CN).
    pub device_id: String,
    /// Product family.
    #[serde(default)]
    pub family: String,
    /// SHA-256 of the certificate DER, hex: what the enrollment matches.
    pub sha256_fingerprint: String,
    /// The certificate, PEM, when the manifest carries it (checked against the fingerprint).
    #[serde(default, alias = "pem", alias = "certificate")]
    pub certificate_pem: Option<String>,
}

/// What a manifest import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Records read.
    pub records: u64,
    /// New and already-present enrollments.
    #[serde(flatten)]
    pub counts: ImportCounts,
}

/// An API token as created: the secret is shown once and never stored.
#[derive(Clone)]
pub struct NewApiToken {
    /// The stored record.
    pub token: ApiToken,
    /// The bearer secret (`Authorization: Bearer <secret>`).
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for NewApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiToken").field("token", &self.token).field("secret", &"<redacted>").finish()
    }
}

/// Registry operations over a [`Store`].
#[derive(Debug, Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    trust: Arc<Trust>,
}

pub(crate) fn random_hex(n: usize) -> Result<String> {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| Error::Tls("system RNG failed".into()))?;
    Ok(hex::encode(b))
}

fn parse_der_or_pem(input: &[u8], what: &str) -> Result<Vec<u8>> {
    if input.trim_ascii_start().starts_with(b"-----BEGIN") {
        Ok(pem::parse(input).map_err(|e| Error::Invalid(format!("{what}: {e}")))?.into_contents())
    } else {
        Ok(input.to_vec())
    }
}

impl Registry {
    /// Registry operations on `store` (for local administration, e.g. creating the first
    /// admin token before the server runs).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<Self> {
        let provider = Arc::new(crate::tls::crypto_provider());
        Ok(Registry { store, clock, trust: Arc::new(Trust::new(Vec::new(), provider)?) })
    }

    pub(crate) fn with_trust(store: Arc<dyn Store>, clock: Arc<dyn Clock>, trust: Arc<Trust>) -> Self {
        Registry { store, clock, trust }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn new_enrollment(&self, key: MatchKey, status: EnrollmentStatus, note: &str) -> Result<Enrollment> {
        let now = self.clock.unix();
        Ok(Enrollment {
            id: random_hex(16)?,
            key,
            status,
            device_id: None,
            der: None,
            verification_code: None,
            note: note.to_owned(),
            created_at: now,
            updated_at: now,
        })
    }

    /// Enrolls one device by its certificate (DER or PEM), enabled or disabled (a disabled
    /// individual enrollment blocks one device inside an enabled group).
    pub async fn enroll_certificate(&self, cert: &[u8], enabled: bool, note: &str) -> Result<Enrollment> {
        let der = parse_der_or_pem(cert, "certificate")?;
        let (_, parsed) =
            X509Certificate::from_der(&der).map_err(|e| Error::Invalid(format!("certificate: {e}")))?;
        let cn = parsed.subject().iter_common_name().next().and_then(|c| c.as_str().ok()).map(str::to_owned);
        let status = if enabled { EnrollmentStatus::Enabled } else { EnrollmentStatus::Disabled };
        let mut e = self.new_enrollment(MatchKey::Certificate(sha256(&der)), status, note)?;
        e.device_id = cn;
        e.der = Some(der);
        self.store.insert_enrollment(&e).await?;
        Ok(e)
    }

    /// Enrolls one device by its public key (SubjectPublicKeyInfo, DER or PEM): any certificate
    /// for that key, from a trusted CA, is admitted; `device_id`, when given, must match the
    /// certificate's CN.
    pub async fn enroll_public_key(
        &self,
        spki: &[u8],
        device_id: Option<&str>,
        enabled: bool,
        note: &str,
    ) -> Result<Enrollment> {
        let der = parse_der_or_pem(spki, "public key")?;
        x509_parser::x509::SubjectPublicKeyInfo::from_der(&der)
            .map_err(|e| Error::Invalid(format!("public key: {e}")))?;
        let status = if enabled { EnrollmentStatus::Enabled } else { EnrollmentStatus::Disabled };
        let mut e = self.new_enrollment(MatchKey::PublicKey(sha256(&der)), status, note)?;
        e.device_id = device_id.map(str::to_owned);
        e.der = Some(der);
        self.store.insert_enrollment(&e).await?;
        Ok(e)
    }

    /// Starts a group enrollment for a CA certificate (DER or PEM). The result carries the
    /// verification code the CA must sign ([`crate::make_verification_certificate`]); until
    /// [`Registry::prove_group`] succeeds the CA is neither trusted nor matched.
    pub async fn begin_group(&self, ca_cert: &[u8], note: &str) -> Result<Enrollment> {
        let der = parse_der_or_pem(ca_cert, "CA certificate")?;
        CaCertificate::from_der(&der)?;
        let mut e = self.new_enrollment(MatchKey::Ca(sha256(&der)), EnrollmentStatus::PendingProof, note)?;
        e.verification_code = Some(new_verification_code()?);
        e.der = Some(der);
        self.store.insert_enrollment(&e).await?;
        Ok(e)
    }

    /// Completes a group enrollment with the verification certificate (DER or PEM): the group
    /// becomes enabled and its CA trusted.
    pub async fn prove_group(&self, id: &str, verification_cert: &[u8]) -> Result<Enrollment> {
        let e = self.get(id).await?;
        let (EnrollmentStatus::PendingProof, Some(code), Some(der)) =
            (e.status, &e.verification_code, &e.der)
        else {
            return Err(Error::Invalid(format!("enrollment {id} is not waiting for proof of possession")));
        };
        let ca = CaCertificate::from_der(der)?;
        check_verification_certificate(&ca, code, verification_cert)?;
        self.store.set_enrollment_status(id, EnrollmentStatus::Enabled, self.clock.unix()).await?;
        self.trust_changed().await?;
        self.get(id).await
    }

    /// Enables or disables an enrollment (a pending group must be proven first).
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<Enrollment> {
        let e = self.get(id).await?;
        if e.status == EnrollmentStatus::PendingProof {
            return Err(Error::Invalid(format!("enrollment {id} needs proof of possession first")));
        }
        let status = if enabled { EnrollmentStatus::Enabled } else { EnrollmentStatus::Disabled };
        self.store.set_enrollment_status(id, status, self.clock.unix()).await?;
        self.get(id).await
    }

    /// Deletes an enrollment (a deleted group's CA is no longer trusted).
    pub async fn delete(&self, id: &str) -> Result<()> {
        let e = self.get(id).await?;
        self.store.delete_enrollment(id).await?;
        if e.kind() == EnrollmentKind::Group {
            self.trust_changed().await?;
        }
        Ok(())
    }

    /// The trusted CAs changed: reload them here, and tell the other server processes sharing
    /// the store to reload theirs (a failed announcement only delays them to their periodic
    /// refresh).
    async fn trust_changed(&self) -> Result<()> {
        self.trust.refresh(self.store.as_ref()).await?;
        if let Err(e) = self.store.announce_trust_change().await {
            tracing::warn!("announcing the trust change to other servers failed: {e}");
        }
        Ok(())
    }

    /// One enrollment.
    pub async fn get(&self, id: &str) -> Result<Enrollment> {
        self.store.enrollment(id).await?.ok_or_else(|| Error::NotFound(format!("enrollment {id}")))
    }

    /// Every enrollment.
    pub async fn list(&self) -> Result<Vec<Enrollment>> {
        self.store.list_enrollments().await
    }

    /// Imports a factory manifest (JSON lines of [`ManifestRecord`]) as enabled individual
    /// enrollments by certificate fingerprint, in one transaction. Records already enrolled are
    /// counted, not duplicated; a malformed line fails the whole import, naming the line.
    pub async fn import_manifest(&self, jsonl: &str, note: &str) -> Result<ImportReport> {
        let mut rows = Vec::new();
        for (i, line) in jsonl.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |why: String| Error::Invalid(format!("manifest line {}: {why}", i + 1));
            let r: ManifestRecord = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            let mut fp = [0u8; 32];
            hex::decode_to_slice(r.sha256_fingerprint.replace(':', "").to_lowercase(), &mut fp)
                .map_err(|_| bad("sha256_fingerprint is not 64 hex digits".into()))?;
            normalize_serial(&r.serial).map_err(|e| bad(e.to_string()))?;
            let der = match &r.certificate_pem {
                Some(text) => {
                    let der = pem::parse(text).map_err(|e| bad(format!("certificate: {e}")))?.into_contents();
                    if sha256(&der) != fp {
                        return Err(bad("certificate does not match sha256_fingerprint".into()));
                    }
                    let (_, cert) =
                        X509Certificate::from_der(&der).map_err(|e| bad(format!("certificate: {e}")))?;
                    let cn = cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok());
                    if cn != Some(r.device_id.as_str()) {
                        return Err(bad(format!("device_id {} is not the certificate's CN", r.device_id)));
                    }
                    Some(der)
                }
                None => None,
            };
            let mut e = self.new_enrollment(MatchKey::Certificate(fp), EnrollmentStatus::Enabled, note)?;
            e.device_id = Some(r.device_id);
            e.der = der;
            rows.push(e);
        }
        let counts = self.store.import_enrollments(&rows).await?;
        Ok(ImportReport { records: rows.len() as u64, counts })
    }

    /// Revokes a certificate serial (any hex spelling); authentication refuses it from now on,
    /// on every server sharing the store. Returns false when it was revoked already.
    pub async fn revoke(&self, serial: &str, reason: RevocationReason) -> Result<bool> {
        let serial = normalize_serial(serial)?;
        let r = Revocation { serial, reason: reason.name().to_owned(), revoked_at: self.clock.unix() };
        self.store.revoke(&r).await
    }

    /// Creates an operator API token. The secret is returned once; only its hash is stored.
    pub async fn create_api_token(&self, name: &str, role: Role) -> Result<NewApiToken> {
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(Error::Invalid("token names are 1-64 of [A-Za-z0-9._-]".into()));
        }
        let secret = Zeroizing::new(format!("icl_{}", random_hex(32)?));
        let token = ApiToken {
            name: name.to_owned(),
            role,
            token_sha256: sha256(secret.as_bytes()),
            created_at: self.clock.unix(),
            disabled: false,
        };
        self.store.insert_api_token(&token).await?;
        Ok(NewApiToken { token, secret })
    }
}

// ---- CRL publication -------------------------------------------------------------------------

impl Registry {
    /// Publishes a CRL (DER or PEM) signed by an enrolled group CA: verified against that CA
    /// and its freshness, refused when not newer than the CA's current CRL, then stored as
    /// current with its entries applied as revocations (every server sharing the store refuses
    /// the listed certificates from now on). `Ok(Err(_))` is a refusal, `Err(_)` a failure.
    pub async fn publish_crl(&self, input: &[u8]) -> Result<std::result::Result<CrlPublication, CrlRefusal>> {
        let parsed = match parse_crl(input) {
            Ok(p) => p,
            Err(r) => return Ok(Err(r)),
        };
        let mut candidates = Vec::new();
        for e in self.store.trusted_group_cas().await? {
            if let Some(ca) = e.der.as_deref().and_then(|der| CaCertificate::from_der(der).ok())
                && parsed.named_by(&ca)
            {
                candidates.push((e.id, ca));
            }
        }
        // Usually one; several only when CAs share a name and the CRL names no key identifier.
        let mut refusal = CrlRefusal::IssuerNotEnrolled { issuer: parsed.issuer().to_owned() };
        let mut verified = None;
        let now = self.clock.unix();
        for (id, ca) in candidates {
            match parsed.verify(&ca, &id, now) {
                Ok(v) => {
                    verified = Some((id, ca, v));
                    break;
                }
                Err(r) => refusal = r,
            }
        }
        let Some((enrollment_id, ca, v)) = verified else { return Ok(Err(refusal)) };
        let outcome = match self.store.publish_crl(&v.crl, &v.entries).await? {
            CrlPublished::Stored => "stored",
            CrlPublished::Unchanged => "unchanged",
            CrlPublished::NotNewer { current } => {
                return Ok(Err(CrlRefusal::NotNewer { number: v.crl.number, current }));
            }
        };
        Ok(Ok(CrlPublication {
            enrollment_id,
            ca: ca.subject().to_owned(),
            ca_sha256: ca.sha256_fingerprint(),
            number: v.crl.number,
            this_update: v.crl.this_update,
            next_update: v.crl.next_update,
            entries: v.crl.entries,
            outcome,
        }))
    }

    /// The current CRL published for the CA of group enrollment `id`.
    pub async fn crl(&self, id: &str) -> Result<StoredCrl> {
        let e = self.get(id).await?;
        let MatchKey::Ca(fp) = e.key else {
            return Err(Error::Invalid(format!("enrollment {id} is not a group (CA) enrollment")));
        };
        self.store.crl(&fp).await?.ok_or_else(|| Error::NotFound(format!("CRL of group enrollment {id}")))
    }
}
