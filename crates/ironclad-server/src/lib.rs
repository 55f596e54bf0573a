//! ironclad's cloud service, as a library: the device registry, enrollment, and device
//! authentication by mutual TLS plus a session-bound challenge-response.
//!
//! # Shape
//!
//! - [`Server::builder`] takes a [`ServerConfig`] (serde, every field defaulted), binds, and
//!   returns a [`RunningServer`] with its port, its [`Registry`] and a graceful
//!   [`RunningServer::shutdown`].
//! - TLS: rustls 0.23, TLS 1.3 and 1.2 (extended master secret required), client certificates
//!   requested from everyone and verified against the trusted CAs by the PKI's
//!   [`ironclad_pki::ChainVerifier`] (the result is remembered, so a connection's requests do
//!   not verify the chain again); our own tokio-rustls accept loop puts each connection's
//!   certificates and exporter value in a [`ConnectionInfo`] request extension.
//! - Device authentication on every device request: chain ([`ironclad_pki::ChainVerifier`]),
//!   revocation (registry status by serial), enrollment (individual by certificate, then by
//!   key, then groups up the chain, nearest first; a disabled match blocks). Then the
//!   challenge-response of [`ironclad_proto`]: a 32-byte challenge bound to the TLS exporter,
//!   single-use, expiring; the signature is verified with the certificate's key; the result is a
//!   short-lived session token valid only with the same certificate. Every refusal is audited
//!   with a precise [`Refusal`] and answered `AuthFailed`.
//! - Operators: API tokens stored as SHA-256 hashes, roles admin > operator > viewer. Only
//!   `GET /healthz` is open.
//! - Storage: one [`store::Store`] trait; [`store::SqliteStore`] (default) and
//!   [`store::PostgresStore`] pass the same suite.
#![forbid(unsafe_code)]

mod auth;
mod challenges;
mod clock;
mod config;
mod crl;
mod error;
mod http;
mod ota;
mod pop;
mod registry;
mod server;
pub mod store;
mod tls;
mod trust;
mod vault;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{AuthLimits, OtaConfig, ServerConfig, StorageConfig, TlsConfig};
pub use crl::{CRL_CLOCK_SKEW_SECS, CrlPublication, CrlRefusal, ParsedCrl, VerifiedCrl, parse_crl};
pub use error::{Error, Refusal, Result};
pub use ota::rollout_bucket;
pub use pop::make_verification_certificate;
pub use registry::{ImportReport, ManifestRecord, NewApiToken, Registry};
pub use server::{RunningServer, Server, ServerBuilder, open_store};
pub use store::Role;
pub use tls::{ConnectionInfo, ServerIdentity};
pub use vault::{KeyVault, MASTER_KEY_LABEL};
