//! `ironclad cert verify`: is this a genuine, current, unrevoked device certificate?

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_pki::ChainVerifier;
use ironclad_pki::danger::SkipRevocationCheck;
use serde_json::json;

use crate::output::print_json;
use crate::pki_dir::PkiDir;

/// Verify a device certificate: chain, signatures, validity, usage, profile, revocation.
///
/// Verify a device certificate: chain to a trusted root through known intermediates, signatures,
/// validity period, CA constraints, clientAuth usage, the device profile, and revocation status in
/// the PKI's index.
///
/// With --pki, the root, every intermediate and the index of that PKI are used. Without it,
/// give --root (and --intermediate); revocation is then NOT checked and the output says so.
/// Exits non-zero, naming the reason, when the certificate is refused.
///
/// Examples:
///   ironclad cert verify --pki ./pki cam-000123.pem
///   ironclad cert verify --root root.pem --intermediate line-1.pem cam-000123.pem --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CertVerifyArgs {
    /// The device certificate (PEM, optionally followed by its chain, or DER).
    cert: PathBuf,
    #[arg(long, env = "IRONCLAD_PKI")]
    pki: Option<PathBuf>,
    /// Trusted root certificate(s), PEM (instead of --pki).
    #[arg(long)]
    root: Vec<PathBuf>,
    /// Intermediate CA certificate(s), PEM.
    #[arg(long)]
    intermediate: Vec<PathBuf>,
    /// Verify at this time (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CertVerifyArgs) -> Result<()> {
    let input = std::fs::read(&args.cert).with_context(|| format!("reading {}", args.cert.display()))?;
    let mut certs = der_certificates(&input).with_context(|| format!("parsing {}", args.cert.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", args.cert.display());
    }
    let leaf = certs.remove(0);
    let mut roots = Vec::new();
    let mut intermediates = certs;
    for path in &args.root {
        roots.extend(
            der_certificates(&std::fs::read(path)?).with_context(|| format!("parsing {}", path.display()))?,
        );
    }
    for path in &args.intermediate {
        intermediates.extend(
            der_certificates(&std::fs::read(path)?).with_context(|| format!("parsing {}", path.display()))?,
        );
    }
    let now = match &args.at {
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("--at {t:?} is not an RFC 3339 time"))?,
        None => time::OffsetDateTime::now_utc(),
    };
    let (verified, revocation_checked) = match &args.pki {
        Some(dir) => {
            let pki = PkiDir::open(dir)?;
            roots.push(pki.root_cert()?.der().to_vec());
            intermediates.extend(pki.intermediates()?.iter().map(|c| c.der().to_vec()));
            let index = pki.open_index()?;
            (ChainVerifier::new(&roots, &intermediates)?.verify_device(&leaf, now, &index), true)
        }
        None if roots.is_empty() => bail!("give --pki, or --root with the trusted root certificate"),
        None => (
            ChainVerifier::new(&roots, &intermediates)?.verify_device(&leaf, now, &SkipRevocationCheck),
            false,
        ),
    };
    let device = match verified {
        Ok(device) => device,
        Err(err) => {
            if args.json {
                print_json(&json!({ "valid": false, "reason": err.to_string() }))?;
            }
            bail!("REFUSED {}: {err}", args.cert.display());
        }
    };
    if args.json {
        return print_json(&json!({
            "valid": true, "device_id": device.device_id(), "family": device.family(),
            "serial": device.serial(), "not_after": device.not_after().to_string(),
            "issuer_sha256": device.issuer_fingerprint(), "revocation_checked": revocation_checked,
        }));
    }
    println!(
        "OK {}: device {} (family {}), serial {}",
        args.cert.display(),
        device.device_id(),
        device.family().unwrap_or("-"),
        device.serial()
    );
    if !revocation_checked {
        println!("note: revocation was not checked (no --pki index)");
    }
    Ok(())
}

/// Every certificate in a PEM bundle, or the single DER certificate.
pub(crate) fn der_certificates(input: &[u8]) -> Result<Vec<Vec<u8>>> {
    if !input.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(vec![input.to_vec()]);
    }
    let blocks = pem::parse_many(input)?;
    Ok(blocks.into_iter().filter(|p| p.tag() == "CERTIFICATE").map(|p| p.into_contents()).collect())
}
