//! Key material held in process memory by the software backends, and the operations on it.
//! Private bytes live only in `Zeroizing` buffers or inside aws-lc key objects.

use std::fmt;

use aws_lc_rs::agreement::{self, PrivateKey as AgreementKey};
use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin, EcPrivateKeyBin};
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use aws_lc_rs::{aead, digest, hkdf, rand};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::types::{Hkdf, KeyAlgorithm, Label, PublicKey, SignInput};

pub(crate) enum SoftKey {
    EcdsaP256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Agreement(KeyAlgorithm, AgreementKey),
    Secret256(Zeroizing<[u8; 32]>),
}

impl fmt::Debug for SoftKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SoftKey({})", self.algorithm())
    }
}

impl SoftKey {
    pub(crate) fn generate(alg: KeyAlgorithm) -> Result<Self> {
        let failed = |_| Error::Crypto("key generation failed");
        Ok(match alg {
            KeyAlgorithm::EcdsaP256 => {
                let pkcs8 =
                    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rand::SystemRandom::new())
                        .map_err(failed)?;
                Self::from_secret_bytes(alg, pkcs8.as_ref())?
            }
            KeyAlgorithm::Ed25519 => SoftKey::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
            KeyAlgorithm::EcdhP256 => {
                SoftKey::Agreement(alg, AgreementKey::generate(&agreement::ECDH_P256).map_err(failed)?)
            }
            KeyAlgorithm::X25519 => {
                SoftKey::Agreement(alg, AgreementKey::generate(&agreement::X25519).map_err(failed)?)
            }
            KeyAlgorithm::Secret256 => {
                let mut secret = Zeroizing::new([0u8; 32]);
                rand::fill(secret.as_mut()).map_err(failed)?;
                SoftKey::Secret256(secret)
            }
        })
    }

    /// Serialises the private part for sealing: PKCS#8 for signing keys, raw scalars otherwise.
    pub(crate) fn secret_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let failed = |_| Error::Crypto("key serialisation failed");
        Ok(Zeroizing::new(match self {
            SoftKey::EcdsaP256(k) => k.to_pkcs8v1().map_err(failed)?.as_ref().to_vec(),
            SoftKey::Ed25519(k) => k.to_pkcs8v1().map_err(failed)?.as_ref().to_vec(),
            SoftKey::Agreement(KeyAlgorithm::X25519, k) => {
                let seed: Curve25519SeedBin<'_> = k.as_be_bytes().map_err(failed)?;
                seed.as_ref().to_vec()
            }
            SoftKey::Agreement(_, k) => {
                let scalar: EcPrivateKeyBin<'_> = k.as_be_bytes().map_err(failed)?;
                scalar.as_ref().to_vec()
            }
            SoftKey::Secret256(s) => s.to_vec(),
        }))
    }

    pub(crate) fn from_secret_bytes(alg: KeyAlgorithm, bytes: &[u8]) -> Result<Self> {
        let rejected = |_| Error::Crypto("stored key material is invalid");
        Ok(match alg {
            KeyAlgorithm::EcdsaP256 => SoftKey::EcdsaP256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, bytes).map_err(rejected)?,
            ),
            KeyAlgorithm::Ed25519 => SoftKey::Ed25519(Ed25519KeyPair::from_pkcs8(bytes).map_err(rejected)?),
            KeyAlgorithm::EcdhP256 => SoftKey::Agreement(
                alg,
                AgreementKey::from_private_key(&agreement::ECDH_P256, bytes).map_err(rejected)?,
            ),
            KeyAlgorithm::X25519 => SoftKey::Agreement(
                alg,
                AgreementKey::from_private_key(&agreement::X25519, bytes).map_err(rejected)?,
            ),
            KeyAlgorithm::Secret256 => {
                let secret: [u8; 32] =
                    bytes.try_into().map_err(|_| Error::Crypto("stored secret has the wrong length"))?;
                SoftKey::Secret256(Zeroizing::new(secret))
            }
        })
    }

    /// Builds a key from its raw private form (see `KeyStore::import_key`).
    pub(crate) fn from_raw(alg: KeyAlgorithm, raw: &[u8]) -> Result<Self> {
        let rejected = |_| Error::Crypto("imported key material is invalid for its algorithm");
        Ok(match alg {
            KeyAlgorithm::EcdsaP256 => {
                let public = AgreementKey::from_private_key(&agreement::ECDH_P256, raw)
                    .map_err(rejected)?
                    .compute_public_key()
                    .map_err(|_| Error::Crypto("public key computation failed"))?;
                SoftKey::EcdsaP256(
                    EcdsaKeyPair::from_private_key_and_public_key(
                        &ECDSA_P256_SHA256_ASN1_SIGNING,
                        raw,
                        public.as_ref(),
                    )
                    .map_err(rejected)?,
                )
            }
            KeyAlgorithm::Ed25519 => {
                SoftKey::Ed25519(Ed25519KeyPair::from_seed_unchecked(raw).map_err(rejected)?)
            }
            other => Self::from_secret_bytes(other, raw)?,
        })
    }

    pub(crate) fn algorithm(&self) -> KeyAlgorithm {
        match self {
            SoftKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            SoftKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            SoftKey::Agreement(alg, _) => *alg,
            SoftKey::Secret256(_) => KeyAlgorithm::Secret256,
        }
    }

    pub(crate) fn public_key(&self) -> Result<PublicKey> {
        let alg = self.algorithm();
        let bytes = match self {
            SoftKey::EcdsaP256(k) => k.public_key().as_ref().to_vec(),
            SoftKey::Ed25519(k) => k.public_key().as_ref().to_vec(),
            SoftKey::Agreement(_, k) => k
                .compute_public_key()
                .map_err(|_| Error::Crypto("public key computation failed"))?
                .as_ref()
                .to_vec(),
            SoftKey::Secret256(_) => Vec::new(),
        };
        Ok(PublicKey::new(alg, bytes))
    }

    pub(crate) fn sign(&self, id: &Label, input: SignInput<'_>) -> Result<Vec<u8>> {
        match (self, input) {
            (SoftKey::EcdsaP256(k), SignInput::Message(msg)) => k
                .sign(&rand::SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Crypto("ECDSA signing failed")),
            (SoftKey::EcdsaP256(k), SignInput::Sha256Digest(d)) => {
                let digest = digest::Digest::import_less_safe(d, &digest::SHA256)
                    .map_err(|_| Error::Crypto("bad digest"))?;
                k.sign_digest(&digest)
                    .map(|s| s.as_ref().to_vec())
                    .map_err(|_| Error::Crypto("ECDSA signing failed"))
            }
            (SoftKey::Ed25519(k), SignInput::Message(msg)) => Ok(k.sign(msg).as_ref().to_vec()),
            (SoftKey::Ed25519(_), SignInput::Sha256Digest(_)) => Err(Error::WrongKeyType {
                id: id.clone(),
                alg: KeyAlgorithm::Ed25519,
                operation: "sign a pre-hashed digest (Ed25519 signs messages)",
            }),
            (other, _) => {
                Err(Error::WrongKeyType { id: id.clone(), alg: other.algorithm(), operation: "sign" })
            }
        }
    }

    pub(crate) fn agree_and_derive(
        &self,
        id: &Label,
        peer: &[u8],
        kdf: &Hkdf<'_>,
        out: &mut [u8],
    ) -> Result<()> {
        let SoftKey::Agreement(alg, key) = self else {
            return Err(Error::WrongKeyType { id: id.clone(), alg: self.algorithm(), operation: "do ECDH" });
        };
        let peer_alg = if *alg == KeyAlgorithm::X25519 { &agreement::X25519 } else { &agreement::ECDH_P256 };
        let peer = agreement::UnparsedPublicKey::new(peer_alg, peer);
        agreement::agree(key, peer, Error::BadPeerKey { alg: *alg }, |shared| hkdf_expand(shared, kdf, out))
    }

    pub(crate) fn derive(&self, id: &Label, kdf: &Hkdf<'_>, out: &mut [u8]) -> Result<()> {
        hkdf_expand(self.secret256(id, "derive keys")?.as_ref(), kdf, out)
    }

    pub(crate) fn seal(&self, id: &Label, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        seal_aes256gcm(self.secret256(id, "seal data")?.as_ref(), aad, plaintext)
    }

    pub(crate) fn open(&self, id: &Label, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        open_aes256gcm(self.secret256(id, "open sealed data")?.as_ref(), aad, sealed)
    }

    fn secret256(&self, id: &Label, operation: &'static str) -> Result<&Zeroizing<[u8; 32]>> {
        match self {
            SoftKey::Secret256(s) => Ok(s),
            other => Err(Error::WrongKeyType { id: id.clone(), alg: other.algorithm(), operation }),
        }
    }
}

struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 extract-then-expand of `ikm` into `out` (at most 255 × 32 bytes).
pub(crate) fn hkdf_expand(ikm: &[u8], kdf: &Hkdf<'_>, out: &mut [u8]) -> Result<()> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, kdf.salt).extract(ikm);
    let info = [kdf.info];
    prk.expand(&info, OutLen(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| Error::Crypto("HKDF output too long"))
}

pub(crate) const NONCE_LEN: usize = aead::NONCE_LEN;
pub(crate) const TAG_LEN: usize = 16;

/// AES-256-GCM with a random 96-bit nonce, output nonce ‖ ciphertext ‖ tag.
pub(crate) fn seal_aes256gcm(key: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, key).map_err(|_| Error::Crypto("bad AES key"))?,
    );
    let mut nonce = [0u8; NONCE_LEN];
    rand::SystemRandom::new().fill(&mut nonce).map_err(|_| Error::Crypto("RNG failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let mut body = out.split_off(NONCE_LEN);
    key.seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(aad), &mut body)
        .map_err(|_| Error::Crypto("AES-GCM seal failed"))?;
    out.extend_from_slice(&body);
    Ok(out)
}

pub(crate) fn open_aes256gcm(key: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::OpenFailed);
    }
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, key).map_err(|_| Error::Crypto("bad AES key"))?,
    );
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::OpenFailed)?;
    let mut buf = Zeroizing::new(body.to_vec());
    let len = key
        .open_in_place(nonce, aead::Aad::from(aad), buf.as_mut_slice())
        .map_err(|_| Error::OpenFailed)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

pub(crate) fn random(out: &mut [u8]) -> Result<()> {
    rand::fill(out).map_err(|_| Error::Crypto("RNG failed"))
}
