//! `ironclad logs show`: one uploaded log, decrypted by the server.

use anyhow::{Context, Result};
use clap::Args;
use hyper::Method;

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Show an uploaded log file, decrypted by the server with the device's log key from its vault
/// (needs an operator token; every read is audited). Each record is shown with its outcome:
/// ok, or altered / damaged / truncated / missing / out_of_order — a bad record never hides the
/// others.
///
/// Example:
///   ironclad logs show 3f9a0c1d2e4b5a6978695a4b --server 127.0.0.1:8443 \
///       --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct LogsShowArgs {
    /// The upload ID (from `ironclad logs list`).
    upload: String,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the decrypted report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: LogsShowArgs) -> Result<()> {
    let report = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.call(Method::GET, &format!("/v1/logs/{}", args.upload), None).await.context("reading the log")
    })?;
    if args.json {
        return print_json(&report);
    }
    println!(
        "log {} of {} ({} bytes, key {}): {} records opened{}",
        args.upload,
        report["device_id"].as_str().unwrap_or_default(),
        report["size"],
        report["key_id"].as_str().unwrap_or_default(),
        report["opened"],
        if report["intact"] == true { "" } else { ", DAMAGE FOUND" }
    );
    for r in report["records"].as_array().map(Vec::as_slice).unwrap_or_default() {
        match r["status"].as_str().unwrap_or_default() {
            "ok" => println!(
                "{:>6} {} {:<5} {}",
                r["sequence"],
                r["time"],
                r["level"].as_str().unwrap_or_default(),
                r["message"].as_str().unwrap_or_default()
            ),
            other => println!(
                "{:>6} !! {other} at offset {} {}",
                r["sequence"].as_u64().map(|s| s.to_string()).unwrap_or("-".into()),
                r["offset"],
                r.get("error").and_then(|e| e.as_str()).unwrap_or_default()
            ),
        }
    }
    Ok(())
}
