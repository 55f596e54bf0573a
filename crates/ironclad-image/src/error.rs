//! The crate's one error type.
//!
//! Variants say exactly where and what, for the firmware engineer and the logs (`Tlv { offset,
//! kind }`, `ImageTooLarge { size, max }`). They never echo key material. Code that answers a
//! device or a remote peer should collapse all of them into one opaque "refused".

/// What is wrong with a TLV area or a TLV entry (see [`Error::Tlv`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvProblem {
    /// The area does not start with the expected info magic (0x6908 protected, 0x6907 not).
    #[error("TLV area magic is {found:#06x}, expected {expected:#06x}")]
    BadAreaMagic {
        /// The magic found.
        found: u16,
        /// The magic expected at this offset.
        expected: u16,
    },
    /// The header's `protect_tlv_size` disagrees with the protected area's own length.
    #[error("protected TLV area says {area} bytes but the header says {header}")]
    ProtectedSizeMismatch {
        /// Length in the area's info header.
        area: u16,
        /// `protect_tlv_size` from the image header.
        header: u16,
    },
    /// The area's total length is smaller than its own 4-byte info header.
    #[error("TLV area length {0} is shorter than its info header")]
    AreaTooShort(u16),
    /// The area is larger than [`Limits::max_tlv_area`](crate::Limits).
    #[error("TLV area of {len} bytes exceeds the limit of {max}")]
    AreaTooLarge {
        /// The area's declared length.
        len: u16,
        /// The limit.
        max: u16,
    },
    /// An entry runs past the end of its area.
    #[error("TLV type {tlv_type:#06x} of {len} bytes runs past the end of its area")]
    Overrun {
        /// The entry's type.
        tlv_type: u16,
        /// The entry's declared length.
        len: u16,
    },
    /// An entry has a length its type does not allow.
    #[error("TLV type {tlv_type:#06x} has length {len}, expected {expected}")]
    BadLength {
        /// The entry's type.
        tlv_type: u16,
        /// The declared length.
        len: u16,
        /// The allowed length(s), as text.
        expected: &'static str,
    },
    /// A type that may appear once appears again.
    #[error("TLV type {0:#06x} appears more than once")]
    Duplicate(u16),
    /// A TLV is in the wrong area (a signature in the protected area, a counter outside it).
    #[error("TLV type {0:#06x} is not allowed in this area")]
    WrongArea(u16),
    /// An ECIES key-wrap TLV that cannot be decoded (bad point, bad length).
    #[error("key-wrap TLV type {0:#06x} is malformed")]
    BadKeyWrap(u16),
}

/// Everything this crate can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The first four bytes are not the MCUboot image magic 0x96f3b83d.
    #[error("not an MCUboot image: magic is {found:#010x}, expected 0x96f3b83d")]
    BadMagic {
        /// The value found.
        found: u32,
    },
    /// A header field has an impossible value.
    #[error("image header field `{field}` is invalid: {reason}")]
    Header {
        /// The field name as in MCUboot's `struct image_header`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Header flags this crate does not implement (compression, PIC, unknown bits, or both AES
    /// sizes at once). Refused rather than ignored, because they change what the payload means.
    #[error("unsupported image flags {flags:#x}")]
    UnsupportedFlags {
        /// The offending flag bits.
        flags: u32,
    },
    /// The image (or a part of it) is larger than the slot or a configured limit. Checked before
    /// anything is hashed.
    #[error("image needs {size} bytes but the limit is {max}")]
    ImageTooLarge {
        /// Bytes needed.
        size: u64,
        /// The limit from [`Limits`](crate::Limits) or the slot size.
        max: u64,
    },
    /// The input ends before the layout its header and TLV areas declare.
    #[error("image is truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the layout needs.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// A TLV area or entry is malformed; `offset` is from the start of the image.
    #[error("TLV at offset {offset:#x}: {kind}")]
    Tlv {
        /// Offset of the area or entry from the start of the image.
        offset: u64,
        /// What is wrong.
        kind: TlvProblem,
    },
    /// The protected area holds a TLV type outside MCUboot's known types and the vendor range;
    /// an image whose signed metadata we do not understand is refused.
    #[error("unknown TLV type {tlv_type:#06x} in the protected area at offset {offset:#x}")]
    UnknownCriticalTlv {
        /// Offset of the entry from the start of the image.
        offset: u64,
        /// Its type.
        tlv_type: u16,
    },
    /// The image uses a TLV this crate recognises but does not implement (RSA, P-384, SHA-384/512,
    /// pure Ed25519, AES-KW, ENC_X25519_SHA512 ...).
    #[error("unsupported TLV {name} ({tlv_type:#06x})")]
    UnsupportedTlv {
        /// Its type.
        tlv_type: u16,
        /// Its imgtool name.
        name: &'static str,
    },
    /// A required TLV is absent.
    #[error("the image has no {0} TLV")]
    MissingTlv(&'static str),
    /// The SHA-256 over header, payload and protected TLVs does not match the image's hash TLV.
    #[error("image hash does not match{}", if *.encrypted { " (the payload is encrypted: verify it with its decryption key)" } else { "" })]
    HashMismatch {
        /// True when the payload was hashed as stored although the header says it is encrypted.
        encrypted: bool,
    },
    /// No key hash / public key in the image matches a trusted key.
    #[error("the image is not signed by a trusted key")]
    UnknownKey,
    /// A trusted key matched but its signature does not verify.
    #[error("image signature is invalid")]
    SignatureInvalid,
    /// A decryption operation on an image whose header does not say it is encrypted.
    #[error("the image is not encrypted")]
    NotEncrypted,
    /// The key wrap did not authenticate: the image was wrapped to another key, or altered.
    #[error("the content key is not wrapped to this key (or the key-wrap TLV was altered)")]
    KeyUnwrapFailed,
    /// The content key or wrap kind does not fit the image (AES-128 key for an AES-256 image ...).
    #[error("key mismatch: {0}")]
    KeyMismatch(&'static str),
    /// A signing, encryption or trust key of an algorithm that cannot do the job.
    #[error("a {alg} key cannot {operation}")]
    WrongKeyType {
        /// The key's algorithm name.
        alg: &'static str,
        /// What it was asked to do.
        operation: &'static str,
    },
    /// An option given to `sign` is out of range.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// The payload reader produced a different number of bytes than announced.
    #[error("payload was announced as {expected} bytes but the source gave {actual}")]
    PayloadLength {
        /// Announced length.
        expected: u64,
        /// Length actually read (`expected + 1` means "more than announced").
        actual: u64,
    },
    /// The source changed between two passes over it (verification, then decryption or re-wrap).
    #[error("the image source changed after it was verified")]
    SourceChanged,
    /// A public key (SPKI) could not be decoded.
    #[error("malformed public key: {0}")]
    BadPublicKey(&'static str),
    /// A private key given to a `hazmat` constructor could not be decoded.
    #[error("malformed private key: {0}")]
    BadPrivateKey(&'static str),
    /// The secure element refused (signing, ECDH, key lookup).
    #[error("secure element: {0}")]
    SecureElement(#[from] ironclad_se::Error),
    /// Reading the source or writing the sink failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A cryptographic primitive failed (RNG, key generation).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
