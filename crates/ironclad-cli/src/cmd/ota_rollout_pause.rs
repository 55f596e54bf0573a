//! `ironclad ota rollout pause`.

use anyhow::{Context, Result};
use clap::Args;

use crate::cmd::ota_io::describe_rollout;
use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Pause a rollout: no new offers; devices already updating finish.
///
/// A paused rollout keeps its stage; `ota rollout resume` goes on from there.
/// Needs an operator token.
///
/// Example:
///   ironclad ota rollout pause 41b2...9c --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OtaRolloutPauseArgs {
    /// The rollout id.
    rollout: String,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the rollout as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OtaRolloutPauseArgs) -> Result<()> {
    let rollout = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.rollout_action(&args.rollout, "pause").await.context("pause refused")
    })?;
    if args.json {
        return print_json(&rollout);
    }
    println!("{}", describe_rollout(&rollout));
    Ok(())
}
