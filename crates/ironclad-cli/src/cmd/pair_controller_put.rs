//! `ironclad pair controller put`: write characteristics over a verified session.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use crate::cmd::pair_io::{AliasArgs, ControllerStoreArgs, parse_assignment};
use crate::output::print_json;
use crate::remote::runtime;

/// Write characteristics of a paired accessory (pair-verify, then PUT /characteristics).
///
/// Each CHAR=VALUE takes the value as JSON (true, 42, "text") or, if it is not JSON, as a
/// string. CHAR is AID.IID or a name (on, name). A refused write reports the accessory's HAP
/// status (read-only, invalid value, ...).
///
/// Examples:
///   ironclad pair controller put --alias lamp on=true
///   ironclad pair controller put --alias lamp 'name="kitchen lamp"' on=false
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct PairControllerPutArgs {
    #[command(flatten)]
    store: ControllerStoreArgs,
    #[command(flatten)]
    target: AliasArgs,
    /// Values to write.
    #[arg(value_name = "CHAR=VALUE", required = true)]
    writes: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: PairControllerPutArgs) -> Result<()> {
    let writes = args.writes.iter().map(|w| parse_assignment(w)).collect::<Result<Vec<_>>>()?;
    let controller = args.store.open(false)?;
    let record = args.target.record(&controller)?;
    runtime()?
        .block_on(async { controller.connect_to(&record).await?.put(&writes).await })
        .with_context(|| format!("writing to {}", record.alias))?;
    if args.json {
        let written: serde_json::Map<String, serde_json::Value> =
            writes.into_iter().map(|(id, v)| (id.to_string(), v)).collect();
        return print_json(&json!({"alias": record.alias, "written": written}));
    }
    for (id, value) in writes {
        println!("{id} = {value} (written)");
    }
    Ok(())
}
