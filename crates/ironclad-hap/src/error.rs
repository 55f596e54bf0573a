//! The crate's one error enum.

use std::path::PathBuf;

use crate::database::HapStatus;

/// Everything ironclad-hap can refuse. Precise for logs and tests; on the wire the accessory
/// sends only coarse TLV error codes and HAP status numbers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Socket I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A pairing step failed (TLV8, SRP, signatures, session frames, or a kTLVError from the
    /// peer as [`ironclad_pair::Error::Peer`]).
    #[error(transparent)]
    Pair(#[from] ironclad_pair::Error),
    /// The secure element failed.
    #[error(transparent)]
    SecureElement(#[from] ironclad_se::Error),
    /// A malformed HTTP message from the peer.
    #[error("malformed HTTP message: {0}")]
    Http(&'static str),
    /// An HTTP message over a limit (header block or body).
    #[error("HTTP {what} of {len} bytes exceeds the limit of {limit}")]
    TooLarge { what: &'static str, len: usize, limit: usize },
    /// The accessory answered with an HTTP status other than the one the request expects.
    #[error("{method} {path} answered HTTP {status}")]
    Status { method: &'static str, path: String, status: u16, hap_status: Option<i64> },
    /// Characteristic reads or writes that the accessory refused (HAP status per characteristic).
    #[error("characteristics refused: {}", describe(.0))]
    Characteristics(Vec<(crate::CharId, HapStatus)>),
    /// A body that is not the JSON HAP defines.
    #[error("invalid HAP JSON: {0}")]
    Json(String),
    /// The peer closed the connection (or the accessory closed the session).
    #[error("the connection was closed")]
    Closed,
    /// No answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The controller store has no accessory under this alias.
    #[error("no paired accessory named {0:?}")]
    UnknownAccessory(String),
    /// An accessory is already stored under this alias.
    #[error("an accessory named {0:?} is already paired; remove it first")]
    AliasTaken(String),
    /// The controller store file is unreadable or malformed.
    #[error("controller store {path}: {reason}")]
    Store { path: PathBuf, reason: String },
    /// A value or setting that cannot be used.
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// A blocking task (SRP, secure-element access) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn describe(list: &[(crate::CharId, HapStatus)]) -> String {
    list.iter().map(|(id, status)| format!("{id}: {status}")).collect::<Vec<_>>().join(", ")
}

impl Error {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid { what, reason: reason.into() }
    }

    /// The kTLVError code the peer sent, if this is such a refusal (`Busy`, `MaxTries`, …).
    pub fn peer_code(&self) -> Option<ironclad_pair::ErrorCode> {
        match self {
            Error::Pair(ironclad_pair::Error::Peer(code)) => Some(*code),
            _ => None,
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Task(e.to_string())
    }
}
