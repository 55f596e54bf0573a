//! `ironclad ca list`: the CAs of a PKI directory.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::output::{print_json, table};
use crate::pki_dir::PkiDir;

/// List the root and intermediate CAs with fingerprints, validity and device profile.
///
/// List the root and intermediate CAs with their fingerprints, validity and device profile.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CaListArgs {
    #[arg(long, env = "IRONCLAD_PKI", default_value = "pki")]
    pki: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CaListArgs) -> Result<()> {
    let pki = PkiDir::open(&args.pki)?;
    let root = pki.root_cert()?;
    let mut rows = vec![vec![
        "(root)".to_owned(),
        root.subject().to_owned(),
        root.not_after().date().to_string(),
        "-".to_owned(),
        root.sha256_fingerprint()[..16].to_owned(),
    ]];
    let mut cas = Vec::new();
    for name in pki.ca_names()? {
        let cert = pki.ca_cert(&name)?;
        let profile = pki.ca_profile(&name)?;
        rows.push(vec![
            name.clone(),
            cert.subject().to_owned(),
            cert.not_after().date().to_string(),
            profile.family.clone(),
            cert.sha256_fingerprint()[..16].to_owned(),
        ]);
        cas.push(json!({"name": name, "subject": cert.subject(), "not_after": cert.not_after().to_string(),
                        "sha256": cert.sha256_fingerprint(), "profile": profile}));
    }
    if args.json {
        return print_json(&json!({
            "root": {"subject": root.subject(), "not_after": root.not_after().to_string(), "sha256": root.sha256_fingerprint()},
            "intermediates": cas,
            "backend": pki.backend(),
        }));
    }
    println!("{}", table(&["NAME", "SUBJECT", "EXPIRES", "FAMILY", "SHA-256"], &rows));
    println!("CA keys {}", pki.backend().describe(&args.pki));
    Ok(())
}
