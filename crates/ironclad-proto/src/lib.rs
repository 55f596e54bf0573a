//! Messages between an ironclad device and the cloud, and the exact bytes a device signs.
//!
//! This crate is pure: types, encodings and byte layouts. It opens no socket and reads no clock;
//! the server (`ironclad-server`) and the device agent (`ironclad-agent`) own the I/O.
//!
//! # Device authentication
//!
//! 1. The device opens a mutual-TLS connection with the certificate of the key in its secure
//!    element.
//! 2. `POST` [`paths::CHALLENGE`]: the server checks the certificate chain, the enrollment and
//!    revocation, and answers a [`ChallengeResponse`]: a fresh 32-byte challenge, single-use
//!    and expiring, bound to this TLS session.
//! 3. The device computes the TLS exporter value of the connection ([`EXPORTER_LABEL`],
//!    [`EXPORTER_LEN`] bytes, no context) and signs [`auth_message`] inside its secure element.
//! 4. `POST` [`paths::SESSION`] with a [`SessionRequest`]; the server verifies the signature with
//!    the certificate's key and answers a [`SessionResponse`] holding a short-lived session token.
//!
//! Every refusal answers the same [`WireError`] with [`ErrorCode::AuthFailed`]; the precise
//! reason stays in the server's audit log.
//!
//! # COSE messages (docs/protocol.md)
//!
//! Parse, verify, act: each signed message parses into an unverified envelope whose `verify`
//! yields the only type the caller can act on.
//!
//! - OTA: [`Manifest::sign`] → [`SignedManifest::parse`] → [`SignedManifest::verify`] →
//!   [`VerifiedManifest`] (+ [`VerifiedManifest::check_security_counter`], `check_image`).
//! - Commands: [`Command::sign`] → [`SignedCommand::parse`] → [`SignedCommand::verify`] →
//!   [`VerifiedCommand`], refusals classified by [`CommandRefusal`].
//! - Telemetry: [`Telemetry::sign`] (device key) → [`SignedTelemetry::verify`] (server).
//! - Logs: [`encrypt_record`] / [`frame`] per record, [`read_log_file`] with per-record
//!   outcomes; the key travels as [`wrap_log_key`] → [`unwrap_log_key`].
//!
//! Private keys stay with the caller: signing goes through [`CoseSigner`] (a secure element's
//! key handle), key agreement through [`AgreementKey`].
#![forbid(unsafe_code)]

pub mod api;
mod auth;
mod command;
mod cose;
mod error;
mod hexbytes;
mod logfile;
mod logkey;
mod logrec;
mod manifest;
pub mod ota;
pub mod ownership;
mod state;
mod telemetry;

pub use auth::{
    AUTH_DOMAIN, AUTH_MESSAGE_LEN, CHALLENGE_LEN, ChallengeResponse, EXPORTER_LABEL, EXPORTER_LEN,
    SessionRequest, SessionResponse, auth_message,
};
pub use error::{Error, ErrorCode, Result, WireError};
pub use hexbytes::{Challenge, ExporterValue};
pub use state::{DeviceState, PutDeviceState};

pub use command::{
    COMMAND_CONTENT_TYPE, Command, CommandRefusal, MAX_NAME_LEN, SignedCommand, VerifiedCommand,
};
pub use cose::Limits;
pub use cose::keys::{CoseSigner, FnSigner, SigAlg, TrustedKeys, VerifyingKey};
pub use logfile::{
    FRAME_HEADER_LEN, FRAME_MARKER, LOG_FILE_HEADER_LEN, LOG_FILE_MAGIC, LogFileReport, LogRecordOutcome,
    LogRecordResult, LogResume, frame, log_file_header, log_resume_point, read_log_file,
};
pub use logkey::{
    AgreementKey, LOG_KEY_AAD_DOMAIN, MAX_KEY_DELIVERY_LEN, log_key_external_aad, unwrap_log_key,
    wrap_log_key,
};
pub use logrec::{
    LOG_AAD_DOMAIN, LOG_KEY_LEN, LogEntry, LogKey, LogLevel, MAX_KEY_ID_LEN, decrypt_record, encrypt_record,
    log_external_aad,
};
pub use manifest::{
    MANIFEST_CONTENT_TYPE, Manifest, ManifestPolicy, ReleaseVersion, SignedManifest, VerifiedManifest,
};
pub use telemetry::{SignedTelemetry, TELEMETRY_CONTENT_TYPE, Telemetry, VerifiedTelemetry};

/// CBOR values (command arguments, telemetry data), re-exported from `ciborium`.
pub use ciborium::Value as CborValue;

/// Footguns, named: keys in process memory instead of a secure element.
pub mod hazmat {
    pub use crate::cose::keys::SoftwareSigner;
}

/// HTTP paths of the device API.
pub mod paths {
    /// `POST`: ask for a challenge (mutual TLS required). Answer: [`crate::ChallengeResponse`].
    pub const CHALLENGE: &str = "/v1/auth/challenge";
    /// `POST` a [`crate::SessionRequest`]. Answer: [`crate::SessionResponse`].
    pub const SESSION: &str = "/v1/auth/session";
    /// Unauthenticated liveness check.
    pub const HEALTH: &str = "/healthz";

    /// `GET` / `PUT` the state document of one device: `/v1/devices/{device_id}/state`.
    pub fn device_state(device_id: &str) -> String {
        format!("/v1/devices/{device_id}/state")
    }
}
