//! The shared storage suite on PostgreSQL: a throwaway cluster per test process, a fresh
//! database per test.

use std::sync::Arc;

use ironclad_server::store::PostgresStore;
use ironclad_server::store::suite::TestStore;

async fn make() -> Option<TestStore> {
    let url = tokio::task::spawn_blocking(ironclad_testkit::postgres::fresh_database).await.unwrap()?;
    let store = PostgresStore::connect(&url, 2).await.unwrap();
    Some(TestStore { store: Arc::new(store), guard: Box::new(()) })
}

ironclad_server::store_suite_tests!(make());

#[tokio::test]
async fn two_servers_migrate_the_same_database_once() {
    let Some(url) = tokio::task::spawn_blocking(ironclad_testkit::postgres::fresh_database).await.unwrap()
    else {
        return;
    };
    let (a, b) = tokio::join!(PostgresStore::connect(&url, 1), PostgresStore::connect(&url, 1));
    a.unwrap();
    b.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_database_restarts() {
    let Some(cluster) =
        tokio::task::spawn_blocking(ironclad_testkit::postgres::PgCluster::start).await.unwrap()
    else {
        return;
    };
    let url = cluster.fresh_database();
    let store = PostgresStore::connect(&url, 2).await.unwrap();
    let e = ironclad_server::store::suite::enrollment(
        "e",
        ironclad_server::store::MatchKey::Ca([1; 32]),
        ironclad_server::store::EnrollmentStatus::Enabled,
    );
    use ironclad_server::store::Store;
    store.insert_enrollment(&e).await.unwrap();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster.restart();
        cluster
    })
    .await
    .unwrap();
    // The first use of each pooled connection may still see the old socket; then it recovers.
    let mut ok = false;
    for _ in 0..6 {
        if let Ok(Some(got)) = store.enrollment("e").await {
            assert_eq!(got, e);
            ok = true;
            break;
        }
    }
    assert!(ok, "the store did not reconnect");
    store.import_enrollments(&[]).await.unwrap();
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_changes_are_announced_to_every_store_on_the_database() {
    use ironclad_server::store::TrustSignal;
    let Some(url) = tokio::task::spawn_blocking(ironclad_testkit::postgres::fresh_database).await.unwrap()
    else {
        return;
    };
    let (a, b) =
        (PostgresStore::connect(&url, 1).await.unwrap(), PostgresStore::connect(&url, 1).await.unwrap());
    let mut rx = b.trust_changes().unwrap();
    // The listener ticks once when it starts listening: wait for that, then for A's announcement.
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.wait_for(|n| *n >= 1))
        .await
        .unwrap()
        .unwrap();
    let before = *rx.borrow_and_update();
    a.announce_trust_change().await.unwrap();
    let ticked = tokio::time::timeout(std::time::Duration::from_secs(10), rx.changed()).await;
    assert!(ticked.is_ok_and(|r| r.is_ok()), "B heard nothing");
    assert!(*rx.borrow() > before);
    // SQLite has no channel: one file, one process.
    let dir = tempfile::tempdir().unwrap();
    let lite = ironclad_server::store::SqliteStore::open(dir.path().join("r.sqlite")).unwrap();
    assert!(lite.trust_changes().is_none());
    lite.announce_trust_change().await.unwrap();
}
