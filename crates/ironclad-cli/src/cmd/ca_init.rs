//! `ironclad ca init`: a new PKI directory with its root CA.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ironclad_pki::RootCaParams;
use ironclad_se::{DirSe, KeyAlgorithm, Label, Overwrite, SecureElement, atomic_write};
use serde_json::json;

use crate::output::print_json;
use crate::pki_dir::{PkiDir, ROOT_KEY};
use crate::secrets::{UnlockArgs, kdf_params};

/// Create a PKI directory with a self-signed root CA whose key never leaves its key store.
///
/// Create a PKI directory: a CA key store (encrypted, passphrase-protected) and a self-signed root
/// CA whose key is generated inside it and never leaves.
///
/// The whole directory appears at once when the command succeeds; on failure nothing is left.
///
/// Example:
///   export IRONCLAD_PASSPHRASE='a long ceremony passphrase'
///   ironclad ca init --pki ./pki --cn "Acme Device Root CA" --org Acme --country US
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CaInitArgs {
    /// PKI directory to create (must not exist, or be empty).
    #[arg(long, env = "IRONCLAD_PKI", default_value = "pki")]
    pki: PathBuf,
    /// Root subject common name.
    #[arg(long, default_value = "ironclad Device Root CA")]
    cn: String,
    /// Subject organization.
    #[arg(long, default_value = "ironclad")]
    org: String,
    /// Subject country (ISO 3166 two letters).
    #[arg(long, default_value = "US")]
    country: String,
    /// Root lifetime in years.
    #[arg(long, default_value_t = 25)]
    years: u16,
    /// Root key algorithm.
    #[arg(long, value_enum, default_value_t = CaAlgorithm::EcdsaP256)]
    algorithm: CaAlgorithm,
    #[command(flatten)]
    unlock: UnlockArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Signature algorithms a CA key may use.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum CaAlgorithm {
    /// ECDSA P-256 with SHA-256 (Matter, the seed's sample certificate).
    EcdsaP256,
    /// Ed25519.
    Ed25519,
}

impl From<CaAlgorithm> for KeyAlgorithm {
    fn from(alg: CaAlgorithm) -> Self {
        match alg {
            CaAlgorithm::EcdsaP256 => KeyAlgorithm::EcdsaP256,
            CaAlgorithm::Ed25519 => KeyAlgorithm::Ed25519,
        }
    }
}

pub(crate) fn run(args: CaInitArgs) -> Result<()> {
    if args.pki.exists() && std::fs::read_dir(&args.pki)?.next().is_some() {
        bail!("{} exists and is not empty; `ca init` creates a new PKI directory", args.pki.display());
    }
    let mut root_params = RootCaParams::new(&args.cn, &args.org, &args.country);
    root_params.validity_years = args.years;
    let unlock = args.unlock.resolve(true)?;
    // Build beside the target and rename at the end, so a failure leaves nothing behind.
    let parent = args.pki.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(parent)?;
    let staging = tempfile::Builder::new().prefix(".pki-init-").tempdir_in(parent)?;
    let pki = PkiDir::create(staging.path())?;
    let se: Arc<dyn SecureElement> = Arc::new(DirSe::create(pki.keys_dir(), &unlock, kdf_params())?);
    let label = Label::new(ROOT_KEY)?;
    se.generate_key(&label, args.algorithm.into())?;
    let signer = PkiDir::signer(&se, &label)?;
    let root = ironclad_pki::create_root(&signer, &root_params, time::OffsetDateTime::now_utc())
        .context("creating the root certificate")?;
    atomic_write(&pki.root_cert_path(), root.pem().as_bytes(), Overwrite::Refuse)?;
    if args.pki.exists() {
        std::fs::remove_dir(&args.pki)?;
    }
    let staging = staging.keep();
    std::fs::rename(&staging, &args.pki)
        .with_context(|| format!("moving the new PKI into {}", args.pki.display()))?;

    if args.json {
        return print_json(&json!({
            "pki": args.pki,
            "root": { "subject": root.subject(), "sha256": root.sha256_fingerprint(),
                      "not_after": root.not_after().to_string(), "key_algorithm": KeyAlgorithm::from(args.algorithm).name() },
        }));
    }
    println!("created PKI in {}", args.pki.display());
    println!("  root CA   {}", root.subject());
    println!("  SHA-256   {}", root.sha256_fingerprint());
    println!(
        "  key       `{ROOT_KEY}` ({}) in {}/keys (encrypted; never exported)",
        KeyAlgorithm::from(args.algorithm),
        args.pki.display()
    );
    println!("next: ironclad ca intermediate --pki {} --name line-1 --family <product>", args.pki.display());
    Ok(())
}
