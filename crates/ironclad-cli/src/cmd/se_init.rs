//! `ironclad se init`: create a software secure element.

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::output::print_json;
use crate::secrets::StoreArgs;

/// Create an empty software secure element (an encrypted key store directory).
///
/// With a passphrase the key-encryption key comes from Argon2id (64 MiB, 2 passes); with
/// --device-secret-file it comes from HKDF over a device-unique secret of at least 16 bytes.
///
/// Example:
///   IRONCLAD_PASSPHRASE=... ironclad se init --store ./ca-keys
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct SeInitArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: SeInitArgs) -> Result<()> {
    args.store.create()?;
    if args.json {
        print_json(&json!({ "store": args.store.store }))
    } else {
        println!("created key store {}", args.store.store.display());
        Ok(())
    }
}
