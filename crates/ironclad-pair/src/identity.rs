//! Who we are in a pairing, and what a protocol step returns.

use std::fmt;
use std::sync::Arc;

use crate::crypto::LongTermKey;
use crate::store::PairingId;

/// Our side of a pairing: the pairing identifier and the long-term Ed25519 key. An accessory's
/// identifier is its Device ID (`"AA:BB:CC:DD:EE:FF"`), a controller's usually a UUID string; the
/// same bytes must appear in pair-setup M6, pair-verify M2 and the mDNS `id`.
#[derive(Clone)]
pub struct Identity {
    pub id: PairingId,
    pub key: Arc<dyn LongTermKey>,
}

impl Identity {
    pub fn new(id: PairingId, key: Arc<dyn LongTermKey>) -> Self {
        Identity { id, key }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("id", &self.id).field("key", &self.key).finish()
    }
}

/// A step succeeded: send `message` to the peer, then continue with `next`.
#[derive(Debug)]
pub struct Reply<Next> {
    pub message: Vec<u8>,
    pub next: Next,
}
