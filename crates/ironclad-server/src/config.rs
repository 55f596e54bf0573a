//! The server configuration: one serde struct with documented defaults, read from one file by
//! the CLI and overridden by its flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything `ironclad serve` can be told. Every field has a default, so `{}` is a valid
/// configuration (SQLite in the working directory, loopback, port 8443).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on (default `127.0.0.1:8443`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Where the registry lives (default SQLite `ironclad-registry.sqlite`).
    pub storage: StorageConfig,
    /// The server's own certificate and TLS versions.
    pub tls: TlsConfig,
    /// Extra CA certificates (PEM files) trusted for building device chains, in addition to the
    /// CAs of group enrollments: e.g. the fleet's root, so devices enrolled one by one (or from
    /// a factory manifest) chain to it. Trusting a CA here admits nobody by itself.
    pub trust_anchors: Vec<PathBuf>,
    /// Challenge and session lifetimes and request limits.
    pub auth: AuthLimits,
    /// Seconds a client has to finish the TLS handshake (default 10).
    pub handshake_timeout_secs: u64,
    /// Seconds between reloads of the trusted CA set from storage (default 5). On PostgreSQL a
    /// group proven or deleted through another server process is announced and reloaded at
    /// once; this period is the fallback (e.g. while the announcement listener reconnects).
    pub trust_refresh_secs: u64,
    /// Seconds between purges of expired challenges and sessions (default 60).
    pub purge_interval_secs: u64,
    /// Seconds graceful shutdown waits for open connections (default 10).
    pub shutdown_grace_secs: u64,
    /// OTA releases: where they are stored, how large, how long a manifest lives.
    pub ota: OtaConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            storage: StorageConfig::default(),
            tls: TlsConfig::default(),
            trust_anchors: Vec::new(),
            auth: AuthLimits::default(),
            handshake_timeout_secs: 10,
            trust_refresh_secs: 5,
            purge_interval_secs: 60,
            shutdown_grace_secs: 10,
            ota: OtaConfig::default(),
        }
    }
}

/// OTA releases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OtaConfig {
    /// Where release images are kept (default: a `releases` directory next to the SQLite
    /// database; with PostgreSQL it must be set, to a directory every server process shares).
    pub releases_dir: Option<PathBuf>,
    /// Largest release, bytes (default 256 MiB).
    pub max_release_bytes: u64,
    /// Seconds a signed manifest stays valid (default 3600): a device refuses an older one,
    /// which is what stops a freeze attack (serving a stale "no newer update").
    pub manifest_ttl_secs: u64,
    /// Release files up to this many bytes in total are served from memory (default 256 MiB);
    /// the others are streamed from disk.
    pub memory_cache_bytes: u64,
}

impl Default for OtaConfig {
    fn default() -> Self {
        OtaConfig {
            releases_dir: None,
            max_release_bytes: 256 << 20,
            manifest_ttl_secs: 3600,
            memory_cache_bytes: 256 << 20,
        }
    }
}

/// The storage backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum StorageConfig {
    /// Embedded SQLite: one file, WAL.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// PostgreSQL, for several server processes.
    Postgres {
        /// libpq-style connection string, e.g. `host=db port=5432 user=ironclad dbname=ironclad`.
        url: String,
        /// Connections per server process (default 4).
        #[serde(default = "default_pool")]
        pool_size: usize,
    },
}

fn default_pool() -> usize {
    4
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig::Sqlite { path: PathBuf::from("ironclad-registry.sqlite") }
    }
}

/// The server's TLS identity and versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM certificate chain of the server (leaf first). With `private_key`; when both are
    /// absent the caller must supply an identity to the builder.
    pub certificate: Option<PathBuf>,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1) of the server certificate.
    pub private_key: Option<PathBuf>,
    /// Also accept TLS 1.2 (with the extended master secret required). Default true.
    pub tls12: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig { certificate: None, private_key: None, tls12: true }
    }
}

/// Lifetimes and limits of device authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthLimits {
    /// Seconds a challenge stays answerable (default 60).
    pub challenge_ttl_secs: u64,
    /// Seconds a device session lasts (default 600).
    pub session_ttl_secs: u64,
    /// Largest device state document, bytes (default 16 KiB).
    pub max_state_bytes: usize,
    /// Largest request body on any endpoint, bytes (default 16 MiB, for manifest imports).
    pub max_body_bytes: usize,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            challenge_ttl_secs: 60,
            session_ttl_secs: 600,
            max_state_bytes: 16 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_all_defaults() {
        let c: ServerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, ServerConfig::default());
        assert_eq!(c.auth.challenge_ttl_secs, 60);
        assert!(c.tls.tls12);
    }

    #[test]
    fn postgres_and_unknown_fields() {
        let c: ServerConfig =
            serde_json::from_str(r#"{"storage":{"backend":"postgres","url":"host=x"}}"#).unwrap();
        assert_eq!(c.storage, StorageConfig::Postgres { url: "host=x".into(), pool_size: 4 });
        assert!(serde_json::from_str::<ServerConfig>(r#"{"listne":"1.2.3.4:1"}"#).is_err());
    }
}
