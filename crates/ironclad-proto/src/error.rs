//! The crate's error type and the coarse errors that go on the wire.

use serde::{Deserialize, Serialize};

/// Decoding failures of protocol values.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A fixed-length field has the wrong length.
    #[error("{field} must be {expected} bytes, not {found}")]
    Length {
        /// Which field.
        field: &'static str,
        /// Its length.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// A hex field is not hex.
    #[error("{field} is not hexadecimal")]
    Hex {
        /// Which field.
        field: &'static str,
    },
    /// A COSE message or record is larger than the limit for its kind (checked before parsing).
    #[error("{what} is {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not the expected COSE/CBOR structure (includes a missing or wrong CBOR tag,
    /// duplicate map keys, unknown payload keys, wrong field types).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which message or field.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Bytes follow the end of the COSE structure.
    #[error("{what} has trailing bytes after its CBOR structure")]
    TrailingBytes {
        /// Which message.
        what: &'static str,
    },
    /// The protected header marks a parameter critical that this implementation does not
    /// understand (RFC 9052 §3.1), or a `crit` parameter sits outside the protected header.
    #[error("unknown critical header parameter {label}")]
    UnknownCritical {
        /// The label, as CBOR diagnostic text.
        label: String,
    },
    /// The algorithm in the protected header is missing, not allowed here, or not the algorithm
    /// of the key that must verify it.
    #[error("wrong algorithm: expected {expected}, found {found}")]
    WrongAlgorithm {
        /// What was expected.
        expected: &'static str,
        /// What the message names.
        found: String,
    },
    /// The protected content type is not the one this message kind carries (a signed command
    /// cannot pass as a manifest, nor telemetry as a command).
    #[error("wrong content type: expected {expected}, found {found}")]
    WrongContentType {
        /// What was expected.
        expected: &'static str,
        /// What the message names.
        found: String,
    },
    /// No trusted key has the message's key id.
    #[error("no trusted key with id {kid_hex}")]
    UnknownKey {
        /// The key id, hex.
        kid_hex: String,
    },
    /// The signature does not verify with the key.
    #[error("bad signature")]
    BadSignature,
    /// A public key is not a supported key in a supported encoding.
    #[error("invalid public key: {0}")]
    InvalidKey(&'static str),
    /// The caller-supplied signer or key-agreement step (a secure element) failed.
    #[error("secure element operation failed: {0}")]
    KeyOperation(String),
    /// The message's expiry is at or before `now` (seconds since the Unix epoch): a freeze or
    /// replay of an old message.
    #[error("expired at {expires} (now {now})")]
    Expired {
        /// Expiry, seconds since the Unix epoch.
        expires: u64,
        /// The caller's clock.
        now: u64,
    },
    /// The manifest targets another product class.
    #[error("manifest targets product class {found:?}, this device is {expected:?}")]
    WrongProductClass {
        /// The device's class.
        expected: String,
        /// The manifest's class.
        found: String,
    },
    /// The manifest's security counter is below the device's: a downgrade.
    #[error("downgrade refused: security counter {offered} is below the device's {current}")]
    Downgrade {
        /// The device's current security counter.
        current: u64,
        /// The manifest's.
        offered: u64,
    },
    /// A downloaded image does not match the manifest's signed size or digest.
    #[error("image {field} does not match the manifest")]
    ImageMismatch {
        /// Which field differs.
        field: &'static str,
    },
    /// The command's sequence number is the one this device accepted last: a replay.
    #[error("command {sequence} replayed (already accepted)")]
    Replayed {
        /// The sequence number.
        sequence: u64,
    },
    /// The command's sequence number is below the last accepted one: an old command replayed or
    /// delivered out of order.
    #[error("command {sequence} is stale: the device already accepted {last}")]
    Stale {
        /// The command's sequence number.
        sequence: u64,
        /// The last accepted.
        last: u64,
    },
    /// The signed message names another device.
    #[error("message targets device {found:?}, not {expected:?}")]
    WrongTarget {
        /// This device.
        expected: String,
        /// The message's target.
        found: String,
    },
    /// AES-GCM authentication failed: wrong key, wrong external AAD (device, file, sequence) or
    /// altered bytes.
    #[error("{what} does not decrypt: wrong key or altered")]
    DecryptFailed {
        /// What failed to decrypt.
        what: &'static str,
    },
    /// A log file does not start with the log-file magic.
    #[error("not an ironclad log file (bad magic)")]
    NotALogFile,
    /// The random number generator failed.
    #[error("random number generator failed")]
    Rng,
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Coarse error codes: all an attacker learns. The server's audit log keeps the precise reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Authentication refused, whatever the reason (unknown CA, not enrolled, disabled,
    /// revoked, bad or reused challenge, wrong key, expired or missing session or API token).
    AuthFailed,
    /// Authenticated, but this resource belongs to someone else or needs a higher role.
    Forbidden,
    /// The request is malformed.
    BadRequest,
    /// No such resource.
    NotFound,
    /// The resource exists already.
    Conflict,
    /// The server failed; try again later.
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status that carries this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::AuthFailed => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::BadRequest => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::Unavailable => 503,
        }
    }
}

/// The body of every error response: `{"error":"AuthFailed"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// What went wrong, coarsely.
    pub error: ErrorCode,
}

impl WireError {
    /// The error with this code.
    pub fn new(error: ErrorCode) -> Self {
        WireError { error }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        let text = serde_json::to_string(&WireError::new(ErrorCode::AuthFailed)).unwrap();
        assert_eq!(text, r#"{"error":"AuthFailed"}"#);
        assert_eq!(ErrorCode::AuthFailed.http_status(), 401);
    }
}
