//! The secure-element test suite, written once and run against every backend.
//!
//! A backend crate instantiates it with a constructor expression that yields a fresh, empty
//! `Arc<dyn SecureElement>`:
//!
//! ```ignore
//! ironclad_se::se_conformance_tests!(Arc::new(MemorySe::new()));
//! ```
#![allow(clippy::unwrap_used, missing_docs)]

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ED25519, UnparsedPublicKey};

use crate::{Error, Hkdf, KeyAlgorithm, KeyHandle, Label, MAX_OBJECT_LEN, SecureElement, SignInput};
use rcgen::PublicKeyData;
use std::sync::Arc;

fn label(s: &str) -> Label {
    Label::new(s).unwrap()
}

/// Instantiates every conformance test as a `#[test]` for the backend built by `$make`.
#[macro_export]
macro_rules! se_conformance_tests {
    ($make:expr) => {
        $crate::se_conformance_tests!(@tests $make;
            generates_and_lists_every_algorithm,
            refuses_duplicate_and_missing_keys,
            ecdsa_signatures_verify,
            ed25519_signatures_verify,
            key_usage_is_enforced,
            ecdh_agrees_on_both_curves,
            ecdh_refuses_bad_peer_keys,
            hkdf_is_stable_and_context_separated,
            seal_open_round_trip_and_tamper,
            random_bytes_differ,
            sealed_objects_store_replace_delete,
            sealed_objects_have_a_size_limit,
            counters_only_move_forward,
            key_handle_signs_a_csr_through_rcgen,
            deleted_keys_are_gone,
            debug_output_has_no_secrets,
            imported_keys_match_known_answers,
        );
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                let se: ::std::sync::Arc<dyn $crate::SecureElement> = $make;
                $crate::conformance::$name(se);
            }
        )+
    };
}

pub fn generates_and_lists_every_algorithm(se: Arc<dyn SecureElement>) {
    for alg in KeyAlgorithm::ALL {
        let id = label(alg.name());
        let public = se.generate_key(&id, alg).unwrap();
        assert_eq!(public.algorithm(), alg);
        let expected_len = match alg {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdhP256 => 65,
            KeyAlgorithm::Ed25519 | KeyAlgorithm::X25519 => 32,
            _ => 0,
        };
        assert_eq!(public.as_bytes().len(), expected_len, "{alg}");
        assert_eq!(se.key_info(&id).unwrap().public, public);
    }
    let listed: Vec<_> = se.list_keys().unwrap().into_iter().map(|k| k.id).collect();
    let mut expected: Vec<_> = KeyAlgorithm::ALL.iter().map(|a| label(a.name())).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

pub fn refuses_duplicate_and_missing_keys(se: Arc<dyn SecureElement>) {
    let id = label("k");
    let first = se.generate_key(&id, KeyAlgorithm::EcdsaP256).unwrap();
    assert!(matches!(se.generate_key(&id, KeyAlgorithm::Ed25519), Err(Error::KeyExists(_))));
    assert_eq!(se.key_info(&id).unwrap().public, first, "a refused generate must not replace the key");
    assert!(matches!(se.key_info(&label("missing")), Err(Error::KeyNotFound(_))));
    assert!(matches!(se.sign(&label("missing"), SignInput::Message(b"x")), Err(Error::KeyNotFound(_))));
}

pub fn ecdsa_signatures_verify(se: Arc<dyn SecureElement>) {
    let id = label("ecdsa");
    let public = se.generate_key(&id, KeyAlgorithm::EcdsaP256).unwrap();
    let verifier = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public.as_bytes());
    let sig = se.sign(&id, SignInput::Message(b"hello")).unwrap();
    verifier.verify(b"hello", &sig).unwrap();
    assert!(verifier.verify(b"hellO", &sig).is_err(), "signature must bind the message");
    let digest: [u8; 32] =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"hello").as_ref().try_into().unwrap();
    let sig = se.sign(&id, SignInput::Sha256Digest(&digest)).unwrap();
    verifier.verify(b"hello", &sig).unwrap();
}

pub fn ed25519_signatures_verify(se: Arc<dyn SecureElement>) {
    let id = label("ed");
    let public = se.generate_key(&id, KeyAlgorithm::Ed25519).unwrap();
    let sig = se.sign(&id, SignInput::Message(b"hello")).unwrap();
    assert_eq!(sig.len(), 64);
    let verifier = UnparsedPublicKey::new(&ED25519, public.as_bytes());
    verifier.verify(b"hello", &sig).unwrap();
    assert!(verifier.verify(b"hello!", &sig).is_err());
    assert!(matches!(se.sign(&id, SignInput::Sha256Digest(&[0; 32])), Err(Error::WrongKeyType { .. })));
}

pub fn key_usage_is_enforced(se: Arc<dyn SecureElement>) {
    let kdf = Hkdf { salt: b"", info: b"" };
    let mut out = [0u8; 32];
    for alg in KeyAlgorithm::ALL {
        let id = label(alg.name());
        se.generate_key(&id, alg).unwrap();
        let signs = se.sign(&id, SignInput::Message(b"m")).is_ok();
        assert_eq!(signs, alg.can_sign(), "{alg} sign");
        let peer = vec![4u8; 65];
        let agree = se.agree_and_derive(&id, &peer, &kdf, &mut out);
        assert!(!matches!(agree, Err(Error::WrongKeyType { .. })) == alg.can_agree(), "{alg} agree");
        let derives = se.derive(&id, &kdf, &mut out).is_ok();
        assert_eq!(derives, alg == KeyAlgorithm::Secret256, "{alg} derive");
        let seals = se.seal(&id, b"", b"x").is_ok();
        assert_eq!(seals, alg == KeyAlgorithm::Secret256, "{alg} seal");
    }
}

pub fn ecdh_agrees_on_both_curves(se: Arc<dyn SecureElement>) {
    for alg in [KeyAlgorithm::X25519, KeyAlgorithm::EcdhP256] {
        let (a, b) = (label(&format!("{alg}-a")), label(&format!("{alg}-b")));
        let pa = se.generate_key(&a, alg).unwrap();
        let pb = se.generate_key(&b, alg).unwrap();
        let kdf = Hkdf { salt: b"salt", info: b"info" };
        let (mut ka, mut kb) = ([0u8; 48], [0u8; 48]);
        se.agree_and_derive(&a, pb.as_bytes(), &kdf, &mut ka).unwrap();
        se.agree_and_derive(&b, pa.as_bytes(), &kdf, &mut kb).unwrap();
        assert_eq!(ka, kb, "{alg}: both sides must derive the same key");
        let mut other = [0u8; 48];
        se.agree_and_derive(&a, pb.as_bytes(), &Hkdf { salt: b"salt", info: b"other" }, &mut other).unwrap();
        assert_ne!(ka, other, "{alg}: info must separate derived keys");
    }
}

pub fn ecdh_refuses_bad_peer_keys(se: Arc<dyn SecureElement>) {
    let kdf = Hkdf { salt: b"", info: b"" };
    let mut out = [0u8; 32];
    let p256 = label("p256");
    se.generate_key(&p256, KeyAlgorithm::EcdhP256).unwrap();
    let mut off_curve = vec![4u8];
    off_curve.extend_from_slice(&[1u8; 64]);
    assert!(matches!(se.agree_and_derive(&p256, &off_curve, &kdf, &mut out), Err(Error::BadPeerKey { .. })));
    assert!(matches!(se.agree_and_derive(&p256, &[4u8; 3], &kdf, &mut out), Err(Error::BadPeerKey { .. })));
    let x = label("x");
    se.generate_key(&x, KeyAlgorithm::X25519).unwrap();
    assert!(matches!(se.agree_and_derive(&x, &[9u8; 31], &kdf, &mut out), Err(Error::BadPeerKey { .. })));
}

pub fn hkdf_is_stable_and_context_separated(se: Arc<dyn SecureElement>) {
    let id = label("master");
    se.generate_key(&id, KeyAlgorithm::Secret256).unwrap();
    let (mut a, mut b, mut c) = ([0u8; 32], [0u8; 32], [0u8; 32]);
    se.derive(&id, &Hkdf { salt: b"s", info: b"device-1" }, &mut a).unwrap();
    se.derive(&id, &Hkdf { salt: b"s", info: b"device-1" }, &mut b).unwrap();
    se.derive(&id, &Hkdf { salt: b"s", info: b"device-2" }, &mut c).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, [0u8; 32]);
}

pub fn seal_open_round_trip_and_tamper(se: Arc<dyn SecureElement>) {
    let id = label("wrap");
    se.generate_key(&id, KeyAlgorithm::Secret256).unwrap();
    let sealed = se.seal(&id, b"ctx", b"content key").unwrap();
    assert!(!sealed.windows(11).any(|w| w == b"content key"), "sealed output holds the plaintext");
    assert_eq!(se.open(&id, b"ctx", &sealed).unwrap().as_slice(), b"content key");
    assert!(matches!(se.open(&id, b"other", &sealed), Err(Error::OpenFailed)));
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        assert!(matches!(se.open(&id, b"ctx", &bad), Err(Error::OpenFailed)), "flip at {i} accepted");
    }
    assert!(matches!(se.open(&id, b"ctx", &sealed[..sealed.len() - 1]), Err(Error::OpenFailed)));
    let other = label("other");
    se.generate_key(&other, KeyAlgorithm::Secret256).unwrap();
    assert!(matches!(se.open(&other, b"ctx", &sealed), Err(Error::OpenFailed)));
}

pub fn random_bytes_differ(se: Arc<dyn SecureElement>) {
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    se.random(&mut a).unwrap();
    se.random(&mut b).unwrap();
    assert_ne!(a, b);
    assert_ne!(a, [0u8; 32]);
}

pub fn sealed_objects_store_replace_delete(se: Arc<dyn SecureElement>) {
    let cert = label("device-cert");
    assert!(matches!(se.get_object(&cert), Err(Error::ObjectNotFound(_))));
    se.put_object(&cert, b"first").unwrap();
    assert_eq!(se.get_object(&cert).unwrap().as_slice(), b"first");
    se.put_object(&cert, b"second").unwrap();
    assert_eq!(se.get_object(&cert).unwrap().as_slice(), b"second");
    se.put_object(&label("empty"), b"").unwrap();
    assert_eq!(se.get_object(&label("empty")).unwrap().len(), 0);
    assert_eq!(se.list_objects().unwrap(), vec![cert.clone(), label("empty")]);
    se.delete_object(&cert).unwrap();
    assert!(matches!(se.get_object(&cert), Err(Error::ObjectNotFound(_))));
    assert!(matches!(se.delete_object(&cert), Err(Error::ObjectNotFound(_))));
}

pub fn sealed_objects_have_a_size_limit(se: Arc<dyn SecureElement>) {
    let name = label("big");
    se.put_object(&name, &vec![7u8; MAX_OBJECT_LEN]).unwrap();
    assert!(matches!(
        se.put_object(&name, &vec![7u8; MAX_OBJECT_LEN + 1]),
        Err(Error::ObjectTooLarge { .. })
    ));
    assert_eq!(se.get_object(&name).unwrap().len(), MAX_OBJECT_LEN, "refused put must not change the object");
}

pub fn counters_only_move_forward(se: Arc<dyn SecureElement>) {
    let c = label("security-counter");
    assert_eq!(se.counter(&c).unwrap(), 0);
    assert_eq!(se.counter_increment(&c).unwrap(), 1);
    assert_eq!(se.counter_increment(&c).unwrap(), 2);
    assert_eq!(se.counter_advance(&c, 7).unwrap(), 7);
    assert_eq!(se.counter_advance(&c, 7).unwrap(), 7);
    assert!(matches!(
        se.counter_advance(&c, 6),
        Err(Error::CounterWouldDecrease { current: 7, requested: 6, .. })
    ));
    assert_eq!(se.counter(&c).unwrap(), 7);
    assert_eq!(se.counter(&label("other")).unwrap(), 0, "counters are independent");
    se.counter_advance(&c, u64::MAX).unwrap();
    assert!(matches!(se.counter_increment(&c), Err(Error::CounterOverflow(_))));
}

pub fn key_handle_signs_a_csr_through_rcgen(se: Arc<dyn SecureElement>) {
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
        let id = label(&format!("csr-{alg}"));
        se.generate_key(&id, alg).unwrap();
        let handle = KeyHandle::open(se.clone(), &id).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "dev-1");
        let csr = params.serialize_request(&handle).unwrap();
        // from_der verifies the CSR's self-signature.
        let parsed = rcgen::CertificateSigningRequestParams::from_der(csr.der()).unwrap();
        assert_eq!(parsed.public_key.der_bytes(), handle.public_key().as_bytes());
    }
    let x = label("x25519");
    se.generate_key(&x, KeyAlgorithm::X25519).unwrap();
    assert!(matches!(KeyHandle::open(se, &x), Err(Error::WrongKeyType { .. })));
}

pub fn deleted_keys_are_gone(se: Arc<dyn SecureElement>) {
    let id = label("temp");
    se.generate_key(&id, KeyAlgorithm::Ed25519).unwrap();
    se.delete_key(&id).unwrap();
    assert!(matches!(se.sign(&id, SignInput::Message(b"m")), Err(Error::KeyNotFound(_))));
    assert!(matches!(se.delete_key(&id), Err(Error::KeyNotFound(_))));
    se.generate_key(&id, KeyAlgorithm::EcdsaP256).unwrap();
}

pub fn debug_output_has_no_secrets(se: Arc<dyn SecureElement>) {
    let id = label("secret");
    se.generate_key(&id, KeyAlgorithm::Ed25519).unwrap();
    let handle = KeyHandle::open(se.clone(), &id).unwrap();
    let text = format!("{handle:?} {se:?}");
    assert!(text.contains("secret") && text.to_lowercase().contains("ed25519"), "{text}");
    assert!(!text.contains(&hex::encode(handle.public_key().as_bytes())), "debug should stay short: {text}");
}

pub fn imported_keys_match_known_answers(se: Arc<dyn SecureElement>) {
    // RFC 6979 A.2.5 (P-256) and RFC 8032 §7.1 test 1 (Ed25519).
    let p256 = hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721").unwrap();
    let p256_public = hex::decode(concat!(
        "04",
        "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6",
        "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299"
    ))
    .unwrap();
    let id = label("imported-root");
    match se.import_key(&id, KeyAlgorithm::EcdsaP256, &p256) {
        Err(Error::Unsupported { .. }) => return,
        other => assert_eq!(other.unwrap().as_bytes(), p256_public.as_slice()),
    }
    let sig = se.sign(&id, SignInput::Message(b"sample")).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &p256_public).verify(b"sample", &sig).unwrap();
    assert!(matches!(se.import_key(&id, KeyAlgorithm::EcdsaP256, &p256), Err(Error::KeyExists(_))));
    assert!(se.import_key(&label("zero"), KeyAlgorithm::EcdsaP256, &[0u8; 32]).is_err(), "0 is not a key");
    assert!(se.import_key(&label("short"), KeyAlgorithm::EcdsaP256, &[1u8; 31]).is_err());

    let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
    let public = match se.import_key(&label("imported-ed"), KeyAlgorithm::Ed25519, &seed) {
        Err(Error::Unsupported { .. }) => return,
        other => other.unwrap(),
    };
    assert_eq!(
        hex::encode(public.as_bytes()),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    let sig = se.sign(&label("imported-ed"), SignInput::Message(b"")).unwrap();
    assert_eq!(
        hex::encode(sig),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
}
