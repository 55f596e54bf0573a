//! `ironclad pair controller get`: read characteristics over a verified session.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Map, Value};

use crate::cmd::pair_io::{AliasArgs, ControllerStoreArgs, parse_char};
use crate::output::print_json;
use crate::remote::runtime;

/// Read characteristics of a paired accessory (pair-verify, then GET /characteristics).
///
/// CHAR is AID.IID (as /accessories lists them) or a name of the ironclad demo accessory: on,
/// name, model, manufacturer, serial-number, firmware.
///
/// Examples:
///   ironclad pair controller get --alias lamp on name
///   ironclad pair controller get --alias sensor 1.10 --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct PairControllerGetArgs {
    #[command(flatten)]
    store: ControllerStoreArgs,
    #[command(flatten)]
    target: AliasArgs,
    /// Characteristics to read.
    #[arg(value_name = "CHAR", required = true)]
    chars: Vec<String>,
    /// Print the values as JSON ({"1.11": true, ...}).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: PairControllerGetArgs) -> Result<()> {
    let ids = args.chars.iter().map(|c| parse_char(c)).collect::<Result<Vec<_>>>()?;
    let controller = args.store.open(false)?;
    let record = args.target.record(&controller)?;
    let values = runtime()?
        .block_on(async { controller.connect_to(&record).await?.get(&ids).await })
        .with_context(|| format!("reading from {}", record.alias))?;
    if args.json {
        let map: Map<String, Value> = values.into_iter().map(|(id, v)| (id.to_string(), v)).collect();
        return print_json(&map);
    }
    for (id, value) in values {
        println!("{id} = {value}");
    }
    Ok(())
}
