//! Single issuance: the device profile, byte for byte, and the duplicate rules.

use crate::common::*;
use crate::csr::sha256;
use ironclad_pki::*;
use rcgen::KeyPair;
use time::Duration;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

fn outcome(pki: &Pki, index: &mut dyn IssuedIndex, der: &[u8]) -> Result<IssueOutcome> {
    issue_one(der, &pki.issuer(), &profile(), index, &Limits::default(), now())
}

#[test]
fn device_certificate_follows_the_profile() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let (key, der) = device("cam-0042");
    let rec = match outcome(&pki, &mut index, &der).unwrap() {
        IssueOutcome::Issued(r) => r,
        other => panic!("{other:?}"),
    };
    let (rest, cert) = X509Certificate::from_der(&rec.der).unwrap();
    assert!(rest.is_empty());
    assert_eq!(cert.version().0, 2, "v3");
    assert_eq!(cert.raw_serial().len(), 16);
    assert!(cert.raw_serial()[0] & 0x80 == 0 && cert.raw_serial()[0] != 0);
    assert_eq!(hex::encode(cert.raw_serial()), rec.serial);
    assert_eq!(cert.signature_algorithm.algorithm.to_id_string(), "1.2.840.10045.4.3.2");
    assert!(cert.signature_algorithm.parameters.is_none());
    assert_eq!(cert.issuer().as_raw(), pki.int.subject_der());
    assert_eq!(cert.subject().to_string(), "C=DE, O=Acme, CN=cam-0042");
    use rcgen::PublicKeyData;
    assert_eq!(cert.public_key().raw, key.subject_public_key_info());
    let (_, int) = X509Certificate::from_der(pki.int.der()).unwrap();
    cert.verify_signature(Some(int.public_key())).unwrap();

    let exts = cert.extensions();
    assert_eq!(exts.len(), 6);
    match exts[0].parsed_extension() {
        ParsedExtension::BasicConstraints(bc) => assert!(!bc.ca && exts[0].critical),
        other => panic!("{other:?}"),
    }
    match exts[1].parsed_extension() {
        ParsedExtension::KeyUsage(ku) => {
            assert!(exts[1].critical);
            assert_eq!(ku.flags, 1, "digitalSignature only");
        }
        other => panic!("{other:?}"),
    }
    match exts[2].parsed_extension() {
        ParsedExtension::ExtendedKeyUsage(eku) => {
            assert!(!exts[2].critical);
            assert!(eku.client_auth && !eku.server_auth && !eku.any && eku.other.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match exts[3].parsed_extension() {
        ParsedExtension::SubjectKeyIdentifier(id) => {
            assert_eq!(id.0, &sha256(&key.subject_public_key_info())[..20]);
        }
        other => panic!("{other:?}"),
    }
    match exts[4].parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(aki) => {
            assert_eq!(aki.key_identifier.as_ref().unwrap().0, pki.int.subject_key_id());
            assert!(aki.authority_cert_issuer.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(exts[5].oid.as_bytes(), FAMILY_EXTENSION_OID_DER);
    assert!(!exts[5].critical);
    assert_eq!(exts[5].value, b"\x0c\x0cSmart Camera");

    assert_eq!(rec.device_id, "cam-0042");
    assert_eq!(rec.family, "Smart Camera");
    assert_eq!(rec.sha256_fingerprint, hex::encode(sha256(&rec.der)));
    let (nb, na) = profile().validity_window(now()).unwrap();
    assert_eq!(cert.validity().not_before.to_datetime(), nb);
    assert_eq!(cert.validity().not_after.to_datetime(), na);
    assert_eq!(na.year(), 2056);
    assert_eq!(rec.not_after, "2056-06-01T11:59:00Z");
}

#[test]
fn requested_extensions_and_names_are_never_copied() {
    let pki = Pki::p256();
    let prof = DeviceProfile::new("Ironclad Test", "FR", "Doorbell", Validity::Years(1)).unwrap();
    let mut index = MemoryIndex::new();
    let rec =
        issue_one(&fixture("p256.csr.pem"), &pki.issuer(), &prof, &mut index, &Limits::default(), now())
            .unwrap()
            .record()
            .clone();
    let (_, cert) = X509Certificate::from_der(&rec.der).unwrap();
    assert_eq!(cert.subject().to_string(), "C=FR, O=Ironclad Test, CN=cam-0001");
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.value.digital_signature() && !ku.value.key_cert_sign());
    assert!(cert.extensions().iter().all(|e| e.oid.to_id_string() != "1.2.3.4"));
}

#[test]
fn rsa_and_ed25519_device_keys() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    for f in ["rsa2048.csr.pem", "ed25519.csr.pem"] {
        let rec = outcome(&pki, &mut index, &fixture(f)).unwrap().record().clone();
        let verified =
            pki.verifier().verify_device(&rec.der, now(), &index).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(verified.device_id(), rec.device_id);
    }
}

#[test]
fn ed25519_issuer_signs_with_ed25519() {
    let pki = Pki::with(&rcgen::PKCS_ED25519, &rcgen::PKCS_ED25519);
    let mut index = MemoryIndex::new();
    let rec = issue(&pki, &mut index, "dev-ed");
    let (_, cert) = X509Certificate::from_der(&rec.der).unwrap();
    assert_eq!(cert.signature_algorithm.algorithm.to_id_string(), "1.3.101.112");
    pki.verifier().verify_device(&rec.der, now(), &index).unwrap();
}

#[test]
fn validity_options() {
    let pki = Pki::p256();
    let (_, der) = device("dev-v");
    let csr = parse_and_verify(&der, &Limits::default()).unwrap();

    let forever = DeviceProfile::new("Acme", "DE", "Cam", Validity::NoWellDefinedExpiry).unwrap();
    let e = sign_device(&csr, &pki.issuer(), &forever, now()).unwrap();
    assert!(e.record.der.windows(17).any(|w| w == b"\x18\x0f99991231235959Z"));
    assert_eq!(e.record.not_after, "9999-12-31T23:59:59Z");

    let short = DeviceProfile::new("Acme", "DE", "Cam", Validity::Duration(Duration::hours(12)))
        .unwrap()
        .with_backdate(Duration::ZERO)
        .unwrap();
    let e = sign_device(&csr, &pki.issuer(), &short, now()).unwrap();
    assert_eq!(e.record.not_after, "2026-06-02T00:00:00Z");
}

#[test]
fn same_request_twice_is_idempotent() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let (key, der) = device("dev-1");
    let first = outcome(&pki, &mut index, &der).unwrap();
    let second = outcome(&pki, &mut index, &der).unwrap();
    assert!(matches!(first, IssueOutcome::Issued(_)));
    assert_eq!(second, IssueOutcome::Existing(first.record().clone()));
    // A new request with the same key for the same device: also the existing certificate.
    let again = csr(&key, "dev-1");
    assert_ne!(again, der);
    assert_eq!(outcome(&pki, &mut index, &again).unwrap(), IssueOutcome::Existing(first.record().clone()));
    assert_eq!(index.count().unwrap(), 1);
}

#[test]
fn device_id_taken_under_another_key() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let first = issue(&pki, &mut index, "dev-1");
    let (_, other) = device("dev-1");
    match outcome(&pki, &mut index, &other) {
        Err(Error::DeviceIdTaken { device_id, existing_serial }) => {
            assert_eq!(device_id, "dev-1");
            assert_eq!(existing_serial, first.serial);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(index.count().unwrap(), 1);
}

#[test]
fn revoked_key_is_not_recertified_but_a_new_key_may_take_over() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let (_, der) = device("dev-1");
    let first = outcome(&pki, &mut index, &der).unwrap().record().clone();
    index.revoke(&first.serial, RevocationReason::KeyCompromise, now()).unwrap();
    match outcome(&pki, &mut index, &der) {
        Err(Error::KeyRevoked { serial, .. }) => assert_eq!(serial, first.serial),
        other => panic!("{other:?}"),
    }
    let (_, new_key_csr) = device("dev-1");
    let second = outcome(&pki, &mut index, &new_key_csr).unwrap();
    assert!(matches!(second, IssueOutcome::Issued(ref r) if r.serial != first.serial));
    assert_eq!(index.by_device_id("dev-1").unwrap().len(), 2);
}

#[test]
fn serials_are_random_and_distinct() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let a = issue(&pki, &mut index, "dev-a");
    let b = issue(&pki, &mut index, "dev-b");
    assert_ne!(a.serial, b.serial);
    assert_eq!(a.serial.len(), 32);
}

#[test]
fn signer_can_be_any_signing_key() {
    // A wrapper standing in for a secure-element handle: only `SigningKey` is used.
    struct Handle(KeyPair);
    impl rcgen::PublicKeyData for Handle {
        fn der_bytes(&self) -> &[u8] {
            rcgen::PublicKeyData::der_bytes(&self.0)
        }
        fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
            rcgen::PublicKeyData::algorithm(&self.0)
        }
    }
    impl rcgen::SigningKey for Handle {
        fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
            rcgen::SigningKey::sign(&self.0, msg)
        }
    }
    let handle = Handle(KeyPair::generate().unwrap());
    let root = create_root(&handle, &RootCaParams::new("HSM Root", "Acme", "DE"), now()).unwrap();
    let issuer = CaIssuer::new(&root, &handle).unwrap();
    let mut index = MemoryIndex::new();
    let (_, der) = device("dev-hsm");
    let rec = issue_one(&der, &issuer, &profile(), &mut index, &Limits::default(), now()).unwrap();
    let verifier = ChainVerifier::new([root.der()], Vec::<Vec<u8>>::new()).unwrap();
    let v = verifier.verify_device(&rec.record().der, now(), &index).unwrap();
    assert_eq!(v.issuer_fingerprint(), root.sha256_fingerprint());
}
