//! `ironclad owner claim-code`: a one-time code that lets a device join its owner.

use anyhow::{Context, Result};
use clap::Args;

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Get a one-time claim code for a device you are pairing (needs an owner token).
///
/// Hand the code to the device over the pairing session (the controller's cloud
/// delegation, see docs/pairing.md); the device redeems it over its own
/// mutual-TLS session, and from then on it is yours: `ironclad owner devices` lists it and
/// `ironclad owner media-key` reads its stream keys. A code works once and expires after
/// 10 minutes; a device that belongs to someone else refuses to be claimed.
///
/// Example:
///   IRONCLAD_TOKEN=icl_... ironclad owner claim-code --server 127.0.0.1:8443 \
///       --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OwnerClaimCodeArgs {
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the code and its expiry as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OwnerClaimCodeArgs) -> Result<()> {
    let code = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.new_claim_code().await.context("asking for a claim code")
    })?;
    if args.json {
        return print_json(&code);
    }
    println!("{}", code.code);
    eprintln!("one-time claim code; expires at {} (unix seconds)", code.expires_at);
    Ok(())
}
