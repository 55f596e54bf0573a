//! Chain verification: the good path and each specific failure.

use crate::common::*;
use ironclad_pki::danger::SkipRevocationCheck;
use ironclad_pki::*;
use time::Duration;

#[test]
fn good_chain_yields_a_verified_device() {
    for pki in [Pki::p256(), Pki::with(&rcgen::PKCS_ED25519, &rcgen::PKCS_ECDSA_P256_SHA256)] {
        let mut index = MemoryIndex::new();
        let rec = issue(&pki, &mut index, "cam-0001");
        let v = pki.verifier().verify_device(&rec.der, now(), &index).unwrap();
        assert_eq!(v.device_id(), "cam-0001");
        assert_eq!(v.family(), Some("Smart Camera"));
        assert_eq!(v.serial(), rec.serial);
        assert_eq!(v.issuer_fingerprint(), pki.int.sha256_fingerprint());
        assert_eq!(v.not_after().year(), 2056);
        assert!(!v.spki_der().is_empty());
    }
}

#[test]
fn wrong_ca_is_unknown_issuer() {
    let pki = Pki::p256();
    // Another PKI with the very same names: path building finds its CA by name, the signature
    // fails, and the AKI tells that it is another CA rather than a tampered certificate.
    let other = Pki::p256();
    let mut index = MemoryIndex::new();
    let rec = issue(&pki, &mut index, "cam-0001");
    assert!(matches!(other.verifier().verify_device(&rec.der, now(), &index), Err(Error::UnknownIssuer)));
    // Another root with other names.
    let key = rcgen::KeyPair::generate().unwrap();
    let stranger = create_root(&key, &RootCaParams::new("Stranger", "Evil", "XX"), now()).unwrap();
    let verifier = ChainVerifier::new([stranger.der()], [other.int.der()]).unwrap();
    assert!(matches!(verifier.verify_device(&rec.der, now(), &index), Err(Error::UnknownIssuer)));
    // Trusting only the other root while presenting our intermediate: the intermediate's
    // issuer is not trusted.
    let mixed = ChainVerifier::new([other.root.der()], [pki.int.der()]).unwrap();
    assert!(matches!(mixed.verify_device(&rec.der, now(), &index), Err(Error::UnknownIssuer)));
    // Right root, but the intermediate is missing.
    let rootless = ChainVerifier::new([pki.root.der()], Vec::<Vec<u8>>::new()).unwrap();
    assert!(matches!(rootless.verify_device(&rec.der, now(), &index), Err(Error::UnknownIssuer)));
}

#[test]
fn expired_and_not_yet_valid() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let prof = DeviceProfile::new("Acme", "DE", "Cam", Validity::Duration(Duration::days(1))).unwrap();
    let (_, der) = device("short-lived");
    let rec = issue_one(&der, &pki.issuer(), &prof, &mut index, &Limits::default(), now())
        .unwrap()
        .record()
        .clone();
    let verifier = pki.verifier();
    verifier.verify_device(&rec.der, now(), &index).unwrap();
    match verifier.verify_device(&rec.der, now() + Duration::days(2), &index) {
        Err(Error::Expired { not_after }) => {
            assert_eq!(not_after, now() - DEFAULT_BACKDATE + Duration::days(1));
        }
        other => panic!("{other:?}"),
    }
    match verifier.verify_device(&rec.der, now() - Duration::minutes(10), &index) {
        Err(Error::NotYetValid { not_before }) => assert_eq!(not_before, now() - DEFAULT_BACKDATE),
        other => panic!("{other:?}"),
    }
}

#[test]
fn issuer_fingerprint_names_the_signing_intermediate() {
    let pki = Pki::p256();
    let second_key = rcgen::KeyPair::generate().unwrap();
    let second = {
        let root = CaIssuer::new(&pki.root, &pki.root_key).unwrap();
        create_intermediate(&root, &second_key, &IntermediateCaParams::new("Line 2 CA", "Acme", "DE"), now())
            .unwrap()
    };
    let mut index = MemoryIndex::new();
    let (_, der) = device("line2-dev");
    let issuer2 = CaIssuer::new(&second, &second_key).unwrap();
    let rec = issue_one(&der, &issuer2, &profile(), &mut index, &Limits::default(), now()).unwrap();
    let first = issue(&pki, &mut index, "line1-dev");
    let verifier = ChainVerifier::new([pki.root.der()], [pki.int.der(), second.der()]).unwrap();
    let v2 = verifier.verify_device(&rec.record().der, now(), &index).unwrap();
    assert_eq!(v2.issuer_fingerprint(), second.sha256_fingerprint());
    let v1 = verifier.verify_device(&first.der, now(), &index).unwrap();
    assert_eq!(v1.issuer_fingerprint(), pki.int.sha256_fingerprint());
}

#[test]
fn revoked_is_refused_with_its_reason() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let rec = issue(&pki, &mut index, "cam-0001");
    index.revoke(&rec.serial, RevocationReason::CessationOfOperation, now()).unwrap();
    match pki.verifier().verify_device(&rec.der, now(), &index) {
        Err(Error::Revoked { serial, reason }) => {
            assert_eq!(serial, rec.serial);
            assert_eq!(reason, RevocationReason::CessationOfOperation);
        }
        other => panic!("{other:?}"),
    }
    // The fenced switch-off ignores the index entirely.
    assert!(pki.verifier().verify_device(&rec.der, now(), &SkipRevocationCheck).is_ok());
}

#[test]
fn tampered_leaf_is_refused() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let rec = issue(&pki, &mut index, "cam-0001");
    let mut der = rec.der.clone();
    let pos = der.windows(8).position(|w| w == b"cam-0001").unwrap();
    der[pos + 7] = b'2';
    assert!(matches!(pki.verifier().verify_device(&der, now(), &index), Err(Error::CertSignatureInvalid)));
    let mut der = rec.der.clone();
    der.truncate(der.len() - 3);
    assert!(matches!(pki.verifier().verify_device(&der, now(), &index), Err(Error::CertMalformed { .. })));
}

#[test]
fn certificate_missing_from_the_index_is_refused() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let rec = issue(&pki, &mut index, "cam-0001");
    let empty = MemoryIndex::new();
    assert!(matches!(
        pki.verifier().verify_device(&rec.der, now(), &empty),
        Err(Error::UnknownCertificate { .. })
    ));
}

#[test]
fn ca_certificate_is_not_a_device() {
    let pki = Pki::p256();
    let index = MemoryIndex::new();
    assert!(matches!(
        pki.verifier().verify_device(pki.int.der(), now(), &index),
        Err(Error::ChainInvalid { reason: webpki::Error::CaUsedAsEndEntity })
    ));
}

#[test]
fn sqlite_index_is_a_revocation_source() {
    let pki = Pki::p256();
    let mut index = SqliteIndex::open_in_memory().unwrap();
    let rec = issue(&pki, &mut index, "cam-0001");
    pki.verifier().verify_device(&rec.der, now(), &index).unwrap();
    index.revoke(&rec.serial, RevocationReason::KeyCompromise, now()).unwrap();
    assert!(matches!(
        pki.verifier().verify_device(&rec.der, now(), &index),
        Err(Error::Revoked { reason: RevocationReason::KeyCompromise, .. })
    ));
}
