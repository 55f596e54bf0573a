//! Session framing: round trips in any split, and every kind of tampering ends the session.

use ironclad_pair::Error;
use ironclad_pair::session::{MAX_FRAME, Role, Session, SessionKeys};
use proptest::prelude::*;

fn pair(secret: [u8; 32]) -> (Session, Session) {
    (
        Session::new(&SessionKeys::derive(&secret, Role::Controller)),
        Session::new(&SessionKeys::derive(&secret, Role::Accessory)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_in_any_split(
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..5),
        cut in 1usize..2000,
    ) {
        let (mut c, mut a) = pair([3; 32]);
        let mut wire = Vec::new();
        for m in &messages {
            wire.extend(c.encrypt(m).unwrap());
        }
        let mut got = Vec::new();
        for piece in wire.chunks(cut) {
            got.extend(a.decrypt(piece).unwrap());
        }
        prop_assert_eq!(got, messages.concat());
        let (_, reader) = a.split();
        prop_assert!(reader.finish().is_ok());
    }

    #[test]
    fn any_bit_flip_closes_the_session(len in 1usize..2100, bit in any::<prop::sample::Index>()) {
        let (mut c, mut a) = pair([4; 32]);
        let mut wire = c.encrypt(&vec![0x55; len]).unwrap();
        let i = bit.index(wire.len() * 8);
        wire[i / 8] ^= 1 << (i % 8);
        let result = a.decrypt(&wire);
        // Flipping a length byte may leave the frame incomplete (waiting for more) or too long.
        match result {
            Err(Error::FrameAuth { .. } | Error::FrameTooLong(_)) => {
                prop_assert!(matches!(a.decrypt(b""), Err(Error::SessionClosed)));
            }
            Ok(plain) => {
                prop_assert!(plain.len() < len);
                let (_, reader) = a.split();
                prop_assert!(reader.finish().is_err());
            }
            Err(e) => prop_assert!(false, "unexpected {}", e),
        }
    }

    #[test]
    fn decoder_never_panics(garbage in proptest::collection::vec(any::<u8>(), 0..3000), cut in 1usize..500) {
        let (_, mut a) = pair([5; 32]);
        for piece in garbage.chunks(cut) {
            if a.decrypt(piece).is_err() {
                break;
            }
        }
    }
}

#[test]
fn reordered_and_replayed_frames_are_refused() {
    let (mut c, mut a) = pair([6; 32]);
    let f0 = c.encrypt(b"first").unwrap();
    let f1 = c.encrypt(b"second").unwrap();
    assert!(matches!(a.decrypt(&f1), Err(Error::FrameAuth { counter: 0 })));
    let (_, mut a) = pair([6; 32]);
    assert_eq!(a.decrypt(&f0).unwrap(), b"first");
    assert!(matches!(a.decrypt(&f0), Err(Error::FrameAuth { counter: 1 })));
}

#[test]
fn truncated_stream_is_detected() {
    let (mut c, mut a) = pair([7; 32]);
    let wire = c.encrypt(&[1; MAX_FRAME + 10]).unwrap();
    let out = a.decrypt(&wire[..wire.len() - 1]).unwrap();
    assert_eq!(out.len(), MAX_FRAME);
    let (_, reader) = a.split();
    assert!(matches!(reader.finish(), Err(Error::FrameTruncated { pending: 27 })));
}

#[test]
fn frames_carry_length_as_aad() {
    // Two frames whose length fields are swapped fail even though each ciphertext is intact.
    let (mut c, mut a) = pair([8; 32]);
    let mut wire = c.encrypt(&[9; 10]).unwrap();
    wire[0] = 9; // claims 9 bytes: tag position shifts, authentication fails
    assert!(a.decrypt(&wire).is_err());
}
