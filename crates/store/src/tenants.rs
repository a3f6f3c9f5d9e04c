//! Tenants of ticket enhancement: an MSP's ticketing tool, its non-secret
//! settings and preferences, whether it is active, and its monthly model
//! spend. Its credentials are sealed secrets of `Owner::tenant(id)`,
//! written in the same transaction as the tenant. And the grants of tenants
//! to users, which let a user who is not an admin bind a chat session to a
//! tenant (the callers decide that; the store keeps the grants).

use crate::budgets::{check_micros, check_month};
use crate::dialect::Dialect;
use crate::error::Error;
use crate::plugins::{self, SecretChange};
use crate::secrets::{self, Owner, StoredSecret};
use crate::sql::{Columns, SqlStore, on};
use crate::timestamp;
use async_trait::async_trait;
use csp_domain::{TenantId, UserId};
use sqlx::error::ErrorKind;
use sqlx::types::Json;
use time::OffsetDateTime;
use tracing::instrument;

/// A tenant to create, with its sealed secrets (`api_key`, `webhook_secret`).
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub tenant_id: TenantId,
    pub name: String,
    /// The connector's name (`servicedesk_plus`); checked by the caller
    /// against the connector registry.
    pub tool_type: String,
    /// The tool's non-secret settings as a JSON object (`servicedesk_url`,
    /// `servicedesk_auth`, `kb_api_url` …); never a secret.
    pub settings: serde_json::Value,
    /// `enhancement_preferences` as a JSON object, validated by the caller.
    pub preferences: serde_json::Value,
    /// Micro-dollars the tenant may spend on the model per month; `None`: no cap.
    pub monthly_budget_micros: Option<i64>,
    /// Its jobs go to a queue of its own that only its own workers consume
    /// (`csp_domain::EnhanceQueue`).
    pub dedicated_queue: bool,
    pub secrets: Vec<StoredSecret>,
}

/// A stored tenant. Timestamps are UTC, truncated to the millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecord {
    pub tenant_id: TenantId,
    pub name: String,
    pub tool_type: String,
    pub settings: serde_json::Value,
    pub preferences: serde_json::Value,
    pub monthly_budget_micros: Option<i64>,
    pub is_active: bool,
    /// Its jobs go to a queue of its own that only its own workers consume
    /// (`csp_domain::EnhanceQueue::of`).
    pub dedicated_queue: bool,
    /// When the webhook secret was last rotated: the previous secret is
    /// accepted for a grace period after it.
    pub webhook_secret_rotated_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What an admin changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TenantUpdate {
    pub name: Option<String>,
    pub settings: Option<serde_json::Value>,
    pub preferences: Option<serde_json::Value>,
    /// `Some(None)` removes the cap.
    pub monthly_budget_micros: Option<Option<i64>>,
    pub is_active: Option<bool>,
    pub dedicated_queue: Option<bool>,
    pub webhook_secret_rotated_at: Option<OffsetDateTime>,
    /// Applied in the same transaction as the fields.
    pub secrets: Vec<SecretChange>,
}

/// A tenant granted to a user. `granted_at` is UTC, truncated to the
/// millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantGrant {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// The admin who granted it; `None` when not recorded.
    pub granted_by: Option<UserId>,
    pub granted_at: OffsetDateTime,
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// The tenant (active) and its secrets in one transaction.
    /// [`Error::Conflict`] if the tenant id is taken (active or not),
    /// [`Error::InvalidInput`] for settings or preferences that are not
    /// JSON objects, a negative cap or an empty secret key.
    async fn create_tenant(&self, new: NewTenant) -> Result<TenantRecord, Error>;
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, Error>;
    /// Every tenant, active or not, by tenant id.
    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, Error>;
    /// Applies the update (fields and secrets) in one transaction and
    /// returns the new record; `updated_at` moves. [`Error::NotFound`] if
    /// no such tenant, [`Error::InvalidInput`] for a negative cap.
    async fn update_tenant(
        &self,
        id: &TenantId,
        update: TenantUpdate,
    ) -> Result<TenantRecord, Error>;
    /// The tenant's model spend in `month` ("2026-12"), 0 when none.
    /// [`Error::InvalidInput`] for a month that is not "YYYY-MM".
    async fn tenant_spend(&self, id: &TenantId, month: &str) -> Result<i64, Error>;
    /// Adds `micros` to the tenant's spend in `month` atomically; returns
    /// the new total. [`Error::NotFound`] for an unknown tenant,
    /// [`Error::InvalidInput`] for a negative amount or a malformed month.
    async fn add_tenant_spend(&self, id: &TenantId, month: &str, micros: i64)
    -> Result<i64, Error>;

    /// Grants `tenant` to `user`; true when the grant is new, false when it
    /// existed already (then it stays as it was, `by` and `at` included).
    /// [`Error::NotFound`] for an unknown or soft-deleted tenant or an
    /// unknown user.
    async fn grant_tenant(
        &self,
        tenant: &TenantId,
        user: UserId,
        by: Option<UserId>,
        at: OffsetDateTime,
    ) -> Result<bool, Error>;
    /// Removes the grant; true when there was one.
    async fn revoke_tenant(&self, tenant: &TenantId, user: UserId) -> Result<bool, Error>;
    /// The tenant's grants as stored, whether the tenant is active or not
    /// (they count again if it is reactivated), oldest first, then by user;
    /// none for an unknown tenant.
    async fn tenant_grants(&self, tenant: &TenantId) -> Result<Vec<TenantGrant>, Error>;
    /// The active tenants granted to `user`, by tenant id.
    async fn granted_tenants(&self, user: UserId) -> Result<Vec<TenantId>, Error>;
    /// Whether `tenant` is granted to `user` and active.
    async fn is_granted(&self, tenant: &TenantId, user: UserId) -> Result<bool, Error>;
}

macro_rules! tenant_columns {
    () => {
        "tenant_id, name, tool_type, settings, preferences, monthly_budget_micros, is_active, \
         dedicated_queue, webhook_secret_rotated_at, created_at, updated_at"
    };
}

fn tenant_from_row<DB: Dialect>(row: Columns<'_, DB>) -> Result<TenantRecord, Error> {
    let settings: Json<serde_json::Value> = row.get("settings")?;
    let preferences: Json<serde_json::Value> = row.get("preferences")?;
    Ok(TenantRecord {
        tenant_id: tenant_id_from_row(&row)?,
        name: row.get("name")?,
        tool_type: row.get("tool_type")?,
        settings: settings.0,
        preferences: preferences.0,
        monthly_budget_micros: row.get("monthly_budget_micros")?,
        is_active: row.get("is_active")?,
        dedicated_queue: row.get("dedicated_queue")?,
        webhook_secret_rotated_at: row.opt_time("webhook_secret_rotated_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

fn grant_from_row<DB: Dialect>(row: Columns<'_, DB>) -> Result<TenantGrant, Error> {
    Ok(TenantGrant {
        tenant_id: tenant_id_from_row(&row)?,
        user_id: UserId(row.uuid("user_id")?),
        granted_by: row.opt_uuid("granted_by")?.map(UserId),
        granted_at: row.time("granted_at")?,
    })
}

fn tenant_id_from_row<DB: Dialect>(row: &Columns<'_, DB>) -> Result<TenantId, Error> {
    let id: String = row.get("tenant_id")?;
    TenantId::parse(&id).map_err(|e| Error::Corrupt(e.to_string()))
}

/// Settings and preferences are JSON objects (the schema checks the same;
/// here it is reported as the caller's mistake).
fn check_object(what: &str, value: &serde_json::Value) -> Result<(), Error> {
    if value.is_object() {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!("{what} is not a JSON object")))
    }
}

/// A write that names a tenant that does not exist.
pub(crate) fn unknown_tenant(id: &TenantId) -> impl FnOnce(Error) -> Error + '_ {
    move |e| match e.violation() {
        Some(ErrorKind::ForeignKeyViolation) => Error::NotFound(format!("tenant '{id}'")),
        _ => e,
    }
}

#[async_trait]
impl<DB: Dialect> TenantStore for SqlStore<DB> {
    #[instrument(name = "store.create_tenant", skip_all, fields(tenant.id = %new.tenant_id))]
    async fn create_tenant(&self, new: NewTenant) -> Result<TenantRecord, Error> {
        check_object("settings", &new.settings)?;
        check_object("preferences", &new.preferences)?;
        if let Some(cap) = new.monthly_budget_micros {
            check_micros("monthly budget", cap)?;
        }
        let owner = Owner::tenant(new.tenant_id.as_str());
        let secrets = secrets::prepare(&owner, new.secrets)?;
        let now = timestamp::now();
        let tenant = TenantRecord {
            tenant_id: new.tenant_id,
            name: new.name,
            tool_type: new.tool_type,
            settings: new.settings,
            preferences: new.preferences,
            monthly_budget_micros: new.monthly_budget_micros,
            is_active: true,
            dedicated_queue: new.dedicated_queue,
            webhook_secret_rotated_at: None,
            created_at: now,
            updated_at: now,
        };
        let db = &self.db;
        let mut tx = db.begin_write().await?;
        db.sql(
            "INSERT INTO tenant_configs (tenant_id, name, tool_type, settings, preferences, \
             monthly_budget_micros, is_active, dedicated_queue, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(tenant.tenant_id.as_str())
        .bind(tenant.name.as_str())
        .bind(tenant.tool_type.as_str())
        .bind(Json(&tenant.settings))
        .bind(Json(&tenant.preferences))
        .bind(tenant.monthly_budget_micros)
        .bind(tenant.is_active)
        .bind(tenant.dedicated_queue)
        .bind_time(tenant.created_at)
        .bind_time(tenant.updated_at)
        .execute(on(&mut tx))
        .await
        .map_err(|e| match e.violation() {
            Some(ErrorKind::UniqueViolation) => {
                Error::Conflict(format!("tenant '{}'", tenant.tenant_id))
            }
            _ => e,
        })?;
        for secret in &secrets {
            secrets::upsert(self, &mut tx, &owner, secret, now).await?;
        }
        db.commit(tx).await?;
        Ok(tenant)
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, Error> {
        let db = &self.db;
        let sql = concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenant_configs WHERE tenant_id = $1"
        );
        let row = db
            .sql(sql)
            .bind(id.as_str())
            .fetch_optional(db.pool())
            .await?;
        row.map(|row| tenant_from_row(db.columns(&row))).transpose()
    }

    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, Error> {
        let db = &self.db;
        let rows = db
            .dialect_sql(format!(
                "SELECT {} FROM tenant_configs ORDER BY tenant_id{}",
                tenant_columns!(),
                DB::BYTE_ORDER
            ))
            .fetch_all(db.pool())
            .await?;
        rows.iter()
            .map(|row| tenant_from_row(db.columns(row)))
            .collect()
    }

    #[instrument(name = "store.update_tenant", skip_all, fields(tenant.id = %id, secret_changes = update.secrets.len()))]
    async fn update_tenant(
        &self,
        id: &TenantId,
        update: TenantUpdate,
    ) -> Result<TenantRecord, Error> {
        if let Some(settings) = &update.settings {
            check_object("settings", settings)?;
        }
        if let Some(preferences) = &update.preferences {
            check_object("preferences", preferences)?;
        }
        if let Some(Some(cap)) = update.monthly_budget_micros {
            check_micros("monthly budget", cap)?;
        }
        let owner = Owner::tenant(id.as_str());
        let changes = plugins::prepare_changes(&owner, update.secrets)?;
        let now = timestamp::now();
        let db = &self.db;
        // The tenant's row lock (SQLite: the write lock), taken by the
        // UPDATE, orders concurrent updates of one tenant before their
        // secrets are written.
        let mut tx = db.begin_write().await?;
        let sql = concat!(
            "UPDATE tenant_configs SET name = COALESCE($2, name), \
             settings = COALESCE($3, settings), preferences = COALESCE($4, preferences), \
             monthly_budget_micros = CASE WHEN $5 THEN $6 ELSE monthly_budget_micros END, \
             is_active = COALESCE($7, is_active), \
             webhook_secret_rotated_at = COALESCE($8, webhook_secret_rotated_at), \
             updated_at = $9, dedicated_queue = COALESCE($10, dedicated_queue) \
             WHERE tenant_id = $1 RETURNING ",
            tenant_columns!()
        );
        let row = db
            .sql(sql)
            .bind(id.as_str())
            .bind(update.name)
            .bind(update.settings.map(Json))
            .bind(update.preferences.map(Json))
            .bind(update.monthly_budget_micros.is_some())
            .bind(update.monthly_budget_micros.flatten())
            .bind(update.is_active)
            .bind(update.webhook_secret_rotated_at.map(DB::time))
            .bind_time(now)
            .bind(update.dedicated_queue)
            .fetch_optional(on(&mut tx))
            .await?;
        let Some(row) = row else {
            return Err(Error::NotFound(format!("tenant '{id}'")));
        };
        let tenant = tenant_from_row(db.columns(&row))?;
        plugins::apply_changes(self, &mut tx, &owner, &changes, now).await?;
        db.commit(tx).await?;
        Ok(tenant)
    }

    async fn tenant_spend(&self, id: &TenantId, month: &str) -> Result<i64, Error> {
        check_month(month)?;
        let db = &self.db;
        let row = db
            .sql("SELECT spent_micros FROM tenant_spend WHERE tenant_id = $1 AND month = $2")
            .bind(id.as_str())
            .bind(month)
            .fetch_optional(db.pool())
            .await?;
        match row {
            Some(row) => db.columns(&row).get("spent_micros"),
            None => Ok(0),
        }
    }

    #[instrument(name = "store.add_tenant_spend", skip_all, fields(tenant.id = %id, month, micros))]
    async fn add_tenant_spend(
        &self,
        id: &TenantId,
        month: &str,
        micros: i64,
    ) -> Result<i64, Error> {
        check_month(month)?;
        check_micros("tenant spend", micros)?;
        let db = &self.db;
        let row = db
            .sql(
                "INSERT INTO tenant_spend (tenant_id, month, spent_micros) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, month) DO UPDATE SET \
                 spent_micros = tenant_spend.spent_micros + EXCLUDED.spent_micros \
                 RETURNING spent_micros",
            )
            .bind(id.as_str())
            .bind(month)
            .bind(micros)
            .fetch_one(db.pool())
            .await
            .map_err(unknown_tenant(id))?;
        db.columns(&row).get("spent_micros")
    }

    #[instrument(name = "store.grant_tenant", skip_all, fields(tenant.id = %tenant, user.id = %user))]
    async fn grant_tenant(
        &self,
        tenant: &TenantId,
        user: UserId,
        by: Option<UserId>,
        at: OffsetDateTime,
    ) -> Result<bool, Error> {
        let db = &self.db;
        // No lock on the tenant: a soft delete that commits between the
        // check and the insert leaves a grant that reads as not granted
        // while the tenant is inactive, as every grant of it does.
        let mut tx = db.begin_write().await?;
        let live = db
            .sql("SELECT is_active FROM tenant_configs WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(on(&mut tx))
            .await?
            .map(|row| db.columns(&row).get::<bool>("is_active"))
            .transpose()?;
        if live != Some(true) {
            return Err(Error::NotFound(format!("tenant '{tenant}'")));
        }
        let inserted = db
            .sql(
                "INSERT INTO tenant_grants (tenant_id, user_id, granted_by, granted_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, user_id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind_id(user.0)
            .bind_opt_id(by.map(|by| by.0))
            .bind_time(at)
            .execute(on(&mut tx))
            .await
            .map_err(|e| match e.violation() {
                Some(ErrorKind::ForeignKeyViolation) => Error::NotFound(format!("user {user}")),
                _ => e,
            })?;
        db.commit(tx).await?;
        Ok(inserted == 1)
    }

    #[instrument(name = "store.revoke_tenant", skip_all, fields(tenant.id = %tenant, user.id = %user))]
    async fn revoke_tenant(&self, tenant: &TenantId, user: UserId) -> Result<bool, Error> {
        let db = &self.db;
        let deleted = db
            .sql("DELETE FROM tenant_grants WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.as_str())
            .bind_id(user.0)
            .execute(db.pool())
            .await?;
        Ok(deleted > 0)
    }

    async fn tenant_grants(&self, tenant: &TenantId) -> Result<Vec<TenantGrant>, Error> {
        let db = &self.db;
        let rows = db
            .sql(
                "SELECT tenant_id, user_id, granted_by, granted_at FROM tenant_grants \
                 WHERE tenant_id = $1 ORDER BY granted_at, user_id",
            )
            .bind(tenant.as_str())
            .fetch_all(db.pool())
            .await?;
        rows.iter()
            .map(|row| grant_from_row(db.columns(row)))
            .collect()
    }

    async fn granted_tenants(&self, user: UserId) -> Result<Vec<TenantId>, Error> {
        let db = &self.db;
        let rows = db
            .dialect_sql(format!(
                "SELECT g.tenant_id FROM tenant_grants g \
                 JOIN tenant_configs t ON t.tenant_id = g.tenant_id \
                 WHERE g.user_id = $1 AND t.is_active = TRUE ORDER BY g.tenant_id{}",
                DB::BYTE_ORDER
            ))
            .bind_id(user.0)
            .fetch_all(db.pool())
            .await?;
        rows.iter()
            .map(|row| tenant_id_from_row(&db.columns(row)))
            .collect()
    }

    async fn is_granted(&self, tenant: &TenantId, user: UserId) -> Result<bool, Error> {
        let db = &self.db;
        let row = db
            .sql(
                "SELECT 1 AS granted FROM tenant_grants g \
                 JOIN tenant_configs t ON t.tenant_id = g.tenant_id \
                 WHERE g.tenant_id = $1 AND g.user_id = $2 AND t.is_active = TRUE",
            )
            .bind(tenant.as_str())
            .bind_id(user.0)
            .fetch_optional(db.pool())
            .await?;
        Ok(row.is_some())
    }
}
