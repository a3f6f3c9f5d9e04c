//! Fresh stores for tests, on either database (feature `test-support`):
//! this crate's shared suite and the services' suites run their cases on
//! both with [`Backend::ALL`] or [`backend_tests!`](crate::backend_tests).
//!
//! Isolated per test: Postgres gets a database of its own, created for the
//! test and dropped when its [`TestStore`] is (passed or failed, as
//! crates.io's `crates_io_test_db` does); SQLite a private in-memory
//! database (or a file the caller owns). The Postgres server is
//! `CSP_TEST_DATABASE_URL`, by default `postgres://postgres@127.0.0.1:5432/postgres`.

use crate::dialect::Dialect;
use crate::error::Error;
use crate::postgres::PgStore;
use crate::sql::SqlStore;
use crate::sqlite::SqliteStore;
use crate::store::Store;
use csp_domain::TenantId;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Postgres};
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

/// Which database a [`TestStore`] lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];

    /// A fresh, empty, migrated store: a Postgres database of its own, or a
    /// private in-memory SQLite database.
    pub async fn store(self) -> TestStore {
        match self {
            Backend::Postgres => TestStore::postgres().await,
            Backend::Sqlite => TestStore::sqlite().await,
        }
    }
}

/// A store under test and what keeps its database alive. Clones share the
/// store; the Postgres database is dropped with the last clone.
#[derive(Clone)]
pub struct TestStore {
    store: Arc<dyn Store>,
    held: Arc<Held>,
}

enum Held {
    Postgres(TestDb),
    Sqlite(SqliteStore),
}

impl TestStore {
    pub async fn postgres() -> Self {
        let db = TestDb::create().await;
        Self {
            store: Arc::new(db.store.clone()),
            held: Arc::new(Held::Postgres(db)),
        }
    }

    pub async fn sqlite() -> Self {
        Self::on_sqlite(SqliteStore::in_memory().await.expect("in-memory SQLite"))
    }

    /// A store on the SQLite file `path` (created if missing); the caller
    /// keeps its directory.
    pub async fn sqlite_file(path: &Path) -> Self {
        Self::on_sqlite(SqliteStore::open(path).await.expect("open SQLite file"))
    }

    fn on_sqlite(store: SqliteStore) -> Self {
        Self {
            store: Arc::new(store.clone()),
            held: Arc::new(Held::Sqlite(store)),
        }
    }

    pub fn backend(&self) -> Backend {
        match *self.held {
            Held::Postgres(_) => Backend::Postgres,
            Held::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The store, for a service to share.
    pub fn shared(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The Postgres database, when the store is on Postgres.
    pub fn postgres_db(&self) -> Option<&TestDb> {
        match &*self.held {
            Held::Postgres(db) => Some(db),
            Held::Sqlite(_) => None,
        }
    }

    /// Runs `sql` as is, past the store's API, for simulating what csp
    /// itself never does (tampering with the audit log).
    pub async fn execute_raw(&self, sql: &str) -> Result<(), Error> {
        match &*self.held {
            Held::Postgres(db) => execute_raw(&db.store, sql).await,
            Held::Sqlite(store) => execute_raw(store, sql).await,
        }
    }
}

async fn execute_raw<DB: Dialect>(store: &SqlStore<DB>, sql: &str) -> Result<(), Error> {
    store.db.execute_raw(sql).await
}

impl Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TestStore").field(&self.backend()).finish()
    }
}

/// The Postgres server tests create their databases on.
pub fn server_url() -> String {
    std::env::var("CSP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A Postgres database created for one test, with a store connected to it,
/// dropped when this is.
pub struct TestDb {
    store: PgStore,
    name: String,
    url: String,
}

impl TestDb {
    pub async fn create() -> Self {
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
        let mut url = url::Url::parse(&server).expect("CSP_TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        let url = url.to_string();
        let store = PgStore::connect(&url)
            .await
            .expect("connect to test database");
        Self { store, name, url }
    }

    /// Its URL, to reach the database past the store.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// Runs `sql`, whose rows are one text column, in `tenant`'s scope as
    /// the store enters it (role `csp_tenant`, `csp.tenant_id` set), and
    /// rolls back: what row-level security lets a statement that forgets
    /// its tenant filter see or write.
    pub async fn query_in_tenant_scope(
        &self,
        tenant: &TenantId,
        sql: &str,
    ) -> Result<Vec<String>, Error> {
        let db = &self.store.db;
        let mut tx = db.begin().await?;
        Postgres::enter_tenant_scope(&mut tx, tenant.as_str())
            .await
            .map_err(|e| db.error(e))?;
        let rows = sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| db.error(e))?;
        db.rollback(tx).await?;
        Ok(rows)
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

/// One test per database for each listed `async fn case(Backend)`:
/// `case::postgres` and `case::sqlite`, each with the given test attribute.
///
/// ```ignore
/// csp_store::backend_tests!(#[tokio::test] login_works, logout_works);
/// csp_store::backend_tests!(#[tokio::test(flavor = "multi_thread")] caps_hold);
/// ```
#[macro_export]
macro_rules! backend_tests {
    (#[$test:meta] $($case:ident),+ $(,)?) => {$(
        mod $case {
            #[$test]
            async fn postgres() {
                super::$case($crate::test_support::Backend::Postgres).await
            }

            #[$test]
            async fn sqlite() {
                super::$case($crate::test_support::Backend::Sqlite).await
            }
        }
    )+};
}

/// A user named `name` with `role` for a test, deactivated when `active`
/// is false (services' suites sign in as users of each role).
pub async fn user(
    store: &dyn Store,
    name: &str,
    role: csp_domain::Role,
    active: bool,
) -> crate::UserRecord {
    let user = store
        .create_user(crate::NewUser {
            username: name.into(),
            password_hash: "x".into(),
            role,
            monthly_cost_cap_micros: None,
        })
        .await
        .expect("create the test user");
    if active {
        return user;
    }
    store
        .update_user(
            user.user_id,
            crate::UserUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("deactivate the test user")
}
