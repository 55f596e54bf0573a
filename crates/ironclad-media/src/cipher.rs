//! The SAMPLE-AES cipher: one AES-128 key schedule per direction and the playlist IV.
//!
//! SAMPLE-AES is AES-128-CBC without padding whose IV is reset to the same value at the start of
//! every protected block (NAL unit or audio frame). For H.264 the encrypted 16-byte blocks are
//! scattered (1 in 10), so they are gathered into a small stack buffer, run through one CBC call
//! and scattered back: the chain then runs across the encrypted blocks of one NAL exactly as the
//! decoders (ffmpeg, AOSP, hls.js) expect.

use aws_lc_rs::cipher::{
    AES_128, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;

use crate::error::{Error, Result};

/// AES block size.
pub(crate) const BLOCK: usize = 16;
/// Blocks gathered per CBC call: 64 blocks = 1 KiB of stack, enough to amortise the call.
const CHUNK_BLOCKS: usize = 64;

/// Which way a pass goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Clear to SAMPLE-AES.
    Encrypt,
    /// SAMPLE-AES to clear.
    Decrypt,
}

/// An AES-128 key and the stream IV, ready for SAMPLE-AES in both directions.
///
/// The key bytes are only borrowed while the key schedules are built; aws-lc zeroes the schedules
/// on drop. `Debug` shows neither key nor IV.
pub struct SampleAes {
    enc: EncryptingKey,
    dec: DecryptingKey,
    iv: [u8; 16],
}

impl std::fmt::Debug for SampleAes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleAes").field("alg", &"AES-128-CBC").finish_non_exhaustive()
    }
}

impl SampleAes {
    /// Prepares `key` with `iv`, the IV from the playlist's `EXT-X-KEY` (or the media sequence
    /// number as a 128-bit big-endian integer when the playlist gives none).
    pub fn new(key: &[u8; 16], iv: [u8; 16]) -> Result<Self> {
        let unbound = || UnboundCipherKey::new(&AES_128, key).map_err(|_| Error::Crypto);
        let enc = EncryptingKey::cbc(unbound()?).map_err(|_| Error::Crypto)?;
        let dec = DecryptingKey::cbc(unbound()?).map_err(|_| Error::Crypto)?;
        Ok(Self { enc, dec, iv })
    }

    /// The IV every protected block starts from.
    pub fn iv(&self) -> [u8; 16] {
        self.iv
    }

    /// CBC over whole blocks in place; `chain` is the IV on entry and the last ciphertext block
    /// on return, so consecutive calls continue one chain.
    pub(crate) fn cbc(&self, dir: Direction, blocks: &mut [u8], chain: &mut [u8; 16]) -> Result<()> {
        debug_assert_eq!(blocks.len() % BLOCK, 0);
        let Some(last_start) = blocks.len().checked_sub(BLOCK) else { return Ok(()) };
        match dir {
            Direction::Encrypt => {
                self.enc
                    .less_safe_encrypt(blocks, EncryptionContext::Iv128(FixedLength::from(*chain)))
                    .map_err(|_| Error::Crypto)?;
                chain.copy_from_slice(&blocks[last_start..]);
            }
            Direction::Decrypt => {
                let mut next = [0u8; 16];
                next.copy_from_slice(&blocks[last_start..]);
                self.dec
                    .decrypt(blocks, DecryptionContext::Iv128(FixedLength::from(*chain)))
                    .map_err(|_| Error::Crypto)?;
                *chain = next;
            }
        }
        Ok(())
    }

    /// One protected audio block: `blocks` (a multiple of 16 bytes) with the IV reset.
    pub(crate) fn cbc_from_iv(&self, dir: Direction, blocks: &mut [u8]) -> Result<()> {
        let mut chain = self.iv;
        self.cbc(dir, blocks, &mut chain)
    }

    /// CBC over the 16-byte blocks of `data` that start at `pos(0)..pos(count)`, chained in that
    /// order from the IV. Blocks are gathered into a stack buffer so aws-lc sees contiguous input.
    pub(crate) fn cbc_scattered(
        &self,
        dir: Direction,
        data: &mut [u8],
        count: usize,
        pos: impl Fn(usize) -> usize,
    ) -> Result<()> {
        let mut chain = self.iv;
        let mut buf = [0u8; CHUNK_BLOCKS * BLOCK];
        let mut done = 0;
        while done < count {
            let n = (count - done).min(CHUNK_BLOCKS);
            for i in 0..n {
                let p = pos(done + i);
                buf[i * BLOCK..(i + 1) * BLOCK].copy_from_slice(&data[p..p + BLOCK]);
            }
            self.cbc(dir, &mut buf[..n * BLOCK], &mut chain)?;
            for i in 0..n {
                let p = pos(done + i);
                data[p..p + BLOCK].copy_from_slice(&buf[i * BLOCK..(i + 1) * BLOCK]);
            }
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// NIST SP 800-38A F.2.1 (CBC-AES128.Encrypt), first two blocks.
    #[test]
    fn cbc_matches_sp800_38a() {
        let key: [u8; 16] = *b"\x2b\x7e\x15\x16\x28\xae\xd2\xa6\xab\xf7\x15\x88\x09\xcf\x4f\x3c";
        let iv: [u8; 16] = core::array::from_fn(|i| i as u8);
        let aes = SampleAes::new(&key, iv).unwrap();
        let mut data = hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        aes.cbc_from_iv(Direction::Encrypt, &mut data).unwrap();
        assert_eq!(data, hex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"));
        // Split into two calls: the chain carries over.
        let mut a = hex("6bc1bee22e409f96e93d7e117393172a");
        let mut b = hex("ae2d8a571e03ac9c9eb76fac45af8e51");
        let mut chain = iv;
        aes.cbc(Direction::Encrypt, &mut a, &mut chain).unwrap();
        aes.cbc(Direction::Encrypt, &mut b, &mut chain).unwrap();
        assert_eq!([a, b].concat(), hex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"));
        aes.cbc_from_iv(Direction::Decrypt, &mut data).unwrap();
        assert_eq!(data, hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"));
        assert_eq!(format!("{aes:?}"), "SampleAes { alg: \"AES-128-CBC\", .. }");
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}
