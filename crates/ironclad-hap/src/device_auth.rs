//! X.509 for pairing: the accessory's device certificate from its secure element, the
//! controller's check of it against the OEM root, and the check of a delegated trust anchor.
//!
//! The protocol part (what is signed, where it travels) is `ironclad_pair::attestation`.

use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ED25519, UnparsedPublicKey, VerificationAlgorithm};
use ironclad_pair::attestation::{AuthenticatedDevice, DeviceAuthVerifier, SeDeviceAttestation};
use ironclad_pki::{ChainVerifier, VerifiedDevice, danger::SkipRevocationCheck};
use ironclad_se::{KeyHandle, Label, SecureElement};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::error::{Error, Result};

/// Labels an ironclad device's identity has in its secure element (as the factory and
/// `ironclad demo` provision it, and as `ironclad_agent::DeviceIdentity` reads it).
pub const DEVICE_KEY: &str = "device-auth";
pub const DEVICE_CERT: &str = "device-cert";
pub const DEVICE_CHAIN: &str = "device-chain";

/// DER certificates of every `CERTIFICATE` block of a PEM text.
pub fn pem_certificates(pem_text: &[u8]) -> Result<Vec<Vec<u8>>> {
    let blocks = pem::parse_many(pem_text).map_err(|e| Error::invalid("PEM", e.to_string()))?;
    Ok(blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE").map(pem::Pem::into_contents).collect())
}

/// The device certificate of a provisioned ironclad device: key `device-auth`, sealed objects
/// `device-cert` (PEM) and `device-chain` (PEM CA certificates, nearest first, optional),
/// checked to belong together.
pub fn device_attestation(se: &Arc<dyn SecureElement>) -> Result<Arc<SeDeviceAttestation>> {
    device_attestation_with_labels(se, DEVICE_KEY, DEVICE_CERT, Some(DEVICE_CHAIN))
}

/// [`device_attestation`] under other labels.
pub fn device_attestation_with_labels(
    se: &Arc<dyn SecureElement>,
    key_label: &str,
    cert_object: &str,
    chain_object: Option<&str>,
) -> Result<Arc<SeDeviceAttestation>> {
    let key = KeyHandle::open(se.clone(), &Label::new(key_label)?)?;
    let mut certificates = pem_certificates(&se.get_object(&Label::new(cert_object)?)?)?;
    if certificates.len() != 1 {
        return Err(Error::invalid("device certificate", format!("{cert_object} must hold one certificate")));
    }
    if let Some(chain) = chain_object {
        match se.get_object(&Label::new(chain)?) {
            Ok(pem) => certificates.extend(pem_certificates(&pem)?),
            Err(ironclad_se::Error::ObjectNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (_, leaf) = X509Certificate::from_der(&certificates[0])
        .map_err(|e| Error::invalid("device certificate", e.to_string()))?;
    let spki = key.public_key().spki_der();
    if spki.as_deref() != Some(leaf.public_key().raw) {
        return Err(Error::invalid("device certificate", format!("it does not certify the key {key_label}")));
    }
    Ok(Arc::new(SeDeviceAttestation::new(key, certificates)?))
}

/// The controller's check of a device certificate: the chain (as presented: device first,
/// then intermediates) must lead to one of the OEM roots, with the device-identity profile
/// (clientAuth, a valid device ID), and the transcript signature must be by the device key.
///
/// Revocation is not checked here: a phone pairing in a living room has no CRL; revocation is
/// enforced where the device meets the cloud (the registry refuses revoked devices).
#[derive(Debug)]
pub struct OemRootVerifier {
    roots: Vec<Vec<u8>>,
}

impl OemRootVerifier {
    /// Trusts these root certificates (DER).
    pub fn new(roots: Vec<Vec<u8>>) -> Result<Self> {
        if roots.is_empty() {
            return Err(Error::invalid("OEM root", "no root certificate given"));
        }
        // Fail early on a root that is not a usable trust anchor.
        ChainVerifier::new(&roots, Vec::<Vec<u8>>::new())
            .map_err(|e| Error::invalid("OEM root", e.to_string()))?;
        Ok(OemRootVerifier { roots })
    }

    /// Trusts every certificate in a PEM file's text.
    pub fn from_pem(pem_text: &[u8]) -> Result<Self> {
        Self::new(pem_certificates(pem_text)?)
    }

    /// Checks the chain alone, now (e.g. again at pair-verify, for a certificate stored at
    /// pair-setup: it may have expired since).
    pub fn check_chain(&self, certificates: &[Vec<u8>]) -> Result<VerifiedDevice> {
        let (leaf, intermediates) =
            certificates.split_first().ok_or(ironclad_pair::Error::NoDeviceCertificate)?;
        let verifier = ChainVerifier::new(&self.roots, intermediates)
            .map_err(|e| ironclad_pair::Error::DeviceAuth(e.to_string()))?;
        let now = time::OffsetDateTime::now_utc();
        verifier
            .verify_device(leaf, now, &SkipRevocationCheck)
            .map_err(|e| ironclad_pair::Error::DeviceAuth(e.to_string()).into())
    }
}

impl DeviceAuthVerifier for OemRootVerifier {
    fn verify(
        &self,
        certificates: &[Vec<u8>],
        message: &[u8],
        signature: &[u8],
    ) -> ironclad_pair::Result<AuthenticatedDevice> {
        let device = self.check_chain(certificates).map_err(|e| match e {
            Error::Pair(p) => p,
            other => ironclad_pair::Error::DeviceAuth(other.to_string()),
        })?;
        verify_signature(device.spki_der(), message, signature)
            .map_err(|reason| ironclad_pair::Error::DeviceAuth(reason.into()))?;
        Ok(AuthenticatedDevice {
            device_id: device.device_id().to_owned(),
            serial: device.serial().to_owned(),
            certificates: certificates.to_vec(),
        })
    }
}

/// `sig` over `msg` by the key in `spki_der`: ECDSA P-256/SHA-256 (ASN.1 DER) or Ed25519.
fn verify_signature(spki_der: &[u8], msg: &[u8], sig: &[u8]) -> std::result::Result<(), &'static str> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(|_| "malformed device key")?;
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
    let alg: &'static dyn VerificationAlgorithm =
        match (spki.algorithm.algorithm.to_id_string().as_str(), curve.as_deref()) {
            ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => &ECDSA_P256_SHA256_ASN1,
            ("1.3.101.112", _) => &ED25519,
            _ => return Err("unsupported device key algorithm"),
        };
    UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
        .verify(msg, sig)
        .map_err(|_| "the transcript signature does not verify with the device certificate's key")
}

/// A delegated trust anchor must be PEM CA certificates (basicConstraints CA) that parse.
pub(crate) fn check_trust_anchor(pem_text: &str) -> Result<()> {
    let certs = pem_certificates(pem_text.as_bytes())?;
    if certs.is_empty() {
        return Err(Error::invalid("trust anchor", "no certificate"));
    }
    for der in &certs {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| Error::invalid("trust anchor", e.to_string()))?;
        if !rest.is_empty() {
            return Err(Error::invalid("trust anchor", "trailing bytes after a certificate"));
        }
        let is_ca = cert.basic_constraints().ok().flatten().is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(Error::invalid("trust anchor", "a certificate that is not a CA"));
        }
    }
    Ok(())
}
