//! Secure-element abstraction for ironclad: keys are generated inside and never exported.
//!
//! The traits ([`KeyStore`], [`SealedStore`], [`MonotonicCounter`], together [`SecureElement`])
//! are what the rest of ironclad programs against. A [`KeyHandle`] wraps a signing key and
//! implements `rcgen::SigningKey`, so certificate and CSR code never knows which backend signs.
//!
//! Backends here: [`DirSe`] (the software secure element: an encrypted directory unlocked by a
//! passphrase through Argon2id or by a device-unique secret through HKDF) and [`MemorySe`] (the
//! same in memory, for tests and simulations). The PKCS#11 backend lives in `ironclad-se-pkcs11`.
//! Every backend must pass the shared suite in [`conformance`], instantiated with
//! [`se_conformance_tests!`].
//!
//! ```
//! use std::sync::Arc;
//! use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement, SignInput};
//!
//! let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
//! let id = Label::new("device-auth").unwrap();
//! se.generate_key(&id, KeyAlgorithm::EcdsaP256).unwrap();
//! let key = KeyHandle::open(se, &id).unwrap();
//! let signature = key.sign(SignInput::Message(b"challenge")).unwrap();
//! assert!(signature.len() > 64); // DER-encoded ECDSA
//! ```
#![forbid(unsafe_code)]

mod error;
mod handle;
mod soft;
mod traits;
mod types;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use error::{Error, Result};
pub use handle::KeyHandle;
pub use soft::{DirSe, KdfParams, MemorySe, Overwrite, Unlock, atomic_write};
pub use traits::{KeyStore, MonotonicCounter, SealedStore, SecureElement};
pub use types::{Hkdf, KeyAlgorithm, KeyInfo, Label, MAX_OBJECT_LEN, PublicKey, SignInput};
