//! Fixed-length byte strings carried as hex in JSON.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// The bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Parses exactly `LEN` bytes.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
                <[u8; $len]>::try_from(bytes)
                    .map(Self)
                    .map_err(|_| Error::Length { field: stringify!($name), expected: $len, found: bytes.len() })
            }

            /// Parses `2 * LEN` hex digits.
            pub fn from_hex(text: &str) -> Result<Self, Error> {
                let bytes = hex::decode(text).map_err(|_| Error::Hex { field: stringify!($name) })?;
                Self::from_slice(&bytes)
            }

            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_hex(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

fixed_bytes!(
    /// A server challenge: 32 random bytes, fresh for every request.
    Challenge,
    32
);

fixed_bytes!(
    /// The TLS exporter value binding a signature to one TLS session (see
    /// [`crate::auth_message`]).
    ExporterValue,
    32
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wrong_lengths_and_bad_hex_are_refused() {
        assert!(matches!(Challenge::from_slice(&[0; 31]), Err(Error::Length { found: 31, .. })));
        assert!(matches!(Challenge::from_hex("zz"), Err(Error::Hex { .. })));
        assert!(serde_json::from_str::<Challenge>("\"00\"").is_err());
        assert!(serde_json::from_str::<Challenge>("17").is_err());
    }

    proptest! {
        #[test]
        fn hex_round_trip(bytes in any::<[u8; 32]>()) {
            let c = Challenge::from(bytes);
            let json = serde_json::to_string(&c).unwrap();
            prop_assert_eq!(serde_json::from_str::<Challenge>(&json).unwrap(), c);
        }

        #[test]
        fn parsing_never_panics(text in ".{0,80}") {
            let _ = Challenge::from_hex(&text);
            let _ = serde_json::from_str::<ExporterValue>(&text);
        }
    }
}
