//! The ironclad device agent and the fleet simulator.
//!
//! - [`DeviceIdentity`] reads a device's key handle and certificate chain from its secure
//!   element (key `device-auth`, sealed objects `device-cert` and `device-chain`).
//! - [`DeviceConnection`] connects with mutual TLS whose CertificateVerify is signed inside the
//!   secure element ([`SeSigningKey`], a `rustls::sign::SigningKey` over a `KeyHandle`), runs
//!   the session-bound challenge-response of `ironclad-proto` (the challenge signed with the
//!   connection's TLS exporter, inside the element) and keeps the session.
//! - [`run_device`] keeps a device connected and its session fresh.
//! - [`simulate_fleet`] provisions N devices through `ironclad-pki`, enrolls their line CA with
//!   proof of possession through the operator API ([`OperatorClient`]), and authenticates them
//!   concurrently with a latency summary.
//! - [`CommandGate`] checks server-signed commands (COSE_Sign1) against the device id, the last
//!   accepted sequence number (a secure-element monotonic counter) and the expiry, with typed
//!   refusals to report; [`LogWriter`] appends AES-GCM-encrypted log records under the log key
//!   that [`install_log_key`] unwrapped with the device's X25519 key and sealed in the element.
//! - [`OtaDevice`] runs an update cycle on a device: check over the session, verify the
//!   manifest with the pinned manifest keys ([`PinnedManifestKeys`]), download its own copy with
//!   resume, verify and install through `ironclad-boot`, trial-boot, confirm, report.
#![forbid(unsafe_code)]

mod command_gate;
mod cose_keys;
mod device;
mod error;
mod fleet;
mod http;
mod identity;
mod log_writer;
mod messages;
mod operator;
mod ota;
mod ota_operator;
mod ota_pin;
mod ownership;
mod run;
mod tls;

pub use command_gate::{COMMAND_SEQUENCE_COUNTER, CommandGate};
pub use cose_keys::{SeAgreementKey, SeCoseSigner};
pub use device::{DeviceConnection, ServerEndpoint, Session};
pub use error::{Error, Result};
pub use fleet::{
    AuthSummary, FleetOptions, FleetProgress, FleetReport, FleetStage, ProgressFn, ProvisionedFleet,
    authenticate_fleet, enroll_fleet, provision_fleet, reauthenticate_fleet, simulate_fleet,
};
pub use identity::{CERT_OBJECT, CHAIN_OBJECT, DeviceIdentity, KEY_LABEL, parse_pem_chain};
pub use log_writer::{LOG_KEY_OBJECT, LogSync, LogWriter, install_log_key, load_log_key};
pub use messages::FetchedCommand;
pub use operator::{EnrollmentInfo, OperatorClient};
pub use ota::{Download, OtaDevice, OtaRefusal, OtaTrust, UpdateOptions, UpdateOutcome, VerifiedOffer};
pub use ota_pin::{MANIFEST_KEYS_OBJECT, PinnedKey, PinnedManifestKeys};
pub use run::{AgentEvent, RunOptions, run_device};
pub use tls::{SeSigningKey, TlsVersions, device_client_config, plain_client_config, server_roots};
