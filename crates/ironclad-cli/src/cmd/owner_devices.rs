//! `ironclad owner devices`: the devices an owner claimed.

use anyhow::{Context, Result};
use clap::Args;

use crate::output::{print_json, table};
use crate::remote::{OperatorArgs, runtime};

/// List the devices you claimed (needs an owner token).
///
/// Example:
///   IRONCLAD_TOKEN=icl_... ironclad owner devices --server 127.0.0.1:8443 \
///       --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OwnerDevicesArgs {
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OwnerDevicesArgs) -> Result<()> {
    let devices = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.owned_devices().await.context("listing devices")
    })?;
    if args.json {
        return print_json(&devices);
    }
    if devices.is_empty() {
        println!("no devices yet: pair one and give it a claim code (ironclad owner claim-code)");
        return Ok(());
    }
    let rows: Vec<Vec<String>> =
        devices.iter().map(|d| vec![d.device_id.clone(), d.claimed_at.to_string()]).collect();
    println!("{}", table(&["DEVICE", "CLAIMED AT (UNIX)"], &rows));
    Ok(())
}
