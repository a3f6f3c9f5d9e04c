//! The distributed-mode store: one Postgres database shared by every replica.
//! Connecting, and Postgres' side of the [`Dialect`].

use crate::dialect::{Dialect, Frequencies, FullTextIndex};
use crate::error::Error;
use crate::migrations;
use crate::sql::{Config, SqlStore};
use crate::timestamp;
use csp_redact::url as redact_url;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Connection, PgConnection, Postgres, Transaction};
use std::time::Duration;
use time::OffsetDateTime;
use tracing::instrument;
use uuid::Uuid;

/// Postgres adapter. Cheap to clone: clones share one connection pool.
pub type PgStore = SqlStore<Postgres>;

/// The key of the transaction-level advisory lock that serialises audit
/// appends across replicas: "cspaudit" in ASCII.
const AUDIT_LOCK: i64 = 0x6373_7061_7564_6974;

impl Dialect for Postgres {
    type Id = Uuid;

    fn id(uuid: Uuid) -> Uuid {
        uuid
    }

    fn uuid(id: Uuid, _column: &str) -> Result<Uuid, Error> {
        Ok(id)
    }

    type Time = OffsetDateTime;

    fn time(at: OffsetDateTime) -> OffsetDateTime {
        timestamp::truncate(at)
    }

    fn instant(time: OffsetDateTime) -> Result<OffsetDateTime, Error> {
        Ok(time)
    }

    fn epoch_ms(column: &str) -> String {
        // date_part's double rather than EXTRACT's numeric: a third faster
        // over 100k rows, and exact, as stored instants are whole
        // milliseconds (about 1.8e12 of them, far below 2^53) and the cast
        // rounds.
        format!("CAST(date_part('epoch', {column}) * 1000 AS BIGINT)")
    }

    const GREATEST: &'static str = "GREATEST";
    const BYTE_ORDER: &'static str = " COLLATE \"C\"";
    const FOR_UPDATE: &'static str = " FOR UPDATE";

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        pool.begin().await
    }

    async fn lock_audit_chain(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(AUDIT_LOCK)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn enter_tenant_scope(conn: &mut PgConnection, tenant: &str) -> Result<(), sqlx::Error> {
        // `set_config('role', …, true)` is `SET LOCAL ROLE`, with the same
        // membership check, in the same round trip as the tenant.
        sqlx::query(
            "SELECT set_config('role', 'csp_tenant', true), \
             set_config('csp.tenant_id', $1, true)",
        )
        .bind(tenant)
        .execute(conn)
        .await?;
        Ok(())
    }

    const SIMILAR_TICKETS: &'static str = "SELECT ticket_id, description, resolution, \
        resolved_date, tags FROM csp_similar_tickets($1, $2, $3)";
    const SEARCH_KB: &'static str =
        "SELECT title, summary, url, body FROM csp_search_kb($1, $2, $3)";

    fn full_text_query(groups: &[Vec<String>]) -> String {
        let group = |words: &Vec<String>| match words.as_slice() {
            [word] => word.clone(),
            words => format!("({})", words.join(" & ")),
        };
        groups.iter().map(group).collect::<Vec<_>>().join(" | ")
    }

    async fn word_frequencies(
        conn: &mut PgConnection,
        index: FullTextIndex,
        words: &[String],
    ) -> Result<Frequencies, sqlx::Error> {
        let rows: Vec<(Option<f32>, Option<f32>)> =
            sqlx::query_as("SELECT frequency, table_rows FROM csp_word_frequencies($1, $2)")
                .bind(index.table())
                .bind(words)
                .fetch_all(conn)
                .await?;
        Ok(Frequencies {
            table_rows: rows
                .first()
                .and_then(|(_, rows)| *rows)
                .map_or(0.0, f64::from),
            of_words: rows.iter().map(|(f, _)| f.map(f64::from)).collect(),
        })
    }
}

impl PgStore {
    /// Connects with [`Config::default`] and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, &Config::default()).await
    }

    /// Connects, waiting up to `config.acquire_timeout` for the server to
    /// accept (so replicas may start before the database), then applies
    /// pending migrations. Concurrent replicas migrate one at a time: sqlx
    /// holds an advisory lock while migrating.
    #[instrument(name = "store.connect", skip_all, fields(db.url = %redact_url(url)), err)]
    pub async fn connect_with(url: &str, config: &Config) -> Result<Self, Error> {
        let target = redact_url(url);
        let options: PgConnectOptions = url.parse().map_err(|source| Error::InvalidUrl {
            url: target.clone(),
            source,
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options.clone())
            .await;
        let pool = match pool {
            Ok(pool) => pool,
            Err(error) => {
                let error = root_cause(&options, config.acquire_timeout, error).await;
                return Err(Error::from_sqlx(&target, error));
            }
        };
        migrations::apply(migrations::POSTGRES, &pool, &target).await?;
        Ok(Self::new(pool, target))
    }
}

/// When the server refuses connections the pool retries until its deadline
/// and then reports only "timed out"; one direct attempt recovers the reason
/// (refused, unknown host, authentication failed) for the error message.
async fn root_cause(
    options: &PgConnectOptions,
    timeout: Duration,
    error: sqlx::Error,
) -> sqlx::Error {
    if !matches!(error, sqlx::Error::PoolTimedOut) {
        return error;
    }
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Err(cause)) => cause,
        Ok(Ok(_)) | Err(_) => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::POSTGRES;
    use crate::migrations::migrator;
    use crate::migrations::tests::{OLD_PLUGIN_ROWS, assert_old_secret_survives};

    #[tokio::test]
    async fn postgres_plugin_secrets_from_before_0005_survive() {
        use futures::FutureExt as _;
        use sqlx::{AssertSqlSafe, Connection, PgConnection};
        let server = std::env::var("CSP_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut admin = PgConnection::connect(&server).await.unwrap_or_else(|e| {
            panic!("cannot reach the test Postgres (CSP_TEST_DATABASE_URL): {e}")
        });
        // A database of its own: the store under test connects to it.
        let name = format!("csp_upgrade_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&name);
        let url = url.to_string();
        let outcome = std::panic::AssertUnwindSafe({
            let url = url.clone();
            async move {
                let mut conn = PgConnection::connect(&url).await.unwrap();
                migrator(POSTGRES).run_to(4, &mut conn).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(OLD_PLUGIN_ROWS.replace("$now", "now()")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                let store = PgStore::connect(&url).await.unwrap();
                assert_old_secret_survives(&store).await;
                store.close().await;
            }
        })
        .catch_unwind()
        .await;
        // Dropped whatever happened; FORCE ends the store's connections.
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}
