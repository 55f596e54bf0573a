//! The crate's one error type.
//!
//! Variants name the exact problem so that the CLI and the logs can say what went wrong. They
//! never echo attacker-controlled bytes verbatim: a bad device ID is described, not repeated.
//! Code that answers over the network should map all of these to one opaque "refused".

use time::OffsetDateTime;

use crate::crl::RevocationReason;

/// Everything that can go wrong in the PKI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- CSR intake -------------------------------------------------------------------------
    /// The CSR is larger than [`Limits::max_csr_bytes`](crate::Limits); it was not parsed.
    #[error("CSR is {len} bytes, more than the limit of {max}")]
    CsrTooLarge {
        /// Size of the input.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The input is not a well-formed PKCS#10 request (bad PEM, bad DER, wrong version...).
    #[error("malformed CSR: {reason}")]
    CsrMalformed {
        /// What the parser objected to.
        reason: String,
    },
    /// Bytes follow the end of the DER-encoded request.
    #[error("CSR has {extra} bytes of trailing data after the DER structure")]
    CsrTrailingData {
        /// How many bytes follow the request.
        extra: usize,
    },
    /// The request's self-signature does not verify with the public key it carries.
    #[error("CSR signature does not verify with the CSR's own public key")]
    CsrSignatureInvalid,
    /// The request asks for `basicConstraints CA:TRUE`; devices never get CA certificates.
    #[error("CSR requests a CA certificate (basicConstraints CA:TRUE)")]
    CsrRequestsCa,
    /// The request is signed with an algorithm we do not accept (e.g. SHA-1).
    #[error("unsupported CSR signature algorithm {oid}")]
    UnsupportedSignatureAlgorithm {
        /// Dotted OID of the signature algorithm.
        oid: String,
    },
    /// The RSA key is shorter than 2048 bits.
    #[error("RSA key of {bits} bits is too small (minimum 2048)")]
    RsaKeyTooSmall {
        /// Modulus size.
        bits: usize,
    },
    /// An EC key on a curve other than P-256.
    #[error("unsupported elliptic curve {oid} (only P-256 is accepted)")]
    UnsupportedCurve {
        /// Dotted OID of the curve, or a description when it is not a named curve.
        oid: String,
    },
    /// A key type other than EC P-256, Ed25519 or RSA.
    #[error("unsupported public key algorithm {oid}")]
    UnsupportedKeyAlgorithm {
        /// Dotted OID of the key algorithm.
        oid: String,
    },

    // ---- device identity --------------------------------------------------------------------
    /// The subject has no common name, so there is no device ID.
    #[error("subject has no common name (the device ID)")]
    DeviceIdMissing,
    /// The common name is not a valid device ID (1..=64 of `[A-Za-z0-9._:-]`).
    #[error("invalid device ID: {reason}")]
    DeviceIdInvalid {
        /// Which rule it broke.
        reason: &'static str,
    },
    /// The device ID already has a live certificate under a different key.
    #[error("device ID {device_id} is already issued to another key (serial {existing_serial})")]
    DeviceIdTaken {
        /// The contested device ID.
        device_id: String,
        /// Serial of the certificate that holds it.
        existing_serial: String,
    },
    /// The key in the request belongs to a certificate that was revoked; it is not re-certified.
    #[error("the key of device {device_id} was revoked with certificate {serial}")]
    KeyRevoked {
        /// Device ID of the request.
        device_id: String,
        /// Serial of the revoked certificate for this key.
        serial: String,
    },

    // ---- profiles, names, CA material --------------------------------------------------------
    /// A profile or CA name field breaks the profile rules.
    #[error("invalid {field}: {reason}")]
    NameInvalid {
        /// Which field (organization, country, family, common name...).
        field: &'static str,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// The requested validity cannot be represented (zero length, overflow, before 1950...).
    #[error("invalid validity: {reason}")]
    ValidityInvalid {
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A certificate given as a CA is not usable as one.
    #[error("not a usable CA certificate: {reason}")]
    CaInvalid {
        /// What is missing or wrong.
        reason: String,
    },
    /// The signer's public key is not the one in the CA certificate.
    #[error("the signing key does not match the CA certificate's public key")]
    SignerKeyMismatch,
    /// The signer uses an algorithm this crate cannot label in a certificate.
    #[error("unsupported signer algorithm {algorithm}")]
    UnsupportedSignerAlgorithm {
        /// rcgen's name for the algorithm.
        algorithm: String,
    },
    /// rcgen refused to build or sign a certificate or CRL (includes signer failures).
    #[error("certificate encoding or signing failed: {0}")]
    CertificateBuild(#[source] rcgen::Error),

    // ---- certificates, chains, revocation ----------------------------------------------------
    /// A certificate could not be parsed.
    #[error("malformed certificate: {reason}")]
    CertMalformed {
        /// What the parser objected to.
        reason: String,
    },
    /// The chain does not lead to any configured root (wrong CA).
    #[error("certificate was not issued by a trusted CA")]
    UnknownIssuer,
    /// A signature in the chain does not verify (tampered certificate).
    #[error("certificate signature does not verify (tampered or wrong issuer key)")]
    CertSignatureInvalid,
    /// A certificate in the chain expired before the verification time.
    #[error("certificate expired at {not_after}")]
    Expired {
        /// notAfter of the expired certificate.
        not_after: OffsetDateTime,
    },
    /// A certificate in the chain is not valid yet at the verification time.
    #[error("certificate is not valid before {not_before}")]
    NotYetValid {
        /// notBefore of that certificate.
        not_before: OffsetDateTime,
    },
    /// Any other chain failure, with webpki's reason kept.
    #[error("certificate chain invalid: {reason}")]
    ChainInvalid {
        /// webpki's verdict.
        reason: webpki::Error,
    },
    /// The leaf does not follow the device profile (no clientAuth EKU, bad CN...).
    #[error("certificate does not follow the device profile: {reason}")]
    ProfileViolation {
        /// Which rule it broke.
        reason: &'static str,
    },
    /// The certificate was revoked.
    #[error("certificate {serial} was revoked ({reason})")]
    Revoked {
        /// Serial (hex).
        serial: String,
        /// Recorded reason.
        reason: RevocationReason,
    },
    /// The revocation source does not know this certificate, so its status is unknown.
    #[error("certificate {serial} is not in the issued-certificate index")]
    UnknownCertificate {
        /// Serial (hex).
        serial: String,
    },
    /// No certificate with this serial is in the index.
    #[error("no certificate with serial {serial}")]
    UnknownSerial {
        /// Serial (hex).
        serial: String,
    },
    /// A serial number given as text is not hex.
    #[error("invalid serial number: {reason}")]
    SerialInvalid {
        /// Which rule it broke.
        reason: &'static str,
    },
    /// The certificate is already revoked; the first revocation stands.
    #[error("certificate {serial} is already revoked")]
    AlreadyRevoked {
        /// Serial (hex).
        serial: String,
    },
    /// The same CSR appears twice in one batch and its first copy failed.
    #[error("duplicate of an earlier request in this batch that was not issued")]
    DuplicateInBatch,

    // ---- key backup shares (Shamir) ---------------------------------------------------------
    /// Split parameters out of range.
    #[error("invalid share policy {threshold}-of-{shares}: need 2 <= threshold <= shares <= 255")]
    SharePolicyInvalid {
        /// M.
        threshold: u8,
        /// N.
        shares: u8,
    },
    /// A share's text does not parse or its checksum does not match: it was mistyped or altered.
    #[error("share #{position} is corrupt: {reason}")]
    ShareCorrupt {
        /// 1-based position of the share in the input.
        position: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Fewer shares than the policy's threshold.
    #[error("{given} shares given; this backup needs {threshold}")]
    NotEnoughShares {
        /// Shares supplied.
        given: usize,
        /// Shares required.
        threshold: u8,
    },
    /// Shares from different splits, or two copies of the same share.
    #[error("shares do not belong together: {reason}")]
    SharesInconsistent {
        /// What differs.
        reason: &'static str,
    },

    // ---- ceremony transcripts -----------------------------------------------------------------
    /// A transcript entry does not match its recorded hash or does not link to the previous
    /// one: the transcript was altered at (or just before) this step.
    #[error("transcript altered at step {seq} ({step}): {reason}")]
    TranscriptTampered {
        /// Position (0-based) of the first entry that fails.
        seq: u64,
        /// That entry's step name.
        step: String,
        /// Which check failed.
        reason: &'static str,
    },
    /// The transcript's closing signature does not verify under the root key it names.
    #[error("transcript signature does not verify under the root key")]
    TranscriptSignatureInvalid,
    /// The transcript file is not valid JSON of the expected shape.
    #[error("malformed transcript: {reason}")]
    TranscriptMalformed {
        /// What is wrong.
        reason: String,
    },

    // ---- storage --------------------------------------------------------------------------------
    /// The issued-certificate index failed (I/O, constraint, corrupt schema...).
    #[error("certificate index: {0}")]
    Index(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// Wraps any index back-end error.
    pub fn index(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Index(Box::new(e))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
