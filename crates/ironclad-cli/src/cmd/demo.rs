//! `ironclad demo`: the chain of trust end to end on one machine, no set-up.
//!
//! Stages so far: a key ceremony (offline root with a 3-of-5 backup, a line CA, a signed
//! transcript, a recovery drill); a production order signed by the root; the factory station
//! provisioning the fleet (keys made in each device's secure element, CSRs, batch issuance,
//! certificates sealed back, audit); over-production refused; chain verification of every
//! device; a revoked device and an impostor refused; a firmware release mastered, encrypted and
//! re-wrapped per device, and simulated devices booted through update, trial, confirm, a refused
//! downgrade and a revert. Then the cloud: an in-process server
//! (SQLite in the demo directory, loopback, mutual TLS), the line CA enrolled as a group with
//! proof of possession, every device authenticating from its own secure element, a phone pairing
//! with one device (setup code, device certificate, pair-verify) and delegating cloud access to
//! it over that channel (`demo_pairing`), and the revoked device and the impostor refused at the
//! cloud, with the reasons in its audit log; a camera's stream encrypted with its key from the
//! cloud vault and decrypted by its owner; OTA to 1.1.0 in stages (`demo_ota`: 10 % then 100 %,
//! each device its own re-wrapped copy, a corrupted download refused and fetched again, a
//! downgrade refused); a signed command run once and its replay refused;
//! encrypted logs uploaded and read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ironclad_agent::{
    DeviceConnection, DeviceIdentity, Error as AgentError, ServerEndpoint, authenticate_fleet,
    parse_pem_chain,
};
use ironclad_factory::{ProductionOrder, QuotaLedger, SignedOrder};
use ironclad_pki::shamir::{self, Share};
use ironclad_pki::{
    CaCertificate, CaIssuer, ChainVerifier, IssuedIndex, PublicKeyData, RevocationReason, RootCaParams,
};
use ironclad_proto::ErrorCode;
use ironclad_se::{DirSe, KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement, Unlock};
use ironclad_server::store::EnrollmentStatus;
use ironclad_server::{
    RunningServer, Server, ServerConfig, ServerIdentity, StorageConfig, make_verification_certificate,
};
use rayon::prelude::*;
use serde::Serialize;

use super::ceremony_run::perform;
use super::se_csr::device_csr_pem;
use crate::ceremony::Script;
use crate::output::{print_json, table};
use crate::pki_dir::PkiDir;
use crate::secrets::CaKeyArgs;
use crate::station::{Device, DeviceRecord, DeviceStores, Station};

/// Run the whole chain of trust on this machine, from key ceremony to cloud authentication.
///
/// PKI, device identities, verification, and the cloud admitting the fleet: a server on a
/// loopback port, the family enrolled, every device authenticated by mutual TLS and a
/// challenge signed in its secure element.
///
/// Everything happens in a temporary directory (or --dir, kept for inspection with the other
/// commands, e.g. `ironclad cert show <dir>/devices/dev-0000001/cert.pem`; the cloud's
/// registry is <dir>/cloud/registry.sqlite).
///
/// Example:
///   ironclad demo --devices 100
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct DemoArgs {
    /// Number of simulated devices.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Keep the demo's files in this directory (must not exist) instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the stage table as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct StageResult {
    stage: &'static str,
    passed: bool,
    millis: u128,
    detail: String,
}

struct Stages {
    results: Vec<StageResult>,
    quiet: bool,
}

impl Stages {
    fn run<T>(&mut self, stage: &'static str, f: impl FnOnce() -> Result<(T, String)>) -> Result<T> {
        if !self.quiet {
            eprintln!("==> {stage}");
        }
        let started = Instant::now();
        let outcome = f();
        let millis = started.elapsed().as_millis();
        match outcome {
            Ok((value, detail)) => {
                self.results.push(StageResult { stage, passed: true, millis, detail });
                Ok(value)
            }
            Err(err) => {
                self.results.push(StageResult { stage, passed: false, millis, detail: format!("{err:#}") });
                Err(err)
            }
        }
    }
}

pub(crate) fn run(args: DemoArgs) -> Result<()> {
    ensure!(args.devices > 0, "--devices must be at least 1");
    let temp;
    let base = match &args.dir {
        Some(dir) => {
            ensure!(!dir.exists(), "{} exists; --dir must name a new directory", dir.display());
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new().prefix("ironclad-demo-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let mut stages = Stages { results: Vec::new(), quiet: args.json };
    let started = Instant::now();
    let outcome = run_stages(&mut stages, &base, args.devices);
    let total = started.elapsed();

    if args.json {
        print_json(&serde_json::json!({
            "devices": args.devices, "dir": args.dir, "total_millis": total.as_millis(), "stages": stages.results,
            "passed": outcome.is_ok(),
        }))?;
    } else {
        print_table(&stages.results, total);
    }
    outcome
}

fn print_table(results: &[StageResult], total: Duration) {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                r.stage.to_owned(),
                if r.passed { "pass".into() } else { "FAIL".into() },
                format!("{:.2}s", r.millis as f64 / 1000.0),
                r.detail.clone(),
            ]
        })
        .collect();
    println!("\n{}", table(&["STAGE", "RESULT", "TIME", "DETAIL"], &rows));
    println!("\ntotal {:.2}s", total.as_secs_f64());
}

/// The demo's ceremony: an offline root with a 3-of-5 backup and one line CA.
const CEREMONY: &str = r#"
[ceremony]
name = "ironclad demo root ceremony"
participants = ["security officer", "witness 1", "witness 2"]

[root]
cn = "ironclad Demo Root CA"
org = "ironclad demo"
country = "US"
years = 25
generation = "offline-backup"

[backup]
threshold = 3
holders = ["holder-1", "holder-2", "holder-3", "holder-4", "holder-5"]

[[intermediate]]
name = "line-1"
cn = "ironclad Demo Line 1 CA"
family = "demo-camera"
years = 5
device_validity = "30y"
"#;

fn run_stages(stages: &mut Stages, base: &std::path::Path, device_count: usize) -> Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let pki_path = base.join("pki");
    let line = "line-1";

    // The CA key store is protected by a passphrase through Argon2id, as in production; the
    // demo makes up a random one and never prints it.
    let mut secret = [0u8; 24];
    aws_lc_rs::rand::fill(&mut secret).map_err(|_| anyhow::anyhow!("system RNG failed"))?;
    let passphrase = Unlock::passphrase(hex::encode(secret));

    let (pki, ca_keys, root_cert) = stages.run("key ceremony", || {
        let script = Script::parse(CEREMONY)?;
        let shares_dir = base.join("shares");
        let outcome =
            perform(CEREMONY, &script, &pki_path, &shares_dir, &CaKeyArgs::default(), Some(&passphrase))?;
        let spki = outcome.transcript.verify()?;
        // Recovery drill: three of the five holders rebuild the root key.
        let shares = ["share-1-holder_1.txt", "share-3-holder_3.txt", "share-5-holder_5.txt"]
            .iter()
            .enumerate()
            .map(|(i, f)| Ok(Share::from_text(&std::fs::read_to_string(shares_dir.join(f))?, i + 1)?))
            .collect::<Result<Vec<_>>>()?;
        let rebuilt = shamir::combine(&shares)?;
        let probe: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let label = Label::new("drill")?;
        probe.import_key(&label, KeyAlgorithm::EcdsaP256, &rebuilt)?;
        ensure!(KeyHandle::open(probe, &label)?.subject_public_key_info() == spki, "recovery drill failed");
        let pki = PkiDir::open(&pki_path)?;
        let se: Arc<dyn SecureElement> = Arc::new(DirSe::open(pki.keys_dir(), &passphrase)?);
        let detail = format!(
            "offline root, 3-of-5 backup, {}-step transcript signed by the root; shares 1,3,5 rebuild it",
            outcome.transcript.entries.len()
        );
        Ok(((pki, se, outcome.root), detail))
    })?;
    let line_cert = pki.ca_cert(line)?;
    let profile = pki.ca_profile(line)?.to_profile()?;
    let line_key = PkiDir::signer(&ca_keys, &PkiDir::ca_key_label(line)?)?;

    let authorised = device_count as u64 + 5;
    let order = stages.run("production order", || {
        let root_key = PkiDir::signer(&ca_keys, &pki.root_key_label()?)?;
        let rfc = &time::format_description::well_known::Rfc3339;
        let order = ProductionOrder {
            id: "PO-DEMO-1".into(),
            product: "demo-camera".into(),
            line_ca_sha256: line_cert.sha256_fingerprint(),
            max_count: authorised,
            not_before: now.format(rfc)?,
            not_after: (now + time::Duration::days(1)).format(rfc)?,
        };
        let signed = SignedOrder::from_json(&SignedOrder::sign(order, &root_key)?.to_json())?;
        let verified = signed.verify(&[root_cert.spki_der()], &line_cert.sha256_fingerprint(), now)?;
        Ok((verified, format!("PO-DEMO-1: {authorised} demo-camera units on line-1, signed by the root")))
    })?;

    let devices_dir = base.join("devices");
    let quiet = stages.quiet;
    let mut index = pki.open_index()?;
    std::fs::create_dir_all(pki.path().join("factory"))?;
    let mut ledger = QuotaLedger::open(pki.path().join("factory/ledger.sqlite"))?;
    ledger.register(&order)?;
    let station = Station {
        order: &order,
        line_cert: &line_cert,
        root_cert: &root_cert,
        line_key: &line_key,
        ca_keys: &ca_keys,
        profile: &profile,
        stores: DeviceStores::Directory(devices_dir.clone()),
    };
    let (records, devices) = stages.run("factory provisioning", || {
        let bar = bar(device_count as u64, quiet);
        let started = Instant::now();
        let made = station.provision(&mut ledger, &mut index, device_count as u64, &|n| bar.inc(n))?;
        bar.finish_and_clear();
        ensure!(made.0.len() == device_count, "provisioned {} of {device_count}", made.0.len());
        let rate = device_count as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let detail = format!(
            "{device_count} devices ({rate:.0}/s): P-256 auth + X25519 firmware key + app secret made in each SE, certificate sealed back"
        );
        Ok((made, detail))
    })?;

    stages.run("over-production refused", || {
        let (extra, _) = station.provision(&mut ledger, &mut index, 100, &|_| {})?;
        ensure!(extra.len() == 5, "the order had 5 units left, {} were made", extra.len());
        match station.provision(&mut ledger, &mut index, 1, &|_| {}) {
            Ok(_) => bail!("a device was made past the order's count"),
            Err(err) => {
                let audited = ledger.verify_audit()?;
                Ok(((), format!("{authorised} of {authorised} used; one more refused: {}; {audited} audit rows intact", root_cause(&err))))
            }
        }
    })?;

    let verifier = ChainVerifier::new([root_cert.der()], [line_cert.der()])?;
    // Verifiers run on every core; the index connection is shared behind a lock.
    let shared_index = SharedIndex(Mutex::new(index));
    stages.run("chain verification", || {
        let cert_label = Label::new("device-cert")?;
        devices
            .par_iter()
            .map(|device| -> Result<()> {
                let pem_bytes = device.se.get_object(&cert_label)?;
                let der = pem::parse(pem_bytes.as_slice())?.into_contents();
                let identity = verifier
                    .verify_device(&der, time::OffsetDateTime::now_utc(), &shared_index)
                    .with_context(|| format!("device {}", device.id))?;
                ensure!(identity.device_id() == device.id, "identity mismatch for {}", device.id);
                ensure!(identity.family() == Some("demo-camera"), "family missing for {}", device.id);
                Ok(())
            })
            .collect::<Result<Vec<()>>>()?;
        Ok(((), format!("{} devices: root → line-1 → device, clientAuth, not revoked", devices.len())))
    })?;

    let index = shared_index.0.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut index = index;
    stages.run("revoked device refused", || {
        let victim = &records[0];
        index.revoke(&victim.serial, RevocationReason::KeyCompromise, time::OffsetDateTime::now_utc())?;
        let der = pem::parse(victim.certificate_pem.as_bytes())?.into_contents();
        match verifier.verify_device(&der, time::OffsetDateTime::now_utc(), &index) {
            Ok(_) => bail!("a revoked certificate was accepted"),
            Err(err) => Ok(((), format!("{}: {err}", victim.device_id))),
        }
    })?;

    let impostor = stages.run("impostor refused", || {
        // A look-alike CA with the same names but its own key: what a cloner would build.
        let rogue_se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let label = Label::new("rogue")?;
        rogue_se.generate_key(&label, KeyAlgorithm::EcdsaP256)?;
        let rogue_key = KeyHandle::open(rogue_se.clone(), &label)?;
        let params = RootCaParams::new("ironclad Demo Root CA", "ironclad demo", "US");
        let rogue_root = ironclad_pki::create_root(&rogue_key, &params, now)?;
        let rogue = CaIssuer::new(&rogue_root, &rogue_key)?;
        let dev_label = Label::new("impostor")?;
        rogue_se.generate_key(&dev_label, KeyAlgorithm::EcdsaP256)?;
        let csr = device_csr_pem(&KeyHandle::open(rogue_se.clone(), &dev_label)?, &records[1].device_id)?;
        let mut rogue_index = ironclad_pki::MemoryIndex::new();
        let forged = ironclad_pki::issue_one(
            csr.as_bytes(),
            &rogue,
            &profile,
            &mut rogue_index,
            &ironclad_pki::Limits::default(),
            now,
        )?;
        match verifier.verify_device(&forged.record().der, time::OffsetDateTime::now_utc(), &index) {
            Ok(_) => bail!("a certificate from an unknown CA was accepted"),
            Err(err) => {
                let key = KeyHandle::open(rogue_se, &dev_label)?;
                let chain = format!("{}{}", forged.record().pem(), rogue_root.pem());
                Ok(((key, chain), format!("look-alike CA: {err}")))
            }
        }
    })?;

    stages.run("secure boot and update", || {
        // A handful of devices (not the revoked one) run the whole boot cycle in simulated flash.
        let fleet: Vec<Arc<dyn SecureElement>> =
            devices.iter().skip(1).take(3).map(|d| d.se.clone()).collect();
        Ok(((), crate::demo_firmware::firmware_stage(&fleet)?))
    })?;

    let cloud = Cloud::start(stages, base)?;
    let outcome = cloud_stages(stages, &cloud, &line_cert, &line_key, &records, &devices, impostor);
    cloud.stop();
    outcome
}

/// The demo's cloud: an in-process server on a loopback port with its own runtime (the rest
/// of the demo is synchronous).
struct Cloud {
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
    server: RunningServer,
    endpoint: ServerEndpoint,
    /// The server's CA (what a device delegated to it must trust) and the demo PKI's root.
    ca_pem: String,
    root_pem: String,
}

impl Cloud {
    fn start(stages: &mut Stages, base: &Path) -> Result<Self> {
        stages.run("cloud server", || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            let dir = base.join("cloud");
            std::fs::create_dir_all(&dir)?;
            let (identity, ca_pem) = ServerIdentity::generate(&["localhost", "127.0.0.1"])?;
            std::fs::write(dir.join("server-ca.pem"), &ca_pem)?;
            let mut config = ServerConfig::default();
            config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
            config.storage = StorageConfig::Sqlite { path: dir.join("registry.sqlite") };
            // The key vault's secure element: software, in memory, for the demo's lifetime.
            let vault_se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
            let server = rt.block_on(Server::builder(config).identity(identity).secure_element(vault_se).bind())?;
            let endpoint = ServerEndpoint::new(server.local_addr(), "localhost", ca_pem.as_bytes())?;
            let detail = format!(
                "listening on {}: mutual TLS (1.3 and 1.2), SQLite registry in cloud/registry.sqlite, key vault in a software SE; no CA trusted yet",
                server.local_addr()
            );
            let root_pem = std::fs::read_to_string(base.join("pki/root.pem"))?;
            Ok((Cloud { rt, dir, server, endpoint, ca_pem, root_pem }, detail))
        })
    }

    fn stop(self) {
        let Cloud { rt, server, .. } = self;
        rt.block_on(server.shutdown());
    }
}

/// Connects with mutual TLS and answers one challenge.
async fn authenticate(endpoint: &ServerEndpoint, identity: DeviceIdentity) -> Result<String, AgentError> {
    let mut conn = DeviceConnection::connect(endpoint, identity).await?;
    Ok(conn.authenticate().await?.device_id().to_owned())
}

fn cloud_stages(
    stages: &mut Stages,
    cloud: &Cloud,
    line_cert: &CaCertificate,
    line_key: &KeyHandle,
    records: &[DeviceRecord],
    devices: &[Device],
    (impostor_key, impostor_chain): (KeyHandle, String),
) -> Result<()> {
    let registry = cloud.server.registry();
    stages.run("family enrollment", || {
        cloud.rt.block_on(async {
            let pending = registry.begin_group(line_cert.der(), "demo line-1 (family CA)").await?;
            let code = pending.verification_code.clone().context("no verification code")?;
            // A proof signed by any other key is refused: the impostor's key tries first.
            let forged = make_verification_certificate(line_cert.der(), &impostor_key, &code)?;
            ensure!(
                registry.prove_group(&pending.id, &forged).await.is_err(),
                "a proof of possession signed by another key was accepted"
            );
            let proof = make_verification_certificate(line_cert.der(), line_key, &code)?;
            let done = registry.prove_group(&pending.id, &proof).await?;
            ensure!(done.status == EnrollmentStatus::Enabled, "group is {:?} after proof", done.status);
            let detail = format!(
                "line-1 CA enrolled as group {}: code {code} signed by the line CA key (a proof by another key refused)",
                &done.id[..8]
            );
            Ok(((), detail))
        })
    })?;

    // The device revoked in the PKI stage is left for the refusal stage below.
    let victim = &records[0];
    stages.run("device authentication", || {
        let identities = devices
            .iter()
            .filter(|d| d.id != victim.device_id)
            .map(|d| DeviceIdentity::from_secure_element(d.se.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let summary = cloud.rt.block_on(authenticate_fleet(&cloud.endpoint, &identities, 16, None));
        if let Some((device, err)) = summary.failures.first() {
            bail!("{} of {} devices refused; first: {device}: {err}", summary.failed, identities.len());
        }
        ensure!(summary.authenticated == identities.len(), "{} authenticated", summary.authenticated);
        let detail = format!(
            "{} devices, each from its own secure element: mutual TLS + challenge-response, {:.0} auths/s (p50 {:.1} ms, p99 {:.1} ms)",
            summary.authenticated, summary.auths_per_sec, summary.p50_ms, summary.p99_ms
        );
        Ok(((), detail))
    })?;

    stages.run("pairing", || {
        // Not the revoked device: it pairs with a phone, which delegates cloud access to it.
        let device = devices.get(1).context("the pairing stage needs 2 devices")?;
        let detail = crate::demo_pairing::pairing_stage(
            &cloud.rt,
            &cloud.endpoint,
            registry,
            &cloud.ca_pem,
            &cloud.root_pem,
            device,
        )?;
        Ok(((), detail))
    })?;

    stages.run("impostor refused at the cloud", || {
        cloud.rt.block_on(async {
            registry.revoke(&victim.serial, RevocationReason::KeyCompromise).await?;
            let revoked = DeviceIdentity::from_secure_element(devices[0].se.clone())?;
            match authenticate(&cloud.endpoint, revoked).await {
                Ok(_) => bail!("the revoked device {} was admitted", victim.device_id),
                Err(e) => ensure!(e.wire_code() == Some(ErrorCode::AuthFailed), "unexpected refusal: {e}"),
            }
            let chain = parse_pem_chain(impostor_chain.as_bytes())?;
            let impostor = DeviceIdentity::new(impostor_key, chain)?;
            let impostor_id = impostor.device_id().to_owned();
            let refusal = match authenticate(&cloud.endpoint, impostor).await {
                Ok(_) => bail!("the look-alike CA's device was admitted"),
                Err(e) => e,
            };
            // The audit log names both refusals precisely (the wire said only "AuthFailed").
            let mut reasons = Vec::new();
            for _ in 0..50 {
                reasons = registry
                    .store()
                    .audit(50, None)
                    .await?
                    .into_iter()
                    .filter_map(|e| e.record.reason)
                    .collect::<Vec<_>>();
                if reasons.iter().any(|r| r == "client_certificate_invalid") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ensure!(reasons.iter().any(|r| r == "revoked"), "no revocation in the audit log: {reasons:?}");
            ensure!(
                reasons.iter().any(|r| r == "client_certificate_invalid"),
                "no refused handshake in the audit log: {reasons:?}"
            );
            let stage = if refusal.wire_code().is_some() { "at the challenge" } else { "in the TLS handshake" };
            let detail = format!(
                "revoked {} refused (audit: revoked); look-alike {impostor_id} refused {stage} (audit: client_certificate_invalid)",
                victim.device_id
            );
            Ok(((), detail))
        })
    })?;

    stages.run("camera stream encrypted", || {
        // A camera that is neither the revoked device nor the look-alike's namesake.
        let camera = devices.get(2).context("the media stage needs 3 devices")?;
        Ok(((), crate::demo_media::media_stage(&cloud.rt, &cloud.endpoint, registry, camera)?))
    })?;

    stages.run("OTA in stages", || {
        // Devices the firmware stage did not update locally (it raised 1-3's counters) and
        // not the revoked one.
        let fleet = devices.get(4..).filter(|d| !d.is_empty()).context("the OTA stage needs 5 devices")?;
        Ok(((), crate::demo_ota::ota_stage(&cloud.rt, &cloud.endpoint, registry, fleet)?))
    })?;

    stages.run("signed command", || {
        let device = devices.get(3).context("the command stage needs 5 devices")?;
        let other = devices.get(4).context("the command stage needs 5 devices")?;
        Ok(((), crate::demo_messages::command_stage(&cloud.rt, &cloud.endpoint, registry, device, other)?))
    })?;

    stages.run("encrypted logs", || {
        let device = devices.get(3).context("the log stage needs 4 devices")?;
        let card = cloud.dir.join("sd-cards");
        std::fs::create_dir_all(&card)?;
        Ok(((), crate::demo_messages::logs_stage(&cloud.rt, &cloud.endpoint, registry, device, &card)?))
    })?;
    Ok(())
}

fn root_cause(err: &anyhow::Error) -> String {
    err.root_cause().to_string()
}

/// The index behind a lock, so parallel verifiers can ask it for revocation status.
struct SharedIndex(Mutex<ironclad_pki::SqliteIndex>);

impl ironclad_pki::RevocationCheck for SharedIndex {
    fn status(&self, serial: &str) -> ironclad_pki::Result<ironclad_pki::RevocationStatus> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).revocation_status(serial)
    }
}

fn bar(len: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("    [{elapsed_precise}] {wide_bar} {pos}/{len}") {
        bar.set_style(style);
    }
    bar
}
