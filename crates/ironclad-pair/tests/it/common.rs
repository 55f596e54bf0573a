//! Deterministic randomness, identities (the accessory's key in a secure element), and a helper
//! that runs a whole pair-setup in memory.

use std::sync::Arc;

use aws_lc_rs::digest::{SHA512, digest};
use ironclad_pair::setup::{self, SetupCode};
use ironclad_pair::{Identity, MemoryStore, PairingStore, RandomSource, SeLongTermKey, SoftLongTermKey};
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement};

/// SHA-512 in counter mode over a seed: reproducible "random" bytes.
pub(crate) struct TestRng {
    seed: u64,
    counter: u64,
}

impl TestRng {
    pub(crate) fn new(seed: u64) -> Self {
        TestRng { seed, counter: 0 }
    }
}

impl RandomSource for TestRng {
    fn fill(&mut self, out: &mut [u8]) -> ironclad_pair::Result<()> {
        for chunk in out.chunks_mut(64) {
            self.counter += 1;
            let block = digest(&SHA512, &[self.seed.to_le_bytes(), self.counter.to_le_bytes()].concat());
            chunk.copy_from_slice(&block.as_ref()[..chunk.len()]);
        }
        Ok(())
    }
}

pub(crate) const CODE: &str = "031-45-154";
pub(crate) const ACCESSORY_ID: &str = "AA:BB:CC:DD:EE:FF";
pub(crate) const CONTROLLER_ID: &str = "6A0C4B0F-5C31-4F1D-9A38-0E0C1F5E1C11";

/// The accessory's identity with its long-term key generated inside a (memory) secure element.
pub(crate) fn accessory_identity() -> Identity {
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let label = Label::new("hap-ltsk").unwrap();
    se.generate_key(&label, KeyAlgorithm::Ed25519).unwrap();
    let key = SeLongTermKey::new(KeyHandle::open(se, &label).unwrap()).unwrap();
    Identity::new(ACCESSORY_ID.parse().unwrap(), Arc::new(key))
}

pub(crate) fn controller_identity(seed: u8) -> Identity {
    let id = format!("{CONTROLLER_ID}-{seed}");
    Identity::new(id.parse().unwrap(), Arc::new(SoftLongTermKey::from_seed(&[seed; 32]).unwrap()))
}

pub(crate) struct World {
    pub(crate) accessory: Identity,
    pub(crate) controller: Identity,
    pub(crate) acc_store: MemoryStore,
    pub(crate) ctl_store: MemoryStore,
    pub(crate) rng: TestRng,
}

impl World {
    pub(crate) fn new(seed: u64) -> Self {
        World {
            accessory: accessory_identity(),
            controller: controller_identity(1),
            acc_store: MemoryStore::new(),
            ctl_store: MemoryStore::new(),
            rng: TestRng::new(seed),
        }
    }

    pub(crate) fn accessory_m1(&mut self) -> setup::accessory::ExpectM1 {
        let verifier = SetupCode::parse(CODE).unwrap().verifier(&mut self.rng).unwrap();
        setup::accessory::ExpectM1::new(self.accessory.clone(), verifier)
    }

    /// Runs pair-setup to the end with `code` on the controller; both sides store the pairing.
    pub(crate) fn pair_setup(&mut self, code: &str) -> ironclad_pair::Result<()> {
        let acc = self.accessory_m1();
        let c1 = setup::controller::start(self.controller.clone(), SetupCode::parse(code)?);
        let a2 =
            acc.handle(&c1.message, &self.acc_store, &self.acc_store, &mut self.rng).map_err(|r| r.error)?;
        let c3 = match c1.next.handle(&a2.message, &mut self.rng) {
            Err(e) if e.is_restart() => return self.pair_setup(code),
            other => other?,
        };
        let a4 = a2.next.handle(&c3.message, &self.acc_store).map_err(|r| r.error)?;
        let c5 = c3.next.handle(&a4.message)?;
        let a6 = a4.next.handle(&c5.message, &self.acc_store, &self.acc_store).map_err(|r| r.error)?;
        let paired = c5.next.handle(&a6.message)?;
        self.ctl_store.put(&paired.peer)?;
        Ok(())
    }
}
