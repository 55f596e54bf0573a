//! Storage behind one trait, with two backends: [`SqliteStore`] (embedded default: one file,
//! WAL) and [`PostgresStore`] (for several server processes). Both pass the same test suite
//! ([`suite`], instantiated with [`store_suite_tests!`](crate::store_suite_tests)).
//!
//! Times are Unix seconds. Secrets (session and API tokens) are stored only as SHA-256 hashes.

pub mod crl;
pub mod messages;
pub mod notify;
pub mod ota;
mod postgres;
mod sqlite;
#[cfg(any(test, feature = "store-suite"))]
pub mod suite;
mod types;
pub mod vault;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub use crl::{CrlEntry, CrlKey, CrlNumber, CrlPublished, CrlStore, StoredCrl};
pub use notify::TrustSignal;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use types::{
    Admission, ApiToken, AuditEntry, AuditRecord, ChallengeOp, ChallengeTake, DeviceRecord, Enrollment,
    EnrollmentKind, EnrollmentStatus, ImportCounts, MatchKey, Outcome, Revocation, Role, StoredChallenge,
    StoredSession, StoredState,
};

pub use messages::{LogUpload, MessageStore, StoredCommand, StoredTelemetry};
pub use ota::{DeviceRelease, OtaKey, OtaStore, Release, Rollout, RolloutChange, RolloutUpdate};
pub use vault::{
    ClaimRedemption, DeviceOwnership, KeyMaterial, KeyUsage, ManagedKey, OwnerClaim, VaultStore,
};

use crate::error::Result;

/// The schema version both backends migrate to.
pub const SCHEMA_VERSION: i64 = 5;

/// A boxed future returned by [`Store`] methods (the trait is object-safe: callers hold
/// `Arc<dyn Store>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Everything the server keeps. Implementations are shared by all connections
/// (`Arc<dyn Store>`) and must make each method atomic.
pub trait Store:
    VaultStore + CrlStore + MessageStore + OtaStore + TrustSignal + Send + Sync + fmt::Debug
{
    /// "sqlite" or "postgres".
    fn backend_name(&self) -> &'static str;

    // ---- enrollments ---------------------------------------------------------------------
    /// Adds an enrollment; [`Error::Conflict`](crate::Error::Conflict) when its ID or match key
    /// exists.
    fn insert_enrollment<'a>(&'a self, enrollment: &'a Enrollment) -> StoreFuture<'a, ()>;
    /// One enrollment by ID.
    fn enrollment<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Enrollment>>;
    /// The enrollments matching any of `keys` (in no particular order), in one query: the
    /// authentication lookup.
    fn enrollments_by_keys<'a>(&'a self, keys: &'a [MatchKey]) -> StoreFuture<'a, Vec<Enrollment>>;
    /// Everything one authentication step reads, in one round trip where the backend allows:
    /// the revocation of `serial` or of a certificate of the chain by a published CRL
    /// (`crl_keys`, [`CrlStore::revocation_for`]), the enrollments matching `keys`, and the
    /// step's challenge operation. The operation runs whatever the lookup finds: a challenge
    /// stored for a device that is then refused is never handed out, and one consumed by a
    /// refused device is spent.
    fn admission<'a>(
        &'a self,
        serial: &'a str,
        crl_keys: &'a [CrlKey],
        keys: &'a [MatchKey],
        op: ChallengeOp<'a>,
    ) -> StoreFuture<'a, Admission> {
        Box::pin(async move {
            let revocation = self.revocation_for(serial, crl_keys).await?;
            let mut enrollments = self.enrollments_by_keys(keys).await?;
            enrollments.iter_mut().for_each(|e| e.der = None);
            let challenge = match op {
                ChallengeOp::None => None,
                ChallengeOp::Insert(c) => {
                    self.insert_challenge(c).await?;
                    None
                }
                ChallengeOp::Consume { id, at } => Some(self.consume_challenge(id, at).await?),
            };
            Ok(Admission { revocation, enrollments, challenge })
        })
    }
    /// Every enrollment, oldest first.
    fn list_enrollments(&self) -> StoreFuture<'_, Vec<Enrollment>>;
    /// Group enrollments whose CA is trusted for chain building (proof of possession done,
    /// enabled or disabled).
    fn trusted_group_cas(&self) -> StoreFuture<'_, Vec<Enrollment>>;
    /// Sets an enrollment's status (and clears its verification code when it leaves
    /// `PendingProof`). Returns false when there is no such enrollment.
    fn set_enrollment_status<'a>(
        &'a self,
        id: &'a str,
        status: EnrollmentStatus,
        at: i64,
    ) -> StoreFuture<'a, bool>;
    /// Deletes an enrollment. Returns false when there is no such enrollment.
    fn delete_enrollment<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool>;
    /// Adds many enrollments in one transaction; those whose match key exists are skipped and
    /// counted as existing.
    fn import_enrollments<'a>(&'a self, enrollments: &'a [Enrollment]) -> StoreFuture<'a, ImportCounts>;

    // ---- devices and revocation ----------------------------------------------------------
    /// Records a successful authentication (insert or update by device ID).
    fn record_device<'a>(&'a self, device: &'a DeviceRecord) -> StoreFuture<'a, ()>;
    /// One registered device.
    fn device<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, Option<DeviceRecord>>;
    /// Registered devices by device ID, at most `limit`.
    fn list_devices(&self, limit: u32) -> StoreFuture<'_, Vec<DeviceRecord>>;
    /// Revokes a serial. Returns false when it was revoked already (the first record stays).
    fn revoke<'a>(&'a self, revocation: &'a Revocation) -> StoreFuture<'a, bool>;
    /// The revocation of a serial (lower-case hex), if any.
    fn revocation<'a>(&'a self, serial: &'a str) -> StoreFuture<'a, Option<Revocation>>;

    // ---- challenges and sessions ---------------------------------------------------------
    /// Stores a fresh challenge.
    fn insert_challenge<'a>(&'a self, challenge: &'a StoredChallenge) -> StoreFuture<'a, ()>;
    /// Marks a challenge used, atomically: exactly one caller ever gets
    /// [`ChallengeTake::Fresh`] for an ID.
    fn consume_challenge<'a>(&'a self, id: &'a str, at: i64) -> StoreFuture<'a, ChallengeTake>;
    /// Stores a session.
    fn insert_session<'a>(&'a self, session: &'a StoredSession) -> StoreFuture<'a, ()>;
    /// What a successful authentication writes, atomically where the backend allows: the
    /// session, the device's registry record, and the audit record.
    fn open_session<'a>(
        &'a self,
        session: &'a StoredSession,
        device: &'a DeviceRecord,
        audit: &'a AuditRecord,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.insert_session(session).await?;
            self.record_device(device).await?;
            self.append_audit(audit).await
        })
    }
    /// A session by the SHA-256 of its token.
    fn session<'a>(&'a self, token_sha256: &'a [u8; 32]) -> StoreFuture<'a, Option<StoredSession>>;
    /// Deletes challenges and sessions that expired before `at`; returns how many rows went.
    fn purge_expired(&self, at: i64) -> StoreFuture<'_, u64>;

    // ---- per-device resource -------------------------------------------------------------
    /// A device's state document.
    fn device_state<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, Option<StoredState>>;
    /// Replaces a device's state document; returns the new version (1 for the first write).
    fn put_device_state<'a>(&'a self, device_id: &'a str, json: &'a str, at: i64) -> StoreFuture<'a, u64>;

    // ---- audit ---------------------------------------------------------------------------
    /// Appends a record, durably, before returning.
    fn append_audit<'a>(&'a self, record: &'a AuditRecord) -> StoreFuture<'a, ()>;
    /// The newest `limit` records, newest first, optionally only those naming `device_id`.
    fn audit<'a>(&'a self, limit: u32, device_id: Option<&'a str>) -> StoreFuture<'a, Vec<AuditEntry>>;

    // ---- operator API tokens -------------------------------------------------------------
    /// Adds a token; [`Error::Conflict`](crate::Error::Conflict) when the name exists.
    fn insert_api_token<'a>(&'a self, token: &'a ApiToken) -> StoreFuture<'a, ()>;
    /// A token by the SHA-256 of its secret.
    fn api_token_by_hash<'a>(&'a self, token_sha256: &'a [u8; 32]) -> StoreFuture<'a, Option<ApiToken>>;
    /// Every token (hashes included, secrets never stored), by name.
    fn list_api_tokens(&self) -> StoreFuture<'_, Vec<ApiToken>>;
    /// Enables or disables a token by name. Returns false when there is no such token.
    fn set_api_token_disabled<'a>(&'a self, name: &'a str, disabled: bool) -> StoreFuture<'a, bool>;
}
