//! rustls on the device: the client certificate's CertificateVerify is signed inside the
//! secure element ([`SeSigningKey`] implements `rustls::sign::SigningKey` over a
//! [`KeyHandle`]), so the device key never leaves it, for TLS or for the challenge.

use std::sync::Arc;

use ironclad_se::{KeyAlgorithm, KeyHandle, SignInput};
use rustls::client::ResolvesClientCert;
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{ClientConfig, RootCertStore, SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer};

use crate::error::{Error, Result};
use crate::identity::DeviceIdentity;

/// TLS versions the client offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsVersions {
    /// TLS 1.3 and 1.2 (default; 1.3 preferred).
    #[default]
    Any,
    /// TLS 1.3 only.
    Tls13,
    /// TLS 1.2 only (for interop tests and old peers).
    Tls12,
}

/// A secure-element key as a rustls signing key.
#[derive(Clone, Debug)]
pub struct SeSigningKey {
    key: KeyHandle,
    spki: Vec<u8>,
}

impl SeSigningKey {
    /// Wraps a signing key (ECDSA P-256 or Ed25519).
    pub fn new(key: KeyHandle) -> Result<Self> {
        let spki =
            key.public_key().spki_der().ok_or_else(|| Error::Identity("key has no public part".into()))?;
        Ok(SeSigningKey { key, spki })
    }

    fn scheme(&self) -> SignatureScheme {
        match self.key.algorithm() {
            KeyAlgorithm::Ed25519 => SignatureScheme::ED25519,
            _ => SignatureScheme::ECDSA_NISTP256_SHA256,
        }
    }
}

impl SigningKey for SeSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = self.scheme();
        offered
            .contains(&scheme)
            .then(|| Box::new(SeSigner { key: self.key.clone(), scheme }) as Box<dyn Signer>)
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.spki.as_slice()))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.key.algorithm() {
            KeyAlgorithm::Ed25519 => SignatureAlgorithm::ED25519,
            _ => SignatureAlgorithm::ECDSA,
        }
    }
}

#[derive(Debug)]
struct SeSigner {
    key: KeyHandle,
    scheme: SignatureScheme,
}

impl Signer for SeSigner {
    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, rustls::Error> {
        // ECDSA keys sign SHA-256(message) with a DER signature, as TLS wants for
        // ecdsa_secp256r1_sha256; Ed25519 signs the message itself.
        self.key
            .sign(SignInput::Message(message))
            .map_err(|e| rustls::Error::General(format!("secure element signing failed: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Always offers the device's certificate chain with the secure-element key.
#[derive(Debug)]
struct SeCertResolver(Arc<CertifiedKey>);

impl ResolvesClientCert for SeCertResolver {
    fn resolve(&self, _hints: &[&[u8]], sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.key.choose_scheme(sigschemes).map(|_| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Root store holding the CA certificates (PEM) that sign the server's certificate.
pub fn server_roots(ca_pem: &[u8]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in crate::identity::parse_pem_chain(ca_pem)? {
        roots.add(cert).map_err(|e| Error::Tls(format!("server CA: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::Config("no server CA certificate given".into()));
    }
    Ok(roots)
}

fn builder(versions: TlsVersions) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>> {
    // AES-128-GCM first: SHA-256 (CPU-accelerated) in the key schedule, not SHA-384.
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    let first = [
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ];
    provider.cipher_suites.sort_by_key(|s| !first.contains(&s.suite()));
    let provider = Arc::new(provider);
    let v: &[&rustls::SupportedProtocolVersion] = match versions {
        TlsVersions::Any => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersions::Tls13 => &[&rustls::version::TLS13],
        TlsVersions::Tls12 => &[&rustls::version::TLS12],
    };
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(v)
        .map_err(|e| Error::Tls(e.to_string()))
}

/// A client configuration authenticating with `identity` (mutual TLS, key in the SE).
pub fn device_client_config(
    identity: &DeviceIdentity,
    roots: RootCertStore,
    versions: TlsVersions,
) -> Result<Arc<ClientConfig>> {
    let key = Arc::new(SeSigningKey::new(identity.key().clone())?);
    let chain: Vec<CertificateDer<'static>> = identity.chain().to_vec();
    let certified = Arc::new(CertifiedKey::new(chain, key));
    let mut config = builder(versions)?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(SeCertResolver(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Each connection is a full handshake signed in the secure element (the server does not
    // resume device sessions either).
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// A client configuration without a client certificate (operator API).
pub fn plain_client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>> {
    let mut config = builder(TlsVersions::Any)?.with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
