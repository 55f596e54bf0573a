//! The crate's error type and the coarse errors that go on the wire.

use serde::{Deserialize, Serialize};

/// Decoding failures of protocol values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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
