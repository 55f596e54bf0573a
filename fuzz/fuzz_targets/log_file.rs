#![no_main]
// Reading a device log file (damaged, truncated, forged) must never panic, and resuming a
// writer on it must agree with what the reader found.
use ironclad_proto::{LogKey, log_resume_point, read_log_file};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let key = LogKey::from_secret("log:dev:v1", &[7; 32]).expect("key");
    if let Ok(report) = read_log_file(data, &key, "dev", 64 * 1024) {
        let _ = report.is_intact();
    }
    let _ = log_resume_point(data, 64 * 1024);
});
