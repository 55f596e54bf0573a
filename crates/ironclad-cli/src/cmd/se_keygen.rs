//! `ironclad se keygen`: generate a key inside a secure element.

use anyhow::{Context, Result};
use clap::Args;
use ironclad_se::{KeyAlgorithm, KeyStore, Label};
use serde_json::json;

use crate::output::print_json;
use crate::secrets::StoreArgs;

/// Generate a key inside a secure element; only its public part is ever shown.
///
/// Algorithms: ecdsa-p256 (device identity, CA keys), ed25519 (signatures), ecdh-p256 and
/// x25519 (firmware decryption), secret256 (HKDF and key wrapping).
///
/// Example:
///   ironclad se keygen --store ./device-se --label device-auth --algorithm ecdsa-p256
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct SeKeygenArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Name of the new key ([A-Za-z0-9._-], up to 64 characters).
    #[arg(long)]
    label: Label,
    /// Key algorithm.
    #[arg(long, default_value = "ecdsa-p256")]
    algorithm: KeyAlgorithm,
    /// Also create the store if it does not exist yet.
    #[arg(long)]
    init: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: SeKeygenArgs) -> Result<()> {
    let se = if args.init && !args.store.store.join("store.json").exists() {
        args.store.create()?
    } else {
        args.store.open()?
    };
    let public =
        se.generate_key(&args.label, args.algorithm).with_context(|| format!("generating {}", args.label))?;
    let spki = public.spki_der().map(|der| pem::encode(&pem::Pem::new("PUBLIC KEY", der)));
    if args.json {
        return print_json(&json!({
            "label": args.label.as_str(),
            "algorithm": args.algorithm.name(),
            "public_key": hex::encode(public.as_bytes()),
            "public_key_pem": spki,
            "fingerprint": public.fingerprint(),
        }));
    }
    println!("generated {} key `{}` in {}", args.algorithm, args.label, args.store.store.display());
    println!("fingerprint (SHA-256 of public key): {}", public.fingerprint());
    if let Some(pem) = spki {
        print!("{pem}");
    }
    Ok(())
}
