//! Sealed secrets of any owner (a plugin, a tenant), by owner and key name:
//! the [`SecretStore`] concern, its rules and its implementation.
//!
//! The store only ever sees a secret sealed (csp-secrets seals and opens
//! them); it keeps the token and the version of the key that sealed it, so
//! that a key rotation finds what is not under the current key.

use crate::dialect::{Dialect, On};
use crate::error::Error;
use crate::sql::{Columns, SqlStore, on};
use crate::timestamp;
use async_trait::async_trait;
use sqlx::Transaction;
use std::fmt;
use time::OffsetDateTime;
use tracing::instrument;

/// What kind of thing owns a secret. Stored as [`OwnerKind::as_str`]; the
/// tables accept these values only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnerKind {
    /// A plugin's secret config values; the id is the plugin's name.
    Plugin,
    /// A tenant's credentials (API key, webhook secret); the id is the
    /// tenant's id.
    Tenant,
}

impl OwnerKind {
    pub const ALL: [OwnerKind; 2] = [OwnerKind::Plugin, OwnerKind::Tenant];

    /// The value in the `owner_kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Plugin => "plugin",
            OwnerKind::Tenant => "tenant",
        }
    }

    pub(crate) fn from_db(value: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| Error::Corrupt(format!("unknown secret owner kind '{value}'")))
    }
}

impl fmt::Display for OwnerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose secrets: a kind and that kind's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub kind: OwnerKind,
    pub id: String,
}

impl Owner {
    pub fn new(kind: OwnerKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }

    pub fn plugin(name: impl Into<String>) -> Self {
        Self::new(OwnerKind::Plugin, name)
    }

    pub fn tenant(id: impl Into<String>) -> Self {
        Self::new(OwnerKind::Tenant, id)
    }
}

/// `plugin 'everything'`: how errors name an owner (never a secret).
impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '{}'", self.kind, self.id)
    }
}

/// One secret value as stored: sealed by the caller (csp-secrets), never
/// seen in the clear by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// The secret's name under its owner (a plugin's config key, a tenant's
    /// `api_key`).
    pub key: String,
    /// The Fernet token.
    pub encrypted_value: String,
    /// The version of the key that sealed it.
    pub encryption_key_version: String,
}

/// What a re-encryption does with each stored secret: the replacement (same
/// `key`), `None` to keep it, or an error that rolls everything back. (The
/// `for<'s>` is spelled out because `async_trait` would otherwise name the
/// elided lifetime, tying the argument to the call.)
pub type Reseal<'f> =
    dyn for<'s> Fn(&'s StoredSecret) -> Result<Option<StoredSecret>, String> + Send + Sync + 'f;

/// Sealed secrets by owner and key. The store does not check that an owner
/// exists: its owner's own concern does. A plugin's secrets are written
/// with its config by [`crate::PluginStore::save_plugin_config`] (the same
/// statements, in the transaction that also checks that no secret sits in
/// the plain config); [`SecretStore::put_secrets`] does not know a config.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The owner's secrets, by key (byte order).
    async fn secrets(&self, owner: &Owner) -> Result<Vec<StoredSecret>, Error>;
    /// Stores every secret in one transaction, each replacing the one under
    /// the same key (of several with one key, the last wins).
    /// [`Error::InvalidInput`], with nothing written, for an empty owner id
    /// or key.
    async fn put_secrets(&self, owner: &Owner, secrets: Vec<StoredSecret>) -> Result<(), Error>;
    /// Removes the owner's secret under `key`; whether there was one.
    async fn delete_secret(&self, owner: &Owner, key: &str) -> Result<bool, Error>;
    /// Re-encrypts the secrets of every owner in one transaction that holds
    /// them (Postgres: the rows `FOR UPDATE`; SQLite: the write lock) so no
    /// write interleaves: `f` sees every stored secret in (owner kind, owner
    /// id, key) order and returns the replacement (same `key`) or `None` to
    /// keep it. An `Err` from `f` ([`Error::Aborted`], naming the owner and
    /// key) or a renamed replacement ([`Error::InvalidInput`]) rolls
    /// everything back. Returns how many secrets were rewritten. Owners'
    /// own records (a plugin state's `updated_at`) stay: nothing an operator
    /// set has changed.
    async fn reencrypt_secrets(&self, f: &Reseal<'_>) -> Result<u64, Error>;
}

/// Owner ids and secret keys are keys; an empty one is a caller's bug that
/// should not become a row.
pub(crate) fn check_owner(owner: &Owner) -> Result<(), Error> {
    check_key(&format!("{} id", owner.kind), &owner.id)
}

pub(crate) fn check_key(what: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::InvalidInput(format!("{what} is empty")));
    }
    Ok(())
}

/// Checks the owner and every key, and orders the secrets by key keeping
/// the order of one key's values: rows are then locked in key order, the
/// order in which a re-encryption locks them, so the two cannot deadlock.
pub(crate) fn prepare(
    owner: &Owner,
    mut secrets: Vec<StoredSecret>,
) -> Result<Vec<StoredSecret>, Error> {
    check_owner(owner)?;
    for secret in &secrets {
        check_key("secret key", &secret.key)?;
    }
    secrets.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(secrets)
}

/// What `f` of [`SecretStore::reencrypt_secrets`] made of `old`: `Ok(None)`
/// to keep it, the replacement to write, or the error that aborts the whole
/// re-encryption.
pub(crate) fn rewrite(
    owner: &Owner,
    old: &StoredSecret,
    f: &Reseal<'_>,
) -> Result<Option<StoredSecret>, Error> {
    let new = f(old)
        .map_err(|message| Error::Aborted(format!("secret '{}' of {owner}: {message}", old.key)))?;
    if let Some(new) = &new
        && new.key != old.key
    {
        return Err(Error::InvalidInput(format!(
            "re-encrypting secret '{}' of {owner} returned key '{}'",
            old.key, new.key
        )));
    }
    Ok(new)
}

/// Stores one secret of `owner` inside the caller's transaction (the one
/// statement every write of a secret goes through).
pub(crate) async fn upsert<DB: Dialect>(
    store: &SqlStore<DB>,
    tx: &mut Transaction<'static, DB>,
    owner: &Owner,
    secret: &StoredSecret,
    now: OffsetDateTime,
) -> Result<(), Error> {
    store
        .db
        .sql(
            "INSERT INTO sealed_secrets (owner_kind, owner_id, secret_key, encrypted_value, \
             encryption_key_version, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (owner_kind, owner_id, secret_key) DO UPDATE SET \
             encrypted_value = EXCLUDED.encrypted_value, \
             encryption_key_version = EXCLUDED.encryption_key_version, \
             updated_at = EXCLUDED.updated_at",
        )
        .bind(owner.kind.as_str())
        .bind(owner.id.as_str())
        .bind(secret.key.as_str())
        .bind(secret.encrypted_value.as_str())
        .bind(secret.encryption_key_version.as_str())
        .bind_time(now)
        .execute(on(tx))
        .await?;
    Ok(())
}

/// Removes one secret of `owner`; whether there was one.
pub(crate) async fn remove<'c, DB: Dialect>(
    store: &'c SqlStore<DB>,
    target: On<'c, DB>,
    owner: &Owner,
    key: &str,
) -> Result<bool, Error> {
    let rows = store
        .db
        .sql(
            "DELETE FROM sealed_secrets \
             WHERE owner_kind = $1 AND owner_id = $2 AND secret_key = $3",
        )
        .bind(owner.kind.as_str())
        .bind(owner.id.as_str())
        .bind(key)
        .execute(target)
        .await?;
    Ok(rows > 0)
}

fn stored_from_row<DB: Dialect>(row: &Columns<'_, DB>) -> Result<StoredSecret, Error> {
    Ok(StoredSecret {
        key: row.get("secret_key")?,
        encrypted_value: row.get("encrypted_value")?,
        encryption_key_version: row.get("encryption_key_version")?,
    })
}

#[async_trait]
impl<DB: Dialect> SecretStore for SqlStore<DB> {
    async fn secrets(&self, owner: &Owner) -> Result<Vec<StoredSecret>, Error> {
        let db = &self.db;
        let rows = db
            .dialect_sql(format!(
                "SELECT secret_key, encrypted_value, encryption_key_version FROM sealed_secrets \
                 WHERE owner_kind = $1 AND owner_id = $2 ORDER BY secret_key{}",
                DB::BYTE_ORDER
            ))
            .bind(owner.kind.as_str())
            .bind(owner.id.as_str())
            .fetch_all(db.pool())
            .await?;
        rows.iter()
            .map(|row| stored_from_row(&db.columns(row)))
            .collect()
    }

    #[instrument(name = "store.put_secrets", skip_all, fields(owner.kind = %owner.kind, count = secrets.len()))]
    async fn put_secrets(&self, owner: &Owner, secrets: Vec<StoredSecret>) -> Result<(), Error> {
        let secrets = prepare(owner, secrets)?;
        let now = timestamp::now();
        let mut tx = self.db.begin_write().await?;
        for secret in &secrets {
            upsert(self, &mut tx, owner, secret, now).await?;
        }
        self.db.commit(tx).await
    }

    #[instrument(name = "store.delete_secret", skip_all, fields(owner.kind = %owner.kind))]
    async fn delete_secret(&self, owner: &Owner, key: &str) -> Result<bool, Error> {
        remove(self, self.db.pool(), owner, key).await
    }

    #[instrument(name = "store.reencrypt_secrets", skip_all, err)]
    async fn reencrypt_secrets(&self, f: &Reseal<'_>) -> Result<u64, Error> {
        let db = &self.db;
        let mut tx = db.begin_write().await?;
        // Locked in key order, the order writes lock them in, so a write and
        // a re-encryption wait for each other instead of deadlocking (and on
        // SQLite the write lock keeps every secret as read).
        let rows = db
            .dialect_sql(format!(
                "SELECT owner_kind, owner_id, secret_key, encrypted_value, encryption_key_version \
                 FROM sealed_secrets ORDER BY owner_kind{c}, owner_id{c}, secret_key{c}{lock}",
                c = DB::BYTE_ORDER,
                lock = DB::FOR_UPDATE
            ))
            .fetch_all(on(&mut tx))
            .await?;
        let now = timestamp::now();
        let mut rewritten = 0;
        for row in &rows {
            let row = db.columns(row);
            let kind: String = row.get("owner_kind")?;
            let owner = Owner::new(OwnerKind::from_db(&kind)?, row.get::<String>("owner_id")?);
            let old = stored_from_row(&row)?;
            let Some(new) = rewrite(&owner, &old, f)? else {
                continue;
            };
            upsert(self, &mut tx, &owner, &new, now).await?;
            rewritten += 1;
        }
        db.commit(tx).await?;
        Ok(rewritten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(key: &str, value: &str) -> StoredSecret {
        StoredSecret {
            key: key.to_owned(),
            encrypted_value: value.to_owned(),
            encryption_key_version: "v1".to_owned(),
        }
    }

    #[test]
    fn owner_kinds_round_trip_through_the_database_value() {
        for kind in OwnerKind::ALL {
            assert_eq!(OwnerKind::from_db(kind.as_str()).unwrap(), kind);
        }
        assert!(matches!(OwnerKind::from_db("user"), Err(Error::Corrupt(_))));
        assert_eq!(Owner::tenant("t1").to_string(), "tenant 't1'");
    }

    #[test]
    fn secrets_are_ordered_by_key_keeping_each_keys_order() {
        let ordered = prepare(
            &Owner::tenant("t"),
            vec![secret("b", "1"), secret("a", "2"), secret("b", "3")],
        )
        .unwrap();
        assert_eq!(
            ordered,
            vec![secret("a", "2"), secret("b", "1"), secret("b", "3")]
        );
    }

    #[test]
    fn empty_owner_ids_and_keys_are_invalid() {
        let err = prepare(&Owner::tenant(""), vec![]).unwrap_err();
        assert!(err.to_string().contains("tenant id"), "{err}");
        assert!(matches!(
            prepare(&Owner::plugin("p"), vec![secret("", "x")]),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn a_failed_or_renaming_rewrite_names_owner_and_key_only() {
        let owner = Owner::plugin("p");
        let fails = |_: &StoredSecret| -> Result<Option<StoredSecret>, String> {
            Err("unknown key version".to_owned())
        };
        let err = rewrite(&owner, &secret("k", "sealed"), &fails).unwrap_err();
        assert!(
            matches!(&err, Error::Aborted(m) if m == "secret 'k' of plugin 'p': unknown key version"),
            "{err}"
        );
        let renames = |s: &StoredSecret| -> Result<Option<StoredSecret>, String> {
            Ok(Some(secret(&format!("{}2", s.key), "x")))
        };
        assert!(matches!(
            rewrite(&owner, &secret("k", "sealed"), &renames),
            Err(Error::InvalidInput(_))
        ));
    }
}
