//! Device-certificate chain verification (rustls-webpki) plus revocation by serial.
//!
//! CRLs are deliberately not fed to webpki: it re-verifies the CRL signature on every call,
//! which cuts verification throughput threefold with a 10 k-entry CRL (research/crates.md).
//! Revocation is looked up by serial in the index instead.

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::ca::{serial_hex, sha256};
use crate::crl::RevocationReason;
use crate::error::{Error, Result};
use crate::index::IssuedIndex;
use crate::profile::{FAMILY_EXTENSION_OID_DER, validate_device_id};

/// Revocation status of one certificate, as a [`RevocationCheck`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationStatus {
    /// Known and not revoked.
    Good,
    /// Revoked.
    Revoked {
        /// Why.
        reason: RevocationReason,
        /// When.
        at: OffsetDateTime,
    },
    /// Not known to this source: treated as a failure ([`Error::UnknownCertificate`]), since a
    /// CA that did not record a certificate may not have issued it.
    Unknown,
}

/// Where verification asks whether a certificate was revoked. Every [`IssuedIndex`] is one.
pub trait RevocationCheck {
    /// Status of the certificate with this serial (lower-case hex).
    fn status(&self, serial: &str) -> Result<RevocationStatus>;
}

impl<T: IssuedIndex + ?Sized> RevocationCheck for T {
    fn status(&self, serial: &str) -> Result<RevocationStatus> {
        self.revocation_status(serial)
    }
}

/// Footguns, fenced: checks that are switched off.
pub mod danger {
    use super::{RevocationCheck, RevocationStatus};
    use crate::error::Result;

    /// Reports every certificate as not revoked. Only for offline tools that have no index,
    /// such as checking a certificate file's chain; never for authenticating devices.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct SkipRevocationCheck;

    impl RevocationCheck for SkipRevocationCheck {
        fn status(&self, _serial: &str) -> Result<RevocationStatus> {
            Ok(RevocationStatus::Good)
        }
    }
}

/// What a successful verification proves about a device. Only
/// [`ChainVerifier::verify_device`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedDevice {
    device_id: String,
    family: Option<String>,
    serial: String,
    not_after: OffsetDateTime,
    issuer_fingerprint: String,
    spki_der: Vec<u8>,
}

impl VerifiedDevice {
    /// The device ID (subject CN).
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The product family, if the certificate carries the family extension.
    pub fn family(&self) -> Option<&str> {
        self.family.as_deref()
    }

    /// Serial, lower-case hex.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// notAfter of the device certificate.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// SHA-256 (hex) of the CA certificate that signed the device certificate: which factory
    /// or line CA it came from, for per-family enrolment.
    pub fn issuer_fingerprint(&self) -> &str {
        &self.issuer_fingerprint
    }

    /// The device's SubjectPublicKeyInfo, DER, to verify its challenge signatures with.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}

/// Verifies device certificates against fixed roots and intermediates.
#[derive(Debug)]
pub struct ChainVerifier {
    anchors: Vec<TrustAnchor<'static>>,
    anchor_fingerprints: Vec<[u8; 32]>,
    intermediates: Vec<CertificateDer<'static>>,
    /// Key identifiers of the roots, and (SKI, AKI) of the intermediates, to tell a chain from
    /// another CA (whose names happen to match ours) from a tampered certificate.
    root_key_ids: Vec<Vec<u8>>,
    intermediate_key_ids: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl ChainVerifier {
    /// Trusts `roots` (DER) and may build paths through `intermediates` (DER).
    pub fn new<R, I>(
        roots: impl IntoIterator<Item = R>,
        intermediates: impl IntoIterator<Item = I>,
    ) -> Result<Self>
    where
        R: AsRef<[u8]>,
        I: AsRef<[u8]>,
    {
        let mut anchors = Vec::new();
        let mut anchor_fingerprints = Vec::new();
        let mut root_key_ids = Vec::new();
        let mut intermediate_key_ids = Vec::new();
        for root in roots {
            root_key_ids.extend(key_ids(root.as_ref()).and_then(|k| k.ski));
            let der = CertificateDer::from(root.as_ref());
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| Error::CaInvalid { reason: format!("root: {e}") })?;
            anchors.push(anchor.to_owned());
            anchor_fingerprints.push(sha256(root.as_ref()));
        }
        if anchors.is_empty() {
            return Err(Error::CaInvalid { reason: "no trusted roots given".to_owned() });
        }
        let intermediates = intermediates
            .into_iter()
            .map(|i| {
                if let Some(KeyIds { ski: Some(ski), aki }) = key_ids(i.as_ref()) {
                    intermediate_key_ids.push((ski, aki));
                }
                CertificateDer::from(i.as_ref().to_vec())
            })
            .collect();
        Ok(ChainVerifier { anchors, anchor_fingerprints, intermediates, root_key_ids, intermediate_key_ids })
    }

    /// Verifies a device certificate at `now`: chain to a root, validity of every certificate,
    /// signatures, CA constraints, clientAuth usage, the device profile (clientAuth EKU present,
    /// valid device ID), and finally revocation by serial through `revocation`.
    pub fn verify_device(
        &self,
        leaf_der: &[u8],
        now: OffsetDateTime,
        revocation: &dyn RevocationCheck,
    ) -> Result<VerifiedDevice> {
        let secs = u64::try_from(now.unix_timestamp())
            .map_err(|_| Error::ValidityInvalid { reason: "verification time before 1970" })?;
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        let leaf = CertificateDer::from(leaf_der);
        let ee =
            EndEntityCert::try_from(&leaf).map_err(|e| Error::CertMalformed { reason: e.to_string() })?;
        let path = ee
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &self.intermediates,
                time,
                KeyUsage::client_auth(),
                None,
                None,
            )
            .map_err(|e| match map_webpki(e) {
                Error::CertSignatureInvalid if !self.links_to_a_root(leaf_der) => Error::UnknownIssuer,
                other => other,
            })?;
        let issuer_fingerprint = match path.intermediate_certificates().next() {
            Some(ca) => sha256(ca.der().as_ref()),
            None => {
                let spki = path.anchor().subject_public_key_info.as_ref();
                self.anchors
                    .iter()
                    .position(|a| a.subject_public_key_info.as_ref() == spki)
                    .map(|i| self.anchor_fingerprints[i])
                    .ok_or(Error::UnknownIssuer)?
            }
        };

        let (_, cert) = X509Certificate::from_der(leaf_der)
            .map_err(|e| Error::CertMalformed { reason: e.to_string() })?;
        let eku = cert
            .extended_key_usage()
            .map_err(|_| Error::ProfileViolation { reason: "duplicate extendedKeyUsage" })?;
        if !eku.is_some_and(|e| e.value.client_auth) {
            return Err(Error::ProfileViolation { reason: "no clientAuth extendedKeyUsage" });
        }
        let mut cns = cert.subject().iter_common_name();
        let cn = cns.next().ok_or(Error::DeviceIdMissing)?;
        if cns.next().is_some() {
            return Err(Error::DeviceIdInvalid { reason: "more than one common name" });
        }
        let device_id =
            cn.as_str().map_err(|_| Error::DeviceIdInvalid { reason: "common name is not a text string" })?;
        validate_device_id(device_id)?;

        let serial = serial_hex(cert.raw_serial());
        match revocation.status(&serial)? {
            RevocationStatus::Good => {}
            RevocationStatus::Revoked { reason, .. } => {
                return Err(Error::Revoked { serial, reason });
            }
            RevocationStatus::Unknown => return Err(Error::UnknownCertificate { serial }),
        }
        Ok(VerifiedDevice {
            device_id: device_id.to_owned(),
            family: family_of(&cert),
            serial,
            not_after: cert.validity().not_after.to_datetime(),
            issuer_fingerprint: hex::encode(issuer_fingerprint),
            spki_der: cert.public_key().raw.to_vec(),
        })
    }
}

impl ChainVerifier {
    /// Whether key identifiers link the certificate through our intermediates to one of our
    /// roots. Missing identifiers count as a link, so only a positive mismatch turns a bad
    /// signature into "unknown issuer".
    fn links_to_a_root(&self, der: &[u8]) -> bool {
        let Some(KeyIds { aki: Some(mut aki), .. }) = key_ids(der) else {
            return true;
        };
        for _ in 0..8 {
            if self.root_key_ids.contains(&aki) {
                return true;
            }
            match self.intermediate_key_ids.iter().find(|(ski, _)| *ski == aki) {
                Some((_, Some(next))) => aki = next.clone(),
                Some((_, None)) => return true,
                None => return false,
            }
        }
        true
    }
}

/// A certificate's subject and authority key identifiers.
struct KeyIds {
    ski: Option<Vec<u8>>,
    aki: Option<Vec<u8>>,
}

fn key_ids(der: &[u8]) -> Option<KeyIds> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut ski = None;
    let mut aki = None;
    for e in cert.iter_extensions() {
        match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => ski = Some(id.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            _ => {}
        }
    }
    Some(KeyIds { ski, aki })
}

/// The family name from our extension, if present and well-formed.
pub(crate) fn family_of(cert: &X509Certificate<'_>) -> Option<String> {
    cert.extensions()
        .iter()
        .find(|e| e.oid.as_bytes() == FAMILY_EXTENSION_OID_DER)
        .and_then(|e| x509_parser::der_parser::der::parse_der_utf8string(e.value).ok())
        .and_then(|(rest, obj)| if rest.is_empty() { obj.as_str().ok().map(str::to_owned) } else { None })
}

fn unix(t: UnixTime) -> OffsetDateTime {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn map_webpki(e: webpki::Error) -> Error {
    match e {
        webpki::Error::UnknownIssuer => Error::UnknownIssuer,
        webpki::Error::CertExpired { not_after, .. } => Error::Expired { not_after: unix(not_after) },
        webpki::Error::CertNotValidYet { not_before, .. } => {
            Error::NotYetValid { not_before: unix(not_before) }
        }
        webpki::Error::InvalidSignatureForPublicKey => Error::CertSignatureInvalid,
        other => Error::ChainInvalid { reason: other },
    }
}
