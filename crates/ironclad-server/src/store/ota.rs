//! What OTA keeps: the firmware-verification (mastering) public keys releases are checked
//! against, releases (their metadata; the image itself is a file in the releases directory),
//! rollouts to groups in stages, and each device's copy of a release (its re-wrapped TLV
//! area, kept so that every download of it is byte-identical and resumable) with the state the
//! device reported. Both backends implement [`OtaStore`]; the shared suite runs against each.

use ironclad_proto::ota::{OtaState, RolloutState};

use super::StoreFuture;

/// A registered firmware-verification public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtaKey {
    /// SHA-256 of the SubjectPublicKeyInfo (MCUboot's KEYHASH).
    pub key_hash: [u8; 32],
    /// The operator's name for it.
    pub name: String,
    /// SubjectPublicKeyInfo DER.
    pub spki_der: Vec<u8>,
    /// `ecdsa-p256` or `ed25519`.
    pub algorithm: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The operator token that registered it.
    pub created_by: String,
}

/// A verified release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// `r` + the first 16 hex digits of the file's SHA-256.
    pub id: String,
    /// MCUboot version, `major.minor.revision+build`.
    pub version: String,
    /// Signed security counter.
    pub security_counter: u64,
    /// Signed product class (UUID text).
    pub product_class: String,
    /// File size in bytes.
    pub size: u64,
    /// SHA-256 of the file.
    pub sha256: [u8; 32],
    /// The MCUboot image hash (over the plaintext).
    pub image_hash: [u8; 32],
    /// Length of the signed region (header, payload, protected TLVs): what every device's
    /// copy shares.
    pub signed_len: u64,
    /// `none`, `ecies-x25519` or `ecies-p256`.
    pub wrap: String,
    /// Key hash of the mastering key whose signature verified.
    pub signer: [u8; 32],
    /// The vault key (firmware-decryption usage) that unwraps the content key, for encrypted
    /// releases.
    pub decryption_key: Option<String>,
    /// File name in the releases directory.
    pub file_name: String,
    /// Free text.
    pub note: String,
    /// Unix seconds.
    pub uploaded_at: i64,
    /// The operator token.
    pub uploaded_by: String,
}

/// A rollout of a release to a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    /// Random, 32 hex digits.
    pub id: String,
    pub release_id: String,
    /// The enrollment whose devices it targets.
    pub group_id: String,
    /// 0..=100: devices whose bucket is below it get offers.
    pub percentage: u8,
    pub state: RolloutState,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// The operator token.
    pub created_by: String,
}

/// One device's copy of a release and its progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRelease {
    pub device_id: String,
    pub release_id: String,
    /// The rollout that offered it.
    pub rollout_id: String,
    pub state: OtaState,
    /// Why it failed, as the device said (bounded).
    pub detail: String,
    /// The device's firmware-decryption key the tail was wrapped to (SPKI DER).
    pub recipient: Vec<u8>,
    /// The unprotected TLV area of this device's copy (content key wrapped to `recipient`);
    /// empty for an unencrypted release, whose file is served as is.
    pub tail: Vec<u8>,
    /// Bytes of this device's copy.
    pub image_size: u64,
    /// SHA-256 of this device's copy (the manifest's digest and the download's entity tag).
    pub image_sha256: [u8; 32],
    /// Unix seconds.
    pub offered_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A change to a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutChange {
    /// A new percentage (state unchanged); refused unless active or paused.
    Stage(u8),
    /// Active → paused.
    Pause,
    /// Paused → active.
    Resume,
    /// Active or paused → aborted.
    Abort,
}

impl RolloutChange {
    /// The states the change applies to, and the state it leaves.
    pub fn transition(self, from: RolloutState) -> Option<RolloutState> {
        use RolloutState::*;
        match (self, from) {
            (RolloutChange::Stage(_), s @ (Active | Paused)) => Some(s),
            (RolloutChange::Pause, Active | Paused) => Some(Paused),
            (RolloutChange::Resume, Active | Paused) => Some(Active),
            (RolloutChange::Abort, Active | Paused) => Some(Aborted),
            _ => None,
        }
    }
}

/// What [`OtaStore::update_rollout`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutUpdate {
    /// Applied; the rollout as it now is.
    Updated(Rollout),
    /// No such rollout.
    NotFound,
    /// The rollout is in a state the change does not apply to.
    WrongState(RolloutState),
}

/// Storage of OTA. Each method is atomic.
pub trait OtaStore: Send + Sync {
    /// Registers a key; [`Error::Conflict`](crate::Error::Conflict) when its hash is known.
    fn insert_ota_key<'a>(&'a self, key: &'a OtaKey) -> StoreFuture<'a, ()>;
    /// Every registered key, oldest first.
    fn ota_keys(&self) -> StoreFuture<'_, Vec<OtaKey>>;

    /// Adds a release; [`Error::Conflict`](crate::Error::Conflict) when its id exists.
    fn insert_release<'a>(&'a self, release: &'a Release) -> StoreFuture<'a, ()>;
    /// One release.
    fn release<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Release>>;
    /// Every release, oldest first.
    fn releases(&self) -> StoreFuture<'_, Vec<Release>>;

    /// The group's current rollout: its newest one that was not aborted (possibly superseded
    /// by an aborted one), whose release a new rollout must not go below.
    fn current_rollout<'a>(&'a self, group_id: &'a str) -> StoreFuture<'a, Option<Rollout>>;
    /// Starts a rollout if the group's current rollout is still `replaces` (compare and swap:
    /// the caller checked the release against it); the group's active and paused rollouts
    /// become superseded. [`Error::Conflict`](crate::Error::Conflict) when another rollout
    /// became current meanwhile.
    fn start_rollout<'a>(&'a self, rollout: &'a Rollout, replaces: Option<&'a str>) -> StoreFuture<'a, ()>;
    /// One rollout.
    fn rollout<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Rollout>>;
    /// Every rollout, newest first.
    fn rollouts(&self) -> StoreFuture<'_, Vec<Rollout>>;
    /// The group's rollout that is active or paused, if any (at most one).
    fn live_rollout<'a>(&'a self, group_id: &'a str) -> StoreFuture<'a, Option<Rollout>>;
    /// Applies a change if the rollout's state allows it.
    fn update_rollout<'a>(
        &'a self,
        id: &'a str,
        change: RolloutChange,
        at: i64,
    ) -> StoreFuture<'a, RolloutUpdate>;

    /// A device's copy of a release.
    fn device_release<'a>(
        &'a self,
        device_id: &'a str,
        release_id: &'a str,
    ) -> StoreFuture<'a, Option<DeviceRelease>>;
    /// Records an offer. When the device already has a copy wrapped to the same key, that one
    /// is kept and returned (its bytes must not change under a resumed download); otherwise
    /// `offer` replaces it. Returns the row in force.
    fn put_offer<'a>(&'a self, offer: &'a DeviceRelease) -> StoreFuture<'a, DeviceRelease>;
    /// Records a device's report. False when the release was never offered to the device.
    fn set_device_state<'a>(
        &'a self,
        device_id: &'a str,
        release_id: &'a str,
        state: OtaState,
        detail: &'a str,
        at: i64,
    ) -> StoreFuture<'a, bool>;
    /// Every device's copy of a release, by device id.
    fn release_devices<'a>(&'a self, release_id: &'a str) -> StoreFuture<'a, Vec<DeviceRelease>>;
}
