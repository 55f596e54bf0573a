//! HAP (HomeKit Accessory Protocol) over HTTP/1.1 on tokio, for both roles, on the sans-I/O
//! pairing core of `ironclad-pair`.
//!
//! - [`Accessory`] (device side): `POST /pair-setup` and `/pair-verify` in plaintext
//!   (`application/pairing+tlv8`), then the same connection in HAP session frames for
//!   `/pairings` (admin only), `/accessories`, `/characteristics` (GET/PUT, events) — see
//!   [`database`] for the characteristics. Long-term key, pairings, failed-attempt counter and
//!   the cloud delegation ([`CloudDelegation`]: server URL, trust anchor, claim token; admin
//!   only) live in an `ironclad_se` secure element; optionally pair-setup presents the device's
//!   X.509 certificate and a transcript signature ([`device_attestation`]); a pairing is stored
//!   durably before pair-setup M6 is sent. One pair-setup at a time (kTLVError_Busy), MaxTries
//!   from 100 failed attempts (persisted), SRP on the blocking pool. No mDNS: controllers connect
//!   by address and port.
//! - [`Controller`] (phone side): pair with a setup code (optionally requiring the device
//!   certificate to chain to an OEM root, [`OemRootVerifier`]), verify, read and write
//!   characteristics, delegate cloud access, list, add and remove pairings; its own identity and
//!   the paired accessories live in a [`ControllerStore`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ironclad_hap::{Accessory, Controller, FileControllerStore, ids};
//! use ironclad_se::{MemorySe, SecureElement};
//!
//! let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
//! let accessory = Accessory::builder(se).name("lamp").start().await?;
//! println!("setup code {} / {}", accessory.setup_code().as_str(), accessory.setup_uri());
//!
//! let dir = tempfile::tempdir()?;
//! let controller = Controller::new(Arc::new(FileControllerStore::new(dir.path().join("controller.json"))))?;
//! let address = accessory.local_addr().to_string();
//! controller.pair("lamp", &address, accessory.setup_code()).await?;
//! let mut session = controller.connect("lamp").await?;
//! session.put(&[(ids::ON, true.into())]).await?;
//! assert_eq!(session.get(&[ids::ON]).await?, vec![(ids::ON, true.into())]);
//! session.remove_pairing(controller.id()).await?;
//! accessory.shutdown().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod accessory;
mod channel;
pub mod controller;
pub mod database;
mod device_auth;
mod error;
mod http;
mod payload;

pub use accessory::{Accessory, AccessoryBuilder, Change, Limits, load_delegation};
pub use controller::{
    Controller, ControllerStore, FileControllerStore, PairedAccessory, SeControllerStore, Session,
};
pub use database::{AccessoryInfo, CharId, HapStatus, ids};
pub use device_auth::{
    DEVICE_CERT, DEVICE_CHAIN, DEVICE_KEY, OemRootVerifier, device_attestation,
    device_attestation_with_labels, pem_certificates,
};
pub use error::{Error, Result};
pub use http::Response;
pub use ironclad_pair::attestation::AuthenticatedDevice;
pub use ironclad_pair::delegation::{CloudDelegation, DelegationLimits, StoredDelegation};
pub use ironclad_pair::setup::SetupCode;
pub use ironclad_pair::{ErrorCode, Pairing, PairingId, Permissions};
pub use payload::{Category, SetupId, SetupPayload, parse_setup_uri, setup_uri};
