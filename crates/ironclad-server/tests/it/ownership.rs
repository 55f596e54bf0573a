//! Device ownership and the key vault over real TLS: an owner's claim code redeemed by the
//! device, media keys served to the device, its owner and operators only, rotation, and the
//! master key in a secure element that persists across restarts.

use std::sync::Arc;

use ironclad_agent::OperatorClient;
use ironclad_proto::ErrorCode;
use ironclad_se::{DirSe, KdfParams, MemorySe, SecureElement, Unlock};
use ironclad_server::Role;
use ironclad_server::store::{KeyMaterial, KeyUsage, SqliteStore, Store};
use zeroize::Zeroizing;

use crate::common::*;

async fn token(server: &TestServer, name: &str, role: Role) -> OperatorClient {
    let secret = server.server.registry().create_api_token(name, role).await.unwrap().secret.to_string();
    OperatorClient::connect(&server.endpoint(), &secret).await.unwrap()
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(r: Result<T, ironclad_agent::Error>, code: ErrorCode) {
    match r {
        Err(e) => assert_eq!(e.wire_code(), Some(code), "{e}"),
        Ok(v) => panic!("expected {code:?}, got {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_claims_a_device_and_reads_only_its_media_keys() {
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let server = TestServer::start_with(|b| b.secure_element(se)).await;
    let pki = TestPki::new("Own", 1);
    server.enroll_line(&pki, 0).await;
    let (cam_a, cam_b) = (pki.device(0, "cam-a"), pki.device(0, "cam-b"));
    let mut alice = token(&server, "alice", Role::Owner).await;
    let mut bob = token(&server, "bob", Role::Owner).await;

    let code = alice.new_claim_code().await.unwrap();
    assert_eq!(code.code.len(), 32);
    let mut a = server.connect(&cam_a).await;
    a.authenticate().await.unwrap();
    let claimed = a.claim(&code.code).await.unwrap();
    assert_eq!((claimed.device_id.as_str(), claimed.owner.as_str()), ("cam-a", "alice"));

    let key = a.media_key("front").await.unwrap();
    assert_eq!(key.key_hex.len(), 32, "AES-128");
    assert_eq!(key.key_id, "media:cam-a/front:v1");
    assert_eq!(a.media_key("front").await.unwrap().key_hex, key.key_hex, "stable until rotated");
    assert_ne!(a.media_key("back").await.unwrap().key_hex, key.key_hex, "one key per stream");
    assert_eq!(
        alice.owned_devices().await.unwrap().iter().map(|d| d.device_id.clone()).collect::<Vec<_>>(),
        ["cam-a"]
    );
    assert_eq!(alice.owner_media_key("cam-a", "front").await.unwrap().key_hex, key.key_hex);

    // Nobody else: another owner, an owner asking for a device it does not own, another device.
    assert_code(bob.owner_media_key("cam-a", "front").await, ErrorCode::Forbidden);
    assert_code(alice.owner_media_key("cam-b", "front").await, ErrorCode::Forbidden);
    let mut b = server.connect(&cam_b).await;
    b.authenticate().await.unwrap();
    assert_code(b.media_key_of("cam-a", "front").await, ErrorCode::Forbidden);
    assert!(a.media_key("../etc").await.is_err(), "no route outside the device");
    assert_code(a.media_key("a%20b").await, ErrorCode::BadRequest);

    // Claim codes are single-use and expire; a claimed device cannot be taken by another owner.
    assert_auth_failed(b.claim(&code.code).await);
    let bobs = bob.new_claim_code().await.unwrap();
    assert_auth_failed(a.claim(&bobs.code).await);
    // bob's unspent code still works for a device nobody owns.
    assert_eq!(b.claim(&bobs.code).await.unwrap().owner, "bob");
    let late = bob.new_claim_code().await.unwrap();
    server.clock.advance(601);
    let mut b = server.connect(&cam_b).await;
    b.authenticate().await.unwrap();
    assert_auth_failed(b.claim(&late.code).await);
    assert_auth_failed(b.claim("00000000000000000000000000000000").await);
    let reasons = server.reasons("cam-b").await;
    for reason in ["claim_code_used", "claim_code_expired", "claim_code_unknown"] {
        assert!(reasons.iter().any(|r| r == reason), "{reason} audited: {reasons:?}");
    }
    assert!(server.reasons("cam-a").await.iter().any(|r| r == "claim_owned_by_another"));

    // Roles: owners reach no operator endpoint, operators no owner endpoint.
    assert_code(alice.keys(None).await, ErrorCode::Forbidden);
    assert_code(alice.operator_media_key("cam-a", "front").await, ErrorCode::Forbidden);
    let mut ops = token(&server, "ops", Role::Operator).await;
    assert_code(ops.new_claim_code().await, ErrorCode::Forbidden);
    assert_eq!(ops.operator_media_key("cam-a", "front").await.unwrap().key_hex, key.key_hex);
    assert_code(ops.operator_media_key("never-seen", "front").await, ErrorCode::NotFound);
    let audit = server.audit().await;
    for event in ["media.key.device", "media.key.owner", "media.key.operator", "device.claim"] {
        assert!(audit.iter().any(|e| e.record.event == event), "{event} audited");
    }
    assert!(audit.iter().all(|e| !e.record.detail.contains(&key.key_hex)), "no key in the audit log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_sealed_listed_without_material_and_rotated() {
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let server = TestServer::start_with(|b| b.secure_element(se)).await;
    let pki = TestPki::new("Vault", 1);
    server.enroll_line(&pki, 0).await;
    let cam = pki.device(0, "cam-v");
    let mut conn = server.connect(&cam).await;
    conn.authenticate().await.unwrap();
    let v1 = conn.media_key("front").await.unwrap();
    let vault = server.server.vault().unwrap();
    vault.current(KeyUsage::Log, "cam-v").await.unwrap();
    let (signing, handle) = vault.signer(KeyUsage::CommandSigning).await.unwrap();
    assert!(matches!(signing.material, KeyMaterial::InSecureElement { .. }));
    assert_eq!(
        handle.public_key().spki_der().unwrap(),
        match &signing.material {
            KeyMaterial::InSecureElement { public_key, .. } => public_key.clone(),
            KeyMaterial::Sealed { .. } => unreachable!(),
        }
    );

    // At rest: sealed, not the key.
    let stored = server.store.managed_key(&v1.key_id).await.unwrap().unwrap();
    let KeyMaterial::Sealed { sealed } = &stored.material else { panic!("media keys are sealed") };
    let raw = hex::decode(&v1.key_hex).unwrap();
    assert!(!sealed.windows(raw.len()).any(|w| w == raw.as_slice()), "sealed blob holds no plaintext key");
    // A sealed key moved to another subject does not open (its id is bound in).
    let mut moved = stored.clone();
    moved.id = "media:cam-x/front:v1".into();
    moved.subject = "cam-x/front".into();
    assert!(vault.secret(&moved, KeyUsage::Media).is_err());
    assert!(vault.secret(&stored, KeyUsage::Log).is_err(), "usage enforced");

    let mut admin = OperatorClient::connect(&server.endpoint(), &server.admin_token().await).await.unwrap();
    let listed = admin.keys(None).await.unwrap();
    let text = listed.to_string();
    assert!(!text.contains(&v1.key_hex) && !text.contains(&hex::encode(sealed)), "listing holds no material");
    let usages: Vec<&str> = listed.as_array().unwrap().iter().map(|k| k["usage"].as_str().unwrap()).collect();
    assert_eq!(usages, ["command-signing", "log", "media"]);

    let rotated = admin.rotate_key("media", "cam-v/front").await.unwrap();
    assert_eq!(rotated["id"], "media:cam-v/front:v2");
    let v2 = conn.media_key("front").await.unwrap();
    assert_eq!(v2.key_id, "media:cam-v/front:v2");
    assert_ne!(v2.key_hex, v1.key_hex);
    let media = admin.keys(Some("media")).await.unwrap();
    let media = media.as_array().unwrap();
    assert_eq!(media.len(), 2);
    assert!(media[0]["retired_at"].is_i64() && media[1]["retired_at"].is_null());
    assert_code(admin.rotate_key("firmware", "").await, ErrorCode::BadRequest);
    let mut viewer = token(&server, "viewer", Role::Viewer).await;
    assert_code(viewer.rotate_key("media", "cam-v/front").await, ErrorCode::Forbidden);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_lives_in_the_secure_element_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let unlock = Unlock::Passphrase(Zeroizing::new("vault test".into()));
    let pki = TestPki::new("Restart", 1);
    let cam = pki.device(0, "cam-r");
    let mut first = None;
    for round in 0..2 {
        let se: Arc<dyn SecureElement> = Arc::new(
            DirSe::open_or_create(dir.path().join("se"), &unlock, KdfParams::weak_for_tests()).unwrap(),
        );
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("registry.sqlite")).unwrap());
        let server = TestServer::start_on(store, None, |b| b.secure_element(se)).await;
        if round == 0 {
            server.enroll_line(&pki, 0).await;
        }
        let mut conn = server.connect(&cam).await;
        conn.authenticate().await.unwrap();
        let key = conn.media_key("front").await.unwrap();
        match &first {
            None => first = Some(key.key_hex),
            Some(k) => assert_eq!(&key.key_hex, k, "the same key after a restart"),
        }
        server.server.shutdown().await;
    }
    // Without the secure element, the sealed keys are useless: another element cannot open them.
    let other: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("registry.sqlite")).unwrap());
    let server = TestServer::start_on(store, None, |b| b.secure_element(other)).await;
    let mut conn = server.connect(&cam).await;
    conn.authenticate().await.unwrap();
    assert_code(conn.media_key("front").await, ErrorCode::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_vault_key_endpoints_are_unavailable() {
    let server = TestServer::start().await;
    let pki = TestPki::new("NoVault", 1);
    server.enroll_line(&pki, 0).await;
    let mut conn = server.connect(&pki.device(0, "cam-n")).await;
    conn.authenticate().await.unwrap();
    assert_code(conn.media_key("front").await, ErrorCode::Unavailable);
}
