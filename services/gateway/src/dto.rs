//! The gateway's wire types, one serde type per shape (see
//! `docs/websocket-protocol.md`): the REST API's request and response
//! bodies and the WebSocket's frames. Field names, types and null-vs-absent
//! are the wire contract: an `Option` in a response is always sent, as
//! `null` when unset. With the `ts` feature each type also derives its
//! TypeScript declaration for `web/src/generated/` ([`typescript`]).

use csp_domain::{AuditStatus, ErrorCode, Event, Role, SessionEvent, SessionStatus, StatusReason};
use csp_proto::v1 as pb;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// A status by its typed name, or the text as received when it names none
/// of the enum's values (the JSON is the same either way).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(untagged)]
pub(crate) enum Named<T> {
    Known(T),
    Other(String),
}

impl<T: std::str::FromStr> Named<T> {
    fn parse(text: String) -> Self {
        text.parse().map_or(Named::Other(text), Named::Known)
    }
}

/// How agents are confined.
#[derive(Debug, Clone, Copy, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub(crate) enum Sandbox {
    Bubblewrap,
    /// Agents run unconfined (`CSP_AGENT_SANDBOX=off`).
    Off,
}

impl Sandbox {
    pub(crate) fn new(off: bool) -> Self {
        if off {
            Sandbox::Off
        } else {
            Sandbox::Bubblewrap
        }
    }
}

/// `{"status": "ok"}` and other bodies that say only a status.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "Live"))]
pub(crate) struct Status {
    pub(crate) status: &'static str,
}

/// `POST /api/v1/auth/login`'s body. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct LoginRequest {
    pub(crate) username: String,
    pub(crate) password: String,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct LoginUser {
    pub(crate) user_id: String,
    pub(crate) username: String,
    pub(crate) role: String,
}

/// The answer to a login (the token is also set as an HttpOnly cookie).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct Login {
    pub(crate) token: String,
    pub(crate) expires_in: u64,
    pub(crate) user: LoginUser,
}

/// `GET /api/v1/me`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct Me {
    pub(crate) user_id: String,
    pub(crate) username: String,
    pub(crate) role: Role,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "AppConfig"))]
/// `GET /api/v1/config`.
pub(crate) struct Config<'a> {
    pub(crate) model_label: &'a str,
    pub(crate) max_frame_bytes: usize,
    /// Null when the session-pool cannot say.
    pub(crate) agent_sandbox: Option<Sandbox>,
}

/// One row of `GET /api/v1/sessions` (and of the operators' list).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "SessionSummary"))]
pub(crate) struct Session {
    pub(crate) session_id: String,
    pub(crate) user_id: String,
    /// `unknown` when the session-pool sent a status this gateway does not know.
    pub(crate) status: Named<SessionStatus>,
    /// RFC 3339.
    pub(crate) created_at: String,
    /// RFC 3339.
    pub(crate) last_active_at: String,
    pub(crate) message_count: u64,
    pub(crate) total_cost_usd: f64,
    pub(crate) title: String,
    pub(crate) resume_count: u64,
    pub(crate) is_resumable: bool,
    /// Empty while the session has not stopped.
    pub(crate) ended_reason: Named<StatusReason>,
    /// The ticket-enhancement tenant the session is bound to (its agent's
    /// ticket tools read only that tenant); null for none.
    pub(crate) tenant_id: Option<String>,
}

impl From<pb::SessionInfo> for Session {
    fn from(s: pb::SessionInfo) -> Self {
        let status = pb::SessionStatus::try_from(s.status)
            .ok()
            .and_then(|p| SessionStatus::try_from(p).ok())
            .map_or_else(|| Named::Other("unknown".into()), Named::Known);
        Self {
            session_id: s.session_id,
            user_id: s.user_id,
            status,
            created_at: s.created_at,
            last_active_at: s.last_active_at,
            message_count: s.message_count,
            total_cost_usd: s.total_cost_usd,
            title: s.title,
            resume_count: s.resume_count,
            is_resumable: s.is_resumable,
            ended_reason: Named::parse(s.ended_reason),
            tenant_id: non_empty(s.tenant_id),
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "SessionList"))]
pub(crate) struct Sessions {
    pub(crate) sessions: Vec<Session>,
}

impl From<Vec<pb::SessionInfo>> for Sessions {
    fn from(list: Vec<pb::SessionInfo>) -> Self {
        Self {
            sessions: list.into_iter().map(Session::from).collect(),
        }
    }
}

/// `GET /api/v1/sessions/{id}/messages`: the history up to `last_seq`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "History"))]
pub(crate) struct Messages {
    /// Each message is the stored event JSON (a [`StreamFrame`] as it was
    /// sent), passed through as it is.
    #[cfg_attr(feature = "ts", ts(type = "Array<StreamFrame>"))]
    pub(crate) messages: Vec<Value>,
    pub(crate) last_seq: u64,
}

/// `GET /health/startup` once started.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct Started {
    pub(crate) status: &'static str,
    pub(crate) startup_duration_ms: u64,
}

/// `GET /health/startup` (503) while starting.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct NotStarted {
    pub(crate) status: &'static str,
    pub(crate) reason: &'static str,
}

/// `GET /health/ready` (503): the first reason a new user could not get a session.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct NotReady<'a> {
    pub(crate) status: &'static str,
    pub(crate) reason: &'a str,
    pub(crate) active_sessions: u32,
    pub(crate) max_sessions: u32,
}

/// `GET /health/ready` (200).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct Ready {
    pub(crate) status: &'static str,
    pub(crate) active_sessions: u32,
    pub(crate) max_sessions: u32,
    pub(crate) pool_depth: u32,
    pub(crate) circuit_breaker_state: &'static str,
    /// A warning an operator must see: `off` means agents run unconfined.
    pub(crate) agent_sandbox: Sandbox,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
/// `GET /api/v1/me/budget`: this month's spend against the caller's cap.
pub(crate) struct Budget {
    /// `YYYY-MM`.
    pub(crate) month: String,
    pub(crate) spent_usd: f64,
    /// null: no cap.
    pub(crate) cap_usd: Option<f64>,
    /// Whole percent of the cap spent; null without a cap.
    pub(crate) percent: Option<u32>,
}

impl From<pb::Budget> for Budget {
    fn from(b: pb::Budget) -> Self {
        Self {
            month: b.month,
            spent_usd: b.spent_usd,
            cap_usd: b.cap_usd,
            percent: b.percent,
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "AdminUser"))]
/// One row of `GET /api/v1/users` (admin), and the answer to creating or
/// changing a user.
pub(crate) struct User {
    pub(crate) user_id: String,
    pub(crate) username: String,
    pub(crate) role: String,
    /// RFC 3339.
    pub(crate) created_at: String,
    /// RFC 3339, or "" for never.
    pub(crate) last_login_at: String,
    pub(crate) is_active: bool,
    pub(crate) monthly_cost_cap_usd: Option<f64>,
    pub(crate) current_month_spend_usd: f64,
}

impl From<pb::User> for User {
    fn from(u: pb::User) -> Self {
        Self {
            user_id: u.user_id,
            username: u.username,
            role: u.role,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
            is_active: u.is_active,
            monthly_cost_cap_usd: u.monthly_cost_cap_usd,
            current_month_spend_usd: u.current_month_spend_usd,
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "UserList"))]
pub(crate) struct Users {
    pub(crate) users: Vec<User>,
}

/// One row of `GET /api/v1/admin/audit-log`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct AuditEntry {
    pub(crate) audit_id: String,
    pub(crate) seq: i64,
    /// RFC 3339.
    pub(crate) timestamp: String,
    pub(crate) user_id: String,
    /// Null when the user no longer exists.
    pub(crate) username: Option<String>,
    pub(crate) session_id: String,
    pub(crate) tool_name: String,
    pub(crate) sanitized_input: String,
    pub(crate) result_status: Named<AuditStatus>,
    pub(crate) execution_duration_ms: Option<i64>,
    pub(crate) cost_usd: Option<f64>,
}

impl AuditEntry {
    pub(crate) fn new(e: pb::AuditEntry, names: &HashMap<String, String>) -> Self {
        Self {
            username: names.get(&e.user_id).cloned(),
            audit_id: e.audit_id,
            seq: e.seq,
            timestamp: e.timestamp,
            user_id: e.user_id,
            session_id: e.session_id,
            tool_name: e.tool_name,
            sanitized_input: e.sanitized_input,
            result_status: Named::parse(e.result_status),
            execution_duration_ms: e.execution_duration_ms,
            cost_usd: e.cost_usd,
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct AuditPage {
    pub(crate) entries: Vec<AuditEntry>,
    /// The `before` of the next older page; null on the last page.
    pub(crate) next_before: Option<i64>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct PluginTool {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) required_role: String,
}

/// A problem in a plugin's files, pointing at where to fix it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "PluginProblem"))]
pub(crate) struct PluginError {
    pub(crate) file: String,
    /// 1-based; 0 when unknown.
    pub(crate) line: u32,
    /// 1-based; 0 when unknown.
    pub(crate) column: u32,
    /// e.g. `capabilities.tools[1].name`.
    pub(crate) field: String,
    pub(crate) message: String,
    pub(crate) suggestion: String,
}

/// `GET /api/v1/plugins/{name}`, and the answer to every change to a plugin.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct Plugin {
    pub(crate) name: String,
    pub(crate) version: String,
    /// `tool` | `mcp` | `skill` | `endpoint`; only `mcp` plugins can be activated.
    pub(crate) plugin_type: String,
    pub(crate) description: String,
    /// The plugins service's `PluginStatus` name: `registered`,
    /// `needs_config`, `ready`, `configured`, `activated`, `errored`, or
    /// `removed` (only in the answer to deactivating a plugin that is gone).
    pub(crate) status: String,
    pub(crate) active: bool,
    pub(crate) required_role: String,
    pub(crate) dir: String,
    pub(crate) tools: Vec<PluginTool>,
    /// Hosts (or host:port) the plugin talks to.
    pub(crate) network: Vec<String>,
    /// Embedded JSON (the manifest's JSON Schema); null when it has none.
    #[cfg_attr(feature = "ts", ts(type = "JsonObject | null"))]
    pub(crate) config_schema: Value,
    /// Embedded JSON; null when unset. A set secret shows as "[REDACTED]".
    #[cfg_attr(feature = "ts", ts(type = "JsonObject | null"))]
    pub(crate) config: Value,
    /// Each secret field that holds a value, as `true`.
    pub(crate) secrets: BTreeMap<String, bool>,
    /// Empty unless the manifest is invalid; on an active plugin: it runs
    /// its last valid manifest.
    pub(crate) errors: Vec<PluginError>,
    /// RFC 3339.
    pub(crate) updated_at: String,
}

/// A JSON column of the proto (schema, config) as JSON again; empty is null.
fn embedded(text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl From<pb::Plugin> for Plugin {
    fn from(p: pb::Plugin) -> Self {
        Self {
            config_schema: embedded(&p.config_schema_json),
            config: embedded(&p.config_json),
            secrets: p.secrets_set.into_iter().map(|k| (k, true)).collect(),
            name: p.name,
            version: p.version,
            plugin_type: p.plugin_type,
            description: p.description,
            status: p.status,
            active: p.active,
            required_role: p.required_role,
            dir: p.dir,
            tools: p
                .tools
                .into_iter()
                .map(|t| PluginTool {
                    name: t.name,
                    description: t.description,
                    required_role: t.required_role,
                })
                .collect(),
            network: p.network,
            errors: p
                .errors
                .into_iter()
                .map(|e| PluginError {
                    file: e.file,
                    line: e.line,
                    column: e.column,
                    field: e.field,
                    message: e.message,
                    suggestion: e.suggestion,
                })
                .collect(),
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "PluginList"))]
pub(crate) struct Plugins {
    pub(crate) plugins: Vec<Plugin>,
}

/// `POST /api/v1/plugins/rescan`: the list afterwards and the names that moved.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "PluginRescan"))]
pub(crate) struct Rescan {
    pub(crate) plugins: Vec<Plugin>,
    pub(crate) added: Vec<String>,
    pub(crate) changed: Vec<String>,
    pub(crate) removed: Vec<String>,
}

/// `{"error": {...}}`, every failure's body.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct ErrorBody<'a> {
    pub(crate) error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct ErrorDetail<'a> {
    pub(crate) code: ErrorCode,
    pub(crate) message: &'a str,
    pub(crate) action: &'static str,
}

/// `POST /api/v1/users`'s body (admin). Its Rust name shows in the error
/// that answers a malformed body ("expected struct NewUserBody").
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "NewUser"))]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUserBody {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) role: String,
    /// Absent or null: no cap.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) monthly_cost_cap_usd: Option<f64>,
}

/// `PATCH /api/v1/users/{id}`'s body (admin): only the fields to change.
/// A field that is present must hold a value of its type (`null` only for
/// the cap, where it means "no cap").
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub(crate) struct UserPatch {
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<String>", optional))]
    pub(crate) role: Option<String>,
    /// `Some(None)`: clear the cap.
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<f64>>", optional))]
    pub(crate) monthly_cost_cap_usd: Option<Option<f64>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub(crate) is_active: Option<bool>,
}

/// A field that, when present, must deserialize as `T` (`null` included
/// only when `T` takes it); absence is the `#[serde(default)]`.
mod present {
    use super::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }
}

/// `PUT /api/v1/plugins/{name}/config`'s body. A secret omitted (or sent as
/// "[REDACTED]") keeps its stored value; null clears it. Other top-level
/// fields are ignored.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "PluginConfigUpdate"))]
pub(crate) struct PluginConfig {
    #[cfg_attr(feature = "ts", ts(type = "JsonObject"))]
    pub(crate) config: Map<String, Value>,
}

/// A frame the browser sends on the WebSocket.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientFrame {
    Send {
        text: String,
        /// Echoed in the `user_message` event (at most 128 bytes of UTF-8; a
        /// longer one is dropped, not echoed).
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional = nullable))]
        client_id: Option<String>,
    },
    Interrupt,
    Ping,
}

/// A frame of the session stream: the event's own fields plus its `seq`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct StreamFrame<'a> {
    #[serde(flatten)]
    pub(crate) event: &'a Event,
    pub(crate) seq: u64,
}

impl<'a> From<&'a SessionEvent> for StreamFrame<'a> {
    fn from(ev: &'a SessionEvent) -> Self {
        Self {
            event: &ev.event,
            seq: ev.seq,
        }
    }
}

/// A frame about the connection itself: never carries `seq`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ConnectionFrame<'a> {
    /// A failure of this connection or of the frame just sent.
    Error { code: ErrorCode, message: &'a str },
    /// The answer to `ping`.
    Pong,
    /// The gateway got SIGTERM: the socket stays until it closes (1012),
    /// then the browser reattaches.
    ServerShuttingDown {
        message: &'static str,
        grace_seconds: u64,
    },
}

/// `enhancement_preferences` as a tenant shows it (every field set: the
/// tickets service fills in the defaults).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct EnhancementPreferences {
    /// Any of `ticket_history`, `kb`, `ip_inventory`.
    #[cfg_attr(feature = "ts", ts(type = "Array<ContextSource>"))]
    pub(crate) sources: Vec<String>,
    #[cfg_attr(feature = "ts", ts(type = "NoteFormat"))]
    pub(crate) note_format: String,
    pub(crate) max_words: u32,
    pub(crate) mask_pii: bool,
}

/// `enhancement_preferences` as sent: each field optional. On create an
/// absent field takes its default (all sources, `html`, 500 words, no
/// masking); on `PATCH` it keeps the tenant's value.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "EnhancementPreferencesInput"))]
#[serde(deny_unknown_fields)]
pub(crate) struct PreferencesBody {
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(type = "Array<ContextSource>", optional))]
    pub(crate) sources: Option<Vec<String>>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(type = "NoteFormat", optional))]
    pub(crate) note_format: Option<String>,
    /// 1 to 500.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub(crate) max_words: Option<u32>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub(crate) mask_pii: Option<bool>,
}

/// What shows instead of a set secret.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// A tenant (admin): `GET /api/v1/tenants/{tenant_id}` and the answer to
/// every change. Every tool's fields are members: those of the tenant's
/// tool hold its values (null when not set), the other tools' are null.
/// Secrets never: a secret field (`api_key`, `jira_api_token`,
/// `zendesk_api_token`) is `"[REDACTED]"` when set.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct Tenant {
    pub(crate) tenant_id: String,
    pub(crate) name: String,
    /// `servicedesk_plus`, `jira` or `zendesk`.
    pub(crate) tool_type: String,
    pub(crate) servicedesk_url: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "ServiceDeskAuth | null"))]
    pub(crate) servicedesk_auth: Option<String>,
    /// `"[REDACTED]"` when set, null when not.
    #[cfg_attr(feature = "ts", ts(type = "\"[REDACTED]\" | null"))]
    pub(crate) api_key: Option<&'static str>,
    pub(crate) jira_url: Option<String>,
    pub(crate) jira_email: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "\"[REDACTED]\" | null"))]
    pub(crate) jira_api_token: Option<&'static str>,
    pub(crate) jira_project_key: Option<String>,
    pub(crate) jira_issue_type: Option<String>,
    pub(crate) zendesk_subdomain: Option<String>,
    pub(crate) zendesk_email: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "\"[REDACTED]\" | null"))]
    pub(crate) zendesk_api_token: Option<&'static str>,
    pub(crate) zendesk_url: Option<String>,
    /// The tenant's external knowledge-base API; null when none.
    pub(crate) kb_api_url: Option<String>,
    pub(crate) enhancement_preferences: EnhancementPreferences,
    /// The model spend allowed per month; null: no cap.
    pub(crate) monthly_budget_usd: Option<f64>,
    /// False once deleted (soft delete: its webhooks are refused).
    pub(crate) is_active: bool,
    /// Its jobs go to a queue of its own (`tickets.enhance.tenant.<id>`),
    /// taken only by its own workers (`csp tenants k8s`); false: the shared
    /// workers'.
    pub(crate) dedicated_queue: bool,
    /// RFC 3339.
    pub(crate) created_at: String,
    /// RFC 3339.
    pub(crate) updated_at: String,
    /// Where its ticketing tool posts new tickets (`<public URL>/webhook/<tool_type>/<tenant_id>`).
    pub(crate) webhook_url: String,
}

/// Micro-dollars as dollars.
fn usd(micros: i64) -> f64 {
    micros as f64 / 1_000_000.0
}

impl Tenant {
    /// `t` as admins see it; `base` is the gateway's public URL.
    pub(crate) fn new(t: pb::Tenant, base: &str) -> Self {
        let path = if t.webhook_path.is_empty() {
            format!("/webhook/{}/{}", t.tool_type, t.tenant_id)
        } else {
            t.webhook_path
        };
        let p = t.enhancement_preferences.unwrap_or_default();
        let value = |name: &str| t.tool_settings.get(name).filter(|v| !v.is_empty()).cloned();
        let secret = |name: &str| t.secrets_set.iter().any(|s| s == name).then_some(REDACTED);
        // A tickets service older than tool_settings fills only the
        // ServiceDesk Plus fields.
        let legacy = |v: String| Some(v).filter(|v| !v.is_empty());
        Self {
            webhook_url: format!("{base}{path}"),
            servicedesk_url: value("servicedesk_url").or_else(|| legacy(t.servicedesk_url)),
            servicedesk_auth: value("servicedesk_auth").or_else(|| legacy(t.servicedesk_auth)),
            api_key: secret("api_key").or(t.api_key_set.then_some(REDACTED)),
            jira_url: value("jira_url"),
            jira_email: value("jira_email"),
            jira_api_token: secret("jira_api_token"),
            jira_project_key: value("jira_project_key"),
            jira_issue_type: value("jira_issue_type"),
            zendesk_subdomain: value("zendesk_subdomain"),
            zendesk_email: value("zendesk_email"),
            zendesk_api_token: secret("zendesk_api_token"),
            zendesk_url: value("zendesk_url"),
            tenant_id: t.tenant_id,
            name: t.name,
            tool_type: t.tool_type,
            kb_api_url: Some(t.kb_api_url).filter(|u| !u.is_empty()),
            enhancement_preferences: EnhancementPreferences {
                sources: p.sources,
                note_format: p.note_format,
                max_words: p.max_words,
                mask_pii: p.mask_pii,
            },
            monthly_budget_usd: t.monthly_budget_micros.map(usd),
            is_active: t.is_active,
            dedicated_queue: t.dedicated_queue,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// `POST /api/v1/tenants` (201): the tenant and its webhook secret, shown
/// this once.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct CreatedTenant {
    #[serde(flatten)]
    pub(crate) tenant: Tenant,
    pub(crate) webhook_secret: String,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "TenantList"))]
pub(crate) struct Tenants {
    pub(crate) tenants: Vec<Tenant>,
}

/// One user granted a tenant: besides admins, only they may bind a chat
/// session to it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct TenantGrant {
    pub(crate) user_id: String,
    /// Null when the policy service does not know the user (or could not
    /// be asked).
    pub(crate) username: Option<String>,
    /// The admin who granted it; null when not recorded.
    pub(crate) granted_by: Option<String>,
    /// RFC 3339.
    pub(crate) granted_at: String,
}

/// `GET /api/v1/tenants/{tenant_id}/grants` (admin), and the answer to
/// granting or revoking: the users granted the tenant.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "TenantGrantList"))]
pub(crate) struct TenantGrants {
    pub(crate) tenant_id: String,
    pub(crate) grants: Vec<TenantGrant>,
}

impl TenantGrants {
    /// `g` with each user's name from `names` (user id → username).
    pub(crate) fn new(g: pb::TenantGrants, names: &HashMap<String, String>) -> Self {
        Self {
            tenant_id: g.tenant_id,
            grants: g
                .grants
                .into_iter()
                .map(|g| TenantGrant {
                    username: names.get(&g.user_id).cloned(),
                    user_id: g.user_id,
                    granted_by: non_empty(g.granted_by),
                    granted_at: g.granted_at,
                })
                .collect(),
        }
    }
}

/// A tenant a user may bind a chat session to (`GET /ws?tenant=<tenant_id>`).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct ChatTenant {
    pub(crate) tenant_id: String,
    pub(crate) name: String,
    /// `servicedesk_plus`, `jira` or `zendesk`.
    pub(crate) tool_type: String,
}

/// `GET /api/v1/chat/tenants` (user): the tenants the caller may bind a
/// chat session to (an admin: every active one; anyone else: those granted).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "ChatTenantList"))]
pub(crate) struct ChatTenants {
    pub(crate) tenants: Vec<ChatTenant>,
}

impl From<pb::ChatTenants> for ChatTenants {
    fn from(list: pb::ChatTenants) -> Self {
        Self {
            tenants: list
                .tenants
                .into_iter()
                .map(|t| ChatTenant {
                    tenant_id: t.tenant_id,
                    name: t.name,
                    tool_type: t.tool_type,
                })
                .collect(),
        }
    }
}

/// `POST /api/v1/tenants`'s body (admin). Optional fields may be absent or
/// null. `monthly_budget_usd` is dollars (kept as micro-dollars). Of the
/// tool fields, the tenant's tool's are used (which it requires: see
/// `docs/ticket-enhancement.md`); another tool's must be absent, null or "".
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTenant {
    pub(crate) tenant_id: String,
    pub(crate) name: String,
    /// `servicedesk_plus`, `jira` or `zendesk`.
    pub(crate) tool_type: String,
    /// ServiceDesk Plus (required).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) servicedesk_url: Option<String>,
    /// ServiceDesk Plus; default `authtoken`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(type = "ServiceDeskAuth | null", optional))]
    pub(crate) servicedesk_auth: Option<String>,
    /// ServiceDesk Plus (required): the technician key or Zoho OAuth token.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) api_key: Option<String>,
    /// Jira (required): `https://<site>.atlassian.net`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) jira_url: Option<String>,
    /// Jira (required): the account the API token belongs to.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) jira_email: Option<String>,
    /// Jira (required, secret).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) jira_api_token: Option<String>,
    /// Jira (required): the service desk project's key.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) jira_project_key: Option<String>,
    /// Jira (optional).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) jira_issue_type: Option<String>,
    /// Zendesk (required): `<subdomain>.zendesk.com`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) zendesk_subdomain: Option<String>,
    /// Zendesk (required): the agent the API token belongs to.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) zendesk_email: Option<String>,
    /// Zendesk (required, secret).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) zendesk_api_token: Option<String>,
    /// Zendesk (optional): the API's base URL when not
    /// `https://<subdomain>.zendesk.com`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) zendesk_url: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) kb_api_url: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) enhancement_preferences: Option<PreferencesBody>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) monthly_budget_usd: Option<f64>,
    /// A queue of its own (see [`Tenant::dedicated_queue`]); default false.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) dedicated_queue: Option<bool>,
}

impl NewTenant {
    /// The tool fields after ServiceDesk Plus' (which travel in the
    /// request's own fields), by name, those sent.
    pub(crate) fn tool_fields(&self) -> HashMap<String, String> {
        sent([
            ("jira_url", &self.jira_url),
            ("jira_email", &self.jira_email),
            ("jira_api_token", &self.jira_api_token),
            ("jira_project_key", &self.jira_project_key),
            ("jira_issue_type", &self.jira_issue_type),
            ("zendesk_subdomain", &self.zendesk_subdomain),
            ("zendesk_email", &self.zendesk_email),
            ("zendesk_api_token", &self.zendesk_api_token),
            ("zendesk_url", &self.zendesk_url),
        ])
    }
}

fn sent<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a Option<String>)>,
) -> HashMap<String, String> {
    fields
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value.clone()?)))
        .collect()
}

/// `POST /api/v1/tenants/test-connection`'s body (admin): a tenant as
/// `POST /api/v1/tenants` takes it, of which only `tool_type` (required)
/// and the tool fields are used, so that a form can test what it would
/// save.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct ConnectionTestBody {
    /// `servicedesk_plus`, `jira` or `zendesk`.
    pub(crate) tool_type: String,
    /// ServiceDesk Plus (required).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) servicedesk_url: Option<String>,
    /// ServiceDesk Plus; default `authtoken`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(type = "ServiceDeskAuth | null", optional))]
    pub(crate) servicedesk_auth: Option<String>,
    /// ServiceDesk Plus (required): the technician key or Zoho OAuth token.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) api_key: Option<String>,
    /// Jira (required): `https://<site>.atlassian.net`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) jira_url: Option<String>,
    /// Jira (required): the account the API token belongs to.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) jira_email: Option<String>,
    /// Jira (required, secret).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) jira_api_token: Option<String>,
    /// Jira (required): the service desk project's key.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) jira_project_key: Option<String>,
    /// Jira (optional).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) jira_issue_type: Option<String>,
    /// Zendesk (required): `<subdomain>.zendesk.com`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) zendesk_subdomain: Option<String>,
    /// Zendesk (required): the agent the API token belongs to.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) zendesk_email: Option<String>,
    /// Zendesk (required, secret).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) zendesk_api_token: Option<String>,
    /// Zendesk (optional): the API's base URL when not
    /// `https://<subdomain>.zendesk.com`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub(crate) zendesk_url: Option<String>,
}

impl ConnectionTestBody {
    /// As [`NewTenant::tool_fields`].
    pub(crate) fn tool_fields(&self) -> HashMap<String, String> {
        sent([
            ("jira_url", &self.jira_url),
            ("jira_email", &self.jira_email),
            ("jira_api_token", &self.jira_api_token),
            ("jira_project_key", &self.jira_project_key),
            ("jira_issue_type", &self.jira_issue_type),
            ("zendesk_subdomain", &self.zendesk_subdomain),
            ("zendesk_email", &self.zendesk_email),
            ("zendesk_api_token", &self.zendesk_api_token),
            ("zendesk_url", &self.zendesk_url),
        ])
    }
}

/// `POST /api/v1/tenants/{tenant_id}/test-connection` and
/// `POST /api/v1/tenants/test-connection`: `{"ok": true}`, or
/// `{"ok": false, "reason": "..."}` with why in words an admin can act on
/// (settings that do not validate, the tool refusing or out of reach;
/// never a credential).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct ConnectionTest {
    pub(crate) ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub(crate) reason: Option<String>,
}

/// What a tool field holds, as its form input checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub(crate) enum ToolFieldKind {
    /// An http(s) URL without credentials, query or fragment.
    Url,
    Email,
    /// One line of text.
    Text,
    /// A token or key: no whitespace.
    Credential,
    /// One of `choices`.
    Choice,
}

/// One setting of a ticketing tool, as tenants of that tool carry it (its
/// `name` is the member of the tenant bodies).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct ToolField {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) required: bool,
    /// Write-only: a tenant shows `"[REDACTED]"` when it is set.
    pub(crate) secret: bool,
    pub(crate) kind: ToolFieldKind,
    /// The values allowed for a `choice` (the first is the default); empty
    /// otherwise.
    pub(crate) choices: Vec<String>,
}

/// A ticketing tool csp has a connector for.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "ToolTypeInfo"))]
pub(crate) struct ToolType {
    /// `servicedesk_plus`, `jira` or `zendesk`.
    pub(crate) tool_type: String,
    pub(crate) display_name: String,
    /// In the order of the form.
    pub(crate) fields: Vec<ToolField>,
}

/// `GET /api/v1/tool-types` (admin): every tool, from the connector
/// registry.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "ToolTypeList"))]
pub(crate) struct ToolTypes {
    pub(crate) tool_types: Vec<ToolType>,
}

impl From<pb::ToolTypes> for ToolTypes {
    fn from(list: pb::ToolTypes) -> Self {
        let kind = |k: &str| match k {
            "url" => ToolFieldKind::Url,
            "email" => ToolFieldKind::Email,
            "credential" => ToolFieldKind::Credential,
            "choice" => ToolFieldKind::Choice,
            // A kind this gateway does not know yet is shown as text; the
            // tickets service checks the value either way.
            _ => ToolFieldKind::Text,
        };
        Self {
            tool_types: list
                .tool_types
                .into_iter()
                .map(|t| ToolType {
                    tool_type: t.tool_type,
                    display_name: t.display_name,
                    fields: t
                        .fields
                        .into_iter()
                        .map(|f| ToolField {
                            kind: kind(&f.kind),
                            name: f.name,
                            label: f.label,
                            required: f.required,
                            secret: f.secret,
                            choices: f.choices,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// `POST /api/v1/tenants/{tenant_id}/import`'s optional body: the last
/// `days` (default 90), or `start_date` to `end_date` (YYYY-MM-DD, UTC,
/// both included).
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportRequest {
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub(crate) days: Option<u32>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub(crate) start_date: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub(crate) end_date: Option<String>,
}

/// `GET /api/v1/tenants/{tenant_id}/import` (admin): the tenant's latest
/// history import and how far it got.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct ImportProgress {
    pub(crate) tenant_id: String,
    #[cfg_attr(feature = "ts", ts(type = "ImportState"))]
    pub(crate) state: csp_domain::ImportState,
    /// Pages read from the tool.
    pub(crate) pages: u64,
    /// Tickets stored in the history.
    pub(crate) imported: u64,
    /// Tickets listed that could not be taken (no resolution, say).
    pub(crate) skipped: u64,
    /// Every ticket of the period, when the tool says; null when unknown.
    pub(crate) total: Option<u64>,
    /// Why it failed; null unless failed.
    pub(crate) error: Option<String>,
    /// RFC 3339.
    pub(crate) started_at: String,
    /// RFC 3339; null while running.
    pub(crate) finished_at: Option<String>,
    /// The period imported (RFC 3339).
    pub(crate) from: String,
    pub(crate) to: String,
}

/// A value of a typed vocabulary the tickets service sent that this
/// gateway does not know (a newer service during a rolling upgrade): the
/// handler answers `internal` and logs it (`From<UnknownValue> for
/// ApiError`), rather than passing an unchecked string to the browser.
#[derive(Debug)]
pub(crate) struct UnknownValue {
    pub(crate) what: &'static str,
    pub(crate) error: String,
}

impl UnknownValue {
    fn new(what: &'static str, error: impl std::fmt::Display) -> Self {
        Self {
            what,
            error: error.to_string(),
        }
    }
}

impl TryFrom<pb::ImportProgress> for ImportProgress {
    type Error = UnknownValue;
    fn try_from(p: pb::ImportProgress) -> Result<Self, Self::Error> {
        let state = p
            .state
            .parse()
            .map_err(|e| UnknownValue::new("import state", e))?;
        Ok(Self {
            tenant_id: p.tenant_id,
            state,
            pages: p.pages,
            imported: p.imported,
            skipped: p.skipped,
            total: p.total,
            error: non_empty(p.error),
            started_at: p.started_at,
            finished_at: non_empty(p.finished_at),
            from: p.from,
            to: p.to,
        })
    }
}

/// `POST /api/v1/tenants/{tenant_id}/import`: 202 with `started: true`, or
/// 200 with `started: false` and the import already running.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct ImportStarted {
    pub(crate) started: bool,
    #[serde(flatten)]
    pub(crate) progress: ImportProgress,
}

/// `PATCH /api/v1/tenants/{tenant_id}`'s body (admin): only the fields to
/// change. A secret (`api_key`, `jira_api_token`, `zendesk_api_token`) as
/// `""`, `"[REDACTED]"` or null keeps the stored one; another tool field as
/// null or `""` clears it (refused for a required one); `kb_api_url` and
/// `monthly_budget_usd` as null clear them. `tenant_id` and `tool_type` may
/// be sent back as they are, never changed.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantPatch {
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<String>", optional))]
    pub(crate) tenant_id: Option<String>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<String>", optional))]
    pub(crate) tool_type: Option<String>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<String>", optional))]
    pub(crate) name: Option<String>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) servicedesk_url: Option<Option<String>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(type = "ServiceDeskAuth | null", optional))]
    pub(crate) servicedesk_auth: Option<Option<String>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) api_key: Option<Option<String>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) jira_url: Option<Option<String>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) jira_email: Option<Option<String>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) jira_api_token: Option<Option<String>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) jira_project_key: Option<Option<String>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) jira_issue_type: Option<Option<String>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) zendesk_subdomain: Option<Option<String>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) zendesk_email: Option<Option<String>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) zendesk_api_token: Option<Option<String>>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) zendesk_url: Option<Option<String>>,
    /// null removes it.
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub(crate) kb_api_url: Option<Option<String>>,
    /// Merged into the tenant's: absent members keep their values.
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<PreferencesBody>", optional))]
    pub(crate) enhancement_preferences: Option<PreferencesBody>,
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub(crate) is_active: Option<bool>,
    /// null: no cap.
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<f64>>", optional))]
    pub(crate) monthly_budget_usd: Option<Option<f64>>,
    /// Jobs queued from then on go to the new queue; queued ones follow
    /// (a shared worker hands a dedicated tenant's job on).
    #[serde(default, with = "present")]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub(crate) dedicated_queue: Option<bool>,
}

impl TenantPatch {
    /// As [`NewTenant::tool_fields`]; null is sent as "".
    pub(crate) fn tool_fields(&self) -> HashMap<String, String> {
        [
            ("jira_url", &self.jira_url),
            ("jira_email", &self.jira_email),
            ("jira_api_token", &self.jira_api_token),
            ("jira_project_key", &self.jira_project_key),
            ("jira_issue_type", &self.jira_issue_type),
            ("zendesk_subdomain", &self.zendesk_subdomain),
            ("zendesk_email", &self.zendesk_email),
            ("zendesk_api_token", &self.zendesk_api_token),
            ("zendesk_url", &self.zendesk_url),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            let value = value.as_ref()?;
            Some((name.to_owned(), value.clone().unwrap_or_default()))
        })
        .collect()
    }
}

/// `POST /api/v1/tenants/{tenant_id}/webhook-secret`'s optional body: the
/// tool's own signing secret, stored instead of a generated one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProvidedWebhookSecret {
    pub(crate) webhook_secret: String,
}

/// `POST /api/v1/tenants/{tenant_id}/webhook-secret`: the new secret, shown
/// this once; the previous one is accepted until `previous_valid_until`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct WebhookSecret {
    pub(crate) webhook_secret: String,
    /// RFC 3339.
    pub(crate) previous_valid_until: String,
}

/// One row of `POST /api/v1/tenants/{tenant_id}/kb-articles` (a JSON list;
/// upsert by `url`).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub(crate) struct KbArticle {
    pub(crate) title: String,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(as = "Option<String>", optional))]
    pub(crate) summary: String,
    pub(crate) url: String,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(as = "Option<String>", optional))]
    pub(crate) body: String,
}

/// One row of `POST /api/v1/tenants/{tenant_id}/inventory` (a JSON list;
/// upsert by `ip`).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub(crate) struct SystemInfo {
    pub(crate) ip: String,
    pub(crate) hostname: String,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(as = "Option<String>", optional))]
    pub(crate) role: String,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(as = "Option<String>", optional))]
    pub(crate) client: String,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(as = "Option<String>", optional))]
    pub(crate) location: String,
}

/// The answer to an upload of context data.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct Upserted {
    pub(crate) upserted: u32,
}

/// `GET /api/v1/enhancements/{job_id}` (operator), and each row of the list.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct Enhancement {
    pub(crate) job_id: String,
    pub(crate) ticket_id: String,
    pub(crate) tenant_id: String,
    #[cfg_attr(feature = "ts", ts(type = "EnhancementStatus"))]
    pub(crate) status: String,
    pub(crate) attempts: u32,
    /// The gathered context with per-source timings and errors; null until
    /// gathered.
    #[cfg_attr(feature = "ts", ts(type = "JsonObject | null"))]
    pub(crate) context_gathered: Value,
    /// The note as synthesised; null until there is one.
    pub(crate) llm_output: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) processing_time_ms: Option<u64>,
    pub(crate) cost_usd: f64,
    /// RFC 3339.
    pub(crate) created_at: String,
    /// RFC 3339; null until completed or failed.
    pub(crate) completed_at: Option<String>,
    /// Also the trace id, from the webhook to the note.
    pub(crate) correlation_id: String,
    pub(crate) subject: String,
    pub(crate) description: String,
    pub(crate) priority: String,
    /// The note's id in the ticketing tool; null until posted.
    pub(crate) note_id: Option<String>,
    /// A technician's latest vote on the note, from the links at its end;
    /// null until someone votes.
    #[cfg_attr(feature = "ts", ts(type = "FeedbackVote | null"))]
    pub(crate) feedback: Option<String>,
    /// RFC 3339: when that vote was cast; null until someone votes.
    pub(crate) feedback_at: Option<String>,
}

fn non_empty(text: String) -> Option<String> {
    Some(text).filter(|t| !t.is_empty())
}

impl From<pb::Enhancement> for Enhancement {
    fn from(e: pb::Enhancement) -> Self {
        Self {
            context_gathered: embedded(&e.context_gathered_json),
            job_id: e.job_id,
            ticket_id: e.ticket_id,
            tenant_id: e.tenant_id,
            status: e.status,
            attempts: e.attempts,
            llm_output: non_empty(e.llm_output),
            error_message: non_empty(e.error_message),
            processing_time_ms: e.processing_time_ms,
            cost_usd: e.cost_usd,
            created_at: e.created_at,
            completed_at: non_empty(e.completed_at),
            correlation_id: e.correlation_id,
            subject: e.subject,
            description: e.description,
            priority: e.priority,
            note_id: non_empty(e.note_id),
            feedback: non_empty(e.feedback),
            feedback_at: non_empty(e.feedback_at),
        }
    }
}

/// `GET /api/v1/enhancements` (operator): a page, newest first.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct EnhancementPage {
    pub(crate) enhancements: Vec<Enhancement>,
    /// Jobs matching the filters, on every page.
    pub(crate) total: u64,
    /// From 1.
    pub(crate) page: u32,
    /// 50.
    pub(crate) per_page: u32,
}

/// One tenant's votes on its notes over a period.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct TenantFeedback {
    pub(crate) tenant_id: String,
    pub(crate) helpful: u64,
    pub(crate) not_helpful: u64,
    /// helpful / (helpful + not_helpful), 0 to 1; null without votes.
    pub(crate) helpful_rate: Option<f64>,
}

impl From<pb::TenantFeedback> for TenantFeedback {
    fn from(t: pb::TenantFeedback) -> Self {
        let votes = t.helpful + t.not_helpful;
        Self {
            helpful_rate: (votes > 0).then(|| t.helpful as f64 / votes as f64),
            tenant_id: t.tenant_id,
            helpful: t.helpful,
            not_helpful: t.not_helpful,
        }
    }
}

/// `GET /api/v1/enhancements/feedback` (operator): the votes per tenant
/// cast in the period (default: the last 30 days), tenants with votes only,
/// by tenant id.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct FeedbackSummary {
    pub(crate) tenants: Vec<TenantFeedback>,
}

/// `GET|PUT /api/v1/tickets/processing`: whether workers take new jobs.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct Processing {
    pub(crate) paused: bool,
    /// Jobs recorded and not yet finished.
    pub(crate) queue_depth: u64,
    pub(crate) active_workers: u32,
}

impl From<pb::ProcessingState> for Processing {
    fn from(p: pb::ProcessingState) -> Self {
        Self {
            paused: p.paused,
            queue_depth: p.queue_depth,
            active_workers: p.active_workers,
        }
    }
}

/// `PUT /api/v1/tickets/processing`'s body (admin).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub(crate) struct ProcessingUpdate {
    pub(crate) paused: bool,
}

/// `POST /api/v1/tickets/queue/clear` (admin): the pending jobs that became
/// `failed` with the error `cleared`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct QueueCleared {
    pub(crate) cleared: u64,
}

/// `POST /api/v1/tickets/configs/reload` (admin): every replica reads the
/// tenants' configurations again at their next use.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct ConfigsReloaded {
    /// Always true (a reload that could not reach every replica is an error).
    pub(crate) reloaded: bool,
}

/// `202` to a new-ticket webhook: the job, recorded and queued (a repeated
/// delivery: the first delivery's job).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct WebhookQueued {
    pub(crate) job_id: String,
    /// `queued`.
    pub(crate) status: String,
}

/// `202` to a resolved-ticket webhook: stored in the ticket history.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct WebhookStored {
    /// `stored`.
    pub(crate) status: String,
}

/// `GET /api/v1/tickets/dashboard` (operator): the pipeline's health with
/// its first reason, the figures of the last 24 hours, the last failures
/// and the backends (docs/ticket-enhancement.md, "Dashboard").
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct Dashboard {
    #[cfg_attr(feature = "ts", ts(type = "Health"))]
    pub(crate) status: String,
    /// Why, in words; null when healthy.
    pub(crate) reason: Option<String>,
    pub(crate) paused: bool,
    /// Jobs recorded and not yet finished.
    pub(crate) queue_depth: u64,
    /// Jobs that ended in the last 24 hours.
    pub(crate) completed_24h: u64,
    pub(crate) failed_24h: u64,
    /// completed / (completed + failed), 0 to 1; null when none ended.
    pub(crate) success_rate_24h: Option<f64>,
    /// The 95th percentile of their processing time; null when none ended.
    pub(crate) p95_latency_ms_24h: Option<u64>,
    /// Workers with a heartbeat that are not unresponsive.
    pub(crate) active_workers: u32,
    /// The last 10 failed jobs, newest first.
    pub(crate) recent_failures: Vec<Enhancement>,
    /// The store, the cache and the queue.
    pub(crate) dependencies: Vec<Dependency>,
    /// Technicians' votes of the last 30 days, per tenant with votes.
    pub(crate) feedback: Vec<TenantFeedback>,
}

/// A backend as the dashboard sees it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "DashboardDependency"))]
pub(crate) struct Dependency {
    /// postgres, redis, nats (`csp dev`: sqlite, memory, in-process).
    pub(crate) name: String,
    pub(crate) ok: bool,
    /// The round trip ("3 ms"), or why not.
    pub(crate) detail: String,
}

impl From<pb::Dashboard> for Dashboard {
    fn from(d: pb::Dashboard) -> Self {
        Self {
            status: d.status,
            reason: non_empty(d.reason),
            paused: d.paused,
            queue_depth: d.queue_depth,
            completed_24h: d.completed_24h,
            failed_24h: d.failed_24h,
            success_rate_24h: d.success_rate_24h,
            p95_latency_ms_24h: d.p95_latency_ms_24h,
            active_workers: d.active_workers,
            recent_failures: d.recent_failures.into_iter().map(Into::into).collect(),
            dependencies: d
                .dependencies
                .into_iter()
                .map(|x| Dependency {
                    name: x.name,
                    ok: x.ok,
                    detail: x.detail,
                })
                .collect(),
            feedback: d.feedback.into_iter().map(Into::into).collect(),
        }
    }
}

/// `GET /api/v1/tickets/charts?range=1h|6h|24h|7d` (operator): the
/// operations charts of a period, one value per timestamp in each series
/// (null: none — nothing ended in the window, no sample)
/// (docs/ticket-enhancement.md, "Charts").
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct Charts {
    #[cfg_attr(feature = "ts", ts(type = "ChartRange"))]
    pub(crate) range: csp_domain::ChartRange,
    /// Prometheus (`CSP_PROMETHEUS_URL`) or the platform's own history.
    #[cfg_attr(feature = "ts", ts(type = "ChartSource"))]
    pub(crate) source: csp_domain::ChartSource,
    /// Why the data is not fresh from its source ("Prometheus unreachable
    /// since …: showing data from …"); null when it is.
    pub(crate) warning: Option<String>,
    /// RFC 3339: when the data was read from its source.
    pub(crate) generated_at: String,
    pub(crate) step_seconds: u32,
    /// The trailing window of each point's success rate and percentiles.
    pub(crate) window_seconds: u32,
    /// Unix seconds, oldest first.
    pub(crate) timestamps: Vec<i64>,
    /// Jobs pending or processing.
    pub(crate) queue_depth: Vec<Option<f64>>,
    /// completed / (completed + failed), 0 to 1.
    pub(crate) success_rate: Vec<Option<f64>>,
    /// Processing time of ended jobs, seconds.
    pub(crate) latency_p50_seconds: Vec<Option<f64>>,
    pub(crate) latency_p95_seconds: Vec<Option<f64>>,
    pub(crate) latency_p99_seconds: Vec<Option<f64>>,
}

impl TryFrom<pb::Charts> for Charts {
    type Error = UnknownValue;
    fn try_from(c: pb::Charts) -> Result<Self, Self::Error> {
        let source = c
            .source
            .parse()
            .map_err(|e| UnknownValue::new("chart source", e))?;
        // JSON has no NaN: the service's "no value" is null here.
        let values = |v: Vec<f64>| v.into_iter().map(|x| x.is_finite().then_some(x)).collect();
        Ok(Self {
            range: csp_domain::ChartRange::from(c.range()),
            source,
            warning: non_empty(c.warning),
            generated_at: c.generated_at,
            step_seconds: c.step_seconds,
            window_seconds: c.window_seconds,
            timestamps: c.timestamps,
            queue_depth: values(c.queue_depth),
            success_rate: values(c.success_rate),
            latency_p50_seconds: values(c.latency_p50_seconds),
            latency_p95_seconds: values(c.latency_p95_seconds),
            latency_p99_seconds: values(c.latency_p99_seconds),
        })
    }
}

/// `GET /api/v1/tickets/workers` (operator): every worker that sent a
/// heartbeat in the last hour, newest first.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "WorkerList"))]
pub(crate) struct Workers {
    pub(crate) workers: Vec<Worker>,
}

/// One tickets-worker process, as its last heartbeat tells it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "WorkerSummary"))]
pub(crate) struct Worker {
    pub(crate) worker_id: String,
    pub(crate) hostname: String,
    /// RFC 3339.
    pub(crate) started_at: String,
    /// RFC 3339: its last heartbeat.
    pub(crate) last_seen_at: String,
    #[cfg_attr(feature = "ts", ts(type = "WorkerStatus"))]
    pub(crate) status: String,
    pub(crate) active_jobs: u32,
    /// Since the process started.
    pub(crate) completed_jobs: u64,
    pub(crate) failed_jobs: u64,
    /// Of every core of its machine, 0 to 100.
    pub(crate) cpu_percent: f64,
    /// Of its machine's memory, 0 to 100.
    pub(crate) memory_percent: f64,
    /// Jobs completed in the last minute.
    pub(crate) jobs_per_minute: f64,
}

impl From<pb::Workers> for Workers {
    fn from(w: pb::Workers) -> Self {
        Self {
            workers: w
                .workers
                .into_iter()
                .map(|w| Worker {
                    worker_id: w.worker_id,
                    hostname: w.hostname,
                    started_at: w.started_at,
                    last_seen_at: w.last_seen_at,
                    status: w.status,
                    active_jobs: w.active_jobs,
                    completed_jobs: w.completed_jobs,
                    failed_jobs: w.failed_jobs,
                    cpu_percent: w.cpu_percent,
                    memory_percent: w.memory_percent,
                    jobs_per_minute: w.jobs_per_minute,
                })
                .collect(),
        }
    }
}

/// `GET /api/v1/tickets/workers/{worker_id}/logs?level=` (operator): the
/// worker's last 100 log lines of at least `level`, oldest first.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct WorkerLogs {
    pub(crate) worker_id: String,
    /// The level asked for (`debug`: every line).
    #[cfg_attr(feature = "ts", ts(type = "LogLevel"))]
    pub(crate) level: String,
    pub(crate) lines: Vec<WorkerLogLine>,
}

/// One log line, as the worker's process logged it in text (escaped,
/// redacted, at most 1 KiB).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct WorkerLogLine {
    #[cfg_attr(feature = "ts", ts(type = "LogLevel"))]
    pub(crate) level: String,
    pub(crate) text: String,
}

impl From<pb::WorkerLogLines> for WorkerLogs {
    fn from(l: pb::WorkerLogLines) -> Self {
        Self {
            worker_id: l.worker_id,
            level: l.level,
            lines: l
                .lines
                .into_iter()
                .map(|l| WorkerLogLine {
                    level: l.level,
                    text: l.text,
                })
                .collect(),
        }
    }
}

/// `GET /api/v1/tickets/workers/{worker_id}/throughput` (operator): the
/// jobs the worker ended per hour over 7 days, 168 hours oldest first.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct WorkerThroughput {
    pub(crate) worker_id: String,
    pub(crate) hours: Vec<ThroughputHour>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct ThroughputHour {
    /// RFC 3339: the hour's start.
    pub(crate) start: String,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
}

impl From<pb::WorkerThroughput> for WorkerThroughput {
    fn from(t: pb::WorkerThroughput) -> Self {
        Self {
            worker_id: t.worker_id,
            hours: t
                .hours
                .into_iter()
                .map(|h| ThroughputHour {
                    start: h.start,
                    completed: h.completed,
                    failed: h.failed,
                })
                .collect(),
        }
    }
}

/// `POST /api/v1/tickets/workers/{worker_id}/restart` (admin): the command
/// is written; the worker drains from its next heartbeat (within 5 s).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub(crate) struct WorkerRestart {
    pub(crate) worker_id: String,
    /// Its status when the command was written.
    #[cfg_attr(feature = "ts", ts(type = "WorkerStatus"))]
    pub(crate) status: String,
}

/// The TypeScript of the ticket-enhancement vocabularies (`csp-domain`
/// declares them without ts-rs), each checked against its `ALL` in the
/// tests.
#[cfg(all(test, feature = "ts"))]
const TICKET_VOCABULARIES: &str = "\
/** Where an enhancement job stands (csp-domain `EnhancementStatus`). */
export type EnhancementStatus = \"pending\" | \"processing\" | \"completed\" | \"failed\";

/** A technician's vote on a note (csp-domain `FeedbackVote`). */
export type FeedbackVote = \"helpful\" | \"not_helpful\";

/** A context source a tenant may use (csp-domain `ContextSource`). */
export type ContextSource = \"ticket_history\" | \"kb\" | \"ip_inventory\";

/** How notes are written (csp-domain `NoteFormat`). */
export type NoteFormat = \"html\" | \"markdown\";

/** How csp signs in to a tenant's ServiceDesk Plus. */
export type ServiceDeskAuth = \"authtoken\" | \"zoho_oauth\";

/** The pipeline's health on the dashboard (csp-domain `Health`). */
export type Health = \"healthy\" | \"degraded\" | \"down\";

/** Where a history import stands (csp-domain `ImportState`). */
export type ImportState = \"running\" | \"completed\" | \"failed\";

/** How far back the charts look (csp-domain `ChartRange`). */
export type ChartRange = \"1h\" | \"6h\" | \"24h\" | \"7d\";

/** Where the charts' data comes from (csp-domain `ChartSource`). */
export type ChartSource = \"prometheus\" | \"history\";

/** Where a tickets worker stands (csp-domain `WorkerStatus`). */
export type WorkerStatus = \"active\" | \"idle\" | \"draining\" | \"unresponsive\";

/** The level of a worker's log line, most severe first (csp-domain `LogLevel`). */
export type LogLevel = \"error\" | \"warn\" | \"info\" | \"debug\";
";

/// The TypeScript declarations of every wire type, as
/// `web/src/generated/api.ts` holds them (`scripts/check-generated.sh`).
#[cfg(all(test, feature = "ts"))]
pub(crate) fn typescript() -> String {
    use csp_domain::{Action, ToolStatus};
    use ts_rs::TS;
    let cfg = ts_rs::Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from services/gateway/src/dto.rs (and the csp-domain types it\n\
         // carries) by scripts/check-generated.sh --update.\n\
         // Do not edit: change the Rust type and regenerate.\n\
         \n\
         /** Embedded JSON: an object whose members the server does not type. */\n\
         export type JsonObject = { [key in string]?: unknown };\n",
    );
    for decl in [
        // Vocabularies (csp-domain).
        Role::decl(&cfg),
        SessionStatus::decl(&cfg),
        StatusReason::decl(&cfg),
        ToolStatus::decl(&cfg),
        AuditStatus::decl(&cfg),
        ErrorCode::decl(&cfg),
        Named::<SessionStatus>::decl(&cfg),
        // WebSocket frames (a stream frame inlines its `Event`).
        Action::decl(&cfg),
        StreamFrame::decl(&cfg),
        ConnectionFrame::decl(&cfg),
        ClientFrame::decl(&cfg),
        // REST request bodies.
        LoginRequest::decl(&cfg),
        NewUserBody::decl(&cfg),
        UserPatch::decl(&cfg),
        PluginConfig::decl(&cfg),
        // REST response bodies.
        ErrorBody::decl(&cfg),
        ErrorDetail::decl(&cfg),
        Status::decl(&cfg),
        Started::decl(&cfg),
        NotStarted::decl(&cfg),
        Ready::decl(&cfg),
        NotReady::decl(&cfg),
        Sandbox::decl(&cfg),
        Config::decl(&cfg),
        LoginUser::decl(&cfg),
        Login::decl(&cfg),
        Me::decl(&cfg),
        Budget::decl(&cfg),
        User::decl(&cfg),
        Users::decl(&cfg),
        Session::decl(&cfg),
        Sessions::decl(&cfg),
        Messages::decl(&cfg),
        AuditEntry::decl(&cfg),
        AuditPage::decl(&cfg),
        PluginTool::decl(&cfg),
        PluginError::decl(&cfg),
        Plugin::decl(&cfg),
        Plugins::decl(&cfg),
        Rescan::decl(&cfg),
        // Ticket enhancement (its vocabularies are TICKET_VOCABULARIES).
        PreferencesBody::decl(&cfg),
        NewTenant::decl(&cfg),
        TenantPatch::decl(&cfg),
        ConnectionTestBody::decl(&cfg),
        KbArticle::decl(&cfg),
        SystemInfo::decl(&cfg),
        ProcessingUpdate::decl(&cfg),
        EnhancementPreferences::decl(&cfg),
        Tenant::decl(&cfg),
        CreatedTenant::decl(&cfg),
        Tenants::decl(&cfg),
        TenantGrant::decl(&cfg),
        TenantGrants::decl(&cfg),
        ChatTenant::decl(&cfg),
        ChatTenants::decl(&cfg),
        WebhookSecret::decl(&cfg),
        ConnectionTest::decl(&cfg),
        ToolFieldKind::decl(&cfg),
        ToolField::decl(&cfg),
        ToolType::decl(&cfg),
        ToolTypes::decl(&cfg),
        ImportRequest::decl(&cfg),
        ImportProgress::decl(&cfg),
        ImportStarted::decl(&cfg),
        Upserted::decl(&cfg),
        Enhancement::decl(&cfg),
        EnhancementPage::decl(&cfg),
        TenantFeedback::decl(&cfg),
        FeedbackSummary::decl(&cfg),
        Processing::decl(&cfg),
        QueueCleared::decl(&cfg),
        ConfigsReloaded::decl(&cfg),
        WebhookQueued::decl(&cfg),
        WebhookStored::decl(&cfg),
        Dependency::decl(&cfg),
        Dashboard::decl(&cfg),
        Charts::decl(&cfg),
        Worker::decl(&cfg),
        Workers::decl(&cfg),
        WorkerLogLine::decl(&cfg),
        WorkerLogs::decl(&cfg),
        ThroughputHour::decl(&cfg),
        WorkerThroughput::decl(&cfg),
        WorkerRestart::decl(&cfg),
    ] {
        out.push_str("\nexport ");
        for line in decl.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(TICKET_VOCABULARIES);
    out
}

#[cfg(all(test, feature = "ts"))]
mod generated {
    /// The hand-written unions say exactly what csp-domain's vocabularies do.
    #[test]
    fn ticket_vocabularies_match_the_domain() {
        use csp_domain::{
            ContextSource, EnhancementStatus, FeedbackVote, Health, NoteFormat, WorkerStatus,
        };
        let union = |names: Vec<&str>| {
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(" | ")
        };
        for (ty, names) in [
            (
                "EnhancementStatus",
                EnhancementStatus::ALL.iter().map(|s| s.as_str()).collect(),
            ),
            (
                "ContextSource",
                ContextSource::ALL.iter().map(|s| s.as_str()).collect(),
            ),
            (
                "FeedbackVote",
                FeedbackVote::ALL.iter().map(|v| v.as_str()).collect(),
            ),
            (
                "NoteFormat",
                NoteFormat::ALL.iter().map(|s| s.as_str()).collect(),
            ),
            ("Health", Health::ALL.iter().map(|s| s.as_str()).collect()),
            (
                "ImportState",
                csp_domain::ImportState::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            ),
            (
                "WorkerStatus",
                WorkerStatus::ALL.iter().map(|s| s.as_str()).collect(),
            ),
            (
                "LogLevel",
                csp_domain::LogLevel::ALL
                    .iter()
                    .map(|l| l.as_str())
                    .collect(),
            ),
            (
                "ChartRange",
                csp_domain::ChartRange::ALL
                    .iter()
                    .map(|r| r.as_str())
                    .collect(),
            ),
            (
                "ChartSource",
                csp_domain::ChartSource::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            ),
        ] {
            let line = format!("export type {ty} = {};", union(names));
            assert!(
                super::TICKET_VOCABULARIES.lines().any(|l| l == line),
                "{line}"
            );
        }
    }

    /// Fails when `web/src/generated/api.ts` is not what the Rust types
    /// generate. With `CSP_GENERATED_OUT=<dir>` it writes `<dir>/api.ts`
    /// instead (`scripts/check-generated.sh`).
    #[test]
    fn web_types_are_up_to_date() {
        let want = super::typescript();
        if let Some(dir) = std::env::var_os("CSP_GENERATED_OUT") {
            let dir = std::path::Path::new(&dir);
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("api.ts"), want).unwrap();
            return;
        }
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/src/generated/api.ts");
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: run scripts/check-generated.sh --update",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn to_json(v: impl Serialize) -> Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn typed_statuses_keep_their_wire_names() {
        for s in SessionStatus::ALL {
            assert_eq!(to_json(Named::Known(s)), json!(s.as_str()));
        }
        for s in AuditStatus::ALL {
            assert_eq!(
                to_json(Named::<AuditStatus>::parse(s.as_str().into())),
                json!(s.as_str())
            );
        }
        for s in StatusReason::ALL {
            assert_eq!(
                to_json(Named::<StatusReason>::parse(s.as_str().into())),
                json!(s.as_str())
            );
        }
        assert_eq!(
            to_json(Named::<StatusReason>::parse(String::new())),
            json!("")
        );
        assert_eq!(
            to_json(Named::<AuditStatus>::parse("odd".into())),
            json!("odd")
        );
        assert_eq!(to_json(Sandbox::new(true)), json!("off"));
        assert_eq!(to_json(Sandbox::new(false)), json!("bubblewrap"));
    }

    #[test]
    fn websocket_frames_keep_their_wire_shape() {
        use csp_domain::{SessionId, ToolStatus};
        let sid = SessionId::new();
        for event in [
            Event::status(SessionStatus::Ready, sid, Some("m".into()), None),
            Event::UserMessage {
                text: "hi".into(),
                client_id: None,
            },
            Event::ToolUse {
                tool_use_id: "t".into(),
                name: "Bash".into(),
                input: json!({"command": "ls"}),
            },
            Event::ToolResult {
                tool_use_id: "t".into(),
                status: ToolStatus::Denied,
                duration_ms: 3,
                content: "no".into(),
            },
            Event::session_expiring(2),
            Event::session_restarted(sid),
            Event::error(ErrorCode::QueueFull),
        ] {
            let ev = SessionEvent {
                session_id: sid,
                seq: 7,
                event,
                trace: None,
            };
            assert_eq!(to_json(StreamFrame::from(&ev)), ev.to_frame());
        }
        assert_eq!(
            to_json(ConnectionFrame::Error {
                code: ErrorCode::BadFrame,
                message: "m",
            }),
            json!({"type": "error", "code": "bad_frame", "message": "m"})
        );
        assert_eq!(to_json(ConnectionFrame::Pong), json!({"type": "pong"}));
        assert_eq!(
            to_json(ConnectionFrame::ServerShuttingDown {
                message: "bye",
                grace_seconds: 30,
            }),
            json!({"type": "server_shutting_down", "message": "bye", "grace_seconds": 30})
        );
    }

    #[test]
    fn request_bodies_accept_what_they_always_did() {
        let frame = |s: &str| serde_json::from_str::<ClientFrame>(s).ok();
        assert!(matches!(
            frame(r#"{"type":"ping","extra":1}"#),
            Some(ClientFrame::Ping)
        ));
        assert!(matches!(
            frame(r#"{"type":"send","text":"a","client_id":null}"#),
            Some(ClientFrame::Send {
                client_id: None,
                ..
            })
        ));
        assert!(frame(r#"{"type":"send"}"#).is_none());
        let config = |s: &str| serde_json::from_str::<PluginConfig>(s).ok();
        assert_eq!(
            config(r#"{"config":{"a":1},"other":true}"#).map(|c| c.config.len()),
            Some(1)
        );
        assert!(config(r#"{"config":[1]}"#).is_none());
        assert!(config(r#"{"config":null}"#).is_none());
        assert!(config("{}").is_none());
        let login = |s: &str| serde_json::from_str::<LoginRequest>(s).ok();
        assert!(login(r#"{"username":"a","password":"b","remember":true}"#).is_some());
        let new_user = |s: &str| serde_json::from_str::<NewUserBody>(s).ok();
        assert!(new_user(r#"{"username":"a","password":"b","role":"user"}"#).is_some());
        assert!(
            new_user(r#"{"username":"a","password":"b","role":"user","x":1}"#).is_none(),
            "creating a user always refused unknown fields"
        );
    }

    #[test]
    fn a_session_with_an_unknown_status_says_so() {
        let s = pb::SessionInfo {
            session_id: "s".into(),
            status: 999,
            ended_reason: "idle_timeout".into(),
            ..Default::default()
        };
        assert_eq!(
            to_json(Sessions::from(vec![s])),
            json!({"sessions": [{
                "session_id": "s", "user_id": "", "status": "unknown", "created_at": "",
                "last_active_at": "", "message_count": 0, "total_cost_usd": 0.0, "title": "",
                "resume_count": 0, "is_resumable": false, "ended_reason": "idle_timeout",
                "tenant_id": null,
            }]})
        );
    }

    #[test]
    fn unset_optionals_are_null_not_absent() {
        let e = pb::AuditEntry {
            audit_id: "a".into(),
            result_status: "denied".into(),
            ..Default::default()
        };
        assert_eq!(
            to_json(AuditPage {
                entries: vec![AuditEntry::new(e, &HashMap::new())],
                next_before: None,
            }),
            json!({"entries": [{
                "audit_id": "a", "seq": 0, "timestamp": "", "user_id": "", "username": null,
                "session_id": "", "tool_name": "", "sanitized_input": "",
                "result_status": "denied", "execution_duration_ms": null, "cost_usd": null,
            }], "next_before": null})
        );
        let grants = pb::TenantGrants {
            tenant_id: "acme".into(),
            grants: vec![pb::TenantGrant {
                user_id: "u".into(),
                ..Default::default()
            }],
        };
        assert_eq!(
            to_json(TenantGrants::new(grants, &HashMap::new())),
            json!({"tenant_id": "acme", "grants": [
                {"user_id": "u", "username": null, "granted_by": null, "granted_at": ""},
            ]})
        );
        assert_eq!(
            to_json(Budget::from(pb::Budget::default())),
            json!({"month": "", "spent_usd": 0.0, "cap_usd": null, "percent": null})
        );
        let p = pb::Plugin {
            name: "p".into(),
            secrets_set: vec!["token".into()],
            config_json: r#"{"token":"[REDACTED]"}"#.into(),
            tools: vec![pb::PluginTool::default()],
            errors: vec![pb::ManifestProblem::default()],
            ..Default::default()
        };
        assert_eq!(
            to_json(Plugin::from(p)),
            json!({
                "name": "p", "version": "", "plugin_type": "", "description": "", "status": "",
                "active": false, "required_role": "", "dir": "",
                "tools": [{"name": "", "description": "", "required_role": ""}],
                "network": [], "config_schema": null, "config": {"token": "[REDACTED]"},
                "secrets": {"token": true},
                "errors": [{"file": "", "line": 0, "column": 0, "field": "", "message": "",
                            "suggestion": ""}],
                "updated_at": "",
            })
        );
    }
}
