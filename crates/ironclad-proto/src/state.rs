//! The per-device resource: a small JSON state document that only its device may read or write.

use serde::{Deserialize, Serialize};

/// `PUT /v1/devices/{id}/state` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PutDeviceState {
    /// Any JSON value (limited in size by the server).
    pub data: serde_json::Value,
}

/// `GET /v1/devices/{id}/state` answer (and the answer to a `PUT`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceState {
    /// Whose state.
    pub device_id: String,
    /// Incremented by every write; 0 before the first.
    pub version: u64,
    /// The document (`null` before the first write).
    pub data: serde_json::Value,
}
