//! `ironclad ceremony recover`: rebuild an offline-backup root key from M shares.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_pki::PublicKeyData;
use ironclad_pki::shamir::{self, Share};
use ironclad_pki::transcript::Transcript;
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement};
use serde_json::{Value, json};

use crate::output::print_json;
use crate::pki_dir::PkiDir;
use crate::secrets::CaKeyArgs;

/// Rebuild the root key of an offline-backup ceremony from any M of its N shares.
///
/// Every share is checked against its own checksum and against the fingerprints recorded in
/// the (verified) transcript, and the rebuilt key against the transcript's root key; a
/// corrupted or foreign share is named, and fewer than M shares are refused. Without
/// --into-pki this is a recovery drill: nothing is stored. With it, the key is imported into
/// that PKI's CA key backend as its root key (which must be missing).
///
/// Example:
///   ironclad ceremony recover --transcript pki/ceremony/transcript.json \
///       --share alice.txt --share carol.txt --share erin.txt --into-pki ./pki
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CeremonyRecoverArgs {
    /// The ceremony transcript.
    #[arg(long)]
    transcript: PathBuf,
    /// A share file (repeat for each holder present).
    #[arg(long = "share", required = true)]
    shares: Vec<PathBuf>,
    /// Import the rebuilt key into this PKI's CA key backend.
    #[arg(long)]
    into_pki: Option<PathBuf>,
    #[command(flatten)]
    keys: CaKeyArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CeremonyRecoverArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.transcript)
        .with_context(|| format!("reading {}", args.transcript.display()))?;
    let transcript = Transcript::from_json(&text)?;
    let root_spki = transcript.verify().context("the transcript must be intact to recover from it")?;
    let step = |name: &str| transcript.entries.iter().find(|e| e.step == name).map(|e| &e.detail);
    let split = step("backup-split")
        .context("this ceremony made no backup (its root was generated in the backend)")?;
    let known: Vec<&str> = split["holders"]
        .as_array()
        .map(|hs| hs.iter().filter_map(|h| h["sha256"].as_str()).collect())
        .unwrap_or_default();
    let alg = step("root-key")
        .and_then(|d| d["algorithm"].as_str())
        .and_then(KeyAlgorithm::from_name)
        .context("the transcript does not name the root key's algorithm")?;

    let mut shares = Vec::new();
    for (i, path) in args.shares.iter().enumerate() {
        let position = i + 1;
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading share #{position} ({})", path.display()))?,
        );
        let share = Share::from_text(&text, position).with_context(|| path.display().to_string())?;
        if !known.contains(&share.fingerprint().as_str()) {
            bail!(
                "share #{position} ({}) is not one of the shares handed out in this ceremony (corrupted or from another backup)",
                path.display()
            );
        }
        shares.push(share);
    }
    let raw = shamir::combine(&shares)?;
    // Check the rebuilt key against the transcript before it goes anywhere.
    let check: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let probe = Label::new("recovered")?;
    check.import_key(&probe, alg, &raw).context("the shares do not rebuild a valid key")?;
    if KeyHandle::open(check, &probe)?.subject_public_key_info() != root_spki {
        bail!("the rebuilt key is not this ceremony's root key: a share is wrong");
    }
    let holders: Vec<String> = shares.iter().map(|s| s.index().to_string()).collect();
    let imported = match &args.into_pki {
        Some(dir) => {
            let pki = PkiDir::open(dir)?;
            let se = pki.open_keys(&args.keys)?;
            let label = pki.root_key_label()?;
            se.import_key(&label, alg, &raw)
                .with_context(|| format!("importing the root key into {}", dir.display()))?;
            Some(dir.clone())
        }
        None => None,
    };
    drop(raw);
    if args.json {
        return print_json(&json!({
            "recovered": true, "shares_used": holders, "algorithm": alg.name(),
            "imported_into": imported, "ceremony": transcript.entries[0].detail.get("ceremony").cloned().unwrap_or(Value::Null),
        }));
    }
    println!("OK: shares {} rebuild the ceremony's root key ({alg})", holders.join(", "));
    match imported {
        Some(dir) => println!("imported as the root key of {}", dir.display()),
        None => println!("drill only: nothing was stored (use --into-pki to restore the key)"),
    }
    Ok(())
}
