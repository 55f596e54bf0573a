//! The 32-byte MCUboot image header (`struct image_header`), little-endian:
//!
//! | off | field |
//! |---|---|
//! | 0 | u32 magic `0x96f3b83d` |
//! | 4 | u32 load_addr |
//! | 8 | u16 hdr_size (payload offset, >= 32) |
//! | 10 | u16 protect_tlv_size (whole protected area, 0 if none) |
//! | 12 | u32 img_size (payload only) |
//! | 16 | u32 flags |
//! | 20 | u8 major, u8 minor, u16 revision, u32 build |
//! | 28 | u32 pad (0) |

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};

/// `IMAGE_MAGIC`.
pub const IMAGE_MAGIC: u32 = 0x96f3_b83d;
/// The header proper; `hdr_size` may be larger (the rest is padding, hashed with the header).
pub const HEADER_LEN: usize = 32;

/// The header flags MCUboot and imgtool 2.5.0 define.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Flags(pub u32);

impl Flags {
    /// Position-independent code (deprecated; refused).
    pub const PIC: u32 = 0x1;
    /// Payload is AES-128-CTR encrypted.
    pub const ENCRYPTED_AES128: u32 = 0x4;
    /// Payload is AES-256-CTR encrypted.
    pub const ENCRYPTED_AES256: u32 = 0x8;
    /// Not a bootable image (e.g. a data image for another core).
    pub const NON_BOOTABLE: u32 = 0x10;
    /// Copy to RAM at `load_addr` before running (imgtool `-L`).
    pub const RAM_LOAD: u32 = 0x20;
    /// Built for a fixed flash address in `load_addr` (imgtool `-F`).
    pub const ROM_FIXED: u32 = 0x100;
    /// LZMA1-compressed payload (refused).
    pub const COMPRESSED_LZMA1: u32 = 0x200;
    /// LZMA2-compressed payload (refused).
    pub const COMPRESSED_LZMA2: u32 = 0x400;
    /// ARM Thumb filter on a compressed payload (refused).
    pub const COMPRESSED_ARM_THUMB: u32 = 0x800;

    /// Flags this crate implements; any other bit makes [`ImageHeader::decode`] refuse the image.
    pub const SUPPORTED: u32 = Self::ENCRYPTED_AES128
        | Self::ENCRYPTED_AES256
        | Self::NON_BOOTABLE
        | Self::RAM_LOAD
        | Self::ROM_FIXED;

    /// Names and values in imgtool's order (its `IMAGE_F`), for `inspect`.
    pub const NAMES: [(&'static str, u32); 9] = [
        ("PIC", Self::PIC),
        ("ENCRYPTED_AES128", Self::ENCRYPTED_AES128),
        ("ENCRYPTED_AES256", Self::ENCRYPTED_AES256),
        ("NON_BOOTABLE", Self::NON_BOOTABLE),
        ("RAM_LOAD", Self::RAM_LOAD),
        ("ROM_FIXED", Self::ROM_FIXED),
        ("COMPRESSED_LZMA1", Self::COMPRESSED_LZMA1),
        ("COMPRESSED_LZMA2", Self::COMPRESSED_LZMA2),
        ("COMPRESSED_ARM_THUMB", Self::COMPRESSED_ARM_THUMB),
    ];

    /// True when every bit of `flag` is set.
    pub fn contains(self, flag: u32) -> bool {
        self.0 & flag == flag
    }

    /// The names of the set flags (unknown bits are not named).
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES.iter().filter(|(_, bit)| self.0 & bit != 0).map(|(name, _)| *name).collect()
    }

    /// The payload cipher the flags announce, if any.
    pub fn cipher(self) -> Option<crate::Cipher> {
        if self.contains(Self::ENCRYPTED_AES256) {
            Some(crate::Cipher::Aes256Ctr)
        } else if self.contains(Self::ENCRYPTED_AES128) {
            Some(crate::Cipher::Aes128Ctr)
        } else {
            None
        }
    }
}

/// An image version `major.minor.revision+build`, as imgtool's `-v 1.2.3+4`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// 0..=255.
    pub major: u8,
    /// 0..=255.
    pub minor: u8,
    /// 0..=65535.
    pub revision: u16,
    /// 0..=4294967295.
    pub build: u32,
}

impl Version {
    /// A version from its four parts.
    pub const fn new(major: u8, minor: u8, revision: u16, build: u32) -> Self {
        Self { major, minor, revision, build }
    }

    /// imgtool's `-s auto`: `major << 24 | minor << 16 | revision`.
    pub fn auto_security_counter(self) -> u32 {
        (u32::from(self.major) << 24) | (u32::from(self.minor) << 16) | u32::from(self.revision)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}+{}", self.major, self.minor, self.revision, self.build)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for Version {
    type Err = Error;

    /// Parses `1`, `1.2`, `1.2.3` or `1.2.3+4` (imgtool's `decode_version`); missing parts are 0.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidOption {
            option: "version",
            reason: format!("{s:?}: {reason}; expected major[.minor[.revision[+build]]]"),
        };
        let (main, build) = match s.split_once('+') {
            Some((main, build)) => (main, Some(build)),
            None => (s, None),
        };
        let parts: Vec<&str> = main.split('.').collect();
        if parts.len() > 3 || (build.is_some() && parts.len() != 3) {
            return Err(bad("wrong number of parts"));
        }
        fn num<T: FromStr>(part: Option<&&str>) -> Option<Option<T>> {
            match part {
                None => Some(None),
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok().map(Some),
                Some(_) => None,
            }
        }
        let major = num::<u8>(parts.first()).ok_or_else(|| bad("major must be 0..=255"))?;
        let minor = num::<u8>(parts.get(1)).ok_or_else(|| bad("minor must be 0..=255"))?;
        let revision = num::<u16>(parts.get(2)).ok_or_else(|| bad("revision must be 0..=65535"))?;
        let build = num::<u32>(build.as_ref()).ok_or_else(|| bad("build must be 0..=4294967295"))?;
        Ok(Version {
            major: major.ok_or_else(|| bad("major is required"))?,
            minor: minor.unwrap_or(0),
            revision: revision.unwrap_or(0),
            build: build.unwrap_or(0),
        })
    }
}

/// A decoded image header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Load address (RAM_LOAD) or fixed flash address (ROM_FIXED); 0 otherwise.
    pub load_addr: u32,
    /// Offset of the payload: the 32-byte header plus padding.
    pub hdr_size: u16,
    /// Length of the protected TLV area including its 4-byte info header; 0 when absent.
    pub protect_tlv_size: u16,
    /// Payload length (for encrypted images, padded to a multiple of 16 as imgtool does).
    pub img_size: u32,
    /// Flags.
    pub flags: Flags,
    /// Version.
    pub version: Version,
    /// The trailing `_pad1` word (0 from imgtool; hashed, so any value is covered by the signature).
    pub pad: u32,
}

impl ImageHeader {
    /// Decodes and sanity-checks the first 32 bytes. Does not look at anything after them.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Self> {
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let magic = u32_at(0);
        if magic != IMAGE_MAGIC {
            return Err(Error::BadMagic { found: magic });
        }
        let header = ImageHeader {
            load_addr: u32_at(4),
            hdr_size: u16_at(8),
            protect_tlv_size: u16_at(10),
            img_size: u32_at(12),
            flags: Flags(u32_at(16)),
            version: Version::new(bytes[20], bytes[21], u16_at(22), u32_at(24)),
            pad: u32_at(28),
        };
        header.check()?;
        Ok(header)
    }

    /// The header's own consistency rules (everything that does not need the rest of the image).
    pub fn check(&self) -> Result<()> {
        if usize::from(self.hdr_size) < HEADER_LEN {
            return Err(Error::Header { field: "hdr_size", reason: "smaller than the 32-byte header" });
        }
        if self.protect_tlv_size != 0 && self.protect_tlv_size < 4 {
            return Err(Error::Header {
                field: "protect_tlv_size",
                reason: "non-zero but shorter than the area's info header",
            });
        }
        let flags = self.flags.0;
        let unsupported = flags & !Flags::SUPPORTED;
        if unsupported != 0 {
            return Err(Error::UnsupportedFlags { flags: unsupported });
        }
        let both_aes = Flags::ENCRYPTED_AES128 | Flags::ENCRYPTED_AES256;
        if flags & both_aes == both_aes {
            return Err(Error::UnsupportedFlags { flags: both_aes });
        }
        let both_addr = Flags::RAM_LOAD | Flags::ROM_FIXED;
        if flags & both_addr == both_addr {
            return Err(Error::UnsupportedFlags { flags: both_addr });
        }
        Ok(())
    }

    /// Encodes the 32 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&IMAGE_MAGIC.to_le_bytes());
        out[4..8].copy_from_slice(&self.load_addr.to_le_bytes());
        out[8..10].copy_from_slice(&self.hdr_size.to_le_bytes());
        out[10..12].copy_from_slice(&self.protect_tlv_size.to_le_bytes());
        out[12..16].copy_from_slice(&self.img_size.to_le_bytes());
        out[16..20].copy_from_slice(&self.flags.0.to_le_bytes());
        out[20] = self.version.major;
        out[21] = self.version.minor;
        out[22..24].copy_from_slice(&self.version.revision.to_le_bytes());
        out[24..28].copy_from_slice(&self.version.build.to_le_bytes());
        out[28..32].copy_from_slice(&self.pad.to_le_bytes());
        out
    }

    /// Offset of the first TLV area: `hdr_size + img_size`.
    pub fn tlv_offset(&self) -> u64 {
        u64::from(self.hdr_size) + u64::from(self.img_size)
    }

    /// Length of the hashed and signed region: header (with padding), payload, protected TLVs.
    pub fn signed_len(&self) -> u64 {
        self.tlv_offset() + u64::from(self.protect_tlv_size)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn version_parses_like_imgtool() {
        assert_eq!("1.2.3+4".parse::<Version>().unwrap(), Version::new(1, 2, 3, 4));
        assert_eq!("1".parse::<Version>().unwrap(), Version::new(1, 0, 0, 0));
        assert_eq!(
            "255.255.65535+4294967295".parse::<Version>().unwrap().to_string(),
            "255.255.65535+4294967295"
        );
        for bad in ["", "1.", "1.2.3.4", "256", "1.2+3", "a.b", "1.2.3+", "-1"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
        assert_eq!(Version::new(1, 2, 3, 4).auto_security_counter(), 0x0102_0003);
    }

    #[test]
    fn header_round_trip_and_layout() {
        let h = ImageHeader {
            load_addr: 0,
            hdr_size: 0x200,
            protect_tlv_size: 12,
            img_size: 1000,
            flags: Flags(Flags::ENCRYPTED_AES128),
            version: Version::new(1, 2, 3, 4),
            pad: 0,
        };
        let bytes = h.encode();
        assert_eq!(&bytes[20..28], &[1, 2, 3, 0, 4, 0, 0, 0]);
        assert_eq!(&bytes[0..4], &[0x3d, 0xb8, 0xf3, 0x96]);
        assert_eq!(ImageHeader::decode(&bytes).unwrap(), h);
    }
}
