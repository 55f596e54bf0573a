//! Parsing: an [`Image`] is the header and both TLV areas of an MCUboot image, read from a
//! seekable source without touching the payload. Every size is checked against [`Limits`] and
//! against the source length before anything is hashed (mcuboot#2025: a corrupt `img_size` once
//! cost hours of hashing).

use std::io::{Cursor, Read, Seek, SeekFrom};

use crate::encrypt::Cipher;
use crate::error::{Error, Result, TlvProblem};
use crate::header::{HEADER_LEN, ImageHeader};
use crate::tlv::{self, INFO_LEN, PROTECTED_MAGIC, Tlv, TlvArea, UNPROTECTED_MAGIC, types};

/// Size bounds applied before any byte of the payload is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The slot: the whole image, TLVs and any trailer must fit. Default 1 GiB, far above any
    /// MCU slot and enough for Linux-class images; devices set their real slot size.
    pub slot_size: u64,
    /// Largest TLV area accepted (each of protected and unprotected). Default 8 KiB: a P-256
    /// signature, key hash, hash and key wrap take about 300 bytes.
    pub max_tlv_area: u16,
}

impl Limits {
    /// Default slot size (1 GiB).
    pub const DEFAULT_SLOT_SIZE: u64 = 1 << 30;
    /// Default TLV area limit (8 KiB).
    pub const DEFAULT_MAX_TLV_AREA: u16 = 8 * 1024;

    /// Defaults with a given slot size.
    pub fn for_slot(slot_size: u64) -> Self {
        Self { slot_size, ..Self::default() }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self { slot_size: Self::DEFAULT_SLOT_SIZE, max_tlv_area: Self::DEFAULT_MAX_TLV_AREA }
    }
}

/// How much of the tail of trailing data (slot padding and trailer) is kept for `inspect`.
pub(crate) const TRAILER_TAIL: usize = 256;

/// A parsed, **unverified** image: header and TLV areas. Nothing here is trustworthy until
/// [`Image::verify`] or [`Image::verify_encrypted`] turns it into a
/// [`VerifiedImage`](crate::VerifiedImage).
#[derive(Clone, Debug)]
pub struct Image {
    pub(crate) header: ImageHeader,
    /// The first `hdr_size` bytes as read (header and its padding), compared again when hashing.
    pub(crate) header_bytes: Vec<u8>,
    pub(crate) protected: Option<TlvArea>,
    pub(crate) protected_bytes: Vec<u8>,
    pub(crate) unprotected: TlvArea,
    pub(crate) source_len: u64,
    pub(crate) trailer_tail: Vec<u8>,
}

fn read_at<R: Read + Seek>(src: &mut R, offset: u64, buf: &mut [u8]) -> Result<()> {
    src.seek(SeekFrom::Start(offset))?;
    src.read_exact(buf)?;
    Ok(())
}

fn too_large(size: u64, max: u64) -> Error {
    Error::ImageTooLarge { size, max }
}

impl Image {
    /// Parses an image held in memory.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Image> {
        Self::read(&mut Cursor::new(bytes), limits)
    }

    /// Reads the header and TLV areas from a seekable source (a file, a flash slot adapter),
    /// seeking over the payload. Reads at most `hdr_size` + both TLV areas + 256 trailer bytes.
    pub fn read<R: Read + Seek>(src: &mut R, limits: &Limits) -> Result<Image> {
        let source_len = src.seek(SeekFrom::End(0))?;
        if source_len > limits.slot_size {
            return Err(too_large(source_len, limits.slot_size));
        }
        let truncated = |needed: u64| Error::Truncated { needed, available: source_len };
        if source_len < HEADER_LEN as u64 {
            return Err(truncated(HEADER_LEN as u64));
        }
        let mut head = [0u8; HEADER_LEN];
        read_at(src, 0, &mut head)?;
        let header = ImageHeader::decode(&head)?;

        // Bounds first: the smallest image this header describes must fit the slot.
        let signed_len = header.signed_len();
        let min_len = signed_len + INFO_LEN as u64;
        if min_len > limits.slot_size {
            return Err(too_large(min_len, limits.slot_size));
        }
        if header.protect_tlv_size > limits.max_tlv_area {
            return Err(Error::Tlv {
                offset: header.tlv_offset(),
                kind: TlvProblem::AreaTooLarge { len: header.protect_tlv_size, max: limits.max_tlv_area },
            });
        }
        if min_len > source_len {
            return Err(truncated(min_len));
        }

        let mut header_bytes = vec![0u8; usize::from(header.hdr_size)];
        read_at(src, 0, &mut header_bytes)?;
        if header_bytes[..HEADER_LEN] != head {
            return Err(Error::SourceChanged);
        }

        // Protected area: present exactly when the header says so (MCUboot's tlv_iter_begin).
        let tlv_offset = header.tlv_offset();
        let mut info = [0u8; INFO_LEN];
        read_at(src, tlv_offset, &mut info)?;
        let (magic, total) = TlvArea::info(info);
        let (protected, protected_bytes) = if header.protect_tlv_size == 0 {
            if magic == PROTECTED_MAGIC {
                return Err(Error::Tlv {
                    offset: tlv_offset,
                    kind: TlvProblem::ProtectedSizeMismatch { area: total, header: 0 },
                });
            }
            (None, Vec::new())
        } else {
            if magic != PROTECTED_MAGIC {
                return Err(Error::Tlv {
                    offset: tlv_offset,
                    kind: TlvProblem::BadAreaMagic { found: magic, expected: PROTECTED_MAGIC },
                });
            }
            if total != header.protect_tlv_size {
                return Err(Error::Tlv {
                    offset: tlv_offset,
                    kind: TlvProblem::ProtectedSizeMismatch { area: total, header: header.protect_tlv_size },
                });
            }
            let mut bytes = vec![0u8; usize::from(total)];
            read_at(src, tlv_offset, &mut bytes)?;
            let area = TlvArea::parse(&bytes, tlv_offset, PROTECTED_MAGIC)?;
            tlv::check_protected(&area)?;
            (Some(area), bytes)
        };

        read_at(src, signed_len, &mut info)?;
        let (magic, total) = TlvArea::info(info);
        if magic != UNPROTECTED_MAGIC {
            return Err(Error::Tlv {
                offset: signed_len,
                kind: TlvProblem::BadAreaMagic { found: magic, expected: UNPROTECTED_MAGIC },
            });
        }
        if total > limits.max_tlv_area {
            return Err(Error::Tlv {
                offset: signed_len,
                kind: TlvProblem::AreaTooLarge { len: total, max: limits.max_tlv_area },
            });
        }
        if usize::from(total) < INFO_LEN {
            return Err(Error::Tlv { offset: signed_len, kind: TlvProblem::AreaTooShort(total) });
        }
        let end = signed_len + u64::from(total);
        if end > source_len {
            return Err(truncated(end));
        }
        let mut bytes = vec![0u8; usize::from(total)];
        read_at(src, signed_len, &mut bytes)?;
        let unprotected = TlvArea::parse(&bytes, signed_len, UNPROTECTED_MAGIC)?;
        tlv::check_unprotected(&unprotected)?;

        let trailing = source_len - end;
        let tail_len = trailing.min(TRAILER_TAIL as u64);
        let mut trailer_tail = vec![0u8; tail_len as usize];
        read_at(src, source_len - tail_len, &mut trailer_tail)?;

        Ok(Image { header, header_bytes, protected, protected_bytes, unprotected, source_len, trailer_tail })
    }

    /// The decoded header.
    pub fn header(&self) -> &ImageHeader {
        &self.header
    }

    /// Protected (signed) TLVs, in image order.
    pub fn protected_tlvs(&self) -> &[Tlv] {
        self.protected.as_ref().map_or(&[], |a| &a.entries)
    }

    /// Unprotected TLVs (hash, key id, signature, key wrap), in image order.
    pub fn unprotected_tlvs(&self) -> &[Tlv] {
        &self.unprotected.entries
    }

    /// The protected area, if any.
    pub fn protected_area(&self) -> Option<&TlvArea> {
        self.protected.as_ref()
    }

    /// The unprotected area.
    pub fn unprotected_area(&self) -> &TlvArea {
        &self.unprotected
    }

    fn protected_value(&self, tlv_type: u16) -> Option<&[u8]> {
        self.protected.as_ref()?.get(tlv_type).map(|t| t.data.as_slice())
    }

    /// The security counter (protected SEC_CNT TLV), if present.
    pub fn security_counter(&self) -> Option<u32> {
        let v: [u8; 4] = self.protected_value(types::SEC_CNT)?.try_into().ok()?;
        Some(u32::from_le_bytes(v))
    }

    /// ironclad's product-class UUID (protected TLV [`types::PRODUCT_CLASS`]), if present.
    pub fn product_class(&self) -> Option<[u8; 16]> {
        self.protected_value(types::PRODUCT_CLASS)?.try_into().ok()
    }

    /// The image hash as recorded in the SHA256 TLV (unverified).
    pub fn recorded_hash(&self) -> Option<[u8; 32]> {
        self.unprotected.get(types::SHA256)?.data.as_slice().try_into().ok()
    }

    /// The payload cipher announced by the header, if the image is encrypted.
    pub fn cipher(&self) -> Option<Cipher> {
        self.header.flags.cipher()
    }

    /// The key-wrap TLV (ENC_*), if any.
    pub fn key_wrap_tlv(&self) -> Option<&Tlv> {
        self.unprotected
            .entries
            .iter()
            .find(|t| (types::ENC_RSA2048..=types::ENC_X25519_SHA512).contains(&t.tlv_type))
    }

    /// Length of the image proper: header, payload and both TLV areas.
    pub fn image_len(&self) -> u64 {
        self.header.signed_len() + u64::from(self.unprotected.total)
    }

    /// Length of the source the image was read from (the image plus any slot padding/trailer).
    pub fn source_len(&self) -> u64 {
        self.source_len
    }

    /// Bytes after the unprotected TLV area (slot padding and trailer from `imgtool --pad`).
    pub fn trailing_len(&self) -> u64 {
        self.source_len - self.image_len()
    }
}
