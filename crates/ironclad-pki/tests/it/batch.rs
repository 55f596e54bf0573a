//! Batch issuance: mixed batches, duplicates within and across batches, progress.

use crate::common::*;
use ironclad_pki::*;

fn run(
    pki: &Pki,
    index: &mut dyn IssuedIndex,
    reqs: Vec<(String, Vec<u8>)>,
    chunk: usize,
) -> (BatchReport, Vec<BatchProgress>) {
    let mut seen = Vec::new();
    let report = issue_batch(
        reqs,
        &pki.issuer(),
        &profile(),
        index,
        now(),
        &BatchOptions::default().with_chunk_size(chunk),
        &mut |p| seen.push(p),
    )
    .unwrap();
    (report, seen)
}

#[test]
fn partial_failure_lists_each_bad_request_and_issues_the_rest() {
    let pki = Pki::p256();
    let mut index = SqliteIndex::open_in_memory().unwrap();
    let mut reqs: Vec<(String, Vec<u8>)> =
        (0..20).map(|i| (format!("ok-{i}.csr"), device(&format!("dev-{i:03}")).1)).collect();
    let (_, mut flipped) = device("dev-bad");
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    reqs.insert(3, ("flipped.csr".into(), flipped));
    reqs.insert(7, ("rsa1024.csr".into(), fixture("rsa1024.csr.pem")));
    reqs.insert(11, ("garbage.csr".into(), b"not a csr".to_vec()));
    reqs.push(("ed25519.csr".into(), fixture("ed25519.csr.pem")));

    let (report, progress) = run(&pki, &mut index, reqs, 4);
    assert_eq!(report.issued.len(), 21);
    assert!(report.skipped_existing.is_empty());
    let failed: Vec<(&str, String)> =
        report.failed.iter().map(|(n, e)| (n.as_str(), format!("{e:?}"))).collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(matches!(report.failed[0], (ref n, Error::CsrSignatureInvalid) if n == "flipped.csr"));
    assert!(matches!(report.failed[1], (ref n, Error::RsaKeyTooSmall { bits: 1024 }) if n == "rsa1024.csr"));
    assert!(matches!(report.failed[2], (ref n, Error::CsrMalformed { .. }) if n == "garbage.csr"));
    // Input order is kept for the issued certificates.
    let ids: Vec<&str> = report.issued.iter().map(|r| r.device_id.as_str()).collect();
    assert_eq!(ids[0], "dev-000");
    assert_eq!(ids[20], "ed-device-01");
    assert_eq!(index.count().unwrap(), 21);
    for r in &report.issued {
        assert_eq!(index.by_serial(&r.serial).unwrap().unwrap().record, *r);
    }
    // One report per chunk of 4 (24 requests) plus the final one.
    assert_eq!(progress.len(), 7);
    let last = progress.last().unwrap();
    assert_eq!((last.done, last.total, last.issued, last.failed), (24, 24, 21, 3));
    assert!(progress.windows(2).all(|w| w[0].done <= w[1].done));
}

#[test]
fn duplicates_inside_one_batch() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let (key, a) = device("dev-a");
    let same_key_new_request = csr(&key, "dev-a");
    let (_, other_key) = device("dev-a");
    let reqs = vec![
        ("a".to_owned(), a.clone()),
        ("b".to_owned(), device("dev-b").1),
        ("a-again".to_owned(), a),
        ("a-same-key".to_owned(), same_key_new_request),
        ("a-other-key".to_owned(), other_key),
    ];
    // Chunk size 2 puts the repeats in later chunks than the original.
    let (report, _) = run(&pki, &mut index, reqs, 2);
    assert_eq!(report.issued.len(), 2);
    let first = report.issued[0].clone();
    assert_eq!(
        report.skipped_existing,
        vec![("a-again".to_owned(), first.clone()), ("a-same-key".to_owned(), first.clone())]
    );
    assert_eq!(report.failed.len(), 1);
    match &report.failed[0] {
        (n, Error::DeviceIdTaken { device_id, existing_serial }) => {
            assert_eq!(n, "a-other-key");
            assert_eq!(device_id, "dev-a");
            assert_eq!(existing_serial, &first.serial);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(index.count().unwrap(), 2);
}

#[test]
fn rerunning_a_batch_issues_nothing_twice() {
    let pki = Pki::p256();
    let mut index = SqliteIndex::open_in_memory().unwrap();
    let reqs: Vec<(String, Vec<u8>)> =
        (0..10).map(|i| (format!("r{i}"), device(&format!("dev-{i}")).1)).collect();
    let (first, _) = run(&pki, &mut index, reqs.clone(), 3);
    assert_eq!(first.issued.len(), 10);
    let (second, _) = run(&pki, &mut index, reqs, 3);
    assert!(second.issued.is_empty());
    assert!(second.failed.is_empty());
    assert_eq!(second.skipped_existing.len(), 10);
    for ((name, rec), orig) in second.skipped_existing.iter().zip(&first.issued) {
        assert_eq!(rec, orig, "{name}");
    }
    assert_eq!(index.count().unwrap(), 10);
}

#[test]
fn device_taken_by_an_earlier_batch() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let existing = issue(&pki, &mut index, "dev-1");
    let (report, _) = run(&pki, &mut index, vec![("x".into(), device("dev-1").1)], 10);
    assert!(matches!(
        &report.failed[..],
        [(_, Error::DeviceIdTaken { existing_serial, .. })] if *existing_serial == existing.serial
    ));
}

#[test]
fn empty_batch() {
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let (report, progress) = run(&pki, &mut index, Vec::new(), 10);
    assert!(report.issued.is_empty() && report.failed.is_empty());
    assert_eq!(progress, vec![BatchProgress::default()]);
}

#[test]
fn issued_batch_certificates_verify() {
    let pki = Pki::with(&rcgen::PKCS_ED25519, &rcgen::PKCS_ECDSA_P256_SHA256);
    let mut index = MemoryIndex::new();
    let reqs: Vec<(&str, Vec<u8>)> = vec![("a", device("dev-a").1), ("b", device("dev-b").1)];
    let report = issue_batch(
        reqs,
        &pki.issuer(),
        &profile(),
        &mut index,
        now(),
        &BatchOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let verifier = pki.verifier();
    for r in &report.issued {
        let v = verifier.verify_device(&r.der, now(), &index).unwrap();
        assert_eq!(v.device_id(), r.device_id);
    }
}

#[test]
fn streaming_hands_out_each_committed_chunk() {
    let pki = Pki::p256();
    let mut index = SqliteIndex::open_in_memory().unwrap();
    let (_, repeat) = device("dev-r");
    let mut reqs: Vec<(String, Vec<u8>)> =
        (0..9).map(|i| (format!("r{i}"), device(&format!("dev-{i}")).1)).collect();
    reqs.insert(0, ("first".into(), repeat.clone()));
    reqs.push(("repeat".into(), repeat));
    let mut committed: Vec<Vec<IssuedRecord>> = Vec::new();
    let mut progress = Vec::new();
    let report = issue_batch_streaming(
        reqs,
        &pki.issuer(),
        &profile(),
        &mut index,
        now(),
        &BatchOptions::default().with_chunk_size(4),
        &mut |event| match event {
            BatchEvent::Committed(records) => {
                // Durable before it is handed out.
                committed.push(records);
            }
            BatchEvent::Progress(p) => progress.push(p),
        },
    )
    .unwrap();
    assert!(report.issued.is_empty());
    assert!(report.failed.is_empty());
    let sizes: Vec<usize> = committed.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    let all: Vec<&IssuedRecord> = committed.iter().flatten().collect();
    assert_eq!(all[0].device_id, "dev-r");
    assert_eq!(all[9].device_id, "dev-8");
    for r in &all {
        assert!(index.by_serial(&r.serial).unwrap().is_some());
    }
    assert_eq!(report.skipped_existing, vec![("repeat".to_owned(), all[0].clone())]);
    let last = progress.last().unwrap();
    assert_eq!((last.done, last.total, last.issued, last.skipped), (11, 11, 10, 1));
}
