//! Mastering: payload in, signed (and optionally encrypted) MCUboot image out, in one streaming
//! pass, byte-compatible with `imgtool sign --pad-header` 2.5.0:
//!
//! 1. header (`hdr_size` bytes: the 32-byte header, then the erased value) — hashed, written;
//! 2. payload, zero-padded to a 16-byte boundary when encrypted — plaintext hashed, written
//!    (AES-CTR encrypted when asked);
//! 3. protected TLVs (SEC_CNT, product class, custom vendor TLVs) — hashed, written;
//! 4. unprotected TLVs: SHA256, KEYHASH or PUBKEY, the signature (ECDSA over the digest, or
//!    Ed25519 over the 32-byte digest as its message), then ENC_X25519 / ENC_EC256;
//! 5. optionally slot padding and trailer (`--pad`, `--confirm`).

use std::io::{Read, Write};

use aws_lc_rs::digest::{Context, SHA256};
use ironclad_se::{KeyAlgorithm, PublicKey, SignInput};

use crate::encrypt::{self, ContentKey};
use crate::error::{Error, Result};
use crate::header::{Flags, HEADER_LEN, ImageHeader, Version};
use crate::keys::{self, ImageSigner};
use crate::pipe::{Pipe, Transform};
use crate::tlv::{self, PROTECTED_MAGIC, TlvArea, UNPROTECTED_MAGIC, types};
use crate::trailer::{self, Pad, SlotLayout};

/// How the signing key is named in the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyIdFormat {
    /// KEYHASH: SHA-256 of the key's SubjectPublicKeyInfo (imgtool default).
    #[default]
    Hash,
    /// PUBKEY: the SubjectPublicKeyInfo itself (`--public-key-format full`, for MCUBOOT_HW_KEY).
    Full,
}

/// Payload encryption: the content key and the device key it is wrapped to.
#[derive(Clone, Debug)]
pub struct Encryption {
    /// The recipient: an `X25519` (ENC_X25519) or `EcdhP256` (ENC_EC256) public key.
    pub recipient: PublicKey,
    /// The content key; its length picks AES-128 or AES-256.
    pub content_key: ContentKey,
}

/// Everything `sign` needs besides the key and the payload. `SignOptions::new(version)` gives
/// imgtool's defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SignOptions {
    /// Image version (`-v`).
    pub version: Version,
    /// Header size including padding (`-H`), at least 32; default 0x20.
    pub header_size: u16,
    /// Value of the header padding and slot padding (`-R`): 0xff (default) or 0x00.
    pub erased_value: u8,
    /// Security counter TLV (`-s`); `None` writes no counter.
    pub security_counter: Option<u32>,
    /// ironclad product-class UUID, a protected vendor TLV ([`types::PRODUCT_CLASS`]).
    pub product_class: Option<[u8; 16]>,
    /// More protected vendor-range TLVs (`--custom-tlv`), written after the product class.
    pub custom_tlvs: Vec<(u16, Vec<u8>)>,
    /// RAM_LOAD with this load address (`-L`).
    pub load_addr: Option<u32>,
    /// ROM_FIXED with this flash address (`-F`).
    pub rom_fixed: Option<u32>,
    /// NON_BOOTABLE flag (`--non-bootable`).
    pub non_bootable: bool,
    /// KEYHASH or PUBKEY (`--public-key-format`).
    pub key_id: KeyIdFormat,
    /// Encrypt the payload (`-E`, `--encrypt-keylen`).
    pub encryption: Option<Encryption>,
    /// The slot (`-S` and friends): image plus trailer must fit.
    pub slot: Option<SlotLayout>,
    /// Pad to the slot size and write a trailer (`--pad`/`--test` or `--confirm`); needs `slot`.
    pub pad: Option<Pad>,
}

impl SignOptions {
    /// imgtool's defaults for a version.
    pub fn new(version: Version) -> Self {
        Self {
            version,
            header_size: HEADER_LEN as u16,
            erased_value: 0xff,
            security_counter: None,
            product_class: None,
            custom_tlvs: Vec::new(),
            load_addr: None,
            rom_fixed: None,
            non_bootable: false,
            key_id: KeyIdFormat::Hash,
            encryption: None,
            slot: None,
            pad: None,
        }
    }

    fn check(&self) -> Result<()> {
        let invalid = |option, reason: &str| Err(Error::InvalidOption { option, reason: reason.into() });
        if usize::from(self.header_size) < HEADER_LEN {
            return invalid("header_size", "must be at least 32 (0x20)");
        }
        if self.erased_value != 0xff && self.erased_value != 0 {
            return invalid("erased_value", "must be 0xff or 0x00");
        }
        if self.load_addr.is_some() && self.rom_fixed.is_some() {
            return invalid("load_addr", "cannot be combined with rom_fixed");
        }
        if self.pad.is_some() && self.slot.is_none() {
            return invalid("pad", "needs a slot layout (slot size)");
        }
        if let Some(slot) = &self.slot {
            slot.check()?;
        }
        for (t, v) in &self.custom_tlvs {
            if !tlv::is_vendor(*t) || *t == types::PRODUCT_CLASS {
                return Err(Error::InvalidOption {
                    option: "custom_tlvs",
                    reason: format!("{t:#06x} is not a free vendor TLV type (0xXXA0..=0xXXFF)"),
                });
            }
            if v.len() > usize::from(u16::MAX) {
                return invalid("custom_tlvs", "a TLV value is at most 65535 bytes");
            }
        }
        let mut seen: Vec<u16> = self.custom_tlvs.iter().map(|(t, _)| *t).collect();
        seen.sort_unstable();
        if seen.windows(2).any(|w| w[0] == w[1]) {
            return invalid("custom_tlvs", "a TLV type appears twice");
        }
        if let Some(enc) = &self.encryption {
            encrypt::WrapKind::for_recipient(&enc.recipient)?;
        }
        Ok(())
    }

    fn flags(&self) -> u32 {
        let mut flags = 0;
        if let Some(enc) = &self.encryption {
            flags |= enc.content_key.cipher().flag();
        }
        if self.load_addr.is_some_and(|a| a != 0) {
            flags |= Flags::RAM_LOAD;
        }
        if self.rom_fixed.is_some() {
            flags |= Flags::ROM_FIXED;
        }
        if self.non_bootable {
            flags |= Flags::NON_BOOTABLE;
        }
        flags
    }

    fn protected_area(&self) -> Result<Option<Vec<u8>>> {
        let counter = self.security_counter.map(u32::to_le_bytes);
        let mut entries: Vec<(u16, &[u8])> = Vec::new();
        if let Some(c) = &counter {
            entries.push((types::SEC_CNT, c));
        }
        if let Some(class) = &self.product_class {
            entries.push((types::PRODUCT_CLASS, class));
        }
        entries.extend(self.custom_tlvs.iter().map(|(t, v)| (*t, v.as_slice())));
        TlvArea::encode(PROTECTED_MAGIC, &entries)
    }
}

/// What signing produced.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedImage {
    /// The header written.
    pub header: ImageHeader,
    /// SHA-256 over header, plaintext payload and protected TLVs (the SHA256 TLV).
    pub digest: [u8; 32],
    /// KEYHASH of the signing key.
    pub key_hash: [u8; 32],
    /// Image length without slot padding.
    pub image_len: u64,
    /// Bytes written in total (image plus padding and trailer).
    pub written: u64,
}

/// Signs (and encrypts) a payload of `payload_len` bytes read from `payload`, writing the image
/// to `out`. SHA-256 runs on a second thread alongside reading, AES-CTR and writing; memory
/// stays at a few 1 MiB buffers whatever the size. The source must yield exactly
/// `payload_len` bytes. On error `out` holds a partial image: write to a temporary file and
/// rename on success.
pub fn sign<R: Read, W: Write>(
    signer: &dyn ImageSigner,
    options: &SignOptions,
    mut payload: R,
    payload_len: u64,
    mut out: W,
) -> Result<SignedImage> {
    options.check()?;
    let public = signer.public_key().clone();
    let sig_type = keys::signature_tlv(&public)?;
    let encrypted = options.encryption.is_some();
    let hdr_size = u64::from(options.header_size);
    // imgtool pads header + payload to a multiple of 16 when encrypting.
    let enc_pad = if encrypted { (16 - (hdr_size + payload_len) % 16) % 16 } else { 0 };
    let img_size = u32::try_from(payload_len + enc_pad)
        .map_err(|_| Error::ImageTooLarge { size: payload_len + enc_pad, max: u64::from(u32::MAX) })?;
    let protected = options.protected_area()?;
    let protect_tlv_size = protected.as_ref().map_or(0, |p| p.len() as u16);
    let header = ImageHeader {
        load_addr: options.load_addr.or(options.rom_fixed).unwrap_or(0),
        hdr_size: options.header_size,
        protect_tlv_size,
        img_size,
        flags: Flags(options.flags()),
        version: options.version,
        pad: 0,
    };
    header.check()?;
    if let Some(slot) = &options.slot {
        // Bounded before anything is read: the signed region alone must fit the slot.
        let min = header.signed_len() + slot.trailer_size(encrypted);
        if min > slot.slot_size {
            return Err(Error::ImageTooLarge { size: min, max: slot.slot_size });
        }
    }

    let mut hash = Context::new(&SHA256);
    let mut written = 0u64;
    let mut emit = |bytes: &[u8]| -> Result<()> {
        out.write_all(bytes)?;
        written += bytes.len() as u64;
        Ok(())
    };

    let mut head = vec![options.erased_value; usize::from(options.header_size)];
    head[..HEADER_LEN].copy_from_slice(&header.encode());
    hash.update(&head);
    emit(&head)?;

    // Read here; hashed, then encrypted, by the pipe's worker; written here as it comes back.
    let transform = match &options.encryption {
        Some(enc) => Transform::EncryptAfterHash(enc.content_key.clone()),
        None => Transform::None,
    };
    let mut pipe = Pipe::start(hash, u64::from(img_size), transform)?;
    let mut left = payload_len;
    let mut first = true;
    while left > 0 || (first && enc_pad > 0) {
        first = false;
        let want = left.min(pipe.buffer_len() as u64) as usize;
        let mut buf = pipe.buffer(&mut emit)?;
        let n = crate::stream::read_full(&mut payload, &mut buf[..want])?;
        if n < want {
            return Err(Error::PayloadLength {
                expected: payload_len,
                actual: payload_len - left + n as u64,
            });
        }
        left -= n as u64;
        let mut len = n;
        if left == 0 {
            // imgtool's zero padding to a 16-byte boundary, encrypted with the last chunk.
            let pad = enc_pad as usize;
            buf[n..n + pad].fill(0);
            len += pad;
        }
        pipe.submit(buf, len, &mut emit)?;
    }
    let mut probe = [0u8; 1];
    if crate::stream::read_full(&mut payload, &mut probe)? != 0 {
        return Err(Error::PayloadLength { expected: payload_len, actual: payload_len + 1 });
    }
    if let Some(p) = &protected {
        pipe.hash_bytes(p)?;
    }
    let digest = pipe.finish(&mut emit)?;
    if let Some(p) = &protected {
        emit(p)?;
    }

    let signature = match public.algorithm() {
        KeyAlgorithm::EcdsaP256 => signer.sign(SignInput::Sha256Digest(&digest))?,
        _ => signer.sign(SignInput::Message(&digest))?,
    };
    // A faulty signer (HSM glitch, wrong key behind a label) must not produce a release.
    if !keys::verify_signature(&public, sig_type, &digest, &signature) {
        return Err(Error::Crypto("the signer returned a signature that does not verify"));
    }
    let key_hash = keys::key_hash(&public)?;
    let spki = public.spki_der().ok_or(Error::BadPublicKey("the key has no public part"))?;
    let key_id: (u16, &[u8]) = match options.key_id {
        KeyIdFormat::Hash => (types::KEYHASH, &key_hash),
        KeyIdFormat::Full => (types::PUBKEY, &spki),
    };
    let wrap = match &options.encryption {
        Some(enc) => Some(encrypt::wrap(&enc.content_key, &enc.recipient)?),
        None => None,
    };
    let mut entries: Vec<(u16, &[u8])> = vec![(types::SHA256, &digest), key_id, (sig_type, &signature)];
    if let Some((t, v)) = &wrap {
        entries.push((*t, v));
    }
    let unprotected = TlvArea::encode(UNPROTECTED_MAGIC, &entries)?.ok_or(Error::Crypto("empty TLV area"))?;
    emit(&unprotected)?;
    let image_len = written;

    if let Some(slot) = &options.slot {
        let needed = image_len + slot.trailer_size(encrypted);
        if needed > slot.slot_size {
            return Err(Error::ImageTooLarge { size: needed, max: slot.slot_size });
        }
        if let Some(pad) = options.pad {
            written +=
                trailer::write_padding(&mut out, slot, pad, image_len, encrypted, options.erased_value)?;
        }
    }
    out.flush()?;
    Ok(SignedImage { header, digest, key_hash, image_len, written })
}
