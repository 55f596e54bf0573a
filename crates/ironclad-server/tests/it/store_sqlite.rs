//! The shared storage suite on SQLite, plus what only a file-backed store can show.

use std::sync::Arc;

use ironclad_server::store::suite::TestStore;
use ironclad_server::store::{EnrollmentStatus, MatchKey, SqliteStore, Store};

async fn make() -> Option<TestStore> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("registry.sqlite")).unwrap();
    Some(TestStore { store: Arc::new(store), guard: Box::new(dir) })
}

ironclad_server::store_suite_tests!(make());

#[tokio::test]
async fn survives_reopen_and_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.sqlite");
    {
        let s = SqliteStore::open(&path).unwrap();
        let e =
            ironclad_server::store::suite::enrollment("e", MatchKey::Ca([1; 32]), EnrollmentStatus::Enabled);
        s.insert_enrollment(&e).await.unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.list_enrollments().await.unwrap().len(), 1);
    let mode: String = rusqlite_journal_mode(&path);
    assert_eq!(mode, "wal");
}

fn rusqlite_journal_mode(path: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap()
}
