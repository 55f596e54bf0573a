//! Secure boot over a [`Flash`] trait: a verified stage chain, A/B slots with trial boots and
//! MCUboot-compatible trailers, anti-rollback in a secure element, the signature table of
//! seed 004, and signed recovery from removable media. Pure: the caller hands in a flash, a
//! [`MonotonicCounter`](ironclad_se::MonotonicCounter) and image readers; nothing here opens a
//! file, a socket or reads a clock.
//!
//! - [`Flash`]: NOR semantics (sector erase, aligned writes of erased bytes, erased value 0xFF
//!   or 0x00); [`SimFlash`] is the in-memory flash with power-cut injection ([`Tear`]).
//! - [`BootEngine`]: [`reset`](BootEngine::reset) (the bootloader),
//!   [`install`](BootEngine::install), [`confirm`](BootEngine::confirm),
//!   [`revert`](BootEngine::revert), [`recover`](BootEngine::recover),
//!   [`state`](BootEngine::state). Slot selection without swapping (direct-xip style, see
//!   `slots.rs` for why), every state derived from flash after each reset.
//! - [`Chain`]: ROM → bootloader → kernel → rootfs, each stage verified with the keys the
//!   previous one trusts ([`StageTrust`], [`NEXT_STAGE_KEYS`]).
//! - [`AntiRollback`]: the image's security counter against the secure element's counter,
//!   advanced only after confirmation.
//! - [`BootSim`]: a simulated device driven step by step, serialisable.
//!
//! Power-loss safety is proven by the tests, which cut power at every flash operation of an
//! update, a trial, a confirm, a revert and a recovery, with three tear models, on two
//! geometries.
#![forbid(unsafe_code)]

mod chain;
mod error;
mod flash;
mod recovery;
mod rollback;
mod sim;
mod simflash;
mod slots;
mod state;
mod table;
mod trailer;

pub use chain::{Chain, NEXT_STAGE_KEYS, Stage, StageImage, StageTrust, declared_keys, next_stage_keys_tlv};
pub use error::{Error, Result};
pub use flash::{Flash, Geometry, Region};
pub use rollback::{AntiRollback, DEFAULT_COUNTER};
pub use sim::{BootSim, Event, SimConfig, SimSnapshot, SimState, Step};
pub use simflash::{SimFlash, Tear};
pub use slots::{BootConfig, BootEngine, Layout};
pub use state::{
    BootMode, BootReport, Booted, CounterAdvance, DeviceState, ImageSummary, InstallReport, Refusal, Slot,
    SlotInfo, SlotRefusal, SlotState, StageReport,
};
