//! The crate's error type, and the precise reasons a device or operator is refused.
//!
//! Refusals carry a [`Refusal`] that names exactly what failed; it goes to the audit log and
//! the server's log, while the wire only ever sees [`ironclad_proto::ErrorCode::AuthFailed`]
//! (or `Forbidden` for an authenticated caller reaching for something that is not theirs).

use std::fmt;

use ironclad_proto::ErrorCode;

/// Everything that can go wrong in the server library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A device or operator was refused; the reason is for the audit log only.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The caller is authenticated but may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A request or input is malformed.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// No such enrollment, device or token.
    #[error("not found: {0}")]
    NotFound(String),
    /// An enrollment, token or record with this key exists already.
    #[error("already exists: {0}")]
    Conflict(String),
    /// A group enrollment's proof of possession failed.
    #[error("proof of possession refused: {0}")]
    ProofOfPossession(String),
    /// A certificate or chain problem reported by the PKI.
    #[error(transparent)]
    Pki(#[from] ironclad_pki::Error),
    /// The storage backend failed.
    #[error("storage ({backend}): {message}")]
    Storage {
        /// "sqlite" or "postgres".
        backend: &'static str,
        /// What failed.
        message: String,
    },
    /// TLS configuration failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// Socket I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The key vault's secure element failed (or no vault is configured).
    #[error("key vault: {0}")]
    Vault(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The coarse code this error becomes on the wire.
    pub fn wire_code(&self) -> ErrorCode {
        match self {
            Error::Refused(_) => ErrorCode::AuthFailed,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::Invalid(_) | Error::ProofOfPossession(_) | Error::Pki(_) => ErrorCode::BadRequest,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            _ => ErrorCode::Unavailable,
        }
    }

    pub(crate) fn sqlite(e: impl fmt::Display) -> Self {
        Error::Storage { backend: "sqlite", message: e.to_string() }
    }

    pub(crate) fn postgres(e: impl fmt::Display) -> Self {
        Error::Storage { backend: "postgres", message: e.to_string() }
    }
}

/// Why an authentication (device or operator) was refused. The audit log stores
/// [`Refusal::code`] and the [`Display`](fmt::Display) text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A device endpoint was called without a client certificate.
    NoClientCertificate,
    /// The certificate chain did not verify (unknown issuer, expired, bad signature...).
    ChainInvalid(String),
    /// The certificate's serial is revoked in the registry.
    Revoked {
        /// Serial, hex.
        serial: String,
        /// Revocation reason.
        reason: String,
    },
    /// Neither the certificate, its key, nor any CA of its chain is enrolled.
    NotEnrolled,
    /// The device's individual enrollment is disabled.
    IndividualDisabled {
        /// Enrollment ID.
        enrollment: String,
    },
    /// The first group enrollment up the chain is disabled.
    GroupDisabled {
        /// Enrollment ID.
        enrollment: String,
    },
    /// The individual enrollment names another device ID than the certificate.
    DeviceIdMismatch,
    /// The challenge ID is unknown (never issued, or purged).
    ChallengeUnknown,
    /// The challenge was answered before.
    ChallengeReplayed,
    /// The challenge expired before it was answered.
    ChallengeExpired,
    /// The challenge was issued on another TLS session (relayed answer).
    ChallengeOtherSession,
    /// The challenge was issued to another certificate.
    ChallengeOtherDevice,
    /// The signature does not verify with the certificate's key.
    SignatureInvalid,
    /// The certificate's key type cannot answer challenges.
    UnsupportedKey,
    /// No or malformed bearer token.
    TokenMissing,
    /// The session token is unknown.
    SessionUnknown,
    /// The session expired.
    SessionExpired,
    /// The session belongs to another certificate than the connection's.
    SessionOtherCertificate,
    /// The API token is unknown.
    ApiTokenUnknown,
    /// The API token is disabled.
    ApiTokenDisabled,
    /// A device's claim code was refused (`claim_code_unknown`, `claim_code_used`,
    /// `claim_code_expired`, `claim_owned_by_another`).
    Claim(&'static str),
}

impl Refusal {
    /// A stable, machine-readable code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoClientCertificate => "no_client_certificate",
            Refusal::ChainInvalid(_) => "chain_invalid",
            Refusal::Revoked { .. } => "revoked",
            Refusal::NotEnrolled => "not_enrolled",
            Refusal::IndividualDisabled { .. } => "individual_disabled",
            Refusal::GroupDisabled { .. } => "group_disabled",
            Refusal::DeviceIdMismatch => "device_id_mismatch",
            Refusal::ChallengeUnknown => "challenge_unknown",
            Refusal::ChallengeReplayed => "challenge_replayed",
            Refusal::ChallengeExpired => "challenge_expired",
            Refusal::ChallengeOtherSession => "challenge_cross_session",
            Refusal::ChallengeOtherDevice => "challenge_other_device",
            Refusal::SignatureInvalid => "signature_invalid",
            Refusal::UnsupportedKey => "unsupported_key",
            Refusal::TokenMissing => "token_missing",
            Refusal::SessionUnknown => "session_unknown",
            Refusal::SessionExpired => "session_expired",
            Refusal::SessionOtherCertificate => "session_other_certificate",
            Refusal::ApiTokenUnknown => "api_token_unknown",
            Refusal::ApiTokenDisabled => "api_token_disabled",
            Refusal::Claim(code) => code,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoClientCertificate => f.write_str("no client certificate on a device endpoint"),
            Refusal::ChainInvalid(why) => write!(f, "certificate chain invalid: {why}"),
            Refusal::Revoked { serial, reason } => write!(f, "certificate {serial} revoked ({reason})"),
            Refusal::NotEnrolled => f.write_str("no enrollment matches the certificate, its key or its CAs"),
            Refusal::IndividualDisabled { enrollment } => {
                write!(f, "individual enrollment {enrollment} is disabled")
            }
            Refusal::GroupDisabled { enrollment } => write!(f, "group enrollment {enrollment} is disabled"),
            Refusal::DeviceIdMismatch => f.write_str("certificate CN differs from the enrolled device ID"),
            Refusal::ChallengeUnknown => f.write_str("unknown challenge"),
            Refusal::ChallengeReplayed => f.write_str("challenge already answered (replay)"),
            Refusal::ChallengeExpired => f.write_str("challenge expired"),
            Refusal::ChallengeOtherSession => {
                f.write_str("challenge was issued on another TLS session (relayed)")
            }
            Refusal::ChallengeOtherDevice => f.write_str("challenge was issued to another certificate"),
            Refusal::SignatureInvalid => {
                f.write_str("challenge signature does not verify with the certificate key")
            }
            Refusal::UnsupportedKey => f.write_str("certificate key type cannot answer challenges"),
            Refusal::TokenMissing => f.write_str("no bearer token"),
            Refusal::SessionUnknown => f.write_str("unknown session token"),
            Refusal::SessionExpired => f.write_str("session expired"),
            Refusal::SessionOtherCertificate => {
                f.write_str("session token presented with another client certificate")
            }
            Refusal::ApiTokenUnknown => f.write_str("unknown API token"),
            Refusal::ApiTokenDisabled => f.write_str("API token disabled"),
            Refusal::Claim(code) => write!(f, "claim refused: {}", code.replace('_', " ")),
        }
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::Refused(r)
    }
}
