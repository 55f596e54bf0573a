//! A few DER writing and OID helpers for the device-certificate encoder.
//!
//! rcgen's OIDs are `u64` arcs, which cannot hold the 128-bit UUID arc of the family extension
//! (`2.25.<uuid>`). The device profile is fixed, so the device certificate is encoded here
//! directly: a handful of TLVs, no allocation beyond the output buffer.

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub(crate) const TAG_PRINTABLE_STRING: u8 = 0x13;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;
/// `[3]` constructed, explicit (extensions).
pub(crate) const TAG_CTX3: u8 = 0xa3;

/// Appends a DER length.
pub(crate) fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Appends a complete TLV.
pub(crate) fn tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// Appends a constructed TLV whose content is written by `f`, fixing up the length afterwards.
/// The content is moved at most once (by a few bytes) when its length needs the long form.
pub(crate) fn nested(out: &mut Vec<u8>, tag: u8, f: impl FnOnce(&mut Vec<u8>)) {
    out.push(tag);
    let len_at = out.len();
    out.push(0);
    f(out);
    let content_len = out.len() - len_at - 1;
    if content_len < 0x80 {
        out[len_at] = content_len as u8;
    } else {
        let mut len_bytes = Vec::with_capacity(4);
        push_len(&mut len_bytes, content_len);
        out.splice(len_at..len_at + 1, len_bytes);
    }
}

/// Appends a non-negative INTEGER from big-endian magnitude bytes.
pub(crate) fn unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let skip = magnitude.iter().take_while(|b| **b == 0).count().min(magnitude.len().saturating_sub(1));
    let m = &magnitude[skip..];
    let pad = m.first().is_some_and(|b| b & 0x80 != 0);
    out.push(TAG_INTEGER);
    push_len(out, m.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(m);
}

/// Renders the content octets of an OBJECT IDENTIFIER in dotted form; arcs up to 128 bits
/// (enough for `2.25.<uuid>`). Returns `None` for malformed or over-long encodings.
pub(crate) fn oid_to_string(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u128> = Vec::new();
    let mut acc: u128 = 0;
    let mut in_progress = false;
    for &b in content {
        if !in_progress && b == 0x80 {
            return None; // non-minimal encoding
        }
        if acc >> 121 != 0 {
            return None;
        }
        acc = (acc << 7) | u128::from(b & 0x7f);
        in_progress = b & 0x80 != 0;
        if !in_progress {
            arcs.push(acc);
            acc = 0;
        }
    }
    if in_progress || arcs.is_empty() {
        return None;
    }
    let first = arcs[0];
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut s = format!("{a}.{b}");
    for arc in &arcs[1..] {
        s.push('.');
        s.push_str(&arc.to_string());
    }
    Some(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_are_fixed_up() {
        let mut out = Vec::new();
        nested(&mut out, TAG_SEQUENCE, |o| o.extend(std::iter::repeat_n(7u8, 300)));
        assert_eq!(&out[..4], &[0x30, 0x82, 0x01, 0x2c]);
        assert_eq!(out.len(), 304);
        let mut short = Vec::new();
        nested(&mut short, TAG_SET, |o| o.push(1));
        assert_eq!(short, [0x31, 1, 1]);
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        let mut out = Vec::new();
        unsigned_integer(&mut out, &[0, 0, 0x80]);
        assert_eq!(out, [2, 2, 0, 0x80]);
        out.clear();
        unsigned_integer(&mut out, &[0]);
        assert_eq!(out, [2, 1, 0]);
        out.clear();
        unsigned_integer(&mut out, &[0x12, 0x34]);
        assert_eq!(out, [2, 2, 0x12, 0x34]);
    }

    #[test]
    fn oid_strings() {
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]).unwrap(),
            "1.2.840.10045.3.1.7"
        );
        assert_eq!(oid_to_string(&[0x55, 0x1d, 0x13]).unwrap(), "2.5.29.19");
        assert!(oid_to_string(&[0x55, 0x9d]).is_none());
        assert!(oid_to_string(&[0x80, 0x01]).is_none());
    }
}
