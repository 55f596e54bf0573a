//! `ironclad pair controller list`: paired accessories, or one accessory's pairings.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};

use crate::cmd::pair_io::{ControllerStoreArgs, accessory_json, describe_device};
use crate::output::{print_json, table};
use crate::remote::runtime;

/// List the accessories this controller paired with, or (--alias) the pairings an accessory holds.
///
/// Without --alias it reads only the controller's store. With --alias it asks the accessory over
/// a verified session for every controller paired with it (HAP List Pairings; admin only).
///
/// Examples:
///   ironclad pair controller list
///   ironclad pair controller list --alias lamp --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct PairControllerListArgs {
    #[command(flatten)]
    store: ControllerStoreArgs,
    /// List the pairings held by this accessory instead.
    #[arg(long)]
    alias: Option<String>,
    /// Connect to this HOST:PORT instead of the recorded address.
    #[arg(long, value_name = "HOST:PORT", requires = "alias")]
    address: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: PairControllerListArgs) -> Result<()> {
    let controller = args.store.open(false)?;
    let Some(alias) = args.alias.clone() else {
        let records = controller.store().accessories()?;
        if args.json {
            let list: Vec<Value> = records.iter().map(accessory_json).collect();
            return print_json(&json!({"controller_id": controller.id().to_string(), "accessories": list}));
        }
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                vec![
                    r.alias.clone(),
                    r.address.clone(),
                    r.pairing.id.to_string(),
                    describe_device(r.device.as_ref()),
                ]
            })
            .collect();
        println!("{}", table(&["ALIAS", "ADDRESS", "DEVICE ID", "DEVICE CERTIFICATE"], &rows));
        return Ok(());
    };
    let target = crate::cmd::pair_io::AliasArgs { alias, address: args.address.clone() };
    let record = target.record(&controller)?;
    let pairings = runtime()?
        .block_on(async { controller.connect_to(&record).await?.list_pairings().await })
        .with_context(|| format!("listing the pairings of {}", record.alias))?;
    if args.json {
        let list: Vec<Value> = pairings
            .iter()
            .map(|p| {
                json!({"id": p.id.to_string(), "public_key": hex::encode(p.public_key),
                       "admin": p.permissions.is_admin(), "this_controller": &p.id == controller.id()})
            })
            .collect();
        return print_json(&json!({"alias": record.alias, "pairings": list}));
    }
    let rows: Vec<Vec<String>> = pairings
        .iter()
        .map(|p| {
            let who = if &p.id == controller.id() { "this controller" } else { "" };
            let role = if p.permissions.is_admin() { "admin" } else { "user" };
            vec![p.id.to_string(), role.to_owned(), hex::encode(&p.public_key[..8]), who.to_owned()]
        })
        .collect();
    println!("{}", table(&["CONTROLLER", "PERMISSIONS", "KEY (first 8 bytes)", ""], &rows));
    Ok(())
}
