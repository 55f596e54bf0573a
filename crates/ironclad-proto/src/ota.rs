//! OTA over the device and operator APIs: HTTP bodies and paths. The signed part is the
//! [`crate::Manifest`] (COSE_Sign1 by the server's manifest key); the image is an MCUboot image
//! whose content key the server re-wraps to the asking device's firmware-decryption key.
//!
//! Device flow: `POST` an [`UpdateCheck`] to [`paths::check`]; an [`UpdateAnswer`] with an
//! [`UpdateOffer`] carries the manifest and where to download; `GET` [`paths::image`] (with
//! `Range: bytes=N-` and `If-Range: <etag>` to resume); `POST` [`OtaReport`]s to
//! [`paths::report`] as the update moves on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// `POST /v1/devices/{id}/ota/check` body: what the device runs and how to reach its secure
/// element's firmware-decryption key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateCheck {
    /// The running image's version (MCUboot `major.minor.revision+build`).
    pub version: String,
    /// The device's anti-rollback counter (its secure element's monotonic counter).
    pub security_counter: u64,
    /// The device's product class (UUID text).
    pub product_class: String,
    /// SubjectPublicKeyInfo DER of the device's firmware-decryption key (X25519 or P-256), hex.
    pub fw_key_spki_hex: String,
}

/// Why the server has nothing to offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoUpdate {
    /// No active rollout covers this device (none for its group, paused, aborted, or its
    /// bucket is above the stage's percentage).
    NoRollout,
    /// The device already runs the release (or a newer one).
    UpToDate,
    /// The release would lower the device's security counter: refused.
    Downgrade,
    /// The release is for another product class.
    OtherProductClass,
}

/// `POST /v1/devices/{id}/ota/check` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateAnswer {
    /// The update, if one applies.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub offer: Option<UpdateOffer>,
    /// Why not, when there is no offer.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub none: Option<NoUpdate>,
}

/// An update for this device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateOffer {
    /// The release.
    pub release_id: String,
    /// The COSE_Sign1 manifest ([`crate::SignedManifest`]), hex.
    #[serde(with = "hex::serde")]
    pub manifest: Vec<u8>,
    /// Where to `GET` the image (this device's copy: content key wrapped to its key).
    pub download_path: String,
    /// Bytes to download (also in the manifest).
    pub size: u64,
    /// The entity tag of this device's copy, for `If-Range` when resuming.
    pub etag: String,
}

/// Where a device is with a release, as it reports and the server tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OtaState {
    /// The server offered the release (set by the server at the check).
    Offered,
    /// The device is downloading.
    Downloading,
    /// Written to the inactive slot, verified, pending its first boot.
    Installed,
    /// Booted on trial.
    Trial,
    /// Confirmed: the device runs it and its anti-rollback counter moved.
    Confirmed,
    /// Refused or failed (digest, signature, decryption, trial); `detail` says why.
    Failed,
    /// The device refused the release as a downgrade.
    RefusedDowngrade,
}

impl OtaState {
    /// Every state, in the order an update goes through them.
    pub const ALL: [OtaState; 7] = [
        OtaState::Offered,
        OtaState::Downloading,
        OtaState::Installed,
        OtaState::Trial,
        OtaState::Confirmed,
        OtaState::Failed,
        OtaState::RefusedDowngrade,
    ];

    /// Stable name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            OtaState::Offered => "offered",
            OtaState::Downloading => "downloading",
            OtaState::Installed => "installed",
            OtaState::Trial => "trial",
            OtaState::Confirmed => "confirmed",
            OtaState::Failed => "failed",
            OtaState::RefusedDowngrade => "refused-downgrade",
        }
    }

    /// True once the device is done with the release, one way or the other.
    pub fn is_final(self) -> bool {
        matches!(self, OtaState::Confirmed | OtaState::Failed | OtaState::RefusedDowngrade)
    }
}

impl fmt::Display for OtaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OtaState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        OtaState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Error::Malformed { what: "OTA state", reason: format!("unknown state {s:?}") })
    }
}

/// `POST /v1/devices/{id}/ota/report` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtaReport {
    /// The release the report is about (one offered to this device).
    pub release_id: String,
    /// Where the device is.
    pub state: OtaState,
    /// Free text (why it failed), at most [`MAX_DETAIL_LEN`] bytes.
    #[serde(default)]
    pub detail: String,
}

/// Longest report detail the server keeps.
pub const MAX_DETAIL_LEN: usize = 512;

/// A firmware-verification (mastering) public key the server checks releases against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtaKeyInfo {
    /// SHA-256 of its SubjectPublicKeyInfo, hex: MCUboot's KEYHASH.
    pub key_hash: String,
    /// The operator's name for it.
    pub name: String,
    /// `ecdsa-p256` or `ed25519`.
    pub algorithm: String,
    /// Public key PEM.
    pub public_key_pem: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The token that registered it.
    pub created_by: String,
}

/// `POST /v1/ota/keys` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddOtaKey {
    /// A name for operators.
    pub name: String,
    /// The mastering public key, PEM (`fw keygen --out`).
    pub public_key_pem: String,
}

/// A release as the server lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    /// Server id (from the image's digest).
    pub id: String,
    /// MCUboot version.
    pub version: String,
    /// Signed security counter.
    pub security_counter: u64,
    /// Signed product class (UUID).
    pub product_class: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the uploaded file, hex.
    pub sha256: String,
    /// MCUboot image hash (over the plaintext), hex.
    pub image_hash: String,
    /// `none`, `ecies-x25519` or `ecies-p256`: how the content key travels.
    pub wrap: String,
    /// Key hash of the mastering key that signed it, hex.
    pub signer: String,
    /// Free text.
    pub note: String,
    /// Unix seconds.
    pub uploaded_at: i64,
    /// The operator token that uploaded it.
    pub uploaded_by: String,
}

/// Where a rollout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutState {
    /// Offering the release to devices whose bucket is below the percentage.
    Active,
    /// No new offers; downloads already offered go on.
    Paused,
    /// Stopped: no offers, no downloads.
    Aborted,
    /// A later rollout for the same group replaced it.
    Superseded,
}

impl RolloutState {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Active => "active",
            RolloutState::Paused => "paused",
            RolloutState::Aborted => "aborted",
            RolloutState::Superseded => "superseded",
        }
    }
}

impl fmt::Display for RolloutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RolloutState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        [RolloutState::Active, RolloutState::Paused, RolloutState::Aborted, RolloutState::Superseded]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Error::Malformed { what: "rollout state", reason: format!("unknown state {s:?}") })
    }
}

/// `POST /v1/ota/rollouts` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRollout {
    /// The release.
    pub release_id: String,
    /// The group: an enrollment id (devices admitted by it).
    pub group: String,
    /// First stage, 0..=100 percent of the group's devices.
    pub percentage: u8,
}

/// `POST /v1/ota/rollouts/{id}/stage` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetStage {
    /// 0..=100.
    pub percentage: u8,
}

/// A rollout as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutInfo {
    pub id: String,
    pub release_id: String,
    pub version: String,
    pub group: String,
    pub percentage: u8,
    pub state: RolloutState,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
}

/// One device's progress with one release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceOtaInfo {
    pub device_id: String,
    pub release_id: String,
    pub state: OtaState,
    pub detail: String,
    pub offered_at: i64,
    pub updated_at: i64,
}

/// `GET /v1/ota/rollouts/{id}` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutStatus {
    pub rollout: RolloutInfo,
    /// Devices per state (only states with devices).
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Every device that got an offer of the release, by device id.
    pub devices: Vec<DeviceOtaInfo>,
}

/// HTTP paths.
pub mod paths {
    /// `POST` an [`super::UpdateCheck`] (device session).
    pub fn check(device_id: &str) -> String {
        format!("/v1/devices/{device_id}/ota/check")
    }
    /// `POST` an [`super::OtaReport`] (device session).
    pub fn report(device_id: &str) -> String {
        format!("/v1/devices/{device_id}/ota/report")
    }
    /// `GET` this device's copy of a release (device session, `Range` supported).
    pub fn image(device_id: &str, release_id: &str) -> String {
        format!("/v1/devices/{device_id}/ota/releases/{release_id}/image")
    }
    /// `GET` the list, `POST` an [`super::AddOtaKey`] (operator).
    pub const KEYS: &str = "/v1/ota/keys";
    /// `GET` the server's firmware-decryption public key, PEM: encrypt releases to it.
    pub const ENCRYPTION_KEY: &str = "/v1/ota/encryption-key";
    /// `GET` the list, `POST` an image body (operator).
    pub const RELEASES: &str = "/v1/ota/releases";
    /// `GET` the devices' progress with a release (operator).
    pub fn release_devices(release_id: &str) -> String {
        format!("/v1/ota/releases/{release_id}/devices")
    }
    /// `GET` the list, `POST` a [`super::StartRollout`] (operator).
    pub const ROLLOUTS: &str = "/v1/ota/rollouts";
    /// `GET` a [`super::RolloutStatus`] (operator).
    pub fn rollout(id: &str) -> String {
        format!("/v1/ota/rollouts/{id}")
    }
    /// `POST` `stage` (with a [`super::SetStage`]), `pause`, `resume` or `abort` (operator).
    pub fn rollout_action(id: &str, action: &str) -> String {
        format!("/v1/ota/rollouts/{id}/{action}")
    }
}
