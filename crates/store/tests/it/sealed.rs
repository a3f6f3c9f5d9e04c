//! Sealed secrets (csp-secrets) in both stores, as csp uses them together:
//! what lands in the tables is a token, never the plaintext, and a key
//! rotation through `reencrypt_secrets` moves every secret to the new key
//! once.

use csp_secrets::{Error, Keyring, Sealed, SecretKey};
use csp_store::test_support::TestDb;
use csp_store::{SecretChange, SqliteStore, Store, StoredSecret};
use secrecy::ExposeSecret as _;
use sqlx::{PgPool, SqlitePool};

const PLAINTEXT: &str = "sk-live-4f9a8b7c6d5e3210";

fn sealed_of(secret: &StoredSecret) -> Sealed {
    Sealed {
        token: secret.encrypted_value.clone(),
        key_version: secret.encryption_key_version.clone(),
    }
}

fn stored(key: &str, sealed: Sealed) -> StoredSecret {
    StoredSecret {
        key: key.to_owned(),
        encrypted_value: sealed.token,
        encryption_key_version: sealed.key_version,
    }
}

/// The database itself, read past the store.
enum Raw {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Raw {
    async fn encrypted_values(&self) -> Vec<String> {
        let sql = "SELECT encrypted_value FROM sealed_secrets ORDER BY secret_key";
        match self {
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .expect("read sealed_secrets")
    }

    /// Every column of every row of the plugin and secret tables, as text.
    async fn every_column(&self) -> Vec<String> {
        match self {
            Raw::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT row_to_json(t)::text FROM sealed_secrets t \
                 UNION ALL SELECT row_to_json(t)::text FROM plugin_state t",
                )
                .fetch_all(pool)
                .await
            }
            Raw::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT owner_kind || '|' || owner_id || '|' || secret_key || '|' || \
                 encrypted_value || '|' || encryption_key_version || '|' || updated_at \
                 FROM sealed_secrets \
                 UNION ALL SELECT plugin_name || '|' || active || '|' || config || '|' || \
                 COALESCE(updated_by, '') || '|' || updated_at FROM plugin_state",
                )
                .fetch_all(pool)
                .await
            }
        }
        .expect("read the plugin tables")
    }

    async fn assert_no_plaintext(&self, key_version: &str) {
        let rows = self.every_column().await;
        assert_eq!(rows.len(), 2, "one state and one secret: {rows:?}");
        // The rows are really read: the plain config and the version show.
        assert!(rows.iter().any(|row| row.contains("greeting")), "{rows:?}");
        assert!(rows.iter().any(|row| row.contains(key_version)), "{rows:?}");
        for row in &rows {
            assert!(!row.contains(PLAINTEXT), "plaintext stored: {row}");
        }
    }
}

async fn seal_store_and_rotate(store: &dyn Store, raw: &Raw) {
    let (a, b) = (SecretKey::generate().0, SecretKey::generate().0);
    let sealed = Keyring::new(a.clone(), vec![]).seal(PLAINTEXT);
    let mut config = serde_json::Map::new();
    config.insert("greeting".to_owned(), "hi".into());
    store
        .save_plugin_config(
            "everything",
            config,
            vec![SecretChange::Set(stored("api_token", sealed.clone()))],
            None,
        )
        .await
        .unwrap();
    assert_eq!(raw.encrypted_values().await, vec![sealed.token.clone()]);
    raw.assert_no_plaintext(a.version()).await;

    // Rotating without the old key among the previous ones cannot open the
    // secret: the rotation aborts and nothing changes.
    let forgot_a = Keyring::new(b.clone(), vec![]);
    let rotate_without_a = |secret: &StoredSecret| -> Result<Option<StoredSecret>, String> {
        forgot_a
            .reseal(&sealed_of(secret))
            .map(|new| new.map(|new| stored(&secret.key, new)))
            .map_err(|e| e.to_string())
    };
    let err = store
        .reencrypt_secrets(&rotate_without_a)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(a.version()), "{err}");
    assert_eq!(raw.encrypted_values().await, vec![sealed.token.clone()]);

    let b_after_a = Keyring::new(b.clone(), vec![a.clone()]);
    let rotate = |secret: &StoredSecret| -> Result<Option<StoredSecret>, String> {
        b_after_a
            .reseal(&sealed_of(secret))
            .map(|new| new.map(|new| stored(&secret.key, new)))
            .map_err(|e| e.to_string())
    };
    assert_eq!(store.reencrypt_secrets(&rotate).await.unwrap(), 1);
    assert_eq!(store.reencrypt_secrets(&rotate).await.unwrap(), 0);

    let state = store.plugin_state("everything").await.unwrap().unwrap();
    let rotated = sealed_of(&state.secrets[0]);
    assert_eq!(rotated.key_version, b.version());
    assert_ne!(rotated.token, sealed.token);
    assert_eq!(raw.encrypted_values().await, vec![rotated.token.clone()]);
    raw.assert_no_plaintext(b.version()).await;

    match Keyring::new(a, vec![]).open(&rotated) {
        Err(Error::UnknownKeyVersion(version)) => assert_eq!(version, b.version()),
        other => panic!("expected UnknownKeyVersion, got {other:?}"),
    }
    let opened = Keyring::new(b, vec![]).open(&rotated).unwrap();
    assert_eq!(opened.expose_secret(), PLAINTEXT);
}

#[tokio::test]
async fn sqlite_keeps_secrets_sealed_through_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("csp.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let raw = SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    seal_store_and_rotate(&store, &Raw::Sqlite(raw)).await;
}

#[tokio::test]
async fn postgres_keeps_secrets_sealed_through_a_rotation() {
    let db = TestDb::create().await;
    let raw = PgPool::connect(db.url()).await.unwrap();
    seal_store_and_rotate(db.store(), &Raw::Postgres(raw.clone())).await;
    raw.close().await;
}
