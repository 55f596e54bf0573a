//! TLV8: round trip and never-panic properties, and real captures (research/pairing.md §1).

use ironclad_pair::tlv8::{self, Item, Tlv8, Tlv8Writer, types};
use proptest::prelude::*;

fn items() -> impl Strategy<Value = Vec<Item>> {
    let item = (
        any::<u8>(),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..20),
            proptest::collection::vec(any::<u8>(), 250..800),
            (1usize..4).prop_map(|k| vec![0xAB; 255 * k]),
        ],
    )
        .prop_map(|(ty, value)| Item::new(ty, value));
    // Adjacent items of one type are one value in TLV8: keep types distinct from their neighbour.
    proptest::collection::vec(item, 0..8).prop_map(|mut v| {
        v.dedup_by(|b, a| a.ty == b.ty);
        v
    })
}

proptest! {
    #[test]
    fn round_trip(items in items()) {
        let bytes = tlv8::encode(&items);
        prop_assert_eq!(Tlv8::decode(&bytes).unwrap().into_items(), items);
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        if let Ok(tlv) = Tlv8::decode(&bytes) {
            // Re-encoding what decoded gives a canonical form that decodes to the same items.
            let again = tlv8::encode(tlv.items());
            let back = Tlv8::decode(&again);
            if let Ok(back) = back {
                prop_assert_eq!(back.items(), tlv.items());
            }
            for ty in [types::STATE, types::PUBLIC_KEY, types::FLAGS] {
                let _ = tlv.get(ty);
                let _ = tlv.get_u32(ty);
            }
            let _ = tlv.groups();
        }
    }

    #[test]
    fn truncation_is_an_error_not_a_panic(items in items(), cut in any::<prop::sample::Index>()) {
        let bytes = tlv8::encode(&items);
        if !bytes.is_empty() {
            let _ = Tlv8::decode(&bytes[..cut.index(bytes.len())]);
        }
    }
}

#[test]
fn real_m1_capture() {
    // hap-python / aiohomekit pair-setup M1 as captured by pairing-kit/interop/tap.py.
    let tlv = Tlv8::decode(&[0x06, 0x01, 0x01, 0x00, 0x01, 0x00]).unwrap();
    assert_eq!(tlv.get_u8(types::STATE).unwrap(), Some(1));
    assert_eq!(tlv.get_u8(types::METHOD).unwrap(), Some(0));
}

#[test]
fn real_m2_shape_384_byte_key() {
    // M2: State, Salt (16), PublicKey (384 = 255 + 129): 409 bytes.
    let bytes = Tlv8Writer::new()
        .push_u8(types::STATE, 2)
        .push(types::SALT, &[0x11; 16])
        .push(types::PUBLIC_KEY, &[0x22; 384])
        .finish();
    assert_eq!(bytes.len(), 409);
    assert_eq!(&bytes[21..23], &[0x03, 0xFF]);
    assert_eq!(&bytes[278..280], &[0x03, 129]);
    assert_eq!(Tlv8::decode(&bytes).unwrap().require(types::PUBLIC_KEY).unwrap().len(), 384);
}

#[test]
fn exact_multiple_of_255_is_not_inflated() {
    // hap-python's encoder turns a 510-byte value into 1026 bytes; ours gives 2 fragments.
    let bytes = Tlv8Writer::new().push(types::CERTIFICATE, &[7; 510]).finish();
    assert_eq!(bytes.len(), 514);
    assert_eq!(Tlv8::decode(&bytes).unwrap().require(types::CERTIFICATE).unwrap(), &[7; 510][..]);
}
