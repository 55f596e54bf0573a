//! First pass over a segment: check packets, follow PAT/PMT, reassemble and rewrite PES.
//!
//! Nothing is written to the caller's output here, and the stream state (PSI, input counters)
//! is restored by the caller on error, so a refused segment leaves no trace.

use crate::aac::{AdtsHeader, AudioStats};
use crate::cipher::Direction;
use crate::error::{Error, Result};
use crate::ts::packet::{self, PACKET};
use crate::ts::pmt::{self, Codec};
use crate::ts::{Ac3Policy, Item, NONE, Open, PesRec, Rewriter, SegmentStats};

impl Rewriter {
    /// Reads `seg` into the scratch items and arena; PMT replacements are prepared too.
    pub(super) fn demux(&mut self, seg: &[u8]) -> Result<SegmentStats> {
        if !seg.len().is_multiple_of(PACKET) {
            return Err(Error::TsLength { len: seg.len() });
        }
        if seg.len() > self.limits.max_segment_len {
            return Err(Error::TooLarge {
                what: "TS segment",
                len: seg.len(),
                max: self.limits.max_segment_len,
            });
        }
        let s = &mut self.scratch;
        s.items.clear();
        s.pes.clear();
        s.open.clear();
        s.arena.clear();
        s.pmt_in.clear();
        s.pmt_out.clear();
        let mut stats = SegmentStats { canonical: true, ..SegmentStats::default() };

        for (n, pkt) in seg.chunks_exact(PACKET).enumerate() {
            let offset = n * PACKET;
            let h = packet::parse(pkt, offset)?;
            stats.packets_in += 1;
            if h.has_payload && (h.pid == 0 || self.psi.pmt_pids.contains(&h.pid)) {
                let sec = pmt::section(pkt, h.payload_start, h.pusi, offset)?;
                let body = &pkt[sec.0..sec.0 + sec.1];
                if h.pid == 0 {
                    if body[0] != 0x00 {
                        return Err(Error::Ts { offset, reason: "PID 0 carries a table other than the PAT" });
                    }
                    self.psi.pmt_pids = pmt::pat_pmt_pids(body).collect();
                    self.scratch.items.push(Item::Raw);
                } else {
                    self.learn_pmt(body, offset)?;
                    let idx = self.scratch.pmt_in.len() as u32;
                    self.scratch.pmt_in.push((n, sec));
                    self.scratch.items.push(Item::Pmt { idx });
                }
                continue;
            }
            let Some(&codec) = self.psi.codecs.get(&h.pid) else {
                self.scratch.items.push(Item::Raw);
                continue;
            };
            let pid = usize::from(h.pid);
            if !h.has_payload {
                self.scratch.items.push(Item::AfOnly { pid: h.pid });
                continue;
            }
            let expected = self.cont.next_in[pid];
            if expected != NONE && expected != h.cc {
                stats.canonical = false;
            }
            self.cont.next_in[pid] = (h.cc + 1) & 0x0f;
            if !h.stuffing_canonical {
                stats.canonical = false;
            }

            if h.pusi {
                if let Some(open) = self.scratch.open.remove(&h.pid) {
                    self.finish(h.pid, open, &mut stats)?;
                }
                let pes = self.scratch.pes.len() as u32;
                self.scratch.pes.push(PesRec {
                    pid: h.pid,
                    offset,
                    slots: 0,
                    start: 0,
                    end: 0,
                    cursor: 0,
                    seen: 0,
                });
                self.scratch.open.insert(h.pid, Open { pes, codec, stuffed: false });
                self.scratch.bufs.entry(h.pid).or_default().clear();
            }
            let Some(open) = self.scratch.open.get_mut(&h.pid) else {
                return Err(Error::Ts {
                    offset,
                    reason: "PES continuation without its start (PES begun in an earlier segment?)",
                });
            };
            if open.stuffed {
                stats.canonical = false;
            }
            open.stuffed = h.stuffing > 0;
            let rec = &mut self.scratch.pes[open.pes as usize];
            rec.slots += 1;
            let buf = self.scratch.bufs.entry(h.pid).or_default();
            buf.extend_from_slice(&pkt[h.payload_start..]);
            if buf.len() > self.limits.max_pes_len {
                return Err(Error::TooLarge {
                    what: "PES packet",
                    len: buf.len(),
                    max: self.limits.max_pes_len,
                });
            }
            self.scratch.items.push(Item::Pes { pes: open.pes, af_keep: h.af_keep, priority: h.priority });
        }
        while let Some((pid, open)) = self.scratch.open.pop_first() {
            self.finish(pid, open, &mut stats)?;
        }
        self.rewrite_pmts(seg)?;
        Ok(stats)
    }

    /// Updates which PIDs are rewritten from a PMT section.
    fn learn_pmt(&mut self, sec: &[u8], offset: usize) -> Result<()> {
        for (es, _) in pmt::pmt_streams(sec, offset)? {
            let codec = match self.dir {
                Direction::Encrypt => {
                    if pmt::encrypted(es.stream_type).is_some() {
                        return Err(Error::AlreadyEncrypted { pid: es.pid, stream_type: es.stream_type });
                    }
                    pmt::encryptable(es.stream_type, self.ac3 == Ac3Policy::Encrypt)
                }
                Direction::Decrypt => pmt::encrypted(es.stream_type),
            };
            match codec {
                Some(c) => self.psi.codecs.insert(es.pid, c),
                None => self.psi.codecs.remove(&es.pid),
            };
        }
        Ok(())
    }

    /// Rewrites a complete PES into the arena.
    fn finish(&mut self, pid: u16, open: Open, stats: &mut SegmentStats) -> Result<()> {
        let codec = open.codec;
        let s = &mut self.scratch;
        let data = s.bufs.get(&pid).map_or(&[][..], Vec::as_slice);
        let rec = &mut s.pes[open.pes as usize];
        let start = s.arena.len();
        let wrap = |e: Error| Error::Pes { pid, offset: rec.offset, inner: Box::new(e) };
        let pes_err = |reason| wrap(Error::Ts { offset: rec.offset, reason });
        if data.len() < 9 || data[..3] != [0, 0, 1] {
            return Err(pes_err("PES packet does not start with 00 00 01 and a full header"));
        }
        if matches!(data[3], 0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff) {
            return Err(wrap(Error::TsUnsupported {
                offset: rec.offset,
                what: "PES stream_id without header",
            }));
        }
        let pes_len = usize::from(u16::from_be_bytes([data[4], data[5]]));
        if pes_len != 0 && pes_len + 6 != data.len() {
            return Err(pes_err("PES_packet_length does not match the PES carried (truncated segment?)"));
        }
        let header_len = 9 + usize::from(data[8]);
        if header_len > data.len() {
            return Err(pes_err("PES header longer than the PES"));
        }
        s.arena.extend_from_slice(&data[..header_len]);
        let es = &data[header_len..];
        let cipher = &self.cipher;
        let dir = self.dir;
        match codec {
            Codec::H264 => {
                let h = match dir {
                    Direction::Encrypt => cipher.encrypt_h264(es, &mut s.arena),
                    Direction::Decrypt => cipher.decrypt_h264(es, &mut s.arena),
                }
                .map_err(wrap)?;
                stats.nal_units_protected += h.protected;
            }
            Codec::Aac | Codec::Ac3 => {
                let at = s.arena.len();
                s.arena.extend_from_slice(es);
                let frames = &mut s.arena[at..];
                let a: AudioStats = match (codec, dir) {
                    (Codec::Aac, Direction::Encrypt) => cipher.encrypt_adts(frames),
                    (Codec::Aac, Direction::Decrypt) => cipher.decrypt_adts(frames),
                    (_, Direction::Encrypt) => cipher.encrypt_ac3(frames),
                    (_, Direction::Decrypt) => cipher.decrypt_ac3(frames),
                }
                .map_err(wrap)?;
                stats.audio_frames_protected += a.protected;
                if codec == Codec::Aac && !es.is_empty() && !self.psi.asc.contains_key(&pid) {
                    let h = AdtsHeader::parse(es, 0).map_err(wrap)?;
                    self.psi.asc.insert(pid, h.audio_specific_config());
                }
            }
        }
        if pes_len != 0 {
            let new_len = s.arena.len() - start - 6;
            let field = u16::try_from(new_len).unwrap_or_else(|_| {
                stats.canonical = false;
                0
            });
            s.arena[start + 4..start + 6].copy_from_slice(&field.to_be_bytes());
        }
        rec.start = start;
        rec.end = s.arena.len();
        stats.pes += 1;
        Ok(())
    }

    /// Prepares the rewritten PMT packets (AAC setup information is known by now).
    fn rewrite_pmts(&mut self, seg: &[u8]) -> Result<()> {
        let how = match self.dir {
            Direction::Encrypt => pmt::Rewrite::Encrypt { ac3: self.ac3 == Ac3Policy::Encrypt },
            Direction::Decrypt => pmt::Rewrite::Decrypt,
        };
        for &(n, sec) in &self.scratch.pmt_in {
            let offset = n * PACKET;
            let pkt = &seg[offset..offset + PACKET];
            let asc = |pid| self.psi.asc.get(&pid).copied();
            self.scratch.pmt_out.push(pmt::rewrite(pkt, sec, how, asc, offset)?);
        }
        Ok(())
    }
}
