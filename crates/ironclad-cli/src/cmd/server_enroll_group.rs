//! `ironclad server enroll group`: enroll a family (line) CA, with proof of possession.

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use serde_json::json;

use crate::output::print_json;
use crate::pki_dir::PkiDir;
use crate::remote::{OperatorArgs, runtime};
use crate::secrets::CaKeyArgs;

/// Enroll a family (line) CA as a group, with proof of possession of its key.
///
/// Every device whose chain passes through the CA is admitted (unless disabled one by one).
/// The server hands out a verification code; a certificate whose CN is that code, signed by
/// the CA's key, proves the CA is yours (as Azure DPS does).
///
/// With --pki and --ca both steps run here, the code signed by the CA key in the PKI's key
/// store (passphrase from $IRONCLAD_PASSPHRASE or --passphrase-file, or the token PIN). With
/// the key elsewhere, run step 1 with --ca-cert, have the CA sign a certificate with CN = the
/// printed code, then step 2 with --id and --verification-cert.
///
/// Needs an operator token ($IRONCLAD_TOKEN or --token-file).
///
/// Example:
///   ironclad server enroll group --pki ./pki --ca line-1 \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem --token-file ops.token
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct ServerEnrollGroupArgs {
    /// PKI directory holding the CA (with --ca).
    #[arg(long, env = "IRONCLAD_PKI", requires = "ca")]
    pki: Option<PathBuf>,
    /// Name of the CA in the PKI (e.g. line-1): both steps, signed with its key.
    #[arg(long, conflicts_with_all = ["ca_cert", "id"])]
    ca: Option<String>,
    /// Step 1 only: the CA certificate (PEM); prints the enrollment ID and verification code.
    #[arg(long, value_name = "PEM", conflicts_with = "id")]
    ca_cert: Option<PathBuf>,
    /// Step 2 only: the pending enrollment's ID.
    #[arg(long, requires = "verification_cert")]
    id: Option<String>,
    /// Step 2 only: the verification certificate (PEM) signed by the CA, CN = the code.
    #[arg(long, value_name = "PEM", requires = "id")]
    verification_cert: Option<PathBuf>,
    /// Free text kept with the enrollment.
    #[arg(long, default_value = "")]
    note: String,
    #[command(flatten)]
    keys: CaKeyArgs,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the enrollment as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ServerEnrollGroupArgs) -> Result<()> {
    let read = |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let rt = runtime()?;
    let (info, step) = match (&args.ca, &args.ca_cert, &args.id) {
        (Some(name), None, None) => {
            let pki_path = args.pki.clone().unwrap_or_else(|| PathBuf::from("pki"));
            let pki = PkiDir::open(&pki_path)?;
            let (cert, key) = pki.issuing_ca(name, &args.keys)?;
            let note = if args.note.is_empty() { format!("family CA {name}") } else { args.note.clone() };
            let info = rt.block_on(async {
                let mut client = args.operator.connect().await?;
                let pending =
                    client.enroll_group(&cert.pem(), &note).await.context("starting the enrollment")?;
                let code = pending.verification_code.context("the server sent no verification code")?;
                let proof = ironclad_server::make_verification_certificate(cert.der(), &key, &code)?;
                let proof_pem = pem::encode(&pem::Pem::new("CERTIFICATE", proof));
                client.prove_group(&pending.id, &proof_pem).await.context("proof of possession")
            })?;
            ensure!(info.status == "enabled", "the enrollment is {} after the proof", info.status);
            (info, "enrolled")
        }
        (None, Some(ca_cert), None) => {
            let pem_text = read(ca_cert)?;
            let info = rt.block_on(async {
                args.operator
                    .connect()
                    .await?
                    .enroll_group(&pem_text, &args.note)
                    .await
                    .map_err(anyhow::Error::from)
            })?;
            (info, "pending")
        }
        (None, None, Some(id)) => {
            let Some(path) = &args.verification_cert else { bail!("--id needs --verification-cert") };
            let pem_text = read(path)?;
            let info = rt.block_on(async {
                args.operator.connect().await?.prove_group(id, &pem_text).await.map_err(anyhow::Error::from)
            })?;
            (info, "enrolled")
        }
        _ => bail!("give --pki/--ca (both steps), --ca-cert (step 1) or --id/--verification-cert (step 2)"),
    };
    if args.json {
        return print_json(&json!({
            "id": info.id, "status": info.status, "verification_code": info.verification_code, "step": step,
        }));
    }
    match &info.verification_code {
        Some(code) if step == "pending" => {
            println!("group enrollment {} pending proof of possession", info.id);
            println!("verification code: {code}");
            println!(
                "have the CA sign a certificate with CN={code}, then run again with --id {} --verification-cert FILE",
                info.id
            );
        }
        _ => println!("group enrollment {} is {}", info.id, info.status),
    }
    Ok(())
}
