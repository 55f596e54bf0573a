use std::fmt;

use crate::error::{Error, Result};

/// The name of a key, sealed object or counter. Restricted to `[A-Za-z0-9._-]{1,64}` (not
/// starting with `.`) so it is safe as a file name, a PKCS#11 label and a URI component.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(String);

impl Label {
    pub const MAX_LEN: usize = 64;

    pub fn new(label: impl Into<String>) -> Result<Self> {
        let label = label.into();
        let invalid = |reason| Err(Error::InvalidLabel { label: label.clone(), reason });
        if label.is_empty() || label.len() > Self::MAX_LEN {
            return invalid("must be 1 to 64 characters");
        }
        if label.starts_with('.') {
            return invalid("must not start with '.'");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return invalid("allowed characters are A-Z a-z 0-9 . _ -");
        }
        Ok(Self(label))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::str::FromStr for Label {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

/// What a key is and therefore what it may do. One key, one purpose: a signing key never does
/// ECDH and an agreement key never signs, as PKCS#11 tokens enforce with CKA_SIGN / CKA_DERIVE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA over P-256 with SHA-256: device identity, CA keys, firmware mastering.
    EcdsaP256,
    /// Ed25519 signatures: pairing long-term keys, firmware mastering.
    Ed25519,
    /// ECDH over P-256: MCUboot ENC_EC256 firmware-decryption keys.
    EcdhP256,
    /// X25519 ECDH: MCUboot ENC_X25519 firmware-decryption keys.
    X25519,
    /// A 256-bit secret used only through HKDF and AES-256-GCM seal/open: master and factory secrets.
    Secret256,
}

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 5] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::EcdhP256,
        KeyAlgorithm::X25519,
        KeyAlgorithm::Secret256,
    ];

    /// Stable name used in files, URIs and `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::EcdhP256 => "ecdh-p256",
            KeyAlgorithm::X25519 => "x25519",
            KeyAlgorithm::Secret256 => "secret256",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    pub fn can_sign(self) -> bool {
        matches!(self, KeyAlgorithm::EcdsaP256 | KeyAlgorithm::Ed25519)
    }

    pub fn can_agree(self) -> bool {
        matches!(self, KeyAlgorithm::EcdhP256 | KeyAlgorithm::X25519)
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            KeyAlgorithm::EcdsaP256 => 1,
            KeyAlgorithm::Ed25519 => 2,
            KeyAlgorithm::EcdhP256 => 3,
            KeyAlgorithm::X25519 => 4,
            KeyAlgorithm::Secret256 => 5,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.code() == code)
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::from_name(s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|a| a.name()).collect();
            format!("unknown key algorithm {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// A public key in its raw wire form: SEC1 uncompressed point (65 bytes) for P-256, 32 bytes for
/// Ed25519 and X25519. `Secret256` keys have no public part (empty).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    alg: KeyAlgorithm,
    bytes: Vec<u8>,
}

impl PublicKey {
    pub fn new(alg: KeyAlgorithm, bytes: Vec<u8>) -> Self {
        Self { alg, bytes }
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// DER SubjectPublicKeyInfo, the form X.509, PKCS#10 and `openssl pkey -pubin` use.
    pub fn spki_der(&self) -> Option<Vec<u8>> {
        // AlgorithmIdentifier DER for each key type, then BIT STRING of the raw key.
        const EC_P256: &[u8] = &[
            0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
            0xce, 0x3d, 0x03, 0x01, 0x07,
        ];
        const ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
        const X25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e];
        let alg_id = match self.alg {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdhP256 => EC_P256,
            KeyAlgorithm::Ed25519 => ED25519,
            KeyAlgorithm::X25519 => X25519,
            KeyAlgorithm::Secret256 => return None,
        };
        let bit_string_len = self.bytes.len() + 1;
        let inner_len = alg_id.len() + 2 + bit_string_len;
        // Every supported key is short enough for single-byte DER lengths.
        let mut der = Vec::with_capacity(inner_len + 2);
        der.extend_from_slice(&[0x30, u8::try_from(inner_len).ok()?]);
        der.extend_from_slice(alg_id);
        der.extend_from_slice(&[0x03, u8::try_from(bit_string_len).ok()?, 0x00]);
        der.extend_from_slice(&self.bytes);
        Some(der)
    }

    /// SHA-256 of the raw public key, hex: a short, stable fingerprint for logs and listings.
    pub fn fingerprint(&self) -> String {
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.bytes))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey {{ alg: {}, bytes: {} }}", self.alg, hex::encode(&self.bytes))
    }
}

/// A key as listed by a backend: its label, algorithm and public part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: Label,
    pub public: PublicKey,
}

/// What to sign. ECDSA keys sign `Message` as ECDSA-SHA256, or a SHA-256 digest computed
/// elsewhere (streaming firmware hashes, hash-on-host for PKCS#11). Ed25519 signs messages only.
#[derive(Clone, Copy, Debug)]
pub enum SignInput<'a> {
    Message(&'a [u8]),
    Sha256Digest(&'a [u8; 32]),
}

/// HKDF-SHA256 parameters for a derivation done inside the secure element.
#[derive(Clone, Copy, Debug)]
pub struct Hkdf<'a> {
    pub salt: &'a [u8],
    pub info: &'a [u8],
}

/// Hard limit on a sealed object: secure elements store certificates and pairing records, not files.
pub const MAX_OBJECT_LEN: usize = 64 * 1024;
