//! The server's TLS side: its identity, the rustls configuration (TLS 1.3 and 1.2 with the
//! extended master secret, client certificates requested and verified against the trusted
//! CAs), and what a finished handshake tells the HTTP handlers ([`ConnectionInfo`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ironclad_proto::{EXPORTER_LABEL, EXPORTER_LEN, ExporterValue};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::{ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};
use crate::trust::{VerifiedChain, sha256};

/// The server's certificate chain and private key.
pub struct ServerIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity").field("certificates", &self.chain.len()).finish_non_exhaustive()
    }
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        ServerIdentity { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

impl ServerIdentity {
    /// From PEM text: the certificate chain (leaf first) and the private key.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Config(format!("server certificate PEM: {e}")))?;
        if chain.is_empty() {
            return Err(Error::Config("no certificate in the server certificate PEM".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| Error::Config(format!("server private key PEM: {e}")))?;
        Ok(ServerIdentity { chain, key })
    }

    /// From PEM files.
    pub fn from_pem_files(chain: &Path, key: &Path) -> Result<Self> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| Error::Config(format!("{}: {e}", p.display())));
        Self::from_pem(&read(chain)?, &read(key)?)
    }

    /// A fresh CA and a server certificate for `names` (DNS names or IP addresses) signed by
    /// it, for demos and tests. Returns the identity and the CA certificate (PEM) clients must
    /// trust.
    pub fn generate(names: &[&str]) -> Result<(Self, String)> {
        let fail = |e: rcgen::Error| Error::Config(format!("generating the server certificate: {e}"));
        let ca_key = KeyPair::generate().map_err(fail)?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params.distinguished_name.push(DnType::CommonName, "ironclad server CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(fail)?;
        let issuer = rcgen::Issuer::new(ca_params, &ca_key);
        let key = KeyPair::generate().map_err(fail)?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).map_err(fail)?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "ironclad server");
        let cert = params.signed_by(&key, &issuer).map_err(fail)?;
        let identity = ServerIdentity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        };
        Ok((identity, ca_cert.pem()))
    }

    /// The certificate chain.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
}

/// aws-lc-rs with AES-128-GCM first: its key schedule and PRF run on SHA-256, which the CPU
/// accelerates, where AES-256-GCM's SHA-384 runs in software (a full handshake spends about
/// 5% of its time there). Mozilla's recommended server configuration orders them the same way.
pub(crate) fn crypto_provider() -> CryptoProvider {
    use rustls::CipherSuite as S;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    let first = [
        S::TLS13_AES_128_GCM_SHA256,
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];
    provider.cipher_suites.sort_by_key(|s| !first.contains(&s.suite()));
    provider
}

/// The rustls server configuration.
pub(crate) fn server_config(
    identity: &ServerIdentity,
    verifier: Arc<dyn ClientCertVerifier>,
    tls12: bool,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<ServerConfig>> {
    let versions: &[&rustls::SupportedProtocolVersion] =
        if tls12 { &[&rustls::version::TLS13, &rustls::version::TLS12] } else { &[&rustls::version::TLS13] };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| Error::Tls(e.to_string()))?;
    // Without the extended master secret a TLS 1.2 exporter is not unique to one session
    // (triple handshake), and the challenge binding would not hold.
    config.require_ems = true;
    // No resumption: every connection's handshake is signed by the device's key (in its
    // secure element), and no session state or tickets are kept or sent for nothing.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.ignore_client_order = true;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What the TLS handshake established, handed to every HTTP handler of the connection as a
/// request extension (`axum::Extension<ConnectionInfo>`).
#[derive(Clone, Debug)]
pub struct ConnectionInfo(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    peer: Option<Vec<CertificateDer<'static>>>,
    leaf_sha256: Option<[u8; 32]>,
    exporter: ExporterValue,
    remote: SocketAddr,
    version: Option<rustls::ProtocolVersion>,
    /// The chain verification of this connection's certificate, with the trust generation it
    /// was made under: kept connections skip re-verifying the chain (revocation and
    /// enrollment are still looked up on every request).
    verified: std::sync::Mutex<Option<(u64, VerifiedChain)>>,
}

impl ConnectionInfo {
    pub(crate) fn from_connection(conn: &ServerConnection, remote: SocketAddr) -> Result<Self> {
        let peer: Option<Vec<CertificateDer<'static>>> = conn
            .peer_certificates()
            .filter(|c| !c.is_empty())
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect());
        let exporter = conn
            .export_keying_material([0u8; EXPORTER_LEN], EXPORTER_LABEL, None)
            .map_err(|e| Error::Tls(format!("exporter: {e}")))?;
        Ok(ConnectionInfo(Arc::new(Inner {
            leaf_sha256: peer.as_ref().map(|c| sha256(&c[0])),
            peer,
            exporter: ExporterValue::from(exporter),
            remote,
            version: conn.protocol_version(),
            verified: std::sync::Mutex::new(None),
        })))
    }

    pub(crate) fn cached_chain(&self, generation: u64) -> Option<VerifiedChain> {
        let cache = self.0.verified.lock().unwrap_or_else(|p| p.into_inner());
        cache.as_ref().filter(|(g, _)| *g == generation).map(|(_, v)| v.clone())
    }

    pub(crate) fn cache_chain(&self, generation: u64, chain: VerifiedChain) {
        *self.0.verified.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, chain));
    }

    /// The client's certificate chain (leaf first) as sent in the handshake and verified by
    /// rustls against the trusted CAs; `None` when the client sent none.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.0.peer.as_deref()
    }

    /// SHA-256 of the client's leaf certificate.
    pub fn leaf_sha256(&self) -> Option<[u8; 32]> {
        self.0.leaf_sha256
    }

    /// The connection's exporter value ([`EXPORTER_LABEL`], no context, 32 bytes).
    pub fn exporter(&self) -> &ExporterValue {
        &self.0.exporter
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.0.remote
    }

    /// "TLSv1.3" or "TLSv1.2".
    pub fn protocol_version(&self) -> Option<String> {
        self.0.version.map(|v| format!("{v:?}").replace("_", "."))
    }
}
