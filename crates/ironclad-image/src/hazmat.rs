//! **Hazardous**: private keys in process memory, for interop tests and tooling that must use
//! key files made by imgtool or OpenSSL. Production code signs with a secure-element
//! [`KeyHandle`](ironclad_se::KeyHandle) and unwraps with an [`SeAgreementKey`](crate::SeAgreementKey);
//! `ironclad-se` deliberately has no key import, and these types are how tests bridge that gap.

use std::fmt;

use aws_lc_rs::agreement::{self, UnparsedPublicKey};
use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use aws_lc_rs::{hkdf, rand};
use ironclad_se::{Hkdf, KeyAlgorithm, PublicKey, SignInput};

use crate::encrypt::ContentKey;
use crate::error::{Error, Result};
use crate::keys::{ImageSigner, KeyAgreement};

enum SignerKey {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A signing key held in memory (ECDSA P-256 or Ed25519), from PKCS#8 DER such as
/// `imgtool keygen` writes (PEM-decoded).
pub struct SoftwareSigner {
    key: SignerKey,
    public: PublicKey,
}

impl SoftwareSigner {
    /// Loads an unencrypted PKCS#8 P-256 or Ed25519 private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        if let Ok(k) = Ed25519KeyPair::from_pkcs8(der) {
            let public = PublicKey::new(KeyAlgorithm::Ed25519, k.public_key().as_ref().to_vec());
            return Ok(Self { key: SignerKey::Ed25519(k), public });
        }
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            let public = PublicKey::new(KeyAlgorithm::EcdsaP256, k.public_key().as_ref().to_vec());
            return Ok(Self { key: SignerKey::Ecdsa(k), public });
        }
        Err(Error::BadPrivateKey("not an unencrypted PKCS#8 P-256 or Ed25519 key"))
    }

    /// A fresh in-memory key (`EcdsaP256` or `Ed25519`).
    pub fn generate(alg: KeyAlgorithm) -> Result<Self> {
        let failed = |_| Error::Crypto("key generation failed");
        let key = match alg {
            KeyAlgorithm::Ed25519 => SignerKey::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
            KeyAlgorithm::EcdsaP256 => {
                SignerKey::Ecdsa(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).map_err(failed)?)
            }
            other => return Err(Error::WrongKeyType { alg: other.name(), operation: "sign images" }),
        };
        let public = match &key {
            SignerKey::Ed25519(k) => PublicKey::new(alg, k.public_key().as_ref().to_vec()),
            SignerKey::Ecdsa(k) => PublicKey::new(alg, k.public_key().as_ref().to_vec()),
        };
        Ok(Self { key, public })
    }
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SoftwareSigner {{ alg: {} }}", self.public.algorithm())
    }
}

impl ImageSigner for SoftwareSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>, ironclad_se::Error> {
        let failed = |_| ironclad_se::Error::Crypto("signing failed");
        match (&self.key, input) {
            (SignerKey::Ecdsa(k), SignInput::Message(m)) => {
                k.sign(&rand::SystemRandom::new(), m).map(|s| s.as_ref().to_vec()).map_err(failed)
            }
            (SignerKey::Ecdsa(k), SignInput::Sha256Digest(d)) => {
                let d = Digest::import_less_safe(d, &SHA256).map_err(failed)?;
                k.sign_digest(&d).map(|s| s.as_ref().to_vec()).map_err(failed)
            }
            (SignerKey::Ed25519(k), SignInput::Message(m)) => Ok(k.sign(m).as_ref().to_vec()),
            (SignerKey::Ed25519(_), SignInput::Sha256Digest(_)) => {
                Err(ironclad_se::Error::Crypto("Ed25519 signs messages, not pre-hashed digests"))
            }
        }
    }
}

/// An X25519 or P-256 key-agreement key held in memory, for unwrapping image keys with key
/// files (`imgtool keygen -t x25519` / `-t ecdsa-p256`).
pub struct SoftwareAgreementKey {
    key: agreement::PrivateKey,
    public: PublicKey,
}

const X25519_PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20];

impl SoftwareAgreementKey {
    /// Loads an unencrypted PKCS#8 X25519 or P-256 private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        if let Some(raw) = der.strip_prefix(&X25519_PKCS8_PREFIX).filter(|r| r.len() == 32) {
            return Self::from_raw(KeyAlgorithm::X25519, raw);
        }
        let key = agreement::PrivateKey::from_private_key_der(&agreement::ECDH_P256, der)
            .map_err(|_| Error::BadPrivateKey("not an unencrypted PKCS#8 X25519 or P-256 key"))?;
        Self::with_key(KeyAlgorithm::EcdhP256, key)
    }

    /// A key from its raw private scalar: 32 bytes for X25519, 32 big-endian bytes for P-256.
    pub fn from_raw(alg: KeyAlgorithm, raw: &[u8]) -> Result<Self> {
        let curve = match alg {
            KeyAlgorithm::X25519 => &agreement::X25519,
            KeyAlgorithm::EcdhP256 => &agreement::ECDH_P256,
            other => return Err(Error::WrongKeyType { alg: other.name(), operation: "unwrap image keys" }),
        };
        let key = agreement::PrivateKey::from_private_key(curve, raw)
            .map_err(|_| Error::BadPrivateKey("wrong length or out of range"))?;
        Self::with_key(alg, key)
    }

    /// A fresh in-memory key (`X25519` or `EcdhP256`).
    pub fn generate(alg: KeyAlgorithm) -> Result<Self> {
        let curve = match alg {
            KeyAlgorithm::X25519 => &agreement::X25519,
            KeyAlgorithm::EcdhP256 => &agreement::ECDH_P256,
            other => return Err(Error::WrongKeyType { alg: other.name(), operation: "unwrap image keys" }),
        };
        let key =
            agreement::PrivateKey::generate(curve).map_err(|_| Error::Crypto("key generation failed"))?;
        Self::with_key(alg, key)
    }

    fn with_key(alg: KeyAlgorithm, key: agreement::PrivateKey) -> Result<Self> {
        let public = key.compute_public_key().map_err(|_| Error::Crypto("public key computation failed"))?;
        Ok(Self { public: PublicKey::new(alg, public.as_ref().to_vec()), key })
    }
}

impl fmt::Debug for SoftwareAgreementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SoftwareAgreementKey {{ alg: {} }}", self.public.algorithm())
    }
}

struct OutLen(usize);
impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl KeyAgreement for SoftwareAgreementKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn agree_and_derive(
        &self,
        peer_public: &[u8],
        kdf: &Hkdf<'_>,
        out: &mut [u8],
    ) -> Result<(), ironclad_se::Error> {
        let alg = self.public.algorithm();
        let peer = UnparsedPublicKey::new(self.key.algorithm(), peer_public);
        agreement::agree(&self.key, peer, ironclad_se::Error::BadPeerKey { alg }, |shared| {
            hkdf::Salt::new(hkdf::HKDF_SHA256, kdf.salt)
                .extract(shared)
                .expand(&[kdf.info], OutLen(out.len()))
                .and_then(|okm| okm.fill(out))
                .map_err(|_| ironclad_se::Error::Crypto("HKDF output too long"))
        })
    }
}

/// The raw bytes of a content key, for a release server that stores it (sealed) to re-wrap
/// later. Anyone holding these bytes can decrypt the image.
pub fn content_key_bytes(key: &ContentKey) -> &[u8] {
    key.bytes()
}
