//! `ironclad cert revoke`: mark a certificate revoked in the index.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ironclad_pki::{IssuedIndex, RevocationReason};
use serde_json::json;

use crate::output::print_json;
use crate::pki_dir::PkiDir;

/// Revoke a certificate by serial number, with an RFC 5280 reason.
///
/// Revocation takes effect at once for `cert verify` (which reads the index); outside parties
/// learn of it from the next CRL (`ironclad ca crl`).
///
/// Example:
///   ironclad cert revoke --pki ./pki --serial 5f3a...e1 --reason key-compromise
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CertRevokeArgs {
    #[arg(long, env = "IRONCLAD_PKI", default_value = "pki")]
    pki: PathBuf,
    /// Serial number in hex (colons and spaces allowed, as `openssl x509 -serial` prints it).
    #[arg(long)]
    serial: String,
    /// Why (RFC 5280 reason name or code): unspecified, key-compromise, ca-compromise,
    /// affiliation-changed, superseded, cessation-of-operation, certificate-hold,
    /// privilege-withdrawn.
    #[arg(long, default_value = "unspecified")]
    reason: RevocationReason,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CertRevokeArgs) -> Result<()> {
    let pki = PkiDir::open(&args.pki)?;
    let mut index = pki.open_index()?;
    let reason = args.reason;
    let entry = index
        .revoke(&args.serial, reason, time::OffsetDateTime::now_utc())
        .with_context(|| format!("revoking serial {}", args.serial))?;
    if args.json {
        return print_json(&json!({
            "serial": entry.record.serial, "device_id": entry.record.device_id,
            "reason": reason.name(), "issuer": entry.issuer,
        }));
    }
    println!("revoked {} (device {}, reason {})", entry.record.serial, entry.record.device_id, reason.name());
    let issuing_ca = pki
        .ca_names()?
        .into_iter()
        .find(|name| pki.ca_cert(name).is_ok_and(|c| c.subject_key_id() == entry.issuer_key_id.as_slice()))
        .unwrap_or_else(|| "<issuing CA>".to_owned());
    println!("publish it: ironclad ca crl --pki {} --ca {issuing_ca}", args.pki.display());
    Ok(())
}
