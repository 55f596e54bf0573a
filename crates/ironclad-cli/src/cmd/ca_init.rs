//! `ironclad ca init`: a new PKI directory with its root CA.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use ironclad_pki::RootCaParams;
use ironclad_se::KeyAlgorithm;
use ironclad_se_pkcs11::Pkcs11Uri;
use serde_json::json;

use crate::ca_ops::{RootKey, StagedPki};
use crate::output::print_json;
use crate::secrets::CaKeyArgs;

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
    let mut root_params = RootCaParams::new(&args.cn, &args.org, &args.country);
    root_params.validity_years = args.years;
    let uri = args.pkcs11_uri.as_deref().map(Pkcs11Uri::parse).transpose()?;
    let unlock = if uri.is_none() { Some(args.keys.unlock.resolve(true)?) } else { None };
    let mut staged = StagedPki::begin(&args.pki, uri.as_ref(), &args.keys, unlock.as_ref())?;
    let (root, _) = staged.create_root(&root_params, RootKey::Generate(args.algorithm.into()))?;
    let label = staged.pki().root_key_label()?;
    let pki = staged.publish()?;

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
