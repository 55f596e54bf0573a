//! 188-byte transport packets: header and adaptation-field parsing, and the packet writer.
//!
//! The writer fills packets the way ffmpeg's muxer does (and ISO/IEC 13818-1 asks): as much
//! payload as fits, stuffing only in the last packet of a PES, placed in the adaptation field
//! (`00` for one byte, `len 00 ff..` for more). Parsing records how much of each adaptation field
//! is stuffing, so the original fields (PCR, random-access, discontinuity...) can be written back
//! unchanged while the stuffing is recomputed for the new payload length.

use crate::error::{Error, Result};

/// Transport packet size.
pub(crate) const PACKET: usize = 188;
/// Payload bytes of a packet without adaptation field.
const BODY: usize = PACKET - 4;

/// The parts of a packet header the rewriter needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) pusi: bool,
    pub(crate) priority: bool,
    pub(crate) pid: u16,
    pub(crate) cc: u8,
    pub(crate) has_payload: bool,
    /// Offset of the payload in the packet.
    pub(crate) payload_start: usize,
    /// Adaptation-field content to keep (flags + fields, stuffing excluded), as `5..5 + len`;
    /// 0 when there is none or it is only stuffing.
    pub(crate) af_keep: u8,
    /// Bytes of the packet spent on stuffing (including a stuffing-only field's own bytes).
    pub(crate) stuffing: u8,
    /// Whether the stuffing is in the canonical form the writer produces.
    pub(crate) stuffing_canonical: bool,
}

/// Parses and checks the header and adaptation field of the packet at `offset`.
pub(crate) fn parse(pkt: &[u8], offset: usize) -> Result<Header> {
    let bad = |reason| Error::Ts { offset, reason };
    debug_assert_eq!(pkt.len(), PACKET);
    if pkt[0] != 0x47 {
        return Err(bad("lost sync (no 0x47 sync byte)"));
    }
    if pkt[1] & 0x80 != 0 {
        return Err(bad("transport_error_indicator is set"));
    }
    if pkt[3] & 0xc0 != 0 {
        return Err(Error::TsUnsupported { offset, what: "TS-level scrambling" });
    }
    let afc = (pkt[3] >> 4) & 3;
    if afc == 0 {
        return Err(bad("reserved adaptation_field_control"));
    }
    let mut h = Header {
        pusi: pkt[1] & 0x40 != 0,
        priority: pkt[1] & 0x20 != 0,
        pid: (u16::from(pkt[1] & 0x1f) << 8) | u16::from(pkt[2]),
        cc: pkt[3] & 0x0f,
        has_payload: afc & 1 != 0,
        payload_start: 4,
        af_keep: 0,
        stuffing: 0,
        stuffing_canonical: true,
    };
    if afc & 2 == 0 {
        return Ok(h);
    }
    let af_len = usize::from(pkt[4]);
    if af_len > if h.has_payload { 182 } else { 183 } {
        return Err(bad("adaptation field too long"));
    }
    h.payload_start = 5 + af_len;
    if af_len == 0 {
        h.stuffing = 1;
        return Ok(h);
    }
    let flags = pkt[5];
    let mut used = 1;
    for (bit, len) in [(0x10, 6), (0x08, 6), (0x04, 1)] {
        if flags & bit != 0 {
            used += len;
        }
    }
    for bit in [0x02, 0x01] {
        if flags & bit != 0 {
            let len = *pkt.get(5 + used).ok_or_else(|| bad("adaptation field overruns the packet"))?;
            used += 1 + usize::from(len);
        }
    }
    if used > af_len {
        return Err(bad("adaptation field fields overrun its length"));
    }
    let fill = &pkt[5 + used..5 + af_len];
    if flags == 0 && used == 1 {
        // Only stuffing: `len 00 ff ff ..`, the writer's own form.
        h.stuffing = (af_len + 1) as u8;
    } else {
        h.af_keep = used as u8;
        h.stuffing = (af_len - used) as u8;
    }
    h.stuffing_canonical = fill.iter().all(|&b| b == 0xff);
    Ok(h)
}

/// Payload capacity of a packet whose kept adaptation-field content is `af_len` bytes.
pub(crate) fn capacity(af_len: usize) -> usize {
    if af_len == 0 { BODY } else { BODY - 1 - af_len }
}

/// The header fields of a packet to write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub(crate) pid: u16,
    pub(crate) pusi: bool,
    pub(crate) priority: bool,
    pub(crate) cc: u8,
}

/// Appends one packet: `af` (flags + fields, may be empty) and `payload`, which must be at most
/// `capacity(af.len())` bytes; any room left is stuffed inside the adaptation field.
pub(crate) fn write(out: &mut Vec<u8>, h: Out, af: &[u8], payload: &[u8]) {
    let cap = capacity(af.len());
    debug_assert!(payload.len() <= cap && !payload.is_empty());
    let stuffing = cap - payload.len();
    let has_af = !af.is_empty() || stuffing > 0;
    out.push(0x47);
    out.push((u8::from(h.pusi) << 6) | (u8::from(h.priority) << 5) | (h.pid >> 8) as u8);
    out.push(h.pid as u8);
    out.push(if has_af { 0x30 } else { 0x10 } | (h.cc & 0x0f));
    if !af.is_empty() {
        out.push((af.len() + stuffing) as u8);
        out.extend_from_slice(af);
        out.resize(out.len() + stuffing, 0xff);
    } else if stuffing == 1 {
        out.push(0);
    } else if stuffing > 1 {
        out.push((stuffing - 1) as u8);
        out.push(0);
        out.resize(out.len() + stuffing - 2, 0xff);
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn packet(af: &[u8], payload: &[u8], cc: u8) -> Vec<u8> {
        let mut v = Vec::new();
        write(&mut v, Out { pid: 0x100, pusi: true, priority: false, cc }, af, payload);
        v
    }

    #[test]
    fn writes_and_parses_back() {
        for (af, n) in [(&[][..], 184), (&[][..], 183), (&[][..], 182), (&[][..], 5), (&[0x40][..], 100)] {
            let payload = vec![0xab; n];
            let p = packet(af, &payload, 7);
            assert_eq!(p.len(), PACKET);
            let h = parse(&p, 0).unwrap();
            assert_eq!((h.pid, h.cc, h.pusi), (0x100, 7, true));
            assert_eq!(usize::from(h.af_keep), af.len());
            assert_eq!(&p[h.payload_start..], payload.as_slice());
            assert!(h.stuffing_canonical);
            assert_eq!(usize::from(h.stuffing), capacity(af.len()) - n);
        }
        // PCR + RAI as ffmpeg writes it, followed by stuffing.
        let af = [0x50, 0, 0, 0x7b, 0x0c, 0x7e, 0];
        let p = packet(&af, &[1; 120], 0);
        let h = parse(&p, 0).unwrap();
        assert_eq!(&p[5..5 + usize::from(h.af_keep)], &af);
    }

    #[test]
    fn refuses_bad_packets() {
        let mut p = packet(&[], &[1; 184], 0);
        p[0] = 0x46;
        assert!(parse(&p, 0).is_err());
        let mut p = packet(&[], &[1; 10], 0);
        p[4] = 183; // afc 11 allows at most 182
        assert!(parse(&p, 0).is_err());
        let mut p = packet(&[0x02, 200], &[1; 10], 0); // private data longer than the field
        p[4] = 3;
        assert!(parse(&p, 0).is_err());
    }
}
