//! SAMPLE-AES for H.264 Annex-B byte streams (Apple, "MPEG-2 Stream Encryption Format for HTTP
//! Live Streaming", listing 2-1), with the emulation-prevention convention the decoders use.
//!
//! For each NAL unit of type 1 or 5 whose length L (EBSP, as in the stream) exceeds 48 bytes:
//! the first 32 bytes stay clear; then, from offset p = 32, a 16-byte block is encrypted if more
//! than 16 bytes remain (L - p > 16) and min(144, remaining) bytes are skipped, repeatedly. So
//! blocks start at 32 + 160k and at least one clear byte always follows the last one. The CBC
//! chain runs across the encrypted blocks of one NAL and restarts from the IV at every NAL.
//! After encryption, emulation prevention is applied again over the *whole* NAL (leader
//! included), and only for NALs that were encrypted. Every other byte is copied unchanged.
//!
//! Decryption strips one layer of EPBs from NALs of type 1/5 whose *escaped* length exceeds 48
//! (exactly ffmpeg's `remove_scep_3_bytes`), decrypts the same pattern and does not re-escape,
//! which restores the original EBSP byte for byte.
//!
//! Two details keep the round trip exact for any input: a NAL never ends in `00` (trailing zeros
//! belong to the gap before the next start code), so the escaper's "append 03 after a final 00"
//! rule never fires; and the last byte of a protected NAL is always clear, so escaping cannot
//! create a start code across the NAL's end. One interop caveat: ffmpeg counts all but one of
//! the `trailing_zero_8bits` before a start code as part of the NAL, so a protected NAL followed
//! by two or more zero bytes can be mis-decrypted by ffmpeg; x264 and camera encoders do not
//! emit them.

use crate::cipher::{BLOCK, Direction, SampleAes};
use crate::error::Result;
use crate::nal::{self, NalUnit};

/// Clear bytes at the start of a protected NAL (header byte + 31).
const LEADER: usize = 32;
/// Distance between encrypted blocks: 16 encrypted + 144 clear.
const PERIOD: usize = 160;
/// NALs of this length or shorter are never encrypted.
const MIN_PROTECTED_LEN: usize = 48;

/// What one H.264 pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct H264Stats {
    /// NAL units seen.
    pub nal_units: usize,
    /// NAL units encrypted or decrypted.
    pub protected: usize,
}

/// Whether SAMPLE-AES protects this NAL: type 1 or 5 and longer than 48 bytes.
fn is_protected(unit: &NalUnit) -> bool {
    matches!(unit.nal_type, 1 | 5) && unit.len() > MIN_PROTECTED_LEN
}

/// Number of encrypted blocks in a protected NAL of `len` bytes: blocks start at 32 + 160k
/// while more than 16 bytes remain from that offset.
pub(crate) fn pattern_blocks(len: usize) -> usize {
    if len > LEADER + BLOCK { (len - LEADER - BLOCK - 1) / PERIOD + 1 } else { 0 }
}

impl SampleAes {
    /// Encrypts an Annex-B byte stream, appending the result to `out` (nothing is appended on
    /// error). Non-protected NALs, start codes and zero bytes are copied unchanged.
    pub fn encrypt_h264(&self, annexb: &[u8], out: &mut Vec<u8>) -> Result<H264Stats> {
        self.h264_pass(Direction::Encrypt, annexb, out)
    }

    /// Decrypts an Annex-B byte stream produced by [`encrypt_h264`](Self::encrypt_h264) (or any
    /// conforming SAMPLE-AES encoder), appending the clear stream to `out`.
    pub fn decrypt_h264(&self, annexb: &[u8], out: &mut Vec<u8>) -> Result<H264Stats> {
        self.h264_pass(Direction::Decrypt, annexb, out)
    }

    fn h264_pass(&self, dir: Direction, input: &[u8], out: &mut Vec<u8>) -> Result<H264Stats> {
        let mark = out.len();
        let result = self.h264_pass_inner(dir, input, out);
        if result.is_err() {
            out.truncate(mark);
        }
        result
    }

    fn h264_pass_inner(&self, dir: Direction, input: &[u8], out: &mut Vec<u8>) -> Result<H264Stats> {
        out.reserve(input.len() + input.len() / 256 + 16);
        let mut stats = H264Stats::default();
        let mut copied = 0;
        for unit in nal::nal_units(input)? {
            let unit = unit?;
            stats.nal_units += 1;
            if !is_protected(&unit) {
                continue;
            }
            stats.protected += 1;
            out.extend_from_slice(&input[copied..unit.start]);
            let nal = &input[unit.start..unit.end];
            let at = out.len();
            match dir {
                Direction::Encrypt => {
                    out.extend_from_slice(nal);
                    self.nal_pattern(dir, &mut out[at..])?;
                    nal::escape_in_place(out, at);
                }
                Direction::Decrypt => {
                    nal::unescape_into(nal, out);
                    self.nal_pattern(dir, &mut out[at..])?;
                }
            }
            copied = unit.end;
        }
        out.extend_from_slice(&input[copied..]);
        Ok(stats)
    }

    /// Encrypts or decrypts, in place, the 1:9 pattern of one unescaped NAL.
    fn nal_pattern(&self, dir: Direction, nal: &mut [u8]) -> Result<()> {
        let count = pattern_blocks(nal.len());
        self.cbc_scattered(dir, nal, count, |k| LEADER + k * PERIOD)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const KEY: [u8; 16] = [7; 16];
    const IV: [u8; 16] = [0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];

    fn aes() -> SampleAes {
        SampleAes::new(&KEY, IV).unwrap()
    }

    /// A NAL of `len` bytes with header `header` and no zero bytes (so no EPBs needed).
    fn nal(header: u8, len: usize) -> Vec<u8> {
        let mut v = vec![header];
        v.extend((1..len).map(|i| (i % 251) as u8 + 1));
        v
    }

    fn stream(nals: &[Vec<u8>]) -> Vec<u8> {
        nals.iter().flat_map(|n| [&[0u8, 0, 0, 1][..], n].concat()).collect()
    }

    fn enc(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        aes().encrypt_h264(input, &mut out).unwrap();
        out
    }

    fn dec(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        aes().decrypt_h264(input, &mut out).unwrap();
        out
    }

    /// Independent check of one block: AES-CBC of the block alone from the IV.
    fn first_block_cipher(plain: &[u8]) -> Vec<u8> {
        let mut b = plain[32..48].to_vec();
        aes().cbc_from_iv(Direction::Encrypt, &mut b).unwrap();
        b
    }

    #[test]
    fn pattern_block_counts() {
        assert_eq!(pattern_blocks(48), 0);
        assert_eq!(pattern_blocks(49), 1);
        assert_eq!(pattern_blocks(208), 1); // 16 left at offset 192: clear
        assert_eq!(pattern_blocks(209), 2);
        assert_eq!(pattern_blocks(368), 2);
        assert_eq!(pattern_blocks(369), 3);
    }

    #[test]
    fn short_and_non_vcl_nals_are_untouched() {
        let s = stream(&[nal(0x67, 200), nal(0x68, 60), nal(0x06, 300), nal(0x65, 48), nal(0x41, 10)]);
        let mut out = Vec::new();
        let stats = aes().encrypt_h264(&s, &mut out).unwrap();
        assert_eq!(out, s);
        assert_eq!(stats, H264Stats { nal_units: 5, protected: 0 });
    }

    #[test]
    fn forty_nine_bytes_encrypts_one_block() {
        let n = nal(0x41, 49);
        let s = stream(std::slice::from_ref(&n));
        let e = enc(&s);
        assert_eq!(e.len(), s.len(), "no zeros, no EPBs expected");
        assert_eq!(&e[..4 + 32], &s[..4 + 32]);
        // Escaping could change the length for unlucky ciphertext; with this key it does not.
        assert_eq!(&e[4 + 32..4 + 48], first_block_cipher(&n).as_slice());
        assert_eq!(e[4 + 48], n[48]);
        assert_eq!(dec(&e), s);
    }

    #[test]
    fn exactly_sixteen_left_stays_clear() {
        // 208 bytes: block at 32, skip 144 -> offset 192 with exactly 16 bytes left: clear.
        let n = nal(0x65, 208);
        let e = enc(&stream(std::slice::from_ref(&n)));
        let body = &e[4..];
        assert_eq!(body.len(), 208);
        assert_ne!(&body[32..48], &n[32..48]);
        assert_eq!(&body[48..], &n[48..], "the 144 run and the final 16 bytes stay clear");
        // One byte more and the block at 192 is encrypted (chained from the first block).
        let n = nal(0x65, 209);
        let e = enc(&stream(std::slice::from_ref(&n)));
        assert_ne!(&e[4 + 192..4 + 208], &n[192..208]);
        assert_eq!(e[4 + 208], n[208]);
        let mut chained = [n[32..48].to_vec(), n[192..208].to_vec()].concat();
        aes().cbc_from_iv(Direction::Encrypt, &mut chained).unwrap();
        assert_eq!(&e[4 + 192..4 + 208], &chained[16..]);
    }

    #[test]
    fn iv_resets_per_nal() {
        let n = nal(0x41, 100);
        let e = enc(&stream(&[n.clone(), n.clone()]));
        let half = e.len() / 2;
        assert_eq!(e[..half], e[half..]);
    }

    #[test]
    fn epbs_inside_the_leader_are_escaped_again() {
        // 00 00 03 inside the clear leader must become 00 00 03 03.
        let mut n = nal(0x41, 120);
        n[10..14].copy_from_slice(&[0, 0, 3, 1]);
        let s = stream(std::slice::from_ref(&n));
        let e = enc(&s);
        assert_eq!(&e[4 + 10..4 + 15], &[0, 0, 3, 3, 1]);
        assert!(e.len() > s.len());
        assert_eq!(dec(&e), s);
        // The same NAL, too short to encrypt, is copied as is (no outer escaping).
        let short = n[..48].to_vec();
        let s = stream(&[short]);
        assert_eq!(enc(&s), s);
    }

    #[test]
    fn three_and_four_byte_start_codes_and_trailing_zeros() {
        let mut s = vec![0, 0, 0, 0, 1];
        s.extend(nal(0x65, 500));
        s.extend([0, 0, 1]);
        s.extend(nal(0x41, 300));
        s.extend([0, 0, 0, 0, 0, 1]); // trailing_zero_8bits before a 4-byte start code
        s.extend(nal(0x41, 77));
        s.extend([0, 0, 0]); // trailing zeros at the end of the stream
        let mut out = Vec::new();
        let stats = aes().encrypt_h264(&s, &mut out).unwrap();
        assert_eq!(stats, H264Stats { nal_units: 3, protected: 3 });
        assert!(out.ends_with(&[0, 0, 0]));
        assert_eq!(dec(&out), s);
    }

    #[test]
    fn garbled_input_is_refused_and_out_untouched() {
        let aes = aes();
        let mut out = vec![1, 2, 3];
        assert!(aes.encrypt_h264(&[9, 9, 0, 0, 1, 0x41], &mut out).is_err());
        let mut s = stream(&[nal(0x41, 100)]);
        s.extend([0, 0, 1]); // truncated: a start code with nothing after it
        assert!(aes.encrypt_h264(&s, &mut out).is_err());
        assert!(aes.decrypt_h264(&s, &mut out).is_err());
        assert_eq!(out, [1, 2, 3]);
    }
}
