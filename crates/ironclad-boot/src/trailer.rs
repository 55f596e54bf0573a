//! The slot trailer: MCUboot's layout at the end of each slot, read and written field by field.
//!
//! ```text
//! status area (128 × 3 × align)   | swap_size | swap_info | copy_done | image_ok | magic
//!   records 0.. = trial attempts  |  (max_align each; magic area align_up(16, max_align))
//! ```
//!
//! The offsets are imgtool's (`--pad --align N`, `ironclad_image::SlotLayout`), so an image
//! padded with `imgtool sign --pad --confirm` and programmed raw is a confirmed slot here; with
//! `max_align` 8 image_ok sits at slot end − 24 and the magic in the last 16 bytes.
//!
//! Every state change is one aligned write of erased bytes, never an erase, so a power cut
//! leaves each field either written or not (a torn write leaves a prefix, and the flag byte
//! comes first):
//! - install (test): swap_info = TEST, then the magic (the commit point);
//! - recovery (permanent): image_ok, swap_info = PERM, then the magic;
//! - each trial boot: the next attempt record (an `align`-byte record in the swap status area,
//!   which slot selection without swapping never uses; any programmed byte counts);
//! - confirm: image_ok = 0x01; revert: copy_done = 0x01.

use ironclad_image::SlotLayout;

use crate::error::Result;
use crate::flash::{Flash, Geometry, Region};
use crate::state::SlotState;

/// MCUboot's flag value for "set".
const FLAG_SET: u8 = 0x01;
/// swap_info type for a test (trial) install.
pub(crate) const SWAP_TYPE_TEST: u8 = 2;
/// swap_info type for a permanent install.
pub(crate) const SWAP_TYPE_PERM: u8 = 3;

/// A flag byte as MCUboot decodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flag {
    Unset,
    Set,
    Bad,
}

/// The trailer fields of one slot, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TrailerRead {
    pub(crate) magic: bool,
    pub(crate) image_ok: Flag,
    pub(crate) copy_done: Flag,
    pub(crate) swap_info: Option<u8>,
    /// Programmed attempt records among the first `max_attempts`.
    pub(crate) attempts: u32,
    /// The first erased attempt record, if any is left.
    pub(crate) next_attempt: Option<u32>,
}

impl TrailerRead {
    /// The slot state these fields mean.
    pub(crate) fn state(&self, max_attempts: u32) -> SlotState {
        if !self.magic {
            SlotState::Empty
        } else if self.image_ok == Flag::Set {
            SlotState::Confirmed
        } else if self.copy_done != Flag::Unset {
            SlotState::Rejected
        } else if self.attempts >= max_attempts || self.next_attempt.is_none() {
            SlotState::Exhausted { attempts: self.attempts }
        } else if self.attempts == 0 {
            SlotState::Pending
        } else {
            SlotState::Trial { attempts_used: self.attempts }
        }
    }
}

/// Which flag to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    ImageOk,
    CopyDone,
}

/// The trailer of one slot on one flash geometry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trailer {
    region: Region,
    layout: SlotLayout,
    align: u32,
    max_align: u32,
    erased: u8,
}

impl Trailer {
    /// Records in the swap status area, hence the most trial attempts a slot can count.
    pub(crate) const MAX_ATTEMPTS: u32 = 128 * 3;

    pub(crate) fn new(region: Region, geometry: &Geometry) -> Self {
        let align = geometry.write_align;
        let layout = SlotLayout { align: align as u8, ..SlotLayout::new(u64::from(region.size)) };
        Self { region, layout, align, max_align: align.max(8), erased: geometry.erased_value }
    }

    /// Bytes reserved at the end of the slot (imgtool's trailer size, unencrypted).
    pub(crate) fn size(&self) -> u32 {
        self.layout.trailer_size(false) as u32
    }

    fn magic_area(&self) -> u32 {
        16u32.div_ceil(self.max_align) * self.max_align
    }

    fn magic_off(&self) -> u32 {
        self.region.end() - self.magic_area()
    }

    fn field_off(&self, field: Field) -> u32 {
        match field {
            Field::ImageOk => self.magic_off() - self.max_align,
            Field::CopyDone => self.magic_off() - 2 * self.max_align,
        }
    }

    fn swap_info_off(&self) -> u32 {
        self.magic_off() - 3 * self.max_align
    }

    fn attempt_off(&self, index: u32) -> u32 {
        self.region.end() - self.size() + index * self.align
    }

    fn flag(&self, byte: u8) -> Flag {
        match byte {
            FLAG_SET => Flag::Set,
            b if b == self.erased => Flag::Unset,
            _ => Flag::Bad,
        }
    }

    /// Reads every field (two flash reads).
    pub(crate) fn read<F: Flash>(&self, flash: &mut F, max_attempts: u32) -> Result<TrailerRead> {
        let info_start = self.swap_info_off();
        let mut info = vec![0u8; (self.region.end() - info_start) as usize];
        flash.read(info_start, &mut info)?;
        let at = |off: u32| info[(off - info_start) as usize];
        let magic = info[info.len() - 16..] == self.layout.magic()[..];
        let swap_info = Some(at(info_start)).filter(|&b| b != self.erased);

        let records = max_attempts.min(Self::MAX_ATTEMPTS);
        let mut status = vec![0u8; (records * self.align) as usize];
        flash.read(self.attempt_off(0), &mut status)?;
        let programmed: Vec<bool> =
            status.chunks(self.align as usize).map(|r| r.iter().any(|&b| b != self.erased)).collect();
        let attempts = programmed.iter().filter(|&&p| p).count() as u32;
        let next_attempt = programmed.iter().position(|&p| !p).map(|i| i as u32);
        Ok(TrailerRead {
            magic,
            image_ok: self.flag(at(self.field_off(Field::ImageOk))),
            copy_done: self.flag(at(self.field_off(Field::CopyDone))),
            swap_info,
            attempts,
            next_attempt,
        })
    }

    fn record(&self, first: u8) -> Vec<u8> {
        let mut buf = vec![self.erased; self.align as usize];
        buf[0] = first;
        buf
    }

    /// Sets image_ok or copy_done.
    pub(crate) fn write_flag<F: Flash>(&self, flash: &mut F, field: Field) -> Result<()> {
        flash.write(self.field_off(field), &self.record(FLAG_SET))
    }

    /// Writes swap_info (image index 0, the given type).
    pub(crate) fn write_swap_info<F: Flash>(&self, flash: &mut F, swap_type: u8) -> Result<()> {
        flash.write(self.swap_info_off(), &self.record(swap_type & 0x0f))
    }

    /// Writes the magic area (erased padding, then the 16 magic bytes).
    pub(crate) fn write_magic<F: Flash>(&self, flash: &mut F) -> Result<()> {
        let mut area = vec![self.erased; self.magic_area() as usize];
        let n = area.len();
        area[n - 16..].copy_from_slice(&self.layout.magic());
        flash.write(self.magic_off(), &area)
    }

    /// Records trial attempt number `index` (0-based).
    pub(crate) fn write_attempt<F: Flash>(&self, flash: &mut F, index: u32) -> Result<()> {
        flash.write(self.attempt_off(index), &self.record(FLAG_SET))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::SimFlash;

    #[test]
    fn offsets_match_imgtool_for_align_8() {
        let g = Geometry::new(4096, 8, 0xff, 4).unwrap();
        let t = Trailer::new(Region::new(4096, 8192), &g);
        let end = 4096 + 8192;
        assert_eq!(t.size(), 128 * 3 * 8 + 4 * 8 + 16);
        assert_eq!(t.field_off(Field::ImageOk), end - 24);
        assert_eq!(t.field_off(Field::CopyDone), end - 32);
        assert_eq!(t.swap_info_off(), end - 40);
        assert_eq!(t.magic_off(), end - 16);
    }

    #[test]
    fn states_follow_the_writes() {
        for (align, erased) in [(1, 0x00), (8, 0xff), (32, 0xff)] {
            let g = Geometry::new(16384, align, erased, 2).unwrap();
            let mut f = SimFlash::new(g).unwrap();
            let t = Trailer::new(Region::new(16384, 16384), &g);
            let state = |f: &mut SimFlash| t.read(f, 3).unwrap().state(3);
            assert_eq!(state(&mut f), SlotState::Empty);
            t.write_swap_info(&mut f, SWAP_TYPE_TEST).unwrap();
            t.write_magic(&mut f).unwrap();
            assert_eq!(state(&mut f), SlotState::Pending);
            assert_eq!(t.read(&mut f, 3).unwrap().swap_info, Some(SWAP_TYPE_TEST));
            t.write_attempt(&mut f, 0).unwrap();
            t.write_attempt(&mut f, 1).unwrap();
            assert_eq!(state(&mut f), SlotState::Trial { attempts_used: 2 });
            t.write_attempt(&mut f, 2).unwrap();
            assert_eq!(state(&mut f), SlotState::Exhausted { attempts: 3 });
            t.write_flag(&mut f, Field::ImageOk).unwrap();
            assert_eq!(state(&mut f), SlotState::Confirmed);
        }
    }
}
