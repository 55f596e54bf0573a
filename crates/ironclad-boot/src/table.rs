//! The signature table (seed 004's "signature table in protected memory"): the digest of the
//! image each slot is supposed to hold, written only by install and recovery after the image
//! verified and passed anti-rollback, and compared with the slot's recomputed digest at every
//! reset. A validly signed image that reached a slot some other way (a flash programmer, an
//! older release copied back with a forged trailer) does not boot.
//!
//! On a device the table region must be write-protected from the application (an MPU- or
//! TrustZone-protected sector, as the SBM keeps its table); the simulator models it as a region
//! only the engine writes.
//!
//! Power safety comes from two copies, one per sector, as U-Boot's redundant environment: an
//! update erases the older copy and writes the new record with `seq + 1`; a reader takes the
//! valid record with the highest `seq`. A record is valid when its SHA-256 checks, so a torn
//! erase or write leaves the previous record in force.
//!
//! Record, little-endian: `"ICST" | version u8 = 1 | 3 zero | seq u32 | 2 × (flags u32
//! (bit 0: present), generation u32, digest [32]) | SHA-256 of the preceding 92 bytes`.

use aws_lc_rs::digest::{SHA256, digest};

use crate::error::Result;
use crate::flash::{Flash, Region};
use crate::state::Slot;

const MAGIC: [u8; 4] = *b"ICST";
const VERSION: u8 = 1;
const BODY_LEN: usize = 12 + 2 * 40;
pub(crate) const RECORD_LEN: usize = BODY_LEN + 32;

/// One slot's expected image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Install order: each install gets the highest generation so far plus one.
    pub(crate) generation: u32,
    /// The verified SHA-256 of the image (MCUboot's hashed region).
    pub(crate) digest: [u8; 32],
}

/// The table's content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Table {
    /// Sequence number of the record it was read from (0: none).
    pub(crate) seq: u32,
    pub(crate) entries: [Option<Entry>; 2],
    /// Which copy holds the record read (None: neither copy is valid).
    copy: Option<u32>,
}

impl Table {
    pub(crate) fn entry(&self, slot: Slot) -> Option<&Entry> {
        self.entries[slot.index()].as_ref()
    }

    /// The generation the next install gets.
    pub(crate) fn next_generation(&self) -> u32 {
        self.entries.iter().flatten().map(|e| e.generation).max().unwrap_or(0) + 1
    }

    /// True when a valid record was found.
    pub(crate) fn is_valid(&self) -> bool {
        self.copy.is_some()
    }

    fn encode(&self, seq: u32) -> [u8; RECORD_LEN] {
        let mut r = [0u8; RECORD_LEN];
        r[..4].copy_from_slice(&MAGIC);
        r[4] = VERSION;
        r[8..12].copy_from_slice(&seq.to_le_bytes());
        for (i, e) in self.entries.iter().enumerate() {
            let at = 12 + i * 40;
            if let Some(e) = e {
                r[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
                r[at + 4..at + 8].copy_from_slice(&e.generation.to_le_bytes());
                r[at + 8..at + 40].copy_from_slice(&e.digest);
            }
        }
        let sum = digest(&SHA256, &r[..BODY_LEN]);
        r[BODY_LEN..].copy_from_slice(sum.as_ref());
        r
    }

    fn decode(r: &[u8], copy: u32) -> Option<Table> {
        if r.len() < RECORD_LEN || r[..4] != MAGIC || r[4] != VERSION || r[5..8] != [0; 3] {
            return None;
        }
        if digest(&SHA256, &r[..BODY_LEN]).as_ref() != &r[BODY_LEN..RECORD_LEN] {
            return None;
        }
        let u32_at = |at: usize| u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
        let mut entries = [None, None];
        for (i, slot) in entries.iter_mut().enumerate() {
            let at = 12 + i * 40;
            match u32_at(at) {
                0 => {}
                1 => {
                    let mut d = [0u8; 32];
                    d.copy_from_slice(&r[at + 8..at + 40]);
                    *slot = Some(Entry { generation: u32_at(at + 4), digest: d });
                }
                _ => return None,
            }
        }
        Some(Table { seq: u32_at(8), entries, copy: Some(copy) })
    }
}

/// Reads the newest valid record (an empty table when neither copy is valid).
pub(crate) fn read<F: Flash>(flash: &mut F, region: &Region) -> Result<Table> {
    let sector = flash.sector_size();
    let mut best: Option<Table> = None;
    let mut buf = [0u8; RECORD_LEN];
    for copy in 0..2 {
        flash.read(region.offset + copy * sector, &mut buf)?;
        if let Some(t) = Table::decode(&buf, copy)
            && best.is_none_or(|b| t.seq > b.seq)
        {
            best = Some(t);
        }
    }
    Ok(best.unwrap_or_default())
}

/// Writes `table` as the next record into the copy that does not hold the current one: erase,
/// then one write (two flash operations).
pub(crate) fn write<F: Flash>(flash: &mut F, region: &Region, table: &Table) -> Result<()> {
    let geometry = flash.geometry();
    let target = match table.copy {
        Some(c) => 1 - c,
        None => 0,
    };
    let offset = region.offset + target * geometry.sector_size;
    flash.erase(offset / geometry.sector_size)?;
    let mut record = table.encode(table.seq.wrapping_add(1)).to_vec();
    record.resize(geometry.align_up(RECORD_LEN), geometry.erased_value);
    flash.write(offset, &record)
}

/// Records `entry` for `slot`, keeping the other slot's entry (read, erase, write).
#[cfg(test)]
pub(crate) fn set<F: Flash>(flash: &mut F, region: &Region, slot: Slot, entry: Entry) -> Result<()> {
    let mut table = read(flash, region)?;
    table.entries[slot.index()] = Some(entry);
    write(flash, region, &table)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Geometry, SimFlash, Tear};

    #[test]
    fn alternates_copies_and_survives_torn_updates() {
        let g = Geometry::new(1024, 1, 0x00, 4).unwrap();
        let region = Region::new(1024, 2048);
        let mut f = SimFlash::new(g).unwrap();
        assert!(!read(&mut f, &region).unwrap().is_valid());
        let e = |n: u8| Entry { generation: u32::from(n), digest: [n; 32] };
        set(&mut f, &region, Slot::A, e(1)).unwrap();
        set(&mut f, &region, Slot::B, e(2)).unwrap();
        let t = read(&mut f, &region).unwrap();
        assert_eq!((t.seq, t.entries), (2, [Some(e(1)), Some(e(2))]));
        assert_eq!(t.next_generation(), 3);
        for n in 0..2 {
            for tear in Tear::ALL {
                let mut g = f.clone();
                g.cut_power_after(n, tear);
                let done = set(&mut g, &region, Slot::A, e(3)).is_ok();
                g.power_on();
                let t = read(&mut g, &region).unwrap();
                let complete = n == 1 && tear == Tear::Complete;
                assert!(!done);
                let expected = if complete { e(3) } else { e(1) };
                assert_eq!(t.entries, [Some(expected), Some(e(2))], "cut {n} {tear:?}");
            }
        }
    }
}
