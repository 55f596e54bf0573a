//! `ironclad cert issue`: one device certificate from one CSR.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ironclad_pki::{CaIssuer, IssueOutcome, Limits};
use ironclad_se::{Overwrite, atomic_write};
use serde_json::json;

use crate::output::print_json;
use crate::pki_dir::PkiDir;
use crate::secrets::CaKeyArgs;

/// Issue a device certificate from a PKCS#10 CSR (PEM or DER).
///
/// The CSR's signature is verified; only its public key and requested device ID (CN) are used.
/// Every extension comes from the CA's device profile. Re-submitting the same CSR returns the
/// certificate already on record; a device ID already certified under another key is refused.
///
/// Example:
///   ironclad cert issue --pki ./pki --ca line-1 --csr cam-000123.csr --out cam-000123.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CertIssueArgs {
    #[arg(long, env = "IRONCLAD_PKI", default_value = "pki")]
    pki: PathBuf,
    /// Issuing CA name (see `ironclad ca list`).
    #[arg(long)]
    ca: String,
    /// The CSR file (PEM or DER).
    #[arg(long)]
    csr: PathBuf,
    /// Where to write the certificate (PEM); stdout if omitted.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    keys: CaKeyArgs,
    /// Print the issuance record as JSON (the certificate goes to --out).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CertIssueArgs) -> Result<()> {
    let pki = PkiDir::open(&args.pki)?;
    let profile = pki.ca_profile(&args.ca)?.to_profile()?;
    let limits = Limits::default();
    let input = read_limited(&args.csr, &limits)?;
    let (ca_cert, key) = pki.issuing_ca(&args.ca, &args.keys)?;
    let issuer = CaIssuer::new(&ca_cert, &key)?;
    let mut index = pki.open_index()?;
    let outcome = ironclad_pki::issue_one(
        &input,
        &issuer,
        &profile,
        &mut index,
        &limits,
        time::OffsetDateTime::now_utc(),
    )
    .with_context(|| format!("refused {}", args.csr.display()))?;
    let (record, state) = match &outcome {
        IssueOutcome::Issued(r) => (r, "issued"),
        IssueOutcome::Existing(r) => (r, "existing"),
    };
    match &args.out {
        Some(path) => atomic_write(path, record.pem().as_bytes(), Overwrite::Replace)?,
        None if !args.json => print!("{}", record.pem()),
        None => {}
    }
    if args.json {
        let mut value = serde_json::to_value(record)?;
        value["outcome"] = json!(state);
        value["pem"] = json!(record.pem());
        return print_json(&value);
    }
    eprintln!(
        "{state} certificate for {} (serial {}, expires {})",
        record.device_id, record.serial, record.not_after
    );
    Ok(())
}

/// Reads an input file, refusing anything larger than the CSR limit before reading it all.
pub(crate) fn read_limited(path: &std::path::Path, limits: &Limits) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    // PEM is a third larger than the DER it carries.
    let max = (limits.max_csr_bytes as u64) * 4 / 3 + 256;
    anyhow::ensure!(len <= max, "{} is {len} bytes; a CSR may be at most {max} bytes", path.display());
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
