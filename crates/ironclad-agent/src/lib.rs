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
#![forbid(unsafe_code)]

mod device;
mod error;
mod fleet;
mod http;
mod identity;
mod operator;
mod ownership;
mod run;
mod tls;

pub use device::{DeviceConnection, ServerEndpoint, Session};
pub use error::{Error, Result};
pub use fleet::{
    AuthSummary, FleetOptions, FleetProgress, FleetReport, FleetStage, ProgressFn, ProvisionedFleet,
    authenticate_fleet, enroll_fleet, provision_fleet, reauthenticate_fleet, simulate_fleet,
};
pub use identity::{CERT_OBJECT, CHAIN_OBJECT, DeviceIdentity, KEY_LABEL, parse_pem_chain};
pub use operator::{EnrollmentInfo, OperatorClient};
pub use run::{AgentEvent, RunOptions, run_device};
pub use tls::{SeSigningKey, TlsVersions, device_client_config, plain_client_config, server_roots};
