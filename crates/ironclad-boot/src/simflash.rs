//! In-memory NOR flash with power-cut injection, after MCUboot's `sim/simflash`.
//!
//! **Power-cut model.** Erase and write calls are *operations*, numbered from 0 in the order
//! they are issued ([`SimFlash::ops`] counts them; reads are not operations). After
//! [`SimFlash::cut_power_after(n, tear)`](SimFlash::cut_power_after), the next `n` operations
//! complete and the one after them is interrupted: it takes the partial effect given by
//! [`Tear`] and fails with [`Error::PowerCut`], and from then on *every* call (reads included)
//! fails with `PowerCut` until [`SimFlash::power_on`]. The partial effects:
//! - an interrupted **write** of `len` bytes leaves a prefix programmed: none of it
//!   ([`Tear::Nothing`]), the first `len / 2` bytes ([`Tear::Half`]), or all of it
//!   ([`Tear::Complete`]: the cells were programmed but the power died before the operation
//!   returned);
//! - an interrupted **erase** leaves the sector unchanged, its first half erased and the rest
//!   as it was, or fully erased.
//!
//! Writes follow NOR rules and are refused (as a bug in the caller, not a power effect) when
//! misaligned or when a target byte is not erased; a programmed byte is `old & new` on 0xFF
//! flash and `old | new` on 0x00 flash, i.e. bits only move away from the erased value.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::flash::{Flash, Geometry};

/// How much of the interrupted operation reaches the cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tear {
    /// Nothing: the operation had not started.
    Nothing,
    /// The first half of the bytes (a prefix).
    Half,
    /// All of it: the operation finished but the power died before it returned.
    Complete,
}

impl Tear {
    /// Every tear, for exhaustive tests.
    pub const ALL: [Tear; 3] = [Tear::Nothing, Tear::Half, Tear::Complete];

    /// How many of `len` bytes are affected.
    pub fn applied(self, len: usize) -> usize {
        match self {
            Tear::Nothing => 0,
            Tear::Half => len / 2,
            Tear::Complete => len,
        }
    }
}

/// Simulated flash. Serialisable (geometry, contents as hex, operation count) so a simulated
/// device can be saved between steps; an armed or active power cut is not saved.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimFlash {
    geometry: Geometry,
    #[serde(with = "crate::state::hex_bytes")]
    data: Vec<u8>,
    ops: u64,
    #[serde(skip)]
    armed: Option<(u64, Tear)>,
    #[serde(skip)]
    cut: bool,
}

impl std::fmt::Debug for SimFlash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFlash")
            .field("geometry", &self.geometry)
            .field("ops", &self.ops)
            .field("armed", &self.armed)
            .field("cut", &self.cut)
            .finish_non_exhaustive()
    }
}

impl SimFlash {
    /// A fully erased flash.
    pub fn new(geometry: Geometry) -> Result<Self> {
        geometry.check()?;
        let data = vec![geometry.erased_value; geometry.capacity as usize];
        Ok(Self { geometry, data, ops: 0, armed: None, cut: false })
    }

    /// Erase and write operations issued so far (interrupted ones included).
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Arms a power cut: the next `n` operations complete, the one after is interrupted with
    /// `tear`. Replaces any armed cut.
    pub fn cut_power_after(&mut self, n: u64, tear: Tear) {
        self.armed = Some((self.ops + n, tear));
    }

    /// Removes an armed cut that has not fired.
    pub fn disarm(&mut self) {
        self.armed = None;
    }

    /// True while the power is off (a cut fired and `power_on` was not called).
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// Restores power after a cut (contents stay as the cut left them).
    pub fn power_on(&mut self) {
        self.cut = false;
    }

    /// The raw contents.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Flips one bit in place, outside the NOR rules and not counted as an operation: bit rot,
    /// or an attacker with a flash programmer.
    pub fn flip_bit(&mut self, offset: u32, bit: u8) {
        if let Some(b) = self.data.get_mut(offset as usize) {
            *b ^= 1 << (bit & 7);
        }
    }

    /// Overwrites bytes in place, outside the NOR rules and not counted: a flash programmer.
    pub fn program_raw(&mut self, offset: u32, bytes: &[u8]) -> Result<()> {
        self.geometry.check_range(offset, bytes.len())?;
        self.data[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    fn powered(&self) -> Result<()> {
        if self.cut { Err(Error::PowerCut) } else { Ok(()) }
    }

    /// Starts an operation: `Some(tear)` when this is the one the armed cut interrupts.
    fn begin_op(&mut self) -> Option<Tear> {
        let index = self.ops;
        self.ops += 1;
        match self.armed {
            Some((at, tear)) if at == index => {
                self.armed = None;
                self.cut = true;
                Some(tear)
            }
            _ => None,
        }
    }

    fn program(&mut self, offset: usize, data: &[u8]) {
        let erased_ff = self.geometry.erased_value == 0xff;
        for (cell, &new) in self.data[offset..offset + data.len()].iter_mut().zip(data) {
            *cell = if erased_ff { *cell & new } else { *cell | new };
        }
    }
}

impl Flash for SimFlash {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<()> {
        self.powered()?;
        self.geometry.check_range(offset, buf.len())?;
        buf.copy_from_slice(&self.data[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<()> {
        self.powered()?;
        self.geometry.check_write(offset, data.len())?;
        let start = offset as usize;
        let erased = self.geometry.erased_value;
        if let Some(i) = self.data[start..start + data.len()].iter().position(|&b| b != erased) {
            return Err(Error::NotErased { offset: offset + i as u32 });
        }
        match self.begin_op() {
            None => {
                self.program(start, data);
                Ok(())
            }
            Some(tear) => {
                self.program(start, &data[..tear.applied(data.len())]);
                Err(Error::PowerCut)
            }
        }
    }

    fn erase(&mut self, sector: u32) -> Result<()> {
        self.powered()?;
        self.geometry.check_sector(sector)?;
        let size = self.geometry.sector_size as usize;
        let start = sector as usize * size;
        let erased = self.geometry.erased_value;
        match self.begin_op() {
            None => {
                self.data[start..start + size].fill(erased);
                Ok(())
            }
            Some(tear) => {
                self.data[start..start + tear.applied(size)].fill(erased);
                Err(Error::PowerCut)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn flash(erased: u8) -> SimFlash {
        SimFlash::new(Geometry::new(1024, 8, erased, 4).unwrap()).unwrap()
    }

    #[test]
    fn nor_rules() {
        let mut f = flash(0xff);
        f.write(8, &[0x0f; 8]).unwrap();
        assert!(matches!(f.write(8, &[0x0f; 8]), Err(Error::NotErased { offset: 8 })));
        assert!(matches!(f.write(4, &[0; 8]), Err(Error::Misaligned { .. })));
        assert!(matches!(f.write(8, &[0; 3]), Err(Error::Misaligned { .. })));
        assert!(matches!(f.erase(4), Err(Error::OutOfBounds { .. })));
        assert_eq!(f.ops(), 1, "refused calls are not operations");
        f.erase(0).unwrap();
        let mut b = [0u8; 8];
        f.read(8, &mut b).unwrap();
        assert_eq!(b, [0xff; 8]);
    }

    #[test]
    fn zero_erased_flash_programs_ones() {
        let mut f = flash(0x00);
        f.write(0, &[0xa5; 8]).unwrap();
        let mut b = [0u8; 8];
        f.read(0, &mut b).unwrap();
        assert_eq!(b, [0xa5; 8]);
        assert!(matches!(f.write(0, &[0; 8]), Err(Error::NotErased { .. })));
    }

    #[test]
    fn cuts_tear_and_then_everything_fails() {
        for tear in Tear::ALL {
            let mut f = flash(0xff);
            f.cut_power_after(1, tear);
            f.write(0, &[0; 16]).unwrap();
            assert!(matches!(f.write(16, &[0; 16]), Err(Error::PowerCut)));
            let programmed = f.data()[16..32].iter().filter(|&&b| b == 0).count();
            assert_eq!(programmed, tear.applied(16));
            let mut b = [0u8; 1];
            assert!(matches!(f.read(0, &mut b), Err(Error::PowerCut)));
            assert!(matches!(f.erase(0), Err(Error::PowerCut)));
            f.power_on();
            f.read(0, &mut b).unwrap();
            assert_eq!(f.ops(), 2);

            f.cut_power_after(0, tear);
            assert!(matches!(f.erase(0), Err(Error::PowerCut)));
            let erased = f.data()[..1024].iter().filter(|&&b| b == 0xff).count();
            let dirty_before = 16 + tear.applied(16);
            assert_eq!(erased, 1024 - dirty_before.saturating_sub(tear.applied(1024)));
        }
    }

    #[test]
    fn serde_round_trip_keeps_contents() {
        let mut f = flash(0xff);
        f.write(0, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let json = serde_json::to_string(&f).unwrap();
        let back: SimFlash = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
    }
}
