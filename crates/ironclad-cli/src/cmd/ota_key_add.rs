//! `ironclad ota key add`: register a firmware-verification (mastering) public key.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::cmd::fw_io::read_public_pem;
use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Register a mastering public key: the server accepts only releases signed by a registered key.
///
/// The mastering (firmware signing) key never comes near the server: it stays in the release
/// team's secure element (`ironclad fw keygen`), and only its public half is registered here.
/// Every upload is verified against the registered keys. Registering one is a trust decision:
/// it needs an admin token ($IRONCLAD_TOKEN or --token-file).
///
/// Example:
///   ironclad fw keygen --store release-se --init --label fw-mastering --out mastering.pub.pem
///   ironclad ota key add --name "release team 2026" --public-key mastering.pub.pem \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OtaKeyAddArgs {
    /// A name for operators.
    #[arg(long)]
    name: String,
    /// The mastering public key (PEM: `fw keygen --out`, `imgtool getpub -e pem`).
    #[arg(long, value_name = "PEM")]
    public_key: PathBuf,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the registered key as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OtaKeyAddArgs) -> Result<()> {
    let der = read_public_pem(&args.public_key)?;
    let pem_text = pem::encode(&pem::Pem::new("PUBLIC KEY", der));
    let key = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.add_ota_key(&args.name, &pem_text).await.context("registering the key")
    })?;
    if args.json {
        return print_json(&key);
    }
    println!("registered {} key {:?}: key hash {}", key.algorithm, key.name, key.key_hash);
    Ok(())
}
