//! `ironclad ceremony verify`: is this transcript intact, and is it this PKI's ceremony?

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_pki::transcript::Transcript;
use serde_json::json;

use crate::output::{print_json, table};
use crate::pki_dir::PkiDir;

/// Verify a ceremony transcript: every step's hash, every link to the previous step, and the
/// root's signature over the last one. The first altered step is named. With --pki, also check
/// that the transcript's root key is that PKI's root.
///
/// Example:
///   ironclad ceremony verify ./pki/ceremony/transcript.json --pki ./pki
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CeremonyVerifyArgs {
    /// The transcript (transcript.json).
    transcript: PathBuf,
    /// The PKI the ceremony created.
    #[arg(long)]
    pki: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CeremonyVerifyArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.transcript)
        .with_context(|| format!("reading {}", args.transcript.display()))?;
    let transcript = Transcript::from_json(&text)?;
    let spki = transcript.verify().with_context(|| format!("REFUSED {}", args.transcript.display()))?;
    if let Some(dir) = &args.pki {
        let root = PkiDir::open(dir)?.root_cert()?;
        if root.spki_der() != spki.as_slice() {
            bail!("REFUSED: the transcript's root key is not the root of {}", dir.display());
        }
    }
    let spki_sha256 = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki));
    if args.json {
        return print_json(&json!({
            "valid": true, "steps": transcript.entries.len(), "root_spki_sha256": spki_sha256,
            "entries": transcript.entries,
        }));
    }
    let rows: Vec<Vec<String>> = transcript
        .entries
        .iter()
        .map(|e| vec![e.seq.to_string(), e.time.clone(), e.step.clone(), e.hash[..16].to_owned()])
        .collect();
    println!("{}", table(&["#", "TIME", "STEP", "HASH"], &rows));
    println!("OK: {} steps intact, sealed by the root key (SPKI SHA-256 {spki_sha256})", rows.len());
    Ok(())
}
