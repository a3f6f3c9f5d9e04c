//! Tenant administration and context uploads: checks (`tenants.rs`,
//! `context.rs`), sealing, the store, the audit row, and the config
//! cache's invalidation, in that order; and the connection test of a
//! tenant's tool, saved or not.

use crate::Clock;
use crate::audit::Auditor;
use crate::configs::Configs;
use crate::tenants::{
    self, API_KEY, Current, Preferences, ServiceDeskAuth, WEBHOOK_SECRET, WEBHOOK_SECRET_GRACE,
    WEBHOOK_SECRET_PREVIOUS,
};
use csp_domain::{AuditStatus, ErrorCode, TenantId, UserId};
use csp_http::{HttpClient, Limits};
use csp_proto::v1 as pb;
use csp_rpc::{status, status_with_message};
use csp_secrets::{Keyring, Sealed};
use csp_store::{NewTenant, Owner, SecretChange, Store, StoredSecret, TenantRecord, TenantUpdate};
use csp_ticketing::connector::{self, ClientOptions, FailureKind, ToolType};
use csp_ticketing::registry::connector;
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;
use tonic::Status;

/// A connection test's call: an admin waits for it, so shorter than a
/// worker's 30 s.
const TEST_CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest a connection test may take, whatever its connector does.
const TEST_CONNECTION_TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) struct Admin {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) configs: Arc<Configs>,
    pub(crate) keyring: Option<Keyring>,
    pub(crate) audit: Auditor,
    pub(crate) clock: Arc<dyn Clock>,
    /// For connection tests.
    pub(crate) http: HttpClient,
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

    /// The names of the tenant's sealed secrets (never their values).
    async fn secret_names(&self, id: &TenantId) -> Result<Vec<String>, Status> {
        let secrets = self
            .store
            .secrets(&Owner::tenant(id.as_str()))
            .await
            .map_err(store_error)?;
        Ok(secrets.into_iter().map(|s| s.key).collect())
    }

    async fn view(&self, r: TenantRecord) -> Result<pb::Tenant, Status> {
        let secrets = self.secret_names(&r.tenant_id).await?;
        Ok(to_proto(r, &secrets))
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
        let mut secrets = Vec::new();
        for (name, value) in &input.tool.secrets {
            secrets.push(self.seal(name, value.expose_secret())?);
        }
        secrets.push(self.seal(WEBHOOK_SECRET, webhook_secret.expose_secret())?);
        let secret_names: Vec<String> = secrets.iter().map(|s| s.key.clone()).collect();
        let id = input.tenant_id.clone();
        // Field names for the audit row: the tool's that are set, in the
        // order of the form.
        let mut fields = vec!["name", "tool_type"];
        fields.extend(
            connector(input.tool.tool)
                .fields()
                .iter()
                .map(|f| f.name)
                .filter(|n| {
                    input.tool.values.contains_key(n) || input.tool.secrets.contains_key(n)
                }),
        );
        fields.extend(["webhook_secret", "enhancement_preferences"]);
        if input.kb_api_url.is_some() {
            fields.push("kb_api_url");
        }
        if input.monthly_budget_micros.is_some() {
            fields.push("monthly_budget_micros");
        }
        if input.dedicated_queue {
            fields.push("dedicated_queue");
        }
        let settings = input.settings_json();
        let record = self
            .store
            .create_tenant(NewTenant {
                tenant_id: input.tenant_id,
                name: input.name,
                tool_type: input.tool.tool.as_str().to_owned(),
                settings,
                preferences: serde_json::to_value(&input.preferences).expect("preferences"),
                monthly_budget_micros: input.monthly_budget_micros,
                dedicated_queue: input.dedicated_queue,
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
        self.audited(actor, "tenant.create", &id, &fields);
        self.configs.changed(&id).await;
        tracing::info!(tenant_id = %id, operation = "tenant.create", status = "created", "tenant created");
        Ok(pb::CreatedTenant {
            tenant: Some(to_proto(record, &secret_names)),
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
        let tool = stored_tool(&current)?;
        let secret_names = self.secret_names(&id).await?;
        let input = tenants::check_update(
            &r,
            &Current {
                tool,
                settings: &current.settings,
                secrets: &secret_names,
            },
        )
        .map_err(invalid)?;
        let mut secrets = Vec::new();
        for (name, value) in &input.secrets {
            secrets.push(SecretChange::Set(self.seal(name, value.expose_secret())?));
        }
        let record = self
            .store
            .update_tenant(
                &id,
                TenantUpdate {
                    name: input.name,
                    settings: input.settings,
                    preferences: input
                        .preferences
                        .as_ref()
                        .map(|p: &Preferences| serde_json::to_value(p).expect("preferences")),
                    monthly_budget_micros: input.monthly_budget_micros,
                    is_active: input.is_active,
                    dedicated_queue: input.dedicated_queue,
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

    /// A new webhook secret (`provided`, or generated); the current one
    /// becomes the previous one (moved sealed, never opened) and stays
    /// valid for the grace period.
    pub(crate) async fn rotate(
        &self,
        id: &str,
        provided: Option<&str>,
        actor: Option<UserId>,
    ) -> Result<pb::RotatedWebhookSecret, Status> {
        let id = tenant_id(id)?;
        if let Some(p) = provided {
            crate::tenants::check_webhook_secret(p).map_err(invalid)?;
        }
        self.record(&id).await?;
        let secret = match provided {
            Some(p) => secrecy::SecretString::from(p.to_owned()),
            None => csp_auth::generate_secret(),
        };
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
            // A secret the admin brought is not sent back.
            webhook_secret: match provided {
                Some(_) => crate::tenants::REDACTED.to_owned(),
                None => secret.expose_secret().to_owned(),
            },
            previous_valid_until: rfc3339(now + WEBHOOK_SECRET_GRACE),
        })
    }

    /// Tries the tool with a saved tenant's settings or with settings not
    /// saved yet. A configuration that does not validate, a tool that
    /// refuses or cannot be reached: `ok: false` and why, never with a
    /// credential in it.
    pub(crate) async fn test_connection(
        &self,
        r: pb::TestConnectionRequest,
        actor: Option<UserId>,
    ) -> Result<pb::TestConnectionResult, Status> {
        use pb::test_connection_request::Target;
        let (subject, outcome) = match r.target {
            None => {
                return Err(status_with_message(
                    ErrorCode::InvalidRequest,
                    "Send the tenant_id of a saved tenant or the settings to test.",
                ));
            }
            Some(Target::TenantId(id)) => {
                let id = tenant_id(&id)?;
                let record = self.record(&id).await?;
                let subject = serde_json::json!({"tenant_id": id.as_str()});
                let outcome = match ToolType::parse(&record.tool_type) {
                    Ok(tool) => {
                        let settings = self.stored_settings(&record, tool).await?;
                        self.try_tool(tool, &settings).await
                    }
                    Err(e) => Err((FailureKind::Other, e.to_string())),
                };
                (subject, outcome)
            }
            Some(Target::Settings(mut s)) => {
                let mut subject =
                    serde_json::json!({"tool_type": tenants::shown(s.tool_type.trim())});
                if !s.tenant_id.trim().is_empty() {
                    let id = tenant_id(&s.tenant_id)?;
                    let record = self.record(&id).await?;
                    let tool = stored_tool(&record)?;
                    if s.tool_type.trim() != tool.as_str() {
                        return Err(invalid(format!(
                            "tool_type cannot be changed (tenant '{id}' is {tool})"
                        )));
                    }
                    let stored = self.stored_settings(&record, tool).await?;
                    fill_in_stored(&mut s, tool, &stored);
                    subject["tenant_id"] = id.as_str().into();
                }
                let outcome = match tenants::check_connection_settings(&s) {
                    Ok(config) => self.try_tool(config.tool, &config.settings()).await,
                    Err(message) => Err((
                        FailureKind::Other,
                        without_secrets(message, &sent_secrets(&s)),
                    )),
                };
                (subject, outcome)
            }
        };
        let (ok, reason, kind) = match outcome {
            Ok(()) => (true, String::new(), None),
            Err((kind, reason)) => (false, reason, Some(kind)),
        };
        let mut details = subject;
        details["ok"] = ok.into();
        tracing::info!(
            operation = "tenant.test_connection",
            subject = %details,
            failure = ?kind,
            status = if ok { "ok" } else { "failed" },
            "connection tested"
        );
        self.audit.record(
            actor,
            "tenant.test_connection",
            details,
            if ok {
                AuditStatus::Success
            } else {
                AuditStatus::Error
            },
        );
        Ok(pb::TestConnectionResult { ok, reason })
    }

    /// A saved tenant's settings for its tool: the stored plain values and
    /// its secret fields opened (nothing else of its secrets).
    pub(crate) async fn stored_settings(
        &self,
        record: &TenantRecord,
        tool: ToolType,
    ) -> Result<connector::Settings, Status> {
        use csp_tenant_tool::ToolSettingsError as E;
        csp_tenant_tool::tool_settings(record, tool, self.store.as_ref(), self.keyring.as_ref())
            .await
            .map_err(|e| match e {
                E::Store(e) => store_error(e),
                E::NoKeyring { field } => status_with_message(
                    ErrorCode::Unavailable,
                    format!(
                        "The tenant's {field} cannot be opened: CSP_SECRET_KEY is not set on the tickets service."
                    ),
                ),
                E::NotAnObject => status_with_message(
                    ErrorCode::Unavailable,
                    "The tenant's stored settings are not a JSON object.",
                ),
                E::Unseal { field, source } => {
                    tracing::error!(tenant_id = %record.tenant_id, field, error = %source, "a tenant secret cannot be opened");
                    status_with_message(
                        ErrorCode::Unavailable,
                        format!(
                            "The tenant's {field} cannot be decrypted with CSP_SECRET_KEY (or CSP_SECRET_KEY_PREVIOUS)."
                        ),
                    )
                }
            })
    }

    /// One connection test; the reason of a failure with every secret of
    /// `settings` taken out, whatever the connector put in it.
    async fn try_tool(
        &self,
        tool: ToolType,
        settings: &connector::Settings,
    ) -> Result<(), (FailureKind, String)> {
        let scrub = |reason: String| without_secrets(reason, settings);
        let options = ClientOptions {
            limits: Limits {
                timeout: TEST_CALL_TIMEOUT,
                ..Limits::default()
            },
            ..ClientOptions::default()
        };
        let client = connector(tool)
            .client(self.http.clone(), settings, options)
            .map_err(|e| (FailureKind::Other, scrub(e.message)))?;
        match tokio::time::timeout(TEST_CONNECTION_TIMEOUT, client.test_connection()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(f)) => Err((f.kind, scrub(f.reason))),
            Err(_) => Err((
                FailureKind::Unreachable,
                format!(
                    "{} did not answer within {} seconds",
                    tool.display_name(),
                    TEST_CONNECTION_TIMEOUT.as_secs()
                ),
            )),
        }
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

/// `reason` with every secret of `settings` replaced by the redaction
/// marker: a connector's message is an admin's to read, never a
/// credential's way out.
fn without_secrets(reason: String, settings: &connector::Settings) -> String {
    settings
        .secrets
        .values()
        .map(|s| s.expose_secret())
        .filter(|s| !s.is_empty())
        .fold(reason, |r, s| r.replace(s, tenants::REDACTED))
}

/// Fills in what a form editing a saved tenant left out: each secret field
/// of `tool` sent empty or `"[REDACTED]"` (kept, as an update keeps it) and
/// each plain field not sent at all, from the tenant's `stored` settings.
fn fill_in_stored(s: &mut pb::ConnectionSettings, tool: ToolType, stored: &connector::Settings) {
    for field in connector(tool).fields() {
        // ServiceDesk Plus' fields may travel in the legacy members.
        let legacy = match field.name {
            "servicedesk_url" => Some(&s.servicedesk_url),
            "servicedesk_auth" => Some(&s.servicedesk_auth),
            API_KEY => Some(&s.api_key),
            _ => None,
        };
        let sent = s
            .tool_fields
            .get(field.name)
            .or(legacy.filter(|v| !v.is_empty()))
            .map(|v| v.trim());
        let value = if field.secret {
            match sent {
                Some(v) if !v.is_empty() && v != tenants::REDACTED => continue,
                _ => stored
                    .secret(field.name)
                    .map(|v| v.expose_secret().to_owned()),
            }
        } else {
            match sent {
                Some(_) => continue,
                None => stored.value(field.name).map(str::to_owned),
            }
        };
        if let Some(value) = value {
            // The legacy member would be "given twice with different values".
            match field.name {
                "servicedesk_url" => s.servicedesk_url.clear(),
                "servicedesk_auth" => s.servicedesk_auth.clear(),
                API_KEY => s.api_key.clear(),
                _ => {}
            }
            s.tool_fields.insert(field.name.to_owned(), value);
        }
    }
}

/// Whatever `s` sends for a secret field of any tool, as settings for
/// [`without_secrets`].
fn sent_secrets(s: &pb::ConnectionSettings) -> connector::Settings {
    let mut settings = connector::Settings::default();
    let secret_fields = ToolType::ALL
        .into_iter()
        .flat_map(|t| connector(t).fields())
        .filter(|f| f.secret);
    for field in secret_fields {
        let sent = s.tool_fields.get(field.name).map(String::as_str);
        let sent = sent.or((field.name == API_KEY).then_some(s.api_key.as_str()));
        if let Some(value) = sent {
            settings
                .secrets
                .insert(field.name.to_owned(), value.trim().to_owned().into());
        }
    }
    settings
}

/// The tenant's tool; a stored `tool_type` without a connector (never
/// written by this service) cannot be administered.
pub(crate) fn stored_tool(r: &TenantRecord) -> Result<ToolType, Status> {
    ToolType::parse(&r.tool_type).map_err(|e| {
        tracing::error!(tenant_id = %r.tenant_id, error = %e, "a stored tenant has an unknown tool_type");
        invalid(e.to_string())
    })
}

/// A tenant as admins see it; `secrets` are the names of its sealed
/// secrets, of which only the tool's secret fields are named.
pub(crate) fn to_proto(r: TenantRecord, secrets: &[String]) -> pb::Tenant {
    let prefs = Preferences::from_stored(&r.preferences);
    let text = |key: &str| {
        r.settings
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let tool = ToolType::parse(&r.tool_type).ok();
    let (tool_settings, secrets_set) = match tool {
        Some(tool) => (
            tenants::stored_values(tool, &r.settings)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            connector(tool)
                .fields()
                .iter()
                .filter(|f| f.secret && secrets.iter().any(|s| s == f.name))
                .map(|f| f.name.to_owned())
                .collect(),
        ),
        None => Default::default(),
    };
    let sdp = tool == Some(ToolType::ServicedeskPlus);
    pb::Tenant {
        webhook_path: tenants::webhook_path(&r.tool_type, &r.tenant_id),
        tenant_id: r.tenant_id.to_string(),
        name: r.name,
        tool_type: r.tool_type,
        servicedesk_url: if sdp {
            text("servicedesk_url")
        } else {
            String::new()
        },
        servicedesk_auth: match text("servicedesk_auth") {
            _ if !sdp => String::new(),
            a if a.is_empty() => ServiceDeskAuth::Authtoken.as_str().to_owned(),
            a => a,
        },
        api_key_set: sdp && secrets.iter().any(|s| s == API_KEY),
        kb_api_url: text("kb_api_url"),
        enhancement_preferences: Some(prefs.to_proto()),
        is_active: r.is_active,
        monthly_budget_micros: r.monthly_budget_micros,
        dedicated_queue: r.dedicated_queue,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
        tool_settings,
        secrets_set,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn a_reason_never_carries_a_secret_of_the_settings() {
        let mut settings = connector::Settings::default();
        settings
            .values
            .insert("jira_email".into(), "bot@globex.example".into());
        settings
            .secrets
            .insert("jira_api_token".into(), SecretString::from("tok-123"));
        settings
            .secrets
            .insert("other".into(), SecretString::from(""));
        assert_eq!(
            without_secrets(
                "Jira said: bad token tok-123 for bot@globex.example (tok-123)".into(),
                &settings
            ),
            "Jira said: bad token [REDACTED] for bot@globex.example ([REDACTED])"
        );
        assert_eq!(without_secrets("fine".into(), &settings), "fine");
        let sent = sent_secrets(&pb::ConnectionSettings {
            tool_type: "jira".into(),
            tool_fields: [
                ("jira_api_token".to_owned(), " t1 ".to_owned()),
                ("jira_url".to_owned(), "https://x.example".to_owned()),
            ]
            .into(),
            api_key: "k2".into(),
            ..Default::default()
        });
        assert_eq!(
            without_secrets("t1 k2 https://x.example".into(), &sent),
            "[REDACTED] [REDACTED] https://x.example"
        );
    }
}
