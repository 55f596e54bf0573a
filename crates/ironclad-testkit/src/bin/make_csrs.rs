//! Makes N device CSRs (fresh P-256 keys, CN = dev-000001...) as PEM files in a directory, in
//! parallel. Benchmark and test input only: the private keys are discarded.
//!
//! Usage: ironclad-make-csrs <count> <out-dir> [--prefix dev-] [--manifest out.jsonl]
//! (with --manifest, the same CSRs are also written as one JSON-lines file)

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: ironclad-make-csrs <count> <out-dir> [--prefix P] [--manifest FILE.jsonl]";
    let count: usize = args.next().context(usage)?.parse().context("count must be a number")?;
    let out = PathBuf::from(args.next().context(usage)?);
    let mut prefix = "dev-".to_owned();
    let mut manifest = None;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--prefix" => prefix = args.next().context("--prefix needs a value")?,
            "--manifest" => manifest = Some(PathBuf::from(args.next().context("--manifest needs a value")?)),
            other => bail!("unknown argument {other}\n{usage}"),
        }
    }
    std::fs::create_dir_all(&out)?;
    let csrs: Vec<(String, String)> = (1..=count)
        .into_par_iter()
        .map(|i| -> Result<(String, String)> {
            let device_id = format!("{prefix}{i:07}");
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.distinguished_name.push(rcgen::DnType::CommonName, device_id.as_str());
            let pem = params.serialize_request(&key)?.pem()?;
            std::fs::write(out.join(format!("{device_id}.csr")), &pem)?;
            Ok((device_id, pem))
        })
        .collect::<Result<_>>()?;
    if let Some(path) = manifest {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for (device_id, pem) in &csrs {
            let line =
                format!("{{\"device_id\":\"{device_id}\",\"csr_pem\":\"{}\"}}", pem.replace('\n', "\\n"));
            writeln!(file, "{line}")?;
        }
        file.flush()?;
    }
    eprintln!("made {count} CSRs in {}", out.display());
    Ok(())
}
