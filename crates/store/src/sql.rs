//! The one adapter, [`SqlStore`], and what every concern's implementation
//! uses to talk to its database: statements that map their errors ([`Sql`]),
//! typed reads of a row ([`Columns`]), transactions.
//!
//! Why one generic type rather than one per database: the concerns'
//! statements and algorithms are the same on both (reserve a budget, chain
//! an audit row, save a plugin's config with its secrets), so they are
//! written once, in `users.rs`, `sessions.rs`, `budgets.rs`, `audit.rs`,
//! `plugins.rs` and `secrets.rs`, as `impl<DB: Dialect> … for SqlStore<DB>`;
//! what differs is the small [`Dialect`] trait. sqlx's own `Any` driver was
//! not an option: it binds no UUIDs or timestamps.

use crate::dialect::{Dialect, On, Reads, Statement};
use crate::error::Error;
use sqlx::{Database, Pool, QueryBuilder, SqlSafeStr, Transaction};
use std::fmt;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Connection-pool settings shared by the adapters.
#[derive(Debug, Clone)]
pub struct Config {
    /// Upper bound on open connections. Ignored by
    /// [`SqliteStore::in_memory`](crate::SqliteStore::in_memory), whose
    /// database lives in its one connection.
    pub max_connections: u32,
    /// How long an operation (and connecting at start) waits for a connection
    /// before failing with [`Error::Unavailable`].
    pub acquire_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The store on one database: [`PgStore`](crate::PgStore) (`DB` is
/// `sqlx::Postgres`, distributed mode) or [`SqliteStore`](crate::SqliteStore)
/// (`sqlx::Sqlite`, `csp dev`). Cheap to clone: clones share one connection
/// pool.
pub struct SqlStore<DB: Database> {
    pub(crate) db: Db<DB>,
}

impl<DB: Database> SqlStore<DB> {
    pub(crate) fn new(pool: Pool<DB>, target: String) -> Self {
        Self {
            db: Db { pool, target },
        }
    }

    /// Closes the pool, waiting for checked-out connections to return.
    pub async fn close(&self) {
        self.db.pool.close().await;
    }
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            db: Db {
                pool: self.db.pool.clone(),
                target: self.db.target.clone(),
            },
        }
    }
}

impl<DB: Database> fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &DB::NAME)
            .field("target", &self.db.target)
            .finish_non_exhaustive()
    }
}

/// A pool and what errors call it (a URL without its password, or a path).
pub(crate) struct Db<DB: Database> {
    pool: Pool<DB>,
    target: String,
}

impl<DB: Dialect> Db<DB> {
    pub(crate) fn error(&self, error: sqlx::Error) -> Error {
        Error::from_sqlx(&self.target, error)
    }

    /// The pool, for one statement outside a transaction.
    pub(crate) fn pool(&self) -> On<'_, DB> {
        On::Pool(&self.pool)
    }

    /// A statement; `text` is SQL with `$1`, `$2`… placeholders.
    pub(crate) fn sql<'q>(&'q self, text: impl SqlSafeStr) -> Sql<'q, DB> {
        Sql {
            db: self,
            statement: sqlx::query(text),
        }
    }

    /// A statement whose text depends on the dialect (its constants are
    /// the only values formatted into it, never input).
    pub(crate) fn dialect_sql(&self, text: String) -> Sql<'_, DB> {
        self.sql(sqlx::AssertSqlSafe(text))
    }

    pub(crate) fn columns<'r>(&'r self, row: &'r DB::Row) -> Columns<'r, DB> {
        Columns { db: self, row }
    }

    /// An ordinary transaction: for writes that write first.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, DB>, Error> {
        self.pool.begin().await.map_err(|e| self.error(e))
    }

    /// See [`Dialect::begin_write`].
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, DB>, Error> {
        DB::begin_write(&self.pool).await.map_err(|e| self.error(e))
    }

    pub(crate) async fn commit(&self, tx: Transaction<'static, DB>) -> Result<(), Error> {
        tx.commit().await.map_err(|e| self.error(e))
    }

    pub(crate) async fn rollback(&self, tx: Transaction<'static, DB>) -> Result<(), Error> {
        tx.rollback().await.map_err(|e| self.error(e))
    }

    #[cfg(any(test, feature = "test-support"))]
    pub(crate) async fn execute_raw(&self, sql: &str) -> Result<(), Error> {
        DB::execute_raw(self.pool(), sql.to_owned())
            .await
            .map_err(|e| self.error(e))
    }

    /// Runs a statement built with a [`QueryBuilder`] and returns its rows.
    pub(crate) async fn fetch_built(
        &self,
        mut builder: QueryBuilder<DB>,
    ) -> Result<Vec<DB::Row>, Error> {
        DB::fetch_all(self.pool(), builder.build())
            .await
            .map_err(|e| self.error(e))
    }
}

impl<DB: Dialect> Db<DB> {
    /// Runs a statement built with a [`QueryBuilder`] on `target` (a
    /// transaction's connection) and returns its rows.
    pub(crate) async fn fetch_built_on<'c>(
        &self,
        target: On<'c, DB>,
        builder: &'c mut QueryBuilder<DB>,
    ) -> Result<Vec<DB::Row>, Error> {
        DB::fetch_all(target, builder.build())
            .await
            .map_err(|e| self.error(e))
    }
}

/// `conn` for a statement of `tx`.
pub(crate) fn on<'c, DB: Database>(tx: &'c mut Transaction<'static, DB>) -> On<'c, DB> {
    On::Conn(&mut **tx)
}

/// A statement being bound, on its way to run; its errors name the database.
pub(crate) struct Sql<'q, DB: Database> {
    db: &'q Db<DB>,
    statement: Statement<'q, DB>,
}

impl<'q, DB: Dialect> Sql<'q, DB> {
    pub(crate) fn bind<T>(self, value: T) -> Self
    where
        DB: crate::dialect::Binds<T>,
    {
        Self {
            db: self.db,
            statement: DB::bind(self.statement, value),
        }
    }

    /// Binds a UUID as the dialect stores ids.
    pub(crate) fn bind_id(self, id: Uuid) -> Self {
        self.bind(DB::id(id))
    }

    pub(crate) fn bind_opt_id(self, id: Option<Uuid>) -> Self {
        self.bind(id.map(DB::id))
    }

    /// Binds an instant as the dialect stores them, to the millisecond.
    pub(crate) fn bind_time(self, at: OffsetDateTime) -> Self {
        self.bind(DB::time(at))
    }

    pub(crate) fn bind_opt_time(self, at: Option<OffsetDateTime>) -> Self {
        self.bind(at.map(DB::time))
    }

    /// Rows affected.
    pub(crate) async fn execute(self, on: On<'q, DB>) -> Result<u64, Error> {
        match DB::execute(on, self.statement).await {
            Ok(done) => Ok(DB::rows_affected(&done)),
            Err(e) => Err(self.db.error(e)),
        }
    }

    pub(crate) async fn fetch_all(self, on: On<'q, DB>) -> Result<Vec<DB::Row>, Error> {
        DB::fetch_all(on, self.statement)
            .await
            .map_err(|e| self.db.error(e))
    }

    pub(crate) async fn fetch_optional(self, on: On<'q, DB>) -> Result<Option<DB::Row>, Error> {
        DB::fetch_optional(on, self.statement)
            .await
            .map_err(|e| self.db.error(e))
    }

    /// The statement's one row; a statement that always returns one (an
    /// aggregate) returning none is a database error.
    pub(crate) async fn fetch_one(self, on: On<'q, DB>) -> Result<DB::Row, Error> {
        let db = self.db;
        self.fetch_optional(on)
            .await?
            .ok_or_else(|| db.error(sqlx::Error::RowNotFound))
    }
}

/// Typed reads of one row's columns by name.
pub(crate) struct Columns<'r, DB: Database> {
    db: &'r Db<DB>,
    row: &'r DB::Row,
}

impl<DB: Dialect> Columns<'_, DB> {
    pub(crate) fn get<T>(&self, column: &str) -> Result<T, Error>
    where
        DB: Reads<T>,
    {
        DB::get(self.row, column).map_err(|e| self.db.error(e))
    }

    pub(crate) fn uuid(&self, column: &str) -> Result<Uuid, Error> {
        DB::uuid(self.get::<DB::Id>(column)?, column)
    }

    pub(crate) fn opt_uuid(&self, column: &str) -> Result<Option<Uuid>, Error> {
        let id: Option<DB::Id> = self.get(column)?;
        id.map(|id| DB::uuid(id, column)).transpose()
    }

    pub(crate) fn time(&self, column: &str) -> Result<OffsetDateTime, Error> {
        DB::instant(self.get::<DB::Time>(column)?)
    }

    pub(crate) fn opt_time(&self, column: &str) -> Result<Option<OffsetDateTime>, Error> {
        let time: Option<DB::Time> = self.get(column)?;
        time.map(DB::instant).transpose()
    }

    /// A counter, which the schema keeps non-negative.
    pub(crate) fn count(&self, column: &str) -> Result<u64, Error> {
        count_from_db(column, self.get(column)?)
    }
}

pub(crate) fn count_from_db(column: &str, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("{column} is negative: {value}")))
}
