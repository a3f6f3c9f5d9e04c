//! The seam between the one store implementation and the two databases:
//! what Postgres and SQLite spell differently, and nothing else.
//!
//! [`Dialect`] is implemented by `sqlx::Postgres` (`postgres.rs`) and
//! `sqlx::Sqlite` (`sqlite.rs`). Its supertraits name, once, every Rust type
//! the store binds and reads: generic code can then say `DB: Dialect` and
//! nothing more, because Rust assumes a trait's supertraits wherever the
//! trait holds, but not its other `where` clauses. The small traits below
//! ([`Binds`], [`Reads`], [`Runs`]) exist for that reason only: each turns
//! a bound sqlx asks for into a supertrait of the database type.

use crate::error::Error;
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, QueryBuilder, Row,
    Transaction, Type,
};
use std::future::Future;
use time::OffsetDateTime;
use uuid::Uuid;

/// A statement of database `DB` with its arguments so far.
pub(crate) type Statement<'q, DB> = Query<'q, DB, <DB as Database>::Arguments>;

/// What a transaction runs its statements on: the pool (one connection for
/// the statement) or a connection the caller holds (its transaction's).
pub(crate) enum On<'c, DB: Database> {
    Pool(&'c Pool<DB>),
    Conn(&'c mut DB::Connection),
}

/// Values of `T` can be bound to a statement of this database.
pub(crate) trait Binds<T>: Database {
    fn bind<'q>(statement: Statement<'q, Self>, value: T) -> Statement<'q, Self>;
    fn push_bind(builder: &mut QueryBuilder<Self>, value: T);
}

impl<DB: Database, T> Binds<T> for DB
where
    T: for<'e> Encode<'e, DB> + Type<DB>,
{
    fn bind<'q>(statement: Statement<'q, Self>, value: T) -> Statement<'q, Self> {
        statement.bind(value)
    }

    fn push_bind(builder: &mut QueryBuilder<Self>, value: T) {
        builder.push_bind(value);
    }
}

/// Values of `T` can be read from a column of this database's rows.
pub(crate) trait Reads<T>: Database {
    fn get(row: &Self::Row, column: &str) -> Result<T, sqlx::Error>;
}

impl<DB: Database, T> Reads<T> for DB
where
    T: for<'r> Decode<'r, DB> + Type<DB>,
    for<'c> &'c str: ColumnIndex<DB::Row>,
{
    fn get(row: &Self::Row, column: &str) -> Result<T, sqlx::Error> {
        row.try_get(column)
    }
}

/// A column type of this database, both ways.
pub(crate) trait Holds<T>: Binds<T> + Reads<T> {}

impl<DB: Binds<T> + Reads<T>, T> Holds<T> for DB {}

/// Statements of this database can run on its pool and its connections.
pub(crate) trait Runs: Database {
    fn execute<'c>(
        on: On<'c, Self>,
        statement: Statement<'c, Self>,
    ) -> impl Future<Output = Result<Self::QueryResult, sqlx::Error>> + Send + 'c;
    fn fetch_all<'c>(
        on: On<'c, Self>,
        statement: Statement<'c, Self>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send + 'c;
    fn fetch_optional<'c>(
        on: On<'c, Self>,
        statement: Statement<'c, Self>,
    ) -> impl Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send + 'c;
    /// `sql` as is, unprepared, possibly several statements.
    #[cfg(any(test, feature = "test-support"))]
    fn execute_raw<'c>(
        on: On<'c, Self>,
        sql: String,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'c;
}

impl<DB: Database> Runs for DB
where
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    async fn execute<'c>(
        on: On<'c, Self>,
        statement: Statement<'c, Self>,
    ) -> Result<Self::QueryResult, sqlx::Error> {
        match on {
            On::Pool(pool) => statement.execute(pool).await,
            On::Conn(conn) => statement.execute(conn).await,
        }
    }

    async fn fetch_all<'c>(
        on: On<'c, Self>,
        statement: Statement<'c, Self>,
    ) -> Result<Vec<Self::Row>, sqlx::Error> {
        match on {
            On::Pool(pool) => statement.fetch_all(pool).await,
            On::Conn(conn) => statement.fetch_all(conn).await,
        }
    }

    async fn fetch_optional<'c>(
        on: On<'c, Self>,
        statement: Statement<'c, Self>,
    ) -> Result<Option<Self::Row>, sqlx::Error> {
        match on {
            On::Pool(pool) => statement.fetch_optional(pool).await,
            On::Conn(conn) => statement.fetch_optional(conn).await,
        }
    }

    #[cfg(any(test, feature = "test-support"))]
    async fn execute_raw<'c>(on: On<'c, Self>, sql: String) -> Result<(), sqlx::Error> {
        let sql = sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
        match on {
            On::Pool(pool) => sql.execute(pool).await?,
            On::Conn(conn) => sql.execute(conn).await?,
        };
        Ok(())
    }
}

/// What differs between the databases. The SQL text itself is written once
/// (`$1` placeholders, `ON CONFLICT … DO UPDATE SET x = EXCLUDED.x`,
/// `RETURNING`, `TRUE`, `CAST(… AS BIGINT)` mean the same in both); these
/// are the few places where it cannot be.
pub(crate) trait Dialect:
    Runs
    + Holds<String>
    + for<'a> Binds<&'a str>
    + Holds<Option<String>>
    + Binds<Option<&'static str>>
    + Holds<i64>
    + Holds<Option<i64>>
    + Holds<bool>
    + Binds<Option<bool>>
    + Holds<f64>
    + Holds<Json<serde_json::Value>>
    + Holds<Json<serde_json::Map<String, serde_json::Value>>>
    + for<'a> Binds<Json<&'a serde_json::Value>>
    + Holds<Option<Json<serde_json::Value>>>
    + for<'a> Binds<Json<&'a serde_json::Map<String, serde_json::Value>>>
    + Holds<Self::Id>
    + Holds<Option<Self::Id>>
    + Holds<Self::Time>
    + Holds<Option<Self::Time>>
{
    /// How an id column holds a UUID: Postgres as `UUID`, SQLite as
    /// hyphenated `TEXT` (readable in the sqlite3 shell).
    type Id: Send;
    /// How a timestamp column holds an instant: Postgres as `TIMESTAMPTZ`,
    /// SQLite as unix milliseconds (`INTEGER`, which sorts and round-trips
    /// exactly).
    type Time: Send;

    /// The scalar maximum of two values: `GREATEST` or `MAX`.
    const GREATEST: &'static str;
    /// Appended to an `ORDER BY` column so that text sorts by byte value,
    /// whatever the database's collation (SQLite's default already does).
    const BYTE_ORDER: &'static str;
    /// Appended to a `SELECT` that reads rows a transaction is about to
    /// rewrite: Postgres locks them (`FOR UPDATE`); SQLite needs nothing, as
    /// [`Dialect::begin_write`] holds the database's write lock already.
    const FOR_UPDATE: &'static str;

    fn id(uuid: Uuid) -> Self::Id;
    /// The UUID in a stored id; `column` names it in the error.
    fn uuid(id: Self::Id, column: &str) -> Result<Uuid, Error>;
    /// The stored form of `at`, truncated to the millisecond.
    fn time(at: OffsetDateTime) -> Self::Time;
    fn instant(time: Self::Time) -> Result<OffsetDateTime, Error>;
    /// An expression of the timestamp column `column` as unix milliseconds
    /// (`BIGINT`), for arithmetic on instants (the charts' steps).
    /// Postgres computes it; SQLite stores them so.
    fn epoch_ms(column: &str) -> String;

    /// Rows a statement inserted, updated or deleted (sqlx has no generic
    /// accessor).
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// A transaction that reads before it writes and needs what it read to
    /// stay true until it commits (budgets, the audit chain, plugin saves,
    /// re-encryption). Postgres: an ordinary transaction, whose statements
    /// lock the rows they need. SQLite: `BEGIN IMMEDIATE`, the database's
    /// write lock from the first statement (a deferred transaction that read
    /// first could not upgrade while another connection writes: `SQLITE_BUSY`,
    /// which the busy timeout does not wait out).
    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;

    /// Makes the audit appends of every replica take turns until `conn`'s
    /// transaction ends, so each reads the true last hash. Postgres: a
    /// transaction-level advisory lock; SQLite: nothing, the write lock of
    /// [`Dialect::begin_write`] does it.
    fn lock_audit_chain(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Scopes `conn`'s transaction to `tenant`, first thing in it.
    /// Postgres: the transaction runs as role `csp_tenant` (no BYPASSRLS,
    /// so row-level security applies even when csp connects as a superuser)
    /// with `csp.tenant_id` set, both `LOCAL`, so they end with it: a
    /// statement that forgets its tenant filter still sees only this
    /// tenant's rows. SQLite: nothing; every statement filters by tenant
    /// itself (and does so on Postgres too).
    fn enter_tenant_scope(
        conn: &mut Self::Connection,
        tenant: &str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Full text is where the databases differ most, so these statements
    /// are the dialect's. Each binds `$1` the tenant, `$2` the query
    /// ([`Dialect::full_text_query`]) and `$3` the limit, runs in the
    /// tenant's scope, and returns the best matches first (ties by key).
    /// Postgres: the security-definer functions of migration 0006, which
    /// keep the GIN index usable under row-level security; SQLite: FTS5
    /// with `bm25`.
    ///
    /// Columns: `ticket_id, description, resolution, resolved_date, tags`.
    const SIMILAR_TICKETS: &'static str;
    /// Columns: `title, summary, url, body`.
    const SEARCH_KB: &'static str;

    /// The query matching any of `groups`, a group when all of its words
    /// are there (each group at least one word; words are letters and
    /// digits only, so nothing in them is syntax): `disk | (full & sda1)`
    /// for Postgres' `to_tsquery`, `"disk" OR ("full" AND "sda1")` for
    /// FTS5's `MATCH`.
    fn full_text_query(groups: &[Vec<String>]) -> String;

    /// How common each of `words` is in `index` (see [`Frequencies`]), read
    /// on `conn` in the tenant's scope. Postgres: the planner's statistics
    /// (`csp_word_frequencies`, migration 0007); SQLite: FTS5's own counts
    /// (`fts5vocab`).
    fn word_frequencies(
        conn: &mut Self::Connection,
        index: FullTextIndex,
        words: &[String],
    ) -> impl Future<Output = Result<Frequencies, sqlx::Error>> + Send;
}

/// The two full-text indexes of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FullTextIndex {
    /// `ticket_history`: resolved tickets.
    Tickets,
    /// `kb_articles`: knowledge-base articles.
    Kb,
}

impl FullTextIndex {
    pub(crate) fn table(self) -> &'static str {
        match self {
            Self::Tickets => "ticket_history",
            Self::Kb => "kb_articles",
        }
    }
}

/// How common words are in a full-text index, every tenant together: a
/// word's share of the rows that hold it (`None`: no figure for it), and
/// about how many rows the table has.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Frequencies {
    pub(crate) table_rows: f64,
    pub(crate) of_words: Vec<Option<f64>>,
}
