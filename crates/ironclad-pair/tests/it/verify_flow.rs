//! Pair-verify and the session that follows, between our accessory and our controller.

use ironclad_pair::tlv8::{Tlv8, types};
use ironclad_pair::verify::{self, Verified};
use ironclad_pair::{Error, ErrorCode, MemoryStore, PairingStore, Result};

use crate::common::{CODE, World, controller_identity};

fn run_verify(w: &mut World) -> Result<(Verified, Verified)> {
    let c1 = verify::controller::start(w.controller.clone(), &mut w.rng)?;
    let a2 = verify::accessory::ExpectM1::new(w.accessory.clone())
        .handle(&c1.message, &mut w.rng)
        .map_err(|r| r.error)?;
    let c3 = c1.next.handle(&a2.message, &w.ctl_store)?;
    let a4 = a2.next.handle(&c3.message, &w.acc_store).map_err(|r| r.error)?;
    let verified_controller = c3.next.handle(&a4.message)?;
    Ok((verified_controller, a4.next))
}

#[test]
fn full_setup_verify_and_session_round_trip() {
    let mut w = World::new(20);
    w.pair_setup(CODE).unwrap();
    let (ctl, acc) = run_verify(&mut w).unwrap();
    assert_eq!(ctl.peer.id, w.accessory.id);
    assert_eq!(acc.peer.id, w.controller.id);
    let mut phone = ctl.into_session();
    let mut device = acc.into_session();
    let request = b"GET /characteristics?id=1.9 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    assert_eq!(device.decrypt(&phone.encrypt(&request).unwrap()).unwrap(), request);
    let response = vec![b'x'; 64 * 1024];
    let wire = device.encrypt(&response).unwrap();
    // Delivered in awkward pieces.
    let mut got = Vec::new();
    for piece in wire.chunks(333) {
        got.extend(phone.decrypt(piece).unwrap());
    }
    assert_eq!(got, response);
    // A second verify gives different keys.
    let (ctl2, _) = run_verify(&mut w).unwrap();
    let mut phone2 = ctl2.into_session();
    assert!(device.decrypt(&phone2.encrypt(b"hi").unwrap()).is_err());
}

#[test]
fn verify_message_sizes_match_hap_captures() {
    // research/pairing.md §3: M1 37 bytes, M2 140 (17-byte accessory id), M4 3.
    let mut w = World::new(21);
    w.pair_setup(CODE).unwrap();
    let c1 = verify::controller::start(w.controller.clone(), &mut w.rng).unwrap();
    assert_eq!(c1.message.len(), 37);
    let a2 = verify::accessory::ExpectM1::new(w.accessory.clone()).handle(&c1.message, &mut w.rng).unwrap();
    assert_eq!(a2.message.len(), 140);
    let c3 = c1.next.handle(&a2.message, &w.ctl_store).unwrap();
    let a4 = a2.next.handle(&c3.message, &w.acc_store).unwrap();
    assert_eq!(a4.message, [6, 1, 4]);
}

#[test]
fn unknown_controller_gets_authentication() {
    let mut w = World::new(22);
    w.pair_setup(CODE).unwrap();
    // A controller that never paired (but somehow knows the accessory's key).
    w.controller = controller_identity(7);
    let c1 = verify::controller::start(w.controller.clone(), &mut w.rng).unwrap();
    let a2 = verify::accessory::ExpectM1::new(w.accessory.clone()).handle(&c1.message, &mut w.rng).unwrap();
    let c3 = c1.next.handle(&a2.message, &w.ctl_store).unwrap();
    let rejected = a2.next.handle(&c3.message, &w.acc_store).unwrap_err();
    assert!(matches!(rejected.error, Error::UnknownPeer(_)), "{}", rejected.error);
    let tlv = Tlv8::decode(&rejected.reply).unwrap();
    assert_eq!(tlv.get_u8(types::STATE).unwrap(), Some(4));
    assert_eq!(tlv.get_u8(types::ERROR).unwrap(), Some(2));
}

#[test]
fn wrong_long_term_key_is_refused_both_ways() {
    let mut w = World::new(23);
    w.pair_setup(CODE).unwrap();
    // The controller's record of the accessory carries another key.
    let mut record = w.ctl_store.list().unwrap().remove(0);
    record.public_key = controller_identity(9).key.public_key();
    let bad_ctl_store = MemoryStore::new();
    bad_ctl_store.put(&record).unwrap();
    let c1 = verify::controller::start(w.controller.clone(), &mut w.rng).unwrap();
    let a2 = verify::accessory::ExpectM1::new(w.accessory.clone()).handle(&c1.message, &mut w.rng).unwrap();
    let err = c1.next.handle(&a2.message, &bad_ctl_store).unwrap_err();
    assert!(matches!(err, Error::Signature { step: "pair-verify M2" }), "{err}");
    // The accessory's record of the controller carries another key.
    let mut record = w.acc_store.list().unwrap().remove(0);
    record.public_key = controller_identity(9).key.public_key();
    w.acc_store.put(&record).unwrap();
    let err = run_verify(&mut w).unwrap_err();
    assert!(matches!(err, Error::Signature { step: "pair-verify M3" }), "{err}");
}

#[test]
fn tampered_verify_messages_are_refused() {
    let mut w = World::new(24);
    w.pair_setup(CODE).unwrap();
    let c1 = verify::controller::start(w.controller.clone(), &mut w.rng).unwrap();
    let a2 = verify::accessory::ExpectM1::new(w.accessory.clone()).handle(&c1.message, &mut w.rng).unwrap();
    let mut m2 = a2.message.clone();
    let n = m2.len();
    m2[n - 3] ^= 1;
    assert!(matches!(c1.next.handle(&m2, &w.ctl_store), Err(Error::Decrypt { .. })));

    let c1 = verify::controller::start(w.controller.clone(), &mut w.rng).unwrap();
    let a2 = verify::accessory::ExpectM1::new(w.accessory.clone()).handle(&c1.message, &mut w.rng).unwrap();
    let mut m3 = c1.next.handle(&a2.message, &w.ctl_store).unwrap().message;
    m3[10] ^= 1;
    let rejected = a2.next.handle(&m3, &w.acc_store).unwrap_err();
    assert!(matches!(rejected.error, Error::Decrypt { .. }));
    assert_eq!(rejected.error.wire_code(), ErrorCode::Authentication);
    // A low-order X25519 point from the controller.
    let m1 = [6, 1, 1, 3, 32].iter().copied().chain([0u8; 32]).collect::<Vec<_>>();
    let rejected = verify::accessory::ExpectM1::new(w.accessory.clone()).handle(&m1, &mut w.rng).unwrap_err();
    assert!(matches!(rejected.error, Error::BadPublicKey { .. }), "{}", rejected.error);
}
