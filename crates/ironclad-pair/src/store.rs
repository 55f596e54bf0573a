//! Pairings (peer identifier, long-term public key, permissions) and the storage hooks the
//! caller supplies: a [`PairingStore`] and a failed-attempt [`AttemptCounter`].
//!
//! Implementations must be durable before returning `Ok` (write, fsync, rename): the accessory
//! persists a new pairing before it emits M6, so a crash never leaves a controller that thinks it
//! is paired with an accessory that forgot it (research/pairing.md §9).

use std::fmt;
use std::sync::Mutex;

use crate::crypto::PUBLIC_KEY_LEN;
use crate::error::{Error, Result};

/// HAP's failed pair-setup attempts limit: at this many, pair-setup answers MaxTries.
pub const MAX_FAILED_ATTEMPTS: u32 = 100;
/// Longest pairing identifier accepted (controllers use 36-byte UUIDs, accessories 17 bytes).
pub const MAX_ID_LEN: usize = 64;

/// A pairing identifier, kept byte for byte as the peer sent it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairingId(Vec<u8>);

impl PairingId {
    /// 1 to 64 bytes.
    pub fn new(id: impl Into<Vec<u8>>) -> Result<Self> {
        let id = id.into();
        if id.is_empty() {
            return Err(Error::InvalidIdentifier("empty"));
        }
        if id.len() > MAX_ID_LEN {
            return Err(Error::InvalidIdentifier("longer than 64 bytes"));
        }
        Ok(PairingId(id))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for PairingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for PairingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl std::str::FromStr for PairingId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s.as_bytes())
    }
}

/// The permissions byte of a pairing (TLV type 0x0B): bit 0 = admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Permissions(pub u8);

impl Permissions {
    pub const USER: Permissions = Permissions(0);
    pub const ADMIN: Permissions = Permissions(1);

    pub fn is_admin(self) -> bool {
        self.0 & 1 == 1
    }
}

/// One paired peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pairing {
    pub id: PairingId,
    pub public_key: [u8; PUBLIC_KEY_LEN],
    pub permissions: Permissions,
}

/// Where pairings live (on a device: the secure element's sealed store). Implementations are
/// internally synchronised and durable: `Ok` means the change survives a power cut.
pub trait PairingStore: Send + Sync + fmt::Debug {
    /// The pairing with this identifier.
    fn get(&self, id: &PairingId) -> Result<Option<Pairing>>;
    /// Adds or replaces the pairing with `pairing.id`. [`Error::MaxPeers`] when full.
    fn put(&self, pairing: &Pairing) -> Result<()>;
    /// Removes a pairing; removing an absent one succeeds.
    fn remove(&self, id: &PairingId) -> Result<()>;
    /// Every pairing.
    fn list(&self) -> Result<Vec<Pairing>>;
    /// Whether any pairing exists (pair-setup is then Unavailable).
    fn is_paired(&self) -> Result<bool> {
        Ok(!self.list()?.is_empty())
    }
}

/// The persisted count of unsuccessful pair-setup attempts (ADK `NumUnsuccessfulAuthAttempts`).
pub trait AttemptCounter: Send + Sync + fmt::Debug {
    fn failed_attempts(&self) -> Result<u32>;
    /// Adds one, durably, and returns the new count.
    fn record_failure(&self) -> Result<u32>;
    /// Back to zero after a successful pairing.
    fn reset(&self) -> Result<()>;
}

/// Both hooks in memory: tests, simulations, and controllers that persist elsewhere.
#[derive(Debug)]
pub struct MemoryStore {
    pairings: Mutex<Vec<Pairing>>,
    attempts: Mutex<u32>,
    capacity: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(16)
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `capacity` pairings (HAP requires at least 16).
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryStore { pairings: Mutex::new(Vec::new()), attempts: Mutex::new(0), capacity }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Pairing>> {
        self.pairings.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PairingStore for MemoryStore {
    fn get(&self, id: &PairingId) -> Result<Option<Pairing>> {
        Ok(self.lock().iter().find(|p| &p.id == id).cloned())
    }

    fn put(&self, pairing: &Pairing) -> Result<()> {
        let mut pairings = self.lock();
        if let Some(existing) = pairings.iter_mut().find(|p| p.id == pairing.id) {
            *existing = pairing.clone();
        } else if pairings.len() >= self.capacity {
            return Err(Error::MaxPeers);
        } else {
            pairings.push(pairing.clone());
        }
        Ok(())
    }

    fn remove(&self, id: &PairingId) -> Result<()> {
        self.lock().retain(|p| &p.id != id);
        Ok(())
    }

    fn list(&self) -> Result<Vec<Pairing>> {
        Ok(self.lock().clone())
    }
}

impl AttemptCounter for MemoryStore {
    fn failed_attempts(&self) -> Result<u32> {
        Ok(*self.attempts.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn record_failure(&self) -> Result<u32> {
        let mut n = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_add(1);
        Ok(*n)
    }

    fn reset(&self) -> Result<()> {
        *self.attempts.lock().unwrap_or_else(|e| e.into_inner()) = 0;
        Ok(())
    }
}
