//! Property tests: parsing never panics; sign → verify and encrypt → decrypt round trips.

use std::io::Cursor;
use std::sync::OnceLock;

use ironclad_image::hazmat::{SoftwareAgreementKey, SoftwareSigner};
use ironclad_image::*;
use ironclad_se::KeyAlgorithm;
use proptest::prelude::*;

use crate::common::*;

struct Keys {
    ed: SoftwareSigner,
    ec: SoftwareSigner,
    x: SoftwareAgreementKey,
    p: SoftwareAgreementKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        ed: SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap(),
        ec: SoftwareSigner::generate(KeyAlgorithm::EcdsaP256).unwrap(),
        x: SoftwareAgreementKey::generate(KeyAlgorithm::X25519).unwrap(),
        p: SoftwareAgreementKey::generate(KeyAlgorithm::EcdhP256).unwrap(),
    })
}

fn sample_image() -> &'static Vec<u8> {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut o = SignOptions::new("1.2.3+4".parse().unwrap());
        o.security_counter = Some(5);
        o.product_class = Some([7; 16]);
        o.encryption = Some(Encryption {
            recipient: keys().x.public_key().clone(),
            content_key: ContentKey::generate(Cipher::Aes128Ctr).unwrap(),
        });
        o.slot = Some(SlotLayout::new(0x1000));
        o.pad = Some(Pad::Confirm);
        sign_bytes(&keys().ed, &o, &payload(200))
    })
}

/// Parse, inspect and verify whatever the bytes are; only errors, never panics.
fn exercise(bytes: &[u8]) {
    let trust = TrustAnchors::with_key(keys().ed.public_key().clone()).unwrap();
    let mut src = Cursor::new(bytes);
    if let Ok(image) = Image::read(&mut src, &Limits::for_slot(0x10000)) {
        let _ = serde_json::to_string(&image.inspect()).unwrap();
        let _ = image.clone().decrypt_verify(&mut src, &trust, &keys().x);
        let _ = image.verify(&mut src, &trust);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        exercise(&bytes);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes_behind_a_valid_magic(
        mut bytes in proptest::collection::vec(any::<u8>(), 32..1024),
        hdr_size in 32u16..96,
        img_size in 0u32..512,
        prot in prop_oneof![Just(0u16), 4u16..64],
    ) {
        bytes[0..4].copy_from_slice(&IMAGE_MAGIC.to_le_bytes());
        bytes[8..10].copy_from_slice(&hdr_size.to_le_bytes());
        bytes[10..12].copy_from_slice(&prot.to_le_bytes());
        bytes[12..16].copy_from_slice(&img_size.to_le_bytes());
        bytes[16..20].copy_from_slice(&0u32.to_le_bytes());
        exercise(&bytes);
    }

    #[test]
    fn parse_never_panics_on_mutated_images(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = sample_image().clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        exercise(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn sign_verify_round_trip(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        version in (any::<u8>(), any::<u8>(), any::<u16>(), any::<u32>()),
        counter in proptest::option::of(any::<u32>()),
        class in proptest::option::of(any::<[u8; 16]>()),
        hdr in prop_oneof![Just(0x20u16), Just(0x40), Just(0x200)],
        ecdsa in any::<bool>(),
        full_key in any::<bool>(),
    ) {
        let signer = if ecdsa { &keys().ec } else { &keys().ed };
        let mut o = SignOptions::new(Version::new(version.0, version.1, version.2, version.3));
        o.header_size = hdr;
        o.security_counter = counter;
        o.product_class = class;
        o.key_id = if full_key { KeyIdFormat::Full } else { KeyIdFormat::Hash };
        let image = sign_bytes(signer, &o, &data);
        let trust = TrustAnchors::with_key(signer.public_key().clone()).unwrap();
        let verified = verify_bytes(&image, &trust).unwrap();
        prop_assert_eq!(verified.version(), o.version);
        prop_assert_eq!(verified.security_counter(), counter);
        prop_assert_eq!(verified.product_class(), class);
        prop_assert_eq!(payload_of(&verified, &image), data);
    }

    #[test]
    fn encrypt_decrypt_identity(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        aes256 in any::<bool>(),
        p256 in any::<bool>(),
        hdr in prop_oneof![Just(0x20u16), Just(0x200)],
    ) {
        let recipient = if p256 { &keys().p } else { &keys().x };
        let cipher = if aes256 { Cipher::Aes256Ctr } else { Cipher::Aes128Ctr };
        let mut o = SignOptions::new(Version::new(1, 0, 0, 0));
        o.header_size = hdr;
        o.encryption = Some(Encryption {
            recipient: recipient.public_key().clone(),
            content_key: ContentKey::generate(cipher).unwrap(),
        });
        let image = sign_bytes(&keys().ed, &o, &data);
        let trust = TrustAnchors::with_key(keys().ed.public_key().clone()).unwrap();
        let verified = decrypt_verify_bytes(&image, &trust, recipient).unwrap();
        let plain = payload_of(&verified, &image);
        prop_assert_eq!(plain.len() % 16, 0);
        prop_assert_eq!(&plain[..data.len()], &data[..]);
        prop_assert!(plain[data.len()..].iter().all(|&b| b == 0));
        if data.len() >= 16 {
            // The stored payload is not the plaintext.
            let stored = &image[hdr as usize..hdr as usize + data.len()];
            prop_assert_ne!(stored, &data[..]);
        }
    }
}
