//! PKCS#10 intake: parse, then verify, and only a [`VerifiedCsr`] can be issued.
//!
//! rcgen's own CSR parser refuses requests that carry extensions it does not know, which real
//! devices send; so requests are parsed and verified with x509-parser here. Only the public key
//! and the requested device ID (the subject CN) are taken; everything else is ignored.

use std::borrow::Cow;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::error::X509Error;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_RSASSAPSS,
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA256,
    OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519, OID_X509_EXT_BASIC_CONSTRAINTS,
};
use x509_parser::prelude::FromDer;

use crate::ca::sha256;
use crate::error::{Error, Result};
use crate::profile::validate_device_id;

/// Default for [`Limits::max_csr_bytes`]: 16 KiB. A P-256 CSR is about 300 bytes and an
/// RSA-4096 one about 1.7 KiB, so this leaves room for attributes while bounding the work an
/// attacker can cause per request.
pub const DEFAULT_MAX_CSR_BYTES: usize = 16 * 1024;

/// Input limits for CSR intake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest input accepted, counted as given (PEM or DER); default [`DEFAULT_MAX_CSR_BYTES`].
    pub max_csr_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_csr_bytes: DEFAULT_MAX_CSR_BYTES }
    }
}

impl Limits {
    /// Limits with a custom CSR size bound.
    pub fn with_max_csr_bytes(max_csr_bytes: usize) -> Self {
        Limits { max_csr_bytes }
    }
}

/// The kind of device key a request carries (the only ones accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum KeyKind {
    /// ECDSA on NIST P-256 (what secure elements provide; Matter's only choice).
    EcdsaP256,
    /// Ed25519.
    Ed25519,
    /// RSA with a modulus of at least 2048 bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::EcdsaP256 => f.write_str("EC P-256"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
            KeyKind::Rsa { bits } => write!(f, "RSA-{bits}"),
        }
    }
}

/// Returns the DER of a CSR given as PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`)
/// or as DER, refusing input over the size limit before looking at it.
pub fn csr_der<'a>(input: &'a [u8], limits: &Limits) -> Result<Cow<'a, [u8]>> {
    check_size(input.len(), limits)?;
    let start = input.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(input.len());
    if !input[start..].starts_with(b"-----BEGIN") {
        return Ok(Cow::Borrowed(input));
    }
    let block = pem::parse(input).map_err(|e| Error::CsrMalformed { reason: format!("PEM: {e}") })?;
    match block.tag() {
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Ok(Cow::Owned(block.into_contents())),
        other => {
            Err(Error::CsrMalformed { reason: format!("PEM block is {other:?}, not CERTIFICATE REQUEST") })
        }
    }
}

fn check_size(len: usize, limits: &Limits) -> Result<()> {
    if len > limits.max_csr_bytes {
        return Err(Error::CsrTooLarge { len, max: limits.max_csr_bytes });
    }
    Ok(())
}

/// Parses and verifies a CSR given as PEM or DER: the one call the issuance paths use.
pub fn parse_and_verify(input: &[u8], limits: &Limits) -> Result<VerifiedCsr> {
    let der = csr_der(input, limits)?;
    UnverifiedCsr::parse(&der, limits)?.verify()
}

/// A structurally valid PKCS#10 request whose signature and content are not checked yet.
#[derive(Debug)]
pub struct UnverifiedCsr<'a> {
    der: &'a [u8],
    req: X509CertificationRequest<'a>,
}

impl<'a> UnverifiedCsr<'a> {
    /// Parses DER, refusing oversized input, malformed structure, trailing bytes and versions
    /// other than v1.
    pub fn parse(der: &'a [u8], limits: &Limits) -> Result<Self> {
        check_size(der.len(), limits)?;
        let (rest, req) = X509CertificationRequest::from_der(der)
            .map_err(|e| Error::CsrMalformed { reason: e.to_string() })?;
        if !rest.is_empty() {
            return Err(Error::CsrTrailingData { extra: rest.len() });
        }
        if req.certification_request_info.version.0 != 0 {
            return Err(Error::CsrMalformed { reason: "version is not v1 (0)".to_owned() });
        }
        Ok(UnverifiedCsr { der, req })
    }

    /// Checks the key policy, the self-signature and the content, in that order, and returns
    /// what issuance needs.
    pub fn verify(self) -> Result<VerifiedCsr> {
        let info = &self.req.certification_request_info;
        let key_kind = check_key(&info.subject_pki)?;
        check_signature(&self.req)?;
        for attr in info.iter_attributes() {
            if let ParsedCriAttribute::ExtensionRequest(req) = attr.parsed_attribute() {
                for ext in &req.extensions {
                    if ext.oid != OID_X509_EXT_BASIC_CONSTRAINTS {
                        continue;
                    }
                    match ext.parsed_extension() {
                        ParsedExtension::BasicConstraints(bc) if bc.ca => {
                            return Err(Error::CsrRequestsCa);
                        }
                        ParsedExtension::BasicConstraints(_) => {}
                        _ => {
                            return Err(Error::CsrMalformed {
                                reason: "unparsable basicConstraints request".to_owned(),
                            });
                        }
                    }
                }
            }
        }
        let mut cns = info.subject.iter_common_name();
        let cn = cns.next().ok_or(Error::DeviceIdMissing)?;
        if cns.next().is_some() {
            return Err(Error::DeviceIdInvalid { reason: "more than one common name" });
        }
        let device_id =
            cn.as_str().map_err(|_| Error::DeviceIdInvalid { reason: "common name is not a text string" })?;
        validate_device_id(device_id)?;
        let spki_der = info.subject_pki.raw.to_vec();
        Ok(VerifiedCsr {
            device_id: device_id.to_owned(),
            spki_sha256: sha256(&spki_der),
            spki_der,
            csr_sha256: sha256(self.der),
            key_kind,
        })
    }
}

fn check_key(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<KeyKind> {
    let alg = &spki.algorithm.algorithm;
    let key = &spki.subject_public_key;
    if key.unused_bits != 0 {
        return Err(Error::CsrMalformed { reason: "public key BIT STRING has unused bits".to_owned() });
    }
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).ok_or_else(|| {
            Error::UnsupportedCurve { oid: "explicit or missing curve parameters".to_owned() }
        })?;
        if curve != OID_EC_P256 {
            return Err(Error::UnsupportedCurve { oid: curve.to_id_string() });
        }
        if key.data.len() != 65 || key.data[0] != 0x04 {
            return Err(Error::CsrMalformed {
                reason: "P-256 point is not an uncompressed 65-byte point".to_owned(),
            });
        }
        Ok(KeyKind::EcdsaP256)
    } else if *alg == OID_SIG_ED25519 {
        if spki.algorithm.parameters.is_some() || key.data.len() != 32 {
            return Err(Error::CsrMalformed {
                reason: "Ed25519 key is not 32 bytes without parameters".to_owned(),
            });
        }
        Ok(KeyKind::Ed25519)
    } else if *alg == OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => modulus_bits(rsa.modulus),
            _ => {
                return Err(Error::CsrMalformed { reason: "unparsable RSA public key".to_owned() });
            }
        };
        if bits < 2048 {
            return Err(Error::RsaKeyTooSmall { bits });
        }
        if bits > 8192 {
            return Err(Error::CsrMalformed { reason: "RSA key larger than 8192 bits".to_owned() });
        }
        Ok(KeyKind::Rsa { bits })
    } else {
        Err(Error::UnsupportedKeyAlgorithm { oid: alg.to_id_string() })
    }
}

fn modulus_bits(modulus: &[u8]) -> usize {
    let m: &[u8] = {
        let skip = modulus.iter().take_while(|b| **b == 0).count();
        &modulus[skip..]
    };
    match m.first() {
        None => 0,
        Some(first) => (m.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

fn check_signature(req: &X509CertificationRequest<'_>) -> Result<()> {
    let alg = &req.signature_algorithm.algorithm;
    let allowed = [
        &OID_SIG_ECDSA_WITH_SHA256,
        &OID_SIG_ECDSA_WITH_SHA384,
        &OID_SIG_ED25519,
        &OID_PKCS1_SHA256WITHRSA,
        &OID_PKCS1_SHA384WITHRSA,
        &OID_PKCS1_SHA512WITHRSA,
        &OID_PKCS1_RSASSAPSS,
    ];
    if !allowed.contains(&alg) {
        return Err(Error::UnsupportedSignatureAlgorithm { oid: alg.to_id_string() });
    }
    match req.verify_signature() {
        Ok(()) => Ok(()),
        Err(X509Error::SignatureUnsupportedAlgorithm) => {
            Err(Error::UnsupportedSignatureAlgorithm { oid: alg.to_id_string() })
        }
        Err(_) => Err(Error::CsrSignatureInvalid),
    }
}

/// A request whose signature verified and whose key and device ID follow the rules.
/// Only [`UnverifiedCsr::verify`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCsr {
    device_id: String,
    spki_der: Vec<u8>,
    spki_sha256: [u8; 32],
    csr_sha256: [u8; 32],
    key_kind: KeyKind,
}

impl VerifiedCsr {
    /// The requested device ID (the subject CN), already checked.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The device's SubjectPublicKeyInfo, DER, exactly as in the request.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// SHA-256 of the SubjectPublicKeyInfo: identifies the key in the index.
    pub fn spki_sha256(&self) -> &[u8; 32] {
        &self.spki_sha256
    }

    /// SHA-256 of the request's DER: identifies the request, making re-submission idempotent.
    pub fn csr_sha256(&self) -> &[u8; 32] {
        &self.csr_sha256
    }

    /// Which kind of key it is.
    pub fn key_kind(&self) -> KeyKind {
        self.key_kind
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    fn csr_for(key: &KeyPair, cn: &str) -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serialize_request(key).unwrap().der().to_vec()
    }

    #[test]
    fn p256_and_ed25519_are_accepted() {
        let k = KeyPair::generate().unwrap();
        let v = parse_and_verify(&csr_for(&k, "dev-1"), &Limits::default()).unwrap();
        assert_eq!(v.device_id(), "dev-1");
        assert_eq!(v.key_kind(), KeyKind::EcdsaP256);
        use rcgen::PublicKeyData;
        assert_eq!(v.spki_der(), k.subject_public_key_info());

        let k = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let v = parse_and_verify(&csr_for(&k, "dev-2"), &Limits::default()).unwrap();
        assert_eq!(v.key_kind(), KeyKind::Ed25519);
    }

    #[test]
    fn pem_input() {
        let k = KeyPair::generate().unwrap();
        let der = csr_for(&k, "dev-1");
        let pem = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der.clone()));
        let a = parse_and_verify(pem.as_bytes(), &Limits::default()).unwrap();
        let b = parse_and_verify(&der, &Limits::default()).unwrap();
        assert_eq!(a, b);
        let wrong = pem::encode(&pem::Pem::new("CERTIFICATE", der));
        assert!(matches!(
            parse_and_verify(wrong.as_bytes(), &Limits::default()),
            Err(Error::CsrMalformed { .. })
        ));
    }

    #[test]
    fn size_limit_applies_before_parsing() {
        let big = vec![0x30u8; DEFAULT_MAX_CSR_BYTES + 1];
        assert!(matches!(
            parse_and_verify(&big, &Limits::default()),
            Err(Error::CsrTooLarge { len, max }) if len == big.len() && max == DEFAULT_MAX_CSR_BYTES
        ));
        let k = KeyPair::generate().unwrap();
        let der = csr_for(&k, "dev-1");
        assert!(matches!(
            parse_and_verify(&der, &Limits::with_max_csr_bytes(der.len() - 1)),
            Err(Error::CsrTooLarge { .. })
        ));
    }

    #[test]
    fn modulus_sizes() {
        assert_eq!(modulus_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(modulus_bits(&[0x01, 0xff]), 9);
        assert_eq!(modulus_bits(&[]), 0);
    }
}
