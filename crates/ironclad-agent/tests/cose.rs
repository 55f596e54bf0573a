//! The device side of the COSE messages: the command gate with its durable sequence, the
//! encrypted log writer and log-key installation, against secure elements and pycose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ironclad_agent::{
    COMMAND_SEQUENCE_COUNTER, CommandGate, Error, LOG_KEY_OBJECT, LogSync, LogWriter, SeCoseSigner,
    install_log_key, load_log_key,
};
use ironclad_proto::hazmat::SoftwareSigner;
use ironclad_proto::{
    COMMAND_CONTENT_TYPE, CborValue, Command, CommandRefusal, Limits, LogEntry, LogKey, LogLevel,
    LogRecordOutcome, SigAlg, SignedTelemetry, Telemetry, TrustedKeys, VerifyingKey, read_log_file,
    wrap_log_key,
};
use ironclad_se::{DirSe, KdfParams, KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement, Unlock};

const DEVICE: &str = "dev-0042";
const NOW: u64 = 1_800_000_000;
const KID: &[u8] = b"command-key-1";

fn command(sequence: u64) -> Command {
    Command {
        target: DEVICE.into(),
        sequence,
        issued_at: NOW,
        expires: NOW + 60,
        name: "reboot".into(),
        args: CborValue::Null,
    }
}

fn refusal(r: ironclad_agent::Result<ironclad_proto::VerifiedCommand>) -> CommandRefusal {
    match r.unwrap_err() {
        Error::CommandRefused { refusal, .. } => refusal,
        other => panic!("expected a refusal, got {other}"),
    }
}

fn dir_se(path: &std::path::Path) -> Arc<dyn SecureElement> {
    Arc::new(DirSe::open_or_create(path, &Unlock::device_secret(&[7; 32]), KdfParams::default()).unwrap())
}

#[test]
fn gate_accepts_in_order_and_refuses_everything_else() {
    let server = SoftwareSigner::generate(SigAlg::Es256).unwrap();
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let gate =
        CommandGate::new(se.clone(), DEVICE, TrustedKeys::single(KID, server.verifying_key())).unwrap();
    assert_eq!(gate.last_accepted().unwrap(), 0);

    let c1 = command(1).sign(&server, KID).unwrap();
    assert_eq!(gate.check(&c1, NOW).unwrap().command(), &command(1));
    assert_eq!(refusal(gate.check(&c1, NOW)), CommandRefusal::Replayed);
    let c3 = command(3).sign(&server, KID).unwrap();
    let c2 = command(2).sign(&server, KID).unwrap();
    gate.check(&c3, NOW).unwrap();
    assert_eq!(refusal(gate.check(&c2, NOW)), CommandRefusal::Stale); // reordered
    assert_eq!(refusal(gate.check(&c1, NOW)), CommandRefusal::Stale); // old replay

    let mut other = command(4);
    other.target = "dev-0043".into();
    assert_eq!(refusal(gate.check(&other.sign(&server, KID).unwrap(), NOW)), CommandRefusal::WrongTarget);
    let c4 = command(4).sign(&server, KID).unwrap();
    assert_eq!(refusal(gate.check(&c4, NOW + 60)), CommandRefusal::Expired);
    let forged = command(4).sign(&SoftwareSigner::generate(SigAlg::Es256).unwrap(), KID).unwrap();
    assert_eq!(refusal(gate.check(&forged, NOW)), CommandRefusal::BadSignature);
    let mut altered = c4.clone();
    let at = altered.len() - 70; // inside the payload
    altered[at] ^= 1;
    assert!(matches!(
        refusal(gate.check(&altered, NOW)),
        CommandRefusal::BadSignature | CommandRefusal::Malformed
    ));
    assert_eq!(refusal(gate.check(&c4[..c4.len() - 1], NOW)), CommandRefusal::Malformed);
    let big = Limits { max_signed_len: 16, ..Limits::default() };
    let small_gate = CommandGate::new(se.clone(), DEVICE, TrustedKeys::single(KID, server.verifying_key()))
        .unwrap()
        .with_limits(big);
    assert_eq!(refusal(small_gate.check(&c4, NOW)), CommandRefusal::Malformed);
    // None of the refusals moved the counter; the in-time command still passes.
    assert_eq!(gate.last_accepted().unwrap(), 3);
    gate.check(&c4, NOW).unwrap();
    assert_eq!(se.counter(&Label::new(COMMAND_SEQUENCE_COUNTER).unwrap()).unwrap(), 4);
}

#[test]
fn accepted_sequence_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = SoftwareSigner::generate(SigAlg::EdDsa).unwrap();
    let keys = TrustedKeys::single(KID, server.verifying_key());
    let c7 = command(7).sign(&server, KID).unwrap();
    {
        let gate = CommandGate::new(dir_se(dir.path()), DEVICE, keys.clone()).unwrap();
        gate.check(&c7, NOW).unwrap();
    }
    // A new process: the replay is still refused.
    let gate = CommandGate::new(dir_se(dir.path()), DEVICE, keys).unwrap();
    assert_eq!(gate.last_accepted().unwrap(), 7);
    assert_eq!(refusal(gate.check(&c7, NOW)), CommandRefusal::Replayed);
    gate.check(&command(8).sign(&server, KID).unwrap(), NOW).unwrap();
}

#[test]
fn gate_accepts_pycose_signed_commands_only_with_the_right_key() {
    let Some(py) = ironclad_testkit::pycose::require_pycose() else { return };
    for alg in [SigAlg::Es256, SigAlg::EdDsa] {
        let server = SoftwareSigner::generate(alg).unwrap();
        let pkcs8 = server.to_pkcs8().unwrap();
        let sign = |key: &SoftwareSigner, seq| {
            let pkcs8 = key.to_pkcs8().unwrap();
            hex::decode(py.ok(&[
                "sign1",
                alg.name(),
                &hex::encode(&*pkcs8),
                &hex::encode(KID),
                COMMAND_CONTENT_TYPE,
                &hex::encode(command(seq).to_cbor()),
            ]))
            .unwrap()
        };
        assert!(!pkcs8.is_empty());
        let gate = CommandGate::new(
            Arc::new(MemorySe::new()),
            DEVICE,
            TrustedKeys::single(KID, server.verifying_key()),
        )
        .unwrap();
        let good = sign(&server, 1);
        assert_eq!(gate.check(&good, NOW).unwrap().command(), &command(1));
        let impostor = SoftwareSigner::generate(alg).unwrap();
        assert_eq!(refusal(gate.check(&sign(&impostor, 2), NOW)), CommandRefusal::BadSignature);
        assert_eq!(refusal(gate.check(&good, NOW)), CommandRefusal::Replayed);
    }
}

#[test]
fn telemetry_signed_inside_the_secure_element() {
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let id = Label::new("device-auth").unwrap();
    let public = se.generate_key(&id, KeyAlgorithm::EcdsaP256).unwrap();
    let signer = SeCoseSigner::new(KeyHandle::open(se.clone(), &id).unwrap()).unwrap();
    let t = Telemetry { device_id: DEVICE.into(), sequence: 1, time: NOW, data: CborValue::Bool(true) };
    let bytes = t.sign(&signer).unwrap();
    let key = VerifyingKey::from_spki_der(&public.spki_der().unwrap()).unwrap();
    let parsed = SignedTelemetry::parse(&bytes, &Limits::default()).unwrap();
    assert_eq!(parsed.device_id().unwrap(), DEVICE);
    assert_eq!(parsed.verify(&key).unwrap().telemetry(), &t);
}

fn entry(i: u64) -> LogEntry {
    LogEntry {
        time: NOW + i,
        level: LogLevel::Warn,
        message: format!("unlock attempt {i} from app; pin-hash=c0ffee{i:03}"),
    }
}

/// The device's SE with an X25519 key, and the server's delivery of a fresh log key to it.
fn device_with_log_key(se: &Arc<dyn SecureElement>) -> LogKey {
    let fw = Label::new("fw-decrypt").unwrap();
    let public = se.generate_key(&fw, KeyAlgorithm::X25519).unwrap();
    let key = LogKey::generate("log-1").unwrap();
    let delivery = wrap_log_key(&key, DEVICE, public.as_bytes()).unwrap();
    assert_eq!(install_log_key(se, &fw, DEVICE, &delivery).unwrap(), "log-1");
    // A delivery for another device, or a tampered one, is refused and changes nothing.
    assert!(install_log_key(se, &fw, "dev-0043", &delivery).is_err());
    key
}

#[test]
fn log_key_is_delivered_and_sealed_never_on_disk_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let se = dir_se(&dir.path().join("se"));
    let key = device_with_log_key(&se);
    let loaded = load_log_key(&se).unwrap();
    assert_eq!((loaded.id(), loaded.secret_bytes()), (key.id(), key.secret_bytes()));
    // The software secure element's files never hold the key bytes.
    for f in walk(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!bytes.windows(32).any(|w| w == key.secret_bytes()), "log key in clear in {}", f.display());
    }
    assert!(se.list_objects().unwrap().iter().any(|l| l.as_str() == LOG_KEY_OBJECT));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn log_writer_never_writes_plaintext_and_resumes_after_a_torn_write() {
    let dir = tempfile::tempdir().unwrap();
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    device_with_log_key(&se);
    let path = dir.path().join("device.log");
    {
        let mut w = LogWriter::open(&path, load_log_key(&se).unwrap(), DEVICE, LogSync::EveryRecord).unwrap();
        for i in 0..10 {
            assert_eq!(w.append(&entry(i)).unwrap(), i);
        }
    }
    let bytes = std::fs::read(&path).unwrap();
    for i in 0..10 {
        for win in entry(i).message.as_bytes().windows(6) {
            assert!(
                !bytes.windows(6).any(|b| b == win),
                "plaintext {:?} in the file",
                String::from_utf8_lossy(win)
            );
        }
    }
    // Simulate a power cut mid-append: half a frame at the end.
    let mut torn = bytes.clone();
    torn.extend_from_slice(&bytes[24..60]); // a frame header and part of its record
    std::fs::write(&path, &torn).unwrap();
    let key = load_log_key(&se).unwrap();
    let report = read_log_file(&torn, &key, DEVICE, 64 * 1024).unwrap();
    assert!(matches!(report.records.last().unwrap().outcome, LogRecordOutcome::Truncated { .. }));
    assert_eq!(report.entries().count(), 10);
    {
        let mut w = LogWriter::open(&path, key.clone(), DEVICE, LogSync::Manual).unwrap();
        assert_eq!(w.next_sequence(), 10);
        w.append(&entry(10)).unwrap();
        w.sync().unwrap();
    }
    let report = read_log_file(&std::fs::read(&path).unwrap(), &key, DEVICE, 64 * 1024).unwrap();
    assert!(report.is_intact(), "{:?}", report.records);
    let got: Vec<_> = report.entries().map(|(s, e)| (s, e.clone())).collect();
    assert_eq!(got, (0..11).map(|i| (i, entry(i))).collect::<Vec<_>>());

    // Altering one record in the middle leaves the others readable.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let report = read_log_file(&bytes, &key, DEVICE, 64 * 1024).unwrap();
    assert_eq!(report.entries().count(), 10);
    assert!(!report.is_intact());
}

#[test]
fn pycose_decrypts_a_record_from_the_device_log() {
    let Some(py) = ironclad_testkit::pycose::require_pycose() else { return };
    let dir = tempfile::tempdir().unwrap();
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let key = device_with_log_key(&se);
    let path = dir.path().join("device.log");
    let mut w = LogWriter::open(&path, load_log_key(&se).unwrap(), DEVICE, LogSync::EveryRecord).unwrap();
    w.append(&entry(0)).unwrap();
    drop(w);
    let bytes = std::fs::read(&path).unwrap();
    let file_id: [u8; 16] = bytes[8..24].try_into().unwrap();
    let record = &bytes[24 + 20..];
    let aad = ironclad_proto::log_external_aad(DEVICE, &file_id, 0);
    let plain =
        py.ok(&["decrypt0", &hex::encode(key.secret_bytes()), &hex::encode(aad), &hex::encode(record)]);
    let text = String::from_utf8_lossy(&hex::decode(plain).unwrap()).into_owned();
    assert!(text.contains(&entry(0).message), "{text}");
}
