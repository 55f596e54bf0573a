//! The one error type of this crate.

use crate::state::{Refusal, Slot, SlotRefusal};

/// Everything the boot engine, the flash layer and the simulator can refuse or fail with.
///
/// Refusals of *slot contents* found at reset (an empty slot, a bad signature, a downgrade) are
/// not errors: they are reported as [`Refusal`]s, and become [`Error::NoBootableImage`] only when
/// no slot is left to boot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The power failed during (or before) this flash operation; the device is off until it is
    /// reset. Only the simulated flash produces it, as injected.
    #[error("power cut")]
    PowerCut,
    /// An access beyond the end of the flash (or a sector number past the last sector).
    #[error("flash access at {offset:#x}+{len} is outside the {capacity:#x}-byte flash")]
    OutOfBounds {
        /// Start of the access.
        offset: u64,
        /// Its length (1 for a sector number).
        len: u64,
        /// The flash capacity.
        capacity: u32,
    },
    /// A write whose offset or length is not a multiple of the write alignment.
    #[error("flash write at {offset:#x}+{len} is not aligned to {align} bytes")]
    Misaligned {
        /// Start of the write.
        offset: u32,
        /// Its length.
        len: usize,
        /// The flash's write alignment.
        align: u32,
    },
    /// A write over bytes that are not erased (NOR flash programs only erased bytes).
    #[error("flash write over non-erased byte at {offset:#x}")]
    NotErased {
        /// The first non-erased byte.
        offset: u32,
    },
    /// A flash driver failure other than a power cut.
    #[error("flash failure: {0}")]
    Flash(&'static str),
    /// A geometry, layout, chain or engine setting is unusable.
    #[error("invalid configuration `{field}`: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The candidate image was refused by the image codec (malformed, unknown key, bad hash or
    /// signature, too large for the slot...). Nothing was written.
    #[error("image refused: {0}")]
    Image(#[from] ironclad_image::Error),
    /// The image and the slot trailer do not fit the slot.
    #[error("image and trailer need {size} bytes but the slot has {max}")]
    ImageTooLarge {
        /// Bytes needed (image plus trailer).
        size: u64,
        /// Slot size.
        max: u64,
    },
    /// The image carries no security counter (SEC_CNT TLV), which anti-rollback requires.
    #[error("the image has no security counter; anti-rollback requires one")]
    MissingSecurityCounter,
    /// The image's security counter is below the device's anti-rollback counter.
    #[error("downgrade refused: image security counter {image} is below the device counter {device}")]
    Downgrade {
        /// The image's signed security counter.
        image: u32,
        /// The device's monotonic counter (secure element).
        device: u64,
    },
    /// The image is encrypted and the engine has no decryption key.
    #[error("the image is encrypted and this device has no firmware decryption key")]
    NoDecryptionKey,
    /// What was written to the slot does not read back as the verified image.
    #[error("slot {slot} does not read back as the image just written")]
    Readback {
        /// The slot written.
        slot: Slot,
    },
    /// The operation needs a booted image: reset first.
    #[error("no image is booted; reset the device first")]
    NotBooted,
    /// An update cannot be installed while the running image is unconfirmed (on trial, or
    /// reverted and waiting for a reset): the only other slot holds the confirmed fallback.
    #[error("slot {slot} runs an unconfirmed image: confirm it, or reset after a revert, before installing")]
    TrialPending {
        /// The slot on trial.
        slot: Slot,
    },
    /// `confirm` on an image that was reverted.
    #[error("slot {slot} was reverted and cannot be confirmed")]
    Reverted {
        /// The slot.
        slot: Slot,
    },
    /// `revert` with no trial running and no pending update.
    #[error("nothing to revert: no trial is running and no update is pending")]
    NothingToRevert,
    /// A stage of the boot chain before the A/B slots failed verification: the chain halts.
    #[error("boot stage `{stage}` refused: {refusal}")]
    Stage {
        /// The stage name.
        stage: String,
        /// Why.
        refusal: Refusal,
    },
    /// No slot holds a bootable image; each slot's reason is listed. Recovery is the way out.
    #[error("no bootable image ({})", describe(refused))]
    NoBootableImage {
        /// Why each slot was refused, in the order they were tried.
        refused: Vec<SlotRefusal>,
    },
    /// The secure element (anti-rollback counter) failed.
    #[error("secure element: {0}")]
    SecureElement(#[from] ironclad_se::Error),
}

fn describe(refused: &[SlotRefusal]) -> String {
    let parts: Vec<String> = refused.iter().map(|r| format!("slot {}: {}", r.slot, r.refusal)).collect();
    parts.join("; ")
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
