//! H.264 Annex-B byte streams: NAL unit boundaries and emulation prevention.
//!
//! A NAL unit runs from the byte after a `00 00 01` start code to the next start code, minus any
//! trailing zero bytes (`trailing_zero_8bits`, and the leading zero of a 4-byte start code). The
//! bytes are the EBSP, as in the stream: emulation prevention bytes (EPBs) included. Scanning uses
//! `memchr::memmem`, so the cost is close to one read of the input.

use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::error::{Error, Result};

static START_CODE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\x00\x00\x01"));
static ZERO_PAIR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\x00\x00"));
static EPB: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\x00\x00\x03"));

/// One NAL unit of an Annex-B stream, as offsets into that stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NalUnit {
    /// Offset of the NAL header byte (just after the start code).
    pub start: usize,
    /// End offset (exclusive), trailing zero bytes excluded.
    pub end: usize,
    /// `nal_unit_type` (low 5 bits of the header byte).
    pub nal_type: u8,
}

impl NalUnit {
    /// Length in bytes as in the stream (escaped).
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Never true: empty NAL units are refused while splitting.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Iterator over the NAL units of an Annex-B byte stream; see [`nal_units`].
#[derive(Debug, Clone)]
pub struct NalUnits<'a> {
    data: &'a [u8],
    /// Offset of the next `00 00 01`, if any.
    next_start_code: Option<usize>,
}

/// Splits an Annex-B byte stream into NAL units.
///
/// The stream must begin with optional zero bytes and a start code; an empty stream has no units.
/// Each item is an error if the unit is empty (two start codes in a row, or a start code at the
/// very end) or has `forbidden_zero_bit` set.
pub fn nal_units(data: &[u8]) -> Result<NalUnits<'_>> {
    if data.is_empty() {
        return Ok(NalUnits { data, next_start_code: None });
    }
    let first = START_CODE.find(data);
    let leading = first.unwrap_or(data.len());
    if let Some(offset) = data[..leading].iter().position(|&b| b != 0) {
        return Err(Error::NoStartCode { offset });
    }
    match first {
        Some(sc) => Ok(NalUnits { data, next_start_code: Some(sc) }),
        None => Err(Error::NoStartCode { offset: data.len() }),
    }
}

impl Iterator for NalUnits<'_> {
    type Item = Result<NalUnit>;

    fn next(&mut self) -> Option<Self::Item> {
        let sc = self.next_start_code.take()?;
        let start = sc + 3;
        let following = START_CODE.find(&self.data[start..]).map(|i| i + start);
        let mut end = following.unwrap_or(self.data.len());
        while end > start && self.data[end - 1] == 0 {
            end -= 1;
        }
        if end == start {
            return Some(Err(Error::EmptyNal { offset: sc }));
        }
        let header = self.data[start];
        if header & 0x80 != 0 {
            return Some(Err(Error::ForbiddenBit { offset: start }));
        }
        self.next_start_code = following;
        Some(Ok(NalUnit { start, end, nal_type: header & 0x1f }))
    }
}

/// Applies emulation prevention in place to `buf[from..]`: inserts `03` after every `00 00` that
/// is followed by a byte `<= 03`, and appends `03` if the data ends in `00` (H.264 7.4.1).
///
/// Insertions are rare, so the data is first searched for `00 00` pairs and only then shifted,
/// once, from the back.
pub(crate) fn escape_in_place(buf: &mut Vec<u8>, from: usize) {
    let mut inline = [0usize; 32];
    let mut spill: Vec<usize> = Vec::new();
    let mut count = 0usize;
    let mut record = |at: usize| {
        if count < inline.len() {
            inline[count] = at;
        } else {
            if spill.is_empty() {
                spill.extend_from_slice(&inline);
            }
            spill.push(at);
        }
        count += 1;
    };

    let data = &buf[from..];
    let n = data.len();
    let mut pos = 0;
    let mut ends_escaped = false;
    while let Some(j) = ZERO_PAIR.find(&data[pos..]).map(|j| j + pos) {
        let mut i = j + 2;
        let mut zeros = 2u8;
        loop {
            if i == n {
                // Ends in zero(s): a final 03 keeps them out of the next start code.
                record(n);
                ends_escaped = true;
                break;
            }
            let b = data[i];
            if zeros >= 2 && b <= 3 {
                record(i);
                zeros = 0;
            }
            i += 1;
            if b == 0 {
                zeros += 1;
            } else {
                break;
            }
        }
        pos = i;
        if ends_escaped {
            break;
        }
    }
    if !ends_escaped && data.last() == Some(&0) {
        record(n);
    }
    if count == 0 {
        return;
    }
    let positions: &[usize] = if count <= inline.len() { &inline[..count] } else { &spill };
    let old_len = buf.len();
    buf.resize(old_len + count, 0);
    let mut src_end = old_len;
    for (k, &at) in positions.iter().enumerate().rev() {
        let at = from + at;
        buf.copy_within(at..src_end, at + k + 1);
        buf[at + k] = 3;
        src_end = at;
    }
}

/// Appends `src` to `out` with one layer of emulation prevention removed, exactly as ffmpeg's
/// `remove_scep_3_bytes`: the `03` of `00 00 03` is dropped only when at least one byte follows.
pub(crate) fn unescape_into(src: &[u8], out: &mut Vec<u8>) {
    let mut copied = 0;
    let mut search = 0;
    while let Some(j) = EPB.find(&src[search..]).map(|j| j + search) {
        if j + 3 >= src.len() {
            break;
        }
        out.extend_from_slice(&src[copied..j + 2]);
        copied = j + 3;
        search = j + 3;
    }
    out.extend_from_slice(&src[copied..]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn escape(data: &[u8]) -> Vec<u8> {
        let mut v = vec![0xaa];
        v.extend_from_slice(data);
        escape_in_place(&mut v, 1);
        v.remove(0);
        v
    }

    fn unescape(data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        unescape_into(data, &mut v);
        v
    }

    /// Byte-at-a-time reference for the escaper.
    fn escape_ref(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut zeros = 0;
        for &b in data {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            out.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
        if out.last() == Some(&0) {
            out.push(3);
        }
        out
    }

    #[test]
    fn escape_cases() {
        assert_eq!(escape(&[1, 0, 0, 1, 2]), [1, 0, 0, 3, 1, 2]);
        assert_eq!(escape(&[0, 0, 0, 0, 0, 0, 9]), [0, 0, 3, 0, 0, 3, 0, 0, 9]);
        assert_eq!(escape(&[0, 0, 3, 7]), [0, 0, 3, 3, 7]);
        assert_eq!(escape(&[5, 0, 0, 4]), [5, 0, 0, 4]);
        assert_eq!(escape(&[5, 0]), [5, 0, 3]);
        assert_eq!(escape(&[5, 0, 0]), [5, 0, 0, 3]);
        assert_eq!(escape(&[]), [] as [u8; 0]);
        // Existing EPBs in the leader are escaped again: 00 00 03 -> 00 00 03 03.
        assert_eq!(unescape(&escape(&[9, 0, 0, 3, 1, 8])), [9, 0, 0, 3, 1, 8]);
    }

    #[test]
    fn escape_matches_reference_on_zero_heavy_data() {
        // Deterministic pseudo-random bytes from {0,1,2,3,4,0xff}, many of them zero.
        let mut x = 0x1234_5678u32;
        for len in 0..400 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    [0, 0, 0, 1, 2, 3, 4, 0xff][(x % 8) as usize]
                })
                .collect();
            let e = escape(&data);
            assert_eq!(e, escape_ref(&data), "len {len}");
            assert!(START_CODE.find(&e).is_none());
            if data.last() != Some(&0) {
                assert_eq!(unescape(&e), data);
            }
        }
    }

    #[test]
    fn unescape_keeps_final_epb_like_ffmpeg() {
        assert_eq!(unescape(&[1, 0, 0, 3]), [1, 0, 0, 3]);
        assert_eq!(unescape(&[1, 0, 0, 3, 0]), [1, 0, 0, 0]);
        assert_eq!(unescape(&[0, 0, 3, 0, 0, 3, 1]), [0, 0, 0, 0, 1]);
    }

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let s = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 9, 9, 0, 0];
        let units: Vec<_> = nal_units(&s).unwrap().map(Result::unwrap).collect();
        assert_eq!(
            units,
            [
                NalUnit { start: 4, end: 7, nal_type: 7 },
                NalUnit { start: 10, end: 12, nal_type: 8 },
                NalUnit { start: 17, end: 20, nal_type: 5 },
            ]
        );
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(nal_units(&[0, 0, 2, 0, 0, 1, 9]), Err(Error::NoStartCode { offset: 2 })));
        assert!(matches!(nal_units(&[0, 0, 0]), Err(Error::NoStartCode { .. })));
        assert!(nal_units(&[]).unwrap().next().is_none());
        let mut it = nal_units(&[0, 0, 1, 0x41, 0, 0, 1]).unwrap();
        assert!(it.next().unwrap().is_ok());
        assert!(matches!(it.next(), Some(Err(Error::EmptyNal { offset: 4 }))));
        let mut it = nal_units(&[0, 0, 1, 0xc1, 5]).unwrap();
        assert!(matches!(it.next(), Some(Err(Error::ForbiddenBit { offset: 3 }))));
    }
}
