//! `ironclad server crl get`: fetch a group CA's current CRL, to mirror it for outsiders.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_se::{Overwrite, atomic_write};
use serde_json::json;

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Fetch the current CRL of a group enrollment's CA and write it to a file.
///
/// The server answers only authenticated callers, so outside parties get the CRL from a
/// static host you copy it to (the URL in your certificates' CRL distribution point). The
/// file is written atomically (temporary file, fsync, rename): a web server never serves half
/// a CRL. A file already holding a CRL with a higher number is not replaced (a mirror never
/// goes back). DER by default (what `application/pkix-crl` means); --pem for PEM.
///
/// Needs any operator token, viewer or above ($IRONCLAD_TOKEN or --token-file).
///
/// Example:
///   ironclad server crl get 3f0c9a... --out /srv/www/crl/line-1.crl \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem --token-file viewer.token
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct ServerCrlGetArgs {
    /// The CA's group enrollment ID (`ironclad server enroll group` prints it).
    enrollment: String,
    /// Where to write the CRL.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Write PEM ("X509 CRL") instead of DER.
    #[arg(long)]
    pem: bool,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ServerCrlGetArgs) -> Result<()> {
    let der = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.crl(&args.enrollment).await.context("fetching the CRL")
    })?;
    let crl =
        ironclad_server::parse_crl(&der).map_err(|e| anyhow::anyhow!("the server sent a bad CRL: {e}"))?;
    if let Ok(existing) = std::fs::read(&args.out)
        && let Ok(old) = ironclad_server::parse_crl(&existing)
        && old.number() > crl.number()
    {
        bail!(
            "{} holds CRL number {}, newer than the server's {}; not replaced",
            args.out.display(),
            old.number(),
            crl.number()
        );
    }
    let bytes =
        if args.pem { pem::encode(&pem::Pem::new("X509 CRL", der.clone())).into_bytes() } else { der };
    atomic_write(&args.out, &bytes, Overwrite::Replace)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let stale = crl.next_update() <= now;
    if args.json {
        return print_json(&json!({
            "out": args.out.display().to_string(), "number": crl.number().to_string(), "issuer": crl.issuer(),
            "entries": crl.entries(), "next_update": crl.next_update(), "stale": stale,
        }));
    }
    println!(
        "wrote CRL {} of {} ({} revoked) to {}",
        crl.number(),
        crl.issuer(),
        crl.entries(),
        args.out.display()
    );
    if stale {
        eprintln!(
            "warning: its nextUpdate has passed; publish a fresh CRL (ironclad ca crl, server crl publish)"
        );
    }
    Ok(())
}
