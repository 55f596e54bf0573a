//! `ironclad ota encryption-key`: the server's firmware-decryption public key.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::cmd::fw_io::AtomicOut;
use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Fetch the public key that releases are encrypted to.
///
/// The server's X25519 firmware-decryption key is generated inside its secure element (key
/// vault usage `firmware-decryption`). Master a release encrypted to it (`fw sign
/// --encrypt-to`); on upload the server unwraps the content key inside the element, and for
/// each device re-wraps it to that device's own key. Needs a viewer token or better.
///
/// Example:
///   ironclad ota encryption-key --out server-ota.pub.pem \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
///   ironclad fw sign --store release-se --key fw-mastering --version 1.1.0 -s 2 -H 0x200 \
///       --product-class 6f1c5a1e-7a2b-4c3d-8e4f-0123456789ab \
///       --encrypt-to server-ota.pub.pem app.bin release-1.1.0.bin
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OtaEncryptionKeyArgs {
    /// Write the PEM here (otherwise printed).
    #[arg(long, value_name = "PEM")]
    out: Option<PathBuf>,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the key id and PEM as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OtaEncryptionKeyArgs) -> Result<()> {
    let key = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.ota_encryption_key().await.context("fetching the server's firmware-decryption key")
    })?;
    let pem_text = key["public_key_pem"].as_str().context("the answer has no public_key_pem")?;
    if let Some(out) = &args.out {
        let mut file = AtomicOut::create(out)?;
        file.write_all(pem_text.as_bytes())?;
        file.commit()?;
    }
    if args.json {
        return print_json(&key);
    }
    match &args.out {
        Some(out) => println!("{} written to {}", key["key_id"].as_str().unwrap_or_default(), out.display()),
        None => print!("{pem_text}"),
    }
    Ok(())
}
