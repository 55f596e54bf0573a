//! Keys: who signs an image ([`ImageSigner`]), who unwraps its content key ([`KeyAgreement`]),
//! and whom a device trusts ([`TrustAnchors`]).
//!
//! Both traits are implemented for secure-element keys ([`KeyHandle`], [`SeAgreementKey`]), so a
//! mastering key in any backend (software store, HSM) signs and a device's decryption key never
//! leaves its element. In-memory keys for tests and interop live in [`crate::hazmat`].

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest::{self, Digest, SHA256};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ED25519, UnparsedPublicKey};
use ironclad_se::{Hkdf, KeyAlgorithm, KeyHandle, Label, PublicKey, SecureElement, SignInput};

use crate::error::{Error, Result};
use crate::tlv::types;

/// Something that signs images: an ECDSA P-256 or Ed25519 key. ECDSA keys are asked to sign
/// `SignInput::Sha256Digest` (the image digest, so signing streams and works with hash-on-host
/// HSMs); Ed25519 keys sign the 32-byte digest as their message, as imgtool 2.5.0 does.
pub trait ImageSigner: fmt::Debug {
    /// The public key (`EcdsaP256` or `Ed25519`).
    fn public_key(&self) -> &PublicKey;
    /// Signs; ECDSA signatures are DER, Ed25519 signatures 64 bytes.
    fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>, ironclad_se::Error>;
}

impl ImageSigner for KeyHandle {
    fn public_key(&self) -> &PublicKey {
        KeyHandle::public_key(self)
    }

    fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>, ironclad_se::Error> {
        KeyHandle::sign(self, input)
    }
}

/// A key-agreement key (X25519 or P-256 ECDH) that unwraps image content keys: ECDH with the
/// image's ephemeral key, then HKDF-SHA256, with only the derived bytes leaving the key's home.
pub trait KeyAgreement: fmt::Debug {
    /// The public key (`X25519` or `EcdhP256`).
    fn public_key(&self) -> &PublicKey;
    /// ECDH against `peer_public` (raw: 32 bytes X25519, 65-byte SEC1 point P-256), then
    /// HKDF-SHA256 into `out`.
    fn agree_and_derive(
        &self,
        peer_public: &[u8],
        kdf: &Hkdf<'_>,
        out: &mut [u8],
    ) -> Result<(), ironclad_se::Error>;
}

/// A firmware-decryption key inside a secure element (production path).
#[derive(Clone)]
pub struct SeAgreementKey {
    se: Arc<dyn SecureElement>,
    id: Label,
    public: PublicKey,
}

impl SeAgreementKey {
    /// Opens an existing `X25519` or `EcdhP256` key.
    pub fn open(se: Arc<dyn SecureElement>, id: &Label) -> Result<Self> {
        let info = se.key_info(id)?;
        let alg = info.public.algorithm();
        if !alg.can_agree() {
            return Err(Error::WrongKeyType { alg: alg.name(), operation: "unwrap image keys" });
        }
        Ok(Self { se, id: info.id, public: info.public })
    }

    /// The key's label.
    pub fn id(&self) -> &Label {
        &self.id
    }
}

impl fmt::Debug for SeAgreementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeAgreementKey")
            .field("id", &self.id)
            .field("alg", &self.public.algorithm())
            .field("backend", &self.se.backend_name())
            .finish()
    }
}

impl KeyAgreement for SeAgreementKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn agree_and_derive(
        &self,
        peer_public: &[u8],
        kdf: &Hkdf<'_>,
        out: &mut [u8],
    ) -> Result<(), ironclad_se::Error> {
        self.se.agree_and_derive(&self.id, peer_public, kdf, out)
    }
}

/// SHA-256 of a key's DER SubjectPublicKeyInfo: the KEYHASH TLV, `imgtool getpubhash`, and
/// `openssl pkey -pubin -outform DER | sha256sum`.
pub fn key_hash(key: &PublicKey) -> Result<[u8; 32]> {
    let spki = key.spki_der().ok_or(Error::BadPublicKey("the key has no public part"))?;
    Ok(sha256(&spki))
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&SHA256, data).as_ref());
    out
}

const EC_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const ED25519_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
const X25519_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00];

/// The kind of key a DER SubjectPublicKeyInfo holds, and its raw bytes.
fn decode_spki(der: &[u8]) -> Result<(SpkiKind, &[u8])> {
    let take = |prefix: &[u8], len: usize| der.strip_prefix(prefix).filter(|raw| raw.len() == len);
    if let Some(raw) = take(&EC_P256_PREFIX, 65) {
        if raw[0] != 0x04 {
            return Err(Error::BadPublicKey("only uncompressed P-256 points are supported"));
        }
        return Ok((SpkiKind::P256, raw));
    }
    if let Some(raw) = take(&ED25519_PREFIX, 32) {
        return Ok((SpkiKind::Ed25519, raw));
    }
    if let Some(raw) = take(&X25519_PREFIX, 32) {
        return Ok((SpkiKind::X25519, raw));
    }
    Err(Error::BadPublicKey("not a P-256, Ed25519 or X25519 SubjectPublicKeyInfo"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SpkiKind {
    P256,
    Ed25519,
    X25519,
}

/// A signature-verification key from DER SubjectPublicKeyInfo (`imgtool getpub -e pem`, PEM
/// decoded): P-256 becomes `EcdsaP256`, Ed25519 stays `Ed25519`.
pub fn signing_key_from_spki(der: &[u8]) -> Result<PublicKey> {
    match decode_spki(der)? {
        (SpkiKind::P256, raw) => Ok(PublicKey::new(KeyAlgorithm::EcdsaP256, raw.to_vec())),
        (SpkiKind::Ed25519, raw) => Ok(PublicKey::new(KeyAlgorithm::Ed25519, raw.to_vec())),
        (SpkiKind::X25519, _) => Err(Error::WrongKeyType { alg: "x25519", operation: "verify signatures" }),
    }
}

/// An encryption recipient from DER SubjectPublicKeyInfo (imgtool's `-E` key): P-256 becomes
/// `EcdhP256`, X25519 stays `X25519`.
pub fn recipient_from_spki(der: &[u8]) -> Result<PublicKey> {
    match decode_spki(der)? {
        (SpkiKind::P256, raw) => Ok(PublicKey::new(KeyAlgorithm::EcdhP256, raw.to_vec())),
        (SpkiKind::X25519, raw) => Ok(PublicKey::new(KeyAlgorithm::X25519, raw.to_vec())),
        (SpkiKind::Ed25519, _) => {
            Err(Error::WrongKeyType { alg: "ed25519", operation: "receive a key wrap" })
        }
    }
}

/// Checks an image signature over its SHA-256 digest with a signing public key.
pub(crate) fn verify_signature(key: &PublicKey, sig_type: u16, digest: &[u8; 32], sig: &[u8]) -> bool {
    match (key.algorithm(), sig_type) {
        (KeyAlgorithm::EcdsaP256, types::ECDSA_SIG) => {
            let Ok(digest) = Digest::import_less_safe(digest, &SHA256) else { return false };
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.as_bytes())
                .verify_digest(&digest, sig)
                .is_ok()
        }
        (KeyAlgorithm::Ed25519, types::ED25519) => {
            UnparsedPublicKey::new(&ED25519, key.as_bytes()).verify(digest, sig).is_ok()
        }
        _ => false,
    }
}

/// The signature TLV type for a signing key.
pub(crate) fn signature_tlv(key: &PublicKey) -> Result<u16> {
    match key.algorithm() {
        KeyAlgorithm::EcdsaP256 => Ok(types::ECDSA_SIG),
        KeyAlgorithm::Ed25519 => Ok(types::ED25519),
        other => Err(Error::WrongKeyType { alg: other.name(), operation: "sign images" }),
    }
}

/// One trusted signing key, or only its hash (MCUboot's `MCUBOOT_HW_KEY`: the device keeps the
/// hash and images carry the full key in a PUBKEY TLV).
#[derive(Clone, Debug)]
struct Anchor {
    key: Option<PublicKey>,
    hash: [u8; 32],
}

/// The signing keys a verifier trusts. An image verifies when one of its (key id, signature)
/// pairs names an anchor and that signature verifies.
#[derive(Clone, Debug, Default)]
pub struct TrustAnchors {
    anchors: Vec<Anchor>,
}

impl TrustAnchors {
    /// No trusted key yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts one key.
    pub fn with_key(key: PublicKey) -> Result<Self> {
        let mut anchors = Self::new();
        anchors.add_key(key)?;
        Ok(anchors)
    }

    /// Trusts a signing key (`EcdsaP256` or `Ed25519`).
    pub fn add_key(&mut self, key: PublicKey) -> Result<&mut Self> {
        signature_tlv(&key)?;
        let hash = key_hash(&key)?;
        self.anchors.push(Anchor { key: Some(key), hash });
        Ok(self)
    }

    /// Trusts whatever key hashes to `hash` (SHA-256 of its SubjectPublicKeyInfo). Only images
    /// that embed the full key (PUBKEY TLV) can verify against such an anchor.
    pub fn add_key_hash(&mut self, hash: [u8; 32]) -> &mut Self {
        self.anchors.push(Anchor { key: None, hash });
        self
    }

    /// True when nothing is trusted.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// The trusted key for a KEYHASH TLV value.
    pub(crate) fn by_hash(&self, hash: &[u8]) -> Option<&PublicKey> {
        self.anchors.iter().find(|a| a.hash == hash).and_then(|a| a.key.as_ref())
    }

    /// The key embedded in a PUBKEY TLV, if an anchor trusts it.
    pub(crate) fn by_embedded(&self, spki: &[u8]) -> Option<PublicKey> {
        let key = signing_key_from_spki(spki).ok()?;
        let hash = sha256(spki);
        self.anchors.iter().any(|a| a.hash == hash).then_some(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn spki_round_trips_through_ironclad_se_encoding() {
        for (alg, len) in [(KeyAlgorithm::EcdsaP256, 65), (KeyAlgorithm::Ed25519, 32)] {
            let mut raw = vec![7u8; len];
            raw[0] = 4;
            let key = PublicKey::new(alg, raw);
            let back = signing_key_from_spki(&key.spki_der().unwrap()).unwrap();
            assert_eq!(back, key);
        }
        let x = PublicKey::new(KeyAlgorithm::X25519, vec![9; 32]);
        assert_eq!(recipient_from_spki(&x.spki_der().unwrap()).unwrap(), x);
        assert!(signing_key_from_spki(&x.spki_der().unwrap()).is_err());
        assert!(signing_key_from_spki(b"junk").is_err());
    }
}
