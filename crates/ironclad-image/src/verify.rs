//! Verification: [`Image`] → [`VerifiedImage`], the only type later stages may install,
//! decrypt or re-wrap.
//!
//! Order of checks, cheapest first and before any hashing: the image names a trusted key
//! (KEYHASH = SHA-256 of its SubjectPublicKeyInfo, or PUBKEY whose hash is trusted); then one
//! streaming pass hashes header, payload (decrypted when the image is encrypted) and protected
//! TLVs and compares with the SHA256 TLV; then the signature over that digest is checked.

use std::io::{Read, Seek, Write};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use ironclad_se::PublicKey;

use crate::encrypt::{self, ContentKey};
use crate::error::{Error, Result};
use crate::header::{ImageHeader, Version};
use crate::image::Image;
use crate::keys::{self, KeyAgreement, TrustAnchors};
use crate::stream::{self, Output};
use crate::tlv::{type_name, types};

/// A signature candidate: a trusted key and the signature TLV that follows its key id.
struct Candidate<'a> {
    key: PublicKey,
    sig_type: u16,
    sig: &'a [u8],
}

/// Pairs each signature TLV with the key id (KEYHASH / PUBKEY) before it, keeping trusted ones.
fn candidates<'a>(image: &'a Image, trust: &TrustAnchors) -> Result<Vec<Candidate<'a>>> {
    let tlvs = image.unprotected_tlvs();
    if let Some(t) = tlvs.iter().find(|t| t.tlv_type == types::SIG_PURE) {
        return Err(Error::UnsupportedTlv { tlv_type: t.tlv_type, name: type_name(t.tlv_type) });
    }
    let mut out = Vec::new();
    let (mut key_ids, mut sigs, mut unsupported) = (0, 0, None);
    let mut current: Option<Option<PublicKey>> = None;
    for tlv in tlvs {
        match tlv.tlv_type {
            types::KEYHASH => {
                key_ids += 1;
                current = Some(trust.by_hash(&tlv.data).cloned());
            }
            types::PUBKEY => {
                key_ids += 1;
                current = Some(trust.by_embedded(&tlv.data));
            }
            types::ECDSA_SIG | types::ED25519 => {
                sigs += 1;
                if let Some(Some(key)) = current.take() {
                    out.push(Candidate { key, sig_type: tlv.tlv_type, sig: &tlv.data });
                }
            }
            t @ (types::RSA2048_PSS | types::RSA3072_PSS) => {
                unsupported.get_or_insert(t);
                current = None;
            }
            _ => {}
        }
    }
    if !out.is_empty() {
        return Ok(out);
    }
    Err(match (sigs, key_ids, unsupported) {
        (0, _, Some(t)) => Error::UnsupportedTlv { tlv_type: t, name: type_name(t) },
        (0, _, None) => Error::MissingTlv("signature (ECDSA_SIG or ED25519)"),
        (_, 0, _) => Error::MissingTlv("KEYHASH or PUBKEY"),
        _ => Error::UnknownKey,
    })
}

fn check_hash(image: &Image, digest: &[u8; 32], decrypted: bool) -> Result<()> {
    let Some(recorded) = image.recorded_hash() else {
        for t in [types::SHA384, types::SHA512] {
            if image.unprotected_area().get(t).is_some() {
                return Err(Error::UnsupportedTlv { tlv_type: t, name: type_name(t) });
            }
        }
        return Err(Error::MissingTlv("SHA256"));
    };
    verify_slices_are_equal(&recorded, digest)
        .map_err(|_| Error::HashMismatch { encrypted: image.cipher().is_some() && !decrypted })
}

impl Image {
    /// Verifies an image whose payload is stored in plaintext: an unencrypted image, or an
    /// encrypted one already decrypted in place (the primary slot after an upgrade, imgtool
    /// `--clear`). An encrypted payload fails here with `HashMismatch { encrypted: true }`.
    pub fn verify<R: Read + Seek>(self, src: &mut R, trust: &TrustAnchors) -> Result<VerifiedImage> {
        self.verify_inner(src, trust, None)
    }

    /// Verifies an encrypted image by decrypting its payload while hashing (the hash and the
    /// signature cover the plaintext). The content key comes from [`Image::unwrap_content_key`]
    /// or from whoever mastered the image.
    pub fn verify_encrypted<R: Read + Seek>(
        self,
        src: &mut R,
        trust: &TrustAnchors,
        content_key: &ContentKey,
    ) -> Result<VerifiedImage> {
        let cipher = self.cipher().ok_or(Error::NotEncrypted)?;
        if content_key.cipher() != cipher {
            return Err(Error::KeyMismatch("the content key's size does not match the header's AES flag"));
        }
        self.verify_inner(src, trust, Some(content_key.clone()))
    }

    /// Unwraps and then verifies in one call (the device path: `key` lives in the secure element).
    pub fn decrypt_verify<R: Read + Seek>(
        self,
        src: &mut R,
        trust: &TrustAnchors,
        key: &dyn KeyAgreement,
    ) -> Result<VerifiedImage> {
        let content_key = self.unwrap_content_key(key)?;
        self.verify_encrypted(src, trust, &content_key)
    }

    /// Recovers the content key from the image's ENC_X25519 / ENC_EC256 TLV with the recipient's
    /// key-agreement key. The TLV is unsigned: the key is only trusted once the decrypted payload
    /// verifies.
    pub fn unwrap_content_key(&self, key: &dyn KeyAgreement) -> Result<ContentKey> {
        let cipher = self.cipher().ok_or(Error::NotEncrypted)?;
        let tlv = self.key_wrap_tlv().ok_or(Error::MissingTlv("key wrap (ENC_X25519 or ENC_EC256)"))?;
        encrypt::unwrap(tlv, cipher, key)
    }

    fn verify_inner<R: Read + Seek>(
        self,
        src: &mut R,
        trust: &TrustAnchors,
        content_key: Option<ContentKey>,
    ) -> Result<VerifiedImage> {
        let candidates = candidates(&self, trust)?;
        let digest = stream::hash_signed_region(&self, src, content_key.as_ref(), Output::None)?;
        check_hash(&self, &digest, content_key.is_some())?;
        let signer = candidates
            .iter()
            .find(|c| keys::verify_signature(&c.key, c.sig_type, &digest, c.sig))
            .map(|c| c.key.clone())
            .ok_or(Error::SignatureInvalid)?;
        Ok(VerifiedImage { image: self, digest, signer, content_key })
    }
}

/// An image whose hash and signature checked out against trusted keys. Only verification
/// constructs it; installing, decrypting and re-wrapping start from it. Every later pass over
/// the source re-hashes and fails with `SourceChanged` if the bytes are no longer the verified
/// ones (a sink that received output before such an error must be discarded).
#[derive(Debug)]
pub struct VerifiedImage {
    image: Image,
    digest: [u8; 32],
    signer: PublicKey,
    content_key: Option<ContentKey>,
}

impl VerifiedImage {
    /// The parsed image.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// The header.
    pub fn header(&self) -> &ImageHeader {
        self.image.header()
    }

    /// The version.
    pub fn version(&self) -> Version {
        self.image.header().version
    }

    /// The signed security counter, if any.
    pub fn security_counter(&self) -> Option<u32> {
        self.image.security_counter()
    }

    /// The signed product class, if any.
    pub fn product_class(&self) -> Option<[u8; 16]> {
        self.image.product_class()
    }

    /// The verified SHA-256 (over the plaintext).
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The trusted key whose signature verified.
    pub fn signer(&self) -> &PublicKey {
        &self.signer
    }

    /// True when the source holds an encrypted payload (verified through its content key).
    pub fn is_encrypted(&self) -> bool {
        self.content_key.is_some()
    }

    pub(crate) fn content_key(&self) -> Option<&ContentKey> {
        self.content_key.as_ref()
    }

    fn second_pass<R: Read + Seek>(&self, src: &mut R, output: Output<'_>) -> Result<()> {
        let digest = stream::hash_signed_region(&self.image, src, self.content_key.as_ref(), output)?;
        if digest != self.digest {
            return Err(Error::SourceChanged);
        }
        Ok(())
    }

    /// Writes the image with its payload in plaintext: header, payload, protected and
    /// unprotected TLVs unchanged (no slot padding). For an encrypted image this is what imgtool
    /// `--clear` writes and what MCUboot leaves in the primary slot; it verifies with
    /// [`Image::verify`]. Returns the bytes written.
    pub fn write_decrypted_image<R: Read + Seek, W: Write>(&self, src: &mut R, out: &mut W) -> Result<u64> {
        self.second_pass(src, Output::Plain(out))?;
        let area = self.image.unprotected_area();
        stream::seek_to(src, area.offset)?;
        stream::copy_exact(src, out, u64::from(area.total))?;
        out.flush()?;
        Ok(self.image.image_len())
    }

    /// Writes only the plaintext payload (the firmware binary). Returns the bytes written
    /// (`img_size`, which for encrypted images includes imgtool's zero padding to 16 bytes).
    pub fn write_payload<R: Read + Seek, W: Write>(&self, src: &mut R, out: &mut W) -> Result<u64> {
        self.second_pass(src, Output::PlainPayload(out))?;
        out.flush()?;
        Ok(u64::from(self.image.header().img_size))
    }
}
