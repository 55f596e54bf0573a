//! Measures `issue_batch` end to end: N P-256 CSRs verified, signed and recorded in a SQLite
//! index file.
//!
//! `cargo run --release -p ironclad-pki --example batch_rate [-- N]` (default 20 000).

use std::error::Error;
use std::time::Instant;

use ironclad_pki::{
    BatchOptions, CaIssuer, DeviceProfile, IntermediateCaParams, IssuedIndex, KeyPair, RootCaParams,
    SqliteIndex, Validity, create_intermediate, create_root, issue_batch,
};
use rayon::prelude::*;
use rcgen::{CertificateParams, DistinguishedName, DnType};

fn main() -> Result<(), Box<dyn Error>> {
    let n: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(20_000);
    let now = time::OffsetDateTime::now_utc();

    let root_key = KeyPair::generate()?;
    let root = create_root(&root_key, &RootCaParams::new("Bench Root", "Acme", "DE"), now)?;
    let int_key = KeyPair::generate()?;
    let int = create_intermediate(
        &CaIssuer::new(&root, &root_key)?,
        &int_key,
        &IntermediateCaParams::new("Bench Line CA", "Acme", "DE"),
        now,
    )?;
    let issuer = CaIssuer::new(&int, &int_key)?;
    let profile = DeviceProfile::new("Acme", "DE", "Smart Camera", Validity::Years(30))?;

    let t = Instant::now();
    let csrs: Vec<(String, Vec<u8>)> = (0..n)
        .into_par_iter()
        .map(|i| -> Result<(String, Vec<u8>), rcgen::Error> {
            let key = KeyPair::generate()?;
            let mut p = CertificateParams::default();
            p.distinguished_name = DistinguishedName::new();
            p.distinguished_name.push(DnType::CommonName, format!("cam-{i:08}"));
            Ok((format!("cam-{i:08}.csr"), p.serialize_request(&key)?.der().to_vec()))
        })
        .collect::<Result<_, _>>()?;
    eprintln!("generated {n} CSRs in {:.2?} (not counted)", t.elapsed());

    let dir = tempfile::tempdir()?;
    let mut index = SqliteIndex::open(dir.path().join("index.sqlite"))?;
    let threads = rayon::current_num_threads();
    let t = Instant::now();
    let report = issue_batch(csrs, &issuer, &profile, &mut index, now, &BatchOptions::default(), &mut |p| {
        eprintln!("  {}/{} issued={} failed={}", p.done, p.total, p.issued, p.failed)
    })?;
    let secs = t.elapsed().as_secs_f64();
    if report.issued.len() != n || index.count()? != n as u64 {
        return Err(format!("issued {} of {n}, failed {}", report.issued.len(), report.failed.len()).into());
    }
    println!(
        "issue_batch: {n} certificates in {secs:.2} s = {:.0} certs/s on {threads} threads (SQLite index, WAL)",
        n as f64 / secs
    );
    Ok(())
}
