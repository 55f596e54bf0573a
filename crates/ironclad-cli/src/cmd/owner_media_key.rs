//! `ironclad owner media-key`: the key of one of your devices' camera streams.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_se::{Overwrite, atomic_write};
use zeroize::Zeroizing;

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Fetch the AES-128 key of a device's media stream, to decrypt or play it.
///
/// With an owner token, only for devices you claimed; with an operator token (--as-operator),
/// for any device that has authenticated (audited). The key is written to --out (mode 0600,
/// 16 raw bytes, what `ironclad media decrypt-hls --key-file` and an HLS player's key URI
/// want); it is printed only with --json.
///
/// Example:
///   IRONCLAD_TOKEN=icl_... ironclad owner media-key cam-0042 front --out front.key \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OwnerMediaKeyArgs {
    /// The device ID.
    device: String,
    /// The stream name, e.g. front.
    stream: String,
    /// Write the 16-byte key to this new file (mode 0600).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Use the operator endpoint (operator token) instead of the owner one.
    #[arg(long)]
    as_operator: bool,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the key (hex) and its id as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OwnerMediaKeyArgs) -> Result<()> {
    if args.out.is_none() && !args.json {
        bail!("say where the key goes: --out FILE (or --json to print it)");
    }
    let key = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        let key = if args.as_operator {
            client.operator_media_key(&args.device, &args.stream).await
        } else {
            client.owner_media_key(&args.device, &args.stream).await
        };
        key.with_context(|| format!("fetching the key of {}/{}", args.device, args.stream))
    })?;
    if let Some(path) = &args.out {
        let raw = Zeroizing::new(hex::decode(&key.key_hex).context("the server sent a malformed key")?);
        atomic_write(path, &raw, Overwrite::Refuse).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        return print_json(&key);
    }
    if let Some(path) = &args.out {
        println!("{} written to {}", key.key_id, path.display());
    }
    Ok(())
}
