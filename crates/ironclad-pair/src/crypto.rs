//! Randomness, long-term Ed25519 keys (software or in a secure element), and the HAP uses of
//! aws-lc-rs: HKDF-SHA512, ChaCha20-Poly1305 with `PS-/PV-Msg0x` nonces, X25519 ephemerals.

use std::fmt;

use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::hkdf::{HKDF_SHA512, Salt};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair};
use ironclad_se::{KeyAlgorithm, KeyHandle, SignInput};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Bytes of an Ed25519 or X25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of a Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;

/// Where random bytes come from. The caller owns it, so tests can be deterministic.
pub trait RandomSource {
    fn fill(&mut self, out: &mut [u8]) -> Result<()>;
}

/// The operating system's generator through aws-lc-rs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl RandomSource for SystemRandom {
    fn fill(&mut self, out: &mut [u8]) -> Result<()> {
        aws_lc_rs::rand::fill(out).map_err(|_| Error::Random)
    }
}

pub(crate) fn random<const N: usize>(rng: &mut dyn RandomSource) -> Result<Zeroizing<[u8; N]>> {
    let mut out = Zeroizing::new([0u8; N]);
    rng.fill(&mut out[..])?;
    Ok(out)
}

/// A long-term Ed25519 signing key (HAP's LTSK). On a device this is [`SeLongTermKey`], so the
/// private key never leaves the secure element.
pub trait LongTermKey: Send + Sync + fmt::Debug {
    /// The long-term public key (LTPK).
    fn public_key(&self) -> [u8; PUBLIC_KEY_LEN];
    /// An Ed25519 signature over `message`.
    fn sign(&self, message: &[u8]) -> Result<[u8; SIGNATURE_LEN]>;
}

/// An Ed25519 key inside an ironclad secure element, signing through [`KeyHandle::sign`].
#[derive(Clone, Debug)]
pub struct SeLongTermKey {
    handle: KeyHandle,
    public: [u8; PUBLIC_KEY_LEN],
}

impl SeLongTermKey {
    /// Wraps a handle; the key must be [`KeyAlgorithm::Ed25519`].
    pub fn new(handle: KeyHandle) -> Result<Self> {
        let alg = handle.algorithm();
        let public = <[u8; PUBLIC_KEY_LEN]>::try_from(handle.public_key().as_bytes());
        match (alg, public) {
            (KeyAlgorithm::Ed25519, Ok(public)) => Ok(SeLongTermKey { handle, public }),
            _ => Err(Error::WrongKeyType(alg.to_string())),
        }
    }

    pub fn handle(&self) -> &KeyHandle {
        &self.handle
    }
}

impl LongTermKey for SeLongTermKey {
    fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; SIGNATURE_LEN]> {
        let sig = self.handle.sign(SignInput::Message(message))?;
        sig.as_slice()
            .try_into()
            .map_err(|_| Error::Crypto("secure element returned a malformed Ed25519 signature"))
    }
}

/// An Ed25519 key held in memory (controllers without a secure element, tests).
pub struct SoftLongTermKey {
    seed: Zeroizing<[u8; 32]>,
    pair: Ed25519KeyPair,
}

impl fmt::Debug for SoftLongTermKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftLongTermKey")
            .field("public", &hex_short(&self.public_key()))
            .finish_non_exhaustive()
    }
}

fn hex_short(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl SoftLongTermKey {
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| Error::Crypto("Ed25519 seed"))?;
        Ok(SoftLongTermKey { seed: Zeroizing::new(*seed), pair })
    }

    pub fn generate(rng: &mut dyn RandomSource) -> Result<Self> {
        Self::from_seed(&*random::<32>(rng)?)
    }

    /// The 32-byte seed, for the caller to store sealed. Handle as a secret.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }
}

impl LongTermKey for SoftLongTermKey {
    fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; SIGNATURE_LEN]> {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        Ok(out)
    }
}

pub(crate) fn verify_ed25519(
    public: &[u8],
    message: &[u8],
    signature: &[u8],
    step: &'static str,
) -> Result<()> {
    aws_lc_rs::signature::UnparsedPublicKey::new(&ED25519, public)
        .verify(message, signature)
        .map_err(|_| Error::Signature { step })
}

/// HKDF-SHA512 with HAP's string salt and info, 32 bytes out.
pub(crate) fn hkdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    let prk = Salt::new(HKDF_SHA512, salt).extract(ikm);
    prk.expand(&[info], Len32)
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("HKDF-SHA512 can always produce 32 bytes");
    out
}

struct Len32;

impl aws_lc_rs::hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// A ChaCha20-Poly1305 key.
pub(crate) struct AeadKey(LessSafeKey);

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey")
    }
}

impl AeadKey {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&CHACHA20_POLY1305, key).expect("32-byte ChaCha20-Poly1305 key");
        AeadKey(LessSafeKey::new(key))
    }

    /// Seals with nonce `0000 ‖ nonce8`, returning ciphertext ‖ tag.
    pub(crate) fn seal(&self, nonce8: [u8; 8], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        self.0
            .seal_in_place_append_tag(nonce(nonce8), Aad::from(aad), &mut buf)
            .expect("ChaCha20-Poly1305 sealing of bounded input");
        buf
    }

    /// Appends `ciphertext ‖ tag` of `plaintext` to `out` (no intermediate buffer).
    pub(crate) fn seal_append(&self, nonce8: [u8; 8], aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce(nonce8), Aad::from(aad), &mut out[start..])
            .expect("ChaCha20-Poly1305 sealing of bounded input");
        out.extend_from_slice(tag.as_ref());
    }

    /// Opens ciphertext ‖ tag in place; returns the plaintext length.
    pub(crate) fn open_in_place(&self, nonce8: [u8; 8], aad: &[u8], buf: &mut [u8]) -> Option<usize> {
        self.0.open_in_place(nonce(nonce8), Aad::from(aad), buf).ok().map(|p| p.len())
    }

    pub(crate) fn open(
        &self,
        nonce8: [u8; 8],
        sealed: &[u8],
        step: &'static str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let mut buf = Zeroizing::new(sealed.to_vec());
        let len = self.open_in_place(nonce8, &[], &mut buf).ok_or(Error::Decrypt { step })?;
        buf.truncate(len);
        Ok(buf)
    }
}

fn nonce(nonce8: [u8; 8]) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&nonce8);
    Nonce::assume_unique_for_key(n)
}

/// An X25519 ephemeral key pair for one pair-verify.
pub(crate) struct Ephemeral {
    private: PrivateKey,
    public: [u8; PUBLIC_KEY_LEN],
}

impl fmt::Debug for Ephemeral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ephemeral").field("public", &hex_short(&self.public)).finish_non_exhaustive()
    }
}

impl Ephemeral {
    pub(crate) fn generate(rng: &mut dyn RandomSource) -> Result<Self> {
        let secret = random::<32>(rng)?;
        let private =
            PrivateKey::from_private_key(&X25519, &secret[..]).map_err(|_| Error::Crypto("X25519 key"))?;
        let public_key = private.compute_public_key().map_err(|_| Error::Crypto("X25519 public key"))?;
        let mut public = [0u8; PUBLIC_KEY_LEN];
        public.copy_from_slice(public_key.as_ref());
        Ok(Ephemeral { private, public })
    }

    pub(crate) fn public(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.public
    }

    /// The X25519 shared secret; fails on a malformed or low-order peer key.
    pub(crate) fn agree(&self, peer: &[u8], step: &'static str) -> Result<Zeroizing<[u8; 32]>> {
        agreement::agree(
            &self.private,
            UnparsedPublicKey::new(&X25519, peer),
            Error::BadPublicKey { step },
            |s| {
                let mut out = Zeroizing::new([0u8; 32]);
                if s.len() != 32 || s.iter().all(|b| *b == 0) {
                    return Err(Error::BadPublicKey { step });
                }
                out.copy_from_slice(s);
                Ok(out)
            },
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_sha512_rfc_shape() {
        // Independent check: HKDF-SHA512 with empty info equals HMAC chain computed by hand.
        use aws_lc_rs::hmac;
        let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA512, b"salt"), b"ikm");
        let t1 = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA512, prk.as_ref()), b"info\x01");
        assert_eq!(&hkdf(b"ikm", b"salt", b"info")[..], &t1.as_ref()[..32]);
    }

    #[test]
    fn aead_nonce_is_zero_prefixed() {
        let key = AeadKey::new(&[7; 32]);
        let sealed = key.seal(*b"PS-Msg05", &[], b"hello");
        assert_eq!(key.open(*b"PS-Msg05", &sealed, "t").unwrap().as_slice(), b"hello");
        assert!(key.open(*b"PS-Msg06", &sealed, "t").is_err());
    }
}
