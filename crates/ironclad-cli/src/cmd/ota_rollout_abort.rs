//! `ironclad ota rollout abort`.

use anyhow::{Context, Result};
use clap::Args;

use crate::cmd::ota_io::describe_rollout;
use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Abort a rollout: no more offers and no more downloads of it.
///
/// Devices that already confirmed the release keep it (their anti-rollback counter moved);
/// the group's current release for downgrade checks becomes the one before. An aborted
/// rollout cannot be resumed: start a new one.
/// Needs an operator token.
///
/// Example:
///   ironclad ota rollout abort 41b2...9c --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OtaRolloutAbortArgs {
    /// The rollout id.
    rollout: String,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the rollout as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: OtaRolloutAbortArgs) -> Result<()> {
    let rollout = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.rollout_action(&args.rollout, "abort").await.context("abort refused")
    })?;
    if args.json {
        return print_json(&rollout);
    }
    println!("{}", describe_rollout(&rollout));
    Ok(())
}
