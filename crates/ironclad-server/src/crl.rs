//! CRL publication for outside parties. An operator uploads a CRL signed by an enrolled group
//! CA; it is parsed, matched to that CA (issuer name and key identifier), its signature
//! verified with the CA's key, its freshness checked (thisUpdate, nextUpdate) and its number
//! compared with the current one (a replayed or reordered CRL is refused). It then becomes the
//! CA's current CRL, served as DER to authenticated callers, and its entries become registry
//! revocations scoped to that CA: authentication refuses a chain any certificate of which is
//! listed by the CRL of its issuer.
//!
//! Parse, verify, act: [`parse_crl`] yields a [`ParsedCrl`], which only
//! [`ParsedCrl::verify`] turns into a [`VerifiedCrl`], the only thing the store is given.

use std::fmt;

use ironclad_pki::{CaCertificate, RevocationReason, normalize_serial};
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Version};

use crate::store::{CrlEntry, CrlNumber, StoredCrl};
use crate::trust::sha256;

/// How far in the future a CRL's thisUpdate may be (clock skew between CA and server).
pub const CRL_CLOCK_SKEW_SECS: i64 = 300;

const OID_AKI: &str = "2.5.29.35";
const OID_CRL_NUMBER: &str = "2.5.29.20";
const OID_DELTA_CRL: &str = "2.5.29.27";
const OID_ISSUING_DP: &str = "2.5.29.28";
const OID_REASON: &str = "2.5.29.21";
const OID_INVALIDITY_DATE: &str = "2.5.29.24";

/// Why a CRL was refused. [`CrlRefusal::code`] goes to the audit log; the text is what the
/// operator sees.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrlRefusal {
    /// Not a DER (or PEM `X509 CRL`) CRL, or a field is malformed.
    Malformed(String),
    /// No enrolled group CA has the CRL's issuer name (and key identifier).
    IssuerNotEnrolled {
        /// The CRL's issuer.
        issuer: String,
    },
    /// The issuing CA's certificate does not allow it to sign CRLs (keyUsage without cRLSign).
    NotACrlSigner {
        /// The CA's group enrollment.
        enrollment: String,
    },
    /// The signature does not verify with the enrolled CA's key (tampered, or another key).
    SignatureInvalid {
        /// The CA's group enrollment.
        enrollment: String,
    },
    /// nextUpdate has passed: the CRL is stale.
    Expired {
        /// nextUpdate, Unix seconds.
        next_update: i64,
    },
    /// thisUpdate is in the future (beyond [`CRL_CLOCK_SKEW_SECS`]).
    NotYetValid {
        /// thisUpdate, Unix seconds.
        this_update: i64,
    },
    /// The CRL lacks what replay protection and freshness need (CRL number, nextUpdate, v2).
    Incomplete(&'static str),
    /// Delta or partial CRLs, indirect entries, unknown critical extensions.
    Unsupported(String),
    /// The current CRL of this CA has this number or a higher one (replayed or out of order).
    NotNewer {
        /// The uploaded CRL's number.
        number: CrlNumber,
        /// The current CRL's number.
        current: CrlNumber,
    },
}

impl CrlRefusal {
    /// A stable, machine-readable code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            CrlRefusal::Malformed(_) => "crl_malformed",
            CrlRefusal::IssuerNotEnrolled { .. } => "crl_issuer_not_enrolled",
            CrlRefusal::NotACrlSigner { .. } => "crl_issuer_not_crl_signer",
            CrlRefusal::SignatureInvalid { .. } => "crl_signature_invalid",
            CrlRefusal::Expired { .. } => "crl_expired",
            CrlRefusal::NotYetValid { .. } => "crl_not_yet_valid",
            CrlRefusal::Incomplete(_) => "crl_incomplete",
            CrlRefusal::Unsupported(_) => "crl_unsupported",
            CrlRefusal::NotNewer { .. } => "crl_not_newer",
        }
    }
}

fn utc(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

impl fmt::Display for CrlRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrlRefusal::Malformed(why) => write!(f, "not a well-formed CRL: {why}"),
            CrlRefusal::IssuerNotEnrolled { issuer } => {
                write!(f, "the CRL's issuer ({issuer}) is not an enrolled group CA")
            }
            CrlRefusal::NotACrlSigner { enrollment } => {
                write!(
                    f,
                    "the CA of group enrollment {enrollment} may not sign CRLs (keyUsage lacks cRLSign)"
                )
            }
            CrlRefusal::SignatureInvalid { enrollment } => write!(
                f,
                "the CRL's signature does not verify with the key of the CA of group enrollment {enrollment}"
            ),
            CrlRefusal::Expired { next_update } => {
                write!(f, "the CRL is stale: its nextUpdate {} has passed", utc(*next_update))
            }
            CrlRefusal::NotYetValid { this_update } => {
                write!(f, "the CRL's thisUpdate {} is in the future", utc(*this_update))
            }
            CrlRefusal::Incomplete(what) => write!(f, "the CRL has no {what}"),
            CrlRefusal::Unsupported(what) => write!(f, "unsupported CRL: {what}"),
            CrlRefusal::NotNewer { number, current } => write!(
                f,
                "CRL number {number} is not newer than the current CRL's ({current}): replayed or out of order"
            ),
        }
    }
}

/// A CRL parsed and checked for form, not yet for its signature or freshness.
#[derive(Debug)]
pub struct ParsedCrl {
    der: Vec<u8>,
    issuer_der: Vec<u8>,
    issuer: String,
    aki: Option<Vec<u8>>,
    number: CrlNumber,
    this_update: i64,
    next_update: i64,
    entries: Vec<CrlEntry>,
}

/// A CRL whose signature verified with an enrolled CA's key and that is fresh: what the store
/// takes.
#[derive(Debug)]
pub struct VerifiedCrl {
    pub(crate) crl: StoredCrl,
    pub(crate) entries: Vec<CrlEntry>,
}

fn parsed(der: &[u8]) -> Result<CertificateRevocationList<'_>, CrlRefusal> {
    let (rest, crl) =
        CertificateRevocationList::from_der(der).map_err(|e| CrlRefusal::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CrlRefusal::Malformed(format!("{} bytes of trailing data", rest.len())));
    }
    Ok(crl)
}

/// Parses a CRL (DER, or PEM `X509 CRL`) and checks its form: v2, the signature algorithm
/// named consistently, a CRL number of at most 20 octets, a nextUpdate, no delta or partial
/// CRL, no unknown critical extension, entries with well-formed serials and known reasons.
pub fn parse_crl(input: &[u8]) -> Result<ParsedCrl, CrlRefusal> {
    let der = if input.trim_ascii_start().starts_with(b"-----BEGIN") {
        let block = pem::parse(input).map_err(|e| CrlRefusal::Malformed(e.to_string()))?;
        if block.tag() != "X509 CRL" {
            return Err(CrlRefusal::Malformed(format!("PEM block is {:?}, not X509 CRL", block.tag())));
        }
        block.into_contents()
    } else {
        input.to_vec()
    };
    let crl = parsed(&der)?;
    let tbs = &crl.tbs_cert_list;
    if tbs.version != Some(X509Version::V2) {
        return Err(CrlRefusal::Incomplete("version 2 (needed for the CRL number)"));
    }
    if tbs.signature != crl.signature_algorithm {
        return Err(CrlRefusal::Malformed("the signature algorithm differs inside and outside".into()));
    }
    let mut aki = None;
    for ext in crl.extensions() {
        match ext.oid.to_id_string().as_str() {
            OID_AKI => {
                if let x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) =
                    ext.parsed_extension()
                {
                    aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
            }
            OID_CRL_NUMBER => {}
            OID_DELTA_CRL => {
                return Err(CrlRefusal::Unsupported("delta CRL (publish a complete CRL)".into()));
            }
            OID_ISSUING_DP => {
                return Err(CrlRefusal::Unsupported("partial CRL (issuingDistributionPoint)".into()));
            }
            other if ext.critical => {
                return Err(CrlRefusal::Unsupported(format!("critical extension {other}")));
            }
            _ => {}
        }
    }
    let number = crl.crl_number().ok_or(CrlRefusal::Incomplete("CRL number (needed to refuse replays)"))?;
    let number = CrlNumber::from_be_bytes(&number.to_bytes_be())
        .ok_or_else(|| CrlRefusal::Malformed("CRL number longer than 20 octets".into()))?;
    let next_update = crl.next_update().ok_or(CrlRefusal::Incomplete("nextUpdate"))?.timestamp();
    let this_update = crl.last_update().timestamp();
    if next_update <= this_update {
        return Err(CrlRefusal::Malformed("nextUpdate is not after thisUpdate".into()));
    }
    let mut entries = Vec::with_capacity(tbs.revoked_certificates.len());
    for rc in crl.iter_revoked_certificates() {
        let serial = normalize_serial(&hex::encode(rc.raw_serial()))
            .map_err(|e| CrlRefusal::Malformed(format!("entry serial: {e}")))?;
        for ext in rc.extensions() {
            let oid = ext.oid.to_id_string();
            if ext.critical && oid != OID_REASON && oid != OID_INVALIDITY_DATE {
                return Err(CrlRefusal::Unsupported(format!(
                    "critical entry extension {oid} (indirect CRL?)"
                )));
            }
        }
        let reason = match rc.reason_code() {
            None => RevocationReason::Unspecified,
            Some((_, code)) => RevocationReason::from_code(code.0).ok_or_else(|| {
                CrlRefusal::Malformed(format!(
                    "entry {serial}: reason code {} is not for complete CRLs",
                    code.0
                ))
            })?,
        };
        entries.push(CrlEntry {
            serial,
            reason: reason.name().to_owned(),
            revoked_at: rc.revocation_date.timestamp(),
        });
    }
    Ok(ParsedCrl {
        issuer_der: tbs.issuer.as_raw().to_vec(),
        issuer: tbs.issuer.to_string(),
        aki,
        number,
        this_update,
        next_update,
        entries,
        der,
    })
}

impl ParsedCrl {
    /// The issuer, as text.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Its CRL number.
    pub fn number(&self) -> &CrlNumber {
        &self.number
    }

    /// nextUpdate, Unix seconds.
    pub fn next_update(&self) -> i64 {
        self.next_update
    }

    /// Certificates it lists.
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// Whether `ca` could have issued it: the same name and, when the CRL names one, the same
    /// key identifier.
    pub fn named_by(&self, ca: &CaCertificate) -> bool {
        ca.subject_der() == self.issuer_der
            && self.aki.as_ref().is_none_or(|k| k.as_slice() == ca.subject_key_id())
    }

    /// Verifies the signature with `ca`'s key (the CA of group enrollment `enrollment`; see
    /// [`ParsedCrl::named_by`]) and the freshness at `now`.
    pub fn verify(&self, ca: &CaCertificate, enrollment: &str, now: i64) -> Result<VerifiedCrl, CrlRefusal> {
        let (_, cert) =
            X509Certificate::from_der(ca.der()).map_err(|e| CrlRefusal::Malformed(e.to_string()))?;
        if cert.key_usage().ok().flatten().is_some_and(|ku| !ku.value.crl_sign()) {
            return Err(CrlRefusal::NotACrlSigner { enrollment: enrollment.to_owned() });
        }
        let (_, spki) = SubjectPublicKeyInfo::from_der(ca.spki_der())
            .map_err(|e| CrlRefusal::Malformed(e.to_string()))?;
        parsed(&self.der)?
            .verify_signature(&spki)
            .map_err(|_| CrlRefusal::SignatureInvalid { enrollment: enrollment.to_owned() })?;
        if now >= self.next_update {
            return Err(CrlRefusal::Expired { next_update: self.next_update });
        }
        if self.this_update > now.saturating_add(CRL_CLOCK_SKEW_SECS) {
            return Err(CrlRefusal::NotYetValid { this_update: self.this_update });
        }
        Ok(VerifiedCrl {
            crl: StoredCrl {
                ca_sha256: sha256(ca.der()),
                number: self.number.clone(),
                this_update: self.this_update,
                next_update: self.next_update,
                entries: self.entries.len() as u64,
                der: self.der.clone(),
                published_at: now,
            },
            entries: self.entries.clone(),
        })
    }
}

/// What a publication did, as the operator API answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CrlPublication {
    /// The issuing CA's group enrollment.
    pub enrollment_id: String,
    /// The issuing CA's subject.
    pub ca: String,
    /// SHA-256 of the issuing CA's certificate, hex.
    pub ca_sha256: String,
    /// The CRL number.
    pub number: CrlNumber,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: i64,
    /// Certificates it revokes.
    pub entries: u64,
    /// "stored", or "unchanged" when this very CRL was current already.
    pub outcome: &'static str,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ironclad_pki::{CaIssuer, IntermediateCaParams, KeyPair, RevokedEntry, RootCaParams};

    use super::*;

    fn signed() -> (CaCertificate, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let now = OffsetDateTime::now_utc();
        let root = ironclad_pki::create_root(&key, &RootCaParams::new("R", "Acme", "DE"), now).unwrap();
        let line_key = KeyPair::generate().unwrap();
        let line = ironclad_pki::create_intermediate(
            &CaIssuer::new(&root, &key).unwrap(),
            &line_key,
            &IntermediateCaParams::new("L", "Acme", "DE"),
            now,
        )
        .unwrap();
        let revoked = [RevokedEntry { serial: "0102".into(), reason: RevocationReason::Superseded, at: now }];
        let issuer = CaIssuer::new(&line, &line_key).unwrap();
        let crl = ironclad_pki::sign_crl(&issuer, 7, now, now + time::Duration::days(1), &revoked).unwrap();
        (line, crl.der().to_vec())
    }

    #[test]
    fn a_real_crl_parses_and_verifies() {
        let (ca, der) = signed();
        let p = parse_crl(&der).unwrap();
        assert_eq!((p.number().to_string().as_str(), p.entries()), ("7", 1));
        assert!(p.named_by(&ca));
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let v = p.verify(&ca, "g", now).unwrap();
        assert_eq!(
            v.entries[0],
            CrlEntry {
                serial: "0102".into(),
                reason: "superseded".into(),
                revoked_at: v.entries[0].revoked_at
            }
        );
        assert_eq!(v.crl.ca_sha256, ca.sha256_fingerprint_bytes());
        // PEM of the same bytes; the wrong PEM label is refused.
        let pem_text = pem::encode(&pem::Pem::new("X509 CRL", der.clone()));
        assert_eq!(parse_crl(pem_text.as_bytes()).unwrap().number(), p.number());
        let wrong = pem::encode(&pem::Pem::new("CERTIFICATE", der));
        assert!(matches!(parse_crl(wrong.as_bytes()), Err(CrlRefusal::Malformed(_))));
    }

    #[test]
    fn truncated_extended_and_random_inputs_are_refused_without_panicking() {
        let (_, der) = signed();
        for len in 0..der.len() {
            assert!(parse_crl(&der[..len]).is_err(), "prefix of {len} bytes accepted");
        }
        let mut longer = der.clone();
        longer.push(0);
        assert_eq!(parse_crl(&longer).unwrap_err(), CrlRefusal::Malformed("1 bytes of trailing data".into()));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            let mut bytes = der.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % bytes.len();
                bytes[i] ^= (x >> 32) as u8 | 1;
            }
            let _ = parse_crl(&bytes);
        }
    }
}
