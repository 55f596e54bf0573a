//! `ironclad server crl publish`: hand a group CA's CRL to the registry.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Publish a CRL signed by an enrolled group (family) CA.
///
/// The server checks it against the enrolled CA certificate (issuer name, key identifier,
/// signature, cRLSign), its freshness (thisUpdate not in the future, nextUpdate not passed)
/// and its CRL number, which must be higher than the current CRL's: a replayed or reordered
/// CRL is refused. It then becomes the CA's current CRL, and the certificates it lists are
/// refused by every server sharing the registry from their next request on. Re-publishing the
/// current CRL is harmless ("unchanged").
///
/// The CRL comes from the PKI (`ironclad cert revoke` then `ironclad ca crl`), DER or PEM.
/// Outside parties fetch it from where you mirror it: `ironclad server crl get`.
///
/// Needs an operator token ($IRONCLAD_TOKEN or --token-file).
///
/// Example:
///   ironclad ca crl --pki ./pki --ca line-1 --out line-1.crl
///   ironclad server crl publish line-1.crl \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem --token-file ops.token
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct ServerCrlPublishArgs {
    /// The CRL file (DER, or PEM "X509 CRL").
    crl: PathBuf,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the server's answer as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ServerCrlPublishArgs) -> Result<()> {
    let bytes = std::fs::read(&args.crl).with_context(|| format!("reading {}", args.crl.display()))?;
    let answer = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.publish_crl(&bytes).await.context("publishing the CRL")
    })?;
    if args.json {
        return print_json(&answer);
    }
    println!(
        "CRL {} of {} (group enrollment {}): {} revoked, {}",
        answer["number"].as_str().unwrap_or("?"),
        answer["ca"].as_str().unwrap_or("?"),
        answer["enrollment_id"].as_str().unwrap_or("?"),
        answer["entries"],
        answer["outcome"].as_str().unwrap_or("?"),
    );
    Ok(())
}
