//! [`PairingStore`] and [`AttemptCounter`] over an ironclad secure element's sealed store: the
//! pairings and the failed-attempt count live encrypted inside the element, each written
//! atomically and durably (the backend's `put_object`) before the protocol step returns.

use std::sync::{Arc, Mutex, MutexGuard};

use ironclad_se::{Label, SecureElement};

use crate::crypto::PUBLIC_KEY_LEN;
use crate::error::{Error, Result};
use crate::store::{AttemptCounter, Pairing, PairingId, PairingStore, Permissions};
use crate::tlv8::{Tlv8, Tlv8Writer, types};

/// Pairings in one sealed object (`<prefix>.pairings`, a TLV8 list, replaced atomically on each
/// change so "remove every pairing" is all-or-nothing) and the attempt count in another
/// (`<prefix>.attempts`, u32 LE).
#[derive(Debug)]
pub struct SealedPairingStore {
    se: Arc<dyn SecureElement>,
    pairings: Label,
    attempts: Label,
    capacity: usize,
    lock: Mutex<()>,
}

impl SealedPairingStore {
    /// `prefix` names the objects (e.g. `"hap"`); at most `capacity` pairings (HAP: ≥ 16).
    pub fn new(se: Arc<dyn SecureElement>, prefix: &str, capacity: usize) -> Result<Self> {
        let label = |suffix: &str| Label::new(format!("{prefix}.{suffix}")).map_err(Error::from);
        Ok(SealedPairingStore {
            pairings: label("pairings")?,
            attempts: label("attempts")?,
            se,
            capacity,
            lock: Mutex::new(()),
        })
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_object(&self, name: &Label) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        match self.se.get_object(name) {
            Ok(data) => Ok(Some(data)),
            Err(ironclad_se::Error::ObjectNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn load(&self) -> Result<Vec<Pairing>> {
        let Some(data) = self.read_object(&self.pairings)? else {
            return Ok(Vec::new());
        };
        Tlv8::decode(&data)?.groups().iter().map(decode_pairing).collect()
    }

    fn save(&self, pairings: &[Pairing]) -> Result<()> {
        let mut w = Tlv8Writer::new();
        for (i, p) in pairings.iter().enumerate() {
            if i > 0 {
                w.separator();
            }
            w.push(types::IDENTIFIER, p.id.as_bytes())
                .push(types::PUBLIC_KEY, &p.public_key)
                .push_u8(types::PERMISSIONS, p.permissions.0);
        }
        Ok(self.se.put_object(&self.pairings, &w.finish())?)
    }

    fn read_attempts(&self) -> Result<u32> {
        match self.read_object(&self.attempts)? {
            None => Ok(0),
            Some(data) => {
                let bytes: [u8; 4] =
                    data.as_slice().try_into().map_err(|_| Error::store("corrupt attempt counter object"))?;
                Ok(u32::from_le_bytes(bytes))
            }
        }
    }

    fn write_attempts(&self, n: u32) -> Result<()> {
        Ok(self.se.put_object(&self.attempts, &n.to_le_bytes())?)
    }
}

fn decode_pairing(tlv: &Tlv8) -> Result<Pairing> {
    let id = PairingId::new(tlv.require(types::IDENTIFIER)?)?;
    let public_key: [u8; PUBLIC_KEY_LEN] =
        tlv.require_len(types::PUBLIC_KEY, PUBLIC_KEY_LEN)?.try_into().expect("checked length");
    let permissions = Permissions(tlv.get_u8(types::PERMISSIONS)?.unwrap_or(0));
    Ok(Pairing { id, public_key, permissions })
}

impl PairingStore for SealedPairingStore {
    fn get(&self, id: &PairingId) -> Result<Option<Pairing>> {
        let _g = self.guard();
        Ok(self.load()?.into_iter().find(|p| &p.id == id))
    }

    fn put(&self, pairing: &Pairing) -> Result<()> {
        let _g = self.guard();
        let mut all = self.load()?;
        if let Some(existing) = all.iter_mut().find(|p| p.id == pairing.id) {
            *existing = pairing.clone();
        } else if all.len() >= self.capacity {
            return Err(Error::MaxPeers);
        } else {
            all.push(pairing.clone());
        }
        self.save(&all)
    }

    fn remove(&self, id: &PairingId) -> Result<()> {
        let _g = self.guard();
        let mut all = self.load()?;
        let before = all.len();
        all.retain(|p| &p.id != id);
        if all.len() != before { self.save(&all) } else { Ok(()) }
    }

    fn list(&self) -> Result<Vec<Pairing>> {
        let _g = self.guard();
        self.load()
    }
}

impl AttemptCounter for SealedPairingStore {
    fn failed_attempts(&self) -> Result<u32> {
        let _g = self.guard();
        self.read_attempts()
    }

    fn record_failure(&self) -> Result<u32> {
        let _g = self.guard();
        let n = self.read_attempts()?.saturating_add(1);
        self.write_attempts(n)?;
        Ok(n)
    }

    fn reset(&self) -> Result<()> {
        let _g = self.guard();
        self.write_attempts(0)
    }
}
