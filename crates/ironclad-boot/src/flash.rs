//! The flash the boot engine runs on: a NOR-style [`Flash`] trait (sector erase, aligned writes
//! of erased bytes only, an erased value of 0xFF or 0x00), [`Region`]s of whole sectors, and the
//! `Read + Seek` / `Write` adapters that let `ironclad-image` parse, verify and write images in
//! place.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a flash is organised. Every [`Flash`] reports one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geometry {
    /// Erase unit in bytes (a power of two, at least the write alignment).
    pub sector_size: u32,
    /// Program unit in bytes: offsets and lengths of writes are multiples of it (1, 2, 4, 8,
    /// 16 or 32, the alignments MCUboot's trailer supports).
    pub write_align: u32,
    /// The value of an erased byte: 0xFF (most NOR) or 0x00 (some internal flash).
    pub erased_value: u8,
    /// Size of the whole flash in bytes (a multiple of the sector size).
    pub capacity: u32,
}

impl Geometry {
    /// A geometry of `sectors` sectors, checked.
    pub fn new(sector_size: u32, write_align: u32, erased_value: u8, sectors: u32) -> Result<Self> {
        let capacity = sector_size.checked_mul(sectors).ok_or_else(|| Error::Config {
            field: "geometry",
            reason: "capacity overflows 32 bits".into(),
        })?;
        let g = Self { sector_size, write_align, erased_value, capacity };
        g.check()?;
        Ok(g)
    }

    /// Checks the invariants listed on the fields.
    pub fn check(&self) -> Result<()> {
        let bad = |reason: &str| Err(Error::Config { field: "geometry", reason: reason.into() });
        if ![1, 2, 4, 8, 16, 32].contains(&self.write_align) {
            return bad("write_align must be 1, 2, 4, 8, 16 or 32");
        }
        if !self.sector_size.is_power_of_two() || self.sector_size < self.write_align.max(64) {
            return bad("sector_size must be a power of two of at least 64 bytes and the write alignment");
        }
        if self.erased_value != 0xff && self.erased_value != 0x00 {
            return bad("erased_value must be 0xff or 0x00");
        }
        if self.capacity == 0 || !self.capacity.is_multiple_of(self.sector_size) {
            return bad("capacity must be a non-zero multiple of sector_size");
        }
        Ok(())
    }

    /// Number of sectors.
    pub fn sectors(&self) -> u32 {
        self.capacity / self.sector_size
    }

    /// Checks that `offset..offset+len` lies inside the flash.
    pub fn check_range(&self, offset: u32, len: usize) -> Result<()> {
        if u64::from(offset) + len as u64 > u64::from(self.capacity) {
            return Err(Error::OutOfBounds {
                offset: offset.into(),
                len: len as u64,
                capacity: self.capacity,
            });
        }
        Ok(())
    }

    /// Checks a write: inside the flash, offset and length aligned.
    pub fn check_write(&self, offset: u32, len: usize) -> Result<()> {
        self.check_range(offset, len)?;
        if !offset.is_multiple_of(self.write_align) || !len.is_multiple_of(self.write_align as usize) {
            return Err(Error::Misaligned { offset, len, align: self.write_align });
        }
        Ok(())
    }

    /// Checks a sector number.
    pub fn check_sector(&self, sector: u32) -> Result<()> {
        if sector >= self.sectors() {
            return Err(Error::OutOfBounds { offset: sector.into(), len: 1, capacity: self.capacity });
        }
        Ok(())
    }

    /// Rounds `n` up to the write alignment.
    pub fn align_up(&self, n: usize) -> usize {
        n.div_ceil(self.write_align as usize) * self.write_align as usize
    }
}

/// NOR flash as MCUboot and embassy-boot see it.
///
/// Semantics every implementation must keep (the engine's power-loss safety rests on them):
/// - `erase(sector)` sets every byte of the sector to the erased value;
/// - `write(offset, data)` programs bytes that are erased: offset and length are multiples of
///   the write alignment, and programming only moves bits away from the erased value (1 → 0 on
///   0xFF flash, 0 → 1 on 0x00 flash), so a byte cannot be rewritten without an erase;
/// - an interrupted erase leaves the sector partly erased or unchanged; an interrupted write
///   leaves a prefix of the data programmed (see [`SimFlash`](crate::SimFlash) for the model).
pub trait Flash {
    /// Sector size, write alignment, erased value and capacity.
    fn geometry(&self) -> Geometry;
    /// Reads `buf.len()` bytes at `offset`.
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<()>;
    /// Programs `data` at `offset` (aligned; the target bytes must be erased).
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<()>;
    /// Erases sector number `sector` (`sector * sector_size` is its offset).
    fn erase(&mut self, sector: u32) -> Result<()>;

    /// Erase unit in bytes.
    fn sector_size(&self) -> u32 {
        self.geometry().sector_size
    }
    /// Program unit in bytes.
    fn write_align(&self) -> u32 {
        self.geometry().write_align
    }
    /// The value of an erased byte.
    fn erased_value(&self) -> u8 {
        self.geometry().erased_value
    }
    /// Size in bytes.
    fn capacity(&self) -> u32 {
        self.geometry().capacity
    }
}

impl<F: Flash + ?Sized> Flash for &mut F {
    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<()> {
        (**self).read(offset, buf)
    }
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<()> {
        (**self).write(offset, data)
    }
    fn erase(&mut self, sector: u32) -> Result<()> {
        (**self).erase(sector)
    }
}

/// A range of whole sectors: a slot, the signature table, a boot stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// Offset from the start of the flash (sector-aligned).
    pub offset: u32,
    /// Size in bytes (whole sectors).
    pub size: u32,
}

impl Region {
    /// A region.
    pub const fn new(offset: u32, size: u32) -> Self {
        Self { offset, size }
    }

    /// One past the last byte.
    pub fn end(&self) -> u32 {
        self.offset + self.size
    }

    /// The sector numbers it spans.
    pub fn sectors(&self, geometry: &Geometry) -> Range<u32> {
        self.offset / geometry.sector_size..self.end() / geometry.sector_size
    }

    /// True when the two regions share a byte.
    pub fn overlaps(&self, other: &Region) -> bool {
        self.offset < other.end() && other.offset < self.end()
    }

    /// Checks that the region is non-empty, sector-aligned and inside the flash.
    pub(crate) fn check(&self, geometry: &Geometry, field: &'static str) -> Result<()> {
        let s = geometry.sector_size;
        if self.size == 0 || !self.offset.is_multiple_of(s) || !self.size.is_multiple_of(s) {
            return Err(Error::Config { field, reason: format!("{self:?} is not whole {s}-byte sectors") });
        }
        if u64::from(self.offset) + u64::from(self.size) > u64::from(geometry.capacity) {
            return Err(Error::Config { field, reason: format!("{self:?} extends past the flash") });
        }
        Ok(())
    }
}

/// Erases every sector of a region, last sector first: the slot trailer lives in the last
/// sector, so a slot stops looking installed before any of its image is destroyed.
pub(crate) fn erase_region<F: Flash>(flash: &mut F, region: &Region) -> Result<()> {
    let geometry = flash.geometry();
    for sector in region.sectors(&geometry).rev() {
        flash.erase(sector)?;
    }
    Ok(())
}

/// `Read + Seek` over a region, for `Image::read`/`verify` in place. A flash error is kept and
/// handed back by [`RegionReader::take_error`], so a power cut is not mistaken for a bad image.
pub(crate) struct RegionReader<'a, F: Flash> {
    flash: &'a mut F,
    region: Region,
    pos: u64,
    error: Option<Error>,
}

impl<'a, F: Flash> RegionReader<'a, F> {
    pub(crate) fn new(flash: &'a mut F, region: Region) -> Self {
        Self { flash, region, pos: 0, error: None }
    }

    pub(crate) fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }
}

impl<F: Flash> Read for RegionReader<'_, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = u64::from(self.region.size).saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let offset = self.region.offset + self.pos as u32;
        if let Err(e) = self.flash.read(offset, &mut buf[..n]) {
            let message = e.to_string();
            self.error = Some(e);
            return Err(io::Error::other(message));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<F: Flash> Seek for RegionReader<'_, F> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let size = i128::from(self.region.size);
        let target = match pos {
            SeekFrom::Start(p) => i128::from(p),
            SeekFrom::End(d) => size + i128::from(d),
            SeekFrom::Current(d) => i128::from(self.pos) + i128::from(d),
        };
        if target < 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the region"));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}

/// Bytes programmed per write operation when streaming an image into a slot (a multiple of
/// every supported write alignment).
pub(crate) const PROGRAM_CHUNK: usize = 256;

/// `Write` into an erased region, programming [`PROGRAM_CHUNK`] bytes per flash write; the last
/// partial chunk is padded with the erased value to the write alignment by
/// [`RegionWriter::finish`].
pub(crate) struct RegionWriter<'a, F: Flash> {
    flash: &'a mut F,
    region: Region,
    written: u64,
    buf: Vec<u8>,
    error: Option<Error>,
}

impl<'a, F: Flash> RegionWriter<'a, F> {
    pub(crate) fn new(flash: &'a mut F, region: Region) -> Self {
        Self { flash, region, written: 0, buf: Vec::with_capacity(PROGRAM_CHUNK), error: None }
    }

    fn program(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let geometry = self.flash.geometry();
        self.buf.resize(geometry.align_up(self.buf.len()), geometry.erased_value);
        if self.written + self.buf.len() as u64 > u64::from(self.region.size) {
            return Err(Error::ImageTooLarge {
                size: self.written + self.buf.len() as u64,
                max: self.region.size.into(),
            });
        }
        self.flash.write(self.region.offset + self.written as u32, &self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Programs what is left; returns the error that interrupted an earlier `write`, if any.
    pub(crate) fn finish(mut self) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.program()
    }

    pub(crate) fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }
}

impl<F: Flash> Write for RegionWriter<'_, F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Err(io::Error::other("flash write failed"));
        }
        let n = data.len().min(PROGRAM_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PROGRAM_CHUNK
            && let Err(e) = self.program()
        {
            let message = e.to_string();
            self.error = Some(e);
            return Err(io::Error::other(message));
        }
        Ok(n)
    }

    /// Does nothing: a partial chunk is programmed only by `finish`, so later writes stay aligned.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
