//! Rows of the store, shared by every backend.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Individual (one device) or group (every device under a CA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentKind {
    /// One device, by certificate or by public key.
    Individual,
    /// Every device whose chain passes through a CA certificate.
    Group,
}

/// Whether an enrollment admits or blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentStatus {
    /// Admits matching devices.
    Enabled,
    /// Blocks matching devices (a disabled match is final: lookup does not go on).
    Disabled,
    /// A group waiting for proof of possession of its CA key; neither trusted nor matched.
    PendingProof,
}

/// What an enrollment matches. Each is a SHA-256, so lookups are one indexed equality.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKey {
    /// A device certificate, by SHA-256 of its DER.
    Certificate([u8; 32]),
    /// A device key, by SHA-256 of its SubjectPublicKeyInfo DER (survives re-certification).
    PublicKey([u8; 32]),
    /// A CA certificate, by SHA-256 of its DER.
    Ca([u8; 32]),
}

impl MatchKey {
    /// The kind of enrollment this key belongs to.
    pub fn kind(&self) -> EnrollmentKind {
        match self {
            MatchKey::Ca(_) => EnrollmentKind::Group,
            _ => EnrollmentKind::Individual,
        }
    }
}

impl fmt::Display for MatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (tag, h) = match self {
            MatchKey::Certificate(h) => ("cert", h),
            MatchKey::PublicKey(h) => ("spki", h),
            MatchKey::Ca(h) => ("ca", h),
        };
        write!(f, "{tag}:{}", hex::encode(h))
    }
}

impl fmt::Debug for MatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MatchKey({self})")
    }
}

impl FromStr for MatchKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Invalid(format!("match key {s:?} is not cert:|spki:|ca: and 64 hex digits"));
        let (tag, h) = s.split_once(':').ok_or_else(bad)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(h, &mut bytes).map_err(|_| bad())?;
        match tag {
            "cert" => Ok(MatchKey::Certificate(bytes)),
            "spki" => Ok(MatchKey::PublicKey(bytes)),
            "ca" => Ok(MatchKey::Ca(bytes)),
            _ => Err(bad()),
        }
    }
}

impl Serialize for MatchKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MatchKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// Random ID, 32 hex digits.
    pub id: String,
    /// What it matches (unique).
    pub key: MatchKey,
    /// Admits, blocks, or waits for proof of possession.
    pub status: EnrollmentStatus,
    /// For individual enrollments: the device ID the certificate must carry, when known.
    pub device_id: Option<String>,
    /// The certificate (individual by certificate, group), or the SubjectPublicKeyInfo
    /// (individual by key), DER, when known.
    #[serde(skip)]
    pub der: Option<Vec<u8>>,
    /// For a group waiting for proof of possession: the code its CA must sign.
    pub verification_code: Option<String>,
    /// Free text for operators (e.g. "factory 1 line 2").
    pub note: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

impl Enrollment {
    /// Individual or group.
    pub fn kind(&self) -> EnrollmentKind {
        self.key.kind()
    }
}

/// What [`Store::import_enrollments`](super::Store::import_enrollments) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    /// New enrollments.
    pub inserted: u64,
    /// Skipped: the match key was enrolled already.
    pub existing: u64,
}

/// A device seen by the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Device ID (certificate CN).
    pub device_id: String,
    /// SHA-256 of the certificate it last authenticated with, hex.
    pub cert_sha256: String,
    /// That certificate's serial, hex.
    pub serial: String,
    /// The enrollment that admitted it.
    pub enrollment_id: String,
    /// Unix seconds.
    pub first_seen: i64,
    /// Unix seconds.
    pub last_seen: i64,
    /// Successful authentications.
    pub auth_count: u64,
}

/// A revoked certificate serial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Serial, lower-case hex.
    pub serial: String,
    /// RFC 5280 reason name (e.g. "keyCompromise").
    pub reason: String,
    /// Unix seconds.
    pub revoked_at: i64,
}

/// A challenge as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredChallenge {
    /// Random ID, 32 hex digits.
    pub id: String,
    /// The 32 challenge bytes.
    pub challenge: [u8; 32],
    /// SHA-256 of the certificate it was issued to.
    pub cert_sha256: [u8; 32],
    /// SHA-256 of the TLS exporter value of the session it was issued on.
    pub session_binding: [u8; 32],
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The result of consuming a challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeTake {
    /// First use: the caller owns it now.
    Fresh(StoredChallenge),
    /// Used before.
    Used(StoredChallenge),
    /// Never issued, or purged.
    Unknown,
}

/// The challenge operation of an authentication step, run with its admission lookup
/// ([`Store::admission`](super::Store::admission)).
#[derive(Clone, Copy, Debug)]
pub enum ChallengeOp<'a> {
    /// Lookup only.
    None,
    /// Store a fresh challenge (`POST /v1/auth/challenge`).
    Insert(&'a StoredChallenge),
    /// Consume a challenge, as [`Store::consume_challenge`](super::Store::consume_challenge)
    /// does (`POST /v1/auth/session`).
    Consume {
        /// Challenge ID.
        id: &'a str,
        /// Unix seconds.
        at: i64,
    },
}

/// What [`Store::admission`](super::Store::admission) read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// The serial's revocation, if revoked.
    pub revocation: Option<Revocation>,
    /// The enrollments matching the keys, in no particular order, without their certificates
    /// (`der` is `None`).
    pub enrollments: Vec<Enrollment>,
    /// The outcome of [`ChallengeOp::Consume`].
    pub challenge: Option<ChallengeTake>,
}

/// A device session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSession {
    /// SHA-256 of the bearer token.
    pub token_sha256: [u8; 32],
    /// The device.
    pub device_id: String,
    /// SHA-256 of the certificate it authenticated with; the token is only valid with it.
    pub cert_sha256: [u8; 32],
    /// The certificate's serial, re-checked for revocation on every use.
    pub serial: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A device's state document as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredState {
    /// Write counter.
    pub version: u64,
    /// JSON text.
    pub json: String,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Success or refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused (see the reason).
    Refused,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        if s == "ok" { Outcome::Ok } else { Outcome::Refused }
    }
}

/// An audit record to append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Unix seconds.
    pub at: i64,
    /// What happened: "device.challenge", "device.session", "device.access", "tls.handshake",
    /// "operator.enroll", "operator.revoke", ...
    pub event: String,
    /// Success or refusal.
    pub outcome: Outcome,
    /// For refusals, the stable code ([`Refusal::code`](crate::Refusal::code)).
    pub reason: Option<String>,
    /// Human-readable detail.
    pub detail: String,
    /// The device concerned, when known.
    pub device_id: Option<String>,
    /// Who acted: certificate SHA-256, or `token:<name>` for operators.
    pub actor: Option<String>,
    /// Remote address.
    pub peer: Option<String>,
}

/// A stored audit record with its sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Increasing sequence number.
    pub seq: i64,
    /// The record.
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// What an operator API token may do. Each role includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A device owner (an end user's app): claims devices through pairing and reaches only
    /// the devices it claimed (their media keys); none of the operator API.
    Owner,
    /// Read enrollments, devices and the audit log.
    Viewer,
    /// Also enroll, disable, import and revoke.
    Operator,
    /// Also manage API tokens.
    Admin,
}

impl Role {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "owner" => Ok(Role::Owner),
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => {
                Err(Error::Invalid(format!("unknown role {s:?}; expected admin, operator, viewer or owner")))
            }
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator API token as stored: the secret itself is never kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Unique name, e.g. "ci" or "alice".
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the secret.
    #[serde(with = "hex::serde")]
    pub token_sha256: [u8; 32],
    /// Unix seconds.
    pub created_at: i64,
    /// Disabled tokens are refused.
    pub disabled: bool,
}

pub(crate) fn status_str(s: EnrollmentStatus) -> &'static str {
    match s {
        EnrollmentStatus::Enabled => "enabled",
        EnrollmentStatus::Disabled => "disabled",
        EnrollmentStatus::PendingProof => "pending_proof",
    }
}

pub(crate) fn parse_status(s: &str) -> Result<EnrollmentStatus, Error> {
    match s {
        "enabled" => Ok(EnrollmentStatus::Enabled),
        "disabled" => Ok(EnrollmentStatus::Disabled),
        "pending_proof" => Ok(EnrollmentStatus::PendingProof),
        _ => Err(Error::Storage { backend: "store", message: format!("unknown enrollment status {s:?}") }),
    }
}

pub(crate) fn to32(bytes: &[u8], what: &str) -> Result<[u8; 32], Error> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| Error::Storage { backend: "store", message: format!("{what} is not 32 bytes") })
}
