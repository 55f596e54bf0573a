//! `ironclad command list`: a device's commands and what it reported.

use anyhow::{Context, Result};
use clap::Args;
use hyper::Method;

use crate::output::{print_json, table};
use crate::remote::{OperatorArgs, runtime};

/// List a device's signed commands, newest first, with the outcome the device reported in its
/// signed telemetry: pending, executed, or refused:<reason> (replayed, stale, wrong-target,
/// expired, bad-signature, malformed). Needs a viewer token or better.
///
/// Example:
///   ironclad command list cam-0042 --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CommandListArgs {
    /// The device ID.
    device: String,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CommandListArgs) -> Result<()> {
    let listed = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client
            .call(Method::GET, &format!("/v1/registry/devices/{}/commands", args.device), None)
            .await
            .context("listing commands")
    })?;
    if args.json {
        return print_json(&listed);
    }
    let rows: Vec<Vec<String>> = listed
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            vec![
                c["sequence"].to_string(),
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["issued_by"].as_str().unwrap_or_default().to_owned(),
                c["expires_at"].to_string(),
            ]
        })
        .collect();
    println!("{}", table(&["SEQ", "NAME", "STATUS", "ISSUED BY", "EXPIRES (UNIX)"], &rows));
    Ok(())
}
