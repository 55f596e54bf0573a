//! The device's encrypted log: records encrypted in memory under the log key and appended as
//! frames to a log file (the "SD card"); plaintext never reaches the file. The log key arrives
//! wrapped to the device's X25519 key ([`install_log_key`]) and is kept sealed in the secure
//! element, never on disk in clear.
//!
//! Sync policy ([`LogSync`]): `EveryRecord` (the default) calls `fdatasync` after each append,
//! so an acknowledged record survives a power cut; `Manual` leaves it to [`LogWriter::sync`]
//! (and drop) for throughput, and a power cut then loses at most the unsynced tail, which the
//! reader reports as `Truncated` and the next [`LogWriter::open`] cuts off. Either way earlier
//! records stay readable: frames are only ever appended.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ironclad_proto::{
    LOG_KEY_LEN, LogEntry, LogKey, encrypt_record, frame, log_file_header, log_resume_point, unwrap_log_key,
};
use ironclad_se::{Label, SecureElement};
use zeroize::Zeroizing;

use crate::cose_keys::SeAgreementKey;
use crate::error::{Error, Result};

/// Sealed object holding the device's log key.
pub const LOG_KEY_OBJECT: &str = "ironclad.log-key";
/// Largest record a device writes or resumes over.
const MAX_RECORD: usize = 64 * 1024;

/// Unwraps a log-key delivery with the device's X25519 key `agreement_key` (ECDH and HKDF inside
/// the secure element) and seals the key in the element as [`LOG_KEY_OBJECT`], replacing any
/// previous one. Returns the key id.
pub fn install_log_key(
    se: &Arc<dyn SecureElement>,
    agreement_key: &Label,
    device_id: &str,
    delivery: &[u8],
) -> Result<String> {
    let agreement = SeAgreementKey::open(se.clone(), agreement_key)?;
    let key = unwrap_log_key(delivery, device_id, &agreement)?;
    // Sealed form: version 1 ‖ id length ‖ id ‖ 32 secret bytes.
    let id = key.id().as_bytes();
    let mut sealed = Zeroizing::new(Vec::with_capacity(2 + id.len() + LOG_KEY_LEN));
    sealed.push(1);
    sealed.push(u8::try_from(id.len()).map_err(|_| Error::Config("log key id too long".into()))?);
    sealed.extend_from_slice(id);
    sealed.extend_from_slice(key.secret_bytes());
    se.put_object(&Label::new(LOG_KEY_OBJECT)?, &sealed)?;
    Ok(key.id().to_owned())
}

/// Loads the log key sealed by [`install_log_key`].
pub fn load_log_key(se: &Arc<dyn SecureElement>) -> Result<LogKey> {
    let sealed = se.get_object(&Label::new(LOG_KEY_OBJECT)?)?;
    let bad = || Error::Config(format!("sealed object {LOG_KEY_OBJECT} is not a log key"));
    let [1, id_len, rest @ ..] = sealed.as_slice() else { return Err(bad()) };
    let (id, secret) = rest.split_at_checked(usize::from(*id_len)).ok_or_else(bad)?;
    let id = std::str::from_utf8(id).map_err(|_| bad())?;
    Ok(LogKey::from_secret(id, secret)?)
}

/// When the writer forces records to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogSync {
    /// `fdatasync` after every record (default).
    #[default]
    EveryRecord,
    /// Only on [`LogWriter::sync`] and drop.
    Manual,
}

/// Appends encrypted records to one log file.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    path: PathBuf,
    key: LogKey,
    device_id: String,
    file_id: [u8; 16],
    next_sequence: u64,
    sync: LogSync,
}

impl LogWriter {
    /// Opens `path` for appending, creating it (header written to a temporary file, synced and
    /// renamed into place) or resuming it: a torn last frame from an interrupted write is cut off
    /// and numbering continues after the last complete frame.
    pub fn open(
        path: impl AsRef<Path>,
        key: LogKey,
        device_id: impl Into<String>,
        sync: LogSync,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            create_log_file(&path)?;
        }
        let mut file = OpenOptions::new().read(true).append(true).open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let resume = log_resume_point(&bytes, MAX_RECORD)?;
        if resume.valid_len < bytes.len() as u64 {
            file.set_len(resume.valid_len)?;
            file.sync_all()?;
        }
        Ok(Self {
            file,
            path,
            key,
            device_id: device_id.into(),
            file_id: resume.file_id,
            next_sequence: resume.next_sequence,
            sync,
        })
    }

    /// Encrypts `entry` and appends it as one frame; returns its sequence number.
    pub fn append(&mut self, entry: &LogEntry) -> Result<u64> {
        let sequence = self.next_sequence;
        let record = encrypt_record(&self.key, &self.device_id, &self.file_id, sequence, entry)?;
        self.file.write_all(&frame(sequence, &record)?)?;
        if self.sync == LogSync::EveryRecord {
            self.file.sync_data()?;
        }
        self.next_sequence += 1;
        Ok(sequence)
    }

    /// Forces appended records to stable storage.
    pub fn sync(&mut self) -> Result<()> {
        Ok(self.file.sync_data()?)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number the next record gets.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.file.sync_data();
    }
}

/// Creates a log file atomically: header into a temporary sibling, fsync, rename, fsync the
/// directory.
fn create_log_file(path: &Path) -> Result<()> {
    let mut file_id = [0u8; 16];
    aws_lc_rs::rand::fill(&mut file_id)
        .map_err(|_| Error::Config("random number generator failed".into()))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name =
        path.file_name().ok_or_else(|| Error::Config(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(&log_file_header(&file_id))?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()?;
    Ok(())
}
