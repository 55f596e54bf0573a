//! Device ownership and media keys: an owner (an end user's app, paired with the device)
//! gets a one-time claim code from the cloud and hands it to the device over the pairing
//! session; the device redeems it over its authenticated connection. The cloud then serves
//! the device's media keys to the device itself, to its owner, and to authorised operators
//! only.

use serde::{Deserialize, Serialize};

/// Longest stream name.
pub const MAX_STREAM_NAME: usize = 64;

/// Whether `name` is a valid stream name: 1–64 of `A–Z a–z 0–9 . _ -`, not starting with a dot.
pub fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_STREAM_NAME
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `POST /v1/owner/claim-codes` answer: a one-time code, shown once, stored hashed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimCode {
    /// The code (32 hex digits).
    pub code: String,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
}

/// `POST /v1/devices/{id}/claim` body (device session required).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// The owner's claim code, received over the pairing session.
    pub code: String,
}

/// `POST /v1/devices/{id}/claim` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimResponse {
    /// The device.
    pub device_id: String,
    /// Its owner now.
    pub owner: String,
}

/// A device and its owner, as `GET /v1/owner/devices` lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedDevice {
    /// The device.
    pub device_id: String,
    /// Unix seconds.
    pub claimed_at: i64,
}

/// A media stream's AES-128 key (SAMPLE-AES), as the device, its owner or an operator gets it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaKey {
    /// The device whose stream it is.
    pub device_id: String,
    /// The stream, e.g. `front`.
    pub stream: String,
    /// The vault's key id (names the version: rotation makes a new one).
    pub key_id: String,
    /// The 16-byte key, hex.
    pub key_hex: String,
}

impl std::fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaKey")
            .field("device_id", &self.device_id)
            .field("stream", &self.stream)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// HTTP paths of ownership and media keys.
pub mod paths {
    /// `POST` (owner token): a new claim code.
    pub const CLAIM_CODES: &str = "/v1/owner/claim-codes";
    /// `GET` (owner token): the owner's devices.
    pub const OWNED_DEVICES: &str = "/v1/owner/devices";

    /// `POST` a [`super::ClaimRequest`] (device session).
    pub fn claim(device_id: &str) -> String {
        format!("/v1/devices/{device_id}/claim")
    }

    /// `GET` (device session): the device's own media key for a stream.
    pub fn device_media_key(device_id: &str, stream: &str) -> String {
        format!("/v1/devices/{device_id}/media-keys/{stream}")
    }

    /// `GET` (owner token, owner of the device): a device's media key. With
    /// `Accept: application/octet-stream` the answer is the raw 16 bytes an HLS player wants.
    pub fn owner_media_key(device_id: &str, stream: &str) -> String {
        format!("/v1/owner/devices/{device_id}/media-keys/{stream}")
    }

    /// `GET` (operator token): any device's media key, audited.
    pub fn operator_media_key(device_id: &str, stream: &str) -> String {
        format!("/v1/keys/media/{device_id}/{stream}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        for good in ["front", "cam-1", "a.b_c", "x"] {
            assert!(valid_stream_name(good), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "a b", "../x", &"x".repeat(65)] {
            assert!(!valid_stream_name(bad), "{bad}");
        }
    }

    #[test]
    fn media_key_debug_hides_the_key() {
        let k = MediaKey {
            device_id: "d".into(),
            stream: "s".into(),
            key_id: "media:d/s:v1".into(),
            key_hex: "00ff".repeat(8),
        };
        assert!(!format!("{k:?}").contains("00ff"));
    }
}
