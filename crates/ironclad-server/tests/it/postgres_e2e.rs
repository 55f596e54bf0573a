//! Two server processes' worth of servers on one PostgreSQL database: a change made through one
//! is enforced by the other on the next request.

use std::sync::Arc;

use ironclad_pki::RevocationReason;
use ironclad_server::store::{PostgresStore, Store};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_enrollments_and_revocations_at_once() {
    let Some(url) = tokio::task::spawn_blocking(ironclad_testkit::postgres::fresh_database).await.unwrap()
    else {
        return;
    };
    let pki = TestPki::new("Acme", 1);
    let store_a: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url, 2).await.unwrap());
    let a = TestServer::start_on(store_a, None, |b| b).await;
    let group = a.enroll_line(&pki, 0).await;
    let store_b: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url, 2).await.unwrap());
    let b = TestServer::start_on(store_b, None, |b| b).await;

    let (d1, d2) = (pki.device(0, "cam-1"), pki.device(0, "cam-2"));
    b.connect(&d1).await.authenticate().await.unwrap();
    a.connect(&d2).await.authenticate().await.unwrap();

    // Disabled through A: refused by B on the very next request.
    a.server.registry().set_enabled(&group, false).await.unwrap();
    assert_auth_failed(b.connect(&d1).await.request_challenge().await);
    assert_eq!(b.reasons("cam-1").await[0], "group_disabled");
    a.server.registry().set_enabled(&group, true).await.unwrap();

    // Revoked through B: refused by A.
    b.server.registry().revoke(&d2.record.serial, RevocationReason::KeyCompromise).await.unwrap();
    assert_auth_failed(a.connect(&d2).await.request_challenge().await);
    assert_eq!(a.reasons("cam-2").await[0], "revoked");

    // A challenge issued by one server answered through the other: refused. Challenges live
    // in the memory of the process holding the connection they are bound to, so the other
    // does not know it at all; and the signature covers A's TLS session, not B's.
    let mut on_a = a.connect(&d1).await;
    let mut on_b = b.connect(&d1).await;
    let c = on_a.request_challenge().await.unwrap();
    let sig = on_a.sign_challenge(&c.challenge).unwrap();
    assert_auth_failed(on_b.answer(&c.challenge_id, sig.clone()).await);
    assert_eq!(a.reasons("cam-1").await[0], "challenge_unknown");
    on_b.authenticate().await.unwrap();
    // Still fresh on A, where it was issued and where its session is.
    on_a.answer(&c.challenge_id, sig).await.unwrap();
}
