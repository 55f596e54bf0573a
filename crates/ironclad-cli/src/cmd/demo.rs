//! `ironclad demo`: the chain of trust end to end on one machine, no set-up.
//!
//! Stage "PKI" (the foundation): a root CA and a factory-line CA whose keys live in an encrypted
//! software secure element; a fleet of devices, each generating its identity key inside its own
//! secure element and sending a CSR; batch issuance; certificates stored back in each device;
//! chain verification of every device; a revoked device and an impostor refused.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ironclad_pki::{
    BatchOptions, CaIssuer, ChainVerifier, DeviceProfile, IntermediateCaParams, IssuedIndex,
    RevocationReason, RootCaParams,
};
use ironclad_se::{DirSe, KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement, Unlock};
use rayon::prelude::*;
use serde::Serialize;

use super::se_csr::device_csr_pem;
use crate::output::{print_json, table};
use crate::pki_dir::{KeyBackend, PkiDir, ProfileFile, ROOT_KEY};
use crate::secrets::kdf_params;

/// Run the whole chain of trust on this machine: PKI, device identities, verification.
///
/// Everything happens in a temporary directory (or --dir, kept for inspection with the other
/// commands, e.g. `ironclad cert show <dir>/devices/dev-0000001/cert.pem`).
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

struct Device {
    id: String,
    se: Arc<dyn SecureElement>,
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

fn run_stages(stages: &mut Stages, base: &std::path::Path, device_count: usize) -> Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let pki_path = base.join("pki");

    // The CA key store is protected by a passphrase through Argon2id, as in production; the
    // demo makes up a random one and never prints it.
    let mut secret = [0u8; 24];
    aws_lc_rs::rand::fill(&mut secret).map_err(|_| anyhow::anyhow!("system RNG failed"))?;
    let passphrase = Unlock::passphrase(hex::encode(secret));

    let (pki, ca_keys, root_cert) = stages.run("root CA", || {
        let pki = PkiDir::create(&pki_path, KeyBackend::Software)?;
        let se: Arc<dyn SecureElement> = Arc::new(DirSe::create(pki.keys_dir(), &passphrase, kdf_params())?);
        let label = Label::new(ROOT_KEY)?;
        se.generate_key(&label, KeyAlgorithm::EcdsaP256)?;
        let key = PkiDir::signer(&se, &label)?;
        let params = RootCaParams::new("ironclad Demo Root CA", "ironclad demo", "US");
        let root = ironclad_pki::create_root(&key, &params, now)?;
        ironclad_se::atomic_write(
            &pki.root_cert_path(),
            root.pem().as_bytes(),
            ironclad_se::Overwrite::Refuse,
        )?;
        let detail = format!("P-256 key in encrypted store, SHA-256 {}…", &root.sha256_fingerprint()[..16]);
        Ok(((pki, se, root), detail))
    })?;

    let line = "line-1";
    let profile_file = ProfileFile {
        organization: "ironclad demo".into(),
        country: "US".into(),
        family: "demo-camera".into(),
        validity: "30y".into(),
    };
    let (line_cert, profile) = stages.run("line CA", || {
        let root_key = PkiDir::signer(&ca_keys, &Label::new(ROOT_KEY)?)?;
        let root = CaIssuer::new(&root_cert, &root_key)?;
        let label = PkiDir::ca_key_label(line)?;
        ca_keys.generate_key(&label, KeyAlgorithm::EcdsaP256)?;
        let key = PkiDir::signer(&ca_keys, &label)?;
        let params = IntermediateCaParams::new("ironclad Demo Line 1 CA", "ironclad demo", "US");
        let cert = ironclad_pki::create_intermediate(&root, &key, &params, now)?;
        let dir = pki.ca_dir(line);
        std::fs::create_dir_all(&dir)?;
        ironclad_se::atomic_write(
            &dir.join("cert.pem"),
            cert.pem().as_bytes(),
            ironclad_se::Overwrite::Refuse,
        )?;
        let chain = format!("{}{}", cert.pem(), root_cert.pem());
        ironclad_se::atomic_write(&dir.join("chain.pem"), chain.as_bytes(), ironclad_se::Overwrite::Refuse)?;
        ironclad_se::atomic_write(
            &dir.join("profile.json"),
            &serde_json::to_vec_pretty(&profile_file)?,
            ironclad_se::Overwrite::Refuse,
        )?;
        let profile: DeviceProfile = profile_file.to_profile()?;
        Ok(((cert, profile), "pathLen 0, family demo-camera, device validity 30 years".to_owned()))
    })?;

    let devices_dir = base.join("devices");
    let quiet = stages.quiet;
    let (devices, csrs) = stages.run("device keys + CSRs", || {
        let bar = bar(device_count as u64, quiet);
        let made: Vec<(Device, (String, String))> = (1..=device_count)
            .into_par_iter()
            .map(|i| -> Result<_> {
                let id = format!("dev-{i:07}");
                // Each device's store is unlocked by its own device-unique secret (from fuses on
                // real hardware), so no passphrase is needed on the line.
                let mut unique = [0u8; 32];
                aws_lc_rs::rand::fill(&mut unique).map_err(|_| anyhow::anyhow!("system RNG failed"))?;
                let se: Arc<dyn SecureElement> = Arc::new(DirSe::create(
                    devices_dir.join(&id).join("se"),
                    &Unlock::device_secret(&unique),
                    kdf_params(),
                )?);
                let auth = Label::new("device-auth")?;
                se.generate_key(&auth, KeyAlgorithm::EcdsaP256)?;
                let csr = device_csr_pem(&KeyHandle::open(se.clone(), &auth)?, &id)?;
                bar.inc(1);
                Ok((Device { id: id.clone(), se }, (id, csr)))
            })
            .collect::<Result<_>>()?;
        bar.finish_and_clear();
        let (devices, csrs): (Vec<_>, Vec<_>) = made.into_iter().unzip();
        let detail = format!("{device_count} P-256 keys generated inside device secure elements");
        Ok(((devices, csrs), detail))
    })?;

    let line_key = PkiDir::signer(&ca_keys, &PkiDir::ca_key_label(line)?)?;
    let issuer = CaIssuer::new(&line_cert, &line_key)?;
    let mut index = pki.open_index()?;
    let report = stages.run("batch issuance", || {
        let started = Instant::now();
        let report = ironclad_pki::issue_batch(
            csrs,
            &issuer,
            &profile,
            &mut index,
            now,
            &BatchOptions::default(),
            &mut |_| {},
        )?;
        if !report.failed.is_empty() {
            bail!("{} CSRs refused: {}", report.failed.len(), report.failed[0].1);
        }
        ensure!(report.issued.len() == device_count, "issued {} of {device_count}", report.issued.len());
        let rate = report.issued.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let detail = format!("{} certificates, {rate:.0}/s, recorded in index.sqlite", report.issued.len());
        Ok((report, detail))
    })?;

    stages.run("certs into devices", || {
        let chain = format!("{}{}", line_cert.pem(), root_cert.pem());
        let cert_label = Label::new("device-cert")?;
        let chain_label = Label::new("device-chain")?;
        devices.par_iter().zip(&report.issued).try_for_each(|(device, record)| -> Result<()> {
            ensure!(device.id == record.device_id, "certificate order mismatch");
            device.se.put_object(&cert_label, record.pem().as_bytes())?;
            device.se.put_object(&chain_label, chain.as_bytes())?;
            std::fs::write(devices_dir.join(&device.id).join("cert.pem"), record.pem())?;
            Ok(())
        })?;
        Ok(((), "certificate + chain sealed in each device's secure element".to_owned()))
    })?;

    let verifier = ChainVerifier::new([root_cert.der()], [line_cert.der()])?;
    // Verifiers run on every core; the index connection is shared behind a lock.
    let shared_index = SharedIndex(Mutex::new(index));
    stages.run("chain verification", || {
        let cert_label = Label::new("device-cert")?;
        let verified = devices
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
        Ok(((), format!("{} devices: root → line-1 → device, clientAuth, not revoked", verified.len())))
    })?;

    let mut index = shared_index.0.into_inner().unwrap_or_else(|p| p.into_inner());
    stages.run("revoked device refused", || {
        let victim = &report.issued[0];
        index.revoke(&victim.serial, RevocationReason::KeyCompromise, time::OffsetDateTime::now_utc())?;
        match verifier.verify_device(&victim.der, time::OffsetDateTime::now_utc(), &index) {
            Ok(_) => bail!("a revoked certificate was accepted"),
            Err(err) => Ok(((), format!("{}: {err}", victim.device_id))),
        }
    })?;

    stages.run("impostor refused", || {
        // A look-alike CA with the same names but its own key: what a cloner would build.
        let rogue_se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let label = Label::new("rogue")?;
        rogue_se.generate_key(&label, KeyAlgorithm::EcdsaP256)?;
        let rogue_key = KeyHandle::open(rogue_se.clone(), &label)?;
        let rogue_root = ironclad_pki::create_root(
            &rogue_key,
            &RootCaParams::new("ironclad Demo Root CA", "ironclad demo", "US"),
            now,
        )?;
        let rogue = CaIssuer::new(&rogue_root, &rogue_key)?;
        let dev_label = Label::new("impostor")?;
        rogue_se.generate_key(&dev_label, KeyAlgorithm::EcdsaP256)?;
        let csr = device_csr_pem(&KeyHandle::open(rogue_se.clone(), &dev_label)?, "dev-0000002")?;
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
            Err(err) => Ok(((), format!("look-alike CA: {err}"))),
        }
    })?;
    Ok(())
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
