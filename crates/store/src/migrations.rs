//! The schema, embedded in the binary so that a store migrates its database
//! on connect with no files beside the binary.
//!
//! Built at runtime instead of with `sqlx::migrate!`: that macro needs sqlx's
//! `macros` feature, which compiles sqlx and SQLite a second time for the
//! proc-macro (about 10 % of a cold build), to do what a list of
//! `include_str!`s does.

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
);
pub(crate) const SQLITE: Embedded = embed!(
    "sqlite": "0001_init.sql",
    "0002_session_resume.sql",
    "0003_policy.sql",
    "0004_plugins.sql",
    "0005_sealed_secrets.sql",
);

pub(crate) fn migrator(files: Embedded) -> Migrator {
    let migrations = files
        .iter()
        .map(|&(file, sql)| {
            let (version, description) = parse_file_name(file);
            Migration::new(
                version,
                Cow::Owned(description.replace('_', " ")),
                MigrationType::Simple,
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

fn parse_file_name(file: &'static str) -> (i64, &'static str) {
    let stem = file
        .strip_suffix(".sql")
        .unwrap_or_else(|| panic!("migration {file} does not end in .sql"));
    let (version, description) = stem
        .split_once('_')
        .unwrap_or_else(|| panic!("migration {file} is not named <version>_<description>.sql"));
    let version = version
        .parse()
        .unwrap_or_else(|_| panic!("migration {file} does not start with a version number"));
    (version, description)
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
