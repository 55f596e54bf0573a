//! The index contract, run once per back-end, plus SQLite persistence.

use crate::common::*;
use ironclad_pki::*;

fn entries(pki: &Pki, n: usize, prefix: &str) -> Vec<IndexEntry> {
    (0..n)
        .map(|i| {
            let (_, der) = device(&format!("{prefix}-{i}"));
            let csr = parse_and_verify(&der, &Limits::default()).unwrap();
            sign_device(&csr, &pki.issuer(), &profile(), now()).unwrap()
        })
        .collect()
}

macro_rules! index_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;

            fn make() -> Box<dyn IssuedIndex> {
                Box::new($make)
            }

            #[test]
            fn insert_and_look_up() {
                let pki = Pki::p256();
                let mut idx = make();
                let es = entries(&pki, 3, "dev");
                idx.insert_batch(&es).unwrap();
                assert_eq!(idx.count().unwrap(), 3);
                let e = &es[1];
                assert_eq!(idx.by_serial(&e.record.serial).unwrap().as_ref(), Some(e));
                let upper = e.record.serial.to_uppercase();
                assert_eq!(idx.by_serial(&upper).unwrap().as_ref(), Some(e));
                assert_eq!(idx.by_csr_sha256(&e.csr_sha256).unwrap().as_ref(), Some(e));
                assert_eq!(idx.by_device_id("dev-1").unwrap(), vec![e.clone()]);
                assert!(idx.by_device_id("nope").unwrap().is_empty());
                assert!(idx.by_serial("0123").unwrap().is_none());
                assert_eq!(idx.revocation_status(&e.record.serial).unwrap(), RevocationStatus::Good);
                assert_eq!(idx.revocation_status("0123").unwrap(), RevocationStatus::Unknown);
            }

            #[test]
            fn unique_serial_and_request_and_atomic_batches() {
                let pki = Pki::p256();
                let mut idx = make();
                let es = entries(&pki, 2, "dev");
                idx.insert_batch(&es[..1]).unwrap();
                // The second batch holds a new row and a duplicate: nothing of it is kept.
                let mut dup_serial = es[1].clone();
                dup_serial.record.serial = es[0].record.serial.clone();
                let more = entries(&pki, 1, "more");
                assert!(matches!(idx.insert_batch(&[more[0].clone(), dup_serial]), Err(Error::Index(_))));
                let mut dup_csr = es[1].clone();
                dup_csr.csr_sha256 = es[0].csr_sha256;
                assert!(matches!(idx.insert_batch(&[dup_csr]), Err(Error::Index(_))));
                assert_eq!(idx.count().unwrap(), 1);
                assert!(idx.by_device_id("more-0").unwrap().is_empty());
            }

            #[test]
            fn revocation() {
                let pki = Pki::p256();
                let mut idx = make();
                let es = entries(&pki, 3, "dev");
                idx.insert_batch(&es).unwrap();
                let s = &es[2].record.serial;
                let e = idx.revoke(s, RevocationReason::Superseded, now()).unwrap();
                assert_eq!(e.status, CertStatus::Revoked { reason: RevocationReason::Superseded, at: now() });
                assert!(matches!(
                    idx.revoke(s, RevocationReason::KeyCompromise, now()),
                    Err(Error::AlreadyRevoked { .. })
                ));
                assert!(matches!(
                    idx.revoke("00ff", RevocationReason::KeyCompromise, now()),
                    Err(Error::UnknownSerial { .. })
                ));
                assert!(matches!(
                    idx.revoke("zz", RevocationReason::KeyCompromise, now()),
                    Err(Error::SerialInvalid { .. })
                ));
                assert_eq!(
                    idx.revocation_status(s).unwrap(),
                    RevocationStatus::Revoked { reason: RevocationReason::Superseded, at: now() }
                );
                let revoked = idx.revoked_by_issuer(pki.int.subject_key_id()).unwrap();
                assert_eq!(revoked.len(), 1);
                assert_eq!(&revoked[0].serial, s);
                assert!(idx.revoked_by_issuer(pki.root.subject_key_id()).unwrap().is_empty());
            }

            #[test]
            fn crl_numbers_increase_per_issuer() {
                let mut idx = make();
                assert_eq!(idx.next_crl_number(b"a").unwrap(), 1);
                assert_eq!(idx.next_crl_number(b"a").unwrap(), 2);
                assert_eq!(idx.next_crl_number(b"b").unwrap(), 1);
            }
        }
    };
}

index_suite!(memory, MemoryIndex::new());
index_suite!(sqlite, SqliteIndex::open_in_memory().unwrap());

#[test]
fn sqlite_reopen_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.sqlite");
    let pki = Pki::p256();
    let es = entries(&pki, 4, "dev");
    {
        let mut idx = SqliteIndex::open(&path).unwrap();
        idx.insert_batch(&es).unwrap();
        idx.revoke(&es[0].record.serial, RevocationReason::KeyCompromise, now()).unwrap();
        idx.next_crl_number(b"k").unwrap();
    }
    let mut idx = SqliteIndex::open(&path).unwrap();
    assert_eq!(idx.count().unwrap(), 4);
    assert_eq!(idx.by_serial(&es[3].record.serial).unwrap().unwrap(), es[3]);
    assert!(matches!(
        idx.by_serial(&es[0].record.serial).unwrap().unwrap().status,
        CertStatus::Revoked { reason: RevocationReason::KeyCompromise, .. }
    ));
    assert_eq!(idx.next_crl_number(b"k").unwrap(), 2);
}

#[test]
fn sqlite_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.sqlite");
    drop(SqliteIndex::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    drop(conn);
    match SqliteIndex::open(&path) {
        Err(Error::Index(e)) => assert!(e.to_string().contains("newer"), "{e}"),
        other => panic!("{other:?}"),
    }
}
