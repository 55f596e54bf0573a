//! `ironclad ca intermediate`: an issuing CA for a factory line or product family.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_pki::{CaIssuer, IntermediateCaParams};
use ironclad_se::{Overwrite, atomic_write};
use serde_json::json;

use super::ca_init::CaAlgorithm;
use crate::output::print_json;
use crate::pki_dir::{PkiDir, ProfileFile, validate_ca_name};
use crate::secrets::CaKeyArgs;

/// Create an intermediate CA (one per factory line or product family), signed by the root.
///
/// Create an intermediate CA signed by the root (pathLen 0: it can only certify devices), with its
/// key generated in the CA key store, and the device-certificate profile it will issue under
/// (organization, country, product family, validity).
///
/// Example:
///   ironclad ca intermediate --pki ./pki --name line-1 --cn "Acme Shenzhen Line 1 CA" \
///       --family acme-cam-v2 --device-validity 30y
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CaIntermediateArgs {
    #[arg(long, env = "IRONCLAD_PKI", default_value = "pki")]
    pki: PathBuf,
    /// Short name of the CA (directory and key label), e.g. line-1.
    #[arg(long)]
    name: String,
    /// Subject common name (default: "<root O> <name> CA").
    #[arg(long)]
    cn: Option<String>,
    /// Subject organization, also used in device certificates.
    #[arg(long, default_value = "ironclad")]
    org: String,
    /// Subject country, also used in device certificates.
    #[arg(long, default_value = "US")]
    country: String,
    /// CA lifetime in years.
    #[arg(long, default_value_t = 15)]
    years: u16,
    /// Product family written into every device certificate's family extension.
    #[arg(long)]
    family: String,
    /// Device-certificate lifetime: 30y (default, like the seed's sample), 90d, 24h, or none.
    #[arg(long, default_value = "30y")]
    device_validity: String,
    /// CA key algorithm.
    #[arg(long, value_enum, default_value_t = CaAlgorithm::EcdsaP256)]
    algorithm: CaAlgorithm,
    #[command(flatten)]
    keys: CaKeyArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CaIntermediateArgs) -> Result<()> {
    validate_ca_name(&args.name)?;
    let pki = PkiDir::open(&args.pki)?;
    let ca_dir = pki.ca_dir(&args.name);
    if ca_dir.exists() {
        bail!("CA {:?} already exists in {}", args.name, args.pki.display());
    }
    let profile = ProfileFile {
        organization: args.org.clone(),
        country: args.country.clone(),
        family: args.family.clone(),
        validity: args.device_validity.clone(),
    };
    profile.to_profile().context("device profile")?;
    let cn = args.cn.clone().unwrap_or_else(|| format!("{} {} CA", args.org, args.name));
    let mut params = IntermediateCaParams::new(&cn, &args.org, &args.country);
    params.validity_years = args.years;

    let se = pki.open_keys(&args.keys)?;
    let root_cert = pki.root_cert()?;
    let root_key = PkiDir::signer(&se, &pki.root_key_label()?)?;
    let root = CaIssuer::new(&root_cert, &root_key)?;
    let label = PkiDir::ca_key_label(&args.name)?;
    se.generate_key(&label, args.algorithm.into()).with_context(|| format!("generating CA key `{label}`"))?;
    let made = (|| -> Result<_> {
        let key = PkiDir::signer(&se, &label)?;
        let cert = ironclad_pki::create_intermediate(&root, &key, &params, time::OffsetDateTime::now_utc())?;
        let staging = tempfile::Builder::new().prefix(".ca-").tempdir_in(pki.path().join("ca"))?;
        atomic_write(&staging.path().join("cert.pem"), cert.pem().as_bytes(), Overwrite::Refuse)?;
        let chain = format!("{}{}", cert.pem(), root_cert.pem());
        atomic_write(&staging.path().join("chain.pem"), chain.as_bytes(), Overwrite::Refuse)?;
        atomic_write(
            &staging.path().join("profile.json"),
            &serde_json::to_vec_pretty(&profile)?,
            Overwrite::Refuse,
        )?;
        std::fs::rename(staging.keep(), &ca_dir)?;
        Ok(cert)
    })();
    let cert = match made {
        Ok(cert) => cert,
        Err(err) => {
            // Leave no orphaned key behind a CA that was never created.
            let _ = se.delete_key(&label);
            return Err(err);
        }
    };
    if args.json {
        return print_json(&json!({
            "name": args.name, "subject": cert.subject(), "sha256": cert.sha256_fingerprint(),
            "not_after": cert.not_after().to_string(), "family": args.family,
            "chain": ca_dir.join("chain.pem"),
        }));
    }
    println!("created intermediate CA {:?}", args.name);
    println!("  subject   {}", cert.subject());
    println!("  SHA-256   {}", cert.sha256_fingerprint());
    println!(
        "  issues    family {:?}, O={}, C={}, validity {}",
        args.family, args.org, args.country, args.device_validity
    );
    println!("  chain     {}", ca_dir.join("chain.pem").display());
    Ok(())
}
