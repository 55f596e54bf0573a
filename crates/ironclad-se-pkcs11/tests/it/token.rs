//! PKCS#11-specific behaviour: login errors, lookups by label + CKA_ID, interrupted updates,
//! parallel signing, and keys seen by a second handle.

use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use ironclad_se::{Error, KeyAlgorithm, KeyStore, Label, MonotonicCounter, SealedStore, SignInput};
use ironclad_se_pkcs11::{Pin, Pkcs11Config, Pkcs11Error, Pkcs11Se};
use ironclad_testkit::softhsm::ChildToken;

use crate::{config, fresh_token};

fn label(s: &str) -> Label {
    Label::new(s).unwrap()
}

/// A raw session on the test token, for planting objects ironclad would never write.
fn raw_session(token: &ChildToken) -> Session {
    let ctx = Pkcs11::new(&token.module).unwrap();
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)); // may be done already
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == token.label)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    let _ = session.login(UserType::User, Some(&AuthPin::new(token.pin.into()))); // may be logged in
    session
}

#[test]
fn login_errors_name_the_problem_not_the_pin() {
    let Some(token) = fresh_token() else { return };
    let wrong = Pkcs11Config { pin: Pin::new("not-the-pin-4711"), ..config(&token) };
    let err = Pkcs11Se::open(&wrong).unwrap_err();
    assert!(matches!(err, Pkcs11Error::Login { reason: "incorrect PIN", .. }), "{err}");
    assert!(!err.to_string().contains("4711"), "{err}");
    let missing = Pkcs11Config { token_label: "no-such-token".into(), ..config(&token) };
    let err = Pkcs11Se::open(&missing).unwrap_err().to_string();
    assert!(err.contains("no-such-token") && err.contains(&token.label), "{err}");
    let bad_module = Pkcs11Config { module: "/nonexistent/libpkcs11.so".into(), ..config(&token) };
    let err = Pkcs11Se::open(&bad_module).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/libpkcs11.so"), "{err}");
    assert!(Pkcs11Se::open(&config(&token)).is_ok());
}

/// Labels are not unique in PKCS#11: a key is found by label and CKA_ID together, objects
/// other tools made under the same label are ignored, and two matches are an error, not a
/// guess.
#[test]
fn lookups_need_label_and_id_and_exactly_one_object() {
    let Some(token) = fresh_token() else { return };
    let se = Pkcs11Se::open(&config(&token)).unwrap();
    let id = label("ca-line-1");
    let public = se.generate_key(&id, KeyAlgorithm::EcdsaP256).unwrap();
    let raw = raw_session(&token);
    let data = |label: &str, id: &[u8]| {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(cryptoki::object::KeyType::GENERIC_SECRET),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
            Attribute::Value(vec![7u8; 32]),
        ];
        raw.create_object(&template).unwrap()
    };
    data("ca-line-1", b"someone else's id");
    assert_eq!(se.key_info(&id).unwrap().public, public, "a foreign object with the same label is ignored");
    assert_eq!(se.list_keys().unwrap().len(), 1, "foreign objects are not listed");

    // A second private key with our label *and* our id: ambiguous, refused.
    let second = Pkcs11Se::open(&config(&token)).unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"ca-line-1");
    data("ca-line-1", &digest.as_ref()[..16]);
    let err = second.key_info(&id).unwrap_err().to_string();
    assert!(err.contains("expected exactly one"), "{err}");
}

/// A replacement interrupted between "create new" and "destroy old" leaves both objects; the
/// newer generation wins for sealed objects and the larger count for counters.
#[test]
fn interrupted_updates_read_the_newer_value() {
    let Some(token) = fresh_token() else { return };
    let se = Pkcs11Se::open(&config(&token)).unwrap();
    let name = label("device-cert");
    se.put_object(&name, b"old").unwrap();
    se.put_object(&name, b"new").unwrap();
    let raw = raw_session(&token);
    let plant = |app: &[u8], value: Vec<u8>| {
        raw.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Application(app.to_vec()),
            Attribute::Label(b"device-cert".to_vec()),
            Attribute::Value(value),
        ])
        .unwrap();
    };
    // An older generation left behind (generation 1 = the first put).
    let mut stale = 1u64.to_be_bytes().to_vec();
    stale.extend_from_slice(b"old");
    plant(b"ironclad", stale);
    assert_eq!(se.get_object(&name).unwrap().as_slice(), b"new");
    se.put_object(&name, b"newest").unwrap();
    assert_eq!(se.get_object(&name).unwrap().as_slice(), b"newest");
    assert_eq!(se.list_objects().unwrap(), vec![name.clone()]);

    se.counter_advance(&name, 5).unwrap();
    plant(b"ironclad-counter", 9u64.to_be_bytes().to_vec());
    assert_eq!(se.counter(&name).unwrap(), 9, "the larger count is the one that was written last");
    assert_eq!(se.counter_increment(&name).unwrap(), 10);
    se.delete_object(&name).unwrap();
    assert!(matches!(se.get_object(&name), Err(Error::ObjectNotFound(_))));
    assert_eq!(se.counter(&name).unwrap(), 10, "counters and objects are separate namespaces");
}

/// The backend is Send + Sync: threads sign at once, each on a session of its own.
#[test]
fn parallel_signing_works_from_many_threads() {
    let Some(token) = fresh_token() else { return };
    let se = Arc::new(Pkcs11Se::open(&config(&token)).unwrap());
    let id = label("issuer");
    let public = se.generate_key(&id, KeyAlgorithm::EcdsaP256).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let (se, id, public) = (se.clone(), id.clone(), public.clone());
            scope.spawn(move || {
                let verifier = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public.as_bytes());
                for i in 0..50u8 {
                    let msg = [t, i];
                    let sig = se.sign(&id, SignInput::Message(&msg)).unwrap();
                    verifier.verify(&msg, &sig).unwrap();
                }
            });
        }
    });
}

/// Keys and objects are token objects: a second handle sees them, and a key deleted through
/// one handle is gone for the other (its cached lookup notices).
#[test]
fn a_second_handle_sees_the_same_token() {
    let Some(token) = fresh_token() else { return };
    let first = Pkcs11Se::open(&config(&token)).unwrap();
    let second = Pkcs11Se::open(&config(&token)).unwrap();
    let id = label("shared");
    let public = first.generate_key(&id, KeyAlgorithm::Ed25519).unwrap();
    assert_eq!(second.key_info(&id).unwrap().public, public);
    second.sign(&id, SignInput::Message(b"warm the cache")).unwrap();
    first.delete_key(&id).unwrap();
    first.generate_key(&id, KeyAlgorithm::Ed25519).unwrap();
    // `second` still caches the old handle: the stale handle is detected and looked up again.
    let sig = second.sign(&id, SignInput::Message(b"m")).unwrap();
    let fresh = first.key_info(&id).unwrap().public;
    UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, fresh.as_bytes()).verify(b"m", &sig).unwrap();
    first.put_object(&id, b"cert").unwrap();
    assert_eq!(second.get_object(&id).unwrap().as_slice(), b"cert");
}
