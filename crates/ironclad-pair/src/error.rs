//! The crate's one error enum, the HAP wire error codes, and the accessory's "rejected" reply.

use std::fmt;

/// Everything ironclad-pair can refuse. Precise for logs and tests; what goes on the wire is the
/// coarse [`ErrorCode`] from [`Error::wire_code`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Malformed TLV8, or a TLV item that is missing, repeated or of the wrong size.
    #[error("TLV8 error at byte {offset}: {kind}")]
    Tlv { offset: usize, kind: TlvErrorKind },
    /// The message carries a State other than the one this step expects.
    #[error("unexpected pairing state {found} (expected {expected})")]
    UnexpectedState { expected: u8, found: u8 },
    /// The request names a method this endpoint does not serve.
    #[error("unsupported pairing method {0}")]
    UnsupportedMethod(u8),
    /// Pair-setup flags (transient / split setup) that this implementation does not support.
    #[error("unsupported pair-setup flags {0:#x}")]
    UnsupportedFlags(u32),
    /// The peer answered with a kTLVError code.
    #[error("the peer refused: {0}")]
    Peer(ErrorCode),
    /// An SRP public value (A or B) that is zero modulo N, too long or not below N.
    #[error("invalid SRP public value {0}")]
    SrpPublicValue(&'static str),
    /// The controller's SRP proof did not verify: wrong setup code (or a tampered M3).
    #[error("SRP proof from the controller did not verify (wrong setup code?)")]
    SrpProof,
    /// The accessory's SRP proof (M2 in M4) did not verify.
    #[error("SRP proof from the accessory did not verify")]
    SrpServerProof,
    /// Controller side: the accessory's B has a leading zero byte, where peers disagree on
    /// padding. Not a failure: start again at M1 (the accessory draws a new b).
    #[error("accessory SRP value B has a leading zero byte; restart pair-setup at M1")]
    SrpRestart,
    /// ChaCha20-Poly1305 authentication failed for the encrypted part of a message.
    #[error("decryption failed in {step}")]
    Decrypt { step: &'static str },
    /// An Ed25519 signature did not verify.
    #[error("bad signature in {step}")]
    Signature { step: &'static str },
    /// A peer's X25519 or Ed25519 public key that is malformed or of low order.
    #[error("bad peer public key in {step}")]
    BadPublicKey { step: &'static str },
    /// Pair-verify: the peer's pairing identifier is not in the pairing store.
    #[error("unknown pairing identifier {0:?}")]
    UnknownPeer(String),
    /// The identifier in a message is not the one expected for this peer.
    #[error("pairing identifier mismatch: expected {expected:?}, got {found:?}")]
    IdentifierMismatch { expected: String, found: String },
    /// Pair-setup on an accessory that already has a pairing.
    #[error("the accessory is already paired")]
    AlreadyPaired,
    /// Too many failed pair-setup attempts; pair-setup stays refused until a reset.
    #[error("pair-setup locked after {attempts} failed attempts")]
    MaxTries { attempts: u32 },
    /// Another pair-setup is in progress.
    #[error("another pair-setup is in progress")]
    Busy,
    /// The pairing store has no room for another pairing.
    #[error("the pairing store is full")]
    MaxPeers,
    /// Add-pairing for an identifier that is stored with a different long-term key.
    #[error("pairing {0:?} exists with a different long-term key")]
    PairingConflict(String),
    /// A pairings request from a controller without admin permission.
    #[error("controller {0:?} is not an admin")]
    NotAdmin(String),
    /// A setup code that is malformed or on HAP's list of forbidden codes.
    #[error("invalid setup code: {0}")]
    InvalidSetupCode(&'static str),
    /// A pairing identifier that is empty or too long.
    #[error("invalid pairing identifier: {0}")]
    InvalidIdentifier(&'static str),
    /// Session framing: a frame's tag did not verify (tampered, reordered or truncated traffic).
    #[error("session frame {counter} failed authentication; the session is closed")]
    FrameAuth { counter: u64 },
    /// Session framing: a frame header announces more than 1024 bytes.
    #[error("session frame length {0} exceeds 1024")]
    FrameTooLong(usize),
    /// Session framing: the stream ended inside a frame.
    #[error("session ended inside a frame ({pending} bytes pending)")]
    FrameTruncated { pending: usize },
    /// The session already failed (or a counter ran out) and accepts no more data.
    #[error("the session is closed")]
    SessionClosed,
    /// The pairing store's backend failed.
    #[error("pairing store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The secure element holding the long-term key failed.
    #[error("secure element: {0}")]
    SecureElement(#[from] ironclad_se::Error),
    /// The long-term key is not an Ed25519 key.
    #[error("long-term key must be Ed25519, found {0}")]
    WrongKeyType(String),
    /// Controller side: device authentication was asked for and the accessory presented no
    /// device certificate in pair-setup M4.
    #[error("the accessory presented no device certificate")]
    NoDeviceCertificate,
    /// The device certificate chain or its transcript signature did not verify (or a local
    /// attestation is unusable).
    #[error("device authentication failed: {0}")]
    DeviceAuth(String),
    /// A cloud delegation that is malformed, over a limit, or otherwise unusable.
    #[error("invalid cloud delegation: {0}")]
    Delegation(String),
    /// The random source failed.
    #[error("random source failed")]
    Random,
    /// A primitive of the crypto backend failed unexpectedly.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a pairing-store backend error.
    pub fn store(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Store(err.into())
    }

    pub(crate) fn tlv(offset: usize, kind: TlvErrorKind) -> Self {
        Error::Tlv { offset, kind }
    }

    /// The kTLVError code an accessory sends for this error. Coarse on purpose: every
    /// cryptographic failure is `Authentication`, malformed input is `Unknown`.
    pub fn wire_code(&self) -> ErrorCode {
        match self {
            Error::AlreadyPaired => ErrorCode::Unavailable,
            Error::MaxTries { .. } => ErrorCode::MaxTries,
            Error::Busy => ErrorCode::Busy,
            Error::MaxPeers => ErrorCode::MaxPeers,
            Error::Peer(code) => *code,
            Error::SrpProof
            | Error::SrpServerProof
            | Error::SrpPublicValue(_)
            | Error::Decrypt { .. }
            | Error::Signature { .. }
            | Error::BadPublicKey { .. }
            | Error::UnknownPeer(_)
            | Error::IdentifierMismatch { .. }
            | Error::NotAdmin(_)
            | Error::NoDeviceCertificate
            | Error::DeviceAuth(_) => ErrorCode::Authentication,
            _ => ErrorCode::Unknown,
        }
    }

    /// True for [`Error::SrpRestart`]: the controller should begin a fresh pair-setup at M1.
    pub fn is_restart(&self) -> bool {
        matches!(self, Error::SrpRestart)
    }
}

/// What is wrong with a TLV8 byte string or a TLV item.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlvErrorKind {
    /// Fewer than two bytes left for an item header.
    TruncatedHeader,
    /// The item announces `declared` bytes but only `available` remain.
    TruncatedValue { declared: u8, available: usize },
    /// Two adjacent items of the same type where the first is shorter than 255 bytes: neither
    /// a fragment continuation nor separated by 0xFF.
    MissingSeparator { ty: u8 },
    /// A required item is absent (offset = end of the message).
    Missing { ty: u8 },
    /// An item that may appear once appears again.
    Duplicate { ty: u8 },
    /// An item whose length is not allowed.
    BadLength { ty: u8, len: usize },
    /// An item whose value is not allowed.
    BadValue { ty: u8 },
}

impl fmt::Display for TlvErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlvErrorKind::TruncatedHeader => f.write_str("truncated item header"),
            TlvErrorKind::TruncatedValue { declared, available } => {
                write!(f, "item declares {declared} bytes, {available} remain")
            }
            TlvErrorKind::MissingSeparator { ty } => {
                write!(f, "adjacent items of type {ty:#04x} after a short fragment (missing separator)")
            }
            TlvErrorKind::Missing { ty } => write!(f, "required item {ty:#04x} missing"),
            TlvErrorKind::Duplicate { ty } => write!(f, "item {ty:#04x} repeated"),
            TlvErrorKind::BadLength { ty, len } => write!(f, "item {ty:#04x} has invalid length {len}"),
            TlvErrorKind::BadValue { ty } => write!(f, "item {ty:#04x} has an invalid value"),
        }
    }
}

/// HAP's kTLVError codes (TLV type 0x07).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 1: generic error.
    Unknown,
    /// 2: setup code or signature verification failed.
    Authentication,
    /// 3: obsolete "retry later" code.
    Backoff,
    /// 4: no room for another pairing.
    MaxPeers,
    /// 5: too many failed attempts.
    MaxTries,
    /// 6: already paired (pair-setup refused).
    Unavailable,
    /// 7: another pair-setup is in progress.
    Busy,
    /// A code this crate does not know.
    Other(u8),
}

impl ErrorCode {
    pub fn to_u8(self) -> u8 {
        match self {
            ErrorCode::Unknown => 1,
            ErrorCode::Authentication => 2,
            ErrorCode::Backoff => 3,
            ErrorCode::MaxPeers => 4,
            ErrorCode::MaxTries => 5,
            ErrorCode::Unavailable => 6,
            ErrorCode::Busy => 7,
            ErrorCode::Other(code) => code,
        }
    }

    pub fn from_u8(code: u8) -> Self {
        match code {
            1 => ErrorCode::Unknown,
            2 => ErrorCode::Authentication,
            3 => ErrorCode::Backoff,
            4 => ErrorCode::MaxPeers,
            5 => ErrorCode::MaxTries,
            6 => ErrorCode::Unavailable,
            7 => ErrorCode::Busy,
            other => ErrorCode::Other(other),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Other(code) => write!(f, "kTLVError {code}"),
            known => write!(f, "kTLVError_{known:?} ({})", known.to_u8()),
        }
    }
}

/// An accessory step refused a request: `error` says why (log it), `reply` is the error TLV
/// (`State = n+1, Error = code`) to send to the controller before dropping the step.
#[derive(Debug)]
pub struct Rejected {
    pub error: Error,
    pub reply: Vec<u8>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (replied {})", self.error, self.error.wire_code())
    }
}

impl std::error::Error for Rejected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl Rejected {
    /// The rejection for a request that expected reply state `reply_state`.
    pub(crate) fn new(reply_state: u8, error: Error) -> Self {
        let reply = crate::tlv8::error_reply(reply_state, error.wire_code());
        Rejected { error, reply }
    }
}
