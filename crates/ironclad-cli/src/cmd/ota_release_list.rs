//! `ironclad ota release list`: uploaded releases, or one release's devices.

use anyhow::{Context, Result};
use clap::Args;

use crate::cmd::ota_io::{devices_table, releases_table};
use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// List releases; with --devices RELEASE, each device's progress with that release.
///
/// Device states: offered, downloading, installed, trial, confirmed, failed (with the device's
/// reason), refused-downgrade. Needs a viewer token or better.
///
/// Example:
///   ironclad ota release list --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
///   ironclad ota release list --devices r5f0c3a9e12b4d7e1 --json ...
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OtaReleaseListArgs {
    /// Show this release's devices instead.
    #[arg(long, value_name = "RELEASE")]
    devices: Option<String>,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OtaReleaseListArgs) -> Result<()> {
    let rt = runtime()?;
    if let Some(release) = &args.devices {
        let devices = rt.block_on(async {
            let mut client = args.operator.connect().await?;
            client.release_devices(release).await.context("listing the release's devices")
        })?;
        if args.json {
            return print_json(&devices);
        }
        if devices.is_empty() {
            println!("no device was offered {release} yet");
        } else {
            println!("{}", devices_table(&devices));
        }
        return Ok(());
    }
    let releases = rt.block_on(async {
        let mut client = args.operator.connect().await?;
        client.releases().await.context("listing releases")
    })?;
    if args.json {
        return print_json(&releases);
    }
    if releases.is_empty() {
        println!("no release uploaded yet (ironclad ota release upload)");
    } else {
        println!("{}", releases_table(&releases));
    }
    Ok(())
}
