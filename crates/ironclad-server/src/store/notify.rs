//! Telling the other server processes that the trusted CAs changed. Each process keeps the set
//! of CA certificates its TLS handshakes trust in memory (admission itself is decided by the
//! database on every request); a group proven or deleted through one process is announced, and
//! the others reload their set at once instead of at their next periodic refresh. PostgreSQL
//! carries the announcement (LISTEN/NOTIFY); SQLite serves one process and needs none.

use tokio::sync::watch;

use super::StoreFuture;

/// The channel of trust-set announcements.
pub trait TrustSignal {
    /// Ticks whenever some process announced a change (and after a reconnection of the
    /// listener, when announcements may have been missed). `None`: the backend has no channel.
    fn trust_changes(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    /// Announces a change of the trusted CAs to every process listening.
    fn announce_trust_change(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// One SQLite file serves one process: nothing to announce to.
impl TrustSignal for super::SqliteStore {}
