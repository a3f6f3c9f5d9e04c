//! The suite against SQLite, on a temporary file and in memory, plus files.

use crate::helpers::{Dialect, Fixture, session, user};
use csp_store::test_support::TestStore;
use csp_store::{Error, SessionStore, SqliteStore, Store, UserStore};

/// A store on a file in a temporary directory.
pub(crate) struct File {
    store: TestStore,
    _dir: tempfile::TempDir,
}

impl File {
    pub(crate) async fn create() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = TestStore::sqlite_file(&dir.path().join("csp.db")).await;
        Self { store, _dir: dir }
    }
}

impl Fixture for File {
    fn store(&self) -> &dyn Store {
        &*self.store
    }

    fn dialect(&self) -> Dialect {
        self.store.backend()
    }

    async fn execute_raw(&self, sql: &str) -> Result<(), Error> {
        self.store.execute_raw(sql).await
    }
}

mod file {
    store_suite!(super::File::create());
}

mod memory {
    store_suite!(csp_store::test_support::TestStore::sqlite());
}

#[tokio::test]
async fn reopening_a_file_keeps_data_and_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("csp.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let alice = user(&store, "alice").await;
    let s = session(&store, alice.user_id).await;
    store.close().await;

    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(reopened.user_by_name("ALICE").await.unwrap(), Some(alice));
    assert_eq!(reopened.session(s.session_id).await.unwrap(), Some(s));
    reopened.ping().await.unwrap();
    // WAL mode leaves its log beside the database.
    assert!(dir.path().join("csp.db-wal").exists());
}

#[tokio::test]
async fn in_memory_stores_are_separate() {
    let a = SqliteStore::in_memory().await.unwrap();
    let b = SqliteStore::in_memory().await.unwrap();
    user(&a, "alice").await;
    assert_eq!(a.count_users().await.unwrap(), 1);
    assert_eq!(b.count_users().await.unwrap(), 0);
    b.ping().await.unwrap();
}

#[tokio::test]
async fn unopenable_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("csp.db");
    let err = SqliteStore::open(&path).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        matches!(err, Error::Unavailable { .. } | Error::Database { .. }),
        "{err:?}"
    );
}
