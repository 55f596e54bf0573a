//! `ironclad server revoke`: refuse a device certificate from now on.

use anyhow::{Context, Result};
use clap::Args;
use ironclad_pki::RevocationReason;

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Revoke a device certificate at the registry, by serial.
///
/// Every server sharing the database refuses it on its next request, and its open sessions
/// stop working. For outside parties, revoke in the PKI and publish the CA's CRL instead (or
/// as well): `ironclad cert revoke`, `ironclad ca crl`, `ironclad server crl publish`.
///
/// Needs an operator token ($IRONCLAD_TOKEN or --token-file).
///
/// Example:
///   ironclad server revoke --serial 5f1c0a9e... --reason key-compromise \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem --token-file ops.token
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct ServerRevokeArgs {
    /// Certificate serial (hex, any spelling: colons, 0x, upper or lower case).
    #[arg(long)]
    serial: String,
    /// RFC 5280 reason: unspecified, key-compromise, ca-compromise, affiliation-changed,
    /// superseded, cessation-of-operation, certificate-hold, privilege-withdrawn.
    #[arg(long, default_value = "unspecified")]
    reason: String,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ServerRevokeArgs) -> Result<()> {
    let reason: RevocationReason = args.reason.parse()?;
    let answer = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.revoke(&args.serial, reason.name()).await.context("revoking")
    })?;
    if args.json {
        return print_json(&answer);
    }
    let new = answer["newly_revoked"].as_bool().unwrap_or(false);
    println!(
        "serial {} {} ({})",
        args.serial,
        if new { "revoked" } else { "was already revoked" },
        reason.name()
    );
    Ok(())
}
