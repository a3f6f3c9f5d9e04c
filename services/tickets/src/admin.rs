//! Tenant administration and context uploads: checks (`tenants.rs`,
//! `context.rs`), sealing, the store, the audit row, and the config
//! cache's invalidation, in that order.

use crate::Clock;
use crate::audit::Auditor;
use crate::configs::Configs;
use crate::tenants::{
    self, API_KEY, Preferences, Settings, WEBHOOK_SECRET, WEBHOOK_SECRET_GRACE,
    WEBHOOK_SECRET_PREVIOUS,
};
use csp_domain::{AuditStatus, ErrorCode, TenantId, UserId};
use csp_proto::v1 as pb;
use csp_rpc::{status, status_with_message};
use csp_secrets::{Keyring, Sealed};
use csp_store::{NewTenant, Owner, SecretChange, Store, StoredSecret, TenantRecord, TenantUpdate};
use secrecy::ExposeSecret;
use std::sync::Arc;
use tonic::Status;

pub(crate) struct Admin {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) configs: Arc<Configs>,
    pub(crate) keyring: Option<Keyring>,
    pub(crate) audit: Auditor,
    pub(crate) clock: Arc<dyn Clock>,
}

fn invalid(message: String) -> Status {
    status_with_message(ErrorCode::InvalidTenant, message)
}

pub(crate) fn store_error(e: csp_store::Error) -> Status {
    tracing::error!(error = %e, "tickets store failed");
    status(ErrorCode::Unavailable, "tickets store unavailable")
}

pub(crate) fn not_found(id: &str) -> Status {
    status_with_message(
        ErrorCode::TenantNotFound,
        format!("There is no tenant '{}'.", tenants::shown(id)),
    )
}

/// A tenant id from a request; one that is not a slug names no tenant.
pub(crate) fn tenant_id(text: &str) -> Result<TenantId, Status> {
    TenantId::parse(text.trim()).map_err(|_| not_found(text))
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Admin {
    fn keyring(&self) -> Result<&Keyring, Status> {
        self.keyring.as_ref().ok_or_else(|| {
            status_with_message(
                ErrorCode::Unavailable,
                "Tenant credentials cannot be stored: CSP_SECRET_KEY is not set on the tickets service.",
            )
        })
    }

    fn seal(&self, key: &str, plain: &str) -> Result<StoredSecret, Status> {
        let Sealed { token, key_version } = self.keyring()?.seal(plain);
        Ok(StoredSecret {
            key: key.to_owned(),
            encrypted_value: token,
            encryption_key_version: key_version,
        })
    }

    async fn view(&self, r: TenantRecord) -> Result<pb::Tenant, Status> {
        let secrets = self
            .store
            .secrets(&Owner::tenant(r.tenant_id.as_str()))
            .await
            .map_err(store_error)?;
        Ok(to_proto(r, secrets.iter().any(|s| s.key == API_KEY)))
    }

    async fn record(&self, id: &TenantId) -> Result<TenantRecord, Status> {
        self.store
            .tenant(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found(id.as_str()))
    }

    pub(crate) async fn create(
        &self,
        r: pb::CreateTenantRequest,
        actor: Option<UserId>,
    ) -> Result<pb::CreatedTenant, Status> {
        let input = tenants::check_create(&r).map_err(invalid)?;
        let webhook_secret = csp_auth::generate_secret();
        let secrets = vec![
            self.seal(API_KEY, input.api_key.expose_secret())?,
            self.seal(WEBHOOK_SECRET, webhook_secret.expose_secret())?,
        ];
        let id = input.tenant_id.clone();
        let record = self
            .store
            .create_tenant(NewTenant {
                tenant_id: input.tenant_id,
                name: input.name,
                tool_type: tenants::TOOL_TYPE.to_owned(),
                settings: input.settings.to_json(),
                preferences: serde_json::to_value(&input.preferences).expect("preferences"),
                monthly_budget_micros: input.monthly_budget_micros,
                secrets,
            })
            .await
            .map_err(|e| match e {
                csp_store::Error::Conflict(_) => status_with_message(
                    ErrorCode::TenantExists,
                    format!("Tenant '{id}' already exists (tenant ids are never reused, even after a delete)."),
                ),
                e => store_error(e),
            })?;
        let mut fields = vec![
            "name",
            "tool_type",
            "servicedesk_url",
            "servicedesk_auth",
            "api_key",
            "webhook_secret",
            "enhancement_preferences",
        ];
        if !r.kb_api_url.is_empty() {
            fields.push("kb_api_url");
        }
        if r.monthly_budget_micros.is_some() {
            fields.push("monthly_budget_micros");
        }
        self.audited(actor, "tenant.create", &id, &fields);
        self.configs.changed(&id).await;
        tracing::info!(tenant_id = %id, operation = "tenant.create", status = "created", "tenant created");
        Ok(pb::CreatedTenant {
            tenant: Some(to_proto(record, true)),
            webhook_secret: webhook_secret.expose_secret().to_owned(),
        })
    }

    pub(crate) async fn list(&self) -> Result<Vec<pb::Tenant>, Status> {
        let records = self.store.list_tenants().await.map_err(store_error)?;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            out.push(self.view(r).await?);
        }
        Ok(out)
    }

    pub(crate) async fn get(&self, id: &str) -> Result<pb::Tenant, Status> {
        let id = tenant_id(id)?;
        let r = self.record(&id).await?;
        self.view(r).await
    }

    pub(crate) async fn update(
        &self,
        r: pb::UpdateTenantRequest,
        actor: Option<UserId>,
    ) -> Result<pb::Tenant, Status> {
        let id = tenant_id(&r.tenant_id)?;
        let current = self.record(&id).await?;
        let input = tenants::check_update(&r, &Settings::from_stored(&current.settings))
            .map_err(invalid)?;
        let mut secrets = Vec::new();
        if let Some(key) = &input.api_key {
            secrets.push(SecretChange::Set(self.seal(API_KEY, key.expose_secret())?));
        }
        let record = self
            .store
            .update_tenant(
                &id,
                TenantUpdate {
                    name: input.name,
                    settings: input.settings.as_ref().map(Settings::to_json),
                    preferences: input
                        .preferences
                        .as_ref()
                        .map(|p: &Preferences| serde_json::to_value(p).expect("preferences")),
                    monthly_budget_micros: input.monthly_budget_micros,
                    is_active: input.is_active,
                    webhook_secret_rotated_at: None,
                    secrets,
                },
            )
            .await
            .map_err(|e| match e {
                csp_store::Error::NotFound(_) => not_found(id.as_str()),
                csp_store::Error::InvalidInput(why) => invalid(why),
                e => store_error(e),
            })?;
        self.audited(actor, "tenant.update", &id, &input.changed);
        self.configs.changed(&id).await;
        tracing::info!(tenant_id = %id, operation = "tenant.update", status = "updated", changed = ?input.changed, "tenant updated");
        self.view(record).await
    }

    /// Soft delete: inactive, its webhooks refused, its data kept.
    pub(crate) async fn delete(
        &self,
        id: &str,
        actor: Option<UserId>,
    ) -> Result<pb::Tenant, Status> {
        let id = tenant_id(id)?;
        let record = self
            .store
            .update_tenant(
                &id,
                TenantUpdate {
                    is_active: Some(false),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| match e {
                csp_store::Error::NotFound(_) => not_found(id.as_str()),
                e => store_error(e),
            })?;
        self.audited(actor, "tenant.delete", &id, &["is_active"]);
        self.configs.changed(&id).await;
        tracing::info!(tenant_id = %id, operation = "tenant.delete", status = "deactivated", "tenant deactivated");
        self.view(record).await
    }

    /// A new webhook secret; the current one becomes the previous one
    /// (moved sealed, never opened) and stays valid for the grace period.
    pub(crate) async fn rotate(
        &self,
        id: &str,
        actor: Option<UserId>,
    ) -> Result<pb::RotatedWebhookSecret, Status> {
        let id = tenant_id(id)?;
        self.record(&id).await?;
        let secret = csp_auth::generate_secret();
        let mut changes = vec![SecretChange::Set(
            self.seal(WEBHOOK_SECRET, secret.expose_secret())?,
        )];
        let stored = self
            .store
            .secrets(&Owner::tenant(id.as_str()))
            .await
            .map_err(store_error)?;
        match stored.into_iter().find(|s| s.key == WEBHOOK_SECRET) {
            Some(current) => changes.push(SecretChange::Set(StoredSecret {
                key: WEBHOOK_SECRET_PREVIOUS.to_owned(),
                ..current
            })),
            None => changes.push(SecretChange::Remove(WEBHOOK_SECRET_PREVIOUS.to_owned())),
        }
        let now = self.clock.now();
        self.store
            .update_tenant(
                &id,
                TenantUpdate {
                    webhook_secret_rotated_at: Some(now),
                    secrets: changes,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| match e {
                csp_store::Error::NotFound(_) => not_found(id.as_str()),
                e => store_error(e),
            })?;
        self.audited(
            actor,
            "tenant.rotate_webhook_secret",
            &id,
            &["webhook_secret", "webhook_secret_previous"],
        );
        self.configs.changed(&id).await;
        tracing::info!(tenant_id = %id, operation = "tenant.rotate_webhook_secret", status = "rotated", "webhook secret rotated");
        Ok(pb::RotatedWebhookSecret {
            webhook_secret: secret.expose_secret().to_owned(),
            previous_valid_until: rfc3339(now + WEBHOOK_SECRET_GRACE),
        })
    }

    pub(crate) async fn upsert_kb(
        &self,
        r: pb::UpsertKbArticlesRequest,
        actor: Option<UserId>,
    ) -> Result<u32, Status> {
        let id = tenant_id(&r.tenant_id)?;
        let rows = crate::context::check_articles(&r.articles)
            .map_err(|m| status_with_message(ErrorCode::InvalidRequest, m))?;
        self.record(&id).await?;
        let n = self
            .store
            .upsert_kb_articles(&id, &rows)
            .await
            .map_err(store_error)?;
        self.audit.record(
            actor,
            "tenant.kb_articles",
            serde_json::json!({"tenant_id": id.as_str(), "rows": rows.len()}),
            AuditStatus::Success,
        );
        tracing::info!(tenant_id = %id, operation = "upsert_kb_articles", status = "stored", rows = n, "kb articles upserted");
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    pub(crate) async fn upsert_inventory(
        &self,
        r: pb::UpsertInventoryRequest,
        actor: Option<UserId>,
    ) -> Result<u32, Status> {
        let id = tenant_id(&r.tenant_id)?;
        let rows = crate::context::check_systems(&r.systems)
            .map_err(|m| status_with_message(ErrorCode::InvalidRequest, m))?;
        self.record(&id).await?;
        let n = self
            .store
            .upsert_inventory(&id, &rows)
            .await
            .map_err(store_error)?;
        self.audit.record(
            actor,
            "tenant.inventory",
            serde_json::json!({"tenant_id": id.as_str(), "rows": rows.len()}),
            AuditStatus::Success,
        );
        tracing::info!(tenant_id = %id, operation = "upsert_inventory", status = "stored", rows = n, "inventory upserted");
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The audit row of a tenant change: the action, the tenant and the
    /// names of the fields (never their values).
    fn audited(&self, actor: Option<UserId>, action: &str, id: &TenantId, fields: &[&str]) {
        self.audit.record(
            actor,
            action,
            serde_json::json!({"tenant_id": id.as_str(), "fields": fields}),
            AuditStatus::Success,
        );
    }
}

pub(crate) fn to_proto(r: TenantRecord, api_key_set: bool) -> pb::Tenant {
    let settings = Settings::from_stored(&r.settings);
    let prefs = Preferences::from_stored(&r.preferences);
    pb::Tenant {
        webhook_path: tenants::webhook_path(&r.tool_type, &r.tenant_id),
        tenant_id: r.tenant_id.to_string(),
        name: r.name,
        tool_type: r.tool_type,
        servicedesk_url: settings.servicedesk_url,
        servicedesk_auth: settings.servicedesk_auth.as_str().to_owned(),
        api_key_set,
        kb_api_url: settings.kb_api_url.unwrap_or_default(),
        enhancement_preferences: Some(prefs.to_proto()),
        is_active: r.is_active,
        monthly_budget_micros: r.monthly_budget_micros,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    }
}
