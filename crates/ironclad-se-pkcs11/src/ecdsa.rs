//! The two encodings of an ECDSA P-256 signature: PKCS#11's raw `r ‖ s` (32 bytes each) and
//! X.509's DER `SEQUENCE { INTEGER r, INTEGER s }`. Tokens sign raw; certificates want DER.

/// Length of a raw P-256 signature.
pub const RAW_LEN: usize = 64;

/// Converts a raw `r ‖ s` signature to DER. `None` if `raw` is not 64 bytes.
pub fn raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() != RAW_LEN {
        return None;
    }
    let (r, s) = raw.split_at(RAW_LEN / 2);
    let (r, s) = (der_integer(r), der_integer(s));
    // At most 2 × 35 bytes: always a short-form length.
    let mut out = Vec::with_capacity(2 + r.len() + s.len());
    out.extend_from_slice(&[0x30, u8::try_from(r.len() + s.len()).ok()?]);
    out.extend_from_slice(&r);
    out.extend_from_slice(&s);
    Some(out)
}

/// Minimal DER INTEGER for an unsigned big-endian value: leading zeros stripped, one zero
/// added back when the top bit is set (DER integers are signed).
fn der_integer(value: &[u8]) -> Vec<u8> {
    let start = value.iter().position(|&b| b != 0).unwrap_or(value.len() - 1);
    let digits = &value[start..];
    let pad = digits[0] & 0x80 != 0;
    let len = digits.len() + usize::from(pad);
    let mut out = Vec::with_capacity(2 + len);
    out.extend_from_slice(&[0x02, len as u8]); // len <= 33
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
    out
}

/// Converts a DER ECDSA P-256 signature back to raw `r ‖ s`, strictly: minimal integers,
/// positive, at most 32 bytes of value, no trailing data. `None` on anything else.
pub fn der_to_raw(der: &[u8]) -> Option<[u8; RAW_LEN]> {
    let body = match der {
        [0x30, len, body @ ..] if usize::from(*len) == body.len() && *len < 0x80 => body,
        _ => return None,
    };
    let (r, rest) = read_integer(body)?;
    let (s, rest) = read_integer(rest)?;
    if !rest.is_empty() {
        return None;
    }
    let mut raw = [0u8; RAW_LEN];
    raw[32 - r.len()..32].copy_from_slice(r);
    raw[64 - s.len()..].copy_from_slice(s);
    Some(raw)
}

fn read_integer(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let [0x02, len, rest @ ..] = input else { return None };
    let len = usize::from(*len);
    if len == 0 || len > 33 || rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    let value = match value {
        [0x00, next, ..] if next & 0x80 != 0 => &value[1..], // sign padding
        [0x00, _, ..] => return None,                        // not minimal
        [first, ..] if first & 0x80 != 0 => return None,     // negative
        _ => value,
    };
    (value.len() <= 32).then_some((value, rest))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
    };

    #[test]
    fn known_encodings() {
        let mut raw = [0u8; 64];
        raw[31] = 1; // r = 1
        raw[32] = 0x80; // s has its top bit set: needs a zero pad
        let der = raw_to_der(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, 3 + 35, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 33, 0x00]);
        assert_eq!(der_to_raw(&der).unwrap(), raw);
        assert!(raw_to_der(&raw[..63]).is_none());
        assert!(der_to_raw(&[0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01]).is_none(), "negative r");
        assert!(der_to_raw(&[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01]).is_none(), "non-minimal");
        assert!(der_to_raw(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00]).is_none(), "trailing");
    }

    #[test]
    fn converted_signatures_verify_with_aws_lc() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let verifier = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key().as_ref().to_vec());
        for i in 0..200u32 {
            let msg = i.to_be_bytes();
            let raw = key.sign(&rng, &msg).unwrap();
            let der = raw_to_der(raw.as_ref()).unwrap();
            verifier.verify(&msg, &der).unwrap();
            assert_eq!(der_to_raw(&der).unwrap().as_slice(), raw.as_ref());
        }
    }

    proptest::proptest! {
        #[test]
        fn raw_der_round_trip(raw in proptest::collection::vec(proptest::num::u8::ANY, 64)) {
            let der = raw_to_der(&raw).unwrap();
            proptest::prop_assert_eq!(der_to_raw(&der).unwrap().to_vec(), raw);
        }

        #[test]
        fn der_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            if let Some(raw) = der_to_raw(&bytes) {
                // Whatever it accepts is the canonical encoding of what it returns.
                proptest::prop_assert_eq!(raw_to_der(&raw).unwrap(), bytes);
            }
        }
    }
}
