//! The set of CA certificates the server trusts for device chains: the CAs of group enrollments
//! whose proof of possession is done (enabled or disabled: a disabled group must still be
//! recognised, to refuse its devices with a precise reason) plus the configured anchors.
//!
//! One immutable [`TrustSet`] snapshot serves the TLS handshake and the device endpoints: both
//! verify chains with [`ironclad_pki::ChainVerifier`] (webpki, clientAuth, the device profile),
//! and a chain verified during the handshake is not verified again by the first request.
//! Enrollment changes and a periodic refresh swap in a new snapshot when the anchors changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use ironclad_pki::danger::SkipRevocationCheck;
use ironclad_pki::{ChainVerifier, RevocationCheck, VerifiedDevice};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::Result;
use crate::store::{CrlKey, Store};

/// SHA-256.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Key identifiers of a CA certificate, to walk a chain upwards.
#[derive(Clone, Debug)]
struct CaLink {
    ski: Option<Vec<u8>>,
    aki: Option<Vec<u8>>,
    self_issued: bool,
    /// Serial as the registry spells it: what a CRL of the CA above names it by.
    serial: String,
}

fn ca_link(der: &[u8]) -> Option<CaLink> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut link = CaLink {
        ski: None,
        aki: None,
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        serial: ironclad_pki::normalize_serial(&hex::encode(cert.raw_serial())).ok()?,
    };
    for e in cert.iter_extensions() {
        match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => link.ski = Some(id.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                link.aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            _ => {}
        }
    }
    Some(link)
}

/// A verified device and the CAs above it, nearest first (their SHA-256s): the order in which
/// group enrollments are looked up. `crl_keys` names each certificate of the chain as a CRL of
/// its issuer would (the device by its CA, each CA by the one above it).
#[derive(Clone, Debug)]
pub(crate) struct VerifiedChain {
    pub(crate) device: VerifiedDevice,
    pub(crate) ca_path: Vec<[u8; 32]>,
    pub(crate) crl_keys: Vec<CrlKey>,
}

/// Most verified chains one snapshot remembers (about 1 KiB each); the memory is cleared when
/// full.
const VERIFIED_CACHE: usize = 16_384;

/// One snapshot of the trusted CAs.
pub(crate) struct TrustSet {
    /// Distinguishes snapshots: a chain verified under one is re-verified under the next.
    generation: u64,
    /// SHA-256 of every configured and enrolled CA offered to [`TrustSet::build`], sorted: a
    /// refresh that finds the same set keeps this snapshot.
    offered: Vec<[u8; 32]>,
    anchors: Vec<Vec<u8>>,
    links: HashMap<[u8; 32], CaLink>,
    verifier: Option<ChainVerifier>,
    /// Chains verified under this snapshot, by SHA-256 over the presented certificates: the
    /// handshake's verification serves the connection's first request, and a device that
    /// reconnects is not verified again.
    verified: Mutex<HashMap<[u8; 32], VerifiedChain>>,
}

impl std::fmt::Debug for TrustSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustSet").field("anchors", &self.anchors.len()).finish_non_exhaustive()
    }
}

impl TrustSet {
    fn build(anchors: Vec<Vec<u8>>) -> Result<Self> {
        let offered = offered(&anchors);
        let mut links = HashMap::new();
        let mut usable = Vec::new();
        for der in anchors {
            let fp = sha256(&der);
            if links.contains_key(&fp) {
                continue;
            }
            let Some(link) = ca_link(&der) else {
                tracing::warn!("skipping an unparseable trusted CA certificate {}", hex::encode(fp));
                continue;
            };
            // One at a time, so one bad certificate does not take the others down.
            if let Err(e) = ChainVerifier::new([&der], std::iter::empty::<&[u8]>()) {
                tracing::warn!("skipping a trusted CA certificate webpki refuses {}: {e}", hex::encode(fp));
                continue;
            }
            links.insert(fp, link);
            usable.push(der);
        }
        let verifier = if usable.is_empty() {
            None
        } else {
            Some(ChainVerifier::new(usable.iter(), std::iter::empty::<&[u8]>())?)
        };
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(TrustSet {
            generation,
            offered,
            anchors: usable,
            links,
            verifier,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// [`TrustSet::verify`] without revocation (the registry's, checked on every request),
    /// remembered: a chain presented again under this snapshot is not verified again while it
    /// is within its validity.
    pub(crate) fn verify_remembered(
        &self,
        chain: &[CertificateDer<'_>],
        now: OffsetDateTime,
    ) -> std::result::Result<VerifiedChain, ironclad_pki::Error> {
        let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for cert in chain {
            hasher.update(&(cert.len() as u64).to_be_bytes());
            hasher.update(cert);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(hasher.finish().as_ref());
        let remembered = self.verified.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        if let Some(v) = remembered.filter(|v| now <= v.device.not_after()) {
            return Ok(v);
        }
        let v = self.verify(chain, now, &SkipRevocationCheck)?;
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= VERIFIED_CACHE {
            cache.clear();
        }
        cache.insert(key, v.clone());
        Ok(v)
    }

    /// This snapshot's generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Verifies a presented chain (leaf first) at `now`; intermediates the client sent that are
    /// not anchors are used for path building only.
    pub(crate) fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        now: OffsetDateTime,
        revocation: &dyn RevocationCheck,
    ) -> std::result::Result<VerifiedChain, ironclad_pki::Error> {
        let leaf = chain.first().ok_or(ironclad_pki::Error::UnknownIssuer)?;
        let extras: Vec<&CertificateDer<'_>> =
            chain[1..].iter().filter(|c| !self.links.contains_key(&sha256(c))).collect();
        let verifier = self.verifier.as_ref().ok_or(ironclad_pki::Error::UnknownIssuer)?;
        let device = match verifier.verify_device(leaf, now, revocation) {
            Err(ironclad_pki::Error::UnknownIssuer) if !extras.is_empty() => {
                let with_extras = ChainVerifier::new(self.anchors.iter(), extras.iter().map(|c| c.as_ref()))?;
                with_extras.verify_device(leaf, now, revocation)?
            }
            other => other?,
        };
        let mut known = self.links.clone();
        for c in &extras {
            if let Some(link) = ca_link(c) {
                known.insert(sha256(c), link);
            }
        }
        let mut ca_path = Vec::new();
        let mut current = [0u8; 32];
        hex::decode_to_slice(device.issuer_fingerprint(), &mut current)
            .map_err(|_| ironclad_pki::Error::UnknownIssuer)?;
        while ca_path.len() < 8 && !ca_path.contains(&current) {
            ca_path.push(current);
            let Some(link) = known.get(&current) else { break };
            if link.self_issued {
                break;
            }
            let Some(aki) = &link.aki else { break };
            match known.iter().find(|(fp, l)| **fp != current && l.ski.as_ref() == Some(aki)) {
                Some((fp, _)) => current = *fp,
                None => break,
            }
        }
        let mut crl_keys = vec![CrlKey { issuer: ca_path[0], serial: device.serial().to_owned() }];
        for pair in ca_path.windows(2) {
            if let Some(link) = known.get(&pair[0]) {
                crl_keys.push(CrlKey { issuer: pair[1], serial: link.serial.clone() });
            }
        }
        Ok(VerifiedChain { device, ca_path, crl_keys })
    }
}

/// The live trust set, swapped atomically.
#[derive(Debug)]
pub(crate) struct Trust {
    current: RwLock<Arc<TrustSet>>,
    configured: Vec<Vec<u8>>,
    provider: Arc<CryptoProvider>,
}

impl Trust {
    pub(crate) fn new(configured: Vec<Vec<u8>>, provider: Arc<CryptoProvider>) -> Result<Self> {
        let set = TrustSet::build(configured.clone())?;
        Ok(Trust { current: RwLock::new(Arc::new(set)), configured, provider })
    }

    pub(crate) fn snapshot(&self) -> Arc<TrustSet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads the group CAs from `store`; the snapshot (and what it remembers) is kept when
    /// they did not change.
    pub(crate) async fn refresh(&self, store: &dyn Store) -> Result<()> {
        let mut anchors = self.configured.clone();
        anchors.extend(store.trusted_group_cas().await?.into_iter().filter_map(|e| e.der));
        if self.snapshot().offered == offered(&anchors) {
            return Ok(());
        }
        let set = TrustSet::build(anchors)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
        Ok(())
    }
}

fn offered(anchors: &[Vec<u8>]) -> Vec<[u8; 32]> {
    let mut fps: Vec<[u8; 32]> = anchors.iter().map(|der| sha256(der)).collect();
    fps.sort_unstable();
    fps.dedup();
    fps
}

/// A PKI verification failure as rustls reports it (the accept loop audits
/// `InvalidCertificate` as `client_certificate_invalid`).
fn tls_error(e: ironclad_pki::Error) -> rustls::Error {
    let c = match e {
        ironclad_pki::Error::UnknownIssuer => CertificateError::UnknownIssuer,
        ironclad_pki::Error::Expired { .. } => CertificateError::Expired,
        ironclad_pki::Error::NotYetValid { .. } => CertificateError::NotValidYet,
        ironclad_pki::Error::CertSignatureInvalid => CertificateError::BadSignature,
        other => CertificateError::Other(rustls::OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(c)
}

/// The rustls client-certificate verifier: asks every client for a certificate, admits
/// clients without one (operator API, health check; device endpoints then refuse them), and
/// verifies presented chains against the current [`TrustSet`] (remembering the result for the
/// connection's requests).
#[derive(Debug)]
pub(crate) struct EnrolledCaVerifier(pub(crate) Arc<Trust>);

impl ClientCertVerifier for EnrolledCaVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: a device sends the one certificate it has.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let now = i64::try_from(now.as_secs())
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or(rustls::Error::FailedToGetCurrentTime)?;
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.clone());
        chain.extend(intermediates.iter().cloned());
        self.0.snapshot().verify_remembered(&chain, now).map_err(tls_error)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.provider.signature_verification_algorithms.supported_schemes()
    }
}
