//! `ironclad cert issue-batch`: certificates for many CSRs at once.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ironclad_pki::{BatchOptions, CaIssuer, IssuedRecord};
use ironclad_se::{Overwrite, atomic_write};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::output::print_json;
use crate::pki_dir::PkiDir;
use crate::secrets::UnlockArgs;

/// Issue device certificates for a directory of CSRs, or for a manifest of them, in parallel
/// on every core.
///
/// Input: --csr-dir (every *.csr, *.pem, *.der file; the file stem names the request) or
/// --manifest, either JSON lines ({"csr_pem": "..."} or {"csr_path": "..."}, optional "name")
/// or CSV with a header row containing csr_path (and optionally name).
///
/// Output in --out: one <device-id>.pem per certificate and manifest.jsonl (serial, device_id,
/// family, sha256_fingerprint, not_after): the record a cloud registry imports.
///
/// Idempotent: re-running the same batch signs nothing twice (requests are keyed by their
/// SHA-256 in the PKI index) and rewrites the outputs. A refused CSR never stops the batch:
/// every refusal is listed with its reason, the good ones are issued, and the command exits
/// non-zero.
///
/// Example:
///   ironclad cert issue-batch --pki ./pki --ca line-1 --csr-dir ./csrs --out ./certs
#[derive(Args, Debug)]
pub(crate) struct CertIssueBatchArgs {
    #[arg(long, env = "IRONCLAD_PKI", default_value = "pki")]
    pki: PathBuf,
    /// Issuing CA name.
    #[arg(long)]
    ca: String,
    /// Directory of CSR files.
    #[arg(long, conflicts_with = "manifest", required_unless_present = "manifest")]
    csr_dir: Option<PathBuf>,
    /// Manifest of CSRs (.jsonl or .csv).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Output directory for certificates and manifest.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// Worker threads (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    #[command(flatten)]
    unlock: UnlockArgs,
    /// Print the report as JSON (no progress bar).
    #[arg(long)]
    json: bool,
}

#[derive(Deserialize)]
struct ManifestLine {
    name: Option<String>,
    csr_pem: Option<String>,
    csr_path: Option<PathBuf>,
}

pub(crate) fn run(args: CertIssueBatchArgs) -> Result<()> {
    if let Some(jobs) = args.jobs {
        rayon::ThreadPoolBuilder::new().num_threads(jobs).build_global().ok();
    }
    let pki = PkiDir::open(&args.pki)?;
    let ca_cert = pki.ca_cert(&args.ca)?;
    let profile = pki.ca_profile(&args.ca)?.to_profile()?;
    let se = pki.open_keys(&args.unlock)?;
    let key = PkiDir::signer(&se, &PkiDir::ca_key_label(&args.ca)?)?;
    let issuer = CaIssuer::new(&ca_cert, &key)?;
    let requests = match (&args.csr_dir, &args.manifest) {
        (Some(dir), _) => read_csr_dir(dir)?,
        (None, Some(manifest)) => read_manifest(manifest)?,
        (None, None) => bail!("give --csr-dir or --manifest"),
    };
    if requests.is_empty() {
        bail!("no CSRs found");
    }
    let total = requests.len();
    let bar = progress_bar(total as u64, args.json);
    let mut index = pki.open_index()?;
    let started = std::time::Instant::now();
    let now = time::OffsetDateTime::now_utc();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;

    // Issue slice by slice; a writer thread puts each committed slice's certificate files on
    // disk while the next slice is verified and signed. Later slices see earlier ones in the
    // index, so the duplicate rules hold across the whole batch.
    let (to_writer, from_issuer) = std::sync::mpsc::sync_channel::<Vec<IssuedRecord>>(2);
    let out_dir = args.out.clone();
    let writer = std::thread::spawn(move || -> Result<Vec<IssuedRecord>> {
        let mut all = Vec::new();
        for records in from_issuer {
            write_cert_files(&out_dir, &records)?;
            all.extend(records);
        }
        Ok(all)
    });
    let (mut issued, mut existing, mut failed) = (0usize, 0usize, Vec::new());
    let mut done = 0;
    let issue_result = (|| -> Result<()> {
        for slice in requests.chunks(SLICE) {
            let part = ironclad_pki::issue_batch(
                slice.par_iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())),
                &issuer,
                &profile,
                &mut index,
                now,
                &BatchOptions::default(),
                &mut |_| {},
            )?;
            done += slice.len();
            issued += part.issued.len();
            existing += part.skipped_existing.len();
            failed.extend(part.failed);
            let mut records = part.issued;
            records.extend(part.skipped_existing.into_iter().map(|(_, r)| r));
            bar.set_position(done as u64);
            bar.set_message(format!("issued {issued} · existing {existing} · refused {}", failed.len()));
            if to_writer.send(records).is_err() {
                break; // the writer failed; its error is reported below
            }
        }
        Ok(())
    })();
    drop(to_writer);
    let written = writer.join().map_err(|_| anyhow::anyhow!("certificate writer panicked"))?;
    issue_result?;
    let written = written?;
    bar.finish_and_clear();
    write_manifest(&args.out, &written)?;
    let elapsed = started.elapsed();
    let rate = (issued + existing) as f64 / elapsed.as_secs_f64().max(1e-9);

    if args.json {
        print_json(&json!({
            "issued": issued,
            "existing": existing,
            "failed": failed.iter().map(|(n, e)| json!({"name": n, "reason": e.to_string()})).collect::<Vec<_>>(),
            "out": args.out,
            "seconds": elapsed.as_secs_f64(),
            "certs_per_second": rate,
        }))?;
    } else {
        println!(
            "issued {} new, {} already on record, {} refused in {:.2}s ({:.0} certs/s); outputs in {}",
            issued,
            existing,
            failed.len(),
            elapsed.as_secs_f64(),
            rate,
            args.out.display()
        );
        for (name, err) in &failed {
            println!("  refused {name}: {err}");
        }
    }
    if !failed.is_empty() {
        bail!("{} of {total} CSRs were refused (listed above)", failed.len());
    }
    Ok(())
}

fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar
}

fn read_csr_dir(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let is_csr =
            path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "csr" | "pem" | "der"));
        if is_csr && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_par_iter()
        .map(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok((name, bytes))
        })
        .collect()
}

fn read_manifest(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let is_csv = path.extension().is_some_and(|e| e == "csv");
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let mut out = Vec::new();
    if is_csv {
        let (_, header) = lines.next().context("empty CSV manifest")?;
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        let path_col =
            cols.iter().position(|c| *c == "csr_path").context("CSV manifest needs a csr_path column")?;
        let name_col = cols.iter().position(|c| *c == "name");
        for (n, line) in lines {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let csr_path = fields
                .get(path_col)
                .with_context(|| format!("{}:{}: missing csr_path", path.display(), n + 1))?;
            let name = name_col
                .and_then(|c| fields.get(c))
                .map_or_else(|| (*csr_path).to_owned(), |s| (*s).to_owned());
            out.push((
                name,
                std::fs::read(base.join(csr_path)).with_context(|| format!("reading {csr_path}"))?,
            ));
        }
        return Ok(out);
    }
    for (n, line) in lines {
        let entry: ManifestLine = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON object", path.display(), n + 1))?;
        let name = entry.name.clone().unwrap_or_else(|| format!("line {}", n + 1));
        let bytes = match (entry.csr_pem, entry.csr_path) {
            (Some(pem), _) => pem.into_bytes(),
            (None, Some(p)) => {
                std::fs::read(base.join(&p)).with_context(|| format!("reading {}", p.display()))?
            }
            (None, None) => bail!("{}:{}: needs csr_pem or csr_path", path.display(), n + 1),
        };
        out.push((name, bytes));
    }
    Ok(out)
}

/// Requests per `issue_batch` call: large enough to keep every core busy, small enough that
/// writing one slice's files overlaps signing the next.
const SLICE: usize = 5_000;

/// Certificates are written with rename-atomicity (a file is whole or absent) from one thread:
/// creating files in one directory from several threads only contends on the directory lock.
/// Durability comes from the PKI index, which committed every certificate before it reaches
/// this writer, so after a crash a re-run of the batch restores the files.
fn write_cert_files(out: &Path, records: &[IssuedRecord]) -> Result<()> {
    for record in records {
        let final_path = out.join(format!("{}.pem", record.device_id));
        let tmp = out.join(format!(".{}.pem.tmp", record.device_id));
        std::fs::write(&tmp, record.pem()).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &final_path).with_context(|| format!("writing {}", final_path.display()))?;
    }
    Ok(())
}

/// The manifest is written last, atomically and fsynced: when it exists, every file it lists does.
fn write_manifest(out: &Path, records: &[IssuedRecord]) -> Result<()> {
    let mut manifest = Vec::with_capacity(records.len() * 200);
    for record in records {
        serde_json::to_writer(&mut manifest, record)?;
        manifest.write_all(b"\n")?;
    }
    atomic_write(&out.join("manifest.jsonl"), &manifest, Overwrite::Replace)?;
    Ok(())
}
