//! `ironclad ca init`: a new PKI directory with its root CA.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ironclad_pki::RootCaParams;
use ironclad_se::{DirSe, KeyAlgorithm, Overwrite, SecureElement, atomic_write};
use ironclad_se_pkcs11::Pkcs11Uri;
use serde_json::json;

use crate::output::print_json;
use crate::pki_dir::{KeyBackend, PkiDir, open_token};
use crate::secrets::{CaKeyArgs, kdf_params};

/// Create a PKI directory with a self-signed root CA whose key never leaves its key store.
///
/// Create a PKI directory and a self-signed root CA whose key is generated inside the CA key
/// store and never leaves it. The store is either an encrypted software store in <pki>/keys
/// (passphrase-protected; the default) or a PKCS#11 token (--pkcs11-uri), where keys are
/// generated sensitive and never extractable. The directory records which, without any PIN;
/// later commands (ca intermediate, cert issue, cert issue-batch, ca crl) use the same backend.
///
/// The whole directory appears at once when the command succeeds; on failure nothing is left.
///
/// Example (software store):
///   export IRONCLAD_PASSPHRASE='a long ceremony passphrase'
///   ironclad ca init --pki ./pki --cn "Acme Device Root CA" --org Acme --country US
///
/// Example (HSM; the token's `object` names the root key, default `root`):
///   export IRONCLAD_PKCS11_PIN=...   # or --pin-file /run/secrets/hsm-pin
///   URI='pkcs11:token=acme-ca;object=acme-root?module-path=/usr/lib/softhsm/libsofthsm2.so'
///   ironclad ca init --pki ./pki --cn "Acme Device Root CA" --pkcs11-uri "$URI"
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
    /// Keep the CA keys on this PKCS#11 token (RFC 7512 URI with token= and ?module-path=)
    /// instead of a software store. Its PIN comes from --pin-file, the URI's pin-source or
    /// $IRONCLAD_PKCS11_PIN; pin-value is refused.
    #[arg(long, value_name = "URI")]
    pkcs11_uri: Option<String>,
    #[command(flatten)]
    keys: CaKeyArgs,
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
    let uri = args.pkcs11_uri.as_deref().map(Pkcs11Uri::parse).transpose()?;
    let backend = match &uri {
        Some(uri) => KeyBackend::pkcs11(uri)?,
        None => KeyBackend::Software,
    };
    // Log in first: a wrong PIN or token should fail before anything is made.
    let token = uri.as_ref().map(|uri| open_token(uri, &args.keys)).transpose()?;
    // Build beside the target and rename at the end, so a failure leaves nothing behind.
    let parent = args.pki.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(parent)?;
    let staging = tempfile::Builder::new().prefix(".pki-init-").tempdir_in(parent)?;
    let pki = PkiDir::create(staging.path(), backend)?;
    let se: Arc<dyn SecureElement> = match token {
        Some(token) => Arc::new(token),
        None => Arc::new(DirSe::create(pki.keys_dir(), &args.keys.unlock.resolve(true)?, kdf_params())?),
    };
    let label = pki.root_key_label()?;
    se.generate_key(&label, args.algorithm.into())
        .with_context(|| format!("generating root key `{label}`"))?;
    let made = (|| -> Result<_> {
        let signer = PkiDir::signer(&se, &label)?;
        let root = ironclad_pki::create_root(&signer, &root_params, time::OffsetDateTime::now_utc())
            .context("creating the root certificate")?;
        atomic_write(&pki.root_cert_path(), root.pem().as_bytes(), Overwrite::Refuse)?;
        if args.pki.exists() {
            std::fs::remove_dir(&args.pki)?;
        }
        std::fs::rename(staging.path(), &args.pki)
            .with_context(|| format!("moving the new PKI into {}", args.pki.display()))?;
        Ok(root)
    })();
    let root = match made {
        Ok(root) => {
            let _ = staging.keep(); // renamed into place: nothing left to clean up
            root
        }
        Err(err) => {
            // A token outlives the staging directory: leave no orphaned root key on it.
            let _ = se.delete_key(&label);
            return Err(err);
        }
    };

    if args.json {
        return print_json(&json!({
            "pki": args.pki,
            "root": { "subject": root.subject(), "sha256": root.sha256_fingerprint(),
                      "not_after": root.not_after().to_string(), "key_algorithm": KeyAlgorithm::from(args.algorithm).name(),
                      "key": label.as_str(), "backend": if uri.is_some() { "pkcs11" } else { "software" } },
        }));
    }
    println!("created PKI in {}", args.pki.display());
    println!("  root CA   {}", root.subject());
    println!("  SHA-256   {}", root.sha256_fingerprint());
    println!(
        "  key       `{label}` ({}) {}",
        KeyAlgorithm::from(args.algorithm),
        pki.backend().describe(&args.pki)
    );
    println!("next: ironclad ca intermediate --pki {} --name line-1 --family <product>", args.pki.display());
    Ok(())
}
