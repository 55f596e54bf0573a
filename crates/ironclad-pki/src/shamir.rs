//! M-of-N backup of a secret (a root CA key) by Shamir secret sharing over GF(2^8).
//!
//! Each byte of the secret is the constant term of its own random polynomial of degree M−1;
//! share `x` (1..=N) holds the polynomial values at `x`. Any M shares rebuild the secret by
//! Lagrange interpolation at 0; M−1 shares reveal nothing about it.
//!
//! Field arithmetic is bitwise (no lookup tables), so timing does not depend on secret bytes.
//! The field is AES's: GF(2)[x] / (x^8 + x^4 + x^3 + x + 1).
//!
//! A share travels as text, `ironclad-share-v1:<M>of<N>:<x>:<hex>:<check>`, where `check` is
//! the first 4 bytes of SHA-256 over everything before it: a mistyped or altered share is
//! refused and named instead of silently producing a wrong key. A ceremony transcript
//! additionally records each share's SHA-256 fingerprint ([`Share::fingerprint`]).

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

const PREFIX: &str = "ironclad-share-v1";

/// Multiplication in GF(2^8) with the AES polynomial, in constant time.
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    for _ in 0..8 {
        product ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    product
}

/// Multiplicative inverse (a^254); the inverse of 0 is taken as 0, which callers never need.
fn gf_inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut exp = 254u8;
    while exp > 0 {
        if exp & 1 == 1 {
            result = gf_mul(result, base);
        }
        base = gf_mul(base, base);
        exp >>= 1;
    }
    result
}

/// One share of a split secret. `Debug` does not print the share's bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    threshold: u8,
    shares: u8,
    x: u8,
    y: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Share {{ {}-of-{}, x: {} }}", self.threshold, self.shares, self.x)
    }
}

impl Share {
    /// The share's x coordinate, 1..=N: which participant holds it.
    pub fn index(&self) -> u8 {
        self.x
    }

    /// M of the policy this share belongs to.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// N of the policy this share belongs to.
    pub fn total(&self) -> u8 {
        self.shares
    }

    /// The share as text for a participant to keep. Treat it as a secret.
    pub fn to_text(&self) -> Zeroizing<String> {
        let body =
            format!("{PREFIX}:{}of{}:{}:{}", self.threshold, self.shares, self.x, hex::encode(&*self.y));
        let check = hex::encode(&crate::ca::sha256(body.as_bytes())[..4]);
        Zeroizing::new(format!("{body}:{check}"))
    }

    /// Parses a share's text; `position` (1-based) is used to name it in errors.
    pub fn from_text(text: &str, position: usize) -> Result<Self> {
        let corrupt = |reason| Error::ShareCorrupt { position, reason };
        let text = text.trim();
        let (body, check) = text.rsplit_once(':').ok_or(corrupt("not an ironclad share"))?;
        let expected = hex::encode(&crate::ca::sha256(body.as_bytes())[..4]);
        if !check.eq_ignore_ascii_case(&expected) {
            return Err(corrupt("checksum mismatch (mistyped or altered)"));
        }
        let mut parts = body.split(':');
        if parts.next() != Some(PREFIX) {
            return Err(corrupt("not an ironclad share"));
        }
        let policy = parts.next().ok_or(corrupt("missing policy"))?;
        let (m, n) = policy.split_once("of").ok_or(corrupt("bad policy"))?;
        let threshold: u8 = m.parse().map_err(|_| corrupt("bad threshold"))?;
        let shares: u8 = n.parse().map_err(|_| corrupt("bad share count"))?;
        let x: u8 =
            parts.next().ok_or(corrupt("missing index"))?.parse().map_err(|_| corrupt("bad index"))?;
        let mut y =
            hex::decode(parts.next().ok_or(corrupt("missing value"))?).map_err(|_| corrupt("bad hex"))?;
        if parts.next().is_some() {
            y.zeroize();
            return Err(corrupt("trailing fields"));
        }
        if threshold < 2 || threshold > shares || x == 0 || x > shares || y.is_empty() {
            y.zeroize();
            return Err(corrupt("values out of range"));
        }
        Ok(Share { threshold, shares, x, y: Zeroizing::new(y) })
    }

    /// SHA-256 of the share's text, hex: recorded in the ceremony transcript so recovery can
    /// name a share that does not match what was handed out.
    pub fn fingerprint(&self) -> String {
        hex::encode(crate::ca::sha256(self.to_text().as_bytes()))
    }
}

/// Splits `secret` into `shares` shares of which any `threshold` rebuild it. `random` fills
/// the polynomial coefficients (a CSPRNG in production; fixed bytes in tests).
pub fn split(
    secret: &[u8],
    threshold: u8,
    shares: u8,
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<Vec<Share>> {
    if threshold < 2 || threshold > shares {
        return Err(Error::SharePolicyInvalid { threshold, shares });
    }
    let degree = usize::from(threshold) - 1;
    let mut coefficients = Zeroizing::new(vec![0u8; secret.len() * degree]);
    random(&mut coefficients);
    let mut out: Vec<Share> = (1..=shares)
        .map(|x| Share { threshold, shares, x, y: Zeroizing::new(Vec::with_capacity(secret.len())) })
        .collect();
    for (i, &s) in secret.iter().enumerate() {
        let coeffs = &coefficients[i * degree..(i + 1) * degree];
        for share in &mut out {
            // Horner's rule from the highest coefficient down to the secret byte.
            let mut value = 0u8;
            for &c in coeffs.iter().rev() {
                value = gf_mul(value, share.x) ^ c;
            }
            value = gf_mul(value, share.x) ^ s;
            share.y.push(value);
        }
    }
    Ok(out)
}

/// Rebuilds the secret from at least `threshold` shares (extra shares are ignored). Refuses
/// too few shares, duplicates, and shares from different splits. A share that was altered
/// after its checksum was computed cannot be detected here; compare fingerprints with the
/// ceremony transcript for that.
pub fn combine(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>> {
    let first = shares.first().ok_or(Error::NotEnoughShares { given: 0, threshold: 2 })?;
    let (threshold, total, len) = (first.threshold, first.shares, first.y.len());
    if shares.iter().any(|s| s.threshold != threshold || s.shares != total) {
        return Err(Error::SharesInconsistent { reason: "different M-of-N policies" });
    }
    if shares.iter().any(|s| s.y.len() != len) {
        return Err(Error::SharesInconsistent { reason: "different secret lengths" });
    }
    for (i, a) in shares.iter().enumerate() {
        if shares[..i].iter().any(|b| b.x == a.x) {
            return Err(Error::SharesInconsistent { reason: "the same share given twice" });
        }
    }
    if shares.len() < usize::from(threshold) {
        return Err(Error::NotEnoughShares { given: shares.len(), threshold });
    }
    let used = &shares[..usize::from(threshold)];
    // Lagrange basis at 0: l_j = prod_{m != j} x_m / (x_m - x_j); subtraction is XOR.
    let basis: Vec<u8> = used
        .iter()
        .map(|sj| {
            used.iter()
                .filter(|sm| sm.x != sj.x)
                .fold(1u8, |acc, sm| gf_mul(acc, gf_mul(sm.x, gf_inv(sm.x ^ sj.x))))
        })
        .collect();
    let mut secret = Zeroizing::new(vec![0u8; len]);
    for (share, &l) in used.iter().zip(&basis) {
        for (out, &y) in secret.iter_mut().zip(share.y.iter()) {
            *out ^= gf_mul(y, l);
        }
    }
    Ok(secret)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn field_known_answers() {
        // FIPS-197 §4.2: {57}·{83} = {c1}, {57}·{13} = {fe}; §5.1.1: {53}^-1 = {ca}.
        assert_eq!(gf_mul(0x57, 0x83), 0xc1);
        assert_eq!(gf_mul(0x57, 0x13), 0xfe);
        assert_eq!(gf_inv(0x53), 0xca);
        for a in 1..=255u8 {
            assert_eq!(gf_mul(a, gf_inv(a)), 1, "{a:#x}");
            assert_eq!(gf_mul(a, 1), a);
            assert_eq!(gf_mul(a, 0), 0);
        }
    }

    #[test]
    fn split_known_answer() {
        // 2-of-3 with coefficient 1: f(x) = s + x, so shares are s ^ x.
        let shares = split(&[0x42, 0x00], 2, 3, &mut |c| c.fill(1)).unwrap();
        let ys: Vec<Vec<u8>> = shares.iter().map(|s| s.y.to_vec()).collect();
        assert_eq!(ys, vec![vec![0x43, 0x01], vec![0x40, 0x02], vec![0x41, 0x03]]);
        // 3-of-3 with coefficients {02},{03}: f(1) = s ^ 2 ^ 3.
        let shares = split(&[0x10], 3, 3, &mut |c| c.copy_from_slice(&[0x02, 0x03])).unwrap();
        assert_eq!(shares[0].y.as_slice(), &[0x10 ^ 0x02 ^ 0x03]);
        // f(2) = s ^ 2·2 ^ 3·4 = 0x10 ^ 0x04 ^ 0x0c
        assert_eq!(shares[1].y.as_slice(), &[0x10 ^ 0x04 ^ 0x0c]);
    }

    #[test]
    fn every_subset_of_three_of_five_recovers() {
        let secret: Vec<u8> = (0..48u8).collect();
        let mut seed = 7u8;
        let shares = split(&secret, 3, 5, &mut |c| {
            for b in c {
                seed = seed.wrapping_mul(31).wrapping_add(17);
                *b = seed;
            }
        })
        .unwrap();
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let subset = [shares[a].clone(), shares[b].clone(), shares[c].clone()];
                    assert_eq!(combine(&subset).unwrap().as_slice(), secret.as_slice(), "{a}{b}{c}");
                }
            }
        }
        assert!(matches!(combine(&shares[..2]), Err(Error::NotEnoughShares { given: 2, threshold: 3 })));
    }

    #[test]
    fn text_round_trip_and_corruption_is_named() {
        let shares = split(b"root key", 2, 3, &mut |c| c.fill(0x5a)).unwrap();
        let text = shares[1].to_text();
        let parsed = Share::from_text(&text, 2).unwrap();
        assert_eq!(parsed, shares[1]);
        let mut bad = text.to_string();
        let i = bad.len() - 12;
        let flipped = if bad.as_bytes()[i] == b'0' { "1" } else { "0" };
        bad.replace_range(i..=i, flipped);
        assert!(matches!(Share::from_text(&bad, 2), Err(Error::ShareCorrupt { position: 2, .. })));
        assert!(format!("{:?}", shares[0]).contains("2-of-3"));
        assert!(!format!("{:?}", shares[0]).contains(&hex::encode(&*shares[0].y)));
    }

    #[test]
    fn mixed_and_duplicate_shares_are_refused() {
        let a = split(b"one", 2, 3, &mut |c| c.fill(1)).unwrap();
        let b = split(b"two", 2, 4, &mut |c| c.fill(2)).unwrap();
        assert!(matches!(combine(&[a[0].clone(), b[1].clone()]), Err(Error::SharesInconsistent { .. })));
        assert!(matches!(combine(&[a[0].clone(), a[0].clone()]), Err(Error::SharesInconsistent { .. })));
        assert!(matches!(split(b"x", 1, 3, &mut |_| {}), Err(Error::SharePolicyInvalid { .. })));
        assert!(matches!(split(b"x", 4, 3, &mut |_| {}), Err(Error::SharePolicyInvalid { .. })));
    }
}
