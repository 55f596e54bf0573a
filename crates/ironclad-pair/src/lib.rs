//! HomeKit-compatible pairing for ironclad, sans-I/O: bytes in, bytes and events out. The caller
//! owns sockets, storage (through [`PairingStore`] and [`AttemptCounter`]), the clock and the
//! random source ([`RandomSource`]).
//!
//! - [`tlv8`]: HAP's TLV8 codec, with fragmentation of values over 255 bytes.
//! - [`srp`]: HAP-SRP (SRP-6a, RFC 5054 3072-bit group, SHA-512, Apple's padding conventions,
//!   tolerant of the other conventions peers use).
//! - [`setup`]: pair-setup M1–M6 for the accessory (device) and the controller (phone).
//! - [`verify`]: pair-verify M1–M4 for both roles.
//! - [`session`]: the encrypted frames that follow pair-verify.
//! - [`pairings`]: add, remove and list pairings (admin only).
//! - [`attestation`]: device authenticity in pair-setup — the accessory's X.509 device
//!   certificate and a signature over the pairing transcript (HAP's Certificate TLV in M4).
//! - [`delegation`]: the cloud delegation a controller hands the device over a verified
//!   session (server URL, its trust anchor, a claim token), sealed in the device's element.
//!
//! Each protocol step is a type named for the message it expects; `handle` consumes it and
//! returns the reply plus the next step. Accessory steps fail with [`Rejected`], which carries
//! the error TLV to send (coarse: Authentication, MaxTries, …) next to the precise [`Error`].
//! The accessory's long-term key signs through [`LongTermKey`]; on a device that is
//! [`SeLongTermKey`], an Ed25519 key inside an `ironclad_se` secure element, and the pairings and
//! the failed-attempt count live in the same element's sealed store ([`SealedPairingStore`]).
//! One pair-setup at a time: [`setup::accessory::SetupSlot`].
//!
//! Interop: `tests/interop/` runs aiohomekit's and homekit_python's controller state machines
//! and HAP-python's accessory handler against these types; ironclad-hap runs the peers over HTTP
//! (500 consecutive pair-setups each in the acceptance run, zero failures).
//!
//! ```
//! use std::sync::Arc;
//! use ironclad_pair::{setup, verify, Identity, MemoryStore, PairingId, PairingStore, SoftLongTermKey, SystemRandom};
//!
//! let mut rng = SystemRandom;
//! let accessory = Identity::new("AA:BB:CC:DD:EE:FF".parse()?, Arc::new(SoftLongTermKey::generate(&mut rng)?));
//! let controller = Identity::new("6A0C4B0F-5C31-4F1D-9A38-0E0C1F5E1C11".parse()?, Arc::new(SoftLongTermKey::generate(&mut rng)?));
//! let (acc_store, ctl_store) = (MemoryStore::new(), MemoryStore::new());
//! let code = setup::SetupCode::parse("031-45-154")?;
//!
//! // Pair-setup: each message goes to the other side's current step.
//! let acc = setup::accessory::ExpectM1::new(accessory.clone(), code.verifier(&mut rng)?);
//! let m1 = setup::controller::start(controller.clone(), code);
//! let m2 = acc.handle(&m1.message, &acc_store, &acc_store, &mut rng)?;
//! let m3 = m1.next.handle(&m2.message, &mut rng)?;
//! let m4 = m2.next.handle(&m3.message, &acc_store)?;
//! let m5 = m3.next.handle(&m4.message)?;
//! let m6 = m4.next.handle(&m5.message, &acc_store, &acc_store)?; // stored before M6 is sent
//! ctl_store.put(&m5.next.handle(&m6.message)?.peer)?;
//!
//! // Pair-verify, then an encrypted session.
//! let v1 = verify::controller::start(controller, &mut rng)?;
//! let v2 = verify::accessory::ExpectM1::new(accessory).handle(&v1.message, &mut rng)?;
//! let v3 = v1.next.handle(&v2.message, &ctl_store)?;
//! let v4 = v2.next.handle(&v3.message, &acc_store)?;
//! let mut phone = v3.next.handle(&v4.message)?.into_session();
//! let mut device = v4.next.into_session();
//! let frames = phone.encrypt(b"GET /accessories HTTP/1.1\r\n\r\n")?;
//! assert_eq!(device.decrypt(&frames)?, b"GET /accessories HTTP/1.1\r\n\r\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod attestation;
mod crypto;
pub mod delegation;
mod error;
mod identity;
pub mod pairings;
mod sealed_store;
pub mod session;
pub mod setup;
pub mod srp;
mod store;
pub mod tlv8;
pub mod verify;

pub use crypto::{
    LongTermKey, PUBLIC_KEY_LEN, RandomSource, SIGNATURE_LEN, SeLongTermKey, SoftLongTermKey, SystemRandom,
};
pub use error::{Error, ErrorCode, Rejected, Result, TlvErrorKind};
pub use identity::{Identity, Reply};
pub use sealed_store::SealedPairingStore;
pub use store::{
    AttemptCounter, MAX_FAILED_ATTEMPTS, MAX_ID_LEN, MemoryStore, Pairing, PairingId, PairingStore,
    Permissions,
};
