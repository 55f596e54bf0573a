//! `ironclad command send`: a command signed by the server for one device.

use anyhow::{Context, Result};
use clap::Args;
use hyper::Method;
use serde_json::json;

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Send a signed command to a device (needs an operator token).
///
/// The server signs it (COSE_Sign1, ES256) with its command key, which never leaves its secure
/// element, binding the target device, the device's next sequence number and an expiry. The
/// device checks the signature against the key it pinned, its own ID, that the sequence is
/// above the last it accepted (kept in its secure element's monotonic counter) and the expiry;
/// a replayed, reordered, retargeted, expired or altered command is refused and reported.
/// `ironclad command list` shows what each device reported.
///
/// Example:
///   ironclad command send cam-0042 set-stream-quality --args '{"resolution":"1080p"}' \
///       --ttl 120 --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CommandSendArgs {
    /// The target device ID (it must have authenticated at least once).
    device: String,
    /// The command name, e.g. reboot, set-stream-quality.
    name: String,
    /// Arguments as JSON (carried as CBOR inside the signed command).
    #[arg(long, default_value = "null")]
    args: String,
    /// Seconds the command stays valid (1 to 604800).
    #[arg(long, default_value_t = 300)]
    ttl: u64,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the issued command (sequence, kid, expiry, COSE bytes) as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CommandSendArgs) -> Result<()> {
    let parsed: serde_json::Value = serde_json::from_str(&args.args).context("--args is not JSON")?;
    let issued = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        let body = json!({"name": args.name, "args": parsed, "ttl_secs": args.ttl});
        client
            .call(Method::POST, &format!("/v1/registry/devices/{}/commands", args.device), Some(&body))
            .await
            .with_context(|| format!("sending {} to {}", args.name, args.device))
    })?;
    if args.json {
        return print_json(&issued);
    }
    println!(
        "command {} #{} for {} signed with {} (valid until {})",
        args.name,
        issued["sequence"],
        args.device,
        issued["kid"].as_str().unwrap_or_default(),
        issued["expires_at"]
    );
    Ok(())
}
