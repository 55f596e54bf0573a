//! `ironclad ota rollout start`: roll a release out to a group.

use anyhow::{Context, Result};
use clap::Args;

use crate::cmd::ota_io::describe_rollout;
use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Start rolling a release out to a group of devices, at a first percentage.
///
/// The group is an enrollment id (`server enroll group` printed it): the devices that
/// enrollment admits. Each device falls in a bucket 0-99, fixed per (device, release); it is
/// offered the release when its bucket is below the stage's percentage, so raising the stage
/// (`ota rollout stage`) only adds devices. A new rollout replaces the group's live one; one
/// below the group's current release (lower security counter or version) is refused as a
/// downgrade. Needs an operator token.
///
/// Example:
///   ironclad ota rollout start --release r5f0c3a9e12b4d7e1 --group 8d3c...e1 --percentage 10 \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OtaRolloutStartArgs {
    /// The release id (`ota release list`).
    #[arg(long)]
    release: String,
    /// The group: an enrollment id.
    #[arg(long)]
    group: String,
    /// First stage, percent of the group's devices.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    percentage: u8,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the rollout as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OtaRolloutStartArgs) -> Result<()> {
    let rollout = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.start_rollout(&args.release, &args.group, args.percentage).await.context("rollout refused")
    })?;
    if args.json {
        return print_json(&rollout);
    }
    println!("{}", describe_rollout(&rollout));
    Ok(())
}
