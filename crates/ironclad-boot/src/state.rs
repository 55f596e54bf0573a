//! What the engine reports: slots and their states, why a slot was refused, what booted. All
//! serialisable (for `ironclad boot sim` and the demo), digests as hex.

use std::fmt;

use ironclad_image::Version;
use serde::{Deserialize, Serialize};

use crate::flash::Region;

/// One of the two A/B slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Slot {
    /// The first slot.
    A,
    /// The second slot.
    B,
}

impl Slot {
    /// Both slots, A first.
    pub const BOTH: [Slot; 2] = [Slot::A, Slot::B];

    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::A => "A",
            Slot::B => "B",
        })
    }
}

/// A slot's state as its trailer says (read from flash at every reset; nothing else is kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SlotState {
    /// No valid trailer magic: never installed, erased, or an install was interrupted.
    Empty,
    /// Installed for a trial boot that has not started (magic, image_ok unset, no attempt).
    Pending,
    /// On trial: booted `attempts_used` times without being confirmed.
    Trial {
        /// Trial boots started so far.
        attempts_used: u32,
    },
    /// Confirmed (image_ok set): permanent.
    Confirmed,
    /// The application reverted the trial (copy_done set while image_ok is unset; MCUboot's
    /// direct-xip revert reads the same bits as "tried and not confirmed").
    Rejected,
    /// Every trial attempt is used: the next reset will not boot it (the last attempt may be
    /// running now, and can still confirm).
    Exhausted {
        /// Attempts used.
        attempts: u32,
    },
}

/// Why a slot (or a stage) was not booted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// No valid trailer: nothing installed, or the install was interrupted.
    Empty,
    /// The trial was reverted.
    Rejected,
    /// The trial ran out of attempts unconfirmed.
    Exhausted {
        /// Attempts used.
        attempts: u32,
    },
    /// The image does not parse or verify (hash, signature, unknown key): the codec's message.
    Invalid {
        /// What the image codec reported.
        error: String,
    },
    /// The signature table has no entry for this slot: it was not written by an install.
    NotInTable,
    /// The image verifies but is not the one the signature table records for this slot.
    DigestMismatch,
    /// The image's security counter is below the device's anti-rollback counter.
    Downgrade {
        /// The image's counter.
        image: u32,
        /// The device counter.
        device: u64,
    },
    /// The image has no security counter.
    MissingSecurityCounter,
    /// A later stage of the chain failed when booted from this slot.
    Stage {
        /// The stage.
        stage: String,
        /// Why.
        refusal: Box<Refusal>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Empty => f.write_str("empty (no valid trailer)"),
            Refusal::Rejected => f.write_str("trial reverted"),
            Refusal::Exhausted { attempts } => write!(f, "trial unconfirmed after {attempts} attempts"),
            Refusal::Invalid { error } => write!(f, "invalid image: {error}"),
            Refusal::NotInTable => f.write_str("not in the signature table"),
            Refusal::DigestMismatch => f.write_str("digest differs from the signature table"),
            Refusal::Downgrade { image, device } => {
                write!(f, "downgrade: security counter {image} < device {device}")
            }
            Refusal::MissingSecurityCounter => f.write_str("no security counter"),
            Refusal::Stage { stage, refusal } => write!(f, "stage `{stage}`: {refusal}"),
        }
    }
}

/// A refused slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlotRefusal {
    /// The slot.
    pub slot: Slot,
    /// Why.
    pub refusal: Refusal,
}

/// How the running image was booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum BootMode {
    /// A confirmed image.
    Confirmed,
    /// A trial boot: attempt `attempt` of `of`.
    Trial {
        /// This attempt (1-based).
        attempt: u32,
        /// Attempts allowed.
        of: u32,
    },
    /// A trial the application has reverted; the next reset boots the other slot.
    Reverted,
}

/// A verified stage of the boot chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageReport {
    /// The stage name.
    pub name: String,
    /// The image version.
    pub version: Version,
    /// The image's security counter, if any.
    pub security_counter: Option<u32>,
    /// The verified SHA-256.
    #[serde(with = "hex32")]
    pub digest: [u8; 32],
}

/// The running image, as the last reset booted it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Booted {
    /// Its slot.
    pub slot: Slot,
    /// Confirmed, on trial, or reverted.
    pub mode: BootMode,
    /// Its version.
    pub version: Version,
    /// Its security counter.
    pub security_counter: u32,
    /// Its verified digest (equal to the signature table's entry).
    #[serde(with = "hex32")]
    pub digest: [u8; 32],
    /// The install generation recorded in the signature table.
    pub generation: u32,
}

/// A counter change in the secure element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CounterAdvance {
    /// Before.
    pub from: u64,
    /// After.
    pub to: u64,
}

/// What a reset did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BootReport {
    /// The image now running.
    pub booted: Booted,
    /// The verified chain, first stage first (the slot image included, under its stage name).
    pub stages: Vec<StageReport>,
    /// Slots tried first and refused, with why.
    pub refused: Vec<SlotRefusal>,
    /// The anti-rollback counter advanced because a confirmed image with a higher security
    /// counter booted.
    pub counter_advanced: Option<CounterAdvance>,
}

/// What an install or a recovery wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstallReport {
    /// The slot written.
    pub slot: Slot,
    /// The new slot state (`Pending`, or `Confirmed` for recovery).
    pub state: SlotState,
    /// The image version.
    pub version: Version,
    /// Its security counter.
    pub security_counter: u32,
    /// Its verified digest (now in the signature table).
    #[serde(with = "hex32")]
    pub digest: [u8; 32],
    /// The install generation.
    pub generation: u32,
    /// True when the source was encrypted and was stored decrypted.
    pub decrypted: bool,
}

/// A slot's image as its header and TLVs say, **unverified** (for display).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    /// Version.
    pub version: Version,
    /// Security counter.
    pub security_counter: Option<u32>,
    /// The hash recorded in the image (not recomputed).
    #[serde(with = "hex_opt32")]
    pub recorded_digest: Option<[u8; 32]>,
    /// Image length (header, payload, TLVs).
    pub len: u64,
}

/// One slot as flash says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlotInfo {
    /// The slot.
    pub slot: Slot,
    /// Where it is.
    pub region: Region,
    /// Its trailer state.
    pub state: SlotState,
    /// swap_info byte (type in bits 0-3: 2 test, 3 permanent), if written.
    pub swap_info: Option<u8>,
    /// Its signature-table entry's generation, if any.
    pub generation: Option<u32>,
    /// Its signature-table entry's digest, if any.
    #[serde(with = "hex_opt32")]
    pub table_digest: Option<[u8; 32]>,
    /// The image header, if one parses.
    pub image: Option<ImageSummary>,
}

/// The whole device as flash and the secure element say, plus what is running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceState {
    /// Slot A, then slot B.
    pub slots: Vec<SlotInfo>,
    /// The running image, if the last reset booted one (and no power cut since).
    pub booted: Option<Booted>,
    /// The anti-rollback counter.
    pub security_counter: u64,
    /// The signature table's record sequence number (None when no valid record exists).
    pub table_seq: Option<u32>,
}

/// Serde for `[u8; 32]` as hex.
pub(crate) mod hex32 {
    use serde::Serializer;

    pub(crate) fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

/// Serde for `Option<[u8; 32]>` as hex or null.
pub(crate) mod hex_opt32 {
    use serde::Serializer;

    pub(crate) fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&hex::encode(v)),
            None => s.serialize_none(),
        }
    }
}

/// Serde for `Vec<u8>` as a hex string.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}
