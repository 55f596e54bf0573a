//! TLV8, HAP's message encoding: `type (1) ‖ length (1) ‖ value`.
//!
//! Values longer than 255 bytes are split into consecutive items of the same type (255, 255, …,
//! rest); a value of exactly 255·k bytes is k full fragments and nothing more. The decoder joins
//! an item to the previous one when both have the same type and the previous fragment was full
//! (255 bytes), which also accepts a trailing empty fragment. Two adjacent items of the same type
//! after a short fragment are an error: lists must separate entries with type 0xFF.
//! Decoding never panics; every error carries the byte offset.

use crate::error::{Error, ErrorCode, Result, TlvErrorKind};

/// TLV types used by pair-setup, pair-verify and /pairings (HomeKitADK `HAPPairing.h`).
pub mod types {
    pub const METHOD: u8 = 0x00;
    pub const IDENTIFIER: u8 = 0x01;
    pub const SALT: u8 = 0x02;
    pub const PUBLIC_KEY: u8 = 0x03;
    pub const PROOF: u8 = 0x04;
    pub const ENCRYPTED_DATA: u8 = 0x05;
    pub const STATE: u8 = 0x06;
    pub const ERROR: u8 = 0x07;
    pub const RETRY_DELAY: u8 = 0x08;
    pub const CERTIFICATE: u8 = 0x09;
    pub const SIGNATURE: u8 = 0x0A;
    pub const PERMISSIONS: u8 = 0x0B;
    pub const FRAGMENT_DATA: u8 = 0x0C;
    pub const FRAGMENT_LAST: u8 = 0x0D;
    pub const SESSION_ID: u8 = 0x0E;
    pub const FLAGS: u8 = 0x13;
    pub const SEPARATOR: u8 = 0xFF;
}

/// HAP pairing methods (TLV type 0x00).
pub mod methods {
    pub const PAIR_SETUP: u8 = 0;
    pub const PAIR_SETUP_WITH_AUTH: u8 = 1;
    pub const PAIR_VERIFY: u8 = 2;
    pub const ADD_PAIRING: u8 = 3;
    pub const REMOVE_PAIRING: u8 = 4;
    pub const LIST_PAIRINGS: u8 = 5;
}

const MAX_FRAGMENT: usize = 255;

/// One decoded (reassembled) item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub ty: u8,
    pub value: Vec<u8>,
}

impl Item {
    pub fn new(ty: u8, value: impl Into<Vec<u8>>) -> Self {
        Item { ty, value: value.into() }
    }
}

/// Encodes items in order, fragmenting long values. Adjacent items of the same type would be
/// joined by a decoder; put a [`types::SEPARATOR`] item between list entries.
pub fn encode(items: &[Item]) -> Vec<u8> {
    let mut w = Tlv8Writer::new();
    for item in items {
        w.push(item.ty, &item.value);
    }
    w.finish()
}

/// Builds a TLV8 byte string.
#[derive(Clone, Debug, Default)]
pub struct Tlv8Writer {
    buf: Vec<u8>,
}

impl Tlv8Writer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one value, split into 255-byte fragments when longer.
    pub fn push(&mut self, ty: u8, value: &[u8]) -> &mut Self {
        if value.is_empty() {
            self.buf.extend_from_slice(&[ty, 0]);
        }
        for chunk in value.chunks(MAX_FRAGMENT) {
            self.buf.push(ty);
            // chunks() yields at most 255 bytes.
            self.buf.push(chunk.len() as u8);
            self.buf.extend_from_slice(chunk);
        }
        self
    }

    pub fn push_u8(&mut self, ty: u8, value: u8) -> &mut Self {
        self.push(ty, &[value])
    }

    /// Appends the 0xFF separator between list entries.
    pub fn separator(&mut self) -> &mut Self {
        self.push(types::SEPARATOR, &[])
    }

    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// A decoded TLV8 message: items in order, with the offset of each item's first fragment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tlv8 {
    items: Vec<Item>,
    offsets: Vec<usize>,
    end: usize,
}

impl Tlv8 {
    /// Decodes and reassembles fragments. Errors carry the offset of the offending header.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_at(bytes, 0)
    }

    /// Like [`Tlv8::decode`], reporting offsets shifted by `base` (for nested TLVs).
    pub fn decode_at(bytes: &[u8], base: usize) -> Result<Self> {
        let mut out = Tlv8 { end: base + bytes.len(), ..Self::default() };
        let mut pos = 0usize;
        let mut last_fragment_full = false;
        while pos < bytes.len() {
            let offset = base + pos;
            let (Some(&ty), Some(&len)) = (bytes.get(pos), bytes.get(pos + 1)) else {
                return Err(Error::tlv(offset, TlvErrorKind::TruncatedHeader));
            };
            let start = pos + 2;
            let available = bytes.len() - start;
            let Some(value) = bytes.get(start..start + usize::from(len)) else {
                return Err(Error::tlv(offset, TlvErrorKind::TruncatedValue { declared: len, available }));
            };
            match out.items.last_mut() {
                Some(prev) if prev.ty == ty => {
                    if !last_fragment_full {
                        return Err(Error::tlv(offset, TlvErrorKind::MissingSeparator { ty }));
                    }
                    prev.value.extend_from_slice(value);
                }
                _ => {
                    out.items.push(Item::new(ty, value));
                    out.offsets.push(offset);
                }
            }
            last_fragment_full = usize::from(len) == MAX_FRAGMENT;
            pos = start + usize::from(len);
        }
        Ok(out)
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn into_items(self) -> Vec<Item> {
        self.items
    }

    /// The value of `ty`, if present once; an error if it appears twice.
    pub fn get(&self, ty: u8) -> Result<Option<&[u8]>> {
        let mut found = None;
        for (item, &offset) in self.items.iter().zip(&self.offsets) {
            if item.ty == ty {
                if found.is_some() {
                    return Err(Error::tlv(offset, TlvErrorKind::Duplicate { ty }));
                }
                found = Some(item.value.as_slice());
            }
        }
        Ok(found)
    }

    /// The value of `ty`, which must be present once.
    pub fn require(&self, ty: u8) -> Result<&[u8]> {
        self.get(ty)?.ok_or(Error::tlv(self.end, TlvErrorKind::Missing { ty }))
    }

    /// The value of `ty`, which must be present once and be `len` bytes long.
    pub fn require_len(&self, ty: u8, len: usize) -> Result<&[u8]> {
        let value = self.require(ty)?;
        if value.len() != len {
            return Err(Error::tlv(self.offset_of(ty), TlvErrorKind::BadLength { ty, len: value.len() }));
        }
        Ok(value)
    }

    /// A one-byte value (HAP integers are little-endian; State, Method, Error are one byte).
    pub fn get_u8(&self, ty: u8) -> Result<Option<u8>> {
        match self.get(ty)? {
            None => Ok(None),
            Some([b]) => Ok(Some(*b)),
            Some(v) => Err(Error::tlv(self.offset_of(ty), TlvErrorKind::BadLength { ty, len: v.len() })),
        }
    }

    /// A little-endian integer of 1 to 4 bytes (Flags).
    pub fn get_u32(&self, ty: u8) -> Result<Option<u32>> {
        match self.get(ty)? {
            None => Ok(None),
            Some(v) if (1..=4).contains(&v.len()) => {
                Ok(Some(v.iter().rev().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))))
            }
            Some(v) => Err(Error::tlv(self.offset_of(ty), TlvErrorKind::BadLength { ty, len: v.len() })),
        }
    }

    /// Checks the State item. A missing State is tolerated (some accessories omit it in
    /// replies, aiohomekit #20); a different one is an error.
    pub fn check_state(&self, expected: u8) -> Result<()> {
        match self.get_u8(types::STATE)? {
            Some(found) if found != expected => Err(Error::UnexpectedState { expected, found }),
            _ => Ok(()),
        }
    }

    /// Checks State, then turns an Error item into [`Error::Peer`].
    pub fn check_reply(&self, expected_state: u8) -> Result<()> {
        self.check_state(expected_state)?;
        match self.get_u8(types::ERROR)? {
            Some(code) => Err(Error::Peer(ErrorCode::from_u8(code))),
            None => Ok(()),
        }
    }

    /// Splits at separators into list entries; empty entries are dropped.
    pub fn groups(&self) -> Vec<Tlv8> {
        let mut groups = vec![Tlv8::default()];
        for (item, &offset) in self.items.iter().zip(&self.offsets) {
            let current = groups.last_mut().expect("never empty");
            if item.ty == types::SEPARATOR {
                current.end = offset;
                groups.push(Tlv8 { end: self.end, ..Tlv8::default() });
            } else {
                current.items.push(item.clone());
                current.offsets.push(offset);
                current.end = self.end;
            }
        }
        groups.retain(|g| !g.items.is_empty());
        groups
    }

    pub(crate) fn offset_of(&self, ty: u8) -> usize {
        self.items.iter().zip(&self.offsets).find(|(i, _)| i.ty == ty).map_or(self.end, |(_, &o)| o)
    }

    pub(crate) fn bad_value(&self, ty: u8) -> Error {
        Error::tlv(self.offset_of(ty), TlvErrorKind::BadValue { ty })
    }
}

/// `State = state, Error = code`: the reply to a refused request.
pub(crate) fn error_reply(state: u8, code: ErrorCode) -> Vec<u8> {
    Tlv8Writer::new().push_u8(types::STATE, state).push_u8(types::ERROR, code.to_u8()).finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fragments_exact_multiples_of_255() {
        for len in [0usize, 1, 254, 255, 256, 384, 509, 510, 511, 765, 1020] {
            let value: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let bytes = Tlv8Writer::new().push(types::PUBLIC_KEY, &value).push_u8(types::STATE, 2).finish();
            let frags = len.div_ceil(255).max(1);
            assert_eq!(bytes.len(), len + 2 * frags + 3, "len {len}");
            let tlv = Tlv8::decode(&bytes).unwrap();
            assert_eq!(tlv.require(types::PUBLIC_KEY).unwrap(), value.as_slice());
            assert_eq!(tlv.get_u8(types::STATE).unwrap(), Some(2));
        }
    }

    #[test]
    fn trailing_empty_fragment_is_joined() {
        let mut bytes = vec![3, 255];
        bytes.extend_from_slice(&[7; 255]);
        bytes.extend_from_slice(&[3, 0, 6, 1, 2]);
        let tlv = Tlv8::decode(&bytes).unwrap();
        assert_eq!(tlv.items().len(), 2);
        assert_eq!(tlv.require(3).unwrap(), &[7; 255][..]);
    }

    #[test]
    fn errors_carry_offsets() {
        let err = Tlv8::decode(&[6, 1, 1, 3]).unwrap_err();
        assert!(matches!(err, Error::Tlv { offset: 3, kind: TlvErrorKind::TruncatedHeader }));
        let err = Tlv8::decode(&[6, 1, 1, 3, 5, 1, 2]).unwrap_err();
        assert!(matches!(
            err,
            Error::Tlv { offset: 3, kind: TlvErrorKind::TruncatedValue { declared: 5, available: 2 } }
        ));
        let err = Tlv8::decode(&[1, 1, b'a', 1, 1, b'b']).unwrap_err();
        assert!(matches!(err, Error::Tlv { offset: 3, kind: TlvErrorKind::MissingSeparator { ty: 1 } }));
        let tlv = Tlv8::decode(&[6, 1, 1, 0, 0, 6, 1, 3]).unwrap();
        assert!(matches!(tlv.get(6), Err(Error::Tlv { offset: 5, kind: TlvErrorKind::Duplicate { ty: 6 } })));
        assert!(matches!(
            tlv.require(2),
            Err(Error::Tlv { offset: 8, kind: TlvErrorKind::Missing { ty: 2 } })
        ));
    }

    #[test]
    fn separators_split_lists() {
        let bytes = Tlv8Writer::new()
            .push(types::IDENTIFIER, b"a")
            .push_u8(types::PERMISSIONS, 1)
            .separator()
            .push(types::IDENTIFIER, b"b")
            .push_u8(types::PERMISSIONS, 0)
            .finish();
        let groups = Tlv8::decode(&bytes).unwrap().groups();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1].require(types::IDENTIFIER).unwrap(), b"b");
        assert_eq!(groups[1].get_u8(types::PERMISSIONS).unwrap(), Some(0));
    }

    #[test]
    fn flags_are_little_endian() {
        let tlv = Tlv8::decode(&[0x13, 4, 0x10, 0, 0, 1]).unwrap();
        assert_eq!(tlv.get_u32(types::FLAGS).unwrap(), Some(0x0100_0010));
    }
}
