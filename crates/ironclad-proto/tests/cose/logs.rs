//! Encrypted log records and the log file format.

use ironclad_proto::{
    Error, FRAME_HEADER_LEN, LOG_FILE_HEADER_LEN, LogFileReport, LogKey, LogRecordOutcome, decrypt_record,
    encrypt_record, frame, log_file_header, log_resume_point, read_log_file,
};

use crate::common::*;

const FILE_ID: [u8; 16] = [7; 16];
const MAX: usize = 64 * 1024;

/// A file of `n` records and the offset of each frame.
fn file(key: &LogKey, n: u64) -> (Vec<u8>, Vec<usize>) {
    let mut out = log_file_header(&FILE_ID).to_vec();
    let mut offsets = Vec::new();
    for i in 0..n {
        offsets.push(out.len());
        let record = encrypt_record(key, DEVICE, &FILE_ID, i, &entry(i)).unwrap();
        out.extend_from_slice(&frame(i, &record).unwrap());
    }
    (out, offsets)
}

fn outcomes(report: &LogFileReport) -> Vec<String> {
    report
        .records
        .iter()
        .map(|r| match &r.outcome {
            LogRecordOutcome::Ok { sequence, .. } => format!("ok {sequence}"),
            LogRecordOutcome::Altered { sequence, .. } => format!("altered {sequence}"),
            LogRecordOutcome::Damaged { .. } => "damaged".into(),
            LogRecordOutcome::Truncated { .. } => "truncated".into(),
            LogRecordOutcome::Missing { first, last } => format!("missing {first}-{last}"),
            LogRecordOutcome::OutOfOrder { sequence, expected } => {
                format!("out-of-order {sequence}/{expected}")
            }
        })
        .collect()
}

fn oks(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|i| format!("ok {i}")).collect()
}

#[test]
fn round_trip_and_no_plaintext_on_disk() {
    // A key id that does not repeat the device id (the kid is stored in clear).
    let key = LogKey::generate("k1").unwrap();
    let (bytes, _) = file(&key, 20);
    let report = read_log_file(&bytes, &key, DEVICE, MAX).unwrap();
    assert!(report.is_intact());
    assert_eq!(report.file_id, FILE_ID);
    let entries: Vec<_> = report.entries().map(|(i, e)| (i, e.clone())).collect();
    assert_eq!(entries, (0..20).map(|i| (i, entry(i))).collect::<Vec<_>>());

    // No 8-byte window of any message (nor the device id, only in the AAD) appears in the stored bytes.
    for i in 0..20 {
        let msg = entry(i).message;
        for w in msg.as_bytes().windows(8) {
            assert!(!bytes.windows(8).any(|b| b == w), "plaintext {:?} on disk", String::from_utf8_lossy(w));
        }
    }
    assert!(!bytes.windows(DEVICE.len()).any(|b| b == DEVICE.as_bytes()));
}

#[test]
fn truncated_tail_leaves_earlier_records_readable() {
    let key = LogKey::generate("k").unwrap();
    let (bytes, offsets) = file(&key, 6);
    let last = offsets[5];
    for cut in [last + 1, last + 3, last + FRAME_HEADER_LEN - 1, last + FRAME_HEADER_LEN + 5, bytes.len() - 1]
    {
        let report = read_log_file(&bytes[..cut], &key, DEVICE, MAX).unwrap();
        let mut want = oks(0..5);
        want.push("truncated".into());
        assert_eq!(outcomes(&report), want, "cut at {cut}");
        let resume = log_resume_point(&bytes[..cut], MAX).unwrap();
        assert_eq!((resume.next_sequence, resume.valid_len), (5, last as u64));
    }
    // Cut exactly at a frame boundary: nothing is wrong.
    let report = read_log_file(&bytes[..last], &key, DEVICE, MAX).unwrap();
    assert_eq!(outcomes(&report), oks(0..5));
    let resume = log_resume_point(&bytes, MAX).unwrap();
    assert_eq!((resume.file_id, resume.next_sequence, resume.valid_len), (FILE_ID, 6, bytes.len() as u64));
}

#[test]
fn altered_middle_record_is_reported_and_neighbours_read() {
    let key = LogKey::generate("k").unwrap();
    let (bytes, offsets) = file(&key, 8);
    // A ciphertext byte of record 3.
    let mut altered = bytes.clone();
    altered[offsets[4] - 3] ^= 0x20;
    let report = read_log_file(&altered, &key, DEVICE, MAX).unwrap();
    let mut want = oks(0..3);
    want.push("altered 3".into());
    want.extend(oks(4..8));
    assert_eq!(outcomes(&report), want);
    assert!(matches!(
        &report.records[3].outcome,
        LogRecordOutcome::Altered { error: Error::DecryptFailed { .. }, .. }
    ));
    assert_eq!(report.records[3].offset, offsets[3] as u64);

    // The frame header of record 3 (its length): the reader resynchronises on record 4.
    let mut damaged = bytes.clone();
    damaged[offsets[3] + 14] ^= 0xff;
    let report = read_log_file(&damaged, &key, DEVICE, MAX).unwrap();
    let mut want = oks(0..3);
    want.extend(["damaged".to_owned(), "missing 3-3".to_owned()]);
    want.extend(oks(4..8));
    assert_eq!(outcomes(&report), want);

    // A frame header rewritten with a valid check but another sequence number: the record's
    // AAD still names 3, so it fails to decrypt.
    let record = &bytes[offsets[3] + FRAME_HEADER_LEN..offsets[4]];
    let mut moved = bytes[..offsets[3]].to_vec();
    moved.extend_from_slice(&frame(9, record).unwrap());
    moved.extend_from_slice(&bytes[offsets[4]..]);
    let report = read_log_file(&moved, &key, DEVICE, MAX).unwrap();
    let got = outcomes(&report);
    assert_eq!(&got[..4], ["ok 0", "ok 1", "ok 2", "missing 3-8"]);
    assert_eq!(got[4], "altered 9");
    assert_eq!(got[5], "out-of-order 4/10");
}

#[test]
fn removed_and_swapped_records_are_reported() {
    let key = LogKey::generate("k").unwrap();
    let (bytes, offsets) = file(&key, 5);
    let mut removed = bytes[..offsets[2]].to_vec();
    removed.extend_from_slice(&bytes[offsets[3]..]);
    let report = read_log_file(&removed, &key, DEVICE, MAX).unwrap();
    assert_eq!(outcomes(&report), ["ok 0", "ok 1", "missing 2-2", "ok 3", "ok 4"]);

    let mut swapped = bytes[..offsets[2]].to_vec();
    swapped.extend_from_slice(&bytes[offsets[3]..offsets[4]]);
    swapped.extend_from_slice(&bytes[offsets[2]..offsets[3]]);
    swapped.extend_from_slice(&bytes[offsets[4]..]);
    let report = read_log_file(&swapped, &key, DEVICE, MAX).unwrap();
    assert_eq!(
        outcomes(&report),
        ["ok 0", "ok 1", "missing 2-2", "ok 3", "out-of-order 2/4", "ok 2", "ok 4"]
    );
}

#[test]
fn records_are_bound_to_key_device_file_and_place() {
    let key = LogKey::generate("k").unwrap();
    let record = encrypt_record(&key, DEVICE, &FILE_ID, 3, &entry(3)).unwrap();
    assert_eq!(decrypt_record(&key, DEVICE, &FILE_ID, 3, &record, MAX).unwrap(), entry(3));
    let failed = Error::DecryptFailed { what: "log record" };
    assert_eq!(decrypt_record(&key, "dev-0002", &FILE_ID, 3, &record, MAX).unwrap_err(), failed);
    assert_eq!(decrypt_record(&key, DEVICE, &[8; 16], 3, &record, MAX).unwrap_err(), failed);
    assert_eq!(decrypt_record(&key, DEVICE, &FILE_ID, 4, &record, MAX).unwrap_err(), failed);
    // Same key id, other secret; other key id.
    let other = LogKey::generate("k").unwrap();
    assert_eq!(decrypt_record(&other, DEVICE, &FILE_ID, 3, &record, MAX).unwrap_err(), failed);
    let renamed = LogKey::from_secret("k2", key.secret_bytes()).unwrap();
    assert!(matches!(
        decrypt_record(&renamed, DEVICE, &FILE_ID, 3, &record, MAX).unwrap_err(),
        Error::UnknownKey { .. }
    ));
    // Oversized, trailing bytes.
    assert!(matches!(
        decrypt_record(&key, DEVICE, &FILE_ID, 3, &record, 10).unwrap_err(),
        Error::TooLarge { .. }
    ));
    let mut trailing = record.clone();
    trailing.push(0);
    assert!(matches!(
        decrypt_record(&key, DEVICE, &FILE_ID, 3, &trailing, MAX).unwrap_err(),
        Error::TrailingBytes { .. }
    ));
    // Each record gets a fresh IV: the same entry encrypts differently.
    let again = encrypt_record(&key, DEVICE, &FILE_ID, 3, &entry(3)).unwrap();
    assert_ne!(record, again);

    // A whole file read with the wrong key: every record is reported, none is readable.
    let (bytes, _) = file(&key, 4);
    let report = read_log_file(&bytes, &other, DEVICE, MAX).unwrap();
    assert_eq!(outcomes(&report), ["altered 0", "altered 1", "altered 2", "altered 3"]);
    assert_eq!(
        read_log_file(&bytes[..LOG_FILE_HEADER_LEN - 1], &key, DEVICE, MAX).unwrap_err(),
        Error::NotALogFile
    );
    assert_eq!(
        read_log_file(b"not a log file at all....", &key, DEVICE, MAX).unwrap_err(),
        Error::NotALogFile
    );
}

#[test]
fn log_key_debug_hides_the_secret() {
    let key = LogKey::from_secret("log-1", &[0x5a; 32]).unwrap();
    let text = format!("{key:?}");
    assert!(text.contains("log-1") && !text.contains("5a") && !text.contains("90"), "{text}");
    assert!(LogKey::from_secret("log-1", &[0; 31]).is_err());
    assert!(LogKey::from_secret("", &[0; 32]).is_err());
}
