//! Signed recovery from removable media (the SD-card path): the bootloader, asked to recover
//! (a button held at reset, or nothing left to boot), takes an image from a reader and writes
//! it to a slot as a permanent image, which the next reset boots.
//!
//! The rules are the update's, with no exception for physical access: the image must verify
//! with the slot stage's keys (decrypted with the device key when encrypted), carry a security
//! counter not below the device's, and it goes through the same erase → write → read back →
//! signature table → trailer sequence, so a power cut during recovery is as safe as during an
//! update. Like MCUboot's serial recovery it is permanent (no trial: there may be nothing to
//! fall back to); as with a confirmed update, the anti-rollback counter is advanced at the
//! reset that boots it.
//!
//! The target slot keeps the best image the device has: the slot *not* holding the newest
//! confirmed image that would still boot, or, when there is none, the older install.

use std::io::{Read, Seek};

use crate::error::Result;
use crate::flash::Flash;
use crate::slots::{BootEngine, Mark};
use crate::state::{InstallReport, Slot};
use crate::table;

impl<F: Flash> BootEngine<F> {
    /// Recovers from `src` (see the module docs). A refused image changes nothing; once the
    /// image is written the running image, if any, is gone: reset next to boot the recovered one.
    pub fn recover<R: Read + Seek>(&mut self, src: &mut R) -> Result<InstallReport> {
        let r = self.recover_inner(src);
        self.guard(r)
    }

    fn recover_inner<R: Read + Seek>(&mut self, src: &mut R) -> Result<InstallReport> {
        let target = self.recovery_target()?;
        let staged = self.stage(target, src)?;
        self.booted = None;
        self.write_staged(staged, src, Mark::Permanent)
    }

    /// The slot recovery writes.
    pub fn recovery_target(&mut self) -> Result<Slot> {
        let (_, trust) = self.config.chain.verify_before_slots(&mut self.flash)?;
        let table = table::read(&mut self.flash, &self.config.layout.table)?;
        let device = self.rollback.device_counter()?;
        let generation = |s: Slot| table.entry(s).map_or(0, |e| e.generation);
        let mut keep: Option<Slot> = None;
        for slot in Slot::BOTH {
            if self.is_bootable_confirmed(slot, &trust, &table, device)?
                && keep.is_none_or(|k| generation(slot) > generation(k))
            {
                keep = Some(slot);
            }
        }
        Ok(match keep {
            Some(slot) => slot.other(),
            None if generation(Slot::B) < generation(Slot::A) => Slot::B,
            None => Slot::A,
        })
    }
}
