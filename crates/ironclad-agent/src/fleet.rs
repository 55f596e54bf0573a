//! The fleet simulator: provisions N devices through the PKI (a root and a line CA whose keys
//! live in a secure element, one secure element per device generating its own key, batch
//! issuance from CSRs), enrolls the line CA as a group with proof of possession through the
//! operator API, then authenticates every device concurrently and summarises latencies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ironclad_pki::{
    BatchOptions, CaCertificate, CaIssuer, DeviceProfile, IntermediateCaParams, MemoryIndex, RootCaParams,
    Validity,
};
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::device::{DeviceConnection, ServerEndpoint};
use crate::error::{Error, Result};
use crate::identity::{CERT_OBJECT, CHAIN_OBJECT, DeviceIdentity, KEY_LABEL};
use crate::operator::OperatorClient;

/// What to simulate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetOptions {
    /// Number of devices.
    pub devices: usize,
    /// Devices authenticating at once (default 32).
    pub concurrency: usize,
    /// Product family written into the certificates (default "sim-camera").
    pub family: String,
}

impl FleetOptions {
    /// `devices` devices with the default concurrency and family.
    pub fn new(devices: usize) -> Self {
        FleetOptions { devices, concurrency: 32, family: "sim-camera".into() }
    }
}

/// Which stage a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FleetStage {
    /// Keys, CSRs and certificates.
    Provision,
    /// Group enrollment with proof of possession.
    Enroll,
    /// Mutual TLS + challenge-response per device.
    Authenticate,
}

/// Progress of a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FleetProgress {
    /// The stage.
    pub stage: FleetStage,
    /// Done so far.
    pub done: usize,
    /// Total.
    pub total: usize,
}

/// Progress callback.
pub type ProgressFn = Arc<dyn Fn(FleetProgress) + Send + Sync>;

/// A provisioned fleet: the CAs (keys in a secure element) and every device.
#[derive(Debug)]
pub struct ProvisionedFleet {
    /// Root CA.
    pub root: CaCertificate,
    /// Line (issuing) CA: the group to enroll.
    pub line: CaCertificate,
    ca_se: Arc<dyn SecureElement>,
    /// The devices, each with its own secure element.
    pub devices: Vec<DeviceIdentity>,
}

const LINE_KEY: &str = "line-ca";

impl ProvisionedFleet {
    /// The line CA's key (in the CA secure element).
    pub fn line_key(&self) -> Result<KeyHandle> {
        Ok(KeyHandle::open(self.ca_se.clone(), &Label::new(LINE_KEY)?)?)
    }

    /// A verification certificate for a group enrollment's code, signed by the line CA.
    pub fn verification_certificate_pem(&self, code: &str) -> Result<String> {
        let key = self.line_key()?;
        let issuer = rcgen::Issuer::from_ca_cert_der(&CertificateDer::from(self.line.der()), &key)
            .map_err(|e| Error::Identity(format!("line CA: {e}")))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, code);
        let throwaway = KeyPair::generate().map_err(|e| Error::Identity(e.to_string()))?;
        let cert = params.signed_by(&throwaway, &issuer).map_err(|e| Error::Identity(e.to_string()))?;
        Ok(cert.pem())
    }
}

/// Provisions `count` devices: CA keys and device keys are generated inside (in-memory)
/// secure elements, each device signs its CSR in its element, the line CA issues them in one
/// batch, and each certificate and chain is sealed back into its device. Blocking (CPU).
pub fn provision_fleet(
    count: usize,
    family: &str,
    progress: Option<&ProgressFn>,
) -> Result<ProvisionedFleet> {
    let now = time::OffsetDateTime::now_utc();
    let ca_se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let root_label = Label::new("root-ca")?;
    ca_se.generate_key(&root_label, KeyAlgorithm::EcdsaP256)?;
    let root_key = KeyHandle::open(ca_se.clone(), &root_label)?;
    let root = ironclad_pki::create_root(
        &root_key,
        &RootCaParams::new("Fleet Sim Root CA", "ironclad sim", "US"),
        now,
    )?;
    let line_label = Label::new(LINE_KEY)?;
    ca_se.generate_key(&line_label, KeyAlgorithm::EcdsaP256)?;
    let line_key = KeyHandle::open(ca_se.clone(), &line_label)?;
    let line = ironclad_pki::create_intermediate(
        &CaIssuer::new(&root, &root_key)?,
        &line_key,
        &IntermediateCaParams::new("Fleet Sim Line CA", "ironclad sim", "US"),
        now,
    )?;

    let report = |done| {
        if let Some(p) = progress {
            p(FleetProgress { stage: FleetStage::Provision, done, total: count });
        }
    };
    let auth = Label::new(KEY_LABEL)?;
    let mut ses = Vec::with_capacity(count);
    let mut csrs = Vec::with_capacity(count);
    for i in 0..count {
        let id = format!("sim-{i:06}");
        let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        se.generate_key(&auth, KeyAlgorithm::EcdsaP256)?;
        let key = KeyHandle::open(se.clone(), &auth)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, id.as_str());
        let csr = params.serialize_request(&key).map_err(|e| Error::Identity(format!("CSR: {e}")))?;
        csrs.push((id, csr.der().to_vec()));
        ses.push(se);
        if i % 64 == 0 {
            report(i / 2);
        }
    }
    let profile = DeviceProfile::new("ironclad sim", "US", family, Validity::Years(5))?;
    let issuer = CaIssuer::new(&line, &line_key)?;
    let mut index = MemoryIndex::new();
    let batch = ironclad_pki::issue_batch(
        csrs,
        &issuer,
        &profile,
        &mut index,
        now,
        &BatchOptions::default(),
        &mut |_| {},
    )?;
    if let Some((name, err)) = batch.failed.first() {
        return Err(Error::Identity(format!("issuing {name}: {err}")));
    }
    let chain_pem = format!("{}{}", line.pem(), root.pem());
    let (cert_obj, chain_obj) = (Label::new(CERT_OBJECT)?, Label::new(CHAIN_OBJECT)?);
    let mut devices = Vec::with_capacity(count);
    for (se, record) in ses.into_iter().zip(&batch.issued) {
        se.put_object(&cert_obj, record.pem().as_bytes())?;
        se.put_object(&chain_obj, chain_pem.as_bytes())?;
        devices.push(DeviceIdentity::from_secure_element(se)?);
    }
    report(count);
    Ok(ProvisionedFleet { root, line, ca_se, devices })
}

/// Enrolls the fleet's line CA as a group: begin, sign the verification code with the line
/// CA's key, prove. Returns the enrollment ID.
pub async fn enroll_fleet(operator: &mut OperatorClient, fleet: &ProvisionedFleet) -> Result<String> {
    let pending = operator.enroll_group(&fleet.line.pem(), "fleet simulator line CA").await?;
    let code = pending
        .verification_code
        .ok_or_else(|| Error::Protocol("group enrollment came back without a verification code".into()))?;
    let proof = fleet.verification_certificate_pem(&code)?;
    let done = operator.prove_group(&pending.id, &proof).await?;
    if done.status != "enabled" {
        return Err(Error::Protocol(format!("group enrollment is {} after proof", done.status)));
    }
    Ok(done.id)
}

/// Latencies of a concurrent authentication run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AuthSummary {
    /// Devices attempted.
    pub attempted: usize,
    /// Devices holding a session at the end.
    pub authenticated: usize,
    /// The first failures (device ID, error), at most 10.
    pub failures: Vec<(String, String)>,
    /// Number of failures.
    pub failed: usize,
    /// Wall time of the run, seconds.
    pub wall_secs: f64,
    /// Full authentications (TLS handshake + challenge-response) per second.
    pub auths_per_sec: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Slowest, milliseconds.
    pub max_ms: f64,
}

/// Authenticates every device (fresh connection each), `concurrency` at a time.
pub async fn authenticate_fleet(
    endpoint: &ServerEndpoint,
    devices: &[DeviceIdentity],
    concurrency: usize,
    progress: Option<&ProgressFn>,
) -> AuthSummary {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let done = Arc::new(AtomicUsize::new(0));
    let total = devices.len();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for device in devices.iter().cloned() {
        let (limit, endpoint, done, progress) =
            (limit.clone(), endpoint.clone(), done.clone(), progress.cloned());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let t = Instant::now();
            let id = device.device_id().to_owned();
            let outcome = async {
                let mut conn = DeviceConnection::connect(&endpoint, device).await?;
                conn.authenticate().await?;
                Ok::<_, Error>(())
            }
            .await;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(p) = &progress {
                p(FleetProgress { stage: FleetStage::Authenticate, done: n, total });
            }
            (id, outcome.map(|()| t.elapsed()).map_err(|e| e.to_string()))
        });
    }
    let mut latencies = Vec::with_capacity(total);
    let mut summary = AuthSummary { attempted: total, ..AuthSummary::default() };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(latency))) => latencies.push(latency),
            Ok((id, Err(e))) => {
                summary.failed += 1;
                if summary.failures.len() < 10 {
                    summary.failures.push((id, e));
                }
            }
            Err(e) => {
                summary.failed += 1;
                summary.failures.push(("?".into(), e.to_string()));
            }
        }
    }
    finish(summary, latencies, started)
}

/// Repeated challenge-responses on kept connections: every device connects first (mutual TLS,
/// `concurrency` handshakes at a time, not timed), then each answers `rounds` challenges on its
/// connection, `concurrency` devices at a time. Latencies are per challenge-response (two
/// requests: challenge, answer); connections that fail to open count as failures.
pub async fn reauthenticate_fleet(
    endpoint: &ServerEndpoint,
    devices: &[DeviceIdentity],
    rounds: usize,
    concurrency: usize,
) -> AuthSummary {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut summary = AuthSummary { attempted: devices.len() * rounds, ..AuthSummary::default() };
    let fail = |summary: &mut AuthSummary, id: String, e: String| {
        summary.failed += 1;
        if summary.failures.len() < 10 {
            summary.failures.push((id, e));
        }
    };
    let mut connecting = tokio::task::JoinSet::new();
    for device in devices.iter().cloned() {
        let (limit, endpoint) = (limit.clone(), endpoint.clone());
        connecting.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let id = device.device_id().to_owned();
            (id, DeviceConnection::connect(&endpoint, device).await)
        });
    }
    let mut connections = Vec::with_capacity(devices.len());
    while let Some(joined) = connecting.join_next().await {
        match joined {
            Ok((_, Ok(conn))) => connections.push(conn),
            Ok((id, Err(e))) => fail(&mut summary, id, e.to_string()),
            Err(e) => fail(&mut summary, "?".into(), e.to_string()),
        }
    }

    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for mut conn in connections {
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let id = conn.identity().device_id().to_owned();
            let mut latencies = Vec::with_capacity(rounds);
            let mut outcome = Ok(());
            for _ in 0..rounds {
                let t = Instant::now();
                if let Err(e) = conn.authenticate().await {
                    outcome = Err(e.to_string());
                    break;
                }
                latencies.push(t.elapsed());
            }
            (id, latencies, outcome)
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((id, latencies, outcome)) => {
                all.extend(latencies);
                if let Err(e) = outcome {
                    fail(&mut summary, id, e);
                }
            }
            Err(e) => fail(&mut summary, "?".into(), e.to_string()),
        }
    }
    finish(summary, all, started)
}

fn finish(mut summary: AuthSummary, mut latencies: Vec<Duration>, started: Instant) -> AuthSummary {
    summary.wall_secs = started.elapsed().as_secs_f64();
    summary.authenticated = latencies.len();
    summary.auths_per_sec = latencies.len() as f64 / summary.wall_secs.max(1e-9);
    latencies.sort();
    let pick = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    summary.p50_ms = pick(0.50);
    summary.p99_ms = pick(0.99);
    summary.max_ms = latencies.last().copied().unwrap_or(Duration::ZERO).as_secs_f64() * 1000.0;
    summary
}

/// What [`simulate_fleet`] did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetReport {
    /// Devices simulated.
    pub devices: usize,
    /// Seconds spent provisioning (keys, CSRs, issuance).
    pub provision_secs: f64,
    /// The group enrollment of the line CA.
    pub enrollment_id: String,
    /// The authentication run.
    pub auth: AuthSummary,
}

/// Provisions, enrolls (with `operator_token`, role operator or admin) and authenticates
/// `options.devices` devices against the server at `endpoint`.
pub async fn simulate_fleet(
    endpoint: &ServerEndpoint,
    operator_token: &str,
    options: &FleetOptions,
    progress: Option<ProgressFn>,
) -> Result<FleetReport> {
    if options.devices == 0 {
        return Err(Error::Config("at least one device".into()));
    }
    let started = Instant::now();
    let (n, family, p) = (options.devices, options.family.clone(), progress.clone());
    let fleet = tokio::task::spawn_blocking(move || provision_fleet(n, &family, p.as_ref()))
        .await
        .map_err(|e| Error::Config(format!("provisioning task: {e}")))??;
    let provision_secs = started.elapsed().as_secs_f64();
    if let Some(p) = &progress {
        p(FleetProgress { stage: FleetStage::Enroll, done: 0, total: 1 });
    }
    let mut operator = OperatorClient::connect(endpoint, operator_token).await?;
    let enrollment_id = enroll_fleet(&mut operator, &fleet).await?;
    if let Some(p) = &progress {
        p(FleetProgress { stage: FleetStage::Enroll, done: 1, total: 1 });
    }
    let auth = authenticate_fleet(endpoint, &fleet.devices, options.concurrency, progress.as_ref()).await;
    Ok(FleetReport { devices: n, provision_secs, enrollment_id, auth })
}
