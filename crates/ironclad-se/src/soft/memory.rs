//! The in-memory secure element: same behaviour as the directory store, nothing persisted.
//! For tests, simulations and short-lived demo devices.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use zeroize::Zeroizing;

use super::key::{self, SoftKey};
use crate::error::{Error, Result};
use crate::traits::{KeyStore, MonotonicCounter, SealedStore};
use crate::types::{Hkdf, KeyAlgorithm, KeyInfo, Label, MAX_OBJECT_LEN, PublicKey, SignInput};

#[derive(Default)]
struct State {
    keys: BTreeMap<Label, Arc<SoftKey>>,
    objects: BTreeMap<Label, Zeroizing<Vec<u8>>>,
    counters: BTreeMap<Label, u64>,
}

/// A secure element that lives in process memory.
#[derive(Default)]
pub struct MemorySe {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemorySe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("MemorySe")
            .field("keys", &state.keys.len())
            .field("objects", &state.objects.len())
            .field("counters", &state.counters.len())
            .finish()
    }
}

impl MemorySe {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated: every mutation
        // is a single insert or remove, so continuing after poisoning is sound.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn key(&self, id: &Label) -> Result<Arc<SoftKey>> {
        self.state().keys.get(id).cloned().ok_or_else(|| Error::KeyNotFound(id.clone()))
    }
}

impl KeyStore for MemorySe {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn generate_key(&self, id: &Label, alg: KeyAlgorithm) -> Result<PublicKey> {
        let key = SoftKey::generate(alg)?;
        let public = key.public_key()?;
        let mut state = self.state();
        if state.keys.contains_key(id) {
            return Err(Error::KeyExists(id.clone()));
        }
        state.keys.insert(id.clone(), Arc::new(key));
        Ok(public)
    }

    fn import_key(&self, id: &Label, alg: KeyAlgorithm, private: &[u8]) -> Result<PublicKey> {
        let key = SoftKey::from_raw(alg, private)?;
        let public = key.public_key()?;
        let mut state = self.state();
        if state.keys.contains_key(id) {
            return Err(Error::KeyExists(id.clone()));
        }
        state.keys.insert(id.clone(), Arc::new(key));
        Ok(public)
    }

    fn key_info(&self, id: &Label) -> Result<KeyInfo> {
        Ok(KeyInfo { id: id.clone(), public: self.key(id)?.public_key()? })
    }

    fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let keys: Vec<_> = self.state().keys.iter().map(|(id, k)| (id.clone(), k.clone())).collect();
        keys.into_iter().map(|(id, k)| Ok(KeyInfo { id, public: k.public_key()? })).collect()
    }

    fn delete_key(&self, id: &Label) -> Result<()> {
        self.state().keys.remove(id).map(drop).ok_or_else(|| Error::KeyNotFound(id.clone()))
    }

    fn sign(&self, id: &Label, input: SignInput<'_>) -> Result<Vec<u8>> {
        self.key(id)?.sign(id, input)
    }

    fn agree_and_derive(&self, id: &Label, peer_public: &[u8], kdf: &Hkdf<'_>, out: &mut [u8]) -> Result<()> {
        self.key(id)?.agree_and_derive(id, peer_public, kdf, out)
    }

    fn derive(&self, id: &Label, kdf: &Hkdf<'_>, out: &mut [u8]) -> Result<()> {
        self.key(id)?.derive(id, kdf, out)
    }

    fn seal(&self, id: &Label, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        self.key(id)?.seal(id, aad, plaintext)
    }

    fn open(&self, id: &Label, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.key(id)?.open(id, aad, sealed)
    }

    fn random(&self, out: &mut [u8]) -> Result<()> {
        key::random(out)
    }
}

impl SealedStore for MemorySe {
    fn put_object(&self, name: &Label, data: &[u8]) -> Result<()> {
        if data.len() > MAX_OBJECT_LEN {
            return Err(Error::ObjectTooLarge { name: name.clone(), len: data.len(), max: MAX_OBJECT_LEN });
        }
        self.state().objects.insert(name.clone(), Zeroizing::new(data.to_vec()));
        Ok(())
    }

    fn get_object(&self, name: &Label) -> Result<Zeroizing<Vec<u8>>> {
        self.state().objects.get(name).cloned().ok_or_else(|| Error::ObjectNotFound(name.clone()))
    }

    fn delete_object(&self, name: &Label) -> Result<()> {
        self.state().objects.remove(name).map(drop).ok_or_else(|| Error::ObjectNotFound(name.clone()))
    }

    fn list_objects(&self) -> Result<Vec<Label>> {
        Ok(self.state().objects.keys().cloned().collect())
    }
}

impl MonotonicCounter for MemorySe {
    fn counter(&self, name: &Label) -> Result<u64> {
        Ok(self.state().counters.get(name).copied().unwrap_or(0))
    }

    fn counter_increment(&self, name: &Label) -> Result<u64> {
        let mut state = self.state();
        let current = state.counters.get(name).copied().unwrap_or(0);
        let next = current.checked_add(1).ok_or_else(|| Error::CounterOverflow(name.clone()))?;
        state.counters.insert(name.clone(), next);
        Ok(next)
    }

    fn counter_advance(&self, name: &Label, value: u64) -> Result<u64> {
        let mut state = self.state();
        let current = state.counters.get(name).copied().unwrap_or(0);
        if value < current {
            return Err(Error::CounterWouldDecrease { name: name.clone(), current, requested: value });
        }
        state.counters.insert(name.clone(), value);
        Ok(value)
    }
}
