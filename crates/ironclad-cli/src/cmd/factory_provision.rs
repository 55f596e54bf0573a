//! `ironclad factory provision`: make devices under a production order.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ironclad_factory::{QuotaLedger, SignedOrder};
use ironclad_pki::PublicKeyData;
use ironclad_se::{Overwrite, SignInput, atomic_write};
use serde_json::json;

use crate::output::print_json;
use crate::pki_dir::PkiDir;
use crate::secrets::CaKeyArgs;
use crate::station::{DeviceStores, Station};

/// Provision devices under a signed production order: in each device's secure element the
/// authentication key (P-256), the firmware-decryption key (X25519) and an application master
/// secret are generated; the station verifies each CSR and issues under the order's line CA;
/// certificate, chain and console password go back into the device.
///
/// The order's count is enforced by a ledger in <pki>/factory/ shared by every station
/// process: units are reserved durably before anything is signed, so neither a crash nor a
/// second station can push the line past the count (a crash loses the units it reserved).
/// Each issued device is appended to a hash-chained audit log (`factory report`).
///
/// The cloud's record of each device is written to --manifest (JSON lines) with a detached
/// signature by the line CA (<manifest>.sig, DER ECDSA over the file), ready for bulk
/// enrollment. Check it with:
///   openssl dgst -sha256 -verify <(openssl x509 -pubkey -noout -in pki/ca/line-1/cert.pem) \
///       -signature manifest.jsonl.sig manifest.jsonl
///
/// Example:
///   ironclad factory provision --pki ./pki --order PO-2026-0042.json --count 500 \
///       --devices-dir ./devices --manifest ./manifest.jsonl
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct FactoryProvisionArgs {
    #[arg(long, env = "IRONCLAD_PKI", default_value = "pki")]
    pki: PathBuf,
    /// The signed production order (from `factory order`).
    #[arg(long)]
    order: PathBuf,
    /// Devices to make now (fewer if the order has fewer left).
    #[arg(long)]
    count: u64,
    /// Directory of simulated devices (one encrypted secure element each). Without it the
    /// device secure elements live in memory: only the station's records remain.
    #[arg(long)]
    devices_dir: Option<PathBuf>,
    /// Where to write the device manifest (JSON lines); it must not exist.
    #[arg(long)]
    manifest: PathBuf,
    #[command(flatten)]
    keys: CaKeyArgs,
    /// Print the result as JSON (no progress bar).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: FactoryProvisionArgs) -> Result<()> {
    let pki = PkiDir::open(&args.pki)?;
    let root = pki.root_cert()?;
    let text =
        std::fs::read_to_string(&args.order).with_context(|| format!("reading {}", args.order.display()))?;
    let signed = SignedOrder::from_json(&text)?;
    let ca_name = pki
        .ca_names()?
        .into_iter()
        .find(|n| pki.ca_cert(n).is_ok_and(|c| c.sha256_fingerprint() == signed.order.line_ca_sha256))
        .context("the order names a line CA that is not in this PKI")?;
    let order = signed.verify(
        &[root.spki_der()],
        &pki.ca_cert(&ca_name)?.sha256_fingerprint(),
        time::OffsetDateTime::now_utc(),
    )?;
    let (line_cert, line_key) = pki.issuing_ca(&ca_name, &args.keys)?;
    let ca_keys = line_key.secure_element().clone();
    let profile = pki.ca_profile(&ca_name)?.to_profile()?;
    std::fs::create_dir_all(pki.path().join("factory"))?;
    let mut ledger = QuotaLedger::open(pki.path().join("factory/ledger.sqlite"))?;
    ledger.register(&order)?;
    let mut index = pki.open_index()?;
    let stores = match &args.devices_dir {
        Some(dir) => DeviceStores::Directory(dir.clone()),
        None => DeviceStores::Memory,
    };
    let station = Station {
        order: &order,
        line_cert: &line_cert,
        root_cert: &root,
        line_key: &line_key,
        ca_keys: &ca_keys,
        profile: &profile,
        stores,
    };
    let bar = ProgressBar::with_draw_target(Some(args.count), ProgressDrawTarget::stderr());
    if args.json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} devices")
    {
        bar.set_style(style);
    }
    let done = AtomicU64::new(0);
    let started = std::time::Instant::now();
    let (records, _) = station.provision(&mut ledger, &mut index, args.count, &|n| {
        bar.set_position(done.fetch_add(n, Ordering::Relaxed) + n);
    })?;
    bar.finish_and_clear();

    let mut manifest = Vec::with_capacity(records.len() * 900);
    for record in &records {
        serde_json::to_writer(&mut manifest, record)?;
        manifest.write_all(b"\n")?;
    }
    let signature = line_key.sign(SignInput::Message(&manifest))?;
    atomic_write(&args.manifest, &manifest, Overwrite::Refuse)
        .with_context(|| format!("writing {} (it must not exist)", args.manifest.display()))?;
    let sig_path = PathBuf::from(format!("{}.sig", args.manifest.display()));
    atomic_write(&sig_path, &signature, Overwrite::Replace)?;
    let rate = records.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let usage = ledger.report()?.into_iter().find(|u| u.id == order.order().id);
    if args.json {
        return print_json(&json!({
            "provisioned": records.len(), "order": order.order().id, "line_ca": ca_name,
            "devices_per_second": rate, "manifest": args.manifest, "signature": sig_path,
            "order_usage": usage, "line_ca_spki_sha256": hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &line_key.subject_public_key_info())),
        }));
    }
    println!(
        "provisioned {} devices under order {} ({rate:.0}/s); manifest {} (signed by {ca_name})",
        records.len(),
        order.order().id,
        args.manifest.display()
    );
    if let Some(u) = usage {
        println!("order {}: {} of {} used, {} left", u.id, u.reserved, u.max_count, u.remaining);
    }
    Ok(())
}
