//! `ironclad ota rollout status`: one rollout with each device's state, or every rollout.

use anyhow::{Context, Result};
use clap::Args;

use crate::cmd::ota_io::{describe_status, rollouts_table};
use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Show a rollout and where each of its devices is; without an id, list every rollout.
///
/// Device states: offered, downloading, installed, trial, confirmed, failed (the device's
/// reason: bad-manifest, expired, digest-mismatch, bad-image, trial-failed...), and
/// refused-downgrade. Needs a viewer token or better.
///
/// Example:
///   ironclad ota rollout status 41b2...9c --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
///   ironclad ota rollout status --json ...          # every rollout
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OtaRolloutStatusArgs {
    /// The rollout id (omit to list all).
    rollout: Option<String>,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OtaRolloutStatusArgs) -> Result<()> {
    let rt = runtime()?;
    match &args.rollout {
        Some(id) => {
            let status = rt.block_on(async {
                let mut client = args.operator.connect().await?;
                client.rollout_status(id).await.context("reading the rollout")
            })?;
            if args.json {
                return print_json(&status);
            }
            println!("{}", describe_status(&status));
        }
        None => {
            let rollouts = rt.block_on(async {
                let mut client = args.operator.connect().await?;
                client.rollouts().await.context("listing rollouts")
            })?;
            if args.json {
                return print_json(&rollouts);
            }
            if rollouts.is_empty() {
                println!("no rollout yet (ironclad ota rollout start)");
            } else {
                println!("{}", rollouts_table(&rollouts));
            }
        }
    }
    Ok(())
}
