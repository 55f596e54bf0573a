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
