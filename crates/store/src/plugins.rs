//! Plugins' stored state: whether each is active, its non-secret config,
//! and its secrets (the [`SecretStore`](crate::SecretStore)'s, of
//! [`Owner::plugin`]), written together in one transaction.

use crate::dialect::Dialect;
use crate::error::Error;
use crate::secrets::{self, Owner, StoredSecret, check_key};
use crate::sql::{Columns, SqlStore, on};
use crate::timestamp;
use async_trait::async_trait;
use csp_domain::UserId;
use sqlx::Transaction;
use sqlx::types::Json;
use time::OffsetDateTime;
use tracing::instrument;

/// A plugin as operators left it. Timestamps are UTC, truncated to the
/// millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginState {
    pub plugin_name: String,
    pub active: bool,
    /// Non-secret config values only; never names a key of `secrets`.
    pub config: serde_json::Map<String, serde_json::Value>,
    /// The secret values that are set, by `key`: the
    /// [`SecretStore`](crate::SecretStore)'s secrets of [`Owner::plugin`]
    /// of this name.
    pub secrets: Vec<StoredSecret>,
    /// Who last changed the state or config; `None` when csp itself did.
    pub updated_by: Option<UserId>,
    pub updated_at: OffsetDateTime,
}

/// A change to one secret of a plugin or a tenant, applied by
/// [`PluginStore::save_plugin_config`] and
/// [`TenantStore::update_tenant`](crate::TenantStore::update_tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    /// Stores the value, replacing the one under the same `key`.
    Set(StoredSecret),
    /// Removes the value under this `key`; nothing if there is none.
    Remove(String),
}

#[async_trait]
pub trait PluginStore: Send + Sync {
    /// Every plugin with a stored state, by name (byte order).
    async fn plugin_states(&self) -> Result<Vec<PluginState>, Error>;
    async fn plugin_state(&self, name: &str) -> Result<Option<PluginState>, Error>;
    /// Sets `active`, creating the state (empty config, no secrets) if there
    /// is none. [`Error::InvalidInput`] for an empty name.
    async fn set_plugin_active(
        &self,
        name: &str,
        active: bool,
        by: Option<UserId>,
    ) -> Result<PluginState, Error>;
    /// Replaces the non-secret config and applies the secret changes in
    /// order, in one transaction, creating the state (inactive) if there is
    /// none; `active` stays. Concurrent saves of one plugin take turns, so
    /// the result is entirely one of them. The secrets are the
    /// [`SecretStore`](crate::SecretStore)'s, written in the same
    /// transaction as the config. [`Error::InvalidInput`], with
    /// nothing written, for an empty name or config key, or when `config`
    /// names a key that has a secret stored after the changes (a secret
    /// must never also sit in the clear).
    async fn save_plugin_config(
        &self,
        name: &str,
        config: serde_json::Map<String, serde_json::Value>,
        secrets: Vec<SecretChange>,
        by: Option<UserId>,
    ) -> Result<PluginState, Error>;
}

/// Checks the owner and every key and orders the changes by key, keeping
/// the order of changes to one key. Rows are then locked in key order, the
/// order in which a re-encryption locks them, so the two cannot deadlock.
/// (Tenants' secret changes go through it too.)
pub(crate) fn prepare_changes(
    owner: &Owner,
    mut changes: Vec<SecretChange>,
) -> Result<Vec<SecretChange>, Error> {
    secrets::check_owner(owner)?;
    for change in &changes {
        check_key("secret key", change_key(change))?;
    }
    changes.sort_by(|a, b| change_key(a).cmp(change_key(b)));
    Ok(changes)
}

/// Applies changes from [`prepare_changes`] in the caller's transaction.
pub(crate) async fn apply_changes<DB: Dialect>(
    store: &SqlStore<DB>,
    tx: &mut Transaction<'static, DB>,
    owner: &Owner,
    changes: &[SecretChange],
    now: OffsetDateTime,
) -> Result<(), Error> {
    for change in changes {
        match change {
            SecretChange::Set(secret) => secrets::upsert(store, tx, owner, secret, now).await?,
            SecretChange::Remove(key) => {
                secrets::remove(store, on(tx), owner, key).await?;
            }
        }
    }
    Ok(())
}

fn change_key(change: &SecretChange) -> &str {
    match change {
        SecretChange::Set(secret) => &secret.key,
        SecretChange::Remove(key) => key,
    }
}

/// Checked on the state as saved, inside the transaction, so that it holds
/// whatever the changes did. Names the key, never its value.
fn check_no_secret_in_config(state: &PluginState) -> Result<(), Error> {
    match state
        .secrets
        .iter()
        .find(|secret| state.config.contains_key(&secret.key))
    {
        Some(secret) => Err(Error::InvalidInput(format!(
            "config of plugin '{}' holds '{}', which is stored as a secret; a secret \
             value never goes into the plain config",
            state.plugin_name, secret.key
        ))),
        None => Ok(()),
    }
}

/// One row of the plugin_state LEFT JOIN sealed_secrets query: a state with
/// one of its secrets, or with none.
struct JoinedRow {
    plugin_name: String,
    active: bool,
    config: serde_json::Map<String, serde_json::Value>,
    updated_by: Option<UserId>,
    updated_at: OffsetDateTime,
    secret: Option<StoredSecret>,
}

/// Folds rows ordered by plugin name into one state per plugin.
fn group(rows: impl IntoIterator<Item = JoinedRow>) -> Vec<PluginState> {
    let mut states: Vec<PluginState> = Vec::new();
    for row in rows {
        let same = states
            .last()
            .is_some_and(|last| last.plugin_name == row.plugin_name);
        if !same {
            states.push(PluginState {
                plugin_name: row.plugin_name,
                active: row.active,
                config: row.config,
                secrets: Vec::new(),
                updated_by: row.updated_by,
                updated_at: row.updated_at,
            });
        }
        if let Some(secret) = row.secret {
            states
                .last_mut()
                .expect("a state was pushed for this row")
                .secrets
                .push(secret);
        }
    }
    states
}

/// States of every plugin, or of `name` only, from one statement (one
/// snapshot): each state joined with its secrets (`'plugin'` is
/// `OwnerKind::Plugin`'s column value), in byte order whatever the
/// database's collation.
async fn load<'c, DB: Dialect>(
    store: &'c SqlStore<DB>,
    target: crate::dialect::On<'c, DB>,
    name: Option<&str>,
) -> Result<Vec<PluginState>, Error> {
    let db = &store.db;
    let select = "SELECT p.plugin_name, p.active, p.config, p.updated_by, p.updated_at, \
                  s.secret_key, s.encrypted_value, s.encryption_key_version \
                  FROM plugin_state p LEFT JOIN sealed_secrets s \
                  ON s.owner_kind = 'plugin' AND s.owner_id = p.plugin_name";
    let order = format!(
        " ORDER BY p.plugin_name{c}, s.secret_key{c}",
        c = DB::BYTE_ORDER
    );
    let rows = match name {
        Some(name) => {
            db.dialect_sql(format!("{select} WHERE p.plugin_name = $1{order}"))
                .bind(name)
                .fetch_all(target)
                .await?
        }
        None => {
            db.dialect_sql(format!("{select}{order}"))
                .fetch_all(target)
                .await?
        }
    };
    let rows = rows
        .iter()
        .map(|row| joined_row(db.columns(row)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(group(rows))
}

fn joined_row<DB: Dialect>(row: Columns<'_, DB>) -> Result<JoinedRow, Error> {
    let config: Json<serde_json::Map<String, serde_json::Value>> = row.get("config")?;
    let key: Option<String> = row.get("secret_key")?;
    let secret = match key {
        Some(key) => Some(StoredSecret {
            key,
            encrypted_value: row.get("encrypted_value")?,
            encryption_key_version: row.get("encryption_key_version")?,
        }),
        None => None,
    };
    Ok(JoinedRow {
        plugin_name: row.get("plugin_name")?,
        active: row.get("active")?,
        config: config.0,
        updated_by: row.opt_uuid("updated_by")?.map(UserId),
        updated_at: row.time("updated_at")?,
        secret,
    })
}

/// The one state of `name`, read inside the transaction that wrote it.
async fn written<DB: Dialect>(
    store: &SqlStore<DB>,
    tx: &mut Transaction<'static, DB>,
    name: &str,
) -> Result<PluginState, Error> {
    load(store, on(tx), Some(name))
        .await?
        .pop()
        .ok_or_else(|| Error::Corrupt(format!("plugin_state row of '{name}' vanished")))
}

#[async_trait]
impl<DB: Dialect> PluginStore for SqlStore<DB> {
    async fn plugin_states(&self) -> Result<Vec<PluginState>, Error> {
        load(self, self.db.pool(), None).await
    }

    async fn plugin_state(&self, name: &str) -> Result<Option<PluginState>, Error> {
        Ok(load(self, self.db.pool(), Some(name)).await?.pop())
    }

    #[instrument(name = "store.set_plugin_active", skip_all, fields(plugin = name, active))]
    async fn set_plugin_active(
        &self,
        name: &str,
        active: bool,
        by: Option<UserId>,
    ) -> Result<PluginState, Error> {
        check_key("plugin name", name)?;
        let db = &self.db;
        let mut tx = db.begin_write().await?;
        db.sql(
            "INSERT INTO plugin_state (plugin_name, active, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (plugin_name) DO UPDATE SET \
             active = EXCLUDED.active, updated_by = EXCLUDED.updated_by, \
             updated_at = EXCLUDED.updated_at",
        )
        .bind(name)
        .bind(active)
        .bind_opt_id(by.map(|id| id.0))
        .bind_time(timestamp::now())
        .execute(on(&mut tx))
        .await?;
        let state = written(self, &mut tx, name).await?;
        db.commit(tx).await?;
        Ok(state)
    }

    #[instrument(name = "store.save_plugin_config", skip_all, fields(plugin = name, secret_changes = secrets.len()))]
    async fn save_plugin_config(
        &self,
        name: &str,
        config: serde_json::Map<String, serde_json::Value>,
        secrets: Vec<SecretChange>,
        by: Option<UserId>,
    ) -> Result<PluginState, Error> {
        check_key("plugin name", name)?;
        let owner = Owner::plugin(name);
        let changes = prepare_changes(&owner, secrets)?;
        let now = timestamp::now();
        let db = &self.db;
        // Concurrent saves of one plugin take turns: on Postgres the state
        // row's lock, held until commit; on SQLite the write lock.
        let mut tx = db.begin_write().await?;
        db.sql(
            "INSERT INTO plugin_state (plugin_name, config, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (plugin_name) DO UPDATE SET \
             config = EXCLUDED.config, updated_by = EXCLUDED.updated_by, \
             updated_at = EXCLUDED.updated_at",
        )
        .bind(name)
        .bind(Json(&config))
        .bind_opt_id(by.map(|id| id.0))
        .bind_time(now)
        .execute(on(&mut tx))
        .await?;
        apply_changes(self, &mut tx, &owner, &changes, now).await?;
        let state = written(self, &mut tx, name).await?;
        // Dropping the transaction on error rolls every write back.
        check_no_secret_in_config(&state)?;
        db.commit(tx).await?;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(key: &str) -> StoredSecret {
        StoredSecret {
            key: key.to_owned(),
            encrypted_value: format!("token-of-{key}"),
            encryption_key_version: "v1".to_owned(),
        }
    }

    #[test]
    fn changes_are_ordered_by_key_keeping_each_keys_order() {
        let changes = vec![
            SecretChange::Set(secret("b")),
            SecretChange::Remove("a".to_owned()),
            SecretChange::Remove("b".to_owned()),
            SecretChange::Set(secret("a")),
        ];
        let ordered = prepare_changes(&Owner::plugin("p"), changes).unwrap();
        assert_eq!(
            ordered,
            vec![
                SecretChange::Remove("a".to_owned()),
                SecretChange::Set(secret("a")),
                SecretChange::Set(secret("b")),
                SecretChange::Remove("b".to_owned()),
            ]
        );
    }

    #[test]
    fn empty_names_and_keys_are_invalid() {
        assert!(matches!(
            prepare_changes(&Owner::plugin(""), vec![]),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            prepare_changes(
                &Owner::plugin("p"),
                vec![SecretChange::Remove(String::new())]
            ),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn a_config_key_with_a_stored_secret_is_refused_by_name_only() {
        let serde_json::Value::Object(config) =
            json!({ "greeting": "hi", "api_token": "plain-value" })
        else {
            unreachable!()
        };
        let mut state = PluginState {
            plugin_name: "p".to_owned(),
            active: false,
            config,
            secrets: vec![secret("other")],
            updated_by: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        check_no_secret_in_config(&state).unwrap();
        state.secrets.push(secret("api_token"));
        let message = check_no_secret_in_config(&state).unwrap_err().to_string();
        assert!(message.contains("'api_token'"), "{message}");
        assert!(!message.contains("plain-value"), "{message}");
    }

    #[test]
    fn rows_group_into_states_with_their_secrets() {
        let row = |name: &str, secret: Option<StoredSecret>| JoinedRow {
            plugin_name: name.to_owned(),
            active: name == "a",
            config: serde_json::Map::new(),
            updated_by: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            secret,
        };
        let states = group([
            row("a", Some(secret("k1"))),
            row("a", Some(secret("k2"))),
            row("b", None),
            row("c", Some(secret("k1"))),
        ]);
        let summary: Vec<(&str, bool, Vec<&str>)> = states
            .iter()
            .map(|s| {
                let keys = s.secrets.iter().map(|x| x.key.as_str()).collect();
                (s.plugin_name.as_str(), s.active, keys)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", true, vec!["k1", "k2"]),
                ("b", false, vec![]),
                ("c", false, vec!["k1"]),
            ]
        );
    }
}
