//! Shared fixtures.

use ironclad_proto::hazmat::SoftwareSigner;
use ironclad_proto::{CborValue, Command, LogEntry, LogLevel, Manifest, SigAlg, TrustedKeys};

pub const NOW: u64 = 1_800_000_000;
pub const DEVICE: &str = "dev-0001";
pub const CLASS: &str = "cam-v2";

pub fn signer(alg: SigAlg) -> SoftwareSigner {
    SoftwareSigner::generate(alg).unwrap()
}

pub fn trust(kid: &[u8], s: &SoftwareSigner) -> TrustedKeys {
    TrustedKeys::single(kid.to_vec(), s.verifying_key())
}

pub fn manifest() -> Manifest {
    Manifest {
        version: "1.1.0+7".parse().unwrap(),
        security_counter: 3,
        image_size: 4 * 1024 * 1024,
        image_digest: [0xab; 32],
        issued_at: NOW - 10,
        expires: NOW + 3600,
        product_class: CLASS.to_owned(),
        image_id: "img-1.1.0".to_owned(),
    }
}

pub fn command(sequence: u64) -> Command {
    Command {
        target: DEVICE.to_owned(),
        sequence,
        issued_at: NOW - 5,
        expires: NOW + 300,
        name: "reboot".to_owned(),
        args: CborValue::Map(vec![(CborValue::Text("delay".into()), CborValue::Integer(5.into()))]),
    }
}

pub fn entry(i: u64) -> LogEntry {
    LogEntry {
        time: NOW + i,
        level: LogLevel::Info,
        message: format!("door sensor {i} opened; battery=87% secret-{i:04}"),
    }
}
