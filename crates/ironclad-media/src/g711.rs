//! Whole-frame encryption of G.711 (A-law or µ-law) audio frames: ironclad's own rule.
//!
//! SAMPLE-AES does not cover G.711 and no player decrypts it, so ironclad defines the rule and
//! publishes test vectors (`testdata/g711-ctr-vectors.txt`). It is length-preserving, has no
//! partial-block case (a 10 ms or 30 ms frame works like a 20 ms one) and can be decrypted with any
//! standard AES-CTR implementation (`openssl enc -aes-128-ctr`, Python `cryptography`'s `CTR`).
//!
//! # The rule
//!
//! Given the 16-byte AES-128 key `K`, a 16-byte stream IV `S` and the frame index `i` (a `u64`
//! that the sender increments for every frame of the stream, starting anywhere):
//!
//! 1. Initial counter block: `ICB(i) = S XOR (BE64(i) || 00 00 00 00 00 00 00 00)`, i.e. the
//!    index, big-endian, is XORed into the **first** 8 bytes of the IV.
//! 2. The frame is encrypted with AES-128-CTR from `ICB(i)`: keystream block `j` is
//!    `AES_K(ICB(i) + j mod 2^128)`, the counter being the whole block as a big-endian integer
//!    (NIST SP 800-38A, as OpenSSL and every CTR library do it).
//! 3. Ciphertext = plaintext XOR keystream, truncated to the frame length. Decryption is the same.
//!
//! Why the first bytes and not the last: putting the index where the counter increments
//! (`S XOR i` in the low bytes) makes frame `i`'s counter blocks overlap frame `i + 1`'s, which
//! reuses keystream. With the index in the high half, two different frames of one stream never
//! share a counter block (a carry out of the low 64 bits leaves a low half below `S`'s, which no
//! uncarried block has), so no keystream is ever reused within a stream.
//!
//! # Requirements on the caller
//!
//! - Never reuse a (key, stream IV) pair for two streams: use a fresh random IV per stream (or a
//!   per-stream key). CTR leaks the XOR of two plaintexts that share keystream.
//! - Never repeat a frame index within a stream.
//! - Do not use the SAMPLE-AES key/IV pair of the same stream: CBC outputs `AES_K(P XOR IV)`,
//!   which equals CTR keystream `AES_K(ICB)` whenever a plaintext block makes them coincide.
//! - CTR gives confidentiality only; integrity comes from the transport (TLS, SRTP's tag).

use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;

use crate::error::{Error, Result};

/// AES-128-CTR keyed for one G.711 stream; see the module docs for the exact rule.
pub struct G711Cipher {
    key: EncryptingKey,
    stream_iv: [u8; 16],
}

impl std::fmt::Debug for G711Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("G711Cipher").field("alg", &"AES-128-CTR").finish_non_exhaustive()
    }
}

impl G711Cipher {
    /// Prepares `key` for the stream whose IV is `stream_iv`.
    pub fn new(key: &[u8; 16], stream_iv: [u8; 16]) -> Result<Self> {
        let unbound = UnboundCipherKey::new(&AES_128, key).map_err(|_| Error::Crypto)?;
        let key = EncryptingKey::ctr(unbound).map_err(|_| Error::Crypto)?;
        Ok(Self { key, stream_iv })
    }

    /// `ICB(i)`: the stream IV with the big-endian frame index XORed into its first 8 bytes.
    pub fn counter_block(&self, frame_index: u64) -> [u8; 16] {
        let mut icb = self.stream_iv;
        for (b, x) in icb[..8].iter_mut().zip(frame_index.to_be_bytes()) {
            *b ^= x;
        }
        icb
    }

    /// Encrypts one frame in place (any length, including not a multiple of 16).
    pub fn encrypt_frame(&self, frame_index: u64, frame: &mut [u8]) -> Result<()> {
        if frame.is_empty() {
            return Ok(());
        }
        let icb = FixedLength::from(self.counter_block(frame_index));
        self.key.less_safe_encrypt(frame, EncryptionContext::Iv128(icb)).map_err(|_| Error::Crypto)?;
        Ok(())
    }

    /// Decrypts one frame in place (CTR: the same operation as encryption).
    pub fn decrypt_frame(&self, frame_index: u64, frame: &mut [u8]) -> Result<()> {
        self.encrypt_frame(frame_index, frame)
    }

    /// Encrypts (or decrypts) a buffer of back-to-back frames of `frame_len` bytes (the last one
    /// may be shorter), numbering them from `first_index`. Returns the next frame index.
    pub fn apply_frames(&self, first_index: u64, frame_len: usize, buf: &mut [u8]) -> Result<u64> {
        if frame_len == 0 {
            return Err(Error::AudioFrame { codec: "G.711", offset: 0, reason: "frame length 0" });
        }
        let mut index = first_index;
        for frame in buf.chunks_mut(frame_len) {
            self.encrypt_frame(index, frame)?;
            index = index.wrapping_add(1);
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn counter_block_layout() {
        let c = G711Cipher::new(&[0; 16], [0xff; 16]).unwrap();
        let icb = c.counter_block(0x0102_0304_0506_0708);
        assert_eq!(icb[..8], [0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7]);
        assert_eq!(icb[8..], [0xff; 8]);
        assert_eq!(format!("{c:?}"), "G711Cipher { alg: \"AES-128-CTR\", .. }");
    }

    #[test]
    fn length_preserving_and_frame_dependent() {
        let c = G711Cipher::new(&[5; 16], [6; 16]).unwrap();
        let clear = vec![0xd5u8; 160];
        let mut a = clear.clone();
        let mut b = clear.clone();
        c.encrypt_frame(0, &mut a).unwrap();
        c.encrypt_frame(1, &mut b).unwrap();
        assert_ne!(a, b);
        // No shared keystream between neighbours (the low-bytes XOR rule would share 9 blocks).
        for i in 0..10 {
            for j in 0..10 {
                assert_ne!(a[i * 16..i * 16 + 16], b[j * 16..j * 16 + 16]);
            }
        }
        c.decrypt_frame(0, &mut a).unwrap();
        assert_eq!(a, clear);
        let mut odd = vec![0x55u8; 37];
        c.encrypt_frame(7, &mut odd).unwrap();
        assert_eq!(odd.len(), 37);
        c.decrypt_frame(7, &mut odd).unwrap();
        assert_eq!(odd, [0x55; 37]);
    }

    #[test]
    fn apply_frames_numbers_consecutively() {
        let c = G711Cipher::new(&[5; 16], [6; 16]).unwrap();
        let mut buf = vec![0xd5u8; 400];
        assert_eq!(c.apply_frames(10, 160, &mut buf).unwrap(), 13);
        let mut one = vec![0xd5u8; 160];
        c.encrypt_frame(11, &mut one).unwrap();
        assert_eq!(buf[160..320], one);
        assert!(c.apply_frames(0, 0, &mut buf).is_err());
    }
}
