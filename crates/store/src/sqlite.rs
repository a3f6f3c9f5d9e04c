//! The embedded store of `csp dev`: one SQLite file (or memory), one
//! process. Opening, and SQLite's side of the [`Dialect`].

use crate::dialect::{Dialect, Frequencies, FullTextIndex};
use crate::error::Error;
use crate::migrations;
use crate::sql::{Config, SqlStore};
use crate::timestamp::{from_unix_ms, to_unix_ms};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;
use tracing::instrument;
use uuid::Uuid;

/// SQLite adapter. Cheap to clone: clones share one connection pool.
pub type SqliteStore = SqlStore<Sqlite>;

/// A writer waits this long for another connection's write lock before the
/// statement fails; writes are short, so only a stuck process reaches it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Dialect for Sqlite {
    type Id = String;

    fn id(uuid: Uuid) -> String {
        uuid.hyphenated().to_string()
    }

    fn uuid(id: String, column: &str) -> Result<Uuid, Error> {
        Uuid::parse_str(&id)
            .map_err(|e| Error::Corrupt(format!("{column} {id:?} is not a UUID: {e}")))
    }

    type Time = i64;

    fn time(at: OffsetDateTime) -> i64 {
        to_unix_ms(at)
    }

    fn instant(ms: i64) -> Result<OffsetDateTime, Error> {
        from_unix_ms(ms)
    }

    fn epoch_ms(column: &str) -> String {
        column.to_owned()
    }

    const GREATEST: &'static str = "MAX";
    // BINARY, SQLite's default collation, is byte order.
    const BYTE_ORDER: &'static str = "";
    const FOR_UPDATE: &'static str = "";

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn lock_audit_chain(_: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn enter_tenant_scope(_: &mut SqliteConnection, _: &str) -> Result<(), sqlx::Error> {
        Ok(())
    }

    // The index holds every tenant's rows; the join filters by tenant.
    // CROSS JOIN keeps the full-text table the outer loop: left to the
    // planner, SQLite walked the tenant's rows and ran the MATCH once per
    // row (2.3 s at 1k tickets a tenant, `csp-bench search`).
    const SIMILAR_TICKETS: &'static str = "SELECT h.ticket_id, h.description, h.resolution, \
        h.resolved_date, h.tags FROM ticket_history_fts \
        CROSS JOIN ticket_history h ON h.id = ticket_history_fts.rowid \
        WHERE ticket_history_fts MATCH $2 AND h.tenant_id = $1 \
        ORDER BY bm25(ticket_history_fts), h.ticket_id LIMIT $3";
    const SEARCH_KB: &'static str = "SELECT a.title, a.summary, a.url, a.body \
        FROM kb_articles_fts CROSS JOIN kb_articles a ON a.id = kb_articles_fts.rowid \
        WHERE kb_articles_fts MATCH $2 AND a.tenant_id = $1 \
        ORDER BY bm25(kb_articles_fts, 10.0, 5.0, 1.0), a.url LIMIT $3";

    fn full_text_query(groups: &[Vec<String>]) -> String {
        let quoted = |word: &String| format!("\"{}\"", word.replace('"', "\"\""));
        let group = |words: &Vec<String>| match words.as_slice() {
            [word] => quoted(word),
            words => format!(
                "({})",
                words.iter().map(quoted).collect::<Vec<_>>().join(" AND ")
            ),
        };
        groups.iter().map(group).collect::<Vec<_>>().join(" OR ")
    }

    async fn word_frequencies(
        conn: &mut SqliteConnection,
        index: FullTextIndex,
        words: &[String],
    ) -> Result<Frequencies, sqlx::Error> {
        let (rows_sql, term_sql) = match index {
            FullTextIndex::Tickets => (
                "SELECT coalesce(max(id), 0) FROM ticket_history",
                "SELECT doc FROM ticket_history_vocab WHERE term = $1",
            ),
            FullTextIndex::Kb => (
                "SELECT coalesce(max(id), 0) FROM kb_articles",
                "SELECT doc FROM kb_articles_vocab WHERE term = $1",
            ),
        };
        // The largest row id, not count(*): as good an estimate (rows are
        // rarely deleted) at no cost.
        let table_rows: i64 = sqlx::query_scalar(rows_sql).fetch_one(&mut *conn).await?;
        let mut of_words = Vec::with_capacity(words.len());
        for word in words {
            // The index holds Porter stems (`tokenize = 'porter'`); a word
            // whose stem differs from FTS5's reads as absent, which the
            // search treats as rare: it is searched, not dropped.
            let docs: Option<i64> = sqlx::query_scalar(term_sql)
                .bind(crate::search::porter_stem(word))
                .fetch_optional(&mut *conn)
                .await?;
            of_words.push(Some(match table_rows {
                0 => 0.0,
                rows => docs.unwrap_or(0) as f64 / rows as f64,
            }));
        }
        Ok(Frequencies {
            table_rows: table_rows as f64,
            of_words,
        })
    }
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file with
    /// [`Config::default`] and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        Self::open_with(path, &Config::default()).await
    }

    /// Opens the file in WAL mode (readers do not block the writer) with
    /// foreign keys enforced, and applies pending migrations. The parent
    /// directory must exist.
    #[instrument(name = "store.open", skip_all, fields(db.path = %path.display()), err)]
    pub async fn open_with(path: &Path, config: &Config) -> Result<Self, Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode; only
            // an OS crash can lose the last transactions, fine for `csp dev`.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout);
        Self::start(pool, options, path.display().to_string()).await
    }

    /// A private database that lives as long as the store (and its clones).
    pub async fn in_memory() -> Result<Self, Error> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        // Every connection to `:memory:` is a database of its own, so the pool
        // holds exactly one connection and never retires it.
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        Self::start(pool, options, ":memory:".to_owned()).await
    }

    async fn start(
        pool: SqlitePoolOptions,
        options: SqliteConnectOptions,
        target: String,
    ) -> Result<Self, Error> {
        let pool = pool
            .connect_with(options)
            .await
            .map_err(|e| Error::from_sqlx(&target, e))?;
        migrations::apply(migrations::SQLITE, &pool, &target).await?;
        Ok(Self::new(pool, target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::SQLITE;
    use crate::migrations::migrator;
    use crate::migrations::tests::{OLD_PLUGIN_ROWS, assert_old_secret_survives};

    #[tokio::test]
    async fn sqlite_plugin_secrets_from_before_0005_survive() {
        use sqlx::{Connection, SqliteConnection};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("csp.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut conn = SqliteConnection::connect(&url).await.unwrap();
        migrator(SQLITE).run_to(4, &mut conn).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(OLD_PLUGIN_ROWS.replace("$now", "0")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let store = SqliteStore::open(&path).await.unwrap();
        assert_old_secret_survives(&store).await;
    }

    /// The store looks words up in FTS5's vocabulary by their Porter stem:
    /// its stemmer must agree with FTS5's on the words tickets are made of.
    #[tokio::test]
    async fn porter_stems_agree_with_fts5() {
        use sqlx::{Connection, SqliteConnection};
        let words = "users errors printer printers printing emails outlook passwords login \
            logged vpn network networking laptops server servers access issues working unable \
            accounts screens slowly updates updated windows connection connections reset \
            resetting office teams drives files shared folders internet wifi phones installed \
            installation application applications software licenses licensing backups restored \
            disks spaces memory crashed crashes freezing restarted rebooting booting monitors \
            keyboards certificate certificates expired renewal domain controllers policies dns \
            replication degraded rebuilding virtualization happy relational conditional \
            generalization triplicate hopeful goodness electrical agreed plastered motoring \
            sing conflated troubled sized hopping tanned falling hissing fizzed failing filing \
            cries ponies caresses ties caress cats feed agreed disabled matting mating meeting \
            milling messing meetings";
        let mut db = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::raw_sql(
            "CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'porter unicode61'); \
             CREATE VIRTUAL TABLE v USING fts5vocab(t, row);",
        )
        .execute(&mut db)
        .await
        .unwrap();
        for word in words.split_whitespace() {
            sqlx::query("DELETE FROM t").execute(&mut db).await.unwrap();
            sqlx::query("INSERT INTO t (x) VALUES ($1)")
                .bind(word)
                .execute(&mut db)
                .await
                .unwrap();
            let fts5: String = sqlx::query_scalar("SELECT term FROM v")
                .fetch_one(&mut db)
                .await
                .unwrap();
            assert_eq!(crate::search::porter_stem(word), fts5, "{word}");
        }
    }
}
