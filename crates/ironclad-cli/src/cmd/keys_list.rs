//! `ironclad keys list`: the cloud key vault's catalog.

use anyhow::{Context, Result};
use clap::Args;

use crate::output::{print_json, table};
use crate::remote::{OperatorArgs, runtime};

/// List the keys the cloud manages: ids, usages, subjects, versions, ages. Never material.
///
/// Usages: log (per-device log keys), media (per-device, per-stream camera keys), user-data,
/// manifest-signing and command-signing (the server's signing keys, generated inside its
/// secure element; their public key is shown with --json), firmware-decryption (the X25519 key
/// OTA releases are encrypted to, also inside the secure element). Symmetric keys are stored sealed
/// under the vault's master key, which never leaves the server's secure element. A retired
/// version was replaced by a rotation and is kept only to read what it protected.
///
/// Needs a viewer token or better ($IRONCLAD_TOKEN or --token-file).
///
/// Example:
///   ironclad keys list --usage media --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct KeysListArgs {
    /// Only keys of this usage: log, media, user-data, manifest-signing, command-signing,
    /// firmware-decryption.
    #[arg(long)]
    usage: Option<String>,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the catalog as JSON.
    #[arg(long)]
    json: bool,
}

/// "3d 4h", "12m", "40s".
pub(crate) fn age(secs: i64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
        s if s >= 3_600 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub(crate) fn run(args: KeysListArgs) -> Result<()> {
    let keys = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.keys(args.usage.as_deref()).await.context("listing keys")
    })?;
    if args.json {
        return print_json(&keys);
    }
    let rows: Vec<Vec<String>> = keys
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|k| {
            vec![
                k["id"].as_str().unwrap_or_default().to_owned(),
                k["usage"].as_str().unwrap_or_default().to_owned(),
                k["subject"].as_str().filter(|s| !s.is_empty()).unwrap_or("(server)").to_owned(),
                k["version"].to_string(),
                k["storage"].as_str().unwrap_or_default().to_owned(),
                age(k["age_secs"].as_i64().unwrap_or(0)),
                if k["retired_at"].is_null() { "current".to_owned() } else { "retired".to_owned() },
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no keys yet (the vault creates each key on first use)");
    } else {
        println!("{}", table(&["ID", "USAGE", "SUBJECT", "VERSION", "STORAGE", "AGE", "STATUS"], &rows));
    }
    Ok(())
}
