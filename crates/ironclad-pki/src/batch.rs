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
    /// New certificates, in input order, all recorded in the index. Empty after
    /// [`issue_batch_streaming`], which hands them out as [`BatchEvent::Committed`] instead.
    pub issued: Vec<IssuedRecord>,
    /// Requests that were issued before (same CSR, or same device and key), with the existing
    /// certificate; nothing was signed for them.
    pub skipped_existing: Vec<(String, IssuedRecord)>,
    /// Refused requests, by name, with the reason.
    pub failed: Vec<(String, Error)>,
}

/// What [`issue_batch_streaming`] reports while it runs.
#[derive(Debug)]
pub enum BatchEvent {
    /// New certificates of one chunk, in input order, now durable in the index.
    Committed(Vec<IssuedRecord>),
    /// Progress after a chunk.
    Progress(BatchProgress),
}

/// Issues certificates for many CSRs (each `(name, PEM-or-DER bytes)`), in parallel on the
/// rayon pool, recording them in `index` one transaction per chunk, and returns them all in
/// the report.
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
    let mut issued = Vec::new();
    let mut report =
        issue_batch_streaming(requests, issuer, profile, index, now, options, &mut |event| match event {
            BatchEvent::Committed(records) => issued.extend(records),
            BatchEvent::Progress(p) => progress(p),
        })?;
    report.issued = issued;
    Ok(report)
}

/// [`issue_batch`] for very large batches: each chunk's new certificates are handed to
/// `on_event` as soon as they are committed (while the next chunk is being verified, the
/// caller can write them out), and are not kept in the returned report.
pub fn issue_batch_streaming<I, N, B>(
    requests: I,
    issuer: &CaIssuer<'_>,
    profile: &DeviceProfile,
    index: &mut dyn IssuedIndex,
    now: OffsetDateTime,
    options: &BatchOptions,
    on_event: &mut dyn FnMut(BatchEvent),
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
    let mut pending: Vec<IndexEntry> = Vec::new();
    let mut issued = 0;
    let mut done = 0;
    let progress = |report: &BatchReport, done, issued| BatchProgress {
        done,
        total,
        issued,
        skipped: report.skipped_existing.len(),
        failed: report.failed.len(),
    };

    for chunk in items.chunks(options.chunk_size.max(1)) {
        // The index is single-threaded: one thread commits the previous chunk while the rest
        // of the pool verifies this one.
        let (flushed, verified) = rayon::join(
            || flush(index, &mut pending),
            || {
                chunk
                    .par_iter()
                    .map(|(_, bytes)| parse_and_verify(bytes.as_ref(), &limits))
                    .collect::<Vec<_>>()
            },
        );
        let committed = flushed?;
        if !committed.is_empty() {
            on_event(BatchEvent::Committed(committed));
        }

        let mut to_sign: Vec<(usize, VerifiedCsr, [u8; 16])> = Vec::new();
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
                InBatch::RepeatOf(serial) => {
                    state.repeats.push((name(), serial));
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
                    state.admit(&csr, &serial);
                    to_sign.push((i, csr, serial));
                }
            }
        }

        let signed: Vec<Result<IndexEntry>> =
            to_sign.par_iter().map(|(_, csr, serial)| template.sign(csr, serial)).collect();
        for (result, (i, _, _)) in signed.into_iter().zip(to_sign) {
            match result {
                Ok(entry) => pending.push(entry),
                Err(e) => report.failed.push((chunk[i].0.as_ref().to_owned(), e)),
            }
        }
        issued += pending.len();
        done += chunk.len();
        on_event(BatchEvent::Progress(progress(&report, done, issued)));
    }
    let committed = flush(index, &mut pending)?;
    if !committed.is_empty() {
        on_event(BatchEvent::Committed(committed));
    }

    // Repeats inside the batch get the certificate issued for their first occurrence.
    for (name, serial) in std::mem::take(&mut state.repeats) {
        match index.by_serial(&serial)? {
            Some(entry) => report.skipped_existing.push((name, entry.record)),
            None => report.failed.push((name, Error::DuplicateInBatch)),
        }
    }
    on_event(BatchEvent::Progress(progress(&report, done, issued)));
    Ok(report)
}

/// Writes the signed-but-unrecorded certificates in one transaction and returns their records.
fn flush(index: &mut dyn IssuedIndex, pending: &mut Vec<IndexEntry>) -> Result<Vec<IssuedRecord>> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    index.insert_batch(pending)?;
    Ok(pending.drain(..).map(|e| e.record).collect())
}

enum InBatch {
    New,
    /// A repeat of an admitted request (same CSR, or same device and key): its serial.
    RepeatOf(String),
    Taken(Error),
}

/// What the batch has admitted so far, so duplicates inside one batch follow the same rules
/// as duplicates against the index.
#[derive(Default)]
struct BatchState {
    /// Request hash -> serial.
    by_csr: HashMap<[u8; 32], String>,
    /// Device ID -> (key hash, serial).
    by_device: HashMap<String, ([u8; 32], String)>,
    /// Repeats to answer at the end, when their first occurrence is committed: (name, serial).
    repeats: Vec<(String, String)>,
}

impl BatchState {
    fn screen_in_batch(&self, csr: &VerifiedCsr) -> InBatch {
        if let Some(serial) = self.by_csr.get(csr.csr_sha256()) {
            return InBatch::RepeatOf(serial.clone());
        }
        match self.by_device.get(csr.device_id()) {
            None => InBatch::New,
            Some((spki, serial)) if spki == csr.spki_sha256() => InBatch::RepeatOf(serial.clone()),
            Some((_, serial)) => InBatch::Taken(Error::DeviceIdTaken {
                device_id: csr.device_id().to_owned(),
                existing_serial: serial.clone(),
            }),
        }
    }

    fn admit(&mut self, csr: &VerifiedCsr, serial: &[u8; 16]) {
        let serial = hex::encode(serial);
        self.by_csr.insert(*csr.csr_sha256(), serial.clone());
        self.by_device.insert(csr.device_id().to_owned(), (*csr.spki_sha256(), serial));
    }
}
