//! The shared storage test suite: every backend runs these, through
//! [`store_suite_tests!`](crate::store_suite_tests).
#![allow(clippy::unwrap_used, missing_docs)]

use std::any::Any;
use std::sync::Arc;

use super::*;
use crate::error::Error;

mod crl;
pub use crl::*;
mod ota;
pub use ota::*;

/// A store under test plus whatever keeps it alive (a temp dir, a database cluster).
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub guard: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore").field("store", &self.store).finish_non_exhaustive()
    }
}

/// Instantiates every suite test for one backend. `$make` is an async expression yielding
/// `Option<TestStore>`; `None` skips (a peer tool is missing and not required).
#[macro_export]
macro_rules! store_suite_tests {
    ($make:expr) => {
        $crate::store_suite_tests!(@tests $make;
            enrollments_round_trip, lookup_by_keys, trusted_cas, import_is_atomic_and_idempotent,
            challenges_are_single_use, concurrent_consumption_has_one_winner, sessions_and_purge,
            devices_upsert, revocations, device_state_versions, audit_log, api_tokens,
            admission_in_one_call, open_session_writes_all_three, group_commit_keeps_failures_apart,
            managed_keys_rotate, claims_are_single_use, concurrent_claims_have_one_winner,
            commands_telemetry_and_logs,
            crls_publish_in_order_and_scope_their_entries, concurrent_crl_publications_keep_the_highest,
            ota_keys_and_releases, ota_rollouts, ota_offers_and_states);
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(t) = $make.await else { return };
                $crate::store::suite::$name(&t.store).await;
                drop(t);
            }
        )*
    };
}

fn h(n: u8) -> [u8; 32] {
    [n; 32]
}

pub fn enrollment(id: &str, key: MatchKey, status: EnrollmentStatus) -> Enrollment {
    Enrollment {
        id: id.to_owned(),
        key,
        status,
        device_id: Some(format!("dev-{id}")),
        der: Some(vec![1, 2, 3, id.len() as u8]),
        verification_code: (status == EnrollmentStatus::PendingProof).then(|| format!("code-{id}")),
        note: "note".into(),
        created_at: 100,
        updated_at: 100,
    }
}

pub async fn enrollments_round_trip(s: &Arc<dyn Store>) {
    let e = enrollment("e1", MatchKey::Ca(h(1)), EnrollmentStatus::PendingProof);
    s.insert_enrollment(&e).await.unwrap();
    assert_eq!(s.enrollment("e1").await.unwrap(), Some(e.clone()));
    assert_eq!(s.enrollment("nope").await.unwrap(), None);

    let same_key = Enrollment { id: "e2".into(), ..e.clone() };
    assert!(matches!(s.insert_enrollment(&same_key).await, Err(Error::Conflict(_))));
    let same_id = Enrollment { key: MatchKey::Ca(h(2)), ..e.clone() };
    assert!(matches!(s.insert_enrollment(&same_id).await, Err(Error::Conflict(_))));

    assert!(s.set_enrollment_status("e1", EnrollmentStatus::Enabled, 200).await.unwrap());
    let got = s.enrollment("e1").await.unwrap().unwrap();
    assert_eq!(got.status, EnrollmentStatus::Enabled);
    assert_eq!(got.verification_code, None, "the code is single-use: cleared when proof is done");
    assert_eq!(got.updated_at, 200);
    assert!(!s.set_enrollment_status("nope", EnrollmentStatus::Enabled, 200).await.unwrap());

    let other = enrollment("e3", MatchKey::Certificate(h(3)), EnrollmentStatus::Enabled);
    s.insert_enrollment(&other).await.unwrap();
    let ids: Vec<String> = s.list_enrollments().await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["e1", "e3"]);
    assert!(s.delete_enrollment("e1").await.unwrap());
    assert!(!s.delete_enrollment("e1").await.unwrap());
    assert_eq!(s.list_enrollments().await.unwrap().len(), 1);
}

pub async fn lookup_by_keys(s: &Arc<dyn Store>) {
    s.insert_enrollment(&enrollment("a", MatchKey::Certificate(h(1)), EnrollmentStatus::Enabled))
        .await
        .unwrap();
    s.insert_enrollment(&enrollment("b", MatchKey::PublicKey(h(1)), EnrollmentStatus::Disabled))
        .await
        .unwrap();
    s.insert_enrollment(&enrollment("c", MatchKey::Ca(h(1)), EnrollmentStatus::Enabled)).await.unwrap();
    s.insert_enrollment(&enrollment("d", MatchKey::Ca(h(2)), EnrollmentStatus::Enabled)).await.unwrap();
    let mut got = s
        .enrollments_by_keys(&[MatchKey::Certificate(h(1)), MatchKey::PublicKey(h(1)), MatchKey::Ca(h(9))])
        .await
        .unwrap();
    got.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(got[1].status, EnrollmentStatus::Disabled);
    // The same digest under another kind is another key.
    let got = s.enrollments_by_keys(&[MatchKey::Ca(h(1))]).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, "c");
    assert!(s.enrollments_by_keys(&[]).await.unwrap().is_empty());
}

pub async fn trusted_cas(s: &Arc<dyn Store>) {
    s.insert_enrollment(&enrollment("g1", MatchKey::Ca(h(1)), EnrollmentStatus::Enabled)).await.unwrap();
    s.insert_enrollment(&enrollment("g2", MatchKey::Ca(h(2)), EnrollmentStatus::Disabled)).await.unwrap();
    s.insert_enrollment(&enrollment("g3", MatchKey::Ca(h(3)), EnrollmentStatus::PendingProof)).await.unwrap();
    s.insert_enrollment(&enrollment("i1", MatchKey::Certificate(h(4)), EnrollmentStatus::Enabled))
        .await
        .unwrap();
    let ids: Vec<String> = s.trusted_group_cas().await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["g1", "g2"], "pending groups and individuals are not trust anchors");
}

pub async fn import_is_atomic_and_idempotent(s: &Arc<dyn Store>) {
    let rows: Vec<Enrollment> = (0..50u8)
        .map(|i| enrollment(&format!("m{i}"), MatchKey::Certificate(h(i)), EnrollmentStatus::Enabled))
        .collect();
    let c = s.import_enrollments(&rows).await.unwrap();
    assert_eq!((c.inserted, c.existing), (50, 0));
    // Again, with new IDs for the same keys plus 10 new ones: only the new ones go in.
    let again: Vec<Enrollment> = (0..60u8)
        .map(|i| enrollment(&format!("n{i}"), MatchKey::Certificate(h(i)), EnrollmentStatus::Enabled))
        .collect();
    let c = s.import_enrollments(&again).await.unwrap();
    assert_eq!((c.inserted, c.existing), (10, 50));
    // A batch with a clashing enrollment ID fails whole.
    let mut bad: Vec<Enrollment> = (100..110u8)
        .map(|i| enrollment(&format!("x{i}"), MatchKey::Certificate(h(i)), EnrollmentStatus::Enabled))
        .collect();
    bad.push(enrollment("m0", MatchKey::Certificate(h(200)), EnrollmentStatus::Enabled));
    assert!(s.import_enrollments(&bad).await.is_err());
    assert_eq!(s.list_enrollments().await.unwrap().len(), 60, "nothing of the failed batch stays");
}

pub fn challenge(id: &str, expires_at: i64) -> StoredChallenge {
    StoredChallenge {
        id: id.to_owned(),
        challenge: h(7),
        cert_sha256: h(8),
        session_binding: h(9),
        issued_at: expires_at - 60,
        expires_at,
    }
}

pub async fn challenges_are_single_use(s: &Arc<dyn Store>) {
    let c = challenge("c1", 1000);
    s.insert_challenge(&c).await.unwrap();
    assert!(matches!(s.insert_challenge(&c).await, Err(Error::Conflict(_))));
    assert_eq!(s.consume_challenge("c1", 950).await.unwrap(), ChallengeTake::Fresh(c.clone()));
    assert_eq!(s.consume_challenge("c1", 951).await.unwrap(), ChallengeTake::Used(c));
    assert_eq!(s.consume_challenge("nope", 951).await.unwrap(), ChallengeTake::Unknown);
}

pub async fn concurrent_consumption_has_one_winner(s: &Arc<dyn Store>) {
    s.insert_challenge(&challenge("race", 1000)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.consume_challenge("race", 900).await.unwrap() }));
    }
    let mut fresh = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), ChallengeTake::Fresh(_)) {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

pub async fn sessions_and_purge(s: &Arc<dyn Store>) {
    let sess = StoredSession {
        token_sha256: h(1),
        device_id: "d1".into(),
        cert_sha256: h(2),
        serial: "abcd".into(),
        created_at: 100,
        expires_at: 700,
    };
    s.insert_session(&sess).await.unwrap();
    assert_eq!(s.session(&h(1)).await.unwrap(), Some(sess.clone()));
    assert_eq!(s.session(&h(3)).await.unwrap(), None);
    s.insert_challenge(&challenge("old", 500)).await.unwrap();
    s.insert_challenge(&challenge("new", 1500)).await.unwrap();
    assert_eq!(s.purge_expired(800).await.unwrap(), 2);
    assert_eq!(s.session(&h(1)).await.unwrap(), None);
    assert_eq!(s.consume_challenge("old", 800).await.unwrap(), ChallengeTake::Unknown);
    assert!(matches!(s.consume_challenge("new", 800).await.unwrap(), ChallengeTake::Fresh(_)));
}

pub async fn devices_upsert(s: &Arc<dyn Store>) {
    let d = DeviceRecord {
        device_id: "dev-1".into(),
        cert_sha256: "aa".into(),
        serial: "01".into(),
        enrollment_id: "e".into(),
        first_seen: 10,
        last_seen: 10,
        auth_count: 1,
    };
    s.record_device(&d).await.unwrap();
    let later = DeviceRecord { cert_sha256: "bb".into(), first_seen: 20, last_seen: 20, ..d.clone() };
    s.record_device(&later).await.unwrap();
    let got = s.device("dev-1").await.unwrap().unwrap();
    assert_eq!((got.first_seen, got.last_seen, got.auth_count), (10, 20, 2));
    assert_eq!(got.cert_sha256, "bb");
    s.record_device(&DeviceRecord { device_id: "dev-0".into(), ..d }).await.unwrap();
    let ids: Vec<String> = s.list_devices(10).await.unwrap().into_iter().map(|d| d.device_id).collect();
    assert_eq!(ids, ["dev-0", "dev-1"]);
    assert_eq!(s.list_devices(1).await.unwrap().len(), 1);
    assert_eq!(s.device("nope").await.unwrap(), None);
}

pub async fn revocations(s: &Arc<dyn Store>) {
    let r = Revocation { serial: "4a5b".into(), reason: "keyCompromise".into(), revoked_at: 5 };
    assert!(s.revoke(&r).await.unwrap());
    assert!(!s.revoke(&Revocation { reason: "superseded".into(), ..r.clone() }).await.unwrap());
    assert_eq!(s.revocation("4a5b").await.unwrap(), Some(r));
    assert_eq!(s.revocation("ffff").await.unwrap(), None);
}

pub async fn device_state_versions(s: &Arc<dyn Store>) {
    assert_eq!(s.device_state("d").await.unwrap(), None);
    assert_eq!(s.put_device_state("d", r#"{"a":1}"#, 10).await.unwrap(), 1);
    assert_eq!(s.put_device_state("d", r#"{"a":2}"#, 11).await.unwrap(), 2);
    let st = s.device_state("d").await.unwrap().unwrap();
    assert_eq!((st.version, st.json.as_str(), st.updated_at), (2, r#"{"a":2}"#, 11));
    assert_eq!(s.device_state("other").await.unwrap(), None);
}

pub async fn audit_log(s: &Arc<dyn Store>) {
    for i in 0..5 {
        let rec = AuditRecord {
            at: i,
            event: "device.session".into(),
            outcome: if i % 2 == 0 { Outcome::Ok } else { Outcome::Refused },
            reason: (i % 2 == 1).then(|| "challenge_replayed".to_owned()),
            detail: format!("n{i}"),
            device_id: Some(if i < 3 { "a".into() } else { "b".into() }),
            actor: None,
            peer: Some("127.0.0.1:1".into()),
        };
        s.append_audit(&rec).await.unwrap();
    }
    let all = s.audit(10, None).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].record.detail, "n4", "newest first");
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq));
    assert_eq!(all[3].record.reason.as_deref(), Some("challenge_replayed"));
    assert_eq!(all[3].record.outcome, Outcome::Refused);
    let a = s.audit(10, Some("a")).await.unwrap();
    assert_eq!(a.iter().map(|e| e.record.detail.as_str()).collect::<Vec<_>>(), ["n2", "n1", "n0"]);
    assert_eq!(s.audit(2, None).await.unwrap().len(), 2);
}

pub async fn api_tokens(s: &Arc<dyn Store>) {
    let t = ApiToken {
        name: "ci".into(),
        role: Role::Operator,
        token_sha256: h(1),
        created_at: 1,
        disabled: false,
    };
    s.insert_api_token(&t).await.unwrap();
    assert!(matches!(
        s.insert_api_token(&ApiToken { token_sha256: h(2), ..t.clone() }).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(s.api_token_by_hash(&h(1)).await.unwrap(), Some(t.clone()));
    assert_eq!(s.api_token_by_hash(&h(2)).await.unwrap(), None);
    assert!(s.set_api_token_disabled("ci", true).await.unwrap());
    assert!(s.api_token_by_hash(&h(1)).await.unwrap().unwrap().disabled);
    assert!(!s.set_api_token_disabled("nobody", true).await.unwrap());
    s.insert_api_token(&ApiToken { name: "admin".into(), role: Role::Admin, token_sha256: h(3), ..t })
        .await
        .unwrap();
    let names: Vec<String> = s.list_api_tokens().await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["admin", "ci"]);
}

/// The lookup of one authentication step together with its challenge operation.
pub async fn admission_in_one_call(s: &Arc<dyn Store>) {
    let cert = MatchKey::Certificate(h(1));
    let group = MatchKey::Ca(h(2));
    s.insert_enrollment(&enrollment("i1", cert, EnrollmentStatus::Enabled)).await.unwrap();
    s.insert_enrollment(&enrollment("g1", group, EnrollmentStatus::Disabled)).await.unwrap();
    let keys = [cert, MatchKey::PublicKey(h(3)), group];

    let c = challenge("a1", 1000);
    let a = s.admission("0a", &[], &keys, ChallengeOp::Insert(&c)).await.unwrap();
    assert_eq!(a.revocation, None);
    let mut ids: Vec<&str> = a.enrollments.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["g1", "i1"]);
    assert!(a.enrollments.iter().all(|e| e.der.is_none()), "authentication does not read certificates");
    assert_eq!(a.challenge, None);

    let r = Revocation { serial: "0a".into(), reason: "keyCompromise".into(), revoked_at: 5 };
    s.revoke(&r).await.unwrap();
    let a = s.admission("0a", &[], &keys, ChallengeOp::Consume { id: "a1", at: 950 }).await.unwrap();
    assert_eq!(a.revocation, Some(r));
    assert_eq!(a.challenge, Some(ChallengeTake::Fresh(c.clone())));
    let a = s.admission("0b", &[], &keys[1..2], ChallengeOp::Consume { id: "a1", at: 951 }).await.unwrap();
    assert_eq!((a.revocation, a.enrollments.len()), (None, 0));
    assert_eq!(a.challenge, Some(ChallengeTake::Used(c)));
    let a = s.admission("0b", &[], &[], ChallengeOp::Consume { id: "zz", at: 951 }).await.unwrap();
    assert_eq!(a.challenge, Some(ChallengeTake::Unknown));
    let a = s.admission("0b", &[], &keys, ChallengeOp::None).await.unwrap();
    assert_eq!((a.enrollments.len(), a.challenge), (2, None));
    // A clashing challenge ID fails the call.
    let dup = s.admission("0b", &[], &keys, ChallengeOp::Insert(&challenge("a1", 1000))).await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
}

/// Session, device record and audit record of a successful authentication.
pub async fn open_session_writes_all_three(s: &Arc<dyn Store>) {
    let sess = StoredSession {
        token_sha256: h(4),
        device_id: "cam-1".into(),
        cert_sha256: h(5),
        serial: "0c".into(),
        created_at: 100,
        expires_at: 700,
    };
    let dev = DeviceRecord {
        device_id: "cam-1".into(),
        cert_sha256: hex::encode(h(5)),
        serial: "0c".into(),
        enrollment_id: "e1".into(),
        first_seen: 100,
        last_seen: 100,
        auth_count: 1,
    };
    let audit = AuditRecord {
        at: 100,
        event: "device.session".into(),
        outcome: Outcome::Ok,
        reason: None,
        detail: "session opened".into(),
        device_id: Some("cam-1".into()),
        actor: None,
        peer: None,
    };
    s.open_session(&sess, &dev, &audit).await.unwrap();
    let later = StoredSession { token_sha256: h(6), created_at: 200, ..sess.clone() };
    s.open_session(&later, &DeviceRecord { last_seen: 200, ..dev.clone() }, &audit).await.unwrap();
    assert_eq!(s.session(&h(4)).await.unwrap(), Some(sess.clone()));
    let d = s.device("cam-1").await.unwrap().unwrap();
    assert_eq!((d.first_seen, d.last_seen, d.auth_count), (100, 200, 2));
    assert_eq!(s.audit(10, Some("cam-1")).await.unwrap().len(), 2);
    // A clashing token writes none of the three.
    let clash = s.open_session(&sess, &DeviceRecord { last_seen: 300, ..dev }, &audit).await;
    assert!(matches!(clash, Err(Error::Conflict(_))), "{clash:?}");
    assert_eq!(s.device("cam-1").await.unwrap().unwrap().auth_count, 2);
    assert_eq!(s.audit(10, Some("cam-1")).await.unwrap().len(), 2);
}

/// Many concurrent writes (batched into shared transactions by backends that group-commit):
/// each failure stays with its own call and every success is durable.
pub async fn group_commit_keeps_failures_apart(s: &Arc<dyn Store>) {
    s.insert_challenge(&challenge("taken", 1000)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let id = if i % 4 == 0 { "taken".to_owned() } else { format!("g{i}") };
            (i, s.insert_challenge(&challenge(&id, 1000)).await)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        if i % 4 == 0 {
            assert!(matches!(r, Err(Error::Conflict(_))), "{i}: {r:?}");
        } else {
            r.unwrap();
            let id = format!("g{i}");
            assert!(matches!(s.consume_challenge(&id, 900).await.unwrap(), ChallengeTake::Fresh(_)));
        }
    }
}

// ---- key vault and ownership (VaultStore) ----------------------------------------------

fn managed(usage: KeyUsage, subject: &str, version: u32) -> ManagedKey {
    ManagedKey {
        id: ManagedKey::make_id(usage, subject, version),
        usage,
        subject: subject.to_owned(),
        version,
        material: KeyMaterial::Sealed { sealed: vec![version as u8; 60] },
        created_at: 1_000 + i64::from(version),
        retired_at: None,
    }
}

pub async fn managed_keys_rotate(store: &Arc<dyn Store>) {
    let v1 = managed(KeyUsage::Log, "dev-1", 1);
    store.insert_managed_key(&v1).await.unwrap();
    assert!(matches!(store.insert_managed_key(&v1).await, Err(Error::Conflict(_))), "same version twice");
    assert_eq!(store.latest_managed_key(KeyUsage::Log, "dev-1").await.unwrap(), Some(v1.clone()));
    assert_eq!(
        store.latest_managed_key(KeyUsage::Media, "dev-1").await.unwrap(),
        None,
        "usage is part of the key"
    );
    let signing = ManagedKey {
        material: KeyMaterial::InSecureElement {
            label: "command-signing-v1".into(),
            public_key: vec![0x30, 1],
        },
        ..managed(KeyUsage::CommandSigning, "", 1)
    };
    store.insert_managed_key(&signing).await.unwrap();

    let v2 = managed(KeyUsage::Log, "dev-1", 2);
    store.rotate_managed_key(&v1.id, &v2, 5_000).await.unwrap();
    assert_eq!(store.latest_managed_key(KeyUsage::Log, "dev-1").await.unwrap(), Some(v2.clone()));
    let old = store.managed_key(&v1.id).await.unwrap().unwrap();
    assert_eq!(old.retired_at, Some(5_000), "rotation retires the previous version");
    assert_eq!(old.material, v1.material, "a retired key stays readable");
    // A rotation racing another to the same version fails whole: v1 is not retired twice.
    assert!(matches!(store.rotate_managed_key(&v2.id, &v2, 6_000).await, Err(Error::Conflict(_))));
    assert_eq!(
        store.managed_key(&v2.id).await.unwrap().unwrap().retired_at,
        None,
        "failed rotation rolled back"
    );

    let logs = store.list_managed_keys(Some(KeyUsage::Log)).await.unwrap();
    assert_eq!(logs.iter().map(|k| k.version).collect::<Vec<_>>(), vec![1, 2]);
    let all = store.list_managed_keys(None).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.contains(&signing), "signing key listed with its public half");
}

fn claim(code: u8, owner: &str, expires_at: i64) -> OwnerClaim {
    OwnerClaim { code_sha256: h(code), owner: owner.to_owned(), created_at: 100, expires_at }
}

pub async fn claims_are_single_use(store: &Arc<dyn Store>) {
    store.insert_claim(&claim(1, "alice", 1_000)).await.unwrap();
    store.insert_claim(&claim(2, "bob", 1_000)).await.unwrap();
    store.insert_claim(&claim(3, "alice", 150)).await.unwrap();
    store.insert_claim(&claim(4, "alice", 1_000)).await.unwrap();
    let claimed = |o: &str| ClaimRedemption::Claimed { owner: o.to_owned() };

    assert_eq!(store.redeem_claim(&h(9), "dev-1", 200).await.unwrap(), ClaimRedemption::Unknown);
    assert_eq!(store.redeem_claim(&h(3), "dev-1", 200).await.unwrap(), ClaimRedemption::Expired);
    assert_eq!(store.redeem_claim(&h(1), "dev-1", 200).await.unwrap(), claimed("alice"));
    assert_eq!(
        store.redeem_claim(&h(1), "dev-1", 201).await.unwrap(),
        ClaimRedemption::Used,
        "replayed code"
    );
    // Bob's code cannot take alice's device, and stays unspent for another device.
    assert_eq!(store.redeem_claim(&h(2), "dev-1", 202).await.unwrap(), ClaimRedemption::OwnedByAnother);
    assert_eq!(store.device_owner("dev-1").await.unwrap().unwrap().owner, "alice");
    assert_eq!(store.redeem_claim(&h(2), "dev-2", 203).await.unwrap(), claimed("bob"));
    // Alice re-claiming her own device with a fresh code is harmless.
    assert_eq!(store.redeem_claim(&h(4), "dev-1", 204).await.unwrap(), claimed("alice"));

    let alice = store.owned_devices("alice").await.unwrap();
    assert_eq!(alice.iter().map(|d| d.device_id.as_str()).collect::<Vec<_>>(), vec!["dev-1"]);
    assert_eq!(alice[0].claimed_at, 200);
    assert!(store.release_device("dev-1").await.unwrap());
    assert!(!store.release_device("dev-1").await.unwrap());
    assert_eq!(store.device_owner("dev-1").await.unwrap(), None);
    assert!(matches!(store.insert_claim(&claim(2, "bob", 1)).await, Err(Error::Conflict(_))));
}

pub async fn concurrent_claims_have_one_winner(store: &Arc<dyn Store>) {
    store.insert_claim(&claim(7, "carol", 10_000)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(
            async move { s.redeem_claim(&h(7), &format!("dev-{i}"), 500).await.unwrap() },
        ));
    }
    let mut wins = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), ClaimRedemption::Claimed { .. }) {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "one code, one device");
    assert_eq!(store.owned_devices("carol").await.unwrap().len(), 1);
}

// ---- commands, telemetry, logs (MessageStore) -------------------------------------------

pub async fn commands_telemetry_and_logs(store: &Arc<dyn Store>) {
    assert_eq!(store.reserve_command_sequence("dev-1").await.unwrap(), 1);
    assert_eq!(store.reserve_command_sequence("dev-1").await.unwrap(), 2);
    assert_eq!(store.reserve_command_sequence("dev-2").await.unwrap(), 1, "per device");
    let command = |seq: u64| StoredCommand {
        device_id: "dev-1".into(),
        sequence: seq,
        name: format!("cmd-{seq}"),
        signed: vec![seq as u8; 40],
        issued_by: "ops".into(),
        issued_at: 100,
        expires_at: 400,
        status: "pending".into(),
        reported_at: None,
    };
    store.insert_command(&command(1)).await.unwrap();
    store.insert_command(&command(2)).await.unwrap();
    assert!(matches!(store.insert_command(&command(2)).await, Err(Error::Conflict(_))));
    assert_eq!(store.commands_after("dev-1", 1, 10).await.unwrap(), vec![command(2)]);
    assert_eq!(store.commands_after("dev-2", 0, 10).await.unwrap(), vec![]);
    assert!(store.report_command("dev-1", 1, "executed", 150).await.unwrap());
    assert!(!store.report_command("dev-1", 9, "executed", 150).await.unwrap());
    let listed = store.list_commands("dev-1", 10).await.unwrap();
    assert_eq!(
        (listed[0].sequence, listed[1].status.as_str(), listed[1].reported_at),
        (2, "executed", Some(150))
    );

    let report = |seq: u64| StoredTelemetry {
        device_id: "dev-1".into(),
        sequence: seq,
        device_time: 5,
        received_at: 6,
        data_json: format!("{{\"n\":{seq}}}"),
    };
    assert!(store.insert_telemetry(&report(3)).await.unwrap());
    assert!(!store.insert_telemetry(&report(3)).await.unwrap(), "replayed");
    assert!(!store.insert_telemetry(&report(2)).await.unwrap(), "stale");
    assert!(store.insert_telemetry(&report(4)).await.unwrap());
    assert_eq!(store.list_telemetry("dev-1", 10).await.unwrap(), vec![report(4), report(3)]);

    let upload = LogUpload {
        id: "u1".into(),
        device_id: "dev-1".into(),
        uploaded_at: 7,
        content: vec![9; 100],
        size: 100,
    };
    store.insert_log_upload(&upload).await.unwrap();
    assert!(matches!(store.insert_log_upload(&upload).await, Err(Error::Conflict(_))));
    assert_eq!(store.log_upload("u1").await.unwrap(), Some(upload.clone()));
    let listed = store.list_log_uploads("dev-1", 10).await.unwrap();
    assert_eq!(
        (listed.len(), listed[0].content.len(), listed[0].size),
        (1, 0, 100),
        "listing without content"
    );
    assert_eq!(store.log_upload("nope").await.unwrap(), None);
}
