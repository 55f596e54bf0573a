//! TLV areas: `{u16 magic, u16 total}` then entries `{u16 type, u16 len, data}`, little-endian.
//!
//! The protected area (magic 0x6908) follows the payload and is hashed and signed; the
//! unprotected area (magic 0x6907) follows it and carries the hash, key id, signature and key
//! wrap. Type numbers are MCUboot's `image.h` / imgtool 2.5.0's `TLV_VALUES`.

use serde::Serialize;

use crate::error::{Error, Result, TlvProblem};

/// TLV type numbers.
pub mod types {
    /// SHA-256 of the signing public key's DER SubjectPublicKeyInfo.
    pub const KEYHASH: u16 = 0x01;
    /// The signing public key itself (DER SubjectPublicKeyInfo; imgtool `--public-key-format full`).
    pub const PUBKEY: u16 = 0x02;
    /// SHA-256 of header, payload and protected TLVs.
    pub const SHA256: u16 = 0x10;
    /// SHA-384 image hash (not supported).
    pub const SHA384: u16 = 0x11;
    /// SHA-512 image hash (not supported).
    pub const SHA512: u16 = 0x12;
    /// RSA-2048-PSS signature (not supported).
    pub const RSA2048_PSS: u16 = 0x20;
    /// ECDSA signature, DER (P-256 here).
    pub const ECDSA_SIG: u16 = 0x22;
    /// RSA-3072-PSS signature (not supported).
    pub const RSA3072_PSS: u16 = 0x23;
    /// Ed25519 signature over the 32-byte SHA-256 digest.
    pub const ED25519: u16 = 0x24;
    /// Marks a "pure" signature over the whole image (not supported).
    pub const SIG_PURE: u16 = 0x25;
    /// RSA-OAEP key wrap (not supported).
    pub const ENC_RSA2048: u16 = 0x30;
    /// AES key wrap with a pre-shared KEK (not supported).
    pub const ENC_KW: u16 = 0x31;
    /// ECIES-P256 key wrap: ephemeral point (65) ‖ HMAC-SHA256 tag (32) ‖ wrapped key (16/32).
    pub const ENC_EC256: u16 = 0x32;
    /// ECIES-X25519 key wrap: ephemeral key (32) ‖ HMAC-SHA256 tag (32) ‖ wrapped key (16/32).
    pub const ENC_X25519: u16 = 0x33;
    /// ECIES-X25519 with HKDF/HMAC-SHA512 (recognised; not supported, see the crate docs).
    pub const ENC_X25519_SHA512: u16 = 0x34;
    /// Dependency on another image: u8 image id, 3 pad, 8-byte version.
    pub const DEPENDENCY: u16 = 0x40;
    /// Security counter (u32), compared with the device's anti-rollback counter.
    pub const SEC_CNT: u16 = 0x50;
    /// CBOR boot record for measured boot.
    pub const BOOT_RECORD: u16 = 0x60;
    /// Decompressed size (compressed images are refused).
    pub const DECOMP_SIZE: u16 = 0x70;
    /// Decompressed hash.
    pub const DECOMP_SHA: u16 = 0x71;
    /// Decompressed signature.
    pub const DECOMP_SIGNATURE: u16 = 0x72;
    /// Compressed-then-decrypted size.
    pub const COMP_DEC_SIZE: u16 = 0x73;
    /// Vendor UUID (16 bytes).
    pub const UUID_VID: u16 = 0x74;
    /// Class UUID (16 bytes).
    pub const UUID_CID: u16 = 0x75;
    /// ironclad's product-class TLV (16-byte UUID) in the vendor range `0xXXA0..=0xXXFF`:
    /// high byte 0x1C ("iC"), low byte 0xA0. Protected, so signed. `imgtool sign --custom-tlv
    /// 0x1ca0 0x<32 hex digits>` writes the same bytes.
    pub const PRODUCT_CLASS: u16 = 0x1CA0;
}

/// Magic of the protected TLV area.
pub const PROTECTED_MAGIC: u16 = 0x6908;
/// Magic of the unprotected TLV area.
pub const UNPROTECTED_MAGIC: u16 = 0x6907;
/// Size of the area info header and of each entry header.
pub const INFO_LEN: usize = 4;

/// True for MCUboot's vendor-reserved types `0xXXA0..=0xXXFF` (0xFFFF excluded: it means "any").
pub fn is_vendor(tlv_type: u16) -> bool {
    tlv_type & 0xFF >= 0xA0 && tlv_type != 0xFFFF
}

/// imgtool's name for a TLV type (`dumpinfo`'s `type_name`), `IRONCLAD_PRODUCT_CLASS` for ours,
/// `UNKNOWN` otherwise.
pub fn type_name(tlv_type: u16) -> &'static str {
    use types::*;
    match tlv_type {
        KEYHASH => "KEYHASH",
        PUBKEY => "PUBKEY",
        SHA256 => "SHA256",
        SHA384 => "SHA384",
        SHA512 => "SHA512",
        RSA2048_PSS => "RSA2048",
        ECDSA_SIG => "ECDSASIG",
        RSA3072_PSS => "RSA3072",
        ED25519 => "ED25519",
        SIG_PURE => "SIG_PURE",
        ENC_RSA2048 => "ENCRSA2048",
        ENC_KW => "ENCKW",
        ENC_EC256 => "ENCEC256",
        ENC_X25519 => "ENCX25519",
        ENC_X25519_SHA512 => "ENCX25519_SHA512",
        DEPENDENCY => "DEPENDENCY",
        SEC_CNT => "SEC_CNT",
        BOOT_RECORD => "BOOT_RECORD",
        DECOMP_SIZE => "DECOMP_SIZE",
        DECOMP_SHA => "DECOMP_SHA",
        DECOMP_SIGNATURE => "DECOMP_SIGNATURE",
        COMP_DEC_SIZE => "COMP_DEC_SIZE",
        UUID_VID => "UUID_VID",
        UUID_CID => "UUID_CID",
        PRODUCT_CLASS => "IRONCLAD_PRODUCT_CLASS",
        _ => "UNKNOWN",
    }
}

/// One TLV entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tlv {
    /// Offset of the entry's 4-byte header from the start of the image.
    pub offset: u64,
    /// The type.
    #[serde(rename = "type")]
    pub tlv_type: u16,
    /// The value.
    #[serde(serialize_with = "crate::inspect::ser_hex")]
    pub data: Vec<u8>,
}

/// A parsed TLV area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlvArea {
    /// Offset of the area's info header from the start of the image.
    pub offset: u64,
    /// The area's magic.
    pub magic: u16,
    /// The area's total length, info header included.
    pub total: u16,
    /// Its entries, in order.
    pub entries: Vec<Tlv>,
}

impl TlvArea {
    /// Reads the 4-byte info header of an area.
    pub(crate) fn info(bytes: [u8; INFO_LEN]) -> (u16, u16) {
        (u16::from_le_bytes([bytes[0], bytes[1]]), u16::from_le_bytes([bytes[2], bytes[3]]))
    }

    /// Parses a whole area (`bytes` is exactly `total` long and starts with the info header).
    pub(crate) fn parse(bytes: &[u8], offset: u64, expected_magic: u16) -> Result<TlvArea> {
        let tlv_err = |at: usize, kind| Error::Tlv { offset: offset + at as u64, kind };
        let head: [u8; INFO_LEN] = bytes
            .get(..INFO_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(tlv_err(0, TlvProblem::AreaTooShort(0)))?;
        let (magic, total) = Self::info(head);
        if magic != expected_magic {
            return Err(tlv_err(0, TlvProblem::BadAreaMagic { found: magic, expected: expected_magic }));
        }
        if usize::from(total) < INFO_LEN {
            return Err(tlv_err(0, TlvProblem::AreaTooShort(total)));
        }
        debug_assert_eq!(bytes.len(), usize::from(total));
        let mut entries = Vec::new();
        let mut at = INFO_LEN;
        while at < bytes.len() {
            let Some(entry_head) = bytes.get(at..at + INFO_LEN) else {
                return Err(tlv_err(at, TlvProblem::Overrun { tlv_type: 0, len: 0 }));
            };
            let tlv_type = u16::from_le_bytes([entry_head[0], entry_head[1]]);
            let len = u16::from_le_bytes([entry_head[2], entry_head[3]]);
            let data_start = at + INFO_LEN;
            let Some(data) = bytes.get(data_start..data_start + usize::from(len)) else {
                return Err(tlv_err(at, TlvProblem::Overrun { tlv_type, len }));
            };
            entries.push(Tlv { offset: offset + at as u64, tlv_type, data: data.to_vec() });
            at = data_start + usize::from(len);
        }
        Ok(TlvArea { offset, magic, total, entries })
    }

    /// Encodes an area; `None` when `entries` is empty (imgtool writes no area then).
    pub(crate) fn encode(magic: u16, entries: &[(u16, &[u8])]) -> Result<Option<Vec<u8>>> {
        if entries.is_empty() {
            return Ok(None);
        }
        let total: usize = INFO_LEN + entries.iter().map(|(_, d)| INFO_LEN + d.len()).sum::<usize>();
        let too_big = || Error::InvalidOption {
            option: "tlv",
            reason: format!("TLV area of {total} bytes exceeds 65535"),
        };
        let total16 = u16::try_from(total).map_err(|_| too_big())?;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&magic.to_le_bytes());
        out.extend_from_slice(&total16.to_le_bytes());
        for (tlv_type, data) in entries {
            let len = u16::try_from(data.len()).map_err(|_| too_big())?;
            out.extend_from_slice(&tlv_type.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(data);
        }
        Ok(Some(out))
    }

    /// The entries of one type.
    pub fn find(&self, tlv_type: u16) -> impl Iterator<Item = &Tlv> {
        self.entries.iter().filter(move |t| t.tlv_type == tlv_type)
    }

    /// The only entry of a type (duplicates were refused at parse time for single-use types).
    pub fn get(&self, tlv_type: u16) -> Option<&Tlv> {
        self.find(tlv_type).next()
    }
}

/// A length rule: its description and its check.
type LenRule = (&'static str, fn(usize) -> bool);

/// Length rules for the types this crate interprets.
fn expected_len(tlv_type: u16) -> Option<LenRule> {
    use types::*;
    Some(match tlv_type {
        KEYHASH | SHA256 => ("32", |l| l == 32),
        PUBKEY => ("1..=128", |l| (1..=128).contains(&l)),
        ECDSA_SIG => ("8..=72 (DER)", |l| (8..=72).contains(&l)),
        ED25519 => ("64", |l| l == 64),
        ENC_EC256 => ("113 or 129", |l| l == 113 || l == 129),
        ENC_X25519 => ("80 or 96", |l| l == 80 || l == 96),
        SEC_CNT => ("4", |l| l == 4),
        DEPENDENCY => ("12", |l| l == 12),
        UUID_VID | UUID_CID | PRODUCT_CLASS => ("16", |l| l == 16),
        _ => return None,
    })
}

fn check_len(tlv: &Tlv) -> Result<()> {
    if let Some((expected, ok)) = expected_len(tlv.tlv_type)
        && !ok(tlv.data.len())
    {
        return Err(Error::Tlv {
            offset: tlv.offset,
            kind: TlvProblem::BadLength { tlv_type: tlv.tlv_type, len: tlv.data.len() as u16, expected },
        });
    }
    Ok(())
}

fn check_unique(area: &TlvArea, single: &[u16]) -> Result<()> {
    for &t in single {
        if let Some(second) = area.find(t).nth(1) {
            return Err(Error::Tlv { offset: second.offset, kind: TlvProblem::Duplicate(t) });
        }
    }
    Ok(())
}

/// Rules for the protected area: known metadata types and vendor types only. Signature, hash
/// and key types do not belong here; anything unknown is refused as critical.
pub(crate) fn check_protected(area: &TlvArea) -> Result<()> {
    use types::*;
    for tlv in &area.entries {
        match tlv.tlv_type {
            SEC_CNT | DEPENDENCY | BOOT_RECORD | UUID_VID | UUID_CID => {}
            t if is_vendor(t) => {}
            t @ (DECOMP_SIZE | DECOMP_SHA | DECOMP_SIGNATURE | COMP_DEC_SIZE) => {
                return Err(Error::UnsupportedTlv { tlv_type: t, name: type_name(t) });
            }
            t @ 0x01..=0x3F => return Err(Error::Tlv { offset: tlv.offset, kind: TlvProblem::WrongArea(t) }),
            t => return Err(Error::UnknownCriticalTlv { offset: tlv.offset, tlv_type: t }),
        }
        check_len(tlv)?;
    }
    check_unique(area, &[SEC_CNT, BOOT_RECORD, UUID_VID, UUID_CID, PRODUCT_CLASS])
}

/// Rules for the unprotected area: signed-metadata types must not appear here (a reader could
/// take an unsigned security counter for a signed one); other unknown types are ignored, as
/// MCUboot does.
pub(crate) fn check_unprotected(area: &TlvArea) -> Result<()> {
    use types::*;
    for tlv in &area.entries {
        if let t @ (SEC_CNT | DEPENDENCY | BOOT_RECORD | UUID_VID | UUID_CID | PRODUCT_CLASS) = tlv.tlv_type {
            return Err(Error::Tlv { offset: tlv.offset, kind: TlvProblem::WrongArea(t) });
        }
        check_len(tlv)?;
    }
    check_unique(area, &[SHA256])?;
    let mut wraps = area.entries.iter().filter(|t| (ENC_RSA2048..=ENC_X25519_SHA512).contains(&t.tlv_type));
    if let (Some(_), Some(second)) = (wraps.next(), wraps.next()) {
        return Err(Error::Tlv { offset: second.offset, kind: TlvProblem::Duplicate(second.tlv_type) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn area_round_trip() {
        let bytes = TlvArea::encode(PROTECTED_MAGIC, &[(types::SEC_CNT, &[7, 0, 0, 0])]).unwrap().unwrap();
        assert_eq!(bytes, [0x08, 0x69, 12, 0, 0x50, 0, 4, 0, 7, 0, 0, 0]);
        let area = TlvArea::parse(&bytes, 100, PROTECTED_MAGIC).unwrap();
        assert_eq!(area.entries[0].offset, 104);
        assert!(TlvArea::parse(&bytes, 0, UNPROTECTED_MAGIC).is_err());
        assert!(TlvArea::encode(UNPROTECTED_MAGIC, &[]).unwrap().is_none());
    }

    #[test]
    fn overrun_is_reported_with_offset() {
        let mut bytes =
            TlvArea::encode(PROTECTED_MAGIC, &[(types::SEC_CNT, &[7, 0, 0, 0])]).unwrap().unwrap();
        bytes[6] = 5; // len 5 > 4 available
        let err = TlvArea::parse(&bytes, 0x400, PROTECTED_MAGIC).unwrap_err();
        assert!(matches!(
            err,
            Error::Tlv { offset: 0x404, kind: TlvProblem::Overrun { tlv_type: 0x50, len: 5 } }
        ));
    }

    #[test]
    fn vendor_range() {
        assert!(is_vendor(0xA0) && is_vendor(types::PRODUCT_CLASS) && is_vendor(0x12FF));
        assert!(!is_vendor(0x50) && !is_vendor(0x0100) && !is_vendor(0xFFFF));
    }
}
