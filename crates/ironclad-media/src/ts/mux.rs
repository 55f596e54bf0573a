//! Second pass: write the items back in input order, re-packetizing the rewritten PES.
//!
//! Slot `k` of a PES gets the `k`-th packet of the rewritten PES with slot `k`'s adaptation-field
//! content; if the PES grew, the extra packets follow its last slot; if it shrank (decryption),
//! the unused trailing slots disappear. That makes the layout a pure function of the original's,
//! which is what lets decryption give back the original packets. This pass cannot fail.

use crate::ts::packet::{self, PACKET};
use crate::ts::{Item, NONE, Rewriter, SegmentStats};

impl Rewriter {
    /// Appends the rewritten segment to `out`; `stats` comes from the demux pass.
    pub(super) fn mux(&mut self, seg: &[u8], out: &mut Vec<u8>, mut stats: SegmentStats) -> SegmentStats {
        let before = out.len();
        let s = &mut self.scratch;
        out.reserve(seg.len() + s.arena.len().saturating_sub(seg.len() * 184 / PACKET) + 16 * PACKET);
        for (n, item) in s.items.iter().enumerate() {
            let pkt = &seg[n * PACKET..(n + 1) * PACKET];
            match *item {
                Item::Raw => out.extend_from_slice(pkt),
                Item::Pmt { idx } => out.extend_from_slice(&s.pmt_out[idx as usize]),
                Item::AfOnly { pid } => {
                    out.extend_from_slice(pkt);
                    let next = self.cont.next_out[usize::from(pid)];
                    if next != NONE {
                        // No payload: the counter repeats the previous packet's.
                        let at = out.len() - PACKET + 3;
                        out[at] = (out[at] & 0xf0) | (next.wrapping_sub(1) & 0x0f);
                    }
                }
                Item::Pes { pes, af_keep, priority } => {
                    let rec = &mut s.pes[pes as usize];
                    let next = &mut self.cont.next_out[usize::from(rec.pid)];
                    if *next == NONE {
                        *next = pkt[3] & 0x0f;
                    }
                    let data = &s.arena[rec.start..rec.end];
                    if rec.cursor < data.len() {
                        let af = &pkt[5..5 + usize::from(af_keep)];
                        rec.cursor +=
                            put(out, rec.pid, rec.cursor == 0, priority, next, af, &data[rec.cursor..]);
                    }
                    rec.seen += 1;
                    if rec.seen == rec.slots {
                        while rec.cursor < data.len() {
                            rec.cursor +=
                                put(out, rec.pid, rec.cursor == 0, false, next, &[], &data[rec.cursor..]);
                        }
                    }
                }
            }
        }
        stats.packets_out = (out.len() - before) / PACKET;
        stats
    }
}

/// Writes one packet of `rest` with adaptation-field content `af`; returns the payload used.
fn put(
    out: &mut Vec<u8>,
    pid: u16,
    pusi: bool,
    priority: bool,
    cc: &mut u8,
    af: &[u8],
    rest: &[u8],
) -> usize {
    let take = rest.len().min(packet::capacity(af.len()));
    packet::write(out, packet::Out { pid, pusi, priority, cc: *cc }, af, &rest[..take]);
    *cc = (*cc + 1) & 0x0f;
    take
}
