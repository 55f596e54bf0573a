//! SAMPLE-AES for AC-3 and E-AC-3 syncframes.
//!
//! Same rule as AAC, but nothing is skipped for a header: the 16-byte clear leader starts at the
//! syncword, then whole 16-byte blocks are CBC-encrypted with the IV reset per syncframe, and the
//! tail stays clear. E-AC-3 applies it to every syncframe (each independent or dependent
//! substream frame), as ffmpeg's `decrypt_sync_frame` does.

use crate::aac::{AudioStats, protected_range};
use crate::cipher::{Direction, SampleAes};
use crate::error::{Error, Result};

const CODEC: &str = "AC-3";

/// AC-3 or E-AC-3, told apart by `bsid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ac3Kind {
    /// `bsid` <= 10: AC-3 (ATSC A/52).
    Ac3,
    /// `bsid` 11..=16: Enhanced AC-3 (ATSC A/52 annex E).
    Eac3,
}

/// A parsed syncframe header: only what framing needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ac3Frame {
    /// AC-3 or E-AC-3.
    pub kind: Ac3Kind,
    /// Syncframe length in bytes.
    pub frame_len: usize,
}

/// Nominal bit rates (kbit/s) indexed by `frmsizecod >> 1` (A/52 table 5.18).
const BITRATES: [u32; 19] =
    [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640];

impl Ac3Frame {
    /// Parses the syncframe header at `buf[0..]`; `offset` is only used in errors.
    pub fn parse(buf: &[u8], offset: usize) -> Result<Self> {
        let bad = |reason| Error::AudioFrame { codec: CODEC, offset, reason };
        if buf.len() < 6 {
            return Err(Error::AudioTruncated { codec: CODEC, offset, needed: 6, available: buf.len() });
        }
        if buf[0] != 0x0b || buf[1] != 0x77 {
            return Err(bad("no AC-3 syncword"));
        }
        let bsid = buf[5] >> 3;
        let (kind, frame_len) = match bsid {
            0..=10 => {
                let fscod = buf[4] >> 6;
                let frmsizecod = usize::from(buf[4] & 0x3f);
                if fscod == 3 {
                    return Err(bad("reserved sample rate code"));
                }
                let Some(&kbps) = BITRATES.get(frmsizecod >> 1) else {
                    return Err(bad("reserved frame size code"));
                };
                // 1536 samples per frame: words = kbps * 96000 / fs; 44.1 kHz rounds down and
                // odd codes add one padding word.
                let words = match fscod {
                    0 => kbps * 2,
                    1 => kbps * 96_000 / 44_100 + (frmsizecod as u32 & 1),
                    _ => kbps * 3,
                };
                (Ac3Kind::Ac3, words as usize * 2)
            }
            11..=16 => {
                let frmsiz = (usize::from(buf[2] & 0x07) << 8) | usize::from(buf[3]);
                (Ac3Kind::Eac3, (frmsiz + 1) * 2)
            }
            _ => return Err(bad("unsupported bsid")),
        };
        if frame_len < 6 {
            return Err(bad("syncframe shorter than its header"));
        }
        if frame_len > buf.len() {
            return Err(Error::AudioTruncated {
                codec: CODEC,
                offset,
                needed: frame_len,
                available: buf.len(),
            });
        }
        Ok(Self { kind, frame_len })
    }
}

/// Iterates the syncframes of `buf` as `(offset, frame)`; frames must be back to back.
pub fn ac3_frames(buf: &[u8]) -> impl Iterator<Item = Result<(usize, Ac3Frame)>> + '_ {
    let mut offset = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || offset >= buf.len() {
            return None;
        }
        match Ac3Frame::parse(&buf[offset..], offset) {
            Ok(f) => {
                let at = offset;
                offset += f.frame_len;
                Some(Ok((at, f)))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

impl SampleAes {
    /// Encrypts AC-3 / E-AC-3 syncframes in place; on error nothing has been changed.
    pub fn encrypt_ac3(&self, buf: &mut [u8]) -> Result<AudioStats> {
        self.ac3_pass(Direction::Encrypt, buf)
    }

    /// Decrypts SAMPLE-AES AC-3 / E-AC-3 syncframes in place.
    pub fn decrypt_ac3(&self, buf: &mut [u8]) -> Result<AudioStats> {
        self.ac3_pass(Direction::Decrypt, buf)
    }

    fn ac3_pass(&self, dir: Direction, buf: &mut [u8]) -> Result<AudioStats> {
        for frame in ac3_frames(buf) {
            frame?;
        }
        let mut stats = AudioStats::default();
        let mut offset = 0;
        while offset < buf.len() {
            let f = Ac3Frame::parse(&buf[offset..], offset)?;
            let range = protected_range(0, f.frame_len);
            stats.frames += 1;
            if !range.is_empty() {
                stats.protected += 1;
                self.cbc_from_iv(dir, &mut buf[offset + range.start..offset + range.end])?;
            }
            offset += f.frame_len;
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ac3_frame(fscod: u8, frmsizecod: u8, len: usize) -> Vec<u8> {
        let mut f = vec![0x0b, 0x77, 0xab, 0xcd, (fscod << 6) | frmsizecod, 8 << 3, 0x40];
        f.extend((f.len()..len).map(|i| (i * 7) as u8));
        f
    }

    fn eac3_frame(len: usize) -> Vec<u8> {
        let frmsiz = len / 2 - 1;
        let mut f = vec![0x0b, 0x77, (frmsiz >> 8) as u8 & 7, frmsiz as u8, 0x3f, 16 << 3];
        f.extend((f.len()..len).map(|i| (i * 13) as u8));
        f
    }

    #[test]
    fn frame_sizes() {
        // 48 kHz 192 kbit/s: 384 words; 44.1 kHz 40 kbit/s: 87/88 words; 32 kHz 640: 1920 words.
        assert_eq!(Ac3Frame::parse(&ac3_frame(0, 20, 768), 0).unwrap().frame_len, 768);
        assert_eq!(Ac3Frame::parse(&ac3_frame(1, 2, 174), 0).unwrap().frame_len, 174);
        assert_eq!(Ac3Frame::parse(&ac3_frame(1, 3, 176), 0).unwrap().frame_len, 176);
        assert_eq!(Ac3Frame::parse(&ac3_frame(1, 37, 2788), 0).unwrap().frame_len, 2788);
        assert_eq!(Ac3Frame::parse(&ac3_frame(2, 37, 3840), 0).unwrap().frame_len, 3840);
        let e = Ac3Frame::parse(&eac3_frame(512), 0).unwrap();
        assert_eq!((e.kind, e.frame_len), (Ac3Kind::Eac3, 512));
    }

    #[test]
    fn leader_counts_from_syncword_and_roundtrips() {
        let aes = SampleAes::new(&[1; 16], [2; 16]).unwrap();
        let clear = [ac3_frame(0, 20, 768), eac3_frame(100), eac3_frame(30)].concat();
        let mut buf = clear.clone();
        let stats = aes.encrypt_ac3(&mut buf).unwrap();
        assert_eq!(stats, AudioStats { frames: 3, protected: 2 });
        assert_eq!(&buf[..16], &clear[..16]);
        assert_ne!(&buf[16..32], &clear[16..32]);
        // 768 = 16 + 47*16 + 0: no tail. 100 = 16 + 5*16 + 4: 4-byte tail.
        assert_eq!(&buf[768 + 96..868], &clear[768 + 96..868]);
        assert_eq!(&buf[868..], &clear[868..], "30-byte frame stays clear");
        aes.decrypt_ac3(&mut buf).unwrap();
        assert_eq!(buf, clear);
    }

    #[test]
    fn garbled_refused() {
        let aes = SampleAes::new(&[1; 16], [2; 16]).unwrap();
        let mut f = ac3_frame(3, 20, 768);
        assert!(aes.encrypt_ac3(&mut f).is_err());
        let mut f = ac3_frame(0, 40, 768);
        assert!(aes.encrypt_ac3(&mut f).is_err());
        let mut f = ac3_frame(0, 20, 700);
        assert!(matches!(aes.encrypt_ac3(&mut f), Err(Error::AudioTruncated { .. })));
    }
}
