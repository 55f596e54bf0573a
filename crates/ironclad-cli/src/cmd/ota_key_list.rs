//! `ironclad ota key list`: the registered firmware-verification keys.

use anyhow::{Context, Result};
use clap::Args;

use crate::output::{print_json, table};
use crate::remote::{OperatorArgs, runtime};

/// List the mastering public keys releases are verified against.
///
/// The key hash is MCUboot's KEYHASH (SHA-256 of the SubjectPublicKeyInfo): `ironclad fw
/// inspect` shows which one an image names. Needs a viewer token or better.
///
/// Example:
///   ironclad ota key list --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OtaKeyListArgs {
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the keys as JSON (with their PEM).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OtaKeyListArgs) -> Result<()> {
    let keys = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.ota_keys().await.context("listing firmware-verification keys")
    })?;
    if args.json {
        return print_json(&keys);
    }
    if keys.is_empty() {
        println!("no firmware-verification key registered (ironclad ota key add)");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| vec![k.key_hash.clone(), k.algorithm.clone(), k.name.clone(), k.created_by.clone()])
        .collect();
    println!("{}", table(&["KEY HASH", "ALGORITHM", "NAME", "BY"], &rows));
    Ok(())
}
