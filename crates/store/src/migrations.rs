//! The schema, embedded in the binary so that a store migrates its database
//! on connect with no files beside the binary.
//!
//! Built at runtime instead of with `sqlx::migrate!`: that macro needs sqlx's
//! `macros` feature, which compiles sqlx and SQLite a second time for the
//! proc-macro (about 10 % of a cold build), to do what a list of
//! `include_str!`s does.
//!
//! Reversible from 0006 on: a migration is either one `<n>_<name>.sql`
//! (simple, 0001–0005) or a pair `<n>_<name>.up.sql` and `.down.sql`.
//! sqlx's own directory reader (and its CLI) refuses to mix the two kinds,
//! but its [`Migrator`] does not care: `run` applies the simple and the up
//! scripts, `undo` runs the down scripts of applied versions above a target.
//! 0001–0005 stay simple because they are applied in existing databases
//! (rewriting them as pairs would keep their checksums, but a down script
//! for the base schema would be a `DROP` of everything, which no one should
//! run); each later migration comes with its down script, and the
//! migrations tests roll the reversible ones back and apply them again on
//! both databases. [`undo`] is that rollback.

use crate::error::Error;
use sqlx::migrate::{Migrate, Migration, MigrationType, Migrator};
use sqlx::{Database, Pool, SqlSafeStr};
use std::borrow::Cow;

/// `(file name, contents)` of each migration; the file name is
/// `<version>_<description>.sql`. A unit test checks this list against the
/// directory, so a new file cannot be forgotten here.
type Embedded = &'static [(&'static str, &'static str)];

macro_rules! embed {
    ($backend:literal: $($file:literal),+ $(,)?) => {
        &[$((
            $file,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/", $backend, "/", $file)),
        )),+]
    };
}

pub(crate) const POSTGRES: Embedded = embed!(
    "postgres": "0001_init.sql",
    "0002_session_resume.sql",
    "0003_policy.sql",
    "0004_plugins.sql",
    "0005_sealed_secrets.sql",
    "0006_tenants.down.sql",
    "0006_tenants.up.sql",
    "0007_search.down.sql",
    "0007_search.up.sql",
    "0008_tenant_grants.down.sql",
    "0008_tenant_grants.up.sql",
    "0009_enhancement_feedback.down.sql",
    "0009_enhancement_feedback.up.sql",
    "0010_enhancement_completed_index.down.sql",
    "0010_enhancement_completed_index.up.sql",
    "0011_audit_tool_index.down.sql",
    "0011_audit_tool_index.up.sql",
    "0012_tenant_dedicated_queue.down.sql",
    "0012_tenant_dedicated_queue.up.sql",
    "0013_enhancement_worker.down.sql",
    "0013_enhancement_worker.up.sql",
    "0014_enhancement_search.down.sql",
    "0014_enhancement_search.up.sql",
);
pub(crate) const SQLITE: Embedded = embed!(
    "sqlite": "0001_init.sql",
    "0002_session_resume.sql",
    "0003_policy.sql",
    "0004_plugins.sql",
    "0005_sealed_secrets.sql",
    "0006_tenants.down.sql",
    "0006_tenants.up.sql",
    "0007_search.down.sql",
    "0007_search.up.sql",
    "0008_tenant_grants.down.sql",
    "0008_tenant_grants.up.sql",
    "0009_enhancement_feedback.down.sql",
    "0009_enhancement_feedback.up.sql",
    "0010_enhancement_completed_index.down.sql",
    "0010_enhancement_completed_index.up.sql",
    "0011_audit_tool_index.down.sql",
    "0011_audit_tool_index.up.sql",
    "0012_tenant_dedicated_queue.down.sql",
    "0012_tenant_dedicated_queue.up.sql",
    "0013_enhancement_worker.down.sql",
    "0013_enhancement_worker.up.sql",
    "0014_enhancement_search.down.sql",
    "0014_enhancement_search.up.sql",
);

pub(crate) fn migrator(files: Embedded) -> Migrator {
    let migrations = files
        .iter()
        .map(|&(file, sql)| {
            let (version, description, kind) = parse_file_name(file);
            Migration::new(
                version,
                Cow::Owned(description.replace('_', " ")),
                kind,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Applies the pending migrations of `files` to the database `target`
/// names (for errors).
pub(crate) async fn apply<DB: Database>(
    files: Embedded,
    pool: &Pool<DB>,
    target: &str,
) -> Result<(), Error>
where
    DB::Connection: Migrate,
{
    migrator(files)
        .run(pool)
        .await
        .map_err(|source| Error::Migrate {
            target: target.to_owned(),
            source,
        })
}

/// Reverts the applied reversible migrations above version `target`,
/// newest first, each in its transaction. Tests only: csp itself only ever
/// migrates up.
#[cfg(test)]
pub(crate) async fn undo<DB: Database>(
    files: Embedded,
    pool: &Pool<DB>,
    target: i64,
) -> Result<(), sqlx::migrate::MigrateError>
where
    DB::Connection: Migrate,
{
    migrator(files).undo(pool, target).await
}

fn parse_file_name(file: &'static str) -> (i64, &'static str, MigrationType) {
    let (stem, kind) = if let Some(stem) = file.strip_suffix(".up.sql") {
        (stem, MigrationType::ReversibleUp)
    } else if let Some(stem) = file.strip_suffix(".down.sql") {
        (stem, MigrationType::ReversibleDown)
    } else if let Some(stem) = file.strip_suffix(".sql") {
        (stem, MigrationType::Simple)
    } else {
        panic!("migration {file} does not end in .sql")
    };
    let (version, description) = stem
        .split_once('_')
        .unwrap_or_else(|| panic!("migration {file} is not named <version>_<description>.sql"));
    let version = version
        .parse()
        .unwrap_or_else(|_| panic!("migration {file} does not start with a version number"));
    (version, description, kind)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    fn files_on_disk(backend: &str) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../migrations")
            .join(backend);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_migration_file_is_embedded() {
        for (backend, embedded) in [("postgres", POSTGRES), ("sqlite", SQLITE)] {
            let embedded: Vec<&str> = embedded.iter().map(|(file, _)| *file).collect();
            assert_eq!(files_on_disk(backend), embedded, "migrations/{backend}");
        }
    }

    #[test]
    fn versions_are_parsed_from_file_names() {
        let migrator = migrator(POSTGRES);
        let first = migrator.iter().next().unwrap();
        assert_eq!((first.version, first.description.as_ref()), (1, "init"));
        assert!(migrator.iter().map(|m| m.version).is_sorted());
    }

    // Sessions written before migration 0002 must read as never resumed,
    // resumable, and resuming their own id: the defaults of the new columns.
    // (New sessions get the same from the stores; the shared suite checks
    // that.)

    /// `(agent_session_id, resume_count, is_resumable, ended_reason)`.
    type ResumeColumns = (Option<String>, i64, bool, Option<String>);

    #[tokio::test]
    async fn sqlite_sessions_from_before_0002_get_the_resume_defaults() {
        use sqlx::{Connection, SqliteConnection};
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let sqlite_migrator = migrator(SQLITE);
        sqlite_migrator.run_to(1, &mut conn).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO users (user_id, username, username_key, password_hash, role, created_at) \
             VALUES ('00000000-0000-4000-8000-000000000001', 'a', 'a', 'h', 'user', 0); \
             INSERT INTO sessions (session_id, user_id, status, created_at, last_active_at) \
             VALUES ('00000000-0000-4000-8000-000000000002', \
                     '00000000-0000-4000-8000-000000000001', 'idle', 0, 0);",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlite_migrator.run(&mut conn).await.unwrap();
        let columns: ResumeColumns = sqlx::query_as(
            "SELECT agent_session_id, resume_count, is_resumable, ended_reason FROM sessions",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(columns, (None, 0, true, None));
    }

    #[tokio::test]
    async fn postgres_sessions_from_before_0002_get_the_resume_defaults() {
        use sqlx::{AssertSqlSafe, Connection, PgConnection};
        let server = std::env::var("CSP_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut conn = PgConnection::connect(&server).await.unwrap_or_else(|e| {
            panic!("cannot reach the test Postgres (CSP_TEST_DATABASE_URL): {e}")
        });
        // Everything happens in a schema of its own inside one transaction
        // that is never committed, so nothing is left behind, even on panic.
        let mut tx = conn.begin().await.unwrap();
        let schema = format!("csp_upgrade_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE SCHEMA {schema}; SET LOCAL search_path TO {schema}"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
        let mut schema_migrator = migrator(POSTGRES);
        // The advisory lock is per database and outlives the transaction;
        // this migration is private to the schema anyway.
        schema_migrator.set_locking(false);
        schema_migrator.run_to(1, &mut *tx).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO users (user_id, username, username_key, password_hash, role, created_at) \
             VALUES ('00000000-0000-4000-8000-000000000001', 'a', 'a', 'h', 'user', now()); \
             INSERT INTO sessions (session_id, user_id, status, created_at, last_active_at) \
             VALUES ('00000000-0000-4000-8000-000000000002', \
                     '00000000-0000-4000-8000-000000000001', 'idle', now(), now());",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        schema_migrator.run(&mut *tx).await.unwrap();
        let columns: ResumeColumns = sqlx::query_as(
            "SELECT agent_session_id::text, resume_count, is_resumable, ended_reason FROM sessions",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(columns, (None, 0, true, None));
        tx.rollback().await.unwrap();
    }

    // Every reversible migration rolls back to the last simple one and
    // applies again, leaving a schema the store works with.

    /// The last migration that is not reversible.
    const LAST_SIMPLE: i64 = 5;

    /// Tables (and FTS5 indexes) created by the reversible migrations.
    const REVERSIBLE_TABLES: [&str; 8] = [
        "tenant_configs",
        "tenant_spend",
        "enhancement_history",
        "ticket_processing",
        "ticket_history",
        "kb_articles",
        "system_inventory",
        "tenant_grants",
    ];

    /// A column the reversible migrations add to a table of 0001–0005.
    const REVERSIBLE_COLUMN: (&str, &str) = ("sessions", "tenant_id");

    /// Columns a reversible migration adds to a table of another one
    /// (0009's votes on jobs), with an index of their own.
    const FEEDBACK_COLUMNS: [&str; 2] = ["feedback", "feedback_at"];
    const FEEDBACK_INDEX: &str = "enhancement_history_feedback";

    #[test]
    fn reversible_migrations_come_in_pairs_after_the_simple_ones() {
        for files in [POSTGRES, SQLITE] {
            let migrator = migrator(files);
            for m in migrator.iter() {
                let reversible = m.migration_type.is_reversible();
                assert_eq!(reversible, m.version > LAST_SIMPLE, "{}", m.version);
                if reversible {
                    let pair = migrator
                        .iter()
                        .filter(|other| other.version == m.version)
                        .count();
                    assert_eq!(pair, 2, "{} has an up and a down script", m.version);
                }
            }
        }
    }

    #[tokio::test]
    async fn sqlite_reversible_migrations_roll_back_and_apply_again() {
        use sqlx::sqlite::SqlitePoolOptions;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let tables = |pool: sqlx::SqlitePool| async move {
            sqlx::query_scalar::<_, String>(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        };
        let columns = |pool: sqlx::SqlitePool| async move {
            sqlx::query_scalar::<_, String>("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                .bind(REVERSIBLE_COLUMN.0)
                .fetch_all(&pool)
                .await
                .unwrap()
        };
        migrator(SQLITE).run(&pool).await.unwrap();
        let migrated = tables(pool.clone()).await;
        let migrated_columns = columns(pool.clone()).await;
        assert!(
            migrated_columns.iter().any(|c| c == REVERSIBLE_COLUMN.1),
            "{migrated_columns:?}"
        );
        let job_columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('enhancement_history')")
                .fetch_all(&pool)
                .await
                .unwrap();
        for column in FEEDBACK_COLUMNS {
            assert!(job_columns.iter().any(|c| c == column), "{job_columns:?}");
        }
        let feedback_index: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = $1",
        )
        .bind(FEEDBACK_INDEX)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(feedback_index, 1);
        for table in REVERSIBLE_TABLES.iter().chain(&[
            "ticket_history_fts",
            "kb_articles_fts",
            "ticket_history_vocab",
            "kb_articles_vocab",
        ]) {
            assert!(migrated.iter().any(|t| t == table), "{table}: {migrated:?}");
        }
        sqlx::raw_sql(
            "INSERT INTO tenant_configs (tenant_id, name, created_at, updated_at) \
             VALUES ('acme', 'Acme', 0, 0)",
        )
        .execute(&pool)
        .await
        .unwrap();

        undo(SQLITE, &pool, LAST_SIMPLE).await.unwrap();
        let rolled_back = tables(pool.clone()).await;
        assert!(
            !rolled_back
                .iter()
                .any(|t| REVERSIBLE_TABLES.contains(&t.as_str())
                    || t.ends_with("_fts")
                    || t.ends_with("_vocab")
                    || t.contains("_fts_")),
            "{rolled_back:?}"
        );
        // What 0001–0005 made is untouched.
        assert!(rolled_back.iter().any(|t| t == "sealed_secrets"));
        let triggers: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
                .fetch_one(&pool)
                .await
                .unwrap();
        let fresh = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        migrator(SQLITE).run_to(LAST_SIMPLE, &fresh).await.unwrap();
        let before: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
                .fetch_one(&fresh)
                .await
                .unwrap();
        assert_eq!(triggers, before, "0006's triggers are gone");
        // 0008's column is gone, and the table is as 0001–0005 left it.
        assert_eq!(columns(pool.clone()).await, columns(fresh).await);

        migrator(SQLITE).run(&pool).await.unwrap();
        assert_eq!(tables(pool.clone()).await, migrated);
        assert_eq!(columns(pool.clone()).await, migrated_columns);
        let store = crate::SqliteStore::new(pool, ":memory:".to_owned());
        assert_reapplied_schema_works(&store).await;
    }

    #[tokio::test]
    async fn postgres_reversible_migrations_roll_back_and_apply_again() {
        use sqlx::{AssertSqlSafe, Connection, PgConnection};
        let server = std::env::var("CSP_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut admin = PgConnection::connect(&server).await.unwrap_or_else(|e| {
            panic!("cannot reach the test Postgres (CSP_TEST_DATABASE_URL): {e}")
        });
        // A database of its own (row-level security and functions included);
        // dropped whatever happens.
        let name = format!("csp_undo_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&name);
        let outcome = std::panic::AssertUnwindSafe(postgres_round_trip(url.to_string()));
        let outcome = futures::FutureExt::catch_unwind(outcome).await;
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

    async fn postgres_round_trip(url: String) {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        // Tables, their columns and indexes, policies and functions in the
        // database.
        let objects = |pool: sqlx::PgPool| async move {
            sqlx::query_scalar::<_, String>(
                "SELECT 'table ' || tablename FROM pg_tables WHERE schemaname = 'public' \
                 UNION ALL SELECT 'column ' || table_name || '.' || column_name \
                 FROM information_schema.columns WHERE table_schema = 'public' \
                 UNION ALL SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = 'public' \
                 UNION ALL SELECT 'policy ' || tablename || '.' || policyname FROM pg_policies \
                 UNION ALL SELECT 'function ' || proname FROM pg_proc \
                 WHERE pronamespace = 'public'::regnamespace ORDER BY 1",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        };
        migrator(POSTGRES).run_to(LAST_SIMPLE, &pool).await.unwrap();
        let simple = objects(pool.clone()).await;
        migrator(POSTGRES).run(&pool).await.unwrap();
        let migrated = objects(pool.clone()).await;
        for table in REVERSIBLE_TABLES {
            assert!(migrated.contains(&format!("table {table}")), "{migrated:?}");
        }
        assert!(migrated.contains(&"function csp_similar_tickets".to_owned()));
        assert!(migrated.contains(&"policy ticket_history.tenant_isolation".to_owned()));
        assert!(migrated.contains(&"policy tenant_grants.tenant_isolation".to_owned()));
        for column in FEEDBACK_COLUMNS {
            let column = format!("column enhancement_history.{column}");
            assert!(migrated.contains(&column), "{column}: {migrated:?}");
        }
        assert!(migrated.contains(&format!("index {FEEDBACK_INDEX}")));
        for object in [
            "column enhancement_history.description_lower",
            "index enhancement_history_description_trgm",
            "index enhancement_history_ticket",
        ] {
            assert!(migrated.contains(&object.to_owned()), "{object}");
        }
        let (table, column) = REVERSIBLE_COLUMN;
        assert!(migrated.contains(&format!("column {table}.{column}")));

        undo(POSTGRES, &pool, LAST_SIMPLE).await.unwrap();
        assert_eq!(objects(pool.clone()).await, simple);
        migrator(POSTGRES).run(&pool).await.unwrap();
        assert_eq!(objects(pool.clone()).await, migrated);
        let store = crate::PgStore::new(pool, "test".to_owned());
        assert_reapplied_schema_works(&store).await;
        store.close().await;
    }

    async fn assert_reapplied_schema_works(store: &dyn crate::store::Store) {
        use crate::{HistoryTicket, NewTenant};
        use csp_domain::{HistorySource, TenantId};
        let acme = TenantId::parse("acme").unwrap();
        store
            .create_tenant(NewTenant {
                tenant_id: acme.clone(),
                name: "Acme".to_owned(),
                tool_type: "servicedesk_plus".to_owned(),
                settings: serde_json::json!({}),
                preferences: serde_json::json!({}),
                monthly_budget_micros: None,
                dedicated_queue: false,
                secrets: vec![],
            })
            .await
            .unwrap();
        let ticket = HistoryTicket {
            ticket_id: "1".to_owned(),
            description: "Disk full".to_owned(),
            resolution: "Cleaned".to_owned(),
            resolved_date: time::OffsetDateTime::UNIX_EPOCH,
            tags: vec![],
        };
        let now = time::OffsetDateTime::now_utc();
        store
            .upsert_ticket_history(
                &acme,
                std::slice::from_ref(&ticket),
                HistorySource::BulkImport,
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            store.similar_tickets(&acme, "disk", 5).await.unwrap(),
            [ticket]
        );
        // 0008: a grant and a session bound to the tenant.
        let user = store
            .create_user(crate::NewUser {
                username: "alice".to_owned(),
                password_hash: "h".to_owned(),
                role: csp_domain::Role::User,
                monthly_cost_cap_micros: None,
            })
            .await
            .unwrap();
        assert!(
            store
                .grant_tenant(&acme, user.user_id, None, now)
                .await
                .unwrap()
        );
        assert_eq!(
            store.granted_tenants(user.user_id).await.unwrap(),
            std::slice::from_ref(&acme)
        );
        let session = store
            .create_session(crate::NewSession {
                session_id: csp_domain::SessionId::new(),
                user_id: user.user_id,
                status: "ready".to_owned(),
                tenant_id: Some(acme.clone()),
            })
            .await
            .unwrap();
        let read = store.session(session.session_id).await.unwrap().unwrap();
        assert_eq!(read.tenant_id, Some(acme.clone()));
        // 0009: a vote on a job, read back on the job and in the summary.
        let job = store
            .record_enhancement(crate::NewEnhancement {
                job_id: uuid::Uuid::new_v4(),
                tenant_id: acme.clone(),
                ticket_id: "2".to_owned(),
                delivery_key: "d".to_owned(),
                subject: "s".to_owned(),
                description: "d".to_owned(),
                priority: "High".to_owned(),
                correlation_id: "c".to_owned(),
            })
            .await
            .unwrap()
            .job;
        let vote = csp_domain::FeedbackVote::Helpful;
        assert_eq!(
            store.record_feedback(job.job_id, vote, now).await.unwrap(),
            Some(acme)
        );
        let read = store.enhancement(job.job_id).await.unwrap().unwrap();
        assert_eq!(read.feedback, Some(vote));
        assert_eq!(store.feedback_summary(None, None).await.unwrap().len(), 1);
        // 0014: the search reads the lower-cased description.
        let search = crate::EnhancementQuery {
            q: Some("D".to_owned()),
            ..Default::default()
        };
        let (found, total) = store.enhancements_page(&search).await.unwrap();
        assert_eq!((found.len(), total), (1, 1));
    }

    // Plugin secrets stored before migration 0005 (in plugin_secrets) must
    // read the same through the generic API afterwards, as secrets of their
    // plugin, and so must the plugin's state.

    /// A plugin and one sealed secret in the 0004 schema; `$now` is the
    /// dialect's timestamp.
    pub(crate) const OLD_PLUGIN_ROWS: &str = "INSERT INTO plugin_state (plugin_name, active, config, updated_at) \
         VALUES ('everything', TRUE, '{\"greeting\":\"hi\"}', $now); \
         INSERT INTO plugin_secrets (plugin_name, config_key, encrypted_value, \
         encryption_key_version, updated_at) \
         VALUES ('everything', 'api_token', 'gAAAA-old-token', '0123456789abcdef', $now);";

    pub(crate) async fn assert_old_secret_survives(store: &dyn crate::store::Store) {
        use crate::secrets::{Owner, StoredSecret};
        let secret = StoredSecret {
            key: "api_token".to_owned(),
            encrypted_value: "gAAAA-old-token".to_owned(),
            encryption_key_version: "0123456789abcdef".to_owned(),
        };
        assert_eq!(
            store.secrets(&Owner::plugin("everything")).await.unwrap(),
            vec![secret.clone()]
        );
        assert_eq!(
            store.secrets(&Owner::tenant("everything")).await.unwrap(),
            vec![]
        );
        let state = store.plugin_state("everything").await.unwrap().unwrap();
        assert!(state.active);
        assert_eq!(state.config["greeting"], "hi");
        assert_eq!(state.secrets, vec![secret]);
    }
}
