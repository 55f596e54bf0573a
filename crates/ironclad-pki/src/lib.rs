//! ironclad's PKI: the CA hierarchy, the device-certificate profile, issuance from PKCS#10
//! requests (one at a time or in parallel batches), revocation and CRLs, and chain
//! verification of device certificates.
//!
//! # The chain
//!
//! An offline **root** ([`create_root`]) signs **intermediates** ([`create_intermediate`]),
//! one per factory or line, limited to `pathLen 0`. An intermediate signs **device
//! certificates** from CSRs whose keys were generated inside the device's secure element.
//! Every signature goes through [`rcgen::SigningKey`], which secure-element key handles
//! implement, so a CA key in a software store or in an HSM works unchanged ([`CaIssuer`]).
//!
//! # Parse, verify, act
//!
//! A request is parsed ([`UnverifiedCsr::parse`]), verified ([`UnverifiedCsr::verify`]) and
//! only then, as a [`VerifiedCsr`], issued ([`issue_one`], [`issue_batch`]). Only its public
//! key and its device ID (the subject CN, 1..=64 of `[A-Za-z0-9._:-]`) are used; the
//! [`DeviceProfile`] decides every extension and requested extensions are never copied.
//! Likewise a device certificate becomes a [`VerifiedDevice`] only through
//! [`ChainVerifier::verify_device`].
//!
//! # Device certificate profile
//!
//! After Matter's DAC: X.509 v3, random 16-byte serial, subject `C, O` from the profile and
//! `CN` = device ID, keyUsage digitalSignature (critical), extendedKeyUsage clientAuth,
//! basicConstraints CA:FALSE (critical), SKI, AKI, and a non-critical **family extension**
//! under [`FAMILY_EXTENSION_OID`] = `2.25.46893514449957750261869592487436269697`, whose value
//! is a DER UTF8String naming the product family. The OID is the X.667 UUID OID of UUID
//! `23475cc4-20b8-4e76-b0a2-9edab7b0b881`, generated once for this project: such OIDs need no
//! registration. The signature algorithm follows the issuing CA's key (ecdsa-with-SHA256 for
//! P-256). rcgen cannot encode a 128-bit OID arc, so device certificates are DER-encoded by
//! this crate; CA certificates and CRLs come from rcgen.
//!
//! # Idempotency and uniqueness
//!
//! The [`IssuedIndex`] records every certificate with the hash of its request and key. The same
//! request (or the same key for the same device) gets its existing certificate back; a device
//! ID held by a live certificate under another key is refused ([`Error::DeviceIdTaken`]); a
//! revoked key is never certified again ([`Error::KeyRevoked`]).
//!
//! # I/O
//!
//! The crate is pure (bytes, traits and a caller-supplied clock in, bytes out) with one
//! exception: [`SqliteIndex`], because the PKI directory's index is an embedded SQLite file and
//! rusqlite owns that file. Serial numbers come from aws-lc-rs's system RNG.
#![forbid(unsafe_code)]

mod batch;
mod ca;
mod crl;
mod csr;
mod der;
mod error;
mod index;
mod index_sqlite;
mod inspect;
mod issue;
mod profile;
pub mod shamir;
pub mod transcript;
mod verify;

pub use batch::{
    BatchEvent, BatchOptions, BatchProgress, BatchReport, DEFAULT_CHUNK_SIZE, issue_batch,
    issue_batch_streaming,
};
pub use ca::{
    CA_BACKDATE, CaCertificate, CaIssuer, IntermediateCaParams, RootCaParams, create_intermediate,
    create_root, normalize_serial,
};
pub use crl::{Crl, RevocationReason, build_crl, sign_crl};
pub use csr::{
    DEFAULT_MAX_CSR_BYTES, KeyKind, Limits, UnverifiedCsr, VerifiedCsr, csr_der, parse_and_verify,
};
pub use error::{Error, Result};
pub use index::{CertStatus, IndexEntry, IssuedIndex, MemoryIndex, RevokedEntry};
pub use index_sqlite::{SCHEMA_VERSION, SqliteIndex};
pub use inspect::{CertSummary, ExtensionSummary, inspect_certificate};
pub use issue::{IssueOutcome, IssuedRecord, issue_one, issue_verified, sign_device};
pub use profile::{
    DEFAULT_BACKDATE, DeviceId, DeviceProfile, FAMILY_EXTENSION_OID, FAMILY_EXTENSION_OID_DER,
    MAX_DEVICE_ID_LEN, NO_WELL_DEFINED_EXPIRY, Validity,
};
pub use verify::{ChainVerifier, RevocationCheck, RevocationStatus, VerifiedDevice, danger};

/// Re-exported so callers name the signer trait and key types without a direct rcgen
/// dependency.
pub use rcgen::{KeyPair, PublicKeyData, SigningKey};
