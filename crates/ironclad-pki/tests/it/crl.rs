//! CRLs from the index.

use crate::common::*;
use ironclad_pki::*;
use time::Duration;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

#[test]
fn crl_lists_the_issuers_revoked_serials() {
    let pki = Pki::p256();
    let other = Pki::p256();
    let mut index = MemoryIndex::new();
    let a = issue(&pki, &mut index, "dev-a");
    let _b = issue(&pki, &mut index, "dev-b");
    let c = issue(&pki, &mut index, "dev-c");
    let foreign = issue(&other, &mut index, "dev-x");
    index.revoke(&a.serial, RevocationReason::KeyCompromise, now()).unwrap();
    index.revoke(&c.serial, RevocationReason::Unspecified, now()).unwrap();
    index.revoke(&foreign.serial, RevocationReason::Superseded, now()).unwrap();

    let issuer = pki.issuer();
    let crl = build_crl(&issuer, &mut index, now(), now() + Duration::days(7)).unwrap();
    assert_eq!(crl.number(), 1);
    assert_eq!(crl.revoked_count(), 2);
    let (rest, parsed) = CertificateRevocationList::from_der(crl.der()).unwrap();
    assert!(rest.is_empty());
    let (_, int) = X509Certificate::from_der(pki.int.der()).unwrap();
    parsed.verify_signature(int.public_key()).unwrap();
    assert_eq!(parsed.issuer().as_raw(), pki.int.subject_der());
    assert_eq!(parsed.crl_number().unwrap().to_string(), "1");
    assert_eq!(parsed.last_update().to_datetime(), now());
    assert_eq!(parsed.next_update().unwrap().to_datetime(), now() + Duration::days(7));
    let mut serials: Vec<String> =
        parsed.iter_revoked_certificates().map(|r| hex::encode(r.raw_serial())).collect();
    serials.sort();
    let mut expected = vec![a.serial.clone(), c.serial.clone()];
    expected.sort();
    assert_eq!(serials, expected);
    let reason_of = |s: &str| {
        parsed
            .iter_revoked_certificates()
            .find(|r| hex::encode(r.raw_serial()) == s)
            .unwrap()
            .reason_code()
            .map(|(_, r)| r.0)
    };
    assert_eq!(reason_of(&a.serial), Some(1));
    assert_eq!(reason_of(&c.serial), None, "unspecified is written without a reason code");
    let aki = parsed.extensions().iter().find_map(|e| match e.parsed_extension() {
        x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
            a.key_identifier.as_ref().map(|k| k.0.to_vec())
        }
        _ => None,
    });
    assert_eq!(aki.as_deref(), Some(pki.int.subject_key_id()));

    let second = build_crl(&issuer, &mut index, now(), now() + Duration::days(7)).unwrap();
    assert_eq!(second.number(), 2);
    assert!(crl.pem().starts_with("-----BEGIN X509 CRL-----"));
}

#[test]
fn crl_next_update_must_follow_this_update() {
    let pki = Pki::p256();
    assert!(matches!(sign_crl(&pki.issuer(), 1, now(), now(), &[]), Err(Error::ValidityInvalid { .. })));
}
