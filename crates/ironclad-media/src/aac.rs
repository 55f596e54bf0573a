//! SAMPLE-AES for AAC in ADTS framing.
//!
//! Per ADTS frame: the header (7 bytes, 9 with CRC) and the next 16 bytes stay clear, then every
//! whole 16-byte block is AES-128-CBC encrypted with the IV reset for the frame, and the 0..15
//! byte tail stays clear. A frame with fewer than 32 bytes after its header has no whole block
//! after the leader and stays clear (ffmpeg: `length - header > 31`). No emulation prevention:
//! the frame length is unchanged, so encryption works in place.

use crate::cipher::{BLOCK, Direction, SampleAes};
use crate::error::{Error, Result};

const CODEC: &str = "ADTS";
/// Clear bytes after the header.
const LEADER: usize = 16;

/// The fields of an ADTS header that SAMPLE-AES and the Apple PMT need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// 7, or 9 when a CRC follows the fixed header.
    pub header_len: usize,
    /// Whole frame, header included.
    pub frame_len: usize,
    /// ADTS `profile` (audio object type minus one: 1 = AAC-LC).
    pub profile: u8,
    /// `sampling_frequency_index` (3 = 48 kHz).
    pub sampling_frequency_index: u8,
    /// `channel_configuration`.
    pub channel_configuration: u8,
}

impl AdtsHeader {
    /// Parses the header of the frame at `buf[0..]`; `offset` is only used in errors.
    pub fn parse(buf: &[u8], offset: usize) -> Result<Self> {
        let bad = |reason| Error::AudioFrame { codec: CODEC, offset, reason };
        if buf.len() < 7 {
            return Err(Error::AudioTruncated { codec: CODEC, offset, needed: 7, available: buf.len() });
        }
        if buf[0] != 0xff || buf[1] & 0xf0 != 0xf0 {
            return Err(bad("no ADTS sync word"));
        }
        if buf[1] & 0x06 != 0 {
            return Err(bad("layer is not 0"));
        }
        let header_len = if buf[1] & 1 == 1 { 7 } else { 9 };
        let sampling_frequency_index = (buf[2] >> 2) & 0x0f;
        if sampling_frequency_index > 12 {
            return Err(bad("reserved sampling frequency index"));
        }
        let frame_len =
            (usize::from(buf[3] & 0x03) << 11) | (usize::from(buf[4]) << 3) | usize::from(buf[5] >> 5);
        if frame_len < header_len {
            return Err(bad("frame length shorter than its header"));
        }
        if frame_len > buf.len() {
            return Err(Error::AudioTruncated {
                codec: CODEC,
                offset,
                needed: frame_len,
                available: buf.len(),
            });
        }
        Ok(Self {
            header_len,
            frame_len,
            profile: buf[2] >> 6,
            sampling_frequency_index,
            channel_configuration: ((buf[2] & 1) << 2) | (buf[3] >> 6),
        })
    }

    /// The 2-byte AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) this header describes, as the
    /// Apple `apad` descriptor carries it: object type, frequency index, channels, no extensions.
    pub fn audio_specific_config(&self) -> [u8; 2] {
        let aot = self.profile + 1;
        let sfi = self.sampling_frequency_index;
        [(aot << 3) | (sfi >> 1), ((sfi & 1) << 7) | (self.channel_configuration << 3)]
    }

    /// The encrypted byte range of this frame, relative to its start (empty when it stays clear).
    fn protected_range(&self) -> std::ops::Range<usize> {
        protected_range(self.header_len, self.frame_len)
    }
}

/// Header + 16 clear, then whole blocks: the shared rule of AAC and AC-3 (header 0).
pub(crate) fn protected_range(header_len: usize, frame_len: usize) -> std::ops::Range<usize> {
    let body = frame_len - header_len;
    if body < LEADER + BLOCK {
        return 0..0;
    }
    let blocks = (body - LEADER) / BLOCK;
    let start = header_len + LEADER;
    start..start + blocks * BLOCK
}

/// What one audio pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AudioStats {
    /// Frames seen.
    pub frames: usize,
    /// Frames encrypted or decrypted (the others were too short).
    pub protected: usize,
}

/// Iterates the ADTS frames of `buf` as `(offset, header)`; frames must be back to back.
pub fn adts_frames(buf: &[u8]) -> impl Iterator<Item = Result<(usize, AdtsHeader)>> + '_ {
    let mut offset = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || offset >= buf.len() {
            return None;
        }
        match AdtsHeader::parse(&buf[offset..], offset) {
            Ok(h) => {
                let at = offset;
                offset += h.frame_len;
                Some(Ok((at, h)))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

impl SampleAes {
    /// Encrypts a sequence of ADTS frames in place. The whole buffer is parsed first, so on error
    /// nothing has been changed.
    pub fn encrypt_adts(&self, buf: &mut [u8]) -> Result<AudioStats> {
        self.adts_pass(Direction::Encrypt, buf)
    }

    /// Decrypts a sequence of SAMPLE-AES ADTS frames in place (headers are never encrypted).
    pub fn decrypt_adts(&self, buf: &mut [u8]) -> Result<AudioStats> {
        self.adts_pass(Direction::Decrypt, buf)
    }

    fn adts_pass(&self, dir: Direction, buf: &mut [u8]) -> Result<AudioStats> {
        for frame in adts_frames(buf) {
            frame?;
        }
        let mut stats = AudioStats::default();
        let mut offset = 0;
        while offset < buf.len() {
            let h = AdtsHeader::parse(&buf[offset..], offset)?;
            let range = h.protected_range();
            stats.frames += 1;
            if !range.is_empty() {
                stats.protected += 1;
                self.cbc_from_iv(dir, &mut buf[offset + range.start..offset + range.end])?;
            }
            offset += h.frame_len;
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// An ADTS frame (AAC-LC, 48 kHz, stereo) with `payload` bytes after the header.
    fn adts_frame(payload: usize, crc: bool, fill: u8) -> Vec<u8> {
        let hlen = if crc { 9 } else { 7 };
        let len = hlen + payload;
        let mut f = vec![
            0xff,
            if crc { 0xf0 } else { 0xf1 },
            (1 << 6) | (3 << 2),
            (2 << 6) | ((len >> 11) as u8 & 3),
            (len >> 3) as u8,
            ((len as u8 & 7) << 5) | 0x1f,
            0xfc,
        ];
        if crc {
            f.extend([0x12, 0x34]);
        }
        f.extend((0..payload).map(|i| fill.wrapping_add(i as u8)));
        f
    }

    fn aes() -> SampleAes {
        SampleAes::new(&[3; 16], [9; 16]).unwrap()
    }

    #[test]
    fn header_fields_and_asc() {
        let f = adts_frame(100, false, 0);
        let h = AdtsHeader::parse(&f, 0).unwrap();
        assert_eq!((h.header_len, h.frame_len, h.profile), (7, 107, 1));
        assert_eq!(h.audio_specific_config(), [0x11, 0x90]);
        let h = AdtsHeader::parse(&adts_frame(10, true, 0), 0).unwrap();
        assert_eq!((h.header_len, h.frame_len), (9, 19));
    }

    #[test]
    fn leader_blocks_and_tail() {
        for crc in [false, true] {
            let hlen = if crc { 9 } else { 7 };
            // 31 bytes after the header: clear. 32: one block. 16+16*3+5: three blocks, 5 tail.
            for (payload, blocks) in [(31, 0), (32, 1), (47, 1), (69, 3)] {
                let clear = adts_frame(payload, crc, 0x40);
                let mut f = clear.clone();
                let stats = aes().encrypt_adts(&mut f).unwrap();
                assert_eq!(stats.protected, usize::from(blocks > 0));
                let enc_end = hlen + 16 + blocks * 16;
                assert_eq!(&f[..hlen + 16], &clear[..hlen + 16]);
                assert_eq!(&f[enc_end..], &clear[enc_end..]);
                let mut expect = clear[hlen + 16..enc_end].to_vec();
                aes().cbc_from_iv(Direction::Encrypt, &mut expect).unwrap();
                assert_eq!(&f[hlen + 16..enc_end], expect.as_slice());
                aes().decrypt_adts(&mut f).unwrap();
                assert_eq!(f, clear);
            }
        }
    }

    #[test]
    fn iv_resets_per_frame() {
        let one = adts_frame(200, false, 1);
        let mut two = [one.clone(), one.clone()].concat();
        aes().encrypt_adts(&mut two).unwrap();
        assert_eq!(two[..207], two[207..]);
    }

    #[test]
    fn truncated_and_garbled_are_refused_unchanged() {
        let mut s = [adts_frame(100, false, 0), adts_frame(100, false, 0)].concat();
        let clear = s.clone();
        s.truncate(200);
        assert!(matches!(aes().encrypt_adts(&mut s), Err(Error::AudioTruncated { offset: 107, .. })));
        assert_eq!(s, clear[..200]);
        let mut g = clear.clone();
        g[107] = 0x12;
        assert!(matches!(aes().encrypt_adts(&mut g), Err(Error::AudioFrame { offset: 107, .. })));
        assert_eq!(g[..107], clear[..107]);
        let mut tiny = adts_frame(0, false, 0);
        tiny[4] = 0; // frame length 0
        tiny[5] &= 0x1f;
        assert!(aes().encrypt_adts(&mut tiny).is_err());
    }
}
