//! The suite against Postgres, one fresh database per test, plus connecting.

use crate::helpers::{Dialect, Fixture, user};
use csp_store::{Config, Error, PgStore, SessionStore, Store, UserStore};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::time::Duration;

fn server_url() -> String {
    std::env::var("CSP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test and dropped when the test ends, passed
/// or failed (crates.io's `crates_io_test_db` does the same).
pub(crate) struct TestDb {
    store: PgStore,
    name: String,
    url: String,
}

impl TestDb {
    pub(crate) async fn create() -> Self {
        let server = server_url();
        let name = format!("csp_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&server).await.unwrap_or_else(|e| {
            panic!("cannot reach the test Postgres (CSP_TEST_DATABASE_URL): {e}")
        });
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let url = database_url(&server, &name);
        let store = PgStore::connect(&url)
            .await
            .expect("connect to test database");
        Self { store, name, url }
    }
}

impl TestDb {
    /// Its URL, to reach the database past the store.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn pg_store(&self) -> &PgStore {
        &self.store
    }
}

fn database_url(server: &str, database: &str) -> String {
    let mut url = url::Url::parse(server).expect("CSP_TEST_DATABASE_URL is a URL");
    url.set_path(database);
    url.to_string()
}

impl Fixture for TestDb {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn execute_raw(&self, sql: &str) -> Result<(), Error> {
        self.store.execute_raw(sql).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = server_url();
        let name = self.name.clone();
        // Drop cannot await and the test's runtime is busy dropping us, so
        // the database is dropped from a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&server).await?;
                // FORCE ends the store's pooled connections.
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

store_suite!(TestDb::create());

#[tokio::test]
async fn reconnecting_keeps_data_and_does_not_remigrate() {
    let db = TestDb::create().await;
    let alice = user(&db.store, "alice").await;
    let again = PgStore::connect(&db.url).await.unwrap();
    assert_eq!(again.user_by_name("alice").await.unwrap(), Some(alice));
    again.close().await;
}

#[tokio::test]
async fn replicas_starting_together_migrate_once() {
    let db = TestDb::create().await;
    let (a, b, c) = tokio::join!(
        PgStore::connect(&db.url),
        PgStore::connect(&db.url),
        PgStore::connect(&db.url)
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
