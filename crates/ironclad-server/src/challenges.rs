//! Outstanding challenges, in the memory of the process that issued them.
//!
//! A challenge is bound to the TLS session it was issued on (the device signs it together
//! with that connection's exporter value), and a TLS connection ends in one server process:
//! no other process can ever accept an answer to it. So challenges need not be shared through
//! the database, and keeping them here saves two writes per challenge-response (store,
//! consume). The guarantees are the same: single-use (the take is atomic, the first caller
//! gets [`ChallengeTake::Fresh`]), expiring (the caller checks `expires_at`), bound to the
//! certificate and the session (checked by the caller against the stored hashes). A process
//! that restarts loses its challenges together with the connections they were bound to.
//!
//! Used challenges are kept until purged (a minute past expiry), so a late replay is named as
//! such. The book is bounded: past [`MAX_OUTSTANDING`] a new challenge is refused until
//! expired ones are purged.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{ChallengeTake, StoredChallenge};

/// Most challenges (outstanding or used, not yet purged) one process keeps: about 40 MiB.
pub(crate) const MAX_OUTSTANDING: usize = 262_144;

const SHARDS: usize = 16;

#[derive(Debug)]
struct Slot {
    challenge: StoredChallenge,
    used: bool,
}

/// The challenges of one server process, sharded by ID so concurrent devices rarely contend.
#[derive(Debug)]
pub(crate) struct ChallengeBook {
    shards: Vec<Mutex<HashMap<String, Slot>>>,
    per_shard: usize,
}

impl Default for ChallengeBook {
    fn default() -> Self {
        Self::with_capacity(MAX_OUTSTANDING)
    }
}

impl ChallengeBook {
    pub(crate) fn with_capacity(max: usize) -> Self {
        ChallengeBook {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, id: &str) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // IDs are random hex: their last digit spreads them evenly.
        let i = id.bytes().last().map_or(0, |b| usize::from(b) % SHARDS);
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a fresh challenge. False when the book is full even after dropping what expired
    /// before `now - 60` (or when the ID exists, which a random 128-bit ID never does).
    pub(crate) fn insert(&self, challenge: StoredChallenge, now: i64) -> bool {
        let mut shard = self.shard(&challenge.id);
        if shard.len() >= self.per_shard {
            shard.retain(|_, s| s.challenge.expires_at >= now - 60);
            if shard.len() >= self.per_shard {
                return false;
            }
        }
        if shard.contains_key(&challenge.id) {
            return false;
        }
        shard.insert(challenge.id.clone(), Slot { challenge, used: false });
        true
    }

    /// Marks a challenge used, atomically: exactly one caller gets `Fresh` for an ID.
    pub(crate) fn take(&self, id: &str) -> ChallengeTake {
        let mut shard = self.shard(id);
        match shard.get_mut(id) {
            Some(slot) if !slot.used => {
                slot.used = true;
                ChallengeTake::Fresh(slot.challenge.clone())
            }
            Some(slot) => ChallengeTake::Used(slot.challenge.clone()),
            None => ChallengeTake::Unknown,
        }
    }

    /// Drops challenges that expired before `at`; returns how many went.
    pub(crate) fn purge(&self, at: i64) -> usize {
        let mut gone = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let before = shard.len();
            shard.retain(|_, s| s.challenge.expires_at >= at);
            gone += before - shard.len();
        }
        gone
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn challenge(id: &str, expires_at: i64) -> StoredChallenge {
        StoredChallenge {
            id: id.into(),
            challenge: [1; 32],
            cert_sha256: [2; 32],
            session_binding: [3; 32],
            issued_at: 0,
            expires_at,
        }
    }

    #[test]
    fn single_use_and_replays_named_until_purged() {
        let book = ChallengeBook::default();
        assert!(book.insert(challenge("a1", 100), 0));
        assert!(!book.insert(challenge("a1", 100), 0), "IDs are unique");
        assert_eq!(book.take("a1"), ChallengeTake::Fresh(challenge("a1", 100)));
        assert_eq!(book.take("a1"), ChallengeTake::Used(challenge("a1", 100)));
        assert_eq!(book.take("zz"), ChallengeTake::Unknown);
        assert_eq!(book.purge(100), 0, "kept while not expired");
        assert_eq!(book.purge(101), 1);
        assert_eq!(book.take("a1"), ChallengeTake::Unknown);
    }

    #[test]
    fn concurrent_takes_have_one_winner() {
        let book = Arc::new(ChallengeBook::default());
        book.insert(challenge("c7", 100), 0);
        let wins: usize = (0..8)
            .map(|_| {
                let b = book.clone();
                std::thread::spawn(move || usize::from(matches!(b.take("c7"), ChallengeTake::Fresh(_))))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(wins, 1);
    }

    #[test]
    fn bounded_and_expired_make_room() {
        let book = ChallengeBook::with_capacity(SHARDS);
        // One slot per shard: two IDs ending in the same digit share a shard.
        assert!(book.insert(challenge("x0", 10), 0));
        assert!(!book.insert(challenge("y0", 10), 0), "full");
        assert!(book.insert(challenge("y0", 200), 100), "x0 expired more than a minute ago");
        assert_eq!(book.take("x0"), ChallengeTake::Unknown);
    }
}
