//! `ironclad server disable`: disable (or re-enable) an enrollment.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Disable (or re-enable) an enrollment.
///
/// A disabled group refuses its whole family (a compromised line), a disabled individual
/// enrollment refuses one device even inside an enabled group. Takes effect on the next
/// request of every server sharing the database. --enable undoes it.
///
/// Needs an operator token ($IRONCLAD_TOKEN or --token-file).
///
/// Example:
///   ironclad server disable 3f9d0c5e6a1b47c8a0e2d4f6b8c0e1a2 \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem --token-file ops.token
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct ServerDisableArgs {
    /// The enrollment ID (from `server enroll ...` or the operator API).
    id: String,
    /// Enable it again instead.
    #[arg(long)]
    enable: bool,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the enrollment as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ServerDisableArgs) -> Result<()> {
    let info = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.set_enabled(&args.id, args.enable).await.context("changing the enrollment")
    })?;
    if args.json {
        return print_json(&json!({ "id": info.id, "status": info.status, "device_id": info.device_id }));
    }
    println!("enrollment {} is {}", info.id, info.status);
    Ok(())
}
