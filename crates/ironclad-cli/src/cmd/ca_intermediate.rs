//! `ironclad ca intermediate`: an issuing CA for a factory line or product family.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use ironclad_pki::IntermediateCaParams;
use serde_json::json;

use super::ca_init::CaAlgorithm;
use crate::ca_ops::create_intermediate_ca;
use crate::output::print_json;
use crate::pki_dir::{PkiDir, ProfileFile};
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
    let pki = PkiDir::open(&args.pki)?;
    let profile = ProfileFile {
        organization: args.org.clone(),
        country: args.country.clone(),
        family: args.family.clone(),
        validity: args.device_validity.clone(),
    };
    let cn = args.cn.clone().unwrap_or_else(|| format!("{} {} CA", args.org, args.name));
    let mut params = IntermediateCaParams::new(&cn, &args.org, &args.country);
    params.validity_years = args.years;

    let se = pki.open_keys(&args.keys)?;
    let cert = create_intermediate_ca(&pki, &se, &args.name, &params, &profile, args.algorithm.into())?;
    let ca_dir = pki.ca_dir(&args.name);
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
