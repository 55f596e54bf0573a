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
#![forbid(unsafe_code)]

mod auth;
mod error;
mod hexbytes;
pub mod ownership;
mod state;

pub use auth::{
    AUTH_DOMAIN, AUTH_MESSAGE_LEN, CHALLENGE_LEN, ChallengeResponse, EXPORTER_LABEL, EXPORTER_LEN,
    SessionRequest, SessionResponse, auth_message,
};
pub use error::{Error, ErrorCode, Result, WireError};
pub use hexbytes::{Challenge, ExporterValue};
pub use state::{DeviceState, PutDeviceState};

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
