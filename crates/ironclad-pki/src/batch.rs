//! Batch issuance from many CSRs, for the factory line and bulk enrolment.
//!
//! Per chunk of requests: verify in parallel (while the previous chunk is written to the index
//! in one transaction), apply the duplicate rules in order, then sign in parallel. The issuer
//! and the profile are encoded once per batch, so a certificate costs one CSR verification,
//! one signature and a few small copies.

use std::collections::HashMap;

use rayon::prelude::*;
use time::OffsetDateTime;

use crate::ca::{CaIssuer, random_serial};
use crate::csr::{Limits, VerifiedCsr, parse_and_verify};
use crate::error::{Error, Result};
use crate::index::{IndexEntry, IssuedIndex};
use crate::issue::{DeviceTemplate, IssuedRecord, Screen, screen};
use crate::profile::DeviceProfile;

/// Default [`BatchOptions::chunk_size`]: requests verified, signed and committed together.
pub const DEFAULT_CHUNK_SIZE: usize = 10_000;

/// Tuning for [`issue_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchOptions {
    /// Input limits applied to every request.
    pub limits: Limits,
    /// Requests per chunk: one index transaction and one progress report each (default
    /// [`DEFAULT_CHUNK_SIZE`]; 0 is treated as 1).
    pub chunk_size: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions { limits: Limits::default(), chunk_size: DEFAULT_CHUNK_SIZE }
    }
}

impl BatchOptions {
    /// Options with a custom chunk size.
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size;
        self
    }
}

/// Progress after each committed chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BatchProgress {
    /// Requests fully handled so far.
    pub done: usize,
    /// Requests in the batch.
    pub total: usize,
    /// New certificates signed so far.
    pub issued: usize,
    /// Requests answered with an existing certificate.
    pub skipped: usize,
    /// Requests refused.
    pub failed: usize,
}

/// Outcome of a batch. A bad request never stops the batch: it is listed with its reason and
/// the good ones are issued.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// New certificates, in input order, all recorded in the index.
    pub issued: Vec<IssuedRecord>,
    /// Requests that were issued before (same CSR, or same device and key), with the existing
    /// certificate; nothing was signed for them.
    pub skipped_existing: Vec<(String, IssuedRecord)>,
    /// Refused requests, by name, with the reason.
    pub failed: Vec<(String, Error)>,
}

impl BatchReport {
    fn progress(&self, done: usize, total: usize, pending: usize) -> BatchProgress {
        BatchProgress {
            done,
            total,
            issued: self.issued.len() + pending,
            skipped: self.skipped_existing.len(),
            failed: self.failed.len(),
        }
    }
}

/// Issues certificates for many CSRs (each `(name, PEM-or-DER bytes)`), in parallel on the
/// rayon pool, recording them in `index` one transaction per chunk.
///
/// Duplicate rules are those of [`issue_one`](crate::issue_one), applied in input order and
/// also within the batch: a second request for a device ID under another key is refused with
/// [`Error::DeviceIdTaken`]; a repeated request returns the first one's certificate.
///
/// Returns `Err` only when the index fails; chunks committed before that stay recorded, and
/// re-running the same batch then skips them as existing.
pub fn issue_batch<I, N, B>(
    requests: I,
    issuer: &CaIssuer<'_>,
    profile: &DeviceProfile,
    index: &mut dyn IssuedIndex,
    now: OffsetDateTime,
    options: &BatchOptions,
    progress: &mut dyn FnMut(BatchProgress),
) -> Result<BatchReport>
where
    I: IntoParallelIterator<Item = (N, B)>,
    N: AsRef<str> + Send + Sync,
    B: AsRef<[u8]> + Send + Sync,
{
    let items: Vec<(N, B)> = requests.into_par_iter().collect();
    let total = items.len();
    let template = DeviceTemplate::new(issuer, profile, now)?;
    let limits = options.limits;

    let mut state = BatchState::default();
    let mut report = BatchReport::default();
    let mut pending: Vec<(IndexEntry, usize)> = Vec::new();
    let mut done = 0;

    for chunk in items.chunks(options.chunk_size.max(1)) {
        let (flushed, verified) = rayon::join(
            || flush(index, &mut pending, &mut report, &mut state.positions),
            || {
                chunk
                    .par_iter()
                    .map(|(_, bytes)| parse_and_verify(bytes.as_ref(), &limits))
                    .collect::<Vec<_>>()
            },
        );
        flushed?;

        let mut to_sign: Vec<(usize, VerifiedCsr, [u8; 16], usize)> = Vec::new();
        for (i, result) in verified.into_iter().enumerate() {
            let name = || chunk[i].0.as_ref().to_owned();
            let csr = match result {
                Ok(csr) => csr,
                Err(e) => {
                    report.failed.push((name(), e));
                    continue;
                }
            };
            match state.screen_in_batch(&csr) {
                InBatch::New => {}
                InBatch::RepeatOf(seq) => {
                    state.deferred.push((name(), seq));
                    continue;
                }
                InBatch::Taken(e) => {
                    report.failed.push((name(), e));
                    continue;
                }
            }
            let existing = index.by_device_id(csr.device_id())?;
            match screen(&csr, &existing) {
                Screen::Existing(e) => report.skipped_existing.push((name(), e.record)),
                Screen::Refuse(e) => report.failed.push((name(), e)),
                Screen::Accept => {
                    let serial = random_serial();
                    let seq = state.admit(&csr, &serial);
                    to_sign.push((i, csr, serial, seq));
                }
            }
        }

        let signed: Vec<Result<IndexEntry>> =
            to_sign.par_iter().map(|(_, csr, serial, _)| template.sign(csr, serial)).collect();
        for (result, (i, _, _, seq)) in signed.into_iter().zip(to_sign) {
            match result {
                Ok(entry) => pending.push((entry, seq)),
                Err(e) => report.failed.push((chunk[i].0.as_ref().to_owned(), e)),
            }
        }
        done += chunk.len();
        progress(report.progress(done, total, pending.len()));
    }
    flush(index, &mut pending, &mut report, &mut state.positions)?;

    for (name, seq) in std::mem::take(&mut state.deferred) {
        match state.positions.get(&seq) {
            Some(&pos) => report.skipped_existing.push((name, report.issued[pos].clone())),
            None => report.failed.push((name, Error::DuplicateInBatch)),
        }
    }
    progress(report.progress(done, total, 0));
    Ok(report)
}

/// Writes the signed-but-unrecorded certificates in one transaction and moves them into the
/// report, remembering where each batch sequence number landed.
fn flush(
    index: &mut dyn IssuedIndex,
    pending: &mut Vec<(IndexEntry, usize)>,
    report: &mut BatchReport,
    positions: &mut HashMap<usize, usize>,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let (entries, seqs): (Vec<IndexEntry>, Vec<usize>) = pending.drain(..).unzip();
    index.insert_batch(&entries)?;
    for (entry, seq) in entries.into_iter().zip(seqs) {
        positions.insert(seq, report.issued.len());
        report.issued.push(entry.record);
    }
    Ok(())
}

enum InBatch {
    New,
    RepeatOf(usize),
    Taken(Error),
}

/// What the batch has admitted so far, so duplicates inside one batch follow the same rules
/// as duplicates against the index.
#[derive(Default)]
struct BatchState {
    by_csr: HashMap<[u8; 32], usize>,
    by_device: HashMap<String, ([u8; 32], String, usize)>,
    positions: HashMap<usize, usize>,
    deferred: Vec<(String, usize)>,
    next_seq: usize,
}

impl BatchState {
    fn screen_in_batch(&self, csr: &VerifiedCsr) -> InBatch {
        if let Some(&seq) = self.by_csr.get(csr.csr_sha256()) {
            return InBatch::RepeatOf(seq);
        }
        match self.by_device.get(csr.device_id()) {
            None => InBatch::New,
            Some((spki, _, seq)) if spki == csr.spki_sha256() => InBatch::RepeatOf(*seq),
            Some((_, serial, _)) => InBatch::Taken(Error::DeviceIdTaken {
                device_id: csr.device_id().to_owned(),
                existing_serial: serial.clone(),
            }),
        }
    }

    fn admit(&mut self, csr: &VerifiedCsr, serial: &[u8; 16]) -> usize {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_csr.insert(*csr.csr_sha256(), seq);
        self.by_device.insert(csr.device_id().to_owned(), (*csr.spki_sha256(), hex::encode(serial), seq));
        seq
    }
}
