//! `ironclad server enroll cert`: enroll one device by its certificate.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Enroll one device by its certificate.
///
/// Enabled by default; --disabled records a block instead: an individual enrollment is looked
/// up before any group, so a disabled one refuses this device even inside an enabled family. The certificate must still chain to a CA the
/// server trusts (a group-enrolled CA or a `serve --trust-anchor`).
///
/// Needs an operator token ($IRONCLAD_TOKEN or --token-file).
///
/// Example:
///   ironclad server enroll cert --cert cam-000001.pem \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem --token-file ops.token
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct ServerEnrollCertArgs {
    /// The device certificate (PEM).
    #[arg(long, value_name = "PEM")]
    cert: PathBuf,
    /// Enroll it disabled (a block for this one device).
    #[arg(long)]
    disabled: bool,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the enrollment as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ServerEnrollCertArgs) -> Result<()> {
    let pem_text =
        std::fs::read_to_string(&args.cert).with_context(|| format!("reading {}", args.cert.display()))?;
    let info = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.enroll_certificate(&pem_text, !args.disabled).await.context("enrolling the certificate")
    })?;
    if args.json {
        return print_json(&json!({ "id": info.id, "status": info.status, "device_id": info.device_id }));
    }
    println!(
        "individual enrollment {} ({}) is {}",
        info.id,
        info.device_id.as_deref().unwrap_or("no device ID"),
        info.status
    );
    Ok(())
}
