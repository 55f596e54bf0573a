//! A device's identity as its secure element holds it: the signing key (label `device-auth`)
//! and the sealed certificate objects `device-cert` (PEM leaf) and `device-chain` (PEM CA
//! certificates, nearest first), as `ironclad demo` and the factory store them.

use std::sync::Arc;

use ironclad_se::{KeyHandle, Label, SecureElement};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::{Error, Result};

/// Default label of the authentication key.
pub const KEY_LABEL: &str = "device-auth";
/// Default sealed object holding the device certificate (PEM).
pub const CERT_OBJECT: &str = "device-cert";
/// Default sealed object holding the CA chain (PEM).
pub const CHAIN_OBJECT: &str = "device-chain";

/// The key handle and the certificate chain the device presents.
#[derive(Clone, Debug)]
pub struct DeviceIdentity {
    key: KeyHandle,
    chain: Vec<CertificateDer<'static>>,
    device_id: String,
}

impl DeviceIdentity {
    /// Reads the identity from a secure element under the default labels.
    pub fn from_secure_element(se: Arc<dyn SecureElement>) -> Result<Self> {
        Self::from_labels(se, KEY_LABEL, CERT_OBJECT, Some(CHAIN_OBJECT))
    }

    /// Reads the identity under custom labels; `chain_object` may be absent (server knows the
    /// CAs) or `None`.
    pub fn from_labels(
        se: Arc<dyn SecureElement>,
        key_label: &str,
        cert_object: &str,
        chain_object: Option<&str>,
    ) -> Result<Self> {
        let key = KeyHandle::open(se.clone(), &Label::new(key_label)?)?;
        let cert_pem = se.get_object(&Label::new(cert_object)?)?;
        let mut chain = parse_pem_chain(&cert_pem)?;
        if chain.len() != 1 {
            return Err(Error::Identity(format!("{cert_object} must hold exactly one certificate")));
        }
        if let Some(name) = chain_object {
            match se.get_object(&Label::new(name)?) {
                Ok(pem) => chain.extend(parse_pem_chain(&pem)?),
                Err(ironclad_se::Error::ObjectNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Self::new(key, chain)
    }

    /// From parts: `chain` is leaf first. Checks that the leaf certifies the key.
    pub fn new(key: KeyHandle, chain: Vec<CertificateDer<'static>>) -> Result<Self> {
        let leaf = chain.first().ok_or_else(|| Error::Identity("empty certificate chain".into()))?;
        let (_, cert) = x509_leaf(leaf)?;
        let spki =
            key.public_key().spki_der().ok_or_else(|| Error::Identity("key has no public key".into()))?;
        if cert.public_key().raw != spki.as_slice() {
            return Err(Error::Identity("the certificate is not for the key in the secure element".into()));
        }
        let device_id = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or_else(|| Error::Identity("certificate has no CN".into()))?
            .to_owned();
        Ok(DeviceIdentity { key, chain, device_id })
    }

    /// The device ID (certificate CN).
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The signing key.
    pub fn key(&self) -> &KeyHandle {
        &self.key
    }

    /// The chain presented in TLS, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
}

fn x509_leaf(der: &[u8]) -> Result<(&[u8], x509_parser::certificate::X509Certificate<'_>)> {
    use x509_parser::prelude::FromDer;
    x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| Error::Identity(format!("certificate: {e}")))
}

/// Every `CERTIFICATE` block of a PEM text.
pub fn parse_pem_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Identity(format!("PEM: {e}")))
}
