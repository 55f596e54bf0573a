//! `ironclad ca crl`: publish an issuing CA's certificate revocation list.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ironclad_pki::CaIssuer;
use ironclad_se::{Overwrite, atomic_write};
use serde_json::json;

use crate::output::print_json;
use crate::pki_dir::PkiDir;
use crate::secrets::CaKeyArgs;

/// Sign and write the CRL of an issuing CA, listing every certificate it revoked.
///
/// Sign and write a CRL for an issuing CA listing every certificate it issued that is revoked.
///
/// Each CRL gets the next CRL number. Check it with
/// `openssl crl -in pki/ca/line-1/crl.pem -CAfile pki/ca/line-1/chain.pem -verify -noout`.
///
/// Example:
///   ironclad ca crl --pki ./pki --ca line-1 --next-update-days 7
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CaCrlArgs {
    #[arg(long, env = "IRONCLAD_PKI", default_value = "pki")]
    pki: PathBuf,
    /// Issuing CA name.
    #[arg(long)]
    ca: String,
    /// Days until nextUpdate.
    #[arg(long, default_value_t = 7)]
    next_update_days: u32,
    /// Output file (default: <pki>/ca/<name>/crl.pem).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    keys: CaKeyArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CaCrlArgs) -> Result<()> {
    let pki = PkiDir::open(&args.pki)?;
    let (ca_cert, key) = pki.issuing_ca(&args.ca, &args.keys)?;
    let issuer = CaIssuer::new(&ca_cert, &key)?;
    let mut index = pki.open_index()?;
    let now = time::OffsetDateTime::now_utc();
    let next = now + time::Duration::days(i64::from(args.next_update_days));
    let crl = ironclad_pki::build_crl(&issuer, &mut index, now, next).context("building the CRL")?;
    let out = args.out.clone().unwrap_or_else(|| pki.ca_dir(&args.ca).join("crl.pem"));
    atomic_write(&out, crl.pem().as_bytes(), Overwrite::Replace)?;
    if args.json {
        return print_json(&json!({
            "path": out, "crl_number": crl.number(), "revoked": crl.revoked_count(),
            "this_update": crl.this_update().to_string(), "next_update": crl.next_update().to_string(),
        }));
    }
    println!(
        "wrote CRL #{} of {:?} to {} ({} revoked)",
        crl.number(),
        args.ca,
        out.display(),
        crl.revoked_count()
    );
    Ok(())
}
