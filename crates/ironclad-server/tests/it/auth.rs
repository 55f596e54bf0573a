//! Device authentication over real TLS on loopback: success on both TLS versions, and every
//! refusal with one coarse error on the wire and its precise reason in the audit log.

use ironclad_agent::TlsVersions;
use ironclad_pki::RevocationReason;
use ironclad_proto::{Challenge, auth_message};

use crate::common::*;

async fn happy_path(tls: TlsVersions, expect: &str) {
    let pki = TestPki::new("Acme", 1);
    let mut srv = TestServer::start().await;
    srv.tls = tls;
    srv.enroll_line(&pki, 0).await;
    let dev = pki.device(0, "cam-1");
    let mut conn = srv.connect(&dev).await;
    assert_eq!(conn.protocol_version().as_deref(), Some(expect));
    let session = conn.authenticate().await.unwrap();
    assert_eq!(session.device_id(), "cam-1");
    assert!(session.remaining().as_secs() > 500);
    let state = conn.put_state(serde_json::json!({"fw": "1.2.3"})).await.unwrap();
    assert_eq!(state.version, 1);
    let state = conn.get_state().await.unwrap();
    assert_eq!(state.data["fw"], "1.2.3");
    // Re-authentication on the kept connection works too.
    conn.authenticate().await.unwrap();
    let registered = srv.store.device("cam-1").await.unwrap().unwrap();
    assert_eq!(registered.auth_count, 2);
    assert_eq!(registered.serial, dev.record.serial);
    let ok = srv.audit().await.into_iter().filter(|e| e.record.event == "device.session").count();
    assert_eq!(ok, 2);
    srv.server.shutdown().await;
}

#[tokio::test]
async fn device_authenticates_over_tls13() {
    happy_path(TlsVersions::Tls13, "TLSv1_3").await;
}

#[tokio::test]
async fn device_authenticates_over_tls12() {
    happy_path(TlsVersions::Tls12, "TLSv1_2").await;
}

#[tokio::test]
async fn replayed_answer_is_refused() {
    let pki = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    srv.enroll_line(&pki, 0).await;
    let dev = pki.device(0, "cam-1");
    let mut conn = srv.connect(&dev).await;
    let c = conn.request_challenge().await.unwrap();
    let sig = conn.sign_challenge(&c.challenge).unwrap();
    conn.answer(&c.challenge_id, sig.clone()).await.unwrap();
    assert_auth_failed(conn.answer(&c.challenge_id, sig).await);
    assert_eq!(srv.reasons("cam-1").await[0], "challenge_replayed");
    // An invented challenge ID is unknown.
    let sig = conn.sign_challenge(&Challenge::from([0; 32])).unwrap();
    assert_auth_failed(conn.answer(&"ab".repeat(16), sig).await);
    assert_eq!(srv.reasons("cam-1").await[0], "challenge_unknown");
}

#[tokio::test]
async fn expired_challenge_is_refused() {
    let pki = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    srv.enroll_line(&pki, 0).await;
    let dev = pki.device(0, "cam-1");
    let mut conn = srv.connect(&dev).await;
    let c = conn.request_challenge().await.unwrap();
    assert_eq!(c.expires_in, 60);
    srv.clock.advance(61);
    let sig = conn.sign_challenge(&c.challenge).unwrap();
    assert_auth_failed(conn.answer(&c.challenge_id, sig).await);
    assert_eq!(srv.reasons("cam-1").await[0], "challenge_expired");
    // A fresh one at the new time works.
    conn.authenticate().await.unwrap();
}

#[tokio::test]
async fn answer_relayed_into_another_session_is_refused() {
    let pki = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    srv.enroll_line(&pki, 0).await;
    let dev = pki.device(0, "cam-1");
    let mut first = srv.connect(&dev).await;
    let mut second = srv.connect(&dev).await;
    assert_ne!(first.exporter(), second.exporter(), "each TLS session has its own exporter");
    let c = first.request_challenge().await.unwrap();
    let sig = first.sign_challenge(&c.challenge).unwrap();
    assert_auth_failed(second.answer(&c.challenge_id, sig.clone()).await);
    assert_eq!(srv.reasons("cam-1").await[0], "challenge_cross_session");
    // The relay attempt used the challenge up: the genuine session cannot use it either.
    assert_auth_failed(first.answer(&c.challenge_id, sig).await);
    assert_eq!(srv.reasons("cam-1").await[0], "challenge_replayed");

    // Another device relaying this device's challenge, even signed for its own session.
    let other = pki.device(0, "cam-2");
    let mut thief = srv.connect(&other).await;
    let c = first.request_challenge().await.unwrap();
    let sig = thief.sign_challenge(&c.challenge).unwrap();
    assert_auth_failed(thief.answer(&c.challenge_id, sig).await);
    assert_eq!(srv.reasons("cam-2").await[0], "challenge_other_device");
}

#[tokio::test]
async fn signature_by_another_key_is_refused() {
    let pki = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    srv.enroll_line(&pki, 0).await;
    let dev = pki.device(0, "cam-1");
    let mut conn = srv.connect(&dev).await;
    let c = conn.request_challenge().await.unwrap();
    let wrong = ironclad_pki::KeyPair::generate().unwrap();
    let msg = auth_message(&c.challenge, conn.exporter());
    let sig = rcgen::SigningKey::sign(&wrong, &msg).unwrap();
    assert_auth_failed(conn.answer(&c.challenge_id, sig).await);
    assert_eq!(srv.reasons("cam-1").await[0], "signature_invalid");
    // Right key, wrong message (the bare challenge, no domain or session binding).
    let c = conn.request_challenge().await.unwrap();
    let bare = dev.identity.key().sign(ironclad_se::SignInput::Message(c.challenge.as_bytes())).unwrap();
    assert_auth_failed(conn.answer(&c.challenge_id, bare).await);
    assert_eq!(srv.reasons("cam-1").await[0], "signature_invalid");
}

#[tokio::test]
async fn revoked_certificate_is_refused_at_once() {
    let pki = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    srv.enroll_line(&pki, 0).await;
    let dev = pki.device(0, "cam-1");
    let mut conn = srv.connect(&dev).await;
    conn.authenticate().await.unwrap();
    conn.get_state().await.unwrap();
    assert!(srv.server.registry().revoke(&dev.record.serial, RevocationReason::KeyCompromise).await.unwrap());
    // The live session dies with the certificate...
    assert_auth_failed(conn.get_state().await);
    // ...and no new one is issued.
    assert_auth_failed(conn.request_challenge().await);
    let reasons = srv.audit().await.into_iter().filter_map(|e| e.record.reason).collect::<Vec<_>>();
    assert_eq!(reasons[0], "revoked");
    assert_eq!(reasons[1], "revoked");
    // Other devices are unaffected.
    let mut other = srv.connect(&pki.device(0, "cam-2")).await;
    other.authenticate().await.unwrap();
}

#[tokio::test]
async fn unenrolled_device_of_a_trusted_ca_is_refused() {
    let pki = TestPki::new("Acme", 1);
    let root = pki.root.der().to_vec();
    let srv = TestServer::start_with(|b| b.trust_anchor(root)).await;
    let dev = pki.device(0, "cam-1");
    let mut conn = srv.connect(&dev).await;
    assert_auth_failed(conn.request_challenge().await);
    assert_eq!(srv.reasons("cam-1").await[0], "not_enrolled");
    // Enrolled individually by certificate, it is admitted.
    srv.server.registry().enroll_certificate(dev.record.pem().as_bytes(), true, "").await.unwrap();
    conn.authenticate().await.unwrap();
}

#[tokio::test]
async fn device_without_client_certificate_is_refused() {
    let srv = TestServer::start().await;
    let token = srv.admin_token().await;
    // The operator client sends no client certificate: device endpoints refuse it.
    let mut op = ironclad_agent::OperatorClient::connect(&srv.endpoint(), &token).await.unwrap();
    let r = op.call(hyper::Method::POST, ironclad_proto::paths::CHALLENGE, None).await;
    assert_auth_failed(r);
    let reasons: Vec<_> = srv.audit().await.into_iter().filter_map(|e| e.record.reason).collect();
    assert_eq!(reasons[0], "no_client_certificate");
}

#[tokio::test]
async fn session_expires_and_is_bound_to_its_certificate() {
    let pki = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    srv.enroll_line(&pki, 0).await;
    let a = pki.device(0, "cam-a");
    let b = pki.device(0, "cam-b");
    let mut conn_a = srv.connect(&a).await;
    let session = conn_a.authenticate().await.unwrap().clone();
    // A's token presented on B's mutual-TLS connection, for A's own resource.
    let mut conn_b = srv.connect(&b).await;
    conn_b.set_session(session);
    assert_auth_failed(conn_b.get_state_of("cam-a").await);
    assert_eq!(srv.reasons("cam-a").await[0], "session_other_certificate");
    // Expiry.
    srv.clock.advance(601);
    assert_auth_failed(conn_a.get_state().await);
    assert_eq!(srv.reasons("cam-a").await[0], "session_expired");
}

#[tokio::test]
async fn device_reads_and_writes_only_its_own_state() {
    let pki = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    srv.enroll_line(&pki, 0).await;
    let (a, b) = (pki.device(0, "cam-a"), pki.device(0, "cam-b"));
    let mut conn_a = srv.connect(&a).await;
    let mut conn_b = srv.connect(&b).await;
    conn_a.authenticate().await.unwrap();
    conn_b.authenticate().await.unwrap();
    conn_b.put_state(serde_json::json!({"owner": "b"})).await.unwrap();

    let forbidden = ironclad_proto::ErrorCode::Forbidden;
    assert_eq!(conn_a.get_state_of("cam-b").await.unwrap_err().wire_code(), Some(forbidden));
    let e = conn_a.put_state_of("cam-b", serde_json::json!({"owner": "a"})).await.unwrap_err();
    assert_eq!(e.wire_code(), Some(forbidden));
    assert_eq!(srv.reasons("cam-a").await[0], "other_device");

    let state_b = conn_b.get_state().await.unwrap();
    assert_eq!((state_b.version, state_b.data["owner"].as_str()), (1, Some("b")), "B's state untouched");
    assert_eq!(conn_a.get_state().await.unwrap().version, 0);
}

#[tokio::test]
async fn device_with_an_encrypted_directory_secure_element_authenticates() {
    use std::sync::Arc;

    use ironclad_se::{DirSe, KdfParams, KeyAlgorithm, KeyHandle, Label, SecureElement, Unlock};
    let pki = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    srv.enroll_line(&pki, 0).await;
    // As `ironclad demo` stores a device: a DirSe unlocked by a device-unique secret, the key
    // `device-auth`, and the sealed objects `device-cert` and `device-chain`.
    let dir = tempfile::tempdir().unwrap();
    let se: Arc<dyn SecureElement> = Arc::new(
        DirSe::create(dir.path().join("se"), &Unlock::device_secret(&[7; 32]), KdfParams::weak_for_tests())
            .unwrap(),
    );
    let label = Label::new("device-auth").unwrap();
    se.generate_key(&label, KeyAlgorithm::EcdsaP256).unwrap();
    let record = pki.issue(0, &KeyHandle::open(se.clone(), &label).unwrap(), "dev-0000001");
    se.put_object(&Label::new("device-cert").unwrap(), record.pem().as_bytes()).unwrap();
    let chain = format!("{}{}", pki.line(0).pem(), pki.root.pem());
    se.put_object(&Label::new("device-chain").unwrap(), chain.as_bytes()).unwrap();
    drop(se);

    let reopened: Arc<dyn SecureElement> =
        Arc::new(DirSe::open(dir.path().join("se"), &Unlock::device_secret(&[7; 32])).unwrap());
    let identity = ironclad_agent::DeviceIdentity::from_secure_element(reopened).unwrap();
    assert_eq!(identity.chain().len(), 3);
    let mut conn = ironclad_agent::DeviceConnection::connect(&srv.endpoint(), identity).await.unwrap();
    assert_eq!(conn.authenticate().await.unwrap().device_id(), "dev-0000001");
}
