//! What CRL publication keeps: the current CRL of each enrolled group CA (as uploaded, DER) and
//! its entries, which are registry revocations scoped to that CA. Both backends implement
//! [`CrlStore`]; the shared suite runs against each.

use std::fmt;

use serde::Serialize;

use super::{Revocation, StoreFuture};

/// A CRL number as stored: 40 lower-case hex digits (20 octets, RFC 5280's maximum),
/// zero-padded, so text order is numeric order in both backends.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CrlNumber(String);

impl CrlNumber {
    /// From the number's big-endian bytes; `None` past 20 octets.
    pub fn from_be_bytes(bytes: &[u8]) -> Option<Self> {
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let bytes = &bytes[skip..];
        (bytes.len() <= 20).then(|| CrlNumber(format!("{:0>40}", hex::encode(bytes))))
    }

    /// From a small number (tests, and CRLs signed by `ironclad ca crl`).
    pub fn from_u64(n: u64) -> Self {
        CrlNumber(format!("{n:040x}"))
    }

    /// The stored form (40 hex digits); `None` when `text` is not that.
    pub fn from_stored(text: &str) -> Option<Self> {
        (text.len() == 40 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| CrlNumber(text.to_owned()))
    }

    /// The stored form.
    pub fn as_stored(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CrlNumber {
    /// Decimal when it fits 128 bits (every number seen in practice), else `0x` hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.trim_start_matches('0');
        match u128::from_str_radix(if digits.is_empty() { "0" } else { digits }, 16) {
            Ok(n) => write!(f, "{n}"),
            Err(_) => write!(f, "0x{digits}"),
        }
    }
}

impl Serialize for CrlNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The current CRL of one CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCrl {
    /// SHA-256 of the issuing CA's certificate (its group enrollment's match key).
    pub ca_sha256: [u8; 32],
    /// Its CRL number.
    pub number: CrlNumber,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: i64,
    /// Entries listed.
    pub entries: u64,
    /// The CRL as signed, DER.
    pub der: Vec<u8>,
    /// When it was published here, Unix seconds.
    pub published_at: i64,
}

/// One revoked certificate of a CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlEntry {
    /// Serial, lower-case hex without leading zero bytes (as the registry spells serials).
    pub serial: String,
    /// RFC 5280 reason name ("unspecified" when the entry has none).
    pub reason: String,
    /// revocationDate, Unix seconds.
    pub revoked_at: i64,
}

/// A certificate as a CRL names it: its issuer (SHA-256 of the CA certificate) and its serial.
/// Authentication looks up one per certificate of the presented chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CrlKey {
    /// SHA-256 of the issuing CA's certificate.
    pub issuer: [u8; 32],
    /// Serial, lower-case hex without leading zero bytes.
    pub serial: String,
}

impl fmt::Display for CrlKey {
    /// `<issuer hex>:<serial>`: the stored entry key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", hex::encode(self.issuer), self.serial)
    }
}

/// What [`CrlStore::publish_crl`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrlPublished {
    /// Stored as the CA's current CRL; its entries replaced the previous CRL's.
    Stored,
    /// The same CRL (same number, same bytes) is current already.
    Unchanged,
    /// Refused: the current CRL's number is this one's or higher (a replayed or reordered
    /// CRL). Nothing changed.
    NotNewer {
        /// The current CRL's number.
        current: CrlNumber,
    },
}

/// CRL storage. `publish_crl` is atomic: the number check, the CRL and its entries commit
/// together, so two servers publishing at once keep the higher number.
pub trait CrlStore {
    /// Makes `crl` the current CRL of its CA, with `entries` as the CA's revocations, if its
    /// number is higher than the current one's.
    fn publish_crl<'a>(
        &'a self,
        crl: &'a StoredCrl,
        entries: &'a [CrlEntry],
    ) -> StoreFuture<'a, CrlPublished>;
    /// The current CRL of the CA with this certificate SHA-256.
    fn crl<'a>(&'a self, ca_sha256: &'a [u8; 32]) -> StoreFuture<'a, Option<StoredCrl>>;
    /// The registry revocation of `serial` (any issuer), else the first CRL entry naming one
    /// of `keys`: what every authentication checks.
    fn revocation_for<'a>(
        &'a self,
        serial: &'a str,
        keys: &'a [CrlKey],
    ) -> StoreFuture<'a, Option<Revocation>>;
}

/// The [`Revocation`] a CRL entry amounts to (the reason says it came from a CRL).
pub(crate) fn entry_revocation(serial: String, reason: &str, revoked_at: i64) -> Revocation {
    Revocation { serial, reason: format!("{reason} (CRL)"), revoked_at }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn crl_numbers_sort_numerically_and_display_in_decimal() {
        let small = CrlNumber::from_be_bytes(&[0, 0, 9]).unwrap();
        let big = CrlNumber::from_be_bytes(&[1, 0]).unwrap();
        assert!(small < big);
        assert_eq!(small, CrlNumber::from_u64(9));
        assert_eq!(big.to_string(), "256");
        assert_eq!(CrlNumber::from_be_bytes(&[]).unwrap().to_string(), "0");
        let max = CrlNumber::from_be_bytes(&[0xff; 20]).unwrap();
        assert!(max.to_string().starts_with("0xffff"));
        assert!(big < max);
        assert_eq!(CrlNumber::from_be_bytes(&[1; 21]), None, "past 20 octets");
        assert_eq!(CrlNumber::from_stored(max.as_stored()), Some(max));
        assert_eq!(CrlNumber::from_stored("12"), None);
    }
}
