//! `ironclad pair controller delegate`: hand the device its cloud endpoint and claim token.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_hap::CloudDelegation;
use serde_json::json;
use zeroize::Zeroizing;

use crate::cmd::pair_io::{AliasArgs, ControllerStoreArgs};
use crate::output::print_json;
use crate::remote::runtime;

/// Delegate cloud access to a paired device over the verified, encrypted session.
///
/// Sends the device the cloud server's URL, the CA certificate(s) its TLS certificate chains to
/// (the trust anchor; `ironclad serve` writes ironclad-server-ca.pem) and an opaque account
/// claim token. The device accepts it from an admin controller only, checks it (https URL, CA
/// certificates, sizes) and seals it in its secure element before answering; it is never
/// readable over HAP. No cloud sees it on the way: only the device and this controller hold the
/// session keys. The claim token is a secret: from a file or an environment variable, never argv.
///
/// Example:
///   IRONCLAD_CLAIM_TOKEN=... ironclad pair controller delegate --alias cam \
///       --endpoint https://cloud.example.com:8443 --trust-anchor ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct PairControllerDelegateArgs {
    #[command(flatten)]
    store: ControllerStoreArgs,
    #[command(flatten)]
    target: AliasArgs,
    /// The cloud server, https://HOST[:PORT][/PATH].
    #[arg(long, value_name = "URL")]
    endpoint: String,
    /// The CA certificate(s) (PEM) the server's certificate chains to.
    #[arg(long, value_name = "PEM")]
    trust_anchor: PathBuf,
    /// Read the claim token from this file (first line).
    #[arg(long, value_name = "FILE")]
    claim_token_file: Option<PathBuf>,
    /// Read the claim token from this environment variable.
    #[arg(long, value_name = "VAR", default_value = "IRONCLAD_CLAIM_TOKEN")]
    claim_token_env: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn claim_token(args: &PairControllerDelegateArgs) -> Result<Zeroizing<String>> {
    if let Some(path) = &args.claim_token_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        );
        return Ok(Zeroizing::new(text.lines().next().unwrap_or_default().trim().to_owned()));
    }
    match std::env::var(&args.claim_token_env) {
        Ok(v) if !v.trim().is_empty() => Ok(Zeroizing::new(v.trim().to_owned())),
        _ => bail!("no claim token: set ${} or pass --claim-token-file", args.claim_token_env),
    }
}

pub(crate) fn run(args: PairControllerDelegateArgs) -> Result<()> {
    let anchor = std::fs::read_to_string(&args.trust_anchor)
        .with_context(|| format!("reading the trust anchor {}", args.trust_anchor.display()))?;
    let token = claim_token(&args)?;
    let delegation = CloudDelegation::new(args.endpoint.clone(), anchor, token.as_str())?;
    let controller = args.store.open(false)?;
    let record = args.target.record(&controller)?;
    runtime()?
        .block_on(async { controller.connect_to(&record).await?.delegate(&delegation).await })
        .with_context(|| format!("delegating cloud access to {}", record.alias))?;
    if args.json {
        return print_json(
            &json!({"alias": record.alias, "endpoint": delegation.endpoint(), "delegated": true}),
        );
    }
    println!(
        "{} now holds, sealed in its secure element, the delegation to {}",
        record.alias,
        delegation.endpoint()
    );
    Ok(())
}
