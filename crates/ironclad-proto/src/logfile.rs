//! The log file: append-only frames of encrypted records, readable record by record.
//!
//! ```text
//! file   = "IRCLOG1\n" (8 bytes) ‖ file_id (16 random bytes) ‖ frame*
//! frame  = C0 5E 10 6E ‖ sequence (u64 BE) ‖ length (u32 BE) ‖ check (4 bytes) ‖ record
//! check  = SHA-256(marker ‖ sequence ‖ length)[0..4]
//! record = tagged COSE_Encrypt0 (logrec.rs), external AAD binding device, file_id, sequence
//! ```
//!
//! The marker and check let a reader find the next frame after damaged bytes; the AES-GCM tag
//! in each record is what authenticates it (the check is not a security mechanism: an
//! attacker can recompute it, but cannot make an altered record decrypt). A torn write leaves
//! an incomplete last frame, reported as `Truncated`; earlier records stay readable. Sequence
//! numbers start at 0 in each file and increase by one, so a removed record shows as `Missing`.

use aws_lc_rs::digest;

use crate::error::{Error, Result};
use crate::logrec::{LogEntry, LogKey, decrypt_record};

/// The first 8 bytes of every log file.
pub const LOG_FILE_MAGIC: &[u8; 8] = b"IRCLOG1\n";
/// Magic plus the 16-byte file id.
pub const LOG_FILE_HEADER_LEN: usize = 24;
/// Every frame starts with these 4 bytes.
pub const FRAME_MARKER: [u8; 4] = [0xC0, 0x5E, 0x10, 0x6E];
/// Marker, sequence, length, check.
pub const FRAME_HEADER_LEN: usize = 20;

/// The file header for a new log file.
pub fn log_file_header(file_id: &[u8; 16]) -> [u8; LOG_FILE_HEADER_LEN] {
    let mut out = [0u8; LOG_FILE_HEADER_LEN];
    out[..8].copy_from_slice(LOG_FILE_MAGIC);
    out[8..].copy_from_slice(file_id);
    out
}

fn frame_check(head: &[u8]) -> [u8; 4] {
    let d = digest::digest(&digest::SHA256, head);
    let mut out = [0u8; 4];
    out.copy_from_slice(&d.as_ref()[..4]);
    out
}

/// One frame around an encrypted record, ready to append.
pub fn frame(sequence: u64, record: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(record.len()).map_err(|_| Error::TooLarge {
        what: "log record",
        len: record.len(),
        max: u32::MAX as usize,
    })?;
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + record.len());
    out.extend_from_slice(&FRAME_MARKER);
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    let check = frame_check(&out);
    out.extend_from_slice(&check);
    out.extend_from_slice(record);
    Ok(out)
}

/// A structural piece of a log file.
enum Piece<'a> {
    Frame { offset: usize, sequence: u64, record: &'a [u8] },
    Damaged { offset: usize, len: usize },
    Truncated { offset: usize, len: usize },
}

/// The frame header at `pos`, if valid: (sequence, record length, fits in the file).
fn header_at(bytes: &[u8], pos: usize, max_record: usize) -> Option<(u64, usize, bool)> {
    let head = bytes.get(pos..pos.checked_add(FRAME_HEADER_LEN)?)?;
    if head[..4] != FRAME_MARKER || head[16..20] != frame_check(&head[..16]) {
        return None;
    }
    let sequence = u64::from_be_bytes(head[4..12].try_into().ok()?);
    let len = u32::from_be_bytes(head[12..16].try_into().ok()?) as usize;
    if len > max_record {
        return None;
    }
    let fits = bytes.len() - pos - FRAME_HEADER_LEN >= len;
    Some((sequence, len, fits))
}

fn pieces(bytes: &[u8], max_record: usize) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut pos = LOG_FILE_HEADER_LEN;
    while pos < bytes.len() {
        match header_at(bytes, pos, max_record) {
            Some((sequence, len, true)) => {
                let start = pos + FRAME_HEADER_LEN;
                out.push(Piece::Frame { offset: pos, sequence, record: &bytes[start..start + len] });
                pos = start + len;
            }
            here => {
                // Resynchronise on the next complete frame.
                let next = (pos + 1..bytes.len()).find(|&q| {
                    bytes[q..].starts_with(&FRAME_MARKER)
                        && matches!(header_at(bytes, q, max_record), Some((_, _, true)))
                });
                match next {
                    Some(q) => {
                        out.push(Piece::Damaged { offset: pos, len: q - pos });
                        pos = q;
                    }
                    None => {
                        let rest = &bytes[pos..];
                        let torn = here.is_some()
                            || (rest.len() < FRAME_HEADER_LEN
                                && FRAME_MARKER.starts_with(&rest[..rest.len().min(4)]));
                        let len = rest.len();
                        out.push(if torn {
                            Piece::Truncated { offset: pos, len }
                        } else {
                            Piece::Damaged { offset: pos, len }
                        });
                        pos = bytes.len();
                    }
                }
            }
        }
    }
    out
}

fn file_id(bytes: &[u8]) -> Result<[u8; 16]> {
    if bytes.len() < LOG_FILE_HEADER_LEN || &bytes[..8] != LOG_FILE_MAGIC {
        return Err(Error::NotALogFile);
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[8..LOG_FILE_HEADER_LEN]);
    Ok(id)
}

/// Where a writer resumes an existing log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogResume {
    /// The file's id.
    pub file_id: [u8; 16],
    /// The sequence number of the next record (one past the highest framed so far).
    pub next_sequence: u64,
    /// Length up to the end of the last complete frame: bytes past it are a torn write that the
    /// writer cuts before appending.
    pub valid_len: u64,
}

/// Finds where to resume appending (no key needed: frames only).
pub fn log_resume_point(bytes: &[u8], max_record: usize) -> Result<LogResume> {
    let file_id = file_id(bytes)?;
    let mut next_sequence = 0u64;
    let mut valid_len = LOG_FILE_HEADER_LEN;
    for piece in pieces(bytes, max_record) {
        if let Piece::Frame { offset, sequence, record } = piece {
            next_sequence = next_sequence.max(sequence.saturating_add(1));
            valid_len = offset + FRAME_HEADER_LEN + record.len();
        }
    }
    Ok(LogResume { file_id, next_sequence, valid_len: valid_len as u64 })
}

/// What the reader found at one place in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogRecordOutcome {
    /// A record that decrypted.
    Ok {
        /// Its sequence number.
        sequence: u64,
        /// The entry.
        entry: LogEntry,
    },
    /// A complete frame whose record does not decrypt or decode: altered, or under another key.
    Altered {
        /// The sequence number its frame claims.
        sequence: u64,
        /// Why.
        error: Error,
    },
    /// Bytes that are not a valid frame, skipped up to the next frame.
    Damaged {
        /// How many bytes.
        len: u64,
    },
    /// An incomplete frame at the end of the file (a torn write or a truncated copy).
    Truncated {
        /// How many bytes.
        len: u64,
    },
    /// Sequence numbers absent between two frames (records removed, or lost in damage).
    Missing {
        /// First missing.
        first: u64,
        /// Last missing.
        last: u64,
    },
    /// A frame whose sequence number is not above the previous one (duplicated or reordered);
    /// its record's outcome follows.
    OutOfOrder {
        /// The frame's sequence.
        sequence: u64,
        /// The sequence expected here.
        expected: u64,
    },
}

/// One outcome and its byte offset in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecordResult {
    /// Offset of the frame or damaged region.
    pub offset: u64,
    /// What was found.
    pub outcome: LogRecordOutcome,
}

/// Everything read from one log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFileReport {
    /// The file's id.
    pub file_id: [u8; 16],
    /// Per-record outcomes, in file order.
    pub records: Vec<LogRecordResult>,
}

impl LogFileReport {
    /// The entries that decrypted, with their sequence numbers.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &LogEntry)> {
        self.records.iter().filter_map(|r| match &r.outcome {
            LogRecordOutcome::Ok { sequence, entry } => Some((*sequence, entry)),
            _ => None,
        })
    }

    /// True when every record decrypted and nothing is missing, damaged or truncated.
    pub fn is_intact(&self) -> bool {
        self.records.iter().all(|r| matches!(r.outcome, LogRecordOutcome::Ok { .. }))
    }
}

/// Reads a whole log file with the device's log key: per-record results, so one altered or
/// torn record does not hide the others. Fails only when the file header is not a log file's.
pub fn read_log_file(
    bytes: &[u8],
    key: &LogKey,
    device_id: &str,
    max_record: usize,
) -> Result<LogFileReport> {
    let file_id = file_id(bytes)?;
    let mut records = Vec::new();
    let mut expected = 0u64;
    for piece in pieces(bytes, max_record) {
        let (offset, outcome) = match piece {
            Piece::Damaged { offset, len } => (offset, LogRecordOutcome::Damaged { len: len as u64 }),
            Piece::Truncated { offset, len } => (offset, LogRecordOutcome::Truncated { len: len as u64 }),
            Piece::Frame { offset, sequence, record } => {
                let at = offset as u64;
                if sequence > expected {
                    records.push(LogRecordResult {
                        offset: at,
                        outcome: LogRecordOutcome::Missing { first: expected, last: sequence - 1 },
                    });
                } else if sequence < expected {
                    records.push(LogRecordResult {
                        offset: at,
                        outcome: LogRecordOutcome::OutOfOrder { sequence, expected },
                    });
                }
                expected = expected.max(sequence.saturating_add(1));
                let outcome = match decrypt_record(key, device_id, &file_id, sequence, record, max_record) {
                    Ok(entry) => LogRecordOutcome::Ok { sequence, entry },
                    Err(error) => LogRecordOutcome::Altered { sequence, error },
                };
                (offset, outcome)
            }
        };
        records.push(LogRecordResult { offset: offset as u64, outcome });
    }
    Ok(LogFileReport { file_id, records })
}
