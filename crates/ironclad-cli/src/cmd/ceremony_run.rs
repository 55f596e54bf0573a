//! `ironclad ceremony run`: a whole key ceremony from one reviewed script.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use aws_lc_rs::encoding::AsBigEndian;
use clap::Args;
use ironclad_pki::shamir;
use ironclad_pki::transcript::Transcript;
use ironclad_pki::{IntermediateCaParams, PublicKeyData, RootCaParams};
use ironclad_se::{KeyAlgorithm, Overwrite, atomic_write};
use ironclad_se_pkcs11::Pkcs11Uri;
use serde_json::json;
use zeroize::Zeroizing;

use crate::ca_ops::{RootKey, StagedPki};
use crate::ceremony::{Backend, Generation, Script, key_algorithm};
use crate::output::{print_json, table};
use crate::pki_dir::{PkiDir, ProfileFile};
use crate::secrets::CaKeyArgs;

/// Run a key ceremony from a reviewed TOML script: root key (generated in the backend, or
/// offline with an M-of-N backup), root certificate, intermediates, and a hash-chained
/// transcript of every step signed by the root.
///
/// The PKI directory, the transcript (<pki>/ceremony/transcript.json, with a copy of the
/// script) and the share files appear only when every step succeeded. With an offline root,
/// the key exists in memory only while it is split and imported, and is wiped after.
///
/// Example:
///   ironclad ceremony run root-2026.toml --pki ./pki --shares-dir ./shares
///   ironclad ceremony verify ./pki/ceremony/transcript.json --pki ./pki
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct CeremonyRunArgs {
    /// The ceremony script (TOML; see docs/ceremony.md).
    script: PathBuf,
    /// PKI directory to create.
    #[arg(long, env = "IRONCLAD_PKI", default_value = "pki")]
    pki: PathBuf,
    /// Directory to create for the backup shares (one file per holder, mode 0600).
    #[arg(long, default_value = "shares")]
    shares_dir: PathBuf,
    #[command(flatten)]
    keys: CaKeyArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// What a completed ceremony produced.
pub(crate) struct CeremonyOutcome {
    pub(crate) root: ironclad_pki::CaCertificate,
    pub(crate) transcript: Transcript,
    pub(crate) rows: Vec<Vec<String>>,
    pub(crate) share_holders: Vec<String>,
}

pub(crate) fn run(args: CeremonyRunArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.script)
        .with_context(|| format!("reading {}", args.script.display()))?;
    let script = Script::parse(&text).with_context(|| format!("in {}", args.script.display()))?;
    let unlock = match script.backend {
        Backend::Software => Some(args.keys.unlock.resolve(true)?),
        Backend::Pkcs11 { .. } => None,
    };
    let outcome = perform(&text, &script, &args.pki, &args.shares_dir, &args.keys, unlock.as_ref())?;
    let transcript_path = args.pki.join("ceremony/transcript.json");
    if args.json {
        return print_json(&json!({
            "pki": args.pki, "transcript": transcript_path, "steps": outcome.transcript.entries.len(),
            "root": {"subject": outcome.root.subject(), "sha256": outcome.root.sha256_fingerprint()},
            "shares": outcome.share_holders,
            "shares_dir": if outcome.share_holders.is_empty() { None } else { Some(&args.shares_dir) },
        }));
    }
    println!(
        "ceremony {:?} complete: {} steps, transcript signed by the root",
        script.ceremony.name,
        outcome.transcript.entries.len()
    );
    println!("{}", table(&["CA", "SUBJECT", "SHA-256"], &outcome.rows));
    println!("transcript: {}", transcript_path.display());
    if !outcome.share_holders.is_empty() {
        println!(
            "backup: {} shares in {} — hand one file to each holder and delete the directory; any {} rebuild the root key",
            outcome.share_holders.len(),
            args.shares_dir.display(),
            script.backup.as_ref().map_or(0, |b| b.threshold)
        );
    }
    Ok(())
}

/// Carries out a parsed script: the PKI at `pki_path` and the shares in `shares_dir` appear
/// only if every step succeeds. `unlock` is the new software key store's secret.
pub(crate) fn perform(
    text: &str,
    script: &Script,
    pki_path: &Path,
    shares_dir: &Path,
    keys: &CaKeyArgs,
    unlock: Option<&ironclad_se::Unlock>,
) -> Result<CeremonyOutcome> {
    let script_sha256 = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()));
    if script.backup.is_some() && shares_dir.exists() {
        bail!("{} exists; shares go to a new directory", shares_dir.display());
    }
    let root_alg = key_algorithm(&script.root.algorithm)?;
    let uri = match &script.backend {
        Backend::Software => None,
        Backend::Pkcs11 { uri } => Some(Pkcs11Uri::parse(uri).context("backend.uri")?),
    };
    let mut staged = StagedPki::begin(pki_path, uri.as_ref(), keys, unlock)?;
    let mut root_params = RootCaParams::new(&script.root.cn, &script.root.org, &script.root.country);
    root_params.validity_years = script.root.years;
    let mut share_files: Vec<(String, Zeroizing<String>)> = Vec::new();
    let mut share_record = Vec::new();
    let (root, _) = match (&script.root.generation, &script.backup) {
        (Generation::OfflineBackup, Some(backup)) => {
            let raw = offline_key(root_alg)?;
            let holders = u8::try_from(backup.holders.len()).context("too many holders")?;
            let shares = shamir::split(&raw, backup.threshold, holders, &mut |buf| {
                let _ = aws_lc_rs::rand::fill(buf);
            })?;
            for (share, holder) in shares.iter().zip(&backup.holders) {
                share_record
                    .push(json!({"holder": holder, "index": share.index(), "sha256": share.fingerprint()}));
                share_files.push((holder.clone(), share.to_text()));
            }
            let made = staged.create_root(&root_params, RootKey::Import(root_alg, &raw))?;
            drop(raw); // Zeroizing: the only copy outside the backend is wiped here
            made
        }
        _ => staged.create_root(&root_params, RootKey::Generate(root_alg))?,
    };
    let pki = staged.pki();
    let root_label = pki.root_key_label()?;
    let root_key = PkiDir::signer(staged.keys(), &root_label)?;

    let mut transcript = Transcript::begin(
        &now(),
        &root_key.subject_public_key_info(),
        json!({
            "ceremony": script.ceremony.name, "participants": script.ceremony.participants,
            "script_sha256": script_sha256, "backend": pki.backend().describe(pki_path),
        }),
    );
    transcript.record(
        &now(),
        "root-key",
        json!({"label": root_label.as_str(), "algorithm": root_alg.name(),
               "generation": match script.root.generation { Generation::InBackend => "in-backend", Generation::OfflineBackup => "offline-backup" },
               "public_key_sha256": root_key.public_key().fingerprint()}),
    );
    if let Some(backup) = &script.backup {
        transcript.record(
            &now(),
            "backup-split",
            json!({"threshold": backup.threshold, "shares": backup.holders.len(), "holders": share_record}),
        );
        transcript.record(&now(), "offline-key-imported-and-wiped", json!({"label": root_label.as_str()}));
    }
    transcript.record(
        &now(),
        "root-certificate",
        json!({"subject": root.subject(), "sha256": root.sha256_fingerprint(), "not_after": root.not_after().to_string()}),
    );

    let mut rows = vec![vec![
        "(root)".to_owned(),
        root.subject().to_owned(),
        root.sha256_fingerprint()[..16].to_owned(),
    ]];
    for int in &script.intermediate {
        let org = int.org.clone().unwrap_or_else(|| script.root.org.clone());
        let country = int.country.clone().unwrap_or_else(|| script.root.country.clone());
        let cn = int.cn.clone().unwrap_or_else(|| format!("{org} {} CA", int.name));
        let mut params = IntermediateCaParams::new(&cn, &org, &country);
        params.validity_years = int.years;
        let profile = ProfileFile {
            organization: org,
            country,
            family: int.family.clone(),
            validity: int.device_validity.clone(),
        };
        let cert = staged
            .create_intermediate(&int.name, &params, &profile, key_algorithm(&int.algorithm)?)
            .with_context(|| format!("intermediate {:?}", int.name))?;
        transcript.record(
            &now(),
            "intermediate",
            json!({"name": int.name, "subject": cert.subject(), "sha256": cert.sha256_fingerprint(),
                   "not_after": cert.not_after().to_string(), "family": int.family, "device_validity": int.device_validity}),
        );
        rows.push(vec![
            int.name.clone(),
            cert.subject().to_owned(),
            cert.sha256_fingerprint()[..16].to_owned(),
        ]);
    }
    transcript.record(&now(), "ceremony-end", json!({"steps": transcript.entries.len() + 1}));
    transcript.seal(&root_key).context("signing the transcript with the root key")?;

    let ceremony_dir = staged.pki().path().join("ceremony");
    std::fs::create_dir_all(&ceremony_dir)?;
    atomic_write(&ceremony_dir.join("transcript.json"), transcript.to_json().as_bytes(), Overwrite::Refuse)?;
    atomic_write(&ceremony_dir.join("script.toml"), text.as_bytes(), Overwrite::Refuse)?;
    let shares_staging = write_shares(shares_dir, &share_files)?;
    drop(root_key);
    staged.publish()?;
    if let Some(dir) = shares_staging {
        std::fs::rename(dir.keep(), shares_dir)
            .with_context(|| format!("moving the shares into {}", shares_dir.display()))?;
    }

    Ok(CeremonyOutcome {
        root,
        transcript,
        rows,
        share_holders: share_files.iter().map(|(h, _)| h.clone()).collect(),
    })
}

/// A fresh private key made in this process for an offline-backup root: the P-256 scalar or
/// the Ed25519 seed, in wiped-on-drop memory.
fn offline_key(alg: KeyAlgorithm) -> Result<Zeroizing<Vec<u8>>> {
    match alg {
        KeyAlgorithm::EcdsaP256 => {
            let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            )
            .map_err(|_| anyhow::anyhow!("key generation failed"))?;
            let scalar: aws_lc_rs::encoding::EcPrivateKeyBin<'_> =
                pair.private_key().as_be_bytes().map_err(|_| anyhow::anyhow!("key serialisation failed"))?;
            Ok(Zeroizing::new(scalar.as_ref().to_vec()))
        }
        KeyAlgorithm::Ed25519 => {
            let pair = aws_lc_rs::signature::Ed25519KeyPair::generate()
                .map_err(|_| anyhow::anyhow!("key generation failed"))?;
            let seed = pair.seed().map_err(|_| anyhow::anyhow!("key serialisation failed"))?;
            let seed: aws_lc_rs::encoding::Curve25519SeedBin<'_> =
                seed.as_be_bytes().map_err(|_| anyhow::anyhow!("key serialisation failed"))?;
            Ok(Zeroizing::new(seed.as_ref().to_vec()))
        }
        other => bail!("{other} cannot be a CA key"),
    }
}

/// Writes each holder's share (0600) into a staging directory beside `dir`.
fn write_shares(dir: &Path, shares: &[(String, Zeroizing<String>)]) -> Result<Option<tempfile::TempDir>> {
    if shares.is_empty() {
        return Ok(None);
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let staging = tempfile::Builder::new().prefix(".shares-").tempdir_in(parent)?;
    for (i, (holder, text)) in shares.iter().enumerate() {
        let safe: String = holder.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let path = staging.path().join(format!("share-{}-{safe}.txt", i + 1));
        atomic_write(&path, format!("{}\n", text.as_str()).as_bytes(), Overwrite::Refuse)?;
    }
    Ok(Some(staging))
}
