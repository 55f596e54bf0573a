//! `ironclad pair controller remove`: remove a pairing.

use anyhow::{Context, Result};
use clap::Args;
use ironclad_hap::PairingId;
use serde_json::json;

use crate::cmd::pair_io::{AliasArgs, ControllerStoreArgs};
use crate::output::print_json;
use crate::remote::runtime;

/// Remove a pairing: by default this controller's own (unpair), or another controller's.
///
/// Over a verified session the accessory deletes the pairing (admin only) and closes that
/// controller's sessions; when no admin is left it forgets every pairing and can be set up again.
/// Removing our own pairing also forgets the accessory here. --local-only forgets it here without
/// contacting it (the accessory is gone or was reset; it keeps its record of us otherwise).
///
/// Examples:
///   ironclad pair controller remove --alias lamp
///   ironclad pair controller remove --alias lamp --pairing-id 6A0C4B0F-5C31-4F1D-9A38-0E0C1F5E1C11
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct PairControllerRemoveArgs {
    #[command(flatten)]
    store: ControllerStoreArgs,
    #[command(flatten)]
    target: AliasArgs,
    /// Remove this controller's pairing instead of ours.
    #[arg(long, value_name = "ID", conflicts_with = "local_only")]
    pairing_id: Option<String>,
    /// Only forget the accessory in our store.
    #[arg(long)]
    local_only: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: PairControllerRemoveArgs) -> Result<()> {
    let controller = args.store.open(false)?;
    let record = args.target.record(&controller)?;
    let id: PairingId = match &args.pairing_id {
        Some(id) => id.parse().context("--pairing-id")?,
        None => controller.id().clone(),
    };
    let ours = &id == controller.id();
    if !args.local_only {
        runtime()?
            .block_on(async { controller.connect_to(&record).await?.remove_pairing(&id).await })
            .with_context(|| format!("removing pairing {id} from {}", record.alias))?;
    }
    if ours {
        controller.store().remove_accessory(&record.alias)?;
    }
    if args.json {
        return print_json(&json!({"alias": record.alias, "removed": id.to_string(), "forgotten": ours,
                                  "accessory_contacted": !args.local_only}));
    }
    match (ours, args.local_only) {
        (true, true) => println!("forgot {} here (the accessory was not contacted)", record.alias),
        (true, false) => println!("unpaired from {} and forgot it", record.alias),
        _ => println!("removed controller {id} from {}", record.alias),
    }
    Ok(())
}
