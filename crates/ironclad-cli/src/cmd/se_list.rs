//! `ironclad se list`: what a secure element holds.

use anyhow::Result;
use clap::Args;
use ironclad_se::{KeyStore, MonotonicCounter, SealedStore};
use serde_json::json;

use crate::output::{print_json, table};
use crate::secrets::StoreArgs;

/// List the keys and sealed objects of a secure element.
///
/// List the keys (algorithm, public-key fingerprint) and sealed objects of a secure element.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct SeListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: SeListArgs) -> Result<()> {
    let se = args.store.open()?;
    let keys = se.list_keys()?;
    let objects = se.list_objects()?;
    if args.json {
        let keys: Vec<_> = keys
            .iter()
            .map(|k| {
                json!({"label": k.id.as_str(), "algorithm": k.public.algorithm().name(),
                       "public_key": hex::encode(k.public.as_bytes())})
            })
            .collect();
        let objects: Vec<_> = objects
            .iter()
            .map(|o| Ok(json!({"name": o.as_str(), "len": se.get_object(o)?.len()})))
            .collect::<Result<_>>()?;
        return print_json(&json!({ "keys": keys, "objects": objects }));
    }
    let rows: Vec<_> = keys
        .iter()
        .map(|k| {
            vec![k.id.to_string(), k.public.algorithm().to_string(), k.public.fingerprint()[..16].to_owned()]
        })
        .collect();
    println!("{}", table(&["KEY", "ALGORITHM", "FINGERPRINT"], &rows));
    if !objects.is_empty() {
        let rows: Vec<_> = objects
            .iter()
            .map(|o| Ok(vec![o.to_string(), se.get_object(o)?.len().to_string(), se.counter(o)?.to_string()]))
            .collect::<Result<_>>()?;
        println!("\n{}", table(&["OBJECT", "BYTES", "COUNTER"], &rows));
    }
    Ok(())
}
