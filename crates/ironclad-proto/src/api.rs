//! HTTP bodies and paths of the device API beyond authentication: the server's public keys,
//! signed commands, signed telemetry, log-key delivery and log upload. The COSE payloads
//! themselves are in [`crate::command`], [`crate::telemetry`], [`crate::logrec`] and
//! [`crate::logkey`]; here they travel base64-encoded inside JSON, or raw as
//! `application/cose` / `application/octet-stream` bodies.

use serde::{Deserialize, Serialize};

/// One of the server's signing keys, as a device pins it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerKey {
    /// `command-signing` or `manifest-signing`.
    pub usage: String,
    /// The COSE `kid` its signatures carry (the vault's key id, UTF-8).
    pub kid: String,
    /// SubjectPublicKeyInfo DER, hex.
    pub spki_hex: String,
}

/// `GET /v1/devices/{id}/server-keys` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerKeys {
    /// Current and retired versions, so commands signed before a rotation still verify.
    pub keys: Vec<ServerKey>,
}

/// A command as the device fetches it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    /// The sequence (also inside the signed payload; this copy is for bookkeeping only).
    pub sequence: u64,
    /// The COSE_Sign1, base64 (standard alphabet, padded).
    pub cose_b64: String,
}

/// `GET /v1/devices/{id}/commands?after=N` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandBatch {
    pub commands: Vec<CommandEnvelope>,
}

/// `POST /v1/registry/devices/{id}/commands` body (operator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssueCommand {
    /// e.g. `reboot`, `set-config`.
    pub name: String,
    /// Arguments as JSON (carried as CBOR in the signed command).
    #[serde(default)]
    pub args: serde_json::Value,
    /// Seconds the command stays valid (default 300).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// `POST /v1/devices/{id}/log-key` body: the device's X25519 firmware/log agreement key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogKeyRequest {
    /// Raw 32-byte X25519 public key, hex.
    pub x25519_public_hex: String,
}

/// `POST /v1/devices/{id}/log-key` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogKeyDelivery {
    /// The vault's key id (the records' COSE `kid`).
    pub key_id: String,
    /// The wrapped key ([`crate::wrap_log_key`]), base64.
    pub delivery_b64: String,
}

/// `POST /v1/devices/{id}/logs` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogUploaded {
    pub upload_id: String,
    pub size: u64,
}

/// HTTP paths.
pub mod paths {
    /// `GET` (device session).
    pub fn server_keys(device_id: &str) -> String {
        format!("/v1/devices/{device_id}/server-keys")
    }
    /// `GET ?after=N` (device session).
    pub fn commands(device_id: &str, after: u64) -> String {
        format!("/v1/devices/{device_id}/commands?after={after}")
    }
    /// `POST` a COSE_Sign1 telemetry report, `application/cose` (device session).
    pub fn telemetry(device_id: &str) -> String {
        format!("/v1/devices/{device_id}/telemetry")
    }
    /// `POST` a [`super::LogKeyRequest`] (device session).
    pub fn log_key(device_id: &str) -> String {
        format!("/v1/devices/{device_id}/log-key")
    }
    /// `POST` a log file, `application/octet-stream` (device session).
    pub fn logs(device_id: &str) -> String {
        format!("/v1/devices/{device_id}/logs")
    }
    /// `POST` an [`super::IssueCommand`], `GET` the device's commands (operator).
    pub fn operator_commands(device_id: &str) -> String {
        format!("/v1/registry/devices/{device_id}/commands")
    }
    /// `GET` a device's telemetry (operator).
    pub fn operator_telemetry(device_id: &str) -> String {
        format!("/v1/registry/devices/{device_id}/telemetry")
    }
    /// `GET` a device's log uploads (operator).
    pub fn operator_logs(device_id: &str) -> String {
        format!("/v1/registry/devices/{device_id}/logs")
    }
    /// `GET` one upload, decrypted (operator).
    pub fn operator_log(upload_id: &str) -> String {
        format!("/v1/logs/{upload_id}")
    }
}
