//! The A/B engine: slot selection at reset, install into the inactive slot, trial boot with an
//! attempt counter, confirm, revert.
//!
//! **Slot selection, no swap.** The engine boots whichever slot it selects in place (MCUboot's
//! direct-xip with revert, RAUC's and Mender's A/B) instead of copying the new image into a
//! primary slot (MCUboot's swap modes). Why:
//! - an update never touches the running slot, so power loss during an install can only spoil
//!   the inactive slot, and there is no swap-status journal to resume (MCUboot's hardest code,
//!   and the home of its power-cut bugs: mcuboot#1966, #2282);
//! - half the flash writes of a swap, and no scratch or extra sector;
//! - images are stored decrypted (direct-xip runs in place, so the slot holds plaintext:
//!   firmware.md §1 "direct-xip: no encryption"); an encrypted update is decrypted while it is
//!   verified and written, and encryption protects it in transit and on removable media.
//!
//! **State lives in flash.** After every reset both slots' states are derived from the flash
//! alone: each slot's MCUboot trailer (magic, image_ok, copy_done, swap_info, and trial
//! attempts in the otherwise unused swap-status records; see `trailer.rs`) and the signature
//! table (expected digest and install generation per slot; see `table.rs`). The only other
//! state is the secure element's anti-rollback counter.
//!
//! **Selection.** Slots are tried newest install first. A slot boots when its trailer says
//! pending, on trial with attempts left, or confirmed; its image verifies (hash and signature,
//! recomputed at every reset) with the slot stage's keys; its digest equals the signature
//! table's entry; its security counter is not below the device counter; and the chain's later
//! stages verify from it. A pending or trial slot consumes one attempt (one write) before it
//! boots; after `max_attempts` unconfirmed boots it is refused and the other slot boots.

use std::io::{Read, Seek};

use ironclad_image::{Image, KeyAgreement, Limits, VerifiedImage};
use serde::{Deserialize, Serialize};

use crate::chain::{self, Chain, verify_region};
use crate::error::{Error, Result};
use crate::flash::{self, Flash, Geometry, Region, RegionReader, RegionWriter};
use crate::rollback::AntiRollback;
use crate::state::{
    BootMode, BootReport, Booted, CounterAdvance, DeviceState, ImageSummary, InstallReport, Refusal, Slot,
    SlotInfo, SlotRefusal, SlotState, StageReport,
};
use crate::table::{self, Entry, Table};
use crate::trailer::{self, Field, Flag, Trailer};

/// Where the engine's regions are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The signature table: two sectors.
    pub table: Region,
    /// Slot A, slot B.
    pub slots: [Region; 2],
}

impl Layout {
    /// From `offset`: the two table sectors, then slot A and slot B of `slot_sectors` sectors.
    pub fn contiguous(geometry: &Geometry, offset: u32, slot_sectors: u32) -> Result<Self> {
        let s = geometry.sector_size;
        let slot = s
            .checked_mul(slot_sectors)
            .ok_or_else(|| Error::Config { field: "layout", reason: "slot size overflows 32 bits".into() })?;
        let table = Region::new(offset, 2 * s);
        let a = Region::new(table.end(), slot);
        let b = Region::new(a.end(), slot);
        let layout = Self { table, slots: [a, b] };
        for r in [table, a, b] {
            r.check(geometry, "layout")?;
        }
        Ok(layout)
    }

    /// A slot's region.
    pub fn slot(&self, slot: Slot) -> Region {
        self.slots[slot.index()]
    }

    /// One past the last byte used.
    pub fn end(&self) -> u32 {
        self.table.end().max(self.slots[0].end()).max(self.slots[1].end())
    }
}

/// The engine's configuration.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BootConfig {
    /// Regions.
    pub layout: Layout,
    /// The verified boot chain (which includes the A/B slot stage and its keys).
    pub chain: Chain,
    /// Trial boots allowed before an unconfirmed image is abandoned. Default 3 (RAUC's
    /// `boot-attempts`); at most 384 (the trailer's status records).
    pub max_attempts: u32,
}

impl BootConfig {
    /// Default trial attempts.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

    /// A configuration with the default attempt count.
    pub fn new(layout: Layout, chain: Chain) -> Self {
        Self { layout, chain, max_attempts: Self::DEFAULT_MAX_ATTEMPTS }
    }

    fn check(&self, geometry: &Geometry) -> Result<()> {
        let bad = |field, reason: String| Err(Error::Config { field, reason });
        let mut regions: Vec<(&str, Region)> = vec![
            ("table", self.layout.table),
            ("slot A", self.layout.slots[0]),
            ("slot B", self.layout.slots[1]),
        ];
        regions.extend(self.chain.regions());
        for (i, (name, r)) in regions.iter().enumerate() {
            r.check(geometry, "layout")?;
            if let Some((other, _)) = regions[..i].iter().find(|(_, o)| o.overlaps(r)) {
                return bad("layout", format!("{name} overlaps {other}"));
            }
        }
        if self.layout.table.size != 2 * geometry.sector_size
            || geometry.align_up(table::RECORD_LEN) > geometry.sector_size as usize
        {
            return bad("layout", "the signature table takes exactly two sectors".into());
        }
        for slot in self.layout.slots {
            let trailer = Trailer::new(slot, geometry).size();
            if slot.size <= trailer + 64 {
                return bad(
                    "layout",
                    format!("a {}-byte slot cannot hold a {trailer}-byte trailer and an image", slot.size),
                );
            }
        }
        if !(1..=Trailer::MAX_ATTEMPTS).contains(&self.max_attempts) {
            return bad("max_attempts", format!("must be 1..={}", Trailer::MAX_ATTEMPTS));
        }
        Ok(())
    }
}

/// How an install marks the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Pending a trial boot (MCUboot `boot_set_pending(0)`).
    Test,
    /// Confirmed at once (MCUboot `boot_set_pending(1)`; recovery).
    Permanent,
}

/// An image that passed every check and may be written to `target`.
pub(crate) struct Staged {
    target: Slot,
    trust: ironclad_image::TrustAnchors,
    verified: VerifiedImage,
    counter: u32,
    decrypted: bool,
}

/// A slot that passed every check at reset.
struct Candidate {
    verified: VerifiedImage,
    entry: Entry,
    counter: u32,
    after: Vec<StageReport>,
}

/// The boot engine of one device: its flash, its configuration, its anti-rollback counter and
/// (optionally) its firmware decryption key. Generic over [`Flash`].
#[derive(Debug)]
pub struct BootEngine<F: Flash> {
    pub(crate) flash: F,
    pub(crate) config: BootConfig,
    pub(crate) rollback: AntiRollback,
    decryption_key: Option<Box<dyn KeyAgreement + Send + Sync>>,
    pub(crate) booted: Option<Booted>,
}

impl<F: Flash> BootEngine<F> {
    /// An engine over `flash`. Nothing is read or written until [`reset`](Self::reset).
    pub fn new(flash: F, config: BootConfig, rollback: AntiRollback) -> Result<Self> {
        let geometry = flash.geometry();
        geometry.check()?;
        config.check(&geometry)?;
        Ok(Self { flash, config, rollback, decryption_key: None, booted: None })
    }

    /// Sets the key that unwraps encrypted updates (an `ironclad_image::SeAgreementKey`).
    pub fn with_decryption_key(mut self, key: Box<dyn KeyAgreement + Send + Sync>) -> Self {
        self.decryption_key = Some(key);
        self
    }

    /// The flash.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash, mutably (tests arm power cuts and flip bits through it).
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// The configuration.
    pub fn config(&self) -> &BootConfig {
        &self.config
    }

    /// The anti-rollback counter.
    pub fn rollback(&self) -> &AntiRollback {
        &self.rollback
    }

    /// The running image (None before a reset, and after a power cut).
    pub fn booted(&self) -> Option<&Booted> {
        self.booted.as_ref()
    }

    pub(crate) fn trailer(&self, slot: Slot) -> Trailer {
        Trailer::new(self.config.layout.slot(slot), &self.flash.geometry())
    }

    /// A power cut ends the running image.
    pub(crate) fn guard<T>(&mut self, r: Result<T>) -> Result<T> {
        if matches!(r, Err(Error::PowerCut)) {
            self.booted = None;
        }
        r
    }

    /// The bootloader: verifies the chain, selects a slot (consuming a trial attempt if it is
    /// on trial), advances the anti-rollback counter when it boots a confirmed image with a
    /// higher one, and records what runs. Fails with `NoBootableImage` when no slot qualifies
    /// (recovery is then the way out) or `Stage` when a stage before the slots fails.
    pub fn reset(&mut self) -> Result<BootReport> {
        self.booted = None;
        let r = self.select();
        let r = self.guard(r);
        if let Ok(report) = &r {
            self.booted = Some(report.booted.clone());
        }
        r
    }

    fn select(&mut self) -> Result<BootReport> {
        let (mut stages, trust) = self.config.chain.verify_before_slots(&mut self.flash)?;
        let table = table::read(&mut self.flash, &self.config.layout.table)?;
        let device = self.rollback.device_counter()?;
        let max = self.config.max_attempts;
        let mut refused = Vec::new();
        for slot in newest_first(&table) {
            let trailer = self.trailer(slot);
            let read = trailer.read(&mut self.flash, max)?;
            let state = read.state(max);
            let early = match state {
                SlotState::Empty => Some(Refusal::Empty),
                SlotState::Rejected => Some(Refusal::Rejected),
                SlotState::Exhausted { attempts } => Some(Refusal::Exhausted { attempts }),
                SlotState::Pending | SlotState::Trial { .. } | SlotState::Confirmed => None,
            };
            let checked = match early {
                Some(r) => Err(r),
                None => self.check_slot(slot, &trust, &table, device)?,
            };
            let candidate = match checked {
                Ok(c) => c,
                Err(refusal) => {
                    refused.push(SlotRefusal { slot, refusal });
                    continue;
                }
            };
            let mode = if state == SlotState::Confirmed {
                BootMode::Confirmed
            } else {
                let Some(index) = read.next_attempt else {
                    refused
                        .push(SlotRefusal { slot, refusal: Refusal::Exhausted { attempts: read.attempts } });
                    continue;
                };
                // The attempt is recorded before the image runs: a crash or power cut during
                // the trial has used it.
                trailer.write_attempt(&mut self.flash, index)?;
                BootMode::Trial { attempt: read.attempts + 1, of: max }
            };
            let counter_advanced = match mode {
                BootMode::Confirmed => self.rollback.commit(candidate.counter)?,
                _ => None,
            };
            stages.push(chain::report(&self.config.chain.slot_stage().name, &candidate.verified));
            stages.extend(candidate.after);
            let booted = Booted {
                slot,
                mode,
                version: candidate.verified.version(),
                security_counter: candidate.counter,
                digest: *candidate.verified.digest(),
                generation: candidate.entry.generation,
            };
            return Ok(BootReport { booted, stages, refused, counter_advanced });
        }
        Err(Error::NoBootableImage { refused })
    }

    /// Every check a slot's contents must pass to boot. The outer error is the flash's.
    fn check_slot(
        &mut self,
        slot: Slot,
        trust: &ironclad_image::TrustAnchors,
        table: &Table,
        device: u64,
    ) -> Result<Result<Candidate, Refusal>> {
        let Some(entry) = table.entry(slot).copied() else {
            return Ok(Err(Refusal::NotInTable));
        };
        let region = self.config.layout.slot(slot);
        let verified = match verify_region(&mut self.flash, &region, trust)? {
            Ok(v) => v,
            Err(r) => return Ok(Err(r)),
        };
        if entry.digest != *verified.digest() {
            return Ok(Err(Refusal::DigestMismatch));
        }
        let counter = verified.security_counter();
        if let Some(r) = AntiRollback::refusal(counter, device) {
            return Ok(Err(r));
        }
        let after = match self.config.chain.verify_after_slots(&mut self.flash, &verified)? {
            Ok(a) => a,
            Err(r) => return Ok(Err(r)),
        };
        Ok(Ok(Candidate { verified, entry, counter: counter.unwrap_or(0), after }))
    }

    /// True when `slot` holds a confirmed image that would boot now.
    pub(crate) fn is_bootable_confirmed(
        &mut self,
        slot: Slot,
        trust: &ironclad_image::TrustAnchors,
        table: &Table,
        device: u64,
    ) -> Result<bool> {
        let read = self.trailer(slot).read(&mut self.flash, self.config.max_attempts)?;
        if read.state(self.config.max_attempts) != SlotState::Confirmed {
            return Ok(false);
        }
        Ok(self.check_slot(slot, trust, table, device)?.is_ok())
    }

    /// Installs an update from `src` into the inactive slot and marks it pending a trial boot.
    ///
    /// The image is parsed (bounded by the slot), verified with the slot stage's keys
    /// (decrypted with the device key if encrypted) and checked against the anti-rollback
    /// counter before anything is written. Then: erase the slot (trailer sector first), write
    /// the plaintext image, read it back and verify it again, record its digest in the
    /// signature table, write swap_info and, last, the trailer magic. A power cut anywhere
    /// leaves the slot not bootable (no magic) or fully installed.
    ///
    /// Needs a confirmed running image: while a trial runs, the inactive slot holds the only
    /// confirmed fallback.
    pub fn install<R: Read + Seek>(&mut self, src: &mut R) -> Result<InstallReport> {
        let booted = self.booted.as_ref().ok_or(Error::NotBooted)?;
        if booted.mode != BootMode::Confirmed {
            return Err(Error::TrialPending { slot: booted.slot });
        }
        let target = booted.slot.other();
        let r = self.stage(target, src).and_then(|staged| self.write_staged(staged, src, Mark::Test));
        self.guard(r)
    }

    /// Parse, verify, check anti-rollback and size: everything that can refuse the image
    /// before the flash is touched.
    pub(crate) fn stage<R: Read + Seek>(&mut self, target: Slot, src: &mut R) -> Result<Staged> {
        let (_, trust) = self.config.chain.verify_before_slots(&mut self.flash)?;
        let region = self.config.layout.slot(target);
        let image = Image::read(src, &Limits::for_slot(u64::from(region.size)))?;
        let decrypted = image.cipher().is_some();
        let verified = if decrypted {
            let key = self.decryption_key.as_deref().ok_or(Error::NoDecryptionKey)?;
            image.decrypt_verify(src, &trust, key)?
        } else {
            image.verify(src, &trust)?
        };
        let counter = self.rollback.check(verified.security_counter())?;
        let needed = verified.image().image_len() + u64::from(self.trailer(target).size());
        if needed > u64::from(region.size) {
            return Err(Error::ImageTooLarge { size: needed, max: region.size.into() });
        }
        Ok(Staged { target, trust, verified, counter, decrypted })
    }

    /// Writes a staged image: erase, write, read back, signature table, trailer.
    pub(crate) fn write_staged<R: Read + Seek>(
        &mut self,
        staged: Staged,
        src: &mut R,
        mark: Mark,
    ) -> Result<InstallReport> {
        let Staged { target, trust, verified, counter, decrypted } = staged;
        let region = self.config.layout.slot(target);
        let trailer = self.trailer(target);
        flash::erase_region(&mut self.flash, &region)?;
        let mut writer = RegionWriter::new(&mut self.flash, region);
        if let Err(e) = verified.write_decrypted_image(src, &mut writer) {
            return Err(writer.take_error().unwrap_or(Error::Image(e)));
        }
        writer.finish()?;
        match verify_region(&mut self.flash, &region, &trust)? {
            Ok(v) if v.digest() == verified.digest() => {}
            _ => return Err(Error::Readback { slot: target }),
        }
        let mut table = table::read(&mut self.flash, &self.config.layout.table)?;
        let generation = table.next_generation();
        table.entries[target.index()] = Some(Entry { generation, digest: *verified.digest() });
        table::write(&mut self.flash, &self.config.layout.table, &table)?;
        let (swap_type, state) = match mark {
            Mark::Test => (trailer::SWAP_TYPE_TEST, SlotState::Pending),
            Mark::Permanent => {
                trailer.write_flag(&mut self.flash, Field::ImageOk)?;
                (trailer::SWAP_TYPE_PERM, SlotState::Confirmed)
            }
        };
        trailer.write_swap_info(&mut self.flash, swap_type)?;
        trailer.write_magic(&mut self.flash)?;
        Ok(InstallReport {
            slot: target,
            state,
            version: verified.version(),
            security_counter: counter,
            digest: *verified.digest(),
            generation,
            decrypted,
        })
    }

    /// Confirms the running trial image (image_ok, one write), then advances the anti-rollback
    /// counter to its security counter. A confirmed image is a no-op.
    pub fn confirm(&mut self) -> Result<Option<CounterAdvance>> {
        let booted = self.booted.clone().ok_or(Error::NotBooted)?;
        match booted.mode {
            BootMode::Confirmed => return Ok(None),
            BootMode::Reverted => return Err(Error::Reverted { slot: booted.slot }),
            BootMode::Trial { .. } => {}
        }
        let r = self.confirm_trial(&booted);
        self.guard(r)
    }

    fn confirm_trial(&mut self, booted: &Booted) -> Result<Option<CounterAdvance>> {
        let trailer = self.trailer(booted.slot);
        if trailer.read(&mut self.flash, self.config.max_attempts)?.image_ok != Flag::Set {
            trailer.write_flag(&mut self.flash, Field::ImageOk)?;
        }
        let advanced = self.rollback.commit(booted.security_counter)?;
        if let Some(b) = self.booted.as_mut() {
            b.mode = BootMode::Confirmed;
        }
        Ok(advanced)
    }

    /// Reverts: rejects the running trial image (copy_done, one write) so the next reset boots
    /// the other slot, or, when a confirmed image runs, cancels an update pending in the other
    /// slot. Returns the slot rejected.
    pub fn revert(&mut self) -> Result<Slot> {
        let booted = self.booted.clone().ok_or(Error::NotBooted)?;
        let r = self.revert_inner(&booted);
        self.guard(r)
    }

    fn revert_inner(&mut self, booted: &Booted) -> Result<Slot> {
        let max = self.config.max_attempts;
        let target = match booted.mode {
            BootMode::Reverted => return Ok(booted.slot),
            BootMode::Trial { .. } => booted.slot,
            BootMode::Confirmed => {
                let other = booted.slot.other();
                match self.trailer(other).read(&mut self.flash, max)?.state(max) {
                    SlotState::Pending | SlotState::Trial { .. } => other,
                    _ => return Err(Error::NothingToRevert),
                }
            }
        };
        let trailer = self.trailer(target);
        if trailer.read(&mut self.flash, max)?.copy_done == Flag::Unset {
            trailer.write_flag(&mut self.flash, Field::CopyDone)?;
        }
        if target == booted.slot
            && let Some(b) = self.booted.as_mut()
        {
            b.mode = BootMode::Reverted;
        }
        Ok(target)
    }

    /// Both slots, the table and the counter as flash and the secure element say now (images
    /// summarised from their headers, unverified), plus what runs.
    pub fn state(&mut self) -> Result<DeviceState> {
        let r = self.read_state();
        self.guard(r)
    }

    fn read_state(&mut self) -> Result<DeviceState> {
        let table = table::read(&mut self.flash, &self.config.layout.table)?;
        let max = self.config.max_attempts;
        let mut slots = Vec::new();
        for slot in Slot::BOTH {
            let region = self.config.layout.slot(slot);
            let read = self.trailer(slot).read(&mut self.flash, max)?;
            let mut reader = RegionReader::new(&mut self.flash, region);
            let parsed = Image::read(&mut reader, &Limits::for_slot(u64::from(region.size)));
            if let Some(e) = reader.take_error() {
                return Err(e);
            }
            let image = parsed.ok().map(|i| ImageSummary {
                version: i.header().version,
                security_counter: i.security_counter(),
                recorded_digest: i.recorded_hash(),
                len: i.image_len(),
            });
            let entry = table.entry(slot);
            slots.push(SlotInfo {
                slot,
                region,
                state: read.state(max),
                swap_info: read.swap_info,
                generation: entry.map(|e| e.generation),
                table_digest: entry.map(|e| e.digest),
                image,
            });
        }
        Ok(DeviceState {
            slots,
            booted: self.booted.clone(),
            security_counter: self.rollback.device_counter()?,
            table_seq: table.is_valid().then_some(table.seq),
        })
    }
}

/// Slots by install generation, newest first; slots without a table entry last (A before B).
fn newest_first(table: &Table) -> [Slot; 2] {
    let generation = |s: Slot| table.entry(s).map_or(0, |e| e.generation);
    if generation(Slot::B) > generation(Slot::A) { [Slot::B, Slot::A] } else { [Slot::A, Slot::B] }
}
