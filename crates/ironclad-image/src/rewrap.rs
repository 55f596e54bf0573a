//! Re-wrap without re-signing. The content key's wrap sits in the **unprotected** TLV area,
//! outside the hashed and signed region, so whoever holds the content key (a release server
//! that unwrapped it with its own key, or that kept the key from mastering) can wrap it to each
//! device's firmware-decryption key. The header, encrypted payload and protected TLVs are
//! copied byte for byte; the signature still verifies; only the ENC_* TLV changes.

use std::io::{Read, Seek, Write};

use ironclad_se::PublicKey;

use crate::encrypt;
use crate::error::{Error, Result};
use crate::stream::{self, Output};
use crate::tlv::{TlvArea, UNPROTECTED_MAGIC, types};
use crate::verify::VerifiedImage;

fn is_wrap(tlv_type: u16) -> bool {
    (types::ENC_RSA2048..=types::ENC_X25519_SHA512).contains(&tlv_type)
}

impl VerifiedImage {
    /// The unprotected TLV area (info header included) with the key wrap replaced by a fresh
    /// one to `recipient`: what [`rewrap`](Self::rewrap) writes after the signed region. For a
    /// release server that streams the signed region (`[0, header().signed_len())`, the same
    /// bytes for every device) itself and appends this per-device tail: one ECIES wrap per
    /// device instead of a pass over the image. The image must have been verified through its
    /// content key.
    pub fn rewrapped_tlv_area(&self, recipient: &PublicKey) -> Result<Vec<u8>> {
        let content_key = self.content_key().ok_or(Error::NotEncrypted)?;
        let (wrap_type, wrap_value) = encrypt::wrap(content_key, recipient)?;
        let old_area = self.image().unprotected_area();
        let mut entries: Vec<(u16, &[u8])> = Vec::with_capacity(old_area.entries.len() + 1);
        let mut replaced = false;
        for tlv in &old_area.entries {
            if is_wrap(tlv.tlv_type) {
                entries.push((wrap_type, &wrap_value));
                replaced = true;
            } else {
                entries.push((tlv.tlv_type, &tlv.data));
            }
        }
        if !replaced {
            entries.push((wrap_type, &wrap_value));
        }
        TlvArea::encode(UNPROTECTED_MAGIC, &entries)?.ok_or(Error::Crypto("empty TLV area"))
    }

    /// Writes the same image with its key-wrap TLV replaced by one wrapped to `recipient`
    /// (`X25519` → ENC_X25519, `EcdhP256` → ENC_EC256), at the same position among the
    /// unprotected TLVs. Slot padding and trailer, if any, are kept and the output keeps the
    /// source's length (erased padding absorbs a change in TLV size). The image must have been
    /// verified through its content key ([`Image::verify_encrypted`](crate::Image::verify_encrypted)
    /// or [`decrypt_verify`](crate::Image::decrypt_verify)); the signed region is re-hashed
    /// while it is copied. Returns the bytes written.
    pub fn rewrap<R: Read + Seek, W: Write>(
        &self,
        src: &mut R,
        out: &mut W,
        recipient: &PublicKey,
    ) -> Result<u64> {
        let content_key = self.content_key().ok_or(Error::NotEncrypted)?;
        let new_area = self.rewrapped_tlv_area(recipient)?;
        let image = self.image();
        let old_area = image.unprotected_area();

        // Plan the trailing bytes before writing anything.
        let trailing = image.trailing_len();
        let old_len = u64::from(old_area.total);
        let new_len = new_area.len() as u64;
        let mut erased = 0xff;
        if trailing > 0 && new_len != old_len {
            let mut first = [0u8; 1];
            stream::seek_to(src, image.image_len())?;
            src.read_exact(&mut first)?;
            erased = first[0];
            if new_len > old_len {
                let grow = new_len - old_len;
                let mut head = vec![0u8; grow.min(trailing) as usize];
                stream::seek_to(src, image.image_len())?;
                src.read_exact(&mut head)?;
                if grow > trailing || head.iter().any(|&b| b != erased) {
                    return Err(Error::ImageTooLarge {
                        size: image.source_len() + grow,
                        max: image.source_len(),
                    });
                }
            }
        }

        let mut written = image.header().signed_len();
        let digest = stream::hash_signed_region(image, src, Some(content_key), Output::Stored(out))?;
        if &digest != self.digest() {
            return Err(Error::SourceChanged);
        }
        out.write_all(&new_area)?;
        written += new_len;

        if trailing > 0 {
            let mut copy_from = image.image_len();
            let mut copy_len = trailing;
            if new_len < old_len {
                let fill = vec![erased; (old_len - new_len) as usize];
                out.write_all(&fill)?;
                written += fill.len() as u64;
            } else if new_len > old_len {
                copy_from += new_len - old_len;
                copy_len -= new_len - old_len;
            }
            stream::seek_to(src, copy_from)?;
            stream::copy_exact(src, out, copy_len)?;
            written += copy_len;
        }
        out.flush()?;
        Ok(written)
    }
}
