//! CSR intake: what is accepted and every refusal.

use crate::common::*;
use ironclad_pki::*;
use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};

fn verify(bytes: &[u8]) -> Result<VerifiedCsr> {
    parse_and_verify(bytes, &Limits::default())
}

#[test]
fn openssl_fixtures_are_accepted() {
    let v = verify(&fixture("p256.csr.pem")).unwrap();
    assert_eq!(v.device_id(), "cam-0001");
    assert_eq!(v.key_kind(), KeyKind::EcdsaP256);
    let v = verify(&fixture("ed25519.csr.pem")).unwrap();
    assert_eq!(v.device_id(), "ed-device-01");
    assert_eq!(v.key_kind(), KeyKind::Ed25519);
    let v = verify(&fixture("rsa2048.csr.pem")).unwrap();
    assert_eq!(v.key_kind(), KeyKind::Rsa { bits: 2048 });
}

#[test]
fn flipped_signature_byte_is_refused() {
    for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ED25519] {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut der = csr(&key, "dev-1");
        let last = der.len() - 1;
        der[last] ^= 0x01;
        assert!(matches!(verify(&der), Err(Error::CsrSignatureInvalid)), "{alg:?}");
    }
}

#[test]
fn tampered_subject_is_refused() {
    let (_, mut der) = device("dev-1");
    let pos = der.windows(5).position(|w| w == b"dev-1").unwrap();
    der[pos + 4] = b'2';
    assert!(matches!(verify(&der), Err(Error::CsrSignatureInvalid)));
}

#[test]
fn malformed_der_is_refused() {
    let (_, der) = device("dev-1");
    for bad in [&der[..der.len() - 10], &[0x30, 0x03, 1, 2, 3][..], b"", b"hello"] {
        assert!(matches!(verify(bad), Err(Error::CsrMalformed { .. })), "{bad:?}");
    }
    let bad_pem = b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n";
    assert!(matches!(verify(bad_pem), Err(Error::CsrMalformed { .. })));
}

#[test]
fn trailing_garbage_is_refused() {
    let (_, mut der) = device("dev-1");
    der.extend_from_slice(&[0, 0, 7]);
    assert!(matches!(verify(&der), Err(Error::CsrTrailingData { extra: 3 })));
}

#[test]
fn ca_request_is_refused() {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "sneaky");
    p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let der = p.serialize_request(&key).unwrap().der().to_vec();
    assert!(matches!(verify(&der), Err(Error::CsrRequestsCa)));
    assert!(matches!(verify(&fixture("p256-ca-request.csr.pem")), Err(Error::CsrRequestsCa)));

    // CA:FALSE requested explicitly is fine (and still not copied).
    p.is_ca = IsCa::ExplicitNoCa;
    let der = p.serialize_request(&key).unwrap().der().to_vec();
    assert!(verify(&der).is_ok());
}

#[test]
fn rsa_1024_is_refused() {
    assert!(matches!(verify(&fixture("rsa1024.csr.pem")), Err(Error::RsaKeyTooSmall { bits: 1024 })));
}

#[test]
fn other_curves_are_refused() {
    match verify(&fixture("p384.csr.pem")) {
        Err(Error::UnsupportedCurve { oid }) => assert_eq!(oid, "1.3.132.0.34"),
        other => panic!("{other:?}"),
    }
    match verify(&fixture("secp256k1.csr.pem")) {
        Err(Error::UnsupportedCurve { oid }) => assert_eq!(oid, "1.3.132.0.10"),
        other => panic!("{other:?}"),
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    assert!(matches!(verify(&csr(&key, "p384")), Err(Error::UnsupportedCurve { .. })));
}

#[test]
fn sha1_signature_is_refused() {
    match verify(&fixture("p256-sha1.csr.pem")) {
        Err(Error::UnsupportedSignatureAlgorithm { oid }) => assert_eq!(oid, "1.2.840.10045.4.1"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_key_algorithm_is_refused() {
    // Re-label the P-256 key's algorithm without re-signing: the key check comes before the
    // signature check, so the algorithm is what gets reported.
    let (_, der) = device("dev-1");
    let ec_oid = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let pos = der.windows(ec_oid.len()).position(|w| w == ec_oid).unwrap();
    let mut bad = der.clone();
    // Same length: 1.2.840.10045.2.1 -> 1.2.840.10046.2.1 (dhpublicnumber).
    bad[pos + 6] = 0x3e;
    match verify(&bad) {
        Err(Error::UnsupportedKeyAlgorithm { oid }) => assert_eq!(oid, "1.2.840.10046.2.1"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversized_input_is_refused() {
    let (_, der) = device("dev-1");
    let limits = Limits::with_max_csr_bytes(der.len() - 1);
    assert!(matches!(
        parse_and_verify(&der, &limits),
        Err(Error::CsrTooLarge { len, max }) if len == der.len() && max == der.len() - 1
    ));
    let huge = vec![b'A'; DEFAULT_MAX_CSR_BYTES + 1];
    assert!(matches!(verify(&huge), Err(Error::CsrTooLarge { .. })));
    // The parse step checks the bound too, for callers that skip `csr_der`.
    assert!(matches!(UnverifiedCsr::parse(&der, &limits), Err(Error::CsrTooLarge { .. })));
}

#[test]
fn bad_common_names_are_refused() {
    for (cn, reason) in [
        ("has space", "character outside [A-Za-z0-9._:-]"),
        ("slash/dev", "character outside [A-Za-z0-9._:-]"),
        ("ümlaut", "character outside [A-Za-z0-9._:-]"),
        ("", "empty"),
    ] {
        let key = KeyPair::generate().unwrap();
        match verify(&csr(&key, cn)) {
            Err(Error::DeviceIdInvalid { reason: r }) => assert_eq!(r, reason, "{cn:?}"),
            other => panic!("{cn:?}: {other:?}"),
        }
    }
    let long = "x".repeat(65);
    let key = KeyPair::generate().unwrap();
    assert!(matches!(verify(&csr(&key, &long)), Err(Error::DeviceIdInvalid { .. })));

    // No CN at all.
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::OrganizationName, "Acme");
    let der = p.serialize_request(&key).unwrap().der().to_vec();
    assert!(matches!(verify(&der), Err(Error::DeviceIdMissing)));

    // Two CNs: which one would be the device?
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "dev-a");
    p.distinguished_name.push(DnType::CustomDnType(vec![2, 5, 4, 3]), "dev-b");
    let der = p.serialize_request(&key).unwrap().der().to_vec();
    assert!(matches!(verify(&der), Err(Error::DeviceIdInvalid { reason: "more than one common name" })));
}

#[test]
fn parse_then_verify_types() {
    let (key, der) = device("dev-7");
    let unverified = UnverifiedCsr::parse(&der, &Limits::default()).unwrap();
    let v = unverified.verify().unwrap();
    use rcgen::PublicKeyData;
    assert_eq!(v.spki_der(), key.subject_public_key_info());
    assert_eq!(v.csr_sha256(), &sha256(&der));
    let pem = pem::encode(&pem::Pem::new("NEW CERTIFICATE REQUEST", der.clone()));
    assert_eq!(csr_der(pem.as_bytes(), &Limits::default()).unwrap().as_ref(), &der[..]);
}

pub fn sha256(b: &[u8]) -> [u8; 32] {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b).as_ref().try_into().unwrap()
}
