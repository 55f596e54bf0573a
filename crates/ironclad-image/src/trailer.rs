//! Slot padding and the MCUboot image trailer as imgtool 2.5.0 writes them (`--pad`, `--test`,
//! `--confirm`, `--align`, `--max-align`, `-M`, `--overwrite-only`) and as `imgtool dumpinfo`
//! reads them back. The trailer sits at the end of the slot:
//!
//! ```text
//! swap status (max_sectors × 3 × align) | [enc keys 2 × align_up(16, max_align)]
//! | swap_size | swap_info | copy_done | image_ok   (max_align each) | magic (align_up(16, max_align))
//! ```
//!
//! The boot-time state machine that reads and writes it belongs to `ironclad-boot`.

use serde::Serialize;

use crate::error::{Error, Result};

/// The trailer magic when `max_align` is 8.
pub const BOOT_MAGIC: [u8; 16] =
    [0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80];
/// The last 14 magic bytes when `max_align` is 16 or 32 (the first two hold `max_align`, LE).
pub const BOOT_MAGIC_2: [u8; 14] =
    [0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a];

fn align_up(n: u64, align: u64) -> u64 {
    n.div_ceil(align) * align
}

/// The flash layout that decides the trailer's size (imgtool `-S`, `--align`, `--max-align`,
/// `-M`, `--overwrite-only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotLayout {
    /// Slot size in bytes: image plus trailer must fit.
    pub slot_size: u64,
    /// Flash write alignment: 1, 2, 4, 8, 16 or 32 (default 1).
    pub align: u8,
    /// Largest write alignment across slots: 8, 16 or 32; `None` means `max(8, align)`.
    pub max_align: Option<u8>,
    /// Sectors of the swap status area (default 128).
    pub max_sectors: u32,
    /// Overwrite-only upgrades (a smaller trailer: no swap status).
    pub overwrite_only: bool,
}

impl SlotLayout {
    /// A slot of `slot_size` bytes with imgtool's defaults (align 1, 128 sectors, swap).
    pub fn new(slot_size: u64) -> Self {
        Self { slot_size, align: 1, max_align: None, max_sectors: 128, overwrite_only: false }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if ![1, 2, 4, 8, 16, 32].contains(&self.align) {
            return Err(Error::InvalidOption {
                option: "align",
                reason: format!("{} is not 1, 2, 4, 8, 16 or 32", self.align),
            });
        }
        if let Some(m) = self.max_align
            && ![8, 16, 32].contains(&m)
        {
            return Err(Error::InvalidOption {
                option: "max_align",
                reason: format!("{m} is not 8, 16 or 32"),
            });
        }
        Ok(())
    }

    fn max_align(&self) -> u64 {
        u64::from(self.max_align.unwrap_or(self.align.max(8)))
    }

    /// Trailer size as imgtool computes it (`_trailer_size`, without `--save-enctlv`).
    pub fn trailer_size(&self, encrypted: bool) -> u64 {
        let max_align = self.max_align();
        let magic = align_up(16, max_align);
        if self.overwrite_only {
            return max_align * 2 + magic;
        }
        let mut size = u64::from(self.max_sectors) * 3 * u64::from(self.align);
        if encrypted {
            size += align_up(16, max_align) * 2;
        }
        size + max_align * 4 + magic
    }

    /// The trailer magic for this layout.
    pub fn magic(&self) -> [u8; 16] {
        let max_align = self.max_align();
        if max_align == 8 {
            return BOOT_MAGIC;
        }
        let mut magic = [0u8; 16];
        magic[..2].copy_from_slice(&(max_align as u16).to_le_bytes());
        magic[2..].copy_from_slice(&BOOT_MAGIC_2);
        magic
    }
}

/// What `--pad` writes into the trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pad {
    /// Magic only, image_ok unset: a pending test upgrade (imgtool `--pad` or `--test`).
    Test,
    /// Magic and image_ok = 0x01: a permanent upgrade (imgtool `--confirm`).
    Confirm,
}

/// Writes the padding and trailer after an image of `image_len` bytes, exactly as imgtool's
/// `pad_to`: erased bytes up to the slot end, the magic last, image_ok for `Confirm`.
pub(crate) fn write_padding<W: std::io::Write>(
    out: &mut W,
    layout: &SlotLayout,
    pad: Pad,
    image_len: u64,
    encrypted: bool,
    erased: u8,
) -> Result<u64> {
    let trailer = layout.trailer_size(encrypted);
    let total = layout.slot_size;
    let fill = total
        .checked_sub(image_len + trailer)
        .ok_or(Error::ImageTooLarge { size: image_len + trailer, max: total })?;
    let chunk = [erased; 4096];
    let mut left = fill + trailer - 16;
    // The bytes that carry image_ok: the last max_align-sized field before the magic.
    let max_align = layout.max_align();
    let image_ok_from_end = align_up(16, max_align) + max_align;
    let set_ok = pad == Pad::Confirm && !layout.overwrite_only;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        let start_from_end = left + 16; // distance from the end of the slot to this chunk's first byte
        let mut buf = chunk;
        if set_ok && start_from_end >= image_ok_from_end && start_from_end - (n as u64) < image_ok_from_end {
            let idx = (start_from_end - image_ok_from_end) as usize;
            buf[idx] = 0x01;
        }
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.write_all(&layout.magic())?;
    Ok(fill + trailer)
}

/// The trailer fields `imgtool dumpinfo` reports, read from the end of the slot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrailerInfo {
    /// The last 16 bytes, hex.
    pub magic: String,
    /// `max_align` implied by the magic; `None` when the magic is not valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_align: Option<u16>,
    /// image_ok byte (0x01 set, 0xff unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_ok: Option<u8>,
    /// copy_done byte.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_done: Option<u8>,
    /// swap_info byte (bits 0-3 swap type, 4-7 image index).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_info: Option<u8>,
    /// swap_size word.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_size: Option<u32>,
    /// Space for the two encrypted content keys (encrypted images; without BOOT_SWAP_SAVE_ENCTLV).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_field_len: Option<u64>,
}

/// Reads trailer fields from the last bytes of a slot, like dumpinfo's `_read_imginfo`.
pub(crate) fn read_trailer(tail: &[u8], encrypted: bool) -> Option<TrailerInfo> {
    let magic: [u8; 16] = tail.get(tail.len().checked_sub(16)?..)?.try_into().ok()?;
    let mut info = TrailerInfo { magic: hex::encode(magic), ..TrailerInfo::default() };
    let max_align = if magic == BOOT_MAGIC {
        8u16
    } else if magic[2..] == BOOT_MAGIC_2 {
        u16::from_le_bytes([magic[0], magic[1]])
    } else {
        return Some(info);
    };
    info.max_align = Some(max_align);
    let m = usize::from(max_align);
    let at = |from_end: usize| tail.len().checked_sub(from_end).and_then(|i| tail.get(i).copied());
    let mut off = 16 + m.saturating_sub(16) + m;
    info.image_ok = at(off);
    off += m;
    info.copy_done = at(off);
    off += m;
    info.swap_info = at(off);
    off += m;
    info.swap_size = tail
        .len()
        .checked_sub(off)
        .and_then(|i| tail.get(i..i + 4))
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if encrypted {
        info.key_field_len = Some(align_up(16, u64::from(max_align.max(1))) * 2);
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn trailer_sizes_match_imgtool_formula() {
        let l = SlotLayout::new(0x20000);
        assert_eq!(l.trailer_size(false), 128 * 3 + 8 * 4 + 16);
        assert_eq!(l.trailer_size(true), 128 * 3 + 32 + 8 * 4 + 16);
        let l = SlotLayout { align: 32, ..SlotLayout::new(0x20000) };
        assert_eq!(l.trailer_size(false), 128 * 3 * 32 + 32 * 4 + 32);
        assert_eq!(&l.magic()[..2], &[32, 0]);
        let l = SlotLayout { overwrite_only: true, ..SlotLayout::new(0x20000) };
        assert_eq!(l.trailer_size(true), 16 + 16);
    }

    #[test]
    fn confirm_sets_image_ok_and_reads_back() {
        for align in [1u8, 8, 16, 32] {
            let layout = SlotLayout { align, ..SlotLayout::new(0x4000) };
            let mut out = Vec::new();
            write_padding(&mut out, &layout, Pad::Confirm, 0x100, false, 0xff).unwrap();
            assert_eq!(out.len() as u64, 0x4000 - 0x100);
            let info = read_trailer(&out, false).unwrap();
            assert_eq!(info.image_ok, Some(1), "align {align}");
            assert_eq!(info.copy_done, Some(0xff));
            assert_eq!(out.iter().filter(|&&b| b == 1).count(), 1);
        }
    }
}
