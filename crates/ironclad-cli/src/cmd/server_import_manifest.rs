//! `ironclad server import-manifest`: bulk enrollment from a factory manifest.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Import a factory manifest: bulk enrollment of the devices it lists.
///
/// Every line (JSON, as written by `ironclad factory provision --manifest` or
/// `ironclad cert issue-batch`) becomes an enabled individual enrollment by certificate
/// fingerprint, in one transaction. Lines already enrolled are counted, not
/// duplicated, so importing twice is harmless; one bad line fails the whole import and is
/// named. The devices must chain to a CA the server trusts: start it with
/// `--trust-anchor <fleet root>`.
///
/// Needs an operator token ($IRONCLAD_TOKEN or --token-file).
///
/// Example:
///   ironclad server import-manifest manifest.jsonl \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem --token-file ops.token
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct ServerImportManifestArgs {
    /// The manifest (JSON lines).
    manifest: PathBuf,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the import report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ServerImportManifestArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.manifest)
        .with_context(|| format!("reading {}", args.manifest.display()))?;
    let report = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.import_manifest(&text).await.context("importing the manifest")
    })?;
    if args.json {
        return print_json(&report);
    }
    println!(
        "{}: {} records, {} newly enrolled, {} already enrolled",
        args.manifest.display(),
        report["records"],
        report["inserted"],
        report["existing"]
    );
    Ok(())
}
