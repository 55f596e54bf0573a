//! `cert show` summaries.

use crate::common::*;
use ironclad_pki::*;

#[test]
fn device_certificate_summary() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let rec = issue(&pki, &mut index, "cam-0001");
    let s = inspect_certificate(rec.pem().as_bytes()).unwrap();
    assert_eq!(s, inspect_certificate(&rec.der).unwrap());
    assert_eq!(s.version, 3);
    assert_eq!(s.subject, "C=DE, O=Acme, CN=cam-0001");
    assert_eq!(s.issuer, pki.int.subject());
    assert_eq!(s.serial, rec.serial);
    assert_eq!(s.key_algorithm, "EC P-256");
    assert_eq!(s.signature_algorithm, "ecdsa-with-SHA256");
    assert!(!s.is_ca);
    assert_eq!(s.sha256_fingerprint, rec.sha256_fingerprint);
    assert_eq!(s.not_after, rec.not_after);
    let by_name = |n: &str| s.extensions.iter().find(|e| e.name == n).unwrap().clone();
    let ku = by_name("keyUsage");
    assert!(ku.critical);
    assert_eq!(ku.value, "digitalSignature");
    assert_eq!(by_name("extendedKeyUsage").value, "clientAuth");
    assert_eq!(by_name("basicConstraints").value, "CA:FALSE");
    let fam = by_name("ironcladFamily");
    assert_eq!(fam.oid, FAMILY_EXTENSION_OID);
    assert_eq!(fam.value, "Smart Camera");
    assert!(!fam.critical);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["extensions"].as_array().unwrap().len(), 6);
}

#[test]
fn ca_summary_and_garbage() {
    let pki = Pki::p256();
    let s = inspect_certificate(pki.int.der()).unwrap();
    assert!(s.is_ca);
    assert!(s.extensions.iter().any(|e| e.value == "CA:TRUE, pathlen:0"));
    assert!(s.extensions.iter().any(|e| e.value == "keyCertSign, cRLSign"));
    assert!(matches!(inspect_certificate(b"nope"), Err(Error::CertMalformed { .. })));
}
