//! `ironclad ota rollout stage`: move a rollout to a new percentage.

use anyhow::{Context, Result};
use clap::Args;

use crate::cmd::ota_io::describe_rollout;
use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Set a rollout's stage: the percentage of the group's devices offered the release.
///
/// Raising it adds devices (buckets are fixed per device and release); lowering it stops new
/// offers above it, while updates already under way finish. Needs an operator token.
///
/// Example:
///   ironclad ota rollout stage 41b2...9c --percentage 100 \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OtaRolloutStageArgs {
    /// The rollout id.
    rollout: String,
    /// Percent of the group's devices.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    percentage: u8,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the rollout as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OtaRolloutStageArgs) -> Result<()> {
    let rollout = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.stage_rollout(&args.rollout, args.percentage).await.context("stage refused")
    })?;
    if args.json {
        return print_json(&rollout);
    }
    println!("{}", describe_rollout(&rollout));
    Ok(())
}
