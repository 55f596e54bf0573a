//! `ironclad cert show`: what a certificate says.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::output::print_json;

/// Show a certificate's fields and every extension by name.
///
/// Show a certificate's subject, issuer, serial, validity, key, and every extension by name
/// (including ironclad's product-family extension).
///
/// Example:
///   ironclad cert show cam-000123.pem --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CertShowArgs {
    /// Certificate file (PEM or DER).
    cert: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CertShowArgs) -> Result<()> {
    let input = std::fs::read(&args.cert).with_context(|| format!("reading {}", args.cert.display()))?;
    let summary = ironclad_pki::inspect_certificate(&input)
        .with_context(|| format!("parsing {}", args.cert.display()))?;
    if args.json {
        return print_json(&summary);
    }
    println!("Certificate (v{})", summary.version);
    println!("  Subject:     {}", summary.subject);
    println!("  Issuer:      {}", summary.issuer);
    println!("  Serial:      {}", summary.serial);
    println!("  Not before:  {}", summary.not_before);
    println!("  Not after:   {}", summary.not_after);
    println!("  Key:         {}", summary.key_algorithm);
    println!("  Signature:   {}", summary.signature_algorithm);
    println!("  CA:          {}", summary.is_ca);
    println!("  SHA-256:     {}", summary.sha256_fingerprint);
    println!("  Extensions:");
    for ext in &summary.extensions {
        let critical = if ext.critical { " (critical)" } else { "" };
        println!("    {}{critical}: {}", ext.name, ext.value);
    }
    Ok(())
}
