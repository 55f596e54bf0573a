//! Encrypted log records: each record is a COSE_Encrypt0 (AES-256-GCM, `alg` 3) under the
//! device's log key, with a fresh random 12-byte IV in the unprotected header, the key id in
//! the protected header, and an external AAD that binds the device id, the log file's id and
//! the record's sequence number, so a record cannot be moved to another device, file or place.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ciborium::Value;
use coset::{
    CoseEncrypt0, CoseEncrypt0Builder, HeaderBuilder, RegisteredLabelWithPrivate, TaggedCborSerializable,
    iana,
};
use zeroize::Zeroizing;

use crate::cose::cbor::{Fields, int_map, to_vec};
use crate::cose::{alg_text, check_headers, check_len, cose_error};
use crate::error::{Error, Result};

/// Length of a log key (AES-256).
pub const LOG_KEY_LEN: usize = 32;
/// Longest log key id.
pub const MAX_KEY_ID_LEN: usize = 64;
/// Domain string opening every log record's external AAD.
pub const LOG_AAD_DOMAIN: &str = "ironclad log v1";

/// A per-device log key: 32 secret bytes and an id (the COSE `kid`, UTF-8). The secret is
/// wiped on drop and never printed.
pub struct LogKey {
    id: String,
    secret: Zeroizing<[u8; LOG_KEY_LEN]>,
    aead: LessSafeKey,
}

impl LogKey {
    /// A fresh random key (the server generates one per device).
    pub fn generate(id: &str) -> Result<Self> {
        let mut secret = Zeroizing::new([0u8; LOG_KEY_LEN]);
        aws_lc_rs::rand::fill(secret.as_mut()).map_err(|_| Error::Rng)?;
        Self::from_secret(id, secret.as_ref())
    }

    /// A key from its id and secret bytes (unwrapped from storage).
    pub fn from_secret(id: &str, secret: &[u8]) -> Result<Self> {
        if id.is_empty() || id.len() > MAX_KEY_ID_LEN {
            return Err(Error::Malformed {
                what: "log key",
                reason: format!("id must be 1 to {MAX_KEY_ID_LEN} bytes"),
            });
        }
        let secret: [u8; LOG_KEY_LEN] = secret.try_into().map_err(|_| Error::Length {
            field: "log key",
            expected: LOG_KEY_LEN,
            found: secret.len(),
        })?;
        let secret = Zeroizing::new(secret);
        let unbound =
            UnboundKey::new(&AES_256_GCM, secret.as_ref()).map_err(|_| Error::InvalidKey("AES-256 key"))?;
        Ok(Self { id: id.to_owned(), secret, aead: LessSafeKey::new(unbound) })
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret bytes, for wrapping them into storage (a sealed store, the server's vault, a
    /// key delivery); never log them.
    pub fn secret_bytes(&self) -> &[u8; LOG_KEY_LEN] {
        &self.secret
    }

    pub(crate) fn aead(&self) -> &LessSafeKey {
        &self.aead
    }
}

impl Clone for LogKey {
    fn clone(&self) -> Self {
        #[allow(clippy::expect_used)]
        Self::from_secret(&self.id, self.secret.as_ref()).expect("an existing key is valid")
    }
}

impl fmt::Debug for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Severity of a log entry (syslog-like, most severe first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// 1
    Error,
    /// 2
    Warn,
    /// 3
    Info,
    /// 4
    Debug,
    /// 5
    Trace,
}

impl LogLevel {
    const ALL: [LogLevel; 5] =
        [LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug, LogLevel::Trace];

    /// The wire number (1 = error ... 5 = trace).
    pub fn code(self) -> u64 {
        self as u64 + 1
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    fn from_code(code: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.code() == code)
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The plaintext of one record: CBOR `{1: time, 2: level, 3: message}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// 1: seconds since the Unix epoch.
    pub time: u64,
    /// 2: severity code.
    pub level: LogLevel,
    /// 3: the message text.
    pub message: String,
}

impl LogEntry {
    fn to_cbor(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(to_vec(&int_map(vec![
            (1, self.time.into()),
            (2, self.level.code().into()),
            (3, Value::Text(self.message.clone())),
        ])))
    }

    fn from_cbor(bytes: &[u8]) -> Result<Self> {
        let what = "log entry";
        let mut f = Fields::decode(what, bytes)?;
        let time = f.uint(1, "time")?;
        let level = LogLevel::from_code(f.uint(2, "level")?)
            .ok_or_else(|| Error::Malformed { what, reason: "level must be 1 to 5".to_owned() })?;
        let message = match f.value(3, "message")? {
            Value::Text(t) => t,
            _ => return Err(Error::Malformed { what, reason: "message must be text".to_owned() }),
        };
        f.finish()?;
        Ok(Self { time, level, message })
    }
}

/// The external AAD of record `sequence` of log file `file_id` of `device_id`:
/// CBOR `["ironclad log v1", device_id (tstr), file_id (bstr .size 16), sequence (uint)]`.
/// COSE puts it in the `Enc_structure` (RFC 9052 §5.3), so any COSE library decrypts a record
/// given the key and these bytes.
pub fn log_external_aad(device_id: &str, file_id: &[u8; 16], sequence: u64) -> Vec<u8> {
    to_vec(&Value::Array(vec![
        Value::Text(LOG_AAD_DOMAIN.to_owned()),
        Value::Text(device_id.to_owned()),
        Value::Bytes(file_id.to_vec()),
        sequence.into(),
    ]))
}

/// Encrypts one entry as a tagged COSE_Encrypt0: protected `{1: 3 (A256GCM), 4: kid}`,
/// unprotected `{5: iv}` with a fresh random IV.
pub fn encrypt_record(
    key: &LogKey,
    device_id: &str,
    file_id: &[u8; 16],
    sequence: u64,
    entry: &LogEntry,
) -> Result<Vec<u8>> {
    let mut iv = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| Error::Rng)?;
    encrypt0(key, iv, &entry.to_cbor(), &log_external_aad(device_id, file_id, sequence))
}

/// COSE_Encrypt0 with AES-256-GCM under `key`, IV `iv`.
pub(crate) fn encrypt0(
    key: &LogKey,
    iv: [u8; NONCE_LEN],
    plaintext: &[u8],
    external_aad: &[u8],
) -> Result<Vec<u8>> {
    let protected =
        HeaderBuilder::new().algorithm(iana::Algorithm::A256GCM).key_id(key.id().as_bytes().to_vec()).build();
    let msg = CoseEncrypt0Builder::new()
        .protected(protected)
        .unprotected(HeaderBuilder::new().iv(iv.to_vec()).build())
        .try_create_ciphertext(plaintext, external_aad, |pt, aad| seal(key.aead(), iv, pt, aad))?
        .build();
    msg.to_tagged_vec().map_err(|e| Error::Malformed { what: "log record", reason: e.to_string() })
}

pub(crate) fn seal(key: &LessSafeKey, iv: [u8; NONCE_LEN], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let mut out = plaintext.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut out)
        .map_err(|_| Error::Malformed { what: "log record", reason: "AES-GCM seal failed".to_owned() })?;
    Ok(out)
}

pub(crate) fn open(
    what: &'static str,
    key: &LessSafeKey,
    iv: &[u8],
    ct: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| Error::DecryptFailed { what })?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let len =
        key.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| Error::DecryptFailed { what })?.len();
    buf.truncate(len);
    Ok(buf)
}

/// Decrypts one record (checks size, tag, headers, algorithm, key id, IV length).
pub fn decrypt_record(
    key: &LogKey,
    device_id: &str,
    file_id: &[u8; 16],
    sequence: u64,
    record: &[u8],
    max_len: usize,
) -> Result<LogEntry> {
    let plain =
        decrypt0("log record", key, record, max_len, &log_external_aad(device_id, file_id, sequence))?;
    LogEntry::from_cbor(&plain)
}

/// Parses and opens a COSE_Encrypt0 made by [`encrypt0`].
pub(crate) fn decrypt0(
    what: &'static str,
    key: &LogKey,
    bytes: &[u8],
    max_len: usize,
    external_aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    check_len(what, bytes.len(), max_len)?;
    let msg = CoseEncrypt0::from_tagged_slice(bytes).map_err(|e| cose_error(what, e))?;
    let protected = &msg.protected.header;
    check_headers(what, protected, &msg.unprotected)?;
    if protected.alg != Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::A256GCM)) {
        return Err(Error::WrongAlgorithm { expected: "A256GCM", found: alg_text(protected) });
    }
    if protected.key_id != key.id().as_bytes() {
        return Err(Error::UnknownKey { kid_hex: hex::encode(&protected.key_id) });
    }
    if msg.unprotected.iv.len() != NONCE_LEN || !msg.unprotected.partial_iv.is_empty() {
        return Err(Error::Malformed { what, reason: "needs a 12-byte IV and no partial IV".to_owned() });
    }
    let iv = msg.unprotected.iv.clone();
    let mut out = None;
    let missing = || Error::Malformed { what, reason: "no ciphertext".to_owned() };
    msg.decrypt_ciphertext(external_aad, missing, |ct, aad| -> Result<Vec<u8>> {
        out = Some(open(what, key.aead(), &iv, ct, aad)?);
        Ok(Vec::new())
    })?;
    out.ok_or(Error::DecryptFailed { what })
}
