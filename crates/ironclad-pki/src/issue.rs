//! Device-certificate issuance: the profile encoder, the duplicate rules and `issue_one`.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ca::{CaIssuer, random_serial, sha256};
use crate::csr::{Limits, VerifiedCsr, parse_and_verify};
use crate::der::{self, nested, tlv, unsigned_integer};
use crate::error::{Error, Result};
use crate::index::{CertStatus, IndexEntry, IssuedIndex};
use crate::profile::{DeviceProfile, FAMILY_EXTENSION_OID_DER};

/// One issued device certificate, as reported to the operator and stored in the index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IssuedRecord {
    /// Serial number, lower-case hex (32 digits for certificates issued here).
    pub serial: String,
    /// The device ID (subject CN).
    pub device_id: String,
    /// Product family from the family extension.
    pub family: String,
    /// SHA-256 of the certificate DER, lower-case hex.
    pub sha256_fingerprint: String,
    /// notAfter, RFC 3339 (`9999-12-31T23:59:59Z` for "no well-defined expiry").
    pub not_after: String,
    /// The certificate, DER.
    #[serde(skip)]
    pub der: Vec<u8>,
}

impl IssuedRecord {
    /// The certificate, PEM.
    pub fn pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.der.clone()))
    }
}

/// What a single issuance did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssueOutcome {
    /// A new certificate was signed and recorded.
    Issued(IssuedRecord),
    /// The same request, or the same key for the same device, was issued before: nothing new
    /// was signed and this is the certificate on record.
    Existing(IssuedRecord),
}

impl IssueOutcome {
    /// The certificate, new or existing.
    pub fn record(&self) -> &IssuedRecord {
        match self {
            IssueOutcome::Issued(r) | IssueOutcome::Existing(r) => r,
        }
    }
}

/// Parses, verifies and issues one CSR (PEM or DER) and records it: the `cert issue` path.
///
/// Re-submitting a request (or another request for the same device with the same key) returns
/// the certificate on record ([`IssueOutcome::Existing`]); a device ID held by a live
/// certificate under another key is refused with [`Error::DeviceIdTaken`].
pub fn issue_one(
    input: &[u8],
    issuer: &CaIssuer<'_>,
    profile: &DeviceProfile,
    index: &mut dyn IssuedIndex,
    limits: &Limits,
    now: OffsetDateTime,
) -> Result<IssueOutcome> {
    let csr = parse_and_verify(input, limits)?;
    issue_verified(&csr, issuer, profile, index, now)
}

/// Issues an already verified request, applying the duplicate rules against `index`.
pub fn issue_verified(
    csr: &VerifiedCsr,
    issuer: &CaIssuer<'_>,
    profile: &DeviceProfile,
    index: &mut dyn IssuedIndex,
    now: OffsetDateTime,
) -> Result<IssueOutcome> {
    let existing = index.by_device_id(csr.device_id())?;
    match screen(csr, &existing) {
        Screen::Existing(e) => Ok(IssueOutcome::Existing(e.record)),
        Screen::Refuse(e) => Err(e),
        Screen::Accept => {
            let entry = DeviceTemplate::new(issuer, profile, now)?.sign(csr, &random_serial())?;
            index.insert_batch(std::slice::from_ref(&entry))?;
            Ok(IssueOutcome::Issued(entry.record))
        }
    }
}

/// Signs a device certificate for `csr` without consulting any index. The caller records the
/// returned entry; prefer [`issue_one`] or [`issue_batch`](crate::issue_batch), which do.
pub fn sign_device(
    csr: &VerifiedCsr,
    issuer: &CaIssuer<'_>,
    profile: &DeviceProfile,
    now: OffsetDateTime,
) -> Result<IndexEntry> {
    DeviceTemplate::new(issuer, profile, now)?.sign(csr, &random_serial())
}

pub(crate) enum Screen {
    Accept,
    Existing(Box<IndexEntry>),
    Refuse(Error),
}

/// The duplicate rules, given every recorded certificate for the requested device ID:
/// a revoked key is never re-certified; the same key gets its existing certificate back;
/// another key is refused while a live certificate holds the ID (after revocation, a new key
/// may take it: that is re-keying).
pub(crate) fn screen(csr: &VerifiedCsr, existing: &[IndexEntry]) -> Screen {
    let same_key = |e: &&IndexEntry| e.spki_sha256 == *csr.spki_sha256();
    if let Some(e) = existing.iter().filter(same_key).find(|e| matches!(e.status, CertStatus::Revoked { .. }))
    {
        return Screen::Refuse(Error::KeyRevoked {
            device_id: csr.device_id().to_owned(),
            serial: e.record.serial.clone(),
        });
    }
    if let Some(e) = existing.iter().find(same_key) {
        return Screen::Existing(Box::new(e.clone()));
    }
    if let Some(e) = existing.iter().find(|e| e.status == CertStatus::Valid) {
        return Screen::Refuse(Error::DeviceIdTaken {
            device_id: csr.device_id().to_owned(),
            existing_serial: e.record.serial.clone(),
        });
    }
    Screen::Accept
}

// Fixed extensions of the device profile, DER.
/// basicConstraints, critical, CA:FALSE (empty SEQUENCE).
const EXT_BASIC_CONSTRAINTS: &[u8] =
    &[0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x02, 0x30, 0x00];
/// keyUsage, critical, digitalSignature only.
const EXT_KEY_USAGE: &[u8] =
    &[0x30, 0x0e, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x04, 0x04, 0x03, 0x02, 0x07, 0x80];
/// extendedKeyUsage, clientAuth.
const EXT_EKU_CLIENT_AUTH: &[u8] = &[
    0x30, 0x13, 0x06, 0x03, 0x55, 0x1d, 0x25, 0x04, 0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05,
    0x05, 0x07, 0x03, 0x02,
];
/// subjectKeyIdentifier header; 20 key-ID bytes follow.
const EXT_SKI_HEAD: &[u8] = &[0x30, 0x1d, 0x06, 0x03, 0x55, 0x1d, 0x0e, 0x04, 0x16, 0x04, 0x14];
const OID_AKI: &[u8] = &[0x55, 0x1d, 0x23];
const OID_COUNTRY: &[u8] = &[0x55, 0x04, 0x06];
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const VERSION_V3: &[u8] = &[0xa0, 0x03, 0x02, 0x01, 0x02];

/// Everything about a device certificate that is the same for one issuer, profile and
/// issuance time, encoded once; [`DeviceTemplate::sign`] adds serial, CN, key and SKI.
pub(crate) struct DeviceTemplate<'a> {
    issuer: &'a CaIssuer<'a>,
    validity: Vec<u8>,
    subject_prefix: Vec<u8>,
    extensions_tail: Vec<u8>,
    family: String,
    not_after: String,
    issuer_name: String,
}

impl<'a> DeviceTemplate<'a> {
    pub(crate) fn new(
        issuer: &'a CaIssuer<'a>,
        profile: &DeviceProfile,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let (not_before, not_after) = profile.validity_window(now)?;
        let mut validity = Vec::with_capacity(40);
        nested(&mut validity, der::TAG_SEQUENCE, |o| {
            push_time(o, not_before);
            push_time(o, not_after);
        });

        let mut subject_prefix = Vec::with_capacity(64);
        push_rdn(&mut subject_prefix, OID_COUNTRY, der::TAG_PRINTABLE_STRING, profile.country());
        push_rdn(&mut subject_prefix, OID_ORGANIZATION, der::TAG_UTF8_STRING, profile.organization());

        // authorityKeyIdentifier { [0] keyIdentifier } and the family extension.
        let mut extensions_tail = Vec::with_capacity(128);
        nested(&mut extensions_tail, der::TAG_SEQUENCE, |o| {
            tlv(o, der::TAG_OID, OID_AKI);
            nested(o, der::TAG_OCTET_STRING, |o| {
                nested(o, der::TAG_SEQUENCE, |o| {
                    tlv(o, 0x80, issuer.certificate().subject_key_id());
                });
            });
        });
        nested(&mut extensions_tail, der::TAG_SEQUENCE, |o| {
            tlv(o, der::TAG_OID, FAMILY_EXTENSION_OID_DER);
            nested(o, der::TAG_OCTET_STRING, |o| {
                tlv(o, der::TAG_UTF8_STRING, profile.family().as_bytes());
            });
        });

        let not_after_text = not_after
            .format(&Rfc3339)
            .map_err(|_| Error::ValidityInvalid { reason: "notAfter cannot be formatted" })?;
        Ok(DeviceTemplate {
            issuer,
            validity,
            subject_prefix,
            extensions_tail,
            family: profile.family().to_owned(),
            not_after: not_after_text,
            issuer_name: issuer.certificate().subject().to_owned(),
        })
    }

    /// Encodes, signs and describes one certificate.
    pub(crate) fn sign(&self, csr: &VerifiedCsr, serial: &[u8; 16]) -> Result<IndexEntry> {
        let ca = self.issuer.certificate();
        let spki = csr.spki_der();
        let mut tbs = Vec::with_capacity(
            96 + ca.subject_der().len() + self.subject_prefix.len() + spki.len() + self.extensions_tail.len(),
        );
        nested(&mut tbs, der::TAG_SEQUENCE, |o| {
            o.extend_from_slice(VERSION_V3);
            unsigned_integer(o, serial);
            o.extend_from_slice(self.issuer.sig_alg_der());
            o.extend_from_slice(ca.subject_der());
            o.extend_from_slice(&self.validity);
            nested(o, der::TAG_SEQUENCE, |o| {
                o.extend_from_slice(&self.subject_prefix);
                push_rdn(o, OID_COMMON_NAME, der::TAG_UTF8_STRING, csr.device_id());
            });
            o.extend_from_slice(spki);
            nested(o, der::TAG_CTX3, |o| {
                nested(o, der::TAG_SEQUENCE, |o| {
                    o.extend_from_slice(EXT_BASIC_CONSTRAINTS);
                    o.extend_from_slice(EXT_KEY_USAGE);
                    o.extend_from_slice(EXT_EKU_CLIENT_AUTH);
                    o.extend_from_slice(EXT_SKI_HEAD);
                    o.extend_from_slice(&sha256(spki)[..20]);
                    o.extend_from_slice(&self.extensions_tail);
                });
            });
        });

        let signature = self.issuer.signer().sign(&tbs).map_err(Error::CertificateBuild)?;
        let mut cert = Vec::with_capacity(tbs.len() + self.issuer.sig_alg_der().len() + signature.len() + 16);
        nested(&mut cert, der::TAG_SEQUENCE, |o| {
            o.extend_from_slice(&tbs);
            o.extend_from_slice(self.issuer.sig_alg_der());
            nested(o, der::TAG_BIT_STRING, |o| {
                o.push(0);
                o.extend_from_slice(&signature);
            });
        });

        Ok(IndexEntry {
            record: IssuedRecord {
                serial: hex::encode(serial),
                device_id: csr.device_id().to_owned(),
                family: self.family.clone(),
                sha256_fingerprint: hex::encode(sha256(&cert)),
                not_after: self.not_after.clone(),
                der: cert,
            },
            csr_sha256: *csr.csr_sha256(),
            spki_sha256: *csr.spki_sha256(),
            issuer: self.issuer_name.clone(),
            issuer_key_id: ca.subject_key_id().to_vec(),
            status: CertStatus::Valid,
        })
    }
}

fn push_rdn(out: &mut Vec<u8>, oid: &[u8], string_tag: u8, value: &str) {
    nested(out, der::TAG_SET, |o| {
        nested(o, der::TAG_SEQUENCE, |o| {
            tlv(o, der::TAG_OID, oid);
            tlv(o, string_tag, value.as_bytes());
        });
    });
}

/// UTCTime for 1950..2050, GeneralizedTime otherwise (RFC 5280 §4.1.2.5).
fn push_time(out: &mut Vec<u8>, t: OffsetDateTime) {
    let (tag, text) = if (1950..2050).contains(&t.year()) {
        (
            der::TAG_UTC_TIME,
            format!(
                "{:02}{:02}{:02}{:02}{:02}{:02}Z",
                t.year() % 100,
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        )
    } else {
        (
            der::TAG_GENERALIZED_TIME,
            format!(
                "{:04}{:02}{:02}{:02}{:02}{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        )
    };
    tlv(out, tag, text.as_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times() {
        let mut o = Vec::new();
        push_time(&mut o, datetime!(2049-12-31 23:59:59 UTC));
        assert_eq!(o, b"\x17\x0d491231235959Z");
        o.clear();
        push_time(&mut o, datetime!(2050-01-01 0:00 UTC));
        assert_eq!(o, b"\x18\x0f20500101000000Z");
        o.clear();
        push_time(&mut o, crate::profile::NO_WELL_DEFINED_EXPIRY);
        assert_eq!(o, b"\x18\x0f99991231235959Z");
    }
}
