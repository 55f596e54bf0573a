//! `ironclad cert issue-batch`: certificates for many CSRs at once.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ironclad_pki::{BatchEvent, BatchOptions, CaIssuer, IssuedRecord};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::output::print_json;
use crate::pki_dir::PkiDir;
use crate::secrets::CaKeyArgs;

/// Issue device certificates for a directory or manifest of CSRs, in parallel.
///
/// Issue device certificates for a directory of CSRs, or for a manifest of them, in parallel on
/// every core.
///
/// Input: --csr-dir (every *.csr, *.pem, *.der file; the file stem names the request) or
/// --manifest, either JSON lines ({"csr_pem": "..."} or {"csr_path": "..."}, optional "name")
/// or CSV with a header row containing csr_path (and optionally name).
///
/// Output in --out: certificates.pem (every certificate, in manifest order) and manifest.jsonl
/// (serial, device_id, family, sha256_fingerprint, not_after per line: the record a cloud
/// registry imports); with --pem-files also one <device-id>.pem per certificate. A new --out
/// directory appears only when the batch is done, whole.
///
/// Idempotent: re-running the same batch signs nothing twice (requests are keyed by their
/// SHA-256 in the PKI index) and rewrites the outputs. A refused CSR never stops the batch:
/// every refusal is listed with its reason, the good ones are issued, and the command exits
/// non-zero.
///
/// Example:
///   ironclad cert issue-batch --pki ./pki --ca line-1 --csr-dir ./csrs --out ./certs --pem-files
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
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
    /// Output directory: certificates.pem and manifest.jsonl (and <device-id>.pem files with
    /// --pem-files).
    #[arg(long)]
    out: PathBuf,
    /// Also write one <device-id>.pem per certificate.
    #[arg(long)]
    pem_files: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    #[command(flatten)]
    keys: CaKeyArgs,
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
    let profile = pki.ca_profile(&args.ca)?.to_profile()?;
    let (ca_cert, key) = pki.issuing_ca(&args.ca, &args.keys)?;
    let issuer = CaIssuer::new(&ca_cert, &key)?;
    let read_started = std::time::Instant::now();
    let requests = match (&args.csr_dir, &args.manifest) {
        (Some(dir), _) => read_csr_dir(dir)?,
        (None, Some(manifest)) => read_manifest(manifest)?,
        (None, None) => bail!("give --csr-dir or --manifest"),
    };
    if requests.is_empty() {
        bail!("no CSRs found");
    }
    tracing::info!(count = requests.len(), elapsed = ?read_started.elapsed(), "read CSRs");
    let total = requests.len();
    let bar = progress_bar(total as u64, args.json);
    let mut index = pki.open_index()?;
    let started = std::time::Instant::now();
    let now = time::OffsetDateTime::now_utc();
    let staging = Staging::new(&args.out)?;

    // A writer thread puts each committed chunk's certificate files on disk while the next
    // chunk is verified and signed.
    let (to_writer, from_issuer) = std::sync::mpsc::sync_channel::<Vec<IssuedRecord>>(2);
    let mut outputs = Outputs::create(staging.dir(), args.pem_files)?;
    let writer = std::thread::spawn(move || -> Result<Outputs> {
        for records in from_issuer {
            outputs.write(&records)?;
        }
        outputs.finish()
    });
    let mut writer_gone = false;
    let report = ironclad_pki::issue_batch_streaming(
        requests,
        &issuer,
        &profile,
        &mut index,
        now,
        &BatchOptions::default(),
        &mut |event| match event {
            BatchEvent::Committed(records) => {
                // A failed writer reports its own error after the batch.
                writer_gone |= to_writer.send(records).is_err();
            }
            BatchEvent::Progress(p) => {
                bar.set_position(p.done as u64);
                bar.set_message(format!(
                    "issued {} · existing {} · refused {}",
                    p.issued, p.skipped, p.failed
                ));
            }
        },
    );
    if let Ok(report) = &report
        && !writer_gone
    {
        // Already-issued requests get their files (re)written too: a re-run restores outputs.
        let _ = to_writer.send(report.skipped_existing.iter().map(|(_, r)| r.clone()).collect());
    }
    drop(to_writer);
    let written = writer.join().map_err(|_| anyhow::anyhow!("certificate writer panicked"))?;
    let report = report?;
    let written = written?.count;
    let (issued, existing, failed) =
        (written - report.skipped_existing.len(), report.skipped_existing.len(), report.failed);
    bar.finish_and_clear();
    staging.publish()?;
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
    // Lines parse in parallel: for a factory-sized manifest this is most of the reading time.
    let lines: Vec<(usize, &str)> = lines.collect();
    lines
        .into_par_iter()
        .map(|(n, line)| {
            let entry: ManifestLine = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a JSON object", path.display(), n + 1))?;
            let name = entry.name.unwrap_or_else(|| format!("line {}", n + 1));
            let bytes = match (entry.csr_pem, entry.csr_path) {
                (Some(pem), _) => pem.into_bytes(),
                (None, Some(p)) => {
                    std::fs::read(base.join(&p)).with_context(|| format!("reading {}", p.display()))?
                }
                (None, None) => bail!("{}:{}: needs csr_pem or csr_path", path.display(), n + 1),
            };
            Ok((name, bytes))
        })
        .collect()
}

/// Where a batch's outputs are written before they appear in `--out`. Files are created in a
/// fresh staging directory beside `--out` (one directory entry each, no per-file rename: on this
/// hardware the rename doubles the file-system cost of a batch), then published:
/// - a new `--out` appears by renaming the whole staging directory, so a batch's outputs show
///   up all at once or not at all;
/// - into an existing `--out` (a re-run), each file is renamed in, so each file is whole.
///
/// Durability comes from the PKI index, which has committed every certificate before it
/// reaches the writer: after a crash, re-running the batch restores the outputs.
struct Staging {
    out: PathBuf,
    dir: tempfile::TempDir,
}

impl Staging {
    fn new(out: &Path) -> Result<Self> {
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let dir = tempfile::Builder::new()
            .prefix(".issue-batch-")
            .tempdir_in(parent)
            .with_context(|| format!("creating a staging directory in {}", parent.display()))?;
        Ok(Self { out: out.to_path_buf(), dir })
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn publish(self) -> Result<()> {
        if !self.out.exists() {
            let staged = self.dir.keep();
            std::fs::rename(&staged, &self.out)
                .with_context(|| format!("publishing {}", self.out.display()))?;
            return Ok(());
        }
        anyhow::ensure!(self.out.is_dir(), "{} exists and is not a directory", self.out.display());
        // The manifest last: when it names a file, the file is there.
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())?.collect::<std::io::Result<Vec<_>>>()?;
        names.sort_by_key(|e| e.file_name() == "manifest.jsonl");
        for entry in names {
            let target = self.out.join(entry.file_name());
            std::fs::rename(entry.path(), &target)
                .with_context(|| format!("writing {}", target.display()))?;
        }
        Ok(())
    }
}

/// The batch's output files, written by one thread as chunks are committed.
struct Outputs {
    dir: PathBuf,
    bundle: std::io::BufWriter<std::fs::File>,
    manifest: std::io::BufWriter<std::fs::File>,
    pem_files: bool,
    count: usize,
}

impl Outputs {
    fn create(dir: &Path, pem_files: bool) -> Result<Self> {
        let open = |name: &str| -> Result<std::io::BufWriter<std::fs::File>> {
            let path = dir.join(name);
            let file =
                std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            Ok(std::io::BufWriter::with_capacity(1 << 20, file))
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            bundle: open("certificates.pem")?,
            manifest: open("manifest.jsonl")?,
            pem_files,
            count: 0,
        })
    }

    fn write(&mut self, records: &[IssuedRecord]) -> Result<()> {
        for record in records {
            let pem = record.pem();
            self.bundle.write_all(pem.as_bytes())?;
            serde_json::to_writer(&mut self.manifest, record)?;
            self.manifest.write_all(b"\n")?;
            if self.pem_files {
                let path = self.dir.join(format!("{}.pem", record.device_id));
                std::fs::write(&path, &pem).with_context(|| format!("writing {}", path.display()))?;
            }
        }
        self.count += records.len();
        Ok(())
    }

    /// Flushes and fsyncs the bundle and the manifest.
    fn finish(mut self) -> Result<Self> {
        for writer in [&mut self.bundle, &mut self.manifest] {
            writer.flush()?;
            writer.get_ref().sync_all()?;
        }
        Ok(self)
    }
}
