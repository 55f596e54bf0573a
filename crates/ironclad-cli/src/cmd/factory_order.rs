//! `ironclad factory order`: the OEM signs a production order.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ironclad_factory::{ProductionOrder, SignedOrder};
use ironclad_se::{Overwrite, atomic_write};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::output::print_json;
use crate::pki_dir::PkiDir;
use crate::secrets::CaKeyArgs;

/// Sign a production order with the PKI's root key: product, the line CA allowed to issue,
/// the maximum number of devices and a validity window. Stations refuse to provision without
/// a verified order and never issue past its count.
///
/// Example:
///   ironclad factory order --pki ./pki --ca line-1 --id PO-2026-0042 --product acme-cam \
///       --max-count 10000 --valid-days 30 --out PO-2026-0042.json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct FactoryOrderArgs {
    #[arg(long, env = "IRONCLAD_PKI", default_value = "pki")]
    pki: PathBuf,
    /// The line CA that may issue under this order.
    #[arg(long)]
    ca: String,
    /// Order id (unique).
    #[arg(long)]
    id: String,
    /// Product the devices are.
    #[arg(long)]
    product: String,
    /// Maximum number of devices.
    #[arg(long)]
    max_count: u64,
    /// Days from now until the order expires.
    #[arg(long, default_value_t = 30)]
    valid_days: u32,
    /// Where to write the signed order (JSON).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    keys: CaKeyArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: FactoryOrderArgs) -> Result<()> {
    let pki = PkiDir::open(&args.pki)?;
    let line = pki.ca_cert(&args.ca)?;
    let se = pki.open_keys(&args.keys)?;
    let signer = PkiDir::signer(&se, &pki.root_key_label()?)?;
    let now = time::OffsetDateTime::now_utc();
    let order = ProductionOrder {
        id: args.id.clone(),
        product: args.product.clone(),
        line_ca_sha256: line.sha256_fingerprint(),
        max_count: args.max_count,
        not_before: now.format(&Rfc3339)?,
        not_after: (now + time::Duration::days(i64::from(args.valid_days))).format(&Rfc3339)?,
    };
    let signed = SignedOrder::sign(order, &signer).context("signing the order")?;
    atomic_write(&args.out, signed.to_json().as_bytes(), Overwrite::Refuse)
        .with_context(|| format!("writing {} (it must not exist)", args.out.display()))?;
    if args.json {
        return print_json(&json!({"order": signed.order, "path": args.out}));
    }
    println!(
        "signed order {} for {} × {} on {} (until {}) → {}",
        args.id,
        args.max_count,
        args.product,
        args.ca,
        signed.order.not_after,
        args.out.display()
    );
    Ok(())
}
