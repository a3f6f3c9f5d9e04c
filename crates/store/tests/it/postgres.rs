//! The suite against Postgres, one fresh database per test, plus connecting.

use crate::helpers::user;
use csp_store::test_support::{TestDb, TestStore};
use csp_store::{Config, Error, PgStore, SessionStore, UserStore};
use std::time::Duration;

store_suite!(TestStore::postgres());

#[tokio::test]
async fn reconnecting_keeps_data_and_does_not_remigrate() {
    let db = TestDb::create().await;
    let alice = user(db.store(), "alice").await;
    let again = PgStore::connect(db.url()).await.unwrap();
    assert_eq!(again.user_by_name("alice").await.unwrap(), Some(alice));
    again.close().await;
}

#[tokio::test]
async fn replicas_starting_together_migrate_once() {
    let db = TestDb::create().await;
    let (a, b, c) = tokio::join!(
        PgStore::connect(db.url()),
        PgStore::connect(db.url()),
        PgStore::connect(db.url())
    );
    for store in [a.unwrap(), b.unwrap(), c.unwrap()] {
        store.ping().await.unwrap();
        store.close().await;
    }
}

#[tokio::test]
async fn unreachable_server_names_the_url_without_the_password() {
    let config = Config {
        acquire_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    // Port 1 is closed: the connection is refused.
    let err = PgStore::connect_with("postgres://csp:hunter2@127.0.0.1:1/csp", &config)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("postgres://csp:***@127.0.0.1:1/csp"),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn invalid_url_is_reported_without_the_password() {
    let err = PgStore::connect("postgres://csp:hunter2@db/csp?sslmode=sometimes")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("postgres://csp:***@db/csp?sslmode=sometimes"),
        "{message}"
    );
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}
