//! Ticket context for chat agents: which tenants a user may bind a chat
//! session to (admins: every active one; anyone else: the ones an admin
//! granted), the grants themselves, and one ticket tool call of an agent
//! (`RunChatTool`).
//!
//! The tool call's tenant is the one its session is bound to, sent by the
//! session-pool; the model's input never names it (`csp-ticket-tools`
//! refuses a `tenant_id` field). Access is decided again on every call,
//! from the grants as they are now: a revoked grant silences the tools of a
//! session bound before. Reads go through the tenant-scoped store (row-level
//! security in Postgres); text that goes back to the model is prepared the
//! way the enhancement pipeline prepares it (secrets redacted, PII masked
//! when the tenant asks), and a note the agent writes is rendered and
//! sanitised like an enhancement note.

use crate::admin::{Admin, not_found, store_error, tenant_id};
use crate::tenants::Preferences;
use csp_domain::{AuditStatus, ErrorCode, Role, TenantId, UserId};
use csp_proto::v1 as pb;
use csp_rpc::status_with_message;
use csp_store::TenantRecord;
use csp_ticket_tools::ToolInput;
use csp_ticketing::JobMarker;
use csp_ticketing::connector::{ApiError, ClientOptions, TicketingClient};
use csp_ticketing::registry::connector;
use serde_json::{Value, json};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::Status;

/// Longest text of one field given back to the model: enough to judge a
/// ticket or an article, small enough that ten of them fit a tool result.
const MAX_FIELD_CHARS: usize = 1_500;

pub(crate) struct Chat {
    pub(crate) admin: Arc<Admin>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn user_id(text: &str) -> Result<UserId, Status> {
    text.trim().parse().map_err(|_| {
        status_with_message(
            ErrorCode::NotFound,
            format!("There is no user '{}'.", text.escape_debug()),
        )
    })
}

fn forbidden(tenant: &TenantId) -> Status {
    status_with_message(
        ErrorCode::Forbidden,
        format!(
            "The session's user may not see tenant '{tenant}' (any more): an admin grants tenants to users."
        ),
    )
}

fn invalid(message: impl Into<String>) -> Status {
    status_with_message(ErrorCode::InvalidRequest, message)
}

/// `text` cut to [`MAX_FIELD_CHARS`] characters, as the model may read it.
fn shown(text: &str, mask_pii: bool) -> String {
    let prepared = csp_enhance::prepare_text(text, mask_pii);
    match prepared.char_indices().nth(MAX_FIELD_CHARS) {
        Some((end, _)) => format!("{}…", &prepared[..end]),
        None => prepared,
    }
}

fn grants_proto(tenant: &TenantId, grants: Vec<csp_store::TenantGrant>) -> pb::TenantGrants {
    pb::TenantGrants {
        tenant_id: tenant.to_string(),
        grants: grants
            .into_iter()
            .map(|g| pb::TenantGrant {
                user_id: g.user_id.to_string(),
                granted_by: g.granted_by.map(|u| u.to_string()).unwrap_or_default(),
                granted_at: rfc3339(g.granted_at),
            })
            .collect(),
    }
}

/// The tool's answer to a failed call, for the model: what went wrong,
/// never a credential (connector errors are redacted by `csp-http`).
fn tool_error(tool: &str, ticket_id: &str, e: ApiError) -> Status {
    if let ApiError::InvalidTicketId(e) = e {
        return invalid(e.to_string());
    }
    if let ApiError::Http { source, .. } = &e
        && source.status() == Some(http::StatusCode::NOT_FOUND)
    {
        return status_with_message(
            ErrorCode::NotFound,
            format!("{tool} has no ticket '{ticket_id}'."),
        );
    }
    tracing::warn!(error = %e, "a chat agent's ticket tool call failed at the ticketing tool");
    status_with_message(
        ErrorCode::Unavailable,
        format!("{tool} did not answer as expected: {e}"),
    )
}

impl Chat {
    /// A live tenant (a soft-deleted one is gone for chat).
    async fn live(&self, id: &TenantId) -> Result<TenantRecord, Status> {
        match self.admin.store.tenant(id).await.map_err(store_error)? {
            Some(r) if r.is_active => Ok(r),
            _ => Err(not_found(id.as_str())),
        }
    }

    async fn may_see(&self, tenant: &TenantId, user: UserId, role: Role) -> Result<bool, Status> {
        if role.includes(Role::Admin) {
            return Ok(true);
        }
        self.admin
            .store
            .is_granted(tenant, user)
            .await
            .map_err(store_error)
    }

    pub(crate) async fn grants(&self, tenant: &str) -> Result<pb::TenantGrants, Status> {
        let tenant = tenant_id(tenant)?;
        self.live(&tenant).await?;
        let grants = self
            .admin
            .store
            .tenant_grants(&tenant)
            .await
            .map_err(store_error)?;
        Ok(grants_proto(&tenant, grants))
    }

    /// Grants (`grant = true`) or revokes the tenant to a user; idempotent,
    /// audit-logged with what changed.
    pub(crate) async fn set_grant(
        &self,
        r: &pb::TenantGrantRequest,
        grant: bool,
        actor: Option<UserId>,
    ) -> Result<pb::TenantGrants, Status> {
        let tenant = tenant_id(&r.tenant_id)?;
        let user = user_id(&r.user_id)?;
        let store = &self.admin.store;
        // Checked before either change: a revoke for an unknown or deleted
        // tenant is answered `tenant_not_found` without removing a grant
        // or auditing a change first (the answer, the grants, is not
        // given for such a tenant either).
        self.live(&tenant).await?;
        let changed = if grant {
            store
                .grant_tenant(&tenant, user, actor, self.admin.clock.now())
                .await
        } else {
            store.revoke_tenant(&tenant, user).await
        };
        let changed = changed.map_err(|e| match e {
            csp_store::Error::NotFound(what) => status_with_message(ErrorCode::NotFound, what),
            e => store_error(e),
        })?;
        let action = if grant {
            "tenant.grant"
        } else {
            "tenant.revoke"
        };
        self.admin.audit.record(
            actor,
            action,
            json!({"tenant_id": tenant.as_str(), "user_id": user.to_string(), "changed": changed}),
            AuditStatus::Success,
        );
        tracing::info!(operation = action, tenant_id = %tenant, user.id = %user, changed, "tenant grant changed");
        self.grants(tenant.as_str()).await
    }

    /// The active tenants `user` may bind a chat session to.
    pub(crate) async fn chat_tenants(
        &self,
        user: UserId,
        role: Role,
    ) -> Result<pb::ChatTenants, Status> {
        let store = &self.admin.store;
        let tenants = store.list_tenants().await.map_err(store_error)?;
        let granted = if role.includes(Role::Admin) {
            None
        } else {
            Some(store.granted_tenants(user).await.map_err(store_error)?)
        };
        Ok(pb::ChatTenants {
            tenants: tenants
                .into_iter()
                .filter(|t| t.is_active)
                .filter(|t| granted.as_ref().is_none_or(|g| g.contains(&t.tenant_id)))
                .map(|t| pb::ChatTenant {
                    tenant_id: t.tenant_id.to_string(),
                    name: t.name,
                    tool_type: t.tool_type,
                })
                .collect(),
        })
    }

    /// One tool call for the session's tenant, answered as JSON text.
    pub(crate) async fn run(&self, r: pb::ChatToolRequest) -> Result<pb::ChatToolResult, Status> {
        let tenant = tenant_id(&r.tenant_id)?;
        let user = user_id(&r.user_id)?;
        // An unknown role (an older policy service) sees only its grants.
        let role = r.role.parse::<Role>().unwrap_or(Role::User);
        let record = self.live(&tenant).await?;
        if !self.may_see(&tenant, user, role).await? {
            return Err(forbidden(&tenant));
        }
        let tool = r
            .tool
            .ok_or_else(|| invalid("The call names no ticket tool."))?;
        let input = ToolInput::from_proto(tool).map_err(|e| invalid(e.to_string()))?;
        let mask = Preferences::from_stored(&record.preferences).mask_pii;
        let store = &self.admin.store;
        let answer = match input {
            ToolInput::Similar(q) => {
                let found = store
                    .similar_tickets(&tenant, &q.query, q.limit())
                    .await
                    .map_err(store_error)?;
                json!({
                    "tenant_id": tenant.as_str(),
                    "tickets": found.iter().map(|t| json!({
                        "ticket_id": t.ticket_id,
                        "description": shown(&t.description, mask),
                        "resolution": shown(&t.resolution, mask),
                        "resolved_date": rfc3339(t.resolved_date),
                        "tags": t.tags,
                    })).collect::<Vec<Value>>(),
                })
            }
            ToolInput::Kb(q) => {
                let found = store
                    .search_kb(&tenant, &q.query, q.limit())
                    .await
                    .map_err(store_error)?;
                json!({
                    "tenant_id": tenant.as_str(),
                    "articles": found.iter().map(|a| json!({
                        "title": shown(&a.title, mask),
                        "summary": shown(&a.summary, mask),
                        "url": a.url,
                        "excerpt": shown(&a.body, mask),
                    })).collect::<Vec<Value>>(),
                })
            }
            ToolInput::Ip(q) => {
                let found = store
                    .systems_by_ip(&tenant, &[q.ip])
                    .await
                    .map_err(store_error)?;
                json!({
                    "tenant_id": tenant.as_str(),
                    "ip": q.ip.to_string(),
                    "systems": found.iter().map(|s| json!({
                        "ip": s.ip.to_string(),
                        "hostname": s.hostname,
                        "role": s.role,
                        "client": s.client,
                        "location": s.location,
                    })).collect::<Vec<Value>>(),
                })
            }
            ToolInput::Ticket(t) => {
                let client = self.client(&record).await?;
                let name = client.tool_type().display_name();
                let ticket = client
                    .get_ticket(&t.ticket_id)
                    .await
                    .map_err(|e| tool_error(name, &t.ticket_id, e))?;
                json!({
                    "tenant_id": tenant.as_str(),
                    "ticket": {
                        "ticket_id": ticket.ticket_id,
                        "subject": shown(&ticket.subject, mask),
                        "description": shown(&ticket.description, mask),
                        "priority": ticket.priority,
                        "status": ticket.status,
                        "created_at": ticket.created_at.map(rfc3339),
                        "resolved_at": ticket.resolved_at.map(rfc3339),
                        "resolution": ticket.resolution.as_deref().map(|r| shown(r, mask)),
                        "tags": ticket.tags,
                    },
                })
            }
            ToolInput::Note(n) => {
                let client = self.client(&record).await?;
                let name = client.tool_type().display_name();
                let format = Preferences::from_stored(&record.preferences).note_format;
                let body = csp_enhance::render_note(&n.text, format);
                // One marker per call: the connector's once-check then
                // only guards this call's own retries.
                let call = format!("chat-{}", uuid::Uuid::new_v4().simple());
                let marker = JobMarker::new(&call).expect("a chat marker is a valid job id");
                let posted = client
                    .post_note_once(&n.ticket_id, &marker, &body, format)
                    .await
                    .map_err(|e| tool_error(name, &n.ticket_id, e))?;
                tracing::info!(tenant_id = %tenant, user.id = %user, session.id = %r.session_id, ticket_id = %n.ticket_id, "a chat agent posted an internal note");
                json!({
                    "tenant_id": tenant.as_str(),
                    "ticket_id": n.ticket_id,
                    "note_id": posted.note_id.0,
                    "posted": true,
                })
            }
        };
        Ok(pb::ChatToolResult {
            text: serde_json::to_string_pretty(&answer).unwrap_or_default(),
        })
    }

    async fn client(&self, record: &TenantRecord) -> Result<Box<dyn TicketingClient>, Status> {
        let tool = crate::admin::stored_tool(record)?;
        let settings = self.admin.stored_settings(record, tool).await?;
        connector(tool)
            .client(self.admin.http.clone(), &settings, ClientOptions::default())
            .map_err(|e| {
                status_with_message(
                    ErrorCode::Unavailable,
                    format!(
                        "The tenant's {} settings are incomplete: {}",
                        tool.display_name(),
                        e.message
                    ),
                )
            })
    }
}
