//! `ironclad logs list`: a device's uploaded (encrypted) log files.

use anyhow::{Context, Result};
use clap::Args;
use hyper::Method;

use crate::output::{print_json, table};
use crate::remote::{OperatorArgs, runtime};

/// List the encrypted log files a device uploaded, newest first (needs an operator token).
/// Read one with `ironclad logs show <upload-id>`.
///
/// Example:
///   ironclad logs list cam-0042 --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct LogsListArgs {
    /// The device ID.
    device: String,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: LogsListArgs) -> Result<()> {
    let listed = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client
            .call(Method::GET, &format!("/v1/registry/devices/{}/logs", args.device), None)
            .await
            .context("listing logs")
    })?;
    if args.json {
        return print_json(&listed);
    }
    let rows: Vec<Vec<String>> = listed
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|u| {
            vec![
                u["id"].as_str().unwrap_or_default().to_owned(),
                u["size"].to_string(),
                u["uploaded_at"].to_string(),
            ]
        })
        .collect();
    println!("{}", table(&["UPLOAD", "BYTES", "UPLOADED (UNIX)"], &rows));
    Ok(())
}
