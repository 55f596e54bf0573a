//! Per-device debug-console passwords (seed 002 §1.4): derived from a factory secret held in a
//! secure element and the device ID, so service staff can compute any device's password and no
//! two devices share one. The device checks a typed password in constant time and counts
//! failures.

use ironclad_se::{Hkdf, KeyStore, Label};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Crockford base32: no I, L, O, U, so it is easy to read aloud and type.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Derives the console password for `device_id`: HKDF-SHA256 inside the secure element from
/// the `Secret256` factory key, 80 bits rendered as `XXXX-XXXX-XXXX-XXXX`.
pub fn console_password(
    se: &dyn KeyStore,
    factory_secret: &Label,
    device_id: &str,
) -> Result<Zeroizing<String>> {
    let mut bits = Zeroizing::new([0u8; 10]);
    se.derive(
        factory_secret,
        &Hkdf { salt: b"ironclad console password v1", info: device_id.as_bytes() },
        bits.as_mut(),
    )?;
    let mut out = Zeroizing::new(String::with_capacity(19));
    let mut acc: u128 = 0;
    for b in bits.iter() {
        acc = (acc << 8) | u128::from(*b);
    }
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let shift = 75 - 5 * i;
        let index = ((acc >> shift) & 0x1f) as usize;
        out.push(char::from(ALPHABET[index]));
    }
    Ok(out)
}

/// The device side: holds the expected password and refuses after `max_failures` wrong ones.
#[derive(Debug)]
pub struct ConsoleGuard {
    expected: Zeroizing<String>,
    failures: u32,
    max_failures: u32,
}

impl ConsoleGuard {
    /// A guard for one device's password; `failures` is the persisted count so far.
    pub fn new(expected: Zeroizing<String>, failures: u32, max_failures: u32) -> Self {
        Self { expected, failures, max_failures }
    }

    /// Checks a typed password (case, spaces and dashes are forgiven). Returns whether it was
    /// right; the caller persists [`failures`](Self::failures) after every attempt.
    pub fn check(&mut self, typed: &str) -> Result<bool> {
        if self.failures >= self.max_failures {
            return Err(Error::ConsoleLocked(self.failures));
        }
        let normalise = |s: &str| -> Zeroizing<Vec<u8>> {
            Zeroizing::new(
                s.bytes().filter(|b| b.is_ascii_alphanumeric()).map(|b| b.to_ascii_uppercase()).collect(),
            )
        };
        let (a, b) = (normalise(typed), normalise(&self.expected));
        let ok = aws_lc_rs::constant_time::verify_slices_are_equal(&a, &b).is_ok();
        if ok {
            self.failures = 0;
        } else {
            self.failures += 1;
        }
        Ok(ok)
    }

    /// Failed attempts since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}
