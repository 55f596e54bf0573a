//! Signed commands, signed telemetry and encrypted logs over real mutual TLS: the server signs
//! with its vault key, the device's gate checks every command against the pinned server key,
//! outcomes come back as telemetry signed in the device's secure element, and log files are
//! stored as ciphertext and decrypted only for an operator.

use std::sync::Arc;

use ironclad_agent::{
    CommandGate, DeviceIdentity, Error as AgentError, LogSync, LogWriter, OperatorClient, SeCoseSigner,
    install_log_key, load_log_key,
};
use ironclad_proto::{CborValue, CommandRefusal, LogEntry, LogLevel, Telemetry};
use ironclad_se::{KeyAlgorithm, KeyHandle, KeyStore, Label, MemorySe, SecureElement};
use ironclad_server::{Clock, Role};
use serde_json::{Value, json};

use crate::common::*;

/// A device whose secure element also holds an X25519 agreement key (`fw-decrypt`).
fn device_with_se(pki: &TestPki, device_id: &str) -> (TestDevice, Arc<dyn SecureElement>) {
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let label = Label::new(ironclad_agent::KEY_LABEL).unwrap();
    se.generate_key(&label, KeyAlgorithm::EcdsaP256).unwrap();
    se.generate_key(&Label::new("fw-decrypt").unwrap(), KeyAlgorithm::X25519).unwrap();
    let key = KeyHandle::open(se.clone(), &label).unwrap();
    let record = pki.issue(0, &key, device_id);
    let chain = format!("{}{}", pki.line(0).pem(), pki.root.pem());
    se.put_object(&Label::new(ironclad_agent::CERT_OBJECT).unwrap(), record.pem().as_bytes()).unwrap();
    se.put_object(&Label::new(ironclad_agent::CHAIN_OBJECT).unwrap(), chain.as_bytes()).unwrap();
    let identity = DeviceIdentity::from_secure_element(se.clone()).unwrap();
    (TestDevice { identity, record }, se)
}

fn telemetry(se: &Arc<dyn SecureElement>, device_id: &str, sequence: u64, data: Value) -> Vec<u8> {
    let key = KeyHandle::open(se.clone(), &Label::new(ironclad_agent::KEY_LABEL).unwrap()).unwrap();
    let t = Telemetry {
        device_id: device_id.to_owned(),
        sequence,
        time: 1,
        data: CborValue::serialized(&data).unwrap(),
    };
    t.sign(&SeCoseSigner::new(key).unwrap()).unwrap()
}

fn refusal(r: Result<impl std::fmt::Debug, AgentError>) -> CommandRefusal {
    match r {
        Err(AgentError::CommandRefused { refusal, .. }) => refusal,
        other => panic!("expected a refused command, got {other:?}"),
    }
}

async fn start() -> (TestServer, TestPki, OperatorClient) {
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let server = TestServer::start_with(|b| b.secure_element(se)).await;
    let pki = TestPki::new("Msg", 1);
    server.enroll_line(&pki, 0).await;
    let secret = server.server.registry().create_api_token("ops", Role::Operator).await.unwrap().secret;
    let ops = OperatorClient::connect(&server.endpoint(), &secret).await.unwrap();
    (server, pki, ops)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_commands_run_once_and_every_forgery_is_refused_and_reported() {
    let (server, pki, mut ops) = start().await;
    let (cam, se) = device_with_se(&pki, "cam-c");
    let (other, _) = device_with_se(&pki, "cam-o");
    let mut conn = server.connect(&cam).await;
    conn.authenticate().await.unwrap();
    let keys = conn.server_keys("command-signing").await.unwrap();
    assert_eq!(keys.len(), 1, "one command key, pinned at first contact");
    let gate = CommandGate::new(se.clone(), "cam-c", keys.clone()).unwrap();
    let path = "/v1/registry/devices/cam-c/commands";

    let first = ops
        .call(hyper::Method::POST, path, Some(&json!({"name": "reboot", "args": {"delay": 5}})))
        .await
        .unwrap();
    let second =
        ops.call(hyper::Method::POST, path, Some(&json!({"name": "set-led", "args": "blue"}))).await.unwrap();
    assert_eq!((first["sequence"].as_u64(), second["sequence"].as_u64()), (Some(1), Some(2)));
    let now = server.clock.unix() as u64;
    let fetched = conn.poll_commands(0).await.unwrap();
    assert_eq!(fetched.len(), 2);

    // Out of order: 2 first is fine (strictly increasing), then 1 is stale.
    let two = gate.check(&fetched[1].cose, now).unwrap();
    assert_eq!((two.command().name.as_str(), two.command().sequence), ("set-led", 2));
    assert_eq!(refusal(gate.check(&fetched[0].cose, now)), CommandRefusal::Stale);
    assert_eq!(refusal(gate.check(&fetched[1].cose, now)), CommandRefusal::Replayed);
    assert_eq!(gate.last_accepted().unwrap(), 2, "kept in the secure element's counter");

    let third = ops.call(hyper::Method::POST, path, Some(&json!({"name": "reboot"}))).await.unwrap();
    let cmd = conn.poll_commands(2).await.unwrap().pop().unwrap();
    assert_eq!(cmd.sequence, third["sequence"].as_u64().unwrap());
    // Altered in transit: every byte flip of the payload is refused.
    let mut altered = cmd.cose.clone();
    let at = altered.len() / 2;
    altered[at] ^= 0x01;
    assert!(matches!(gate.check(&altered, now), Err(AgentError::CommandRefused { .. })));
    // Retargeted: another device's gate refuses it; expired: refused after its expiry.
    let other_se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let other_gate = CommandGate::new(other_se, "cam-o", keys.clone()).unwrap();
    assert_eq!(refusal(other_gate.check(&cmd.cose, now)), CommandRefusal::WrongTarget);
    assert_eq!(refusal(gate.check(&cmd.cose, now + 301)), CommandRefusal::Expired);
    // Signed by another key (a forger with a look-alike kid): refused.
    let forged_keys = {
        let other_server = MemorySe::new();
        let l = Label::new("k").unwrap();
        let public = other_server.generate_key(&l, KeyAlgorithm::EcdsaP256).unwrap();
        let mut k = ironclad_proto::TrustedKeys::new();
        let kid = keys_kid(&cmd.cose);
        k.insert(kid, ironclad_proto::VerifyingKey::from_spki_der(&public.spki_der().unwrap()).unwrap());
        k
    };
    let fooled = CommandGate::new(Arc::new(MemorySe::new()), "cam-c", forged_keys).unwrap();
    assert_eq!(refusal(fooled.check(&cmd.cose, now)), CommandRefusal::BadSignature);
    // The genuine one runs, once; the device reports both outcomes as signed telemetry.
    gate.check(&cmd.cose, now).unwrap();
    conn.post_telemetry(telemetry(&se, "cam-c", 1, json!({"command": 2, "outcome": "executed"})))
        .await
        .unwrap();
    conn.post_telemetry(telemetry(&se, "cam-c", 2, json!({"command": 1, "outcome": "refused:stale"})))
        .await
        .unwrap();
    let listed = ops.call(hyper::Method::GET, path, None).await.unwrap();
    let status = |seq: u64| {
        listed.as_array().unwrap().iter().find(|c| c["sequence"] == seq).unwrap()["status"].clone()
    };
    assert_eq!(
        (status(1), status(2), status(3)),
        (json!("refused:stale"), json!("executed"), json!("pending"))
    );

    // Telemetry: a replay, another device's key, another device's name: refused, nothing kept.
    let replay = conn.post_telemetry(telemetry(&se, "cam-c", 2, json!({"temp": 40}))).await;
    assert_eq!(replay.unwrap_err().wire_code(), Some(ironclad_proto::ErrorCode::Conflict));
    let mut other_conn = server.connect(&other).await;
    other_conn.authenticate().await.unwrap();
    let wrong_key = other_conn.post_telemetry(telemetry(&se, "cam-c", 9, json!({}))).await;
    assert!(wrong_key.is_err(), "signed by cam-c's key on cam-o's connection");
    let stored = ops.call(hyper::Method::GET, "/v1/registry/devices/cam-c/telemetry", None).await.unwrap();
    assert_eq!(stored.as_array().unwrap().len(), 2);
    // Commands of one device are not another's to read; operators only issue.
    assert!(other_conn.poll_commands_of("cam-c", 0).await.is_err());
    let owner = server.server.registry().create_api_token("own", Role::Viewer).await.unwrap().secret;
    let mut viewer = OperatorClient::connect(&server.endpoint(), &owner).await.unwrap();
    assert!(viewer.call(hyper::Method::POST, path, Some(&json!({"name": "x"}))).await.is_err());
}

/// The kid in a COSE_Sign1's protected header, read back through proto's parser.
fn keys_kid(cose: &[u8]) -> Vec<u8> {
    ironclad_proto::SignedCommand::parse(cose, &ironclad_proto::Limits::default()).unwrap().kid().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_ciphertext_on_disk_and_readable_by_an_operator() {
    let (server, pki, mut ops) = start().await;
    let (cam, se) = device_with_se(&pki, "cam-l");
    let mut conn = server.connect(&cam).await;
    conn.authenticate().await.unwrap();
    let fw = Label::new("fw-decrypt").unwrap();
    let public = se.key_info(&fw).unwrap().public;
    let (key_id, delivery) = conn.request_log_key(public.as_bytes()).await.unwrap();
    assert_eq!(key_id, "log:cam-l:v1");
    assert_eq!(install_log_key(&se, &fw, "cam-l", &delivery).unwrap(), key_id);
    // Another device cannot unwrap it.
    let (_, other_se) = device_with_se(&pki, "cam-x");
    assert!(install_log_key(&other_se, &fw, "cam-l", &delivery).is_err());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sd-card.log");
    let mut writer = LogWriter::open(&path, load_log_key(&se).unwrap(), "cam-l", LogSync::Manual).unwrap();
    for i in 0..20 {
        let entry = LogEntry {
            time: 1_000 + i,
            level: LogLevel::Info,
            message: format!("door opened by SECRET-VISITOR-{i}"),
        };
        writer.append(&entry).unwrap();
    }
    drop(writer);
    let file = std::fs::read(&path).unwrap();
    assert!(!file.windows(14).any(|w| w == b"SECRET-VISITOR"), "no plaintext on the card");
    let up = conn.upload_log(file.clone()).await.unwrap();
    let report = ops.call(hyper::Method::GET, &format!("/v1/logs/{}", up.upload_id), None).await.unwrap();
    assert_eq!(report["intact"], true);
    assert_eq!(report["opened"], 20);
    assert_eq!(report["records"][7]["message"], "door opened by SECRET-VISITOR-7");

    // One record altered in the middle and the tail cut: detected, the rest readable.
    let mut damaged = file.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;
    damaged.truncate(damaged.len() - 7);
    let up = conn.upload_log(damaged).await.unwrap();
    let report = ops.call(hyper::Method::GET, &format!("/v1/logs/{}", up.upload_id), None).await.unwrap();
    assert_eq!(report["intact"], false);
    let statuses: Vec<&str> =
        report["records"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "ok").count(), 18, "{statuses:?}");
    assert!(statuses.contains(&"truncated"), "{statuses:?}");
    assert!(statuses.iter().any(|s| *s == "altered" || *s == "damaged"), "{statuses:?}");

    // Only operators read logs; a device cannot upload as another; garbage is refused.
    let viewer = server.server.registry().create_api_token("v", Role::Viewer).await.unwrap().secret;
    let mut viewer = OperatorClient::connect(&server.endpoint(), &viewer).await.unwrap();
    assert!(viewer.call(hyper::Method::GET, &format!("/v1/logs/{}", up.upload_id), None).await.is_err());
    assert!(conn.upload_log(b"not a log file at all, no magic".to_vec()).await.is_err());
    let audit = server.audit().await;
    assert!(audit.iter().any(|e| e.record.event == "log.read"));
    assert!(
        audit.iter().all(|e| !e.record.detail.contains("SECRET-VISITOR")),
        "no plaintext in the audit log"
    );
}
