//! Shared fixtures: a real PKI (ironclad-pki), devices whose keys live in secure elements, and
//! a server on a loopback port with a manual clock.

use std::sync::{Arc, Mutex};

use ironclad_agent::{DeviceConnection, DeviceIdentity, ServerEndpoint, TlsVersions};
use ironclad_pki::{
    CaCertificate, CaIssuer, DeviceProfile, IntermediateCaParams, IssueOutcome, IssuedRecord, KeyPair,
    Limits, MemoryIndex, RootCaParams, Validity,
};
use ironclad_proto::ErrorCode;
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement};
use ironclad_server::store::{AuditEntry, SqliteStore, Store};
use ironclad_server::{ManualClock, Role, RunningServer, Server, ServerConfig, ServerIdentity};

pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// A root, and line CAs under it, with rcgen keys.
pub struct TestPki {
    pub root_key: KeyPair,
    pub root: CaCertificate,
    pub lines: Vec<(KeyPair, CaCertificate)>,
    index: Mutex<MemoryIndex>,
}

impl TestPki {
    pub fn new(name: &str, lines: usize) -> Self {
        let root_key = KeyPair::generate().unwrap();
        let root = ironclad_pki::create_root(
            &root_key,
            &RootCaParams::new(&format!("{name} Root"), "Acme", "DE"),
            now(),
        )
        .unwrap();
        let lines = (0..lines)
            .map(|i| {
                let key = KeyPair::generate().unwrap();
                let params = IntermediateCaParams::new(&format!("{name} Line {i}"), "Acme", "DE");
                let cert = ironclad_pki::create_intermediate(
                    &CaIssuer::new(&root, &root_key).unwrap(),
                    &key,
                    &params,
                    now(),
                )
                .unwrap();
                (key, cert)
            })
            .collect();
        TestPki { root_key, root, lines, index: Mutex::new(MemoryIndex::new()) }
    }

    pub fn line(&self, i: usize) -> &CaCertificate {
        &self.lines[i].1
    }

    /// Issues a certificate for a CSR signed by `signer` (any rcgen key).
    pub fn issue(&self, line: usize, signer: &dyn rcgen::SigningKey, device_id: &str) -> IssuedRecord {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, device_id);
        let csr = params.serialize_request(&signer).unwrap().der().to_vec();
        let (key, cert) = &self.lines[line];
        let profile = DeviceProfile::new("Acme", "DE", "camera", Validity::Years(5)).unwrap();
        let mut index = self.index.lock().unwrap();
        match ironclad_pki::issue_one(
            &csr,
            &CaIssuer::new(cert, key).unwrap(),
            &profile,
            &mut *index,
            &Limits::default(),
            now(),
        )
        .unwrap()
        {
            IssueOutcome::Issued(r) => r,
            other => panic!("{other:?}"),
        }
    }

    /// A device whose key is generated inside its own (in-memory) secure element, with its
    /// certificate and chain sealed there as the demo and factory do.
    pub fn device(&self, line: usize, device_id: &str) -> TestDevice {
        let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let label = Label::new(ironclad_agent::KEY_LABEL).unwrap();
        se.generate_key(&label, KeyAlgorithm::EcdsaP256).unwrap();
        let key = KeyHandle::open(se.clone(), &label).unwrap();
        let record = self.issue(line, &key, device_id);
        let chain = format!("{}{}", self.line(line).pem(), self.root.pem());
        se.put_object(&Label::new(ironclad_agent::CERT_OBJECT).unwrap(), record.pem().as_bytes()).unwrap();
        se.put_object(&Label::new(ironclad_agent::CHAIN_OBJECT).unwrap(), chain.as_bytes()).unwrap();
        let identity = DeviceIdentity::from_secure_element(se).unwrap();
        TestDevice { identity, record }
    }
}

pub struct TestDevice {
    pub identity: DeviceIdentity,
    pub record: IssuedRecord,
}

pub struct TestServer {
    pub server: RunningServer,
    pub clock: Arc<ManualClock>,
    pub ca_pem: String,
    pub store: Arc<dyn Store>,
    pub tls: TlsVersions,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server on SQLite in a temp dir.
    pub async fn start() -> Self {
        Self::start_with(|b| b).await
    }

    pub async fn start_with(
        f: impl FnOnce(ironclad_server::ServerBuilder) -> ironclad_server::ServerBuilder,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("registry.sqlite")).unwrap());
        Self::start_on(store, Some(dir), f).await
    }

    pub async fn start_on(
        store: Arc<dyn Store>,
        dir: Option<tempfile::TempDir>,
        f: impl FnOnce(ironclad_server::ServerBuilder) -> ironclad_server::ServerBuilder,
    ) -> Self {
        let (identity, ca_pem) = ServerIdentity::generate(&["localhost", "127.0.0.1"]).unwrap();
        let clock = Arc::new(ManualClock::new());
        let mut config = ServerConfig::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        let builder = Server::builder(config).identity(identity).store(store.clone()).clock(clock.clone());
        let server = f(builder).bind().await.unwrap();
        TestServer { server, clock, ca_pem, store, tls: TlsVersions::Any, _dir: dir }
    }

    /// A server on SQLite in a temp dir with `config` (its listen address set to loopback).
    pub async fn start_config(
        mut config: ServerConfig,
        f: impl FnOnce(ironclad_server::ServerBuilder) -> ironclad_server::ServerBuilder,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("registry.sqlite")).unwrap());
        let (identity, ca_pem) = ServerIdentity::generate(&["localhost", "127.0.0.1"]).unwrap();
        let clock = Arc::new(ManualClock::new());
        config.listen = "127.0.0.1:0".parse().unwrap();
        let builder = Server::builder(config).identity(identity).store(store.clone()).clock(clock.clone());
        let server = f(builder).bind().await.unwrap();
        TestServer { server, clock, ca_pem, store, tls: TlsVersions::Any, _dir: Some(dir) }
    }

    pub fn endpoint(&self) -> ServerEndpoint {
        let mut e =
            ServerEndpoint::new(self.server.local_addr(), "localhost", self.ca_pem.as_bytes()).unwrap();
        e.tls = self.tls;
        e
    }

    pub async fn connect(&self, device: &TestDevice) -> DeviceConnection {
        DeviceConnection::connect(&self.endpoint(), device.identity.clone()).await.unwrap()
    }

    /// Enrolls line `line` of `pki` as a group with proof of possession; returns its ID.
    pub async fn enroll_line(&self, pki: &TestPki, line: usize) -> String {
        let reg = self.server.registry();
        let pending = reg.begin_group(pki.line(line).der(), "line").await.unwrap();
        let code = pending.verification_code.clone().unwrap();
        let proof =
            ironclad_server::make_verification_certificate(pki.line(line).der(), &pki.lines[line].0, &code)
                .unwrap();
        reg.prove_group(&pending.id, &proof).await.unwrap();
        pending.id
    }

    pub async fn admin_token(&self) -> String {
        self.server.registry().create_api_token("admin", Role::Admin).await.unwrap().secret.to_string()
    }

    /// Refusal reasons recorded for `device_id`, newest first.
    pub async fn reasons(&self, device_id: &str) -> Vec<String> {
        self.store
            .audit(50, Some(device_id))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| e.record.reason)
            .collect()
    }

    pub async fn audit(&self) -> Vec<AuditEntry> {
        self.store.audit(100, None).await.unwrap()
    }
}

/// Asserts the error is the coarse wire `AuthFailed`.
#[track_caller]
pub fn assert_auth_failed<T: std::fmt::Debug>(r: Result<T, ironclad_agent::Error>) {
    match r {
        Err(e) => assert_eq!(e.wire_code(), Some(ErrorCode::AuthFailed), "{e}"),
        Ok(v) => panic!("expected AuthFailed, got {v:?}"),
    }
}
