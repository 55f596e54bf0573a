//! PAT/PMT reading and the Apple SAMPLE-AES PMT (HLS Sample Encryption §3).
//!
//! Encryption changes stream types 0x1b → 0xdb (H.264) and 0x0f → 0xcf (ADTS AAC) and puts, in
//! front of each stream's own descriptors, a private_data_indicator descriptor (`0x0f`, 'zavc' /
//! 'aacd') and, for AAC, the 'apad' registration descriptor carrying the audio setup information
//! ('zaac', priming 0, version 1, AudioSpecificConfig). When asked, AC-3 0x81 → 0xc1 ('ac3d')
//! and E-AC-3 0x87 → 0xc2 ('ec3d'), without setup information. Decryption maps the types back and removes
//! exactly those descriptors, so the original section — and its CRC — come back byte for byte.
//! The PMT must fit in one TS packet, before and after.

use crate::error::{Error, Result};
use crate::ts::packet::PACKET;

/// The elementary-stream codecs the rewriter encrypts or decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    H264,
    Aac,
    Ac3,
}

/// Clear stream type, SAMPLE-AES stream type, codec, private_data_indicator.
const TYPES: [(u8, u8, Codec, &[u8; 4]); 4] = [
    (0x1b, 0xdb, Codec::H264, b"zavc"),
    (0x0f, 0xcf, Codec::Aac, b"aacd"),
    (0x81, 0xc1, Codec::Ac3, b"ac3d"),
    (0x87, 0xc2, Codec::Ac3, b"ec3d"),
];

/// The codec the encryptor rewrites for a clear stream type: H.264 and AAC always, AC-3 and
/// E-AC-3 only when asked (see [`Ac3Policy`](crate::ts::Ac3Policy)).
pub(crate) fn encryptable(stream_type: u8, ac3: bool) -> Option<Codec> {
    TYPES.iter().find(|t| t.0 == stream_type && (ac3 || t.2 != Codec::Ac3)).map(|t| t.2)
}

/// The codec of a SAMPLE-AES stream type.
pub(crate) fn encrypted(stream_type: u8) -> Option<Codec> {
    TYPES.iter().find(|t| t.1 == stream_type).map(|t| t.2)
}

/// MPEG-2 CRC-32 (polynomial 0x04c11db7, initial all ones, no reflection, no final XOR).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

/// The PSI section in a packet: `(section start in the packet, section length incl. CRC)`.
/// Sections must start in this packet and end in it, and their CRC must hold.
pub(crate) fn section(pkt: &[u8], payload_start: usize, pusi: bool, offset: usize) -> Result<(usize, usize)> {
    if !pusi {
        return Err(Error::TsUnsupported { offset, what: "PSI section spanning TS packets" });
    }
    let pointer = usize::from(*pkt.get(payload_start).unwrap_or(&0));
    let start = payload_start + 1 + pointer;
    if start + 3 > PACKET {
        return Err(Error::Ts { offset, reason: "PSI pointer_field beyond the packet" });
    }
    let len = 3 + ((usize::from(pkt[start + 1] & 0x0f) << 8) | usize::from(pkt[start + 2]));
    if start + len > PACKET {
        return Err(Error::TsUnsupported { offset, what: "PSI section spanning TS packets" });
    }
    if len < 12 || crc32(&pkt[start..start + len]) != 0 {
        return Err(Error::Ts { offset, reason: "PSI section too short or bad CRC" });
    }
    Ok((start, len))
}

/// PMT PIDs listed in a PAT section.
pub(crate) fn pat_pmt_pids(sec: &[u8]) -> impl Iterator<Item = u16> + '_ {
    sec[8..sec.len() - 4].chunks_exact(4).filter_map(|e| {
        let program = u16::from_be_bytes([e[0], e[1]]);
        (program != 0).then_some(u16::from_be_bytes([e[2], e[3]]) & 0x1fff)
    })
}

/// One elementary stream entry of a PMT.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EsEntry {
    pub(crate) stream_type: u8,
    pub(crate) pid: u16,
    /// The entry's 5 bytes as found (reserved bits are written back unchanged).
    raw: [u8; 5],
}

/// The elementary-stream loop of a PMT section: `(entry, descriptors)` pairs.
pub(crate) fn pmt_streams(sec: &[u8], offset: usize) -> Result<Vec<(EsEntry, &[u8])>> {
    let bad = || Error::Ts { offset, reason: "malformed PMT" };
    if sec[0] != 0x02 {
        return Err(bad());
    }
    let end = sec.len() - 4;
    let info_len = (usize::from(sec[10] & 0x0f) << 8) | usize::from(sec[11]);
    let mut at = 12 + info_len;
    let mut out = Vec::new();
    while at < end {
        if at + 5 > end {
            return Err(bad());
        }
        let es_len = (usize::from(sec[at + 3] & 0x0f) << 8) | usize::from(sec[at + 4]);
        let descriptors =
            sec.get(at + 5..at + 5 + es_len).filter(|_| at + 5 + es_len <= end).ok_or_else(bad)?;
        let pid = u16::from_be_bytes([sec[at + 1], sec[at + 2]]) & 0x1fff;
        let raw = [sec[at], sec[at + 1], sec[at + 2], sec[at + 3], sec[at + 4]];
        out.push((EsEntry { stream_type: sec[at], pid, raw }, descriptors));
        at += 5 + es_len;
    }
    if at != end {
        return Err(bad());
    }
    Ok(out)
}

/// The Apple descriptors put in front of a stream's own when encrypting.
fn apple_descriptors(codec: Codec, indicator: &[u8; 4], asc: Option<[u8; 2]>, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x0f, 4]);
    out.extend_from_slice(indicator);
    if let (Codec::Aac, Some(asc)) = (codec, asc) {
        // registration_descriptor: 'apad', then audio_setup_information.
        out.extend_from_slice(&[0x05, 4 + 8 + 2]);
        out.extend_from_slice(b"apad");
        out.extend_from_slice(b"zaac");
        out.extend_from_slice(&[0, 0, 1, 2]); // priming 0, version 1, setup_data_length 2
        out.extend_from_slice(&asc);
    }
}

/// Whether a descriptor is one the encryptor adds (so the decryptor removes it).
fn is_apple_descriptor(d: &[u8]) -> bool {
    match d {
        [0x0f, 4, tag @ ..] => TYPES.iter().any(|t| t.3 == tag),
        [0x05, _, b'a', b'p', b'a', b'd', ..] => true,
        _ => false,
    }
}

/// How a PMT is rewritten.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rewrite {
    /// To SAMPLE-AES; `ac3`: AC-3/E-AC-3 streams too.
    Encrypt { ac3: bool },
    /// Back to the clear stream types.
    Decrypt,
}

/// Rewrites the PMT in `pkt` (section at `start..start + len`); `asc` gives the
/// AudioSpecificConfig of an AAC PID, when known. Returns the new packet.
pub(crate) fn rewrite(
    pkt: &[u8],
    (start, len): (usize, usize),
    how: Rewrite,
    asc: impl Fn(u16) -> Option<[u8; 2]>,
    offset: usize,
) -> Result<[u8; PACKET]> {
    let sec = &pkt[start..start + len];
    if pkt[start + len..].iter().any(|&b| b != 0xff) {
        return Err(Error::TsUnsupported { offset, what: "data after the PMT section in its packet" });
    }
    let streams = pmt_streams(sec, offset)?;
    let info_end = 12 + ((usize::from(sec[10] & 0x0f) << 8) | usize::from(sec[11]));
    let mut new = Vec::with_capacity(PACKET);
    new.extend_from_slice(&sec[..info_end]);
    for (es, descriptors) in streams {
        let mut stream_type = es.stream_type;
        let mut desc = Vec::new();
        if let Rewrite::Encrypt { ac3 } = how {
            if encrypted(stream_type).is_some() {
                return Err(Error::AlreadyEncrypted { pid: es.pid, stream_type });
            }
            if let Some(t) = TYPES.iter().find(|t| t.0 == stream_type && encryptable(t.0, ac3).is_some()) {
                stream_type = t.1;
                apple_descriptors(t.2, t.3, asc(es.pid), &mut desc);
            }
            desc.extend_from_slice(descriptors);
        } else if let Some(t) = TYPES.iter().find(|t| t.1 == stream_type) {
            stream_type = t.0;
            let mut rest = descriptors;
            while let [_, l, ..] = rest {
                let d_len = (2 + usize::from(*l)).min(rest.len());
                if !is_apple_descriptor(&rest[..d_len]) {
                    desc.extend_from_slice(&rest[..d_len]);
                }
                rest = &rest[d_len..];
            }
            desc.extend_from_slice(rest);
        } else {
            desc.extend_from_slice(descriptors);
        }
        new.extend_from_slice(&[stream_type, es.raw[1], es.raw[2]]);
        new.extend_from_slice(&[(es.raw[3] & 0xf0) | (desc.len() >> 8) as u8 & 0x0f, desc.len() as u8]);
        new.extend_from_slice(&desc);
    }
    let section_length = new.len() + 4 - 3;
    if start + section_length + 3 > PACKET || section_length > 1021 {
        return Err(Error::TsUnsupported { offset, what: "PMT no longer fits in one TS packet" });
    }
    new[1] = (new[1] & 0xf0) | (section_length >> 8) as u8;
    new[2] = section_length as u8;
    let crc = crc32(&new);
    new.extend_from_slice(&crc.to_be_bytes());

    let mut out = [0xffu8; PACKET];
    out[..start].copy_from_slice(&pkt[..start]);
    out[start..start + new.len()].copy_from_slice(&new);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// ffmpeg's PMT for H.264 on 0x100 and AAC on 0x101 (program 1, PCR on 0x100).
    fn ffmpeg_pmt() -> [u8; PACKET] {
        let mut sec = vec![
            0x02, 0xb0, 0x17, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0,
            0x00,
        ];
        sec.extend([0x0f, 0xe1, 0x01, 0xf0, 0x00]);
        let crc = crc32(&sec);
        sec.extend(crc.to_be_bytes());
        let mut p = [0xffu8; PACKET];
        p[..5].copy_from_slice(&[0x47, 0x50, 0x00, 0x10, 0x00]);
        p[5..5 + sec.len()].copy_from_slice(&sec);
        p
    }

    #[test]
    fn crc_of_known_pmt() {
        // From an ffmpeg 5.1 segment: PAT for program 1 on PMT PID 0x1000.
        let pat =
            [0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04, 0xb2];
        assert_eq!(crc32(&pat), 0);
        assert_eq!(pat_pmt_pids(&pat).collect::<Vec<_>>(), [0x1000]);
    }

    #[test]
    fn apple_pmt_and_back() {
        let clear = ffmpeg_pmt();
        let sec = section(&clear, 4, true, 0).unwrap();
        let how = Rewrite::Encrypt { ac3: false };
        let enc = rewrite(&clear, sec, how, |pid| (pid == 0x101).then_some([0x11, 0x90]), 0).unwrap();
        let esec = section(&enc, 4, true, 0).unwrap();
        let streams = pmt_streams(&enc[esec.0..esec.0 + esec.1], 0).unwrap();
        assert_eq!(streams[0].0.stream_type, 0xdb);
        assert_eq!(streams[0].1, b"\x0f\x04zavc");
        assert_eq!(streams[1].0.stream_type, 0xcf);
        assert_eq!(streams[1].1, b"\x0f\x04aacd\x05\x0eapadzaac\x00\x00\x01\x02\x11\x90");
        let back = rewrite(&enc, esec, Rewrite::Decrypt, |_| None, 0).unwrap();
        assert_eq!(back, clear);
        // Encrypting twice is refused.
        assert!(matches!(rewrite(&enc, esec, how, |_| None, 0), Err(Error::AlreadyEncrypted { .. })));
    }

    #[test]
    fn bad_crc_refused() {
        let mut p = ffmpeg_pmt();
        p[20] ^= 1;
        assert!(section(&p, 4, true, 0).is_err());
        assert!(section(&p, 4, false, 0).is_err());
    }
}
