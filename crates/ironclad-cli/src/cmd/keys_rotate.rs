//! `ironclad keys rotate`: a new version of a managed key.

use anyhow::{Context, Result};
use clap::Args;

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Rotate a managed key: the vault makes a new version (in the secure element for signing
/// keys, sealed under the master key otherwise) and retires the current one, which stays
/// readable for what it already protects (old log records, recorded streams).
///
/// Needs an admin token ($IRONCLAD_TOKEN or --token-file). The rotation is audited.
///
/// Examples:
///   ironclad keys rotate media --subject cam-0042/front --server ... --server-ca ...
///   ironclad keys rotate command-signing --server ... --server-ca ...
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct KeysRotateArgs {
    /// log, media, user-data, manifest-signing, command-signing or firmware-decryption.
    usage: String,
    /// Whose key: a device ID (log, user-data) or DEVICE/STREAM (media); none for signing keys.
    #[arg(long, default_value = "")]
    subject: String,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the new key's listing as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: KeysRotateArgs) -> Result<()> {
    let key = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.rotate_key(&args.usage, &args.subject).await.context("rotating")
    })?;
    if args.json {
        return print_json(&key);
    }
    println!("{} is now current (version {})", key["id"].as_str().unwrap_or_default(), key["version"]);
    Ok(())
}
