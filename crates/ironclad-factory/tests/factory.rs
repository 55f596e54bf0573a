//! Orders, quota, audit and console passwords, including races between station processes
//! (modelled by threads with their own ledger connections) and tampering.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ironclad_factory::{
    AuditRecord, ConsoleGuard, Error, ProductionOrder, QuotaLedger, SignedOrder, VerifiedOrder,
    console_password,
};
use ironclad_se::{KeyAlgorithm, KeyHandle, KeyStore, Label, MemorySe, SecureElement};
use rcgen::PublicKeyData;
use time::macros::datetime;

const LINE: &str = "aa11";

fn oem() -> KeyHandle {
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let id = Label::new("oem-orders").unwrap();
    se.generate_key(&id, KeyAlgorithm::EcdsaP256).unwrap();
    KeyHandle::open(se, &id).unwrap()
}

fn order(id: &str, max: u64) -> ProductionOrder {
    ProductionOrder {
        id: id.into(),
        product: "acme-cam".into(),
        line_ca_sha256: LINE.into(),
        max_count: max,
        not_before: "2026-01-01T00:00:00Z".into(),
        not_after: "2027-01-01T00:00:00Z".into(),
    }
}

fn verified(key: &KeyHandle, max: u64) -> VerifiedOrder {
    let spki = key.subject_public_key_info();
    SignedOrder::sign(order("PO-1", max), key)
        .unwrap()
        .verify(&[&spki], LINE, datetime!(2026-06-01 0:00 UTC))
        .unwrap()
}

fn records(prefix: &str, n: usize) -> Vec<AuditRecord> {
    (0..n)
        .map(|i| AuditRecord { serial: format!("{prefix}{i:04x}"), device_id: format!("{prefix}-{i}") })
        .collect()
}

#[test]
fn a_tampered_expired_foreign_or_misdirected_order_is_refused() {
    let key = oem();
    let spki = key.subject_public_key_info();
    let now = datetime!(2026-06-01 0:00 UTC);
    let signed = SignedOrder::sign(order("PO-1", 100), &key).unwrap();
    let json = signed.to_json();
    let round = SignedOrder::from_json(&json).unwrap();
    round.clone().verify(&[&spki], LINE, now).unwrap();

    let mut altered = round.clone();
    altered.order.max_count = 1_000_000;
    assert!(matches!(altered.verify(&[&spki], LINE, now), Err(Error::OrderSignatureInvalid { .. })));

    let other = oem();
    let other_spki = other.subject_public_key_info();
    assert!(matches!(
        round.clone().verify(&[&other_spki], LINE, now),
        Err(Error::OrderSignerUntrusted { .. })
    ));

    let err = round.clone().verify(&[&spki], LINE, datetime!(2027-02-01 0:00 UTC)).unwrap_err();
    assert!(matches!(err, Error::OrderOutsideWindow { .. }), "{err}");
    assert!(err.to_string().contains("PO-1"), "{err}");
    assert!(matches!(
        round.clone().verify(&[&spki], LINE, datetime!(2025-12-31 0:00 UTC)),
        Err(Error::OrderOutsideWindow { .. })
    ));
    assert!(matches!(round.verify(&[&spki], "bb22", now), Err(Error::OrderWrongLine { .. })));
    assert!(matches!(SignedOrder::from_json("{}"), Err(Error::OrderMalformed(_))));
    assert!(matches!(SignedOrder::sign(order("PO-0", 0), &key), Err(Error::OrderMalformed(_))));
}

#[test]
fn the_quota_survives_reopening_and_refuses_past_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let key = oem();
    let order = verified(&key, 10);
    {
        let mut ledger = QuotaLedger::open(&path).unwrap();
        ledger.register(&order).unwrap();
        let mut r = ledger.reserve(&order, 6).unwrap();
        ledger.record_issued(&mut r, &records("a", 6), "2026-06-01T00:00:00Z").unwrap();
        // A crash after reserving: these 3 units are never returned.
        let _lost = ledger.reserve(&order, 3).unwrap();
    }
    let mut ledger = QuotaLedger::open(&path).unwrap();
    let err = ledger.reserve(&order, 2).unwrap_err();
    assert!(matches!(err, Error::QuotaExhausted { max: 10, used: 9, requested: 2, .. }), "{err}");
    let r = ledger.reserve(&order, 1).unwrap();
    ledger.release(r).unwrap();
    let usage = &ledger.report().unwrap()[0];
    assert_eq!((usage.max_count, usage.reserved, usage.issued, usage.remaining), (10, 9, 6, 1));
    assert_eq!(ledger.verify_audit().unwrap(), 6);
    // Registering the same order again is fine; a different document with the same id is not.
    ledger.register(&order).unwrap();
    let different = verified(&key, 11);
    assert!(matches!(ledger.register(&different), Err(Error::OrderConflict(_))));
}

#[test]
fn three_station_processes_racing_issue_exactly_the_authorised_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let key = oem();
    let order = verified(&key, 50);
    QuotaLedger::open(&path).unwrap().register(&order).unwrap();
    let handles: Vec<_> = (0..3)
        .map(|t| {
            let (path, order) = (path.clone(), order.clone());
            std::thread::spawn(move || {
                let mut ledger = QuotaLedger::open(&path).unwrap();
                let mut issued = 0;
                loop {
                    match ledger.reserve(&order, 3) {
                        Ok(mut r) => {
                            let recs = records(&format!("t{t}-{issued}-"), 3);
                            ledger.record_issued(&mut r, &recs, "2026-06-01T00:00:00Z").unwrap();
                            issued += 3;
                        }
                        Err(Error::QuotaExhausted { .. }) => match ledger.reserve(&order, 1) {
                            Ok(mut r) => {
                                let recs = records(&format!("t{t}-{issued}-"), 1);
                                ledger.record_issued(&mut r, &recs, "2026-06-01T00:00:00Z").unwrap();
                                issued += 1;
                            }
                            Err(Error::QuotaExhausted { .. }) => return issued,
                            Err(e) => panic!("{e}"),
                        },
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 50);
    let ledger = QuotaLedger::open(&path).unwrap();
    assert_eq!(ledger.verify_audit().unwrap(), 50);
    assert_eq!(ledger.report().unwrap()[0].issued, 50);
}

#[test]
fn audit_tampering_is_named_at_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let key = oem();
    let order = verified(&key, 10);
    let mut ledger = QuotaLedger::open(&path).unwrap();
    ledger.register(&order).unwrap();
    let mut r = ledger.reserve(&order, 5).unwrap();
    ledger.record_issued(&mut r, &records("s", 5), "2026-06-01T00:00:00Z").unwrap();
    drop(ledger);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE audit SET device_id = 'clone' WHERE row = 3", []).unwrap();
    drop(conn);
    let err = QuotaLedger::open(&path).unwrap().verify_audit().unwrap_err();
    assert!(matches!(err, Error::AuditTampered { row: 3, .. }), "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE audit SET device_id = 's-2' WHERE row = 3", []).unwrap();
    conn.execute("DELETE FROM audit WHERE row = 4", []).unwrap();
    drop(conn);
    let err = QuotaLedger::open(&path).unwrap().verify_audit().unwrap_err();
    assert!(matches!(err, Error::AuditTampered { row: 4, .. }), "{err}");
}

#[test]
fn console_passwords_are_stable_distinct_and_checked_with_a_lockout() {
    let se = MemorySe::new();
    let secret = Label::new("factory-console").unwrap();
    se.generate_key(&secret, KeyAlgorithm::Secret256).unwrap();
    let a = console_password(&se, &secret, "cam-1").unwrap();
    assert_eq!(a, console_password(&se, &secret, "cam-1").unwrap(), "stable across calls");
    assert_ne!(a, console_password(&se, &secret, "cam-2").unwrap());
    assert_eq!(a.len(), 19);
    assert!(a.chars().all(|c| c == '-' || "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c)), "{}", a.as_str());

    let mut guard = ConsoleGuard::new(a.clone(), 0, 3);
    assert!(guard.check(&a.to_lowercase()).unwrap(), "case and dashes are forgiven");
    assert!(!guard.check("0000-0000-0000-0000").unwrap());
    assert!(!guard.check("").unwrap());
    assert!(!guard.check("x").unwrap());
    assert_eq!(guard.failures(), 3);
    assert!(matches!(guard.check(&a), Err(Error::ConsoleLocked(3))), "locked even for the right password");
}
