//! ironclad's secure-element traits over PKCS#11 (through `cryptoki`), so CA keys and device
//! keys can live in an HSM, a smart card or a TPM's PKCS#11 front end. Tested against SoftHSM2.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ironclad_se::{KeyAlgorithm, KeyHandle, Label, SecureElement};
//! use ironclad_se_pkcs11::{Pin, Pkcs11Config, Pkcs11Se};
//!
//! let config = Pkcs11Config {
//!     module: "/usr/lib/softhsm/libsofthsm2.so".into(),
//!     token_label: "ironclad".into(),
//!     pin: Pin::from_env("IRONCLAD_PKCS11_PIN")?,
//! };
//! let se: Arc<dyn SecureElement> = Arc::new(Pkcs11Se::open(&config)?);
//! let id = Label::new("ca-line-1")?;
//! se.generate_key(&id, KeyAlgorithm::EcdsaP256)?;
//! let ca_key = KeyHandle::open(se, &id)?; // an rcgen::SigningKey, signing inside the token
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How the traits map onto PKCS#11
//!
//! - **Keys** are token objects, private (`CKA_PRIVATE`), sensitive and never extractable.
//!   Each has `CKA_LABEL` = the ironclad label and `CKA_ID` = SHA-256(label)[..16]; a lookup
//!   matches both and requires exactly one object, because PKCS#11 labels are not unique.
//!   P-256 keys sign (`CKA_SIGN`) or agree (`CKA_DERIVE`), never both; Ed25519 uses
//!   `CKM_EC_EDWARDS_KEY_PAIR_GEN`; X25519 uses `CKM_EC_MONTGOMERY_KEY_PAIR_GEN`, or, on tokens
//!   such as SoftHSM 2.6 that only list the Edwards mechanism, an Edwards-typed key on the
//!   X25519 curve. A `Secret256` is two 256-bit token keys under one label: an AES key for
//!   seal/open (`CKM_AES_GCM`) and a generic secret for derivation (`CKM_SHA256_HMAC`).
//! - **ECDSA** hashes on the host (SHA-256) and signs with plain `CKM_ECDSA`, which every token
//!   has (SoftHSM 2.6 lacks `CKM_ECDSA_SHA256`); the raw `r ‖ s` becomes DER ([`ecdsa`]).
//! - **ECDH** derives the shared secret with `CKM_ECDH1_DERIVE` into a short-lived session
//!   object, reads it, destroys it and runs HKDF-SHA256 on the host. HKDF's extract step uses
//!   the shared secret as the HMAC *message*, which a token cannot do with a key it holds, and
//!   the result must equal what a software peer computes (MCUboot's ECIES, for instance). The
//!   static private key never leaves the token; the per-peer shared secret is in this
//!   process's memory for one HKDF and is zeroized.
//! - **`derive`** runs entirely on the token: HKDF-Expand-SHA256 keyed by the token secret
//!   (RFC 5869 §3.3: a uniformly random 256-bit key needs no extract step) with
//!   `info' = be32(len(salt)) ‖ salt ‖ info`, each block a `C_Sign(CKM_SHA256_HMAC)`. Outputs
//!   therefore differ from the software backend's for the same inputs; that cannot matter
//!   because a `Secret256` never leaves the backend that generated it.
//! - **Sealed objects and counters** are private `CKO_DATA` token objects (`CKA_APPLICATION`
//!   `ironclad` and `ironclad-counter`). A replacement is written as a new object with a higher
//!   generation, then the old one is destroyed, so a crash in between leaves the newer value
//!   readable. PKCS#11 has no atomic counter: increments are serialised within this process
//!   only, so **several processes must not increment the same counter at once** (serialise
//!   them outside, e.g. with a lock file).
//!
//! Sessions are pooled (`Session` is `Send` but not `Sync`), so a `Pkcs11Se` is `Send + Sync`
//! and parallel batch signing uses one session per thread.
#![forbid(unsafe_code)]

mod backend;
pub mod ecdsa;
mod error;
mod keys;
mod objects;
mod ops;
mod pin;
mod token;
mod uri;

pub use backend::{Pkcs11Config, Pkcs11Se};
pub use error::Pkcs11Error;
pub use pin::Pin;
pub use uri::{ObjectType, Pkcs11Uri};
