//! A serialisable description of an image for `fw inspect --json`. `header`, `tlv_area` and
//! `trailer` carry the same keys and values as `imgtool dumpinfo -f json` (absent parts are
//! `null` where imgtool writes `{}`); `summary` adds what a reader wants first. Nothing here is
//! verified: inspect describes, [`Image::verify`](crate::Image::verify) decides.

use serde::{Serialize, Serializer};

use crate::header::IMAGE_MAGIC;
use crate::image::Image;
use crate::tlv::{Tlv, TlvArea, type_name, types};
use crate::trailer::{self, TrailerInfo};

pub(crate) fn ser_hex<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// Everything `inspect` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImageInfo {
    /// Header fields, as dumpinfo names them.
    pub header: HeaderInfo,
    /// Both TLV areas, as dumpinfo lists them.
    pub tlv_area: TlvAreaInfo,
    /// Trailer fields when the image is followed by slot padding (`--pad`).
    pub trailer: Option<TrailerInfo>,
    /// Interpreted fields.
    pub summary: Summary,
}

/// dumpinfo's `header`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HeaderInfo {
    /// Always 0x96f3b83d for a parsed image.
    pub magic: u32,
    /// Load address.
    pub load_addr: u32,
    /// Header size.
    pub hdr_size: u16,
    /// Protected TLV area size.
    pub protected_tlv_size: u16,
    /// Payload size.
    pub img_size: u32,
    /// Raw flags.
    pub flags: u32,
    /// `major.minor.revision+build`.
    pub version: String,
}

/// A TLV area's info header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AreaHeader {
    /// 0x6908 (26888) protected, 0x6907 (26887) unprotected.
    pub magic: u16,
    /// Total length including the info header.
    pub tlv_tot: u16,
}

/// One TLV as dumpinfo lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlvInfo {
    /// Type number.
    #[serde(rename = "type")]
    pub tlv_type: u16,
    /// imgtool's name (`UNKNOWN` for types it does not know; ours is `IRONCLAD_PRODUCT_CLASS`).
    pub type_name: &'static str,
    /// Value length.
    pub len: u16,
    /// Value, hex.
    #[serde(serialize_with = "ser_hex")]
    pub data: Vec<u8>,
}

/// dumpinfo's `tlv_area`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlvAreaInfo {
    /// Protected area header, `None` when there is no protected area.
    pub tlv_hdr_prot: Option<AreaHeader>,
    /// Protected TLVs.
    pub tlvs_prot: Vec<TlvInfo>,
    /// Unprotected area header.
    pub tlv_hdr: AreaHeader,
    /// Unprotected TLVs.
    pub tlvs: Vec<TlvInfo>,
}

/// The key id an image carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyIdInfo {
    /// `KEYHASH` or `PUBKEY`.
    pub kind: &'static str,
    /// The value, hex.
    pub value: String,
}

/// Encryption as announced by the header and the key-wrap TLV.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EncryptionInfo {
    /// `aes128-ctr` or `aes256-ctr`.
    pub cipher: &'static str,
    /// The key-wrap TLV's name (`ENCX25519`, `ENCEC256`, ...), `None` when absent.
    pub key_wrap: Option<&'static str>,
}

/// Interpreted, unverified fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// Version.
    pub version: String,
    /// Names of the set flags.
    pub flags: Vec<&'static str>,
    /// Security counter.
    pub security_counter: Option<u32>,
    /// Product class UUID (`8-4-4-4-12` hex).
    pub product_class: Option<String>,
    /// Recorded SHA-256, hex.
    pub hash: Option<String>,
    /// Key ids, in image order.
    pub key_ids: Vec<KeyIdInfo>,
    /// Signature TLV names, in image order.
    pub signatures: Vec<&'static str>,
    /// Encryption.
    pub encryption: Option<EncryptionInfo>,
    /// Header + payload + TLVs.
    pub image_len: u64,
    /// Bytes after the TLVs (slot padding and trailer).
    pub trailing_len: u64,
}

fn tlv_infos(tlvs: &[Tlv]) -> Vec<TlvInfo> {
    tlvs.iter()
        .map(|t| TlvInfo {
            tlv_type: t.tlv_type,
            type_name: type_name(t.tlv_type),
            len: t.data.len() as u16,
            data: t.data.clone(),
        })
        .collect()
}

fn area_header(area: &TlvArea) -> AreaHeader {
    AreaHeader { magic: area.magic, tlv_tot: area.total }
}

fn uuid_text(u: &[u8; 16]) -> String {
    let h = hex::encode(u);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

impl Image {
    /// Describes the image (see the module docs). Pure: works on what [`Image::read`] kept.
    pub fn inspect(&self) -> ImageInfo {
        let h = self.header();
        let header = HeaderInfo {
            magic: IMAGE_MAGIC,
            load_addr: h.load_addr,
            hdr_size: h.hdr_size,
            protected_tlv_size: h.protect_tlv_size,
            img_size: h.img_size,
            flags: h.flags.0,
            version: h.version.to_string(),
        };
        let tlv_area = TlvAreaInfo {
            tlv_hdr_prot: self.protected_area().map(area_header),
            tlvs_prot: tlv_infos(self.protected_tlvs()),
            tlv_hdr: area_header(self.unprotected_area()),
            tlvs: tlv_infos(self.unprotected_tlvs()),
        };
        let trailer = if self.trailing_len() > 0 {
            trailer::read_trailer(&self.trailer_tail, self.cipher().is_some())
        } else {
            None
        };
        let un = self.unprotected_tlvs();
        let summary = Summary {
            version: h.version.to_string(),
            flags: h.flags.names(),
            security_counter: self.security_counter(),
            product_class: self.product_class().as_ref().map(uuid_text),
            hash: self.recorded_hash().map(hex::encode),
            key_ids: un
                .iter()
                .filter(|t| matches!(t.tlv_type, types::KEYHASH | types::PUBKEY))
                .map(|t| KeyIdInfo { kind: type_name(t.tlv_type), value: hex::encode(&t.data) })
                .collect(),
            signatures: un
                .iter()
                .filter(|t| (types::RSA2048_PSS..=types::ED25519).contains(&t.tlv_type))
                .map(|t| type_name(t.tlv_type))
                .collect(),
            encryption: self.cipher().map(|c| EncryptionInfo {
                cipher: match c {
                    crate::Cipher::Aes128Ctr => "aes128-ctr",
                    crate::Cipher::Aes256Ctr => "aes256-ctr",
                },
                key_wrap: self.key_wrap_tlv().map(|t| type_name(t.tlv_type)),
            }),
            image_len: self.image_len(),
            trailing_len: self.trailing_len(),
        };
        ImageInfo { header, tlv_area, trailer, summary }
    }
}
