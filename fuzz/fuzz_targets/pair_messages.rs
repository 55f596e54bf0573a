#![no_main]
// Every accessory entry point that parses a controller's bytes must refuse garbage without
// panicking: pair-setup M1, pair-verify M1, /pairings requests.
use std::sync::{Arc, OnceLock};

use ironclad_pair::srp::{USERNAME, Verifier};
use ironclad_pair::{
    Identity, MemoryStore, Pairing, PairingStore, Permissions, RandomSource, SoftLongTermKey, pairings,
    setup, verify,
};

struct Counter(u8);

impl RandomSource for Counter {
    fn fill(&mut self, out: &mut [u8]) -> ironclad_pair::Result<()> {
        for b in out {
            self.0 = self.0.wrapping_add(97);
            *b = self.0;
        }
        Ok(())
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let key = Arc::new(SoftLongTermKey::from_seed(&[3; 32]).expect("seed"));
    let identity = Identity::new("AA:BB:CC:DD:EE:FF".parse().expect("id"), key);
    let store = MemoryStore::new();
    let mut rng = Counter(0);
    let _ = verify::accessory::ExpectM1::new(identity.clone()).handle(data, &mut rng);
    let admin =
        Pairing { id: "admin".parse().expect("id"), public_key: [5; 32], permissions: Permissions::ADMIN };
    store.put(&admin).expect("memory store");
    let _ = pairings::handle_request(data, &admin.id, &store);
    // Pair-setup M1 on an unpaired accessory runs SRP (slow): only for inputs that decode.
    let empty = MemoryStore::new();
    if ironclad_pair::tlv8::Tlv8::decode(data).is_ok() && data.len() < 64 {
        static VERIFIER: OnceLock<Verifier> = OnceLock::new();
        let verifier = VERIFIER.get_or_init(|| Verifier::new(USERNAME, b"031-45-154", [1; 16])).clone();
        let _ = setup::accessory::ExpectM1::new(identity, verifier).handle(data, &empty, &empty, &mut rng);
    }
});
