use std::path::PathBuf;

use crate::types::{KeyAlgorithm, Label};

/// Everything a secure-element backend can refuse. Messages name the object and the problem;
/// they never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid label {label:?}: {reason}")]
    InvalidLabel { label: String, reason: &'static str },
    #[error("key `{0}` already exists")]
    KeyExists(Label),
    #[error("no key named `{0}`")]
    KeyNotFound(Label),
    #[error("no sealed object named `{0}`")]
    ObjectNotFound(Label),
    #[error("key `{id}` is {alg}, which cannot {operation}")]
    WrongKeyType { id: Label, alg: KeyAlgorithm, operation: &'static str },
    #[error("peer public key is malformed or not on the {alg} curve")]
    BadPeerKey { alg: KeyAlgorithm },
    #[error("sealed data could not be opened: wrong key, wrong context, or tampered ciphertext")]
    OpenFailed,
    #[error("counter `{name}` is at {current}; refusing to move it back to {requested}")]
    CounterWouldDecrease { name: Label, current: u64, requested: u64 },
    #[error("counter `{0}` would overflow")]
    CounterOverflow(Label),
    #[error("sealed object `{name}` is {len} bytes; the limit is {max}")]
    ObjectTooLarge { name: Label, len: usize, max: usize },
    #[error("wrong passphrase or device secret for the key store at {0} (or its header was altered)")]
    WrongPassphrase(PathBuf),
    #[error("{path} was altered or belongs to another store: authentication failed")]
    Tampered { path: PathBuf },
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("no key store at {0}; create one first (`ironclad se init`)")]
    StoreNotFound(PathBuf),
    #[error("a key store already exists at {0}")]
    StoreExists(PathBuf),
    #[error("unsupported key-store format {found:?} at {path}")]
    UnsupportedFormat { path: PathBuf, found: String },
    #[error("the key store at {path} is unlocked by {expected}, not by the secret supplied")]
    UnlockKindMismatch { path: PathBuf, expected: &'static str },
    #[error("weak unlock secret: {0}")]
    WeakSecret(&'static str),
    #[error("{operation} is not supported by the {backend} backend")]
    Unsupported { backend: &'static str, operation: &'static str },
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    #[error("backend failure: {0}")]
    Backend(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
