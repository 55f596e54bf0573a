//! The setup code ("passkey") shown by the accessory: eight digits written `XXX-XX-XXX`.

use std::fmt;

use zeroize::Zeroizing;

use crate::crypto::{RandomSource, random};
use crate::error::{Error, Result};
use crate::srp::{SALT_LEN, USERNAME, Verifier};

/// A setup code, stored as the 10 ASCII bytes SRP uses as the password (`"031-45-154"`).
#[derive(Clone, PartialEq, Eq)]
pub struct SetupCode(Zeroizing<[u8; 10]>);

impl fmt::Debug for SetupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SetupCode(***-**-***)")
    }
}

impl SetupCode {
    /// Parses `XXX-XX-XXX` or `XXXXXXXX`. Accepts HAP's forbidden codes (a controller must be
    /// able to type whatever the accessory shows); see [`SetupCode::is_forbidden`].
    pub fn parse(code: &str) -> Result<Self> {
        let digits: Zeroizing<Vec<u8>> = Zeroizing::new(code.bytes().filter(|b| *b != b'-').collect());
        let dashed_ok = code.len() == 10 && code.as_bytes()[3] == b'-' && code.as_bytes()[6] == b'-';
        if !(code.len() == 8 || dashed_ok) || digits.len() != 8 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(Error::InvalidSetupCode("expected 8 digits as XXX-XX-XXX"));
        }
        Ok(Self::from_digits(&digits))
    }

    fn from_digits(d: &[u8]) -> Self {
        let mut out = Zeroizing::new([b'-'; 10]);
        out[..3].copy_from_slice(&d[..3]);
        out[4..6].copy_from_slice(&d[3..5]);
        out[7..].copy_from_slice(&d[5..]);
        SetupCode(out)
    }

    /// A uniformly random code that is not forbidden.
    pub fn random(rng: &mut dyn RandomSource) -> Result<Self> {
        loop {
            let bytes = random::<8>(rng)?;
            // 10^8 residues of a 64-bit draw: the modulo bias is below 2^-37.
            let n = u64::from_le_bytes(*bytes) % 100_000_000;
            let digits = Zeroizing::new(format!("{n:08}"));
            let code = Self::from_digits(digits.as_bytes());
            if !code.is_forbidden() {
                return Ok(code);
            }
        }
    }

    /// HAP forbids codes of one repeated digit, `123-45-678` and `876-54-321`.
    pub fn is_forbidden(&self) -> bool {
        let d: Vec<u8> = self.0.iter().copied().filter(|b| *b != b'-').collect();
        d.iter().all(|b| *b == d[0]) || d == b"12345678" || d == b"87654321"
    }

    /// `XXX-XX-XXX`, to display (or to encode in a setup payload).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0[..]).expect("ASCII")
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0[..]
    }

    /// A fresh SRP verifier for this code with a random salt whose first byte is not zero
    /// (homekit_python mishandles such salts). Refuses forbidden codes.
    pub fn verifier(&self, rng: &mut dyn RandomSource) -> Result<Verifier> {
        if self.is_forbidden() {
            return Err(Error::InvalidSetupCode("HAP forbids this code"));
        }
        loop {
            let salt = random::<SALT_LEN>(rng)?;
            if salt[0] != 0 {
                return Ok(Verifier::new(USERNAME, self.as_bytes(), *salt));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_forbidden() {
        assert_eq!(SetupCode::parse("03145154").unwrap().as_str(), "031-45-154");
        assert_eq!(SetupCode::parse("031-45-154").unwrap().as_str(), "031-45-154");
        for bad in ["031-45-15", "0314-5154", "031-45-15a", "", "031-45-1544"] {
            assert!(SetupCode::parse(bad).is_err(), "{bad}");
        }
        for forbidden in ["111-11-111", "123-45-678", "876-54-321", "000-00-000"] {
            assert!(SetupCode::parse(forbidden).unwrap().is_forbidden());
        }
        assert!(!SetupCode::parse("031-45-154").unwrap().is_forbidden());
        assert_eq!(format!("{:?}", SetupCode::parse("031-45-154").unwrap()), "SetupCode(***-**-***)");
    }
}
