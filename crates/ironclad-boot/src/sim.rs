//! [`BootSim`]: a simulated device driven step by step — reset, install, confirm, revert,
//! recover, power cuts, bit flips — with a serialisable state and event log, for
//! `ironclad boot sim` and the demo's firmware stage.
//!
//! ```
//! # use ironclad_boot::{BootSim, SimConfig};
//! # use ironclad_image::{SignOptions, TrustAnchors, sign, hazmat::SoftwareSigner, ImageSigner};
//! # use ironclad_se::KeyAlgorithm;
//! let key = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
//! let release = |version: &str, counter| {
//!     let mut o = SignOptions::new(version.parse().unwrap());
//!     o.security_counter = Some(counter);
//!     let mut image = Vec::new();
//!     sign(&key, &o, &[0x5a; 600][..], 600, &mut image).unwrap();
//!     image
//! };
//! let trust = TrustAnchors::with_key(key.public_key().clone()).unwrap();
//! let mut device = BootSim::new(SimConfig::small(), trust).unwrap();
//! assert!(device.reset().is_err()); // factory-fresh: nothing to boot
//! device.recover(&release("1.0.0", 1)).unwrap(); // provisioning through the recovery path
//! device.install(&release("1.1.0", 2)).unwrap();
//! let trial = device.reset().unwrap();
//! assert_eq!(trial.booted.version.to_string(), "1.1.0+0");
//! device.confirm().unwrap();
//! assert_eq!(device.state().unwrap().device.security_counter, 2);
//! assert!(device.install(&release("1.0.1", 1)).is_err()); // downgrade
//! ```

use std::io::Cursor;
use std::sync::Arc;

use ironclad_image::TrustAnchors;
use ironclad_se::{MemorySe, MonotonicCounter};
use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::flash::{Flash, Geometry};
use crate::rollback::AntiRollback;
use crate::simflash::{SimFlash, Tear};
use crate::slots::{BootConfig, BootEngine, Layout};
use crate::state::{BootReport, CounterAdvance, DeviceState, InstallReport, Slot};

/// A simulated device's flash and slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimConfig {
    /// The flash geometry; the capacity is derived (two table sectors and two slots).
    pub geometry: Geometry,
    /// Sectors per slot.
    pub slot_sectors: u32,
    /// Trial attempts.
    pub max_attempts: u32,
}

impl SimConfig {
    /// A flash of `sector_size` sectors, `write_align`-byte writes, `erased_value`, with two
    /// slots of `slot_sectors` sectors after the two table sectors.
    pub fn new(sector_size: u32, write_align: u32, erased_value: u8, slot_sectors: u32) -> Result<Self> {
        let sectors = slot_sectors
            .checked_mul(2)
            .and_then(|n| n.checked_add(2))
            .ok_or(Error::Config { field: "slot_sectors", reason: "too many sectors".into() })?;
        let geometry = Geometry::new(sector_size, write_align, erased_value, sectors)?;
        Ok(Self { geometry, slot_sectors, max_attempts: BootConfig::DEFAULT_MAX_ATTEMPTS })
    }

    /// An MCU-like flash: 4 KiB sectors, 8-byte writes, erased 0xFF, 64 KiB slots.
    pub fn mcu() -> Self {
        Self::fixed(4096, 8, 0xff, 16)
    }

    /// A small flash for quick runs: 1 KiB sectors, 1-byte writes, erased 0x00, 8 KiB slots.
    pub fn small() -> Self {
        Self::fixed(1024, 1, 0x00, 8)
    }

    fn fixed(sector_size: u32, write_align: u32, erased_value: u8, slot_sectors: u32) -> Self {
        let geometry = Geometry {
            sector_size,
            write_align,
            erased_value,
            capacity: sector_size * (2 + 2 * slot_sectors),
        };
        Self { geometry, slot_sectors, max_attempts: BootConfig::DEFAULT_MAX_ATTEMPTS }
    }

    /// The layout: table at 0, then slot A and slot B.
    pub fn layout(&self) -> Result<Layout> {
        Layout::contiguous(&self.geometry, 0, self.slot_sectors)
    }
}

/// Which driver step an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// `reset`.
    Reset,
    /// `install`.
    Install,
    /// `confirm`.
    Confirm,
    /// `revert`.
    Revert,
    /// `recover`.
    Recover,
}

/// What happened at a step.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A reset booted an image.
    Booted(BootReport),
    /// An update was installed.
    Installed(InstallReport),
    /// A recovery image was written.
    Recovered(InstallReport),
    /// The running image was confirmed.
    Confirmed {
        /// The anti-rollback counter change, if any.
        counter_advanced: Option<CounterAdvance>,
    },
    /// A slot was reverted.
    Reverted {
        /// The slot.
        slot: Slot,
    },
    /// A step failed (a refused image, nothing to boot...).
    Refused {
        /// The step.
        step: Step,
        /// Why.
        error: String,
    },
    /// The power failed during a step.
    PowerCut {
        /// The step.
        step: Step,
        /// Flash operations issued so far.
        ops: u64,
    },
    /// A power cut was armed.
    CutArmed {
        /// Operations that will complete first.
        after: u64,
        /// The interrupted operation's partial effect.
        tear: Tear,
    },
    /// A bit was flipped in a slot.
    BitFlipped {
        /// The slot.
        slot: Slot,
        /// Offset in the slot.
        offset: u32,
    },
}

/// The simulator's state: configuration, flash counters and the device.
#[derive(Clone, Debug, Serialize)]
pub struct SimState {
    /// The configuration.
    pub config: SimConfig,
    /// The layout.
    pub layout: Layout,
    /// Flash erase and write operations so far.
    pub flash_ops: u64,
    /// True while the power is off.
    pub power_cut: bool,
    /// Slots, table, counter and the running image.
    pub device: DeviceState,
}

/// Everything needed to resume a simulated device later (the keys are supplied again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSnapshot {
    /// The configuration.
    pub config: SimConfig,
    /// The flash contents.
    pub flash: SimFlash,
    /// The secure element's anti-rollback counter.
    pub counter: u64,
}

/// A simulated device: [`BootEngine`] over [`SimFlash`] with an in-memory secure element.
#[derive(Debug)]
pub struct BootSim {
    engine: BootEngine<SimFlash>,
    config: SimConfig,
    events: Vec<Event>,
}

impl BootSim {
    /// A factory-fresh device (erased flash, counter 0) whose application slots trust `trust`.
    pub fn new(config: SimConfig, trust: TrustAnchors) -> Result<Self> {
        let flash = SimFlash::new(config.geometry)?;
        Self::assemble(config, flash, 0, trust)
    }

    /// Resumes a saved device.
    pub fn restore(snapshot: SimSnapshot, trust: TrustAnchors) -> Result<Self> {
        if snapshot.flash.geometry() != snapshot.config.geometry {
            return Err(Error::Config {
                field: "snapshot",
                reason: "flash and config geometries differ".into(),
            });
        }
        Self::assemble(snapshot.config, snapshot.flash, snapshot.counter, trust)
    }

    fn assemble(config: SimConfig, flash: SimFlash, counter: u64, trust: TrustAnchors) -> Result<Self> {
        let se: Arc<dyn MonotonicCounter> = Arc::new(MemorySe::new());
        let rollback = AntiRollback::with_default_label(se.clone())?;
        if counter > 0 {
            se.counter_advance(rollback.label(), counter)?;
        }
        let mut boot = BootConfig::new(config.layout()?, Chain::slots_only(trust));
        boot.max_attempts = config.max_attempts;
        let engine = BootEngine::new(flash, boot, rollback)?;
        Ok(Self { engine, config, events: Vec::new() })
    }

    /// The state to save.
    pub fn snapshot(&self) -> Result<SimSnapshot> {
        let mut flash = self.engine.flash().clone();
        flash.power_on();
        flash.disarm();
        Ok(SimSnapshot { config: self.config, flash, counter: self.engine.rollback().device_counter()? })
    }

    /// The engine (for anything the driver does not wrap).
    pub fn engine(&mut self) -> &mut BootEngine<SimFlash> {
        &mut self.engine
    }

    /// Events so far, oldest first.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    fn log<T>(&mut self, step: Step, r: Result<T>, ok: impl FnOnce(&T) -> Event) -> Result<T> {
        let event = match &r {
            Ok(v) => ok(v),
            Err(Error::PowerCut) => Event::PowerCut { step, ops: self.engine.flash().ops() },
            Err(e) => Event::Refused { step, error: e.to_string() },
        };
        self.events.push(event);
        r
    }

    /// Power on (after a cut) and run the bootloader.
    pub fn reset(&mut self) -> Result<BootReport> {
        self.engine.flash_mut().power_on();
        let r = self.engine.reset();
        self.log(Step::Reset, r, |b| Event::Booted(b.clone()))
    }

    /// Installs an update image (as bytes) into the inactive slot.
    pub fn install(&mut self, image: &[u8]) -> Result<InstallReport> {
        let r = self.engine.install(&mut Cursor::new(image));
        self.log(Step::Install, r, |i| Event::Installed(i.clone()))
    }

    /// Confirms the running trial image.
    pub fn confirm(&mut self) -> Result<Option<CounterAdvance>> {
        let r = self.engine.confirm();
        self.log(Step::Confirm, r, |c| Event::Confirmed { counter_advanced: *c })
    }

    /// Reverts the running trial (or a pending update).
    pub fn revert(&mut self) -> Result<Slot> {
        let r = self.engine.revert();
        self.log(Step::Revert, r, |s| Event::Reverted { slot: *s })
    }

    /// Recovers from a removable-media image, then resets into it.
    pub fn recover(&mut self, image: &[u8]) -> Result<BootReport> {
        self.engine.flash_mut().power_on();
        let r = self.engine.recover(&mut Cursor::new(image));
        self.log(Step::Recover, r, |i| Event::Recovered(i.clone()))?;
        self.reset()
    }

    /// Arms a power cut: `after` more flash operations complete, the next one is torn.
    pub fn cut_power_after(&mut self, after: u64, tear: Tear) {
        self.engine.flash_mut().cut_power_after(after, tear);
        self.events.push(Event::CutArmed { after, tear });
    }

    /// Flips one bit of a slot (bit rot or tampering), outside the flash rules.
    pub fn flip_bit(&mut self, slot: Slot, offset: u32, bit: u8) -> Result<()> {
        let region = self.engine.config().layout.slot(slot);
        if offset >= region.size {
            return Err(Error::OutOfBounds { offset: offset.into(), len: 1, capacity: region.size });
        }
        self.engine.flash_mut().flip_bit(region.offset + offset, bit);
        self.events.push(Event::BitFlipped { slot, offset });
        Ok(())
    }

    /// The state now (reads the flash; fails while the power is off).
    pub fn state(&mut self) -> Result<SimState> {
        let device = self.engine.state()?;
        Ok(SimState {
            config: self.config,
            layout: self.engine.config().layout,
            flash_ops: self.engine.flash().ops(),
            power_cut: self.engine.flash().is_cut(),
            device,
        })
    }
}
