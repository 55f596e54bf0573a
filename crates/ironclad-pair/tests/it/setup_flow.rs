//! Pair-setup between our accessory (LTSK in a secure element) and our controller.

use ironclad_pair::setup::{self, SetupCode};
use ironclad_pair::tlv8::{Tlv8, Tlv8Writer, types};
use ironclad_pair::{AttemptCounter, Error, ErrorCode, PairingStore, Permissions, Rejected};

use crate::common::{CODE, World};

fn error_code(reply: &[u8]) -> (u8, ErrorCode) {
    let tlv = Tlv8::decode(reply).unwrap();
    let state = tlv.get_u8(types::STATE).unwrap().unwrap();
    (state, ErrorCode::from_u8(tlv.get_u8(types::ERROR).unwrap().unwrap()))
}

#[test]
fn pair_setup_stores_both_sides() {
    let mut w = World::new(1);
    w.pair_setup(CODE).unwrap();
    let on_acc = w.acc_store.list().unwrap();
    assert_eq!(on_acc.len(), 1);
    assert_eq!(on_acc[0].id, w.controller.id);
    assert_eq!(on_acc[0].public_key, w.controller.key.public_key());
    assert_eq!(on_acc[0].permissions, Permissions::ADMIN);
    let on_ctl = w.ctl_store.list().unwrap();
    assert_eq!(on_ctl[0].id, w.accessory.id);
    assert_eq!(on_ctl[0].public_key, w.accessory.key.public_key());
}

#[test]
fn message_sizes_match_hap_captures() {
    // research/pairing.md §1: M1 6 bytes, M2 409 (B sent as 384 = 255 + 129), M3 457, M4 69.
    let mut w = World::new(2);
    let acc = w.accessory_m1();
    let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse(CODE).unwrap());
    assert_eq!(c1.message, [6, 1, 1, 0, 1, 0]);
    let a2 = acc.handle(&c1.message, &w.acc_store, &w.acc_store, &mut w.rng).unwrap();
    assert_eq!(a2.message.len(), 3 + 18 + 384 + 4);
    let c3 = c1.next.handle(&a2.message, &mut w.rng).unwrap();
    assert_eq!(c3.message.len(), 457);
    let a4 = a2.next.handle(&c3.message, &w.acc_store).unwrap();
    assert_eq!(a4.message.len(), 69);
}

#[test]
fn wrong_code_fails_with_authentication_and_counts() {
    let mut w = World::new(3);
    let acc = w.accessory_m1();
    let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse("031-45-155").unwrap());
    let a2 = acc.handle(&c1.message, &w.acc_store, &w.acc_store, &mut w.rng).unwrap();
    let c3 = c1.next.handle(&a2.message, &mut w.rng).unwrap();
    let Rejected { error, reply } = a2.next.handle(&c3.message, &w.acc_store).unwrap_err();
    assert!(matches!(error, Error::SrpProof), "{error}");
    assert_eq!(error_code(&reply), (4, ErrorCode::Authentication));
    assert_eq!(w.acc_store.failed_attempts().unwrap(), 1);
    assert!(w.acc_store.list().unwrap().is_empty());
    // The controller sees the accessory's refusal as Peer(Authentication).
    let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse(CODE).unwrap());
    let err = match c1.next.handle(&reply, &mut w.rng) {
        Err(e) => e,
        Ok(_) => panic!("error reply accepted"),
    };
    assert!(matches!(err, Error::UnexpectedState { expected: 2, found: 4 }));
    // A correct pairing afterwards resets the counter.
    w.pair_setup(CODE).unwrap();
    assert_eq!(w.acc_store.failed_attempts().unwrap(), 0);
}

#[test]
fn max_tries_after_100_failures() {
    let mut w = World::new(4);
    for _ in 0..100 {
        w.acc_store.record_failure().unwrap();
    }
    let acc = w.accessory_m1();
    let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse(CODE).unwrap());
    let rejected = acc.handle(&c1.message, &w.acc_store, &w.acc_store, &mut w.rng).unwrap_err();
    assert!(matches!(rejected.error, Error::MaxTries { attempts: 100 }));
    assert_eq!(error_code(&rejected.reply), (2, ErrorCode::MaxTries));
    // Even the right code is refused until the counter is reset.
    assert!(matches!(w.pair_setup(CODE), Err(Error::MaxTries { .. })));
    let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse(CODE).unwrap());
    let err = c1.next.handle(&rejected.reply, &mut w.rng).unwrap_err();
    assert!(matches!(err, Error::Peer(ErrorCode::MaxTries)));
}

#[test]
fn hundred_wrong_codes_lock_pair_setup() {
    // Real SRP exchanges, few enough to stay fast: 3 wrong codes through the protocol, the rest
    // through the counter hook, then M1 answers MaxTries.
    let mut w = World::new(5);
    for _ in 0..3 {
        assert!(matches!(w.pair_setup("111-22-333"), Err(Error::SrpProof)));
    }
    assert_eq!(w.acc_store.failed_attempts().unwrap(), 3);
    for _ in 3..99 {
        w.acc_store.record_failure().unwrap();
    }
    assert!(matches!(w.pair_setup("111-22-333"), Err(Error::SrpProof)));
    assert_eq!(w.acc_store.failed_attempts().unwrap(), 100);
    assert!(matches!(w.pair_setup(CODE), Err(Error::MaxTries { attempts: 100 })));
}

#[test]
fn already_paired_is_unavailable() {
    let mut w = World::new(6);
    w.pair_setup(CODE).unwrap();
    let acc = w.accessory_m1();
    let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse(CODE).unwrap());
    let rejected = acc.handle(&c1.message, &w.acc_store, &w.acc_store, &mut w.rng).unwrap_err();
    assert!(matches!(rejected.error, Error::AlreadyPaired));
    assert_eq!(error_code(&rejected.reply), (2, ErrorCode::Unavailable));
    assert_eq!(error_code(&setup::accessory::busy_reply()), (2, ErrorCode::Busy));
}

#[test]
fn tampered_m3_is_refused() {
    let mut w = World::new(7);
    for (pos, what) in [(10usize, "A"), (400, "proof")] {
        let acc = w.accessory_m1();
        let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse(CODE).unwrap());
        let a2 = acc.handle(&c1.message, &w.acc_store, &w.acc_store, &mut w.rng).unwrap();
        let mut m3 = c1.next.handle(&a2.message, &mut w.rng).unwrap().message;
        m3[pos] ^= 0x40;
        let rejected = a2.next.handle(&m3, &w.acc_store).unwrap_err();
        assert!(matches!(rejected.error, Error::SrpProof), "{what}: {}", rejected.error);
        assert_eq!(error_code(&rejected.reply), (4, ErrorCode::Authentication));
    }
}

#[test]
fn tampered_m5_is_refused_and_nothing_is_stored() {
    let mut w = World::new(8);
    let acc = w.accessory_m1();
    let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse(CODE).unwrap());
    let a2 = acc.handle(&c1.message, &w.acc_store, &w.acc_store, &mut w.rng).unwrap();
    let c3 = c1.next.handle(&a2.message, &mut w.rng).unwrap();
    let a4 = a2.next.handle(&c3.message, &w.acc_store).unwrap();
    let c5 = c3.next.handle(&a4.message).unwrap();
    let mut m5 = c5.message.clone();
    let last = m5.len() - 1;
    m5[last] ^= 1;
    let rejected = a4.next.handle(&m5, &w.acc_store, &w.acc_store).unwrap_err();
    assert!(matches!(rejected.error, Error::Decrypt { .. }), "{}", rejected.error);
    assert_eq!(error_code(&rejected.reply), (6, ErrorCode::Authentication));
    assert!(w.acc_store.list().unwrap().is_empty());
}

#[test]
fn m5_signed_by_another_key_is_refused() {
    // A controller whose signature does not match the LTPK it presents.
    struct Liar(ironclad_pair::SoftLongTermKey, [u8; 32]);
    impl std::fmt::Debug for Liar {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Liar")
        }
    }
    impl ironclad_pair::LongTermKey for Liar {
        fn public_key(&self) -> [u8; 32] {
            self.1
        }
        fn sign(&self, m: &[u8]) -> ironclad_pair::Result<[u8; 64]> {
            self.0.sign(m)
        }
    }
    let mut w = World::new(9);
    let liar =
        Liar(ironclad_pair::SoftLongTermKey::from_seed(&[9; 32]).unwrap(), w.controller.key.public_key());
    w.controller.key = std::sync::Arc::new(liar);
    let err = w.pair_setup(CODE).unwrap_err();
    assert!(matches!(err, Error::Signature { step: "pair-setup M5" }), "{err}");
    assert!(w.acc_store.list().unwrap().is_empty());
}

#[test]
fn unsupported_flags_and_methods() {
    let mut w = World::new(10);
    let m1 = Tlv8Writer::new()
        .push_u8(types::STATE, 1)
        .push_u8(types::METHOD, 0)
        .push(types::FLAGS, &16u32.to_le_bytes())
        .finish();
    let rejected = w.accessory_m1().handle(&m1, &w.acc_store, &w.acc_store, &mut w.rng).unwrap_err();
    assert!(matches!(rejected.error, Error::UnsupportedFlags(16)));
    let m1 = Tlv8Writer::new().push_u8(types::STATE, 1).push_u8(types::METHOD, 2).finish();
    let rejected = w.accessory_m1().handle(&m1, &w.acc_store, &w.acc_store, &mut w.rng).unwrap_err();
    assert!(matches!(rejected.error, Error::UnsupportedMethod(2)));
    assert_eq!(error_code(&rejected.reply), (2, ErrorCode::Unknown));
    let rejected = w.accessory_m1().handle(&[6, 1], &w.acc_store, &w.acc_store, &mut w.rng).unwrap_err();
    assert!(matches!(rejected.error, Error::Tlv { offset: 0, .. }));
}

#[test]
fn many_setups_never_fail() {
    // Different seeds exercise leading-zero B (restart) and redraws of a.
    for seed in 100..112 {
        let mut w = World::new(seed);
        w.pair_setup(CODE).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

#[test]
fn controller_restarts_on_leading_zero_b() {
    let mut w = World::new(11);
    let mut b = vec![0u8; 384];
    b[1..].fill(0x5A);
    for b_wire in [&b[..], &b[1..]] {
        let m2 = Tlv8Writer::new()
            .push_u8(types::STATE, 2)
            .push(types::SALT, &[1; 16])
            .push(types::PUBLIC_KEY, b_wire)
            .finish();
        let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse(CODE).unwrap());
        let err = c1.next.handle(&m2, &mut w.rng).unwrap_err();
        assert!(err.is_restart(), "{err}");
    }
}

#[test]
fn pairing_and_counter_persist_in_the_secure_element() {
    use std::sync::Arc;

    use ironclad_pair::SealedPairingStore;
    use ironclad_se::{MemorySe, SecureElement};

    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let mut w = World::new(12);
    let sealed = SealedPairingStore::new(se.clone(), "hap", 16).unwrap();
    // Run the accessory against the sealed store.
    let acc = w.accessory_m1();
    let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse("999-22-333").unwrap());
    let a2 = acc.handle(&c1.message, &sealed, &sealed, &mut w.rng).unwrap();
    let c3 = c1.next.handle(&a2.message, &mut w.rng).unwrap();
    assert!(a2.next.handle(&c3.message, &sealed).is_err());
    let acc = w.accessory_m1();
    let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse(CODE).unwrap());
    let a2 = acc.handle(&c1.message, &sealed, &sealed, &mut w.rng).unwrap();
    let c3 = c1.next.handle(&a2.message, &mut w.rng).unwrap();
    // "Restart": a new store object over the same element sees the failed attempt.
    let reopened = SealedPairingStore::new(se.clone(), "hap", 16).unwrap();
    assert_eq!(reopened.failed_attempts().unwrap(), 1);
    let a4 = a2.next.handle(&c3.message, &reopened).unwrap();
    let c5 = c3.next.handle(&a4.message).unwrap();
    let a6 = a4.next.handle(&c5.message, &reopened, &reopened).unwrap();
    c5.next.handle(&a6.message).unwrap();
    let reopened = SealedPairingStore::new(se, "hap", 16).unwrap();
    assert_eq!(reopened.list().unwrap(), [a6.next.peer]);
    assert_eq!(reopened.failed_attempts().unwrap(), 0);
    assert!(reopened.is_paired().unwrap());
}

#[test]
fn setup_slot_gives_busy_to_a_second_connection() {
    use std::time::{Duration, Instant};

    use ironclad_pair::setup::accessory::{SETUP_TIMEOUT, SetupSlot};

    let t0 = Instant::now();
    let mut slot = SetupSlot::new();
    slot.acquire(1, t0).unwrap();
    assert!(matches!(slot.acquire(2, t0 + Duration::from_secs(1)), Err(Error::Busy)));
    assert_eq!(Error::Busy.wire_code(), ErrorCode::Busy);
    slot.acquire(1, t0 + Duration::from_secs(2)).unwrap(); // the holder restarts
    slot.acquire(2, t0 + Duration::from_secs(2) + SETUP_TIMEOUT).unwrap(); // the holder timed out
    slot.release(1); // not the holder any more: no effect
    assert!(matches!(slot.acquire(3, t0 + Duration::from_secs(40)), Err(Error::Busy)));
    slot.release(2);
    slot.acquire(3, t0 + Duration::from_secs(40)).unwrap();
}
