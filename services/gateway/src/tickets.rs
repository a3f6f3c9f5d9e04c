//! REST handlers of ticket enhancement: tenants, their context data and
//! who may chat about them (admins), the enhancement history and the
//! workers' pause switch (operators; pausing is for admins), and the
//! tenants a user may bind a chat session to. Authorisation happened in
//! `auth::authorize` (route rule) and happens again in the tickets service
//! (current role, audit log); these handlers check the JSON's shape and
//! translate. The tickets service checks the values, and its messages name
//! the field the same way the gateway's do (`enhancement_preferences.max_words`,
//! `articles[3].url`).

use crate::auth::AuthUser;
use crate::dto;
use crate::error::{ApiError, body_bytes};
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use csp_domain::{EnhancementStatus, ErrorCode, TenantId};
use csp_proto::v1 as pb;
use http::HeaderMap;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The most `enhancement_preferences.max_words` may be (the seed's cap).
const MAX_WORDS: u64 = 500;
/// The longest `q` of the history search.
const MAX_QUERY_CHARS: usize = 200;

fn invalid_tenant(message: impl Into<String>) -> ApiError {
    ApiError {
        code: ErrorCode::InvalidTenant,
        message: Some(message.into()),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError {
        code: ErrorCode::InvalidRequest,
        message: Some(message.into()),
    }
}

fn rpc(s: tonic::Status) -> ApiError {
    ApiError::from_status(&s)
}

/// What a member of a JSON body must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Text,
    Flag,
    /// Dollars: a number, 0 or more.
    Usd,
    /// A whole number from 1 to [`MAX_WORDS`].
    Words,
    TextList,
    Preferences,
}

/// A member: its name, what it holds, whether null is accepted (as absent
/// on create; as "remove" where a patch allows it) and whether a create
/// requires it.
type Member = (&'static str, Want, bool, bool);

/// The members of `NewTenant`, in the order of the form. Which tool fields
/// are required depends on the tool: the tickets service says (naming the
/// field).
const NEW_TENANT: &[Member] = &[
    ("tenant_id", Want::Text, false, true),
    ("name", Want::Text, false, true),
    ("tool_type", Want::Text, false, true),
    ("servicedesk_url", Want::Text, true, false),
    ("servicedesk_auth", Want::Text, true, false),
    ("api_key", Want::Text, true, false),
    ("jira_url", Want::Text, true, false),
    ("jira_email", Want::Text, true, false),
    ("jira_api_token", Want::Text, true, false),
    ("jira_project_key", Want::Text, true, false),
    ("jira_issue_type", Want::Text, true, false),
    ("zendesk_subdomain", Want::Text, true, false),
    ("zendesk_email", Want::Text, true, false),
    ("zendesk_api_token", Want::Text, true, false),
    ("zendesk_url", Want::Text, true, false),
    ("kb_api_url", Want::Text, true, false),
    ("enhancement_preferences", Want::Preferences, true, false),
    ("monthly_budget_usd", Want::Usd, true, false),
    ("dedicated_queue", Want::Flag, true, false),
];

/// The members of `ConnectionTestBody`: those of `NewTenant` (a form sends
/// what it would save), only `tool_type` required.
fn connection_test_members() -> Vec<Member> {
    NEW_TENANT
        .iter()
        .map(|&(name, want, nullable, _)| (name, want, nullable, name == "tool_type"))
        .collect()
}

/// The members of `TenantPatch`.
const TENANT_PATCH: &[Member] = &[
    ("tenant_id", Want::Text, false, false),
    ("tool_type", Want::Text, false, false),
    ("name", Want::Text, false, false),
    ("servicedesk_url", Want::Text, true, false),
    ("servicedesk_auth", Want::Text, true, false),
    ("api_key", Want::Text, true, false),
    ("jira_url", Want::Text, true, false),
    ("jira_email", Want::Text, true, false),
    ("jira_api_token", Want::Text, true, false),
    ("jira_project_key", Want::Text, true, false),
    ("jira_issue_type", Want::Text, true, false),
    ("zendesk_subdomain", Want::Text, true, false),
    ("zendesk_email", Want::Text, true, false),
    ("zendesk_api_token", Want::Text, true, false),
    ("zendesk_url", Want::Text, true, false),
    ("kb_api_url", Want::Text, true, false),
    ("enhancement_preferences", Want::Preferences, false, false),
    ("is_active", Want::Flag, false, false),
    ("monthly_budget_usd", Want::Usd, true, false),
    ("dedicated_queue", Want::Flag, false, false),
];

const PREFERENCES: &[Member] = &[
    ("sources", Want::TextList, false, false),
    ("note_format", Want::Text, false, false),
    ("max_words", Want::Words, false, false),
    ("mask_pii", Want::Flag, false, false),
];

const KB_ARTICLE: &[Member] = &[
    ("title", Want::Text, false, true),
    ("summary", Want::Text, false, false),
    ("url", Want::Text, false, true),
    ("body", Want::Text, false, false),
];

const SYSTEM: &[Member] = &[
    ("ip", Want::Text, false, true),
    ("hostname", Want::Text, false, true),
    ("role", Want::Text, false, false),
    ("client", Want::Text, false, false),
    ("location", Want::Text, false, false),
];

fn names(members: &[Member]) -> String {
    let names: Vec<&str> = members.iter().map(|m| m.0).collect();
    names.join(", ")
}

/// Checks `obj` against `members`, naming the first problem with the
/// member's full path (`prefix` + name): an unknown member, a missing
/// required one (when `create`), a value of the wrong type.
fn check(
    prefix: &str,
    obj: &Map<String, Value>,
    members: &[Member],
    create: bool,
) -> Result<(), String> {
    if let Some(k) = obj
        .keys()
        .find(|k| !members.iter().any(|m| m.0 == k.as_str()))
    {
        let shown: String = k.chars().take(64).collect();
        return Err(format!(
            "{prefix}{shown} is not a known field (known: {})",
            names(members)
        ));
    }
    for &(name, want, nullable, required) in members {
        let field = format!("{prefix}{name}");
        let value = match obj.get(name) {
            None | Some(Value::Null) if create && required => {
                return Err(format!("{field} is required"));
            }
            None => continue,
            Some(Value::Null) if nullable => continue,
            Some(v) => v,
        };
        let ok = match want {
            Want::Text => value.is_string(),
            Want::Flag => value.is_boolean(),
            Want::Usd => value.as_f64().is_some_and(|n| n.is_finite() && n >= 0.0),
            Want::Words => value.as_u64().is_some_and(|n| (1..=MAX_WORDS).contains(&n)),
            Want::TextList => value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            Want::Preferences => match value.as_object() {
                Some(p) => {
                    check(&format!("{field}."), p, PREFERENCES, false)?;
                    true
                }
                None => false,
            },
        };
        if !ok {
            return Err(format!("{field} must be {}", describe(want, nullable)));
        }
    }
    Ok(())
}

fn describe(want: Want, nullable: bool) -> String {
    let what = match want {
        Want::Text => "a string".to_owned(),
        Want::Flag => "true or false".to_owned(),
        Want::Usd => "a number of dollars, 0 or more".to_owned(),
        Want::Words => format!("between 1 and {MAX_WORDS}"),
        Want::TextList => "a list of strings".to_owned(),
        Want::Preferences => format!("an object with {}", names(PREFERENCES)),
    };
    if nullable {
        format!("{what} or null")
    } else {
        what
    }
}

/// A JSON object body checked against `members`, then as `T`.
fn object<T: serde::de::DeserializeOwned>(
    body: &[u8],
    members: &[Member],
    create: bool,
    what: &str,
) -> Result<T, String> {
    let obj: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| format!("Send {what} as a JSON object with {}", names(members)))?;
    check("", &obj, members, create)?;
    serde_json::from_value(Value::Object(obj)).map_err(|e| e.to_string())
}

/// A JSON list body of objects, each checked against `members` and named
/// `<list>[i].<field>`, then as `T`s.
fn list<T: serde::de::DeserializeOwned>(
    body: &[u8],
    members: &[Member],
    list_name: &str,
) -> Result<Vec<T>, String> {
    let rows: Vec<Value> = serde_json::from_slice(body).map_err(|_| {
        format!(
            "Send {list_name} as a JSON list of objects with {}",
            names(members)
        )
    })?;
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            let Value::Object(obj) = row else {
                return Err(format!("{list_name}[{i}] must be an object"));
            };
            check(&format!("{list_name}[{i}]."), &obj, members, true)?;
            serde_json::from_value(Value::Object(obj)).map_err(|e| e.to_string())
        })
        .collect()
}

/// Dollars as micro-dollars.
fn micros(usd: f64) -> i64 {
    (usd * 1_000_000.0).round() as i64
}

fn preferences(p: dto::PreferencesBody) -> pb::EnhancementPreferences {
    pb::EnhancementPreferences {
        sources: p.sources.unwrap_or_default(),
        note_format: p.note_format.unwrap_or_default(),
        max_words: p.max_words.unwrap_or(0),
        mask_pii: p.mask_pii.unwrap_or(false),
    }
}

/// One call of the tickets service as the signed-in user: its answer, or
/// the RPC's error as the REST error. Every handler here is such a call
/// between its DTOs; this is the call.
macro_rules! ask_tickets {
    ($state:expr, $user:expr, $method:ident, $request:expr) => {
        $state
            .tickets
            .clone()
            .$method($state.as_user($user, $request))
            .await
            .map_err(rpc)?
            .into_inner()
    };
}

/// The base of `webhook_url`s: `CSP_PUBLIC_URL`, else this request's scheme
/// and host (`X-Forwarded-Proto`/`-Host` behind a trusted proxy).
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.clone();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let forwarded = |name: &str| state.trust_forwarded_for.then(|| header(name)).flatten();
    let scheme = forwarded("x-forwarded-proto")
        .filter(|s| s == "http" || s == "https")
        .unwrap_or_else(|| if state.cookie_secure { "https" } else { "http" }.to_owned());
    let host = forwarded("x-forwarded-host")
        .or_else(|| header(http::header::HOST.as_str()))
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
        })
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{scheme}://{host}")
}

pub(crate) async fn list_tenants(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> Result<Json<dto::Tenants>, ApiError> {
    let list = ask_tickets!(state, &user, list_tenants, pb::ListTenantsRequest {});
    let base = public_base(&state, &headers);
    Ok(Json(dto::Tenants {
        tenants: list
            .tenants
            .into_iter()
            .map(|t| dto::Tenant::new(t, &base))
            .collect(),
    }))
}

/// `POST /api/v1/tenants`. The body is never logged: it holds the tool's
/// credential.
pub(crate) async fn create_tenant(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let t: dto::NewTenant =
        object(&body, NEW_TENANT, true, "the tenant").map_err(invalid_tenant)?;
    let req = pb::CreateTenantRequest {
        tool_fields: t.tool_fields(),
        tenant_id: t.tenant_id,
        name: t.name,
        tool_type: t.tool_type,
        servicedesk_url: t.servicedesk_url.unwrap_or_default(),
        servicedesk_auth: t.servicedesk_auth.unwrap_or_default(),
        api_key: t.api_key.unwrap_or_default(),
        kb_api_url: t.kb_api_url.unwrap_or_default(),
        enhancement_preferences: t.enhancement_preferences.map(preferences),
        monthly_budget_micros: t.monthly_budget_usd.map(micros),
        dedicated_queue: t.dedicated_queue.unwrap_or(false),
    };
    let created = ask_tickets!(state, &user, create_tenant, req);
    let base = public_base(&state, &headers);
    let body = dto::CreatedTenant {
        tenant: dto::Tenant::new(created.tenant.unwrap_or_default(), &base),
        webhook_secret: created.webhook_secret,
    };
    Ok((http::StatusCode::CREATED, Json(body)).into_response())
}

pub(crate) async fn get_tenant(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(tenant_id): Path<String>,
) -> Result<Json<dto::Tenant>, ApiError> {
    let t = fetch_tenant(&state, &user, tenant_id).await?;
    Ok(Json(dto::Tenant::new(t, &public_base(&state, &headers))))
}

async fn fetch_tenant(
    state: &AppState,
    user: &AuthUser,
    tenant_id: String,
) -> Result<pb::Tenant, ApiError> {
    Ok(ask_tickets!(
        state,
        user,
        get_tenant,
        pb::TenantRequest { tenant_id }
    ))
}

/// `PATCH /api/v1/tenants/{tenant_id}`: only what is sent changes; the
/// preferences are merged member by member. The body is never logged.
pub(crate) async fn update_tenant(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(tenant_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<dto::Tenant>, ApiError> {
    let body = body_bytes(body)?;
    let patch: dto::TenantPatch =
        object(&body, TENANT_PATCH, false, "the changes").map_err(invalid_tenant)?;
    if patch.tenant_id.as_ref().is_some_and(|id| *id != tenant_id) {
        return Err(invalid_tenant("tenant_id cannot be changed"));
    }
    // What a patch is merged into: only fetched when it needs to be.
    let current = if patch.tool_type.is_some() || patch.enhancement_preferences.is_some() {
        Some(fetch_tenant(&state, &user, tenant_id.clone()).await?)
    } else {
        None
    };
    let tool_fields = patch.tool_fields();
    if let (Some(tool), Some(t)) = (&patch.tool_type, &current)
        && *tool != t.tool_type
    {
        return Err(invalid_tenant("tool_type cannot be changed"));
    }
    let enhancement_preferences = patch.enhancement_preferences.map(|p| {
        let was = current
            .as_ref()
            .and_then(|t| t.enhancement_preferences.clone())
            .unwrap_or_default();
        pb::EnhancementPreferences {
            sources: p.sources.unwrap_or(was.sources),
            note_format: p.note_format.unwrap_or(was.note_format),
            max_words: p.max_words.unwrap_or(was.max_words),
            mask_pii: p.mask_pii.unwrap_or(was.mask_pii),
        }
    });
    let (monthly_budget_micros, clear_monthly_budget) = match patch.monthly_budget_usd {
        None => (None, false),
        Some(None) => (None, true),
        Some(Some(usd)) => (Some(micros(usd)), false),
    };
    let req = pb::UpdateTenantRequest {
        tenant_id,
        name: patch.name,
        tool_type: patch.tool_type,
        tool_fields,
        // null: "" (removed; refused for a required field).
        servicedesk_url: patch.servicedesk_url.map(Option::unwrap_or_default),
        servicedesk_auth: patch.servicedesk_auth.map(Option::unwrap_or_default),
        // null, "" and "[REDACTED]" keep the stored key (the service's rule too).
        api_key: patch
            .api_key
            .flatten()
            .filter(|k| !k.is_empty() && k != dto::REDACTED),
        // null removes it: "" is how the API says so.
        kb_api_url: patch.kb_api_url.map(Option::unwrap_or_default),
        enhancement_preferences,
        is_active: patch.is_active,
        monthly_budget_micros,
        clear_monthly_budget,
        dedicated_queue: patch.dedicated_queue,
    };
    let t = ask_tickets!(state, &user, update_tenant, req);
    Ok(Json(dto::Tenant::new(t, &public_base(&state, &headers))))
}

/// Soft delete: the tenant turns inactive (its webhooks are refused), its
/// data stays.
pub(crate) async fn delete_tenant(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(tenant_id): Path<String>,
) -> Result<Json<dto::Tenant>, ApiError> {
    let t = ask_tickets!(state, &user, delete_tenant, pb::TenantRequest { tenant_id });
    Ok(Json(dto::Tenant::new(t, &public_base(&state, &headers))))
}

/// `POST /api/v1/tenants/{tenant_id}/webhook-secret`: a generated secret,
/// or with `{"webhook_secret": "…"}` the tool's own (Zendesk generates it).
pub(crate) async fn rotate_webhook_secret(
    State(state): State<AppState>,
    user: AuthUser,
    Path(tenant_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<dto::WebhookSecret>, ApiError> {
    let body = body_bytes(body)?;
    let webhook_secret = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        // The serde error may quote the body: it is not echoed.
        let given: dto::ProvidedWebhookSecret = serde_json::from_slice(&body)
            .map_err(|_| invalid("The body must be {\"webhook_secret\": \"...\"} or empty."))?;
        Some(given.webhook_secret)
    };
    let r = ask_tickets!(
        state,
        &user,
        rotate_webhook_secret,
        pb::RotateWebhookSecretRequest {
            tenant_id,
            webhook_secret,
        }
    );
    Ok(Json(dto::WebhookSecret {
        webhook_secret: r.webhook_secret,
        previous_valid_until: r.previous_valid_until,
    }))
}

/// `POST /api/v1/tenants/{tenant_id}/test-connection`: the saved tenant's
/// settings against its tool; with a body (as the unsaved test takes it),
/// an edit form's settings, whose secret fields left empty or
/// `"[REDACTED]"` (and fields not sent) are the saved tenant's. The body is
/// never logged.
pub(crate) async fn test_tenant_connection(
    State(state): State<AppState>,
    user: AuthUser,
    Path(tenant_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<dto::ConnectionTest>, ApiError> {
    use pb::test_connection_request::Target;
    let body = body_bytes(body)?;
    // No settings (nothing, `null` or `{}`): the saved ones.
    let saved = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Null) => true,
        Ok(Value::Object(o)) => o.is_empty(),
        _ => body.iter().all(u8::is_ascii_whitespace),
    };
    if saved {
        return test_connection(&state, &user, Target::TenantId(tenant_id)).await;
    }
    let settings = pb::ConnectionSettings {
        tenant_id,
        ..connection_settings(&body)?
    };
    test_connection(&state, &user, Target::Settings(settings)).await
}

/// A connection test's body as settings (only `tool_type` required).
fn connection_settings(body: &[u8]) -> Result<pb::ConnectionSettings, ApiError> {
    let t: dto::ConnectionTestBody =
        object(body, &connection_test_members(), true, "the tenant").map_err(invalid_tenant)?;
    Ok(pb::ConnectionSettings {
        tool_fields: t.tool_fields(),
        tool_type: t.tool_type,
        servicedesk_url: t.servicedesk_url.unwrap_or_default(),
        servicedesk_auth: t.servicedesk_auth.unwrap_or_default(),
        api_key: t.api_key.unwrap_or_default(),
        tenant_id: String::new(),
    })
}

/// `POST /api/v1/tenants/test-connection`: settings not saved yet (a
/// create's body; only `tool_type` and the tool fields are used). The body
/// is never logged: it holds the tool's credential.
pub(crate) async fn test_unsaved_connection(
    State(state): State<AppState>,
    user: AuthUser,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<dto::ConnectionTest>, ApiError> {
    use pb::test_connection_request::Target;
    let body = body_bytes(body)?;
    let settings = connection_settings(&body)?;
    test_connection(&state, &user, Target::Settings(settings)).await
}

async fn test_connection(
    state: &AppState,
    user: &AuthUser,
    target: pb::test_connection_request::Target,
) -> Result<Json<dto::ConnectionTest>, ApiError> {
    let r = ask_tickets!(
        state,
        user,
        test_connection,
        pb::TestConnectionRequest {
            target: Some(target),
        }
    );
    Ok(Json(dto::ConnectionTest {
        ok: r.ok,
        reason: (!r.ok).then_some(r.reason),
    }))
}

/// `GET /api/v1/tool-types`: every ticketing tool with its tenant fields,
/// from the tickets service's connector registry.
pub(crate) async fn tool_types(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::ToolTypes>, ApiError> {
    let r = ask_tickets!(state, &user, list_tool_types, pb::ListToolTypesRequest {});
    Ok(Json(dto::ToolTypes::from(r)))
}

/// `POST /api/v1/tenants/{tenant_id}/import`: starts importing the
/// tenant's resolved tickets into its history (202), or answers the import
/// already running (200, `started: false`). The body is optional:
/// `{"days": 90}` or `{"start_date": "2026-01-01", "end_date": "2026-01-31"}`.
pub(crate) async fn start_import(
    State(state): State<AppState>,
    user: AuthUser,
    Path(tenant_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let period = if body.iter().all(u8::is_ascii_whitespace) {
        dto::ImportRequest::default()
    } else {
        // `null` is no period too.
        serde_json::from_slice::<Option<dto::ImportRequest>>(&body)
            .map(Option::unwrap_or_default)
            .map_err(|_| {
            invalid(
                "The body must be empty, {\"days\": 90} or {\"start_date\": \"YYYY-MM-DD\", \"end_date\": \"YYYY-MM-DD\"}.",
            )
        })?
    };
    let r = ask_tickets!(
        state,
        &user,
        start_import,
        pb::StartImportRequest {
            tenant_id,
            days: period.days.unwrap_or(0),
            start_date: period.start_date.unwrap_or_default(),
            end_date: period.end_date.unwrap_or_default(),
        }
    );
    let status = if r.started {
        http::StatusCode::ACCEPTED
    } else {
        http::StatusCode::OK
    };
    let body = dto::ImportStarted {
        started: r.started,
        progress: dto::ImportProgress::try_from(r.progress.unwrap_or_default())?,
    };
    Ok((status, Json(body)).into_response())
}

/// `GET /api/v1/tenants/{tenant_id}/import`: the tenant's latest import
/// and how far it got (404 when none in the last 24 hours).
pub(crate) async fn import_progress(
    State(state): State<AppState>,
    user: AuthUser,
    Path(tenant_id): Path<String>,
) -> Result<Json<dto::ImportProgress>, ApiError> {
    let r = ask_tickets!(state, &user, get_import, pb::TenantRequest { tenant_id });
    Ok(Json(dto::ImportProgress::try_from(r)?))
}

/// Whether the body is a CSV file (`Content-Type: text/csv`).
fn is_csv(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/csv"))
}

/// The rows of a context upload: a JSON list of objects, or with
/// `Content-Type: text/csv` a CSV file whose header row names the columns
/// (`crate::csv`). Each row is checked against `members`; errors name
/// `<list>[i].<field>`, or for a CSV file the row (the header is row 1)
/// and the column. Also answers each row's number in the file, for CSV.
fn upload<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    members: &[Member],
    list_name: &str,
) -> Result<(Vec<T>, Option<Vec<usize>>), String> {
    if !is_csv(headers) {
        return Ok((list(body, members, list_name)?, None));
    }
    let table = crate::csv::parse(body)?;
    if let Some(col) = table
        .header
        .iter()
        .find(|h| !members.iter().any(|m| m.0 == h.as_str()))
    {
        return Err(format!(
            "row 1: column {col} is not a known field (known: {})",
            names(members)
        ));
    }
    let mut numbers = Vec::with_capacity(table.rows.len());
    let rows = table
        .objects()
        .map(|(row, obj)| {
            numbers.push(row);
            check(&format!("row {row}: "), &obj, members, true)?;
            serde_json::from_value(Value::Object(obj)).map_err(|e| format!("row {row}: {e}"))
        })
        .collect::<Result<_, String>>()?;
    Ok((rows, Some(numbers)))
}

/// The tickets service's answer to an upload; for a CSV file, a message
/// naming `<list>[i].` names the file's row instead.
fn upload_error(s: tonic::Status, list_name: &str, rows: Option<&[usize]>) -> ApiError {
    let mut e = rpc(s);
    let (Some(rows), Some(message)) = (rows, e.message.as_deref()) else {
        return e;
    };
    let renamed = message
        .strip_prefix(list_name)
        .and_then(|m| m.strip_prefix('['))
        .and_then(|m| m.split_once("]."))
        .and_then(|(i, rest)| {
            let row = rows.get(i.parse::<usize>().ok()?)?;
            Some(format!("row {row}: {rest}"))
        });
    if let Some(renamed) = renamed {
        e.message = Some(renamed);
    }
    e
}

/// `POST /api/v1/tenants/{tenant_id}/kb-articles`: a JSON list or a CSV
/// file (title, summary, url, body).
pub(crate) async fn upsert_kb_articles(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(tenant_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<dto::Upserted>, ApiError> {
    let body = body_bytes(body)?;
    let (rows, numbers): (Vec<dto::KbArticle>, _) =
        upload(&headers, &body, KB_ARTICLE, "articles").map_err(invalid)?;
    let req = pb::UpsertKbArticlesRequest {
        tenant_id,
        articles: rows
            .into_iter()
            .map(|a| pb::KbArticle {
                title: a.title,
                summary: a.summary,
                url: a.url,
                body: a.body,
            })
            .collect(),
    };
    let r = state
        .tickets
        .clone()
        .upsert_kb_articles(state.as_user(&user, req))
        .await
        .map_err(|s| upload_error(s, "articles", numbers.as_deref()))?
        .into_inner();
    Ok(Json(dto::Upserted {
        upserted: r.upserted,
    }))
}

/// `POST /api/v1/tenants/{tenant_id}/inventory`: a JSON list or a CSV file
/// (ip, hostname, role, client, location).
pub(crate) async fn upsert_inventory(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(tenant_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<dto::Upserted>, ApiError> {
    let body = body_bytes(body)?;
    let (rows, numbers): (Vec<dto::SystemInfo>, _) =
        upload(&headers, &body, SYSTEM, "systems").map_err(invalid)?;
    let req = pb::UpsertInventoryRequest {
        tenant_id,
        systems: rows
            .into_iter()
            .map(|s| pb::SystemInfo {
                ip: s.ip,
                hostname: s.hostname,
                role: s.role,
                client: s.client,
                location: s.location,
            })
            .collect(),
    };
    let r = state
        .tickets
        .clone()
        .upsert_inventory(state.as_user(&user, req))
        .await
        .map_err(|s| upload_error(s, "systems", numbers.as_deref()))?
        .into_inner();
    Ok(Json(dto::Upserted {
        upserted: r.upserted,
    }))
}

/// `GET /api/v1/enhancements`' query, checked: every value names what is
/// wrong with it (400 `invalid_request`). Unknown parameters are ignored.
fn enhancement_query(q: &HashMap<String, String>) -> Result<pb::ListEnhancementsRequest, ApiError> {
    let get = |k: &str| q.get(k).map(|v| v.trim()).unwrap_or("");
    let tenant_id = match get("tenant_id") {
        "" => String::new(),
        t => TenantId::parse(t)
            .map_err(|e| invalid(e.to_string()))?
            .to_string(),
    };
    let status = match get("status") {
        "" => String::new(),
        s => s
            .parse::<EnhancementStatus>()
            .map_err(|_| {
                let all: Vec<&str> = EnhancementStatus::ALL.iter().map(|s| s.as_str()).collect();
                invalid(format!("status must be one of {}", all.join(", ")))
            })?
            .as_str()
            .to_owned(),
    };
    let from = crate::admin::bound("from", get("from"), false)?;
    let to = crate::admin::bound("to", get("to"), true)?;
    let text = get("q");
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid(format!(
            "q must be at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let page = match get("page") {
        "" => 1,
        p => p
            .parse::<u32>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| invalid("page must be a whole number from 1"))?,
    };
    Ok(pb::ListEnhancementsRequest {
        tenant_id,
        status,
        from,
        to,
        q: text.to_owned(),
        page,
    })
}

pub(crate) async fn list_enhancements(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<dto::EnhancementPage>, ApiError> {
    let req = enhancement_query(&q)?;
    let r = ask_tickets!(state, &user, list_enhancements, req);
    Ok(Json(dto::EnhancementPage {
        enhancements: r.enhancements.into_iter().map(Into::into).collect(),
        total: r.total,
        page: r.page,
        per_page: r.per_page,
    }))
}

/// A job id from a path: job ids are UUIDs, so anything else names no job.
fn job_id_of(text: &str) -> Result<String, ApiError> {
    text.parse::<uuid::Uuid>()
        .map(|id| id.to_string())
        .map_err(|_| ApiError::new(ErrorCode::EnhancementNotFound))
}

pub(crate) async fn get_enhancement(
    State(state): State<AppState>,
    user: AuthUser,
    Path(job_id): Path<String>,
) -> Result<Json<dto::Enhancement>, ApiError> {
    let e = ask_tickets!(
        state,
        &user,
        get_enhancement,
        pb::GetEnhancementRequest {
            job_id: job_id_of(&job_id)?,
        }
    );
    Ok(Json(e.into()))
}

pub(crate) async fn get_processing(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::Processing>, ApiError> {
    let p = ask_tickets!(state, &user, get_processing, pb::GetProcessingRequest {});
    Ok(Json(p.into()))
}

/// The operations dashboard (operator): always an answer, whatever is down
/// (the tickets service bounds each of its reads).
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::Dashboard>, ApiError> {
    let d = ask_tickets!(state, &user, get_dashboard, pb::GetDashboardRequest {});
    Ok(Json(d.into()))
}

/// The operations charts of a period (operator): `?range=1h|6h|24h|7d`,
/// 24 h without one.
pub(crate) async fn charts(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<dto::Charts>, ApiError> {
    let range = match q.get("range").map(|r| r.trim()) {
        None | Some("") => csp_domain::ChartRange::DEFAULT,
        Some(r) => r
            .parse::<csp_domain::ChartRange>()
            .map_err(|_| invalid("range must be 1h, 6h, 24h or 7d"))?,
    };
    let c = ask_tickets!(
        state,
        &user,
        get_charts,
        pb::GetChartsRequest {
            range: pb::ChartRange::from(range) as i32,
        }
    );
    Ok(Json(c.try_into()?))
}

/// The workers from their heartbeats (operator).
pub(crate) async fn workers(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::Workers>, ApiError> {
    let w = ask_tickets!(state, &user, list_workers, pb::ListWorkersRequest {});
    Ok(Json(w.into()))
}

/// A worker id from a path: worker ids are UUIDs, so anything else names
/// no worker.
fn worker_id_of(text: &str) -> Result<String, ApiError> {
    text.parse::<uuid::Uuid>()
        .map(|id| id.to_string())
        .map_err(|_| ApiError::new(ErrorCode::WorkerNotFound))
}

/// `GET /api/v1/tickets/workers/{worker_id}/logs?level=warn` (operator):
/// the worker's last log lines of at least `level` (error, warn, info or
/// debug; none: every line).
pub(crate) async fn worker_logs(
    State(state): State<AppState>,
    user: AuthUser,
    Path(worker_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<dto::WorkerLogs>, ApiError> {
    let level = q.get("level").map(|l| l.trim()).unwrap_or_default();
    if !level.is_empty() && level.parse::<csp_domain::LogLevel>().is_err() {
        return Err(invalid("level must be error, warn, info or debug."));
    }
    let l = ask_tickets!(
        state,
        &user,
        get_worker_logs,
        pb::WorkerLogsRequest {
            worker_id: worker_id_of(&worker_id)?,
            level: level.to_owned(),
        }
    );
    Ok(Json(l.into()))
}

/// `GET /api/v1/tickets/workers/{worker_id}/throughput` (operator): the
/// jobs the worker ended per hour over the last 7 days.
pub(crate) async fn worker_throughput(
    State(state): State<AppState>,
    user: AuthUser,
    Path(worker_id): Path<String>,
) -> Result<Json<dto::WorkerThroughput>, ApiError> {
    let t = ask_tickets!(
        state,
        &user,
        get_worker_throughput,
        pb::WorkerRequest {
            worker_id: worker_id_of(&worker_id)?,
        }
    );
    Ok(Json(t.into()))
}

/// `POST /api/v1/tickets/workers/{worker_id}/restart` (admin): the worker
/// drains (its jobs in flight finish) and exits, and its supervisor starts
/// it again (audited by the tickets service).
pub(crate) async fn restart_worker(
    State(state): State<AppState>,
    user: AuthUser,
    Path(worker_id): Path<String>,
) -> Result<Json<dto::WorkerRestart>, ApiError> {
    let r = ask_tickets!(
        state,
        &user,
        restart_worker,
        pb::WorkerRequest {
            worker_id: worker_id_of(&worker_id)?,
        }
    );
    Ok(Json(dto::WorkerRestart {
        worker_id: r.worker_id,
        status: r.status,
    }))
}

pub(crate) async fn set_processing(
    State(state): State<AppState>,
    user: AuthUser,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<dto::Processing>, ApiError> {
    let body = body_bytes(body)?;
    let dto::ProcessingUpdate { paused } = serde_json::from_slice(&body)
        .map_err(|_| invalid(r#"Send a JSON body {"paused": true} or {"paused": false}."#))?;
    let p = ask_tickets!(
        state,
        &user,
        set_processing,
        pb::SetProcessingRequest { paused }
    );
    Ok(Json(p.into()))
}

/// `POST /api/v1/tickets/queue/clear` (admin): every pending job becomes
/// `failed` with the error `cleared` (audited by the tickets service).
pub(crate) async fn clear_queue(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::QueueCleared>, ApiError> {
    let r = ask_tickets!(state, &user, clear_queue, pb::ClearQueueRequest {});
    Ok(Json(dto::QueueCleared { cleared: r.cleared }))
}

/// `POST /api/v1/tickets/configs/reload` (admin): every replica drops its
/// cached tenant configurations (audited by the tickets service).
pub(crate) async fn reload_configs(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::ConfigsReloaded>, ApiError> {
    ask_tickets!(state, &user, reload_configs, pb::ReloadConfigsRequest {});
    Ok(Json(dto::ConfigsReloaded { reloaded: true }))
}

/// `POST /api/v1/enhancements/{job_id}/retry` (operator): a failed job,
/// queued again; any other is `invalid_request` (audited by the tickets
/// service).
pub(crate) async fn retry_enhancement(
    State(state): State<AppState>,
    user: AuthUser,
    Path(job_id): Path<String>,
) -> Result<Json<dto::Enhancement>, ApiError> {
    let e = ask_tickets!(
        state,
        &user,
        retry_enhancement,
        pb::RetryEnhancementRequest {
            job_id: job_id_of(&job_id)?,
        }
    );
    Ok(Json(e.into()))
}

/// The export's columns, its first line.
const EXPORT_COLUMNS: &str = "job_id,tenant_id,ticket_id,status,attempts,processing_time_ms,cost_usd,created_at,completed_at,error_message\n";

/// One job as a line of the export (see [`crate::admin::csv_cell`]).
fn export_line(e: &pb::Enhancement) -> String {
    let cells = [
        e.job_id.as_str(),
        e.tenant_id.as_str(),
        e.ticket_id.as_str(),
        e.status.as_str(),
        &e.attempts.to_string(),
        &e.processing_time_ms
            .map(|ms| ms.to_string())
            .unwrap_or_default(),
        &format!("{:.6}", e.cost_usd),
        e.created_at.as_str(),
        e.completed_at.as_str(),
        e.error_message.as_str(),
    ];
    let mut line = cells
        .iter()
        .map(|c| crate::admin::csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// `GET /api/v1/enhancements/export.csv?tenant_id=&status=&from=&to=&q=`
/// (operator): every job the history's filters match, newest first, as
/// CSV. Streamed: each page the tickets service sends (up to 500 jobs) is
/// written as it arrives, so the gateway holds one page at a time however
/// many jobs match. A failure after the first line cuts the download short
/// (the body ends with an error, which the browser reports as a failed
/// download) rather than ending it as if complete.
pub(crate) async fn export_enhancements(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    use futures::StreamExt as _;
    let req = pb::ListEnhancementsRequest {
        page: 0,
        ..enhancement_query(&q)?
    };
    // Refusals (role, filters) come before the first page: a JSON error.
    let pages = ask_tickets!(state, &user, export_enhancements, req);
    let lines = pages.map(|page| match page {
        Ok(page) => Ok(Bytes::from(
            page.enhancements
                .iter()
                .map(export_line)
                .collect::<String>(),
        )),
        Err(s) => {
            tracing::warn!(grpc.code = ?s.code(), "enhancement export cut short");
            Err(std::io::Error::other("the export was cut short"))
        }
    });
    let body = futures::stream::once(async { Ok(Bytes::from_static(EXPORT_COLUMNS.as_bytes())) })
        .chain(lines);
    Ok((
        [
            (http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"csp-enhancements.csv\"",
            ),
            (http::header::CACHE_CONTROL, "no-store"),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// The grants as admins see them: each user's name from the policy
/// service's user list, asked alongside `grants`. The names only decorate
/// the answer: when the list cannot be had, they are null (after a grant or
/// a revoke, the change has happened either way).
async fn with_names(
    state: &AppState,
    user: &AuthUser,
    grants: impl std::future::Future<Output = Result<tonic::Response<pb::TenantGrants>, tonic::Status>>,
) -> Result<Json<dto::TenantGrants>, ApiError> {
    let mut policy = state.policy.clone();
    let users = policy.list_users(state.as_user(user, pb::ListUsersRequest {}));
    let (grants, users) = tokio::join!(grants, users);
    let grants = grants.map_err(rpc)?.into_inner();
    let names: HashMap<String, String> = match users {
        Ok(list) => list
            .into_inner()
            .users
            .into_iter()
            .map(|u| (u.user_id, u.username))
            .collect(),
        Err(s) => {
            tracing::warn!(grpc.code = ?s.code(), "no usernames for the tenant's grants");
            HashMap::new()
        }
    };
    Ok(Json(dto::TenantGrants::new(grants, &names)))
}

/// `GET /api/v1/tenants/{tenant_id}/grants`: the users granted the tenant.
pub(crate) async fn list_grants(
    State(state): State<AppState>,
    user: AuthUser,
    Path(tenant_id): Path<String>,
) -> Result<Json<dto::TenantGrants>, ApiError> {
    let mut tickets = state.tickets.clone();
    let req = state.as_user(&user, pb::TenantRequest { tenant_id });
    with_names(&state, &user, tickets.list_tenant_grants(req)).await
}

/// `PUT /api/v1/tenants/{tenant_id}/grants/{user_id}` (no body): the user
/// may bind chat sessions to the tenant. Idempotent.
pub(crate) async fn grant_tenant(
    State(state): State<AppState>,
    user: AuthUser,
    Path((tenant_id, user_id)): Path<(String, String)>,
) -> Result<Json<dto::TenantGrants>, ApiError> {
    let mut tickets = state.tickets.clone();
    let req = state.as_user(&user, pb::TenantGrantRequest { tenant_id, user_id });
    with_names(&state, &user, tickets.grant_tenant(req)).await
}

/// `DELETE /api/v1/tenants/{tenant_id}/grants/{user_id}`: the grant is
/// gone. Idempotent. Sessions bound before keep their binding, but their
/// ticket tools stop answering.
pub(crate) async fn revoke_tenant(
    State(state): State<AppState>,
    user: AuthUser,
    Path((tenant_id, user_id)): Path<(String, String)>,
) -> Result<Json<dto::TenantGrants>, ApiError> {
    let mut tickets = state.tickets.clone();
    let req = state.as_user(&user, pb::TenantGrantRequest { tenant_id, user_id });
    with_names(&state, &user, tickets.revoke_tenant(req)).await
}

/// `GET /api/v1/chat/tenants`: the tenants the caller may bind a chat
/// session to (the tickets service answers for the caller).
pub(crate) async fn chat_tenants(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::ChatTenants>, ApiError> {
    let list = ask_tickets!(
        state,
        &user,
        list_chat_tenants,
        pb::ListChatTenantsRequest {}
    );
    Ok(Json(list.into()))
}

#[cfg(test)]
mod tests {
    //! Tenants and the history against a fake tickets service: what the
    //! gateway sends, and what it refuses before sending anything.

    use super::*;
    use crate::testing::{FakeTickets, call, gateway, gateway_with, json_request};
    use csp_domain::Role;
    use http::{Method, StatusCode};
    use serde_json::json;

    fn error(body: &Value) -> (&str, &str) {
        (
            body["error"]["code"].as_str().unwrap_or_default(),
            body["error"]["message"].as_str().unwrap_or_default(),
        )
    }

    #[tokio::test]
    async fn creating_a_tenant_answers_201_with_its_webhook_url_and_no_key() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), Some("https://csp.example/")).await;
        let body = json!({
            "tenant_id": "acme", "name": "Acme MSP", "tool_type": "servicedesk_plus",
            "servicedesk_url": "https://sdp.acme.example", "api_key": "sdp-key-123",
            "enhancement_preferences": {"sources": ["kb"], "max_words": 300},
            "monthly_budget_usd": 12.5, "kb_api_url": null,
        });
        let req = json_request(Method::POST, "/api/v1/tenants", gw.token(Role::Admin), body);
        let (status, _, answer) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["api_key"], "[REDACTED]");
        assert_eq!(answer["webhook_secret"], "whsec-shown-once");
        assert_eq!(
            answer["webhook_url"],
            "https://csp.example/webhook/servicedesk_plus/acme"
        );
        assert_eq!(answer["monthly_budget_usd"], 12.5);
        assert_eq!(answer["kb_api_url"], Value::Null);
        assert_eq!(answer["is_active"], true);
        assert!(!answer.to_string().contains("sdp-key-123"));
        let sent = &fake.creates.lock().unwrap()[0];
        assert_eq!(sent.api_key, "sdp-key-123");
        assert_eq!(sent.monthly_budget_micros, Some(12_500_000));
        let prefs = sent.enhancement_preferences.as_ref().unwrap();
        assert_eq!(
            (prefs.sources.clone(), prefs.max_words),
            (vec!["kb".to_owned()], 300)
        );
    }

    #[tokio::test]
    async fn without_a_public_url_the_webhook_url_is_the_requests_own() {
        let (_fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let body = json!({
            "tenant_id": "acme", "name": "Acme", "tool_type": "servicedesk_plus",
            "servicedesk_url": "https://sdp.acme.example", "api_key": "",
        });
        let req = json_request(Method::POST, "/api/v1/tenants", gw.token(Role::Admin), body);
        let (status, _, answer) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(
            answer["webhook_url"],
            "http://csp.example:8080/webhook/servicedesk_plus/acme"
        );
        assert_eq!(answer["api_key"], Value::Null, "no key set");
    }

    #[tokio::test]
    async fn a_malformed_tenant_is_400_naming_the_field_and_never_sent() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let good = json!({
            "tenant_id": "acme", "name": "Acme", "tool_type": "servicedesk_plus",
            "servicedesk_url": "https://sdp.acme.example", "api_key": "k",
        });
        let with = |k: &str, v: Value| {
            let mut b = good.clone();
            b[k] = v;
            b
        };
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("name");
        for (body, want) in [
            (missing, "name is required"),
            (with("name", json!(7)), "name must be a string"),
            (with("colour", json!("red")), "colour is not a known field"),
            (
                with("enhancement_preferences", json!({"max_words": "many"})),
                "enhancement_preferences.max_words must be between 1 and 500",
            ),
            (
                with("enhancement_preferences", json!({"max_words": 501})),
                "enhancement_preferences.max_words must be between 1 and 500",
            ),
            (
                with("enhancement_preferences", json!({"tone": "warm"})),
                "enhancement_preferences.tone is not a known field",
            ),
            (
                with("enhancement_preferences", json!({"sources": "kb"})),
                "enhancement_preferences.sources must be a list of strings",
            ),
            (
                with("monthly_budget_usd", json!(-1)),
                "monthly_budget_usd must be a number of dollars, 0 or more or null",
            ),
            (json!([1]), "Send the tenant as a JSON object"),
        ] {
            let req = json_request(Method::POST, "/api/v1/tenants", gw.token(Role::Admin), body);
            let (status, _, answer) = call(&gw.app, req).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{want}: {answer}");
            let (code, message) = error(&answer);
            assert_eq!(code, "invalid_tenant");
            assert!(message.starts_with(want), "{want}: {message}");
        }
        assert!(fake.creates.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_patch_changes_only_what_it_names() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        *fake.tenant.lock().unwrap() = pb::Tenant {
            tenant_id: "acme".into(),
            tool_type: "servicedesk_plus".into(),
            enhancement_preferences: Some(pb::EnhancementPreferences {
                sources: vec!["kb".into()],
                note_format: "markdown".into(),
                max_words: 300,
                mask_pii: false,
            }),
            ..Default::default()
        };
        let admin = gw.token(Role::Admin);
        let patch = |body: Value| json_request(Method::PATCH, "/api/v1/tenants/acme", admin, body);
        // Sent back as shown: the key and the ids stay; null clears the cap;
        // the preferences merge.
        let (status, _, answer) = call(
            &gw.app,
            patch(json!({
                "tenant_id": "acme", "tool_type": "servicedesk_plus", "api_key": "[REDACTED]",
                "monthly_budget_usd": null, "kb_api_url": null,
                "enhancement_preferences": {"mask_pii": true},
            })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let (status, _, _) = call(
            &gw.app,
            patch(json!({"name": "Acme 2", "monthly_budget_usd": 3, "api_key": "", "is_active": true})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = call(&gw.app, patch(json!({"api_key": "new-key"}))).await;
        assert_eq!(status, StatusCode::OK);
        {
            let updates = fake.updates.lock().unwrap();
            let [first, second, third] = &updates[..] else {
                panic!("{} updates", updates.len())
            };
            assert_eq!(first.api_key, None);
            assert!(first.clear_monthly_budget && first.monthly_budget_micros.is_none());
            assert_eq!(first.kb_api_url.as_deref(), Some(""));
            assert_eq!(first.name, None);
            assert_eq!(
                first.enhancement_preferences,
                Some(pb::EnhancementPreferences {
                    sources: vec!["kb".into()],
                    note_format: "markdown".into(),
                    max_words: 300,
                    mask_pii: true,
                })
            );
            assert_eq!(second.name.as_deref(), Some("Acme 2"));
            assert_eq!(second.api_key, None);
            assert_eq!(second.is_active, Some(true));
            assert_eq!(
                (second.monthly_budget_micros, second.clear_monthly_budget),
                (Some(3_000_000), false)
            );
            assert_eq!(
                (
                    second.enhancement_preferences.as_ref(),
                    second.kb_api_url.as_ref()
                ),
                (None, None)
            );
            assert_eq!(third.api_key.as_deref(), Some("new-key"));
        }
        for (body, want) in [
            (json!({"tenant_id": "other"}), "tenant_id cannot be changed"),
            (json!({"tool_type": "jira"}), "tool_type cannot be changed"),
            (json!({"name": null}), "name must be a string"),
            (
                json!({"created_at": "x"}),
                "created_at is not a known field",
            ),
        ] {
            let (status, _, answer) = call(&gw.app, patch(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{want}");
            let (code, message) = error(&answer);
            assert_eq!(code, "invalid_tenant");
            assert!(message.starts_with(want), "{want}: {message}");
        }
        assert_eq!(fake.updates.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_jira_tenant_sends_its_fields_and_is_shown_without_its_token() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), Some("https://csp.example")).await;
        let body = json!({
            "tenant_id": "globex", "name": "Globex", "tool_type": "jira",
            "jira_url": "https://globex.atlassian.net", "jira_email": "bot@globex.example",
            "jira_api_token": "jira-token-secret-42", "jira_project_key": "OPS",
            "jira_issue_type": null, "zendesk_url": "", "servicedesk_url": null,
        });
        let req = json_request(Method::POST, "/api/v1/tenants", gw.token(Role::Admin), body);
        let (status, _, answer) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        {
            let sent = &fake.creates.lock().unwrap()[0];
            assert_eq!(sent.tool_type, "jira");
            assert_eq!(
                sent.tool_fields,
                HashMap::from([
                    (
                        "jira_url".to_owned(),
                        "https://globex.atlassian.net".to_owned()
                    ),
                    ("jira_email".to_owned(), "bot@globex.example".to_owned()),
                    (
                        "jira_api_token".to_owned(),
                        "jira-token-secret-42".to_owned()
                    ),
                    ("jira_project_key".to_owned(), "OPS".to_owned()),
                    ("zendesk_url".to_owned(), String::new()),
                ])
            );
            assert_eq!(
                (sent.servicedesk_url.as_str(), sent.api_key.as_str()),
                ("", "")
            );
        }
        assert_eq!(answer["jira_url"], "https://globex.atlassian.net");
        assert_eq!(answer["jira_email"], "bot@globex.example");
        assert_eq!(answer["jira_project_key"], "OPS");
        assert_eq!(answer["jira_api_token"], "[REDACTED]");
        assert_eq!(answer["jira_issue_type"], Value::Null);
        for other in [
            "servicedesk_url",
            "api_key",
            "zendesk_subdomain",
            "zendesk_api_token",
        ] {
            assert_eq!(answer[other], Value::Null, "{other}");
        }
        assert_eq!(
            answer["webhook_url"],
            "https://csp.example/webhook/jira/globex"
        );
        assert!(!answer.to_string().contains("jira-token-secret-42"));
        // A tool field of the wrong type is named like any other member.
        let req = json_request(
            Method::POST,
            "/api/v1/tenants",
            gw.token(Role::Admin),
            json!({"tenant_id": "x1", "name": "X", "tool_type": "zendesk", "zendesk_subdomain": 7}),
        );
        let (status, _, answer) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            error(&answer),
            (
                "invalid_tenant",
                "zendesk_subdomain must be a string or null"
            )
        );
    }

    #[tokio::test]
    async fn a_patch_sends_the_other_tools_fields_as_tool_fields() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        *fake.tenant.lock().unwrap() = pb::Tenant {
            tenant_id: "globex".into(),
            tool_type: "zendesk".into(),
            tool_settings: HashMap::from([
                ("zendesk_subdomain".to_owned(), "globex".to_owned()),
                ("zendesk_email".to_owned(), "bot@globex.example".to_owned()),
            ]),
            secrets_set: vec!["zendesk_api_token".into()],
            ..Default::default()
        };
        let req = json_request(
            Method::PATCH,
            "/api/v1/tenants/globex",
            gw.token(Role::Admin),
            // Sent back as read, with one change: the token and the other
            // tools' nulls stay as they were.
            json!({
                "tenant_id": "globex", "tool_type": "zendesk", "zendesk_subdomain": "globex2",
                "zendesk_api_token": "[REDACTED]", "zendesk_url": null,
                "servicedesk_url": null, "api_key": null,
            }),
        );
        let (status, _, answer) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["zendesk_subdomain"], "globex");
        assert_eq!(answer["zendesk_api_token"], "[REDACTED]");
        assert_eq!(answer["servicedesk_auth"], Value::Null);
        let sent = fake.updates.lock().unwrap()[0].clone();
        assert_eq!(
            sent.tool_fields,
            HashMap::from([
                ("zendesk_subdomain".to_owned(), "globex2".to_owned()),
                ("zendesk_api_token".to_owned(), "[REDACTED]".to_owned()),
                ("zendesk_url".to_owned(), String::new()),
            ])
        );
        assert_eq!(sent.tool_type.as_deref(), Some("zendesk"));
        assert_eq!(sent.servicedesk_url.as_deref(), Some(""));
        assert_eq!(sent.api_key, None);
    }

    fn post(path: &str, token: Option<&str>, body: Value) -> http::Request<axum::body::Body> {
        let mut req = http::Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::HOST, "csp.example:8080");
        if let Some(t) = token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req.body(axum::body::Body::from(body.to_string())).unwrap()
    }

    #[tokio::test]
    async fn a_saved_tenants_connection_is_tested_by_the_service() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        fake.tenant.lock().unwrap().tenant_id = "acme".into();
        *fake.connection_answer.lock().unwrap() = pb::TestConnectionResult {
            ok: true,
            reason: String::new(),
        };
        let admin = gw.token(Role::Admin);
        let path = "/api/v1/tenants/acme/test-connection";
        let (status, _, answer) = call(&gw.app, post(path, Some(admin), json!(null))).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"ok": true}));
        assert_eq!(
            fake.connection_tests.lock().unwrap()[0].target,
            Some(pb::test_connection_request::Target::TenantId("acme".into()))
        );
        *fake.connection_answer.lock().unwrap() = pb::TestConnectionResult {
            ok: false,
            reason: "ServiceDesk Plus rejected the API key or token".into(),
        };
        let (status, _, answer) = call(&gw.app, post(path, Some(admin), json!(null))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            answer,
            json!({"ok": false, "reason": "ServiceDesk Plus rejected the API key or token"})
        );
        // An unknown tenant: 404, like every tenant route.
        let (status, _, answer) = call(
            &gw.app,
            post(
                "/api/v1/tenants/nobody/test-connection",
                Some(admin),
                json!(null),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error(&answer).0, "tenant_not_found");
    }

    #[tokio::test]
    async fn unsaved_settings_are_tested_with_only_the_tool_fields() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        *fake.connection_answer.lock().unwrap() = pb::TestConnectionResult {
            ok: false,
            reason: "jira_project_key must be ...".into(),
        };
        let admin = gw.token(Role::Admin);
        let path = "/api/v1/tenants/test-connection";
        // A create form's body as it stands, before its first save.
        let body = json!({
            "tenant_id": "globex", "name": "Globex", "tool_type": "jira",
            "jira_url": "https://globex.atlassian.net", "jira_email": "bot@globex.example",
            "jira_api_token": "jira-token-secret-42", "jira_project_key": "ops",
            "enhancement_preferences": {"max_words": 200}, "monthly_budget_usd": null,
        });
        let (status, _, answer) = call(&gw.app, post(path, Some(admin), body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer,
            json!({"ok": false, "reason": "jira_project_key must be ..."})
        );
        let sent = fake.connection_tests.lock().unwrap()[0].clone();
        let Some(pb::test_connection_request::Target::Settings(settings)) = sent.target else {
            panic!("{sent:?}")
        };
        assert_eq!(settings.tool_type, "jira");
        assert_eq!(
            settings.tool_fields["jira_api_token"],
            "jira-token-secret-42"
        );
        assert_eq!(settings.tool_fields["jira_project_key"], "ops");
        assert_eq!(settings.tool_fields.len(), 4);
        // The JSON's shape is checked here, before anything is sent.
        for (body, want) in [
            (
                json!({"jira_url": "https://x.example"}),
                "tool_type is required",
            ),
            (
                json!({"tool_type": "jira", "jira_token": "t"}),
                "jira_token is not a known field",
            ),
            (
                json!({"tool_type": "jira", "jira_api_token": 42}),
                "jira_api_token must be a string or null",
            ),
            (json!("jira"), "Send the tenant as a JSON object"),
        ] {
            let (status, _, answer) = call(&gw.app, post(path, Some(admin), body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{want}");
            let (code, message) = error(&answer);
            assert_eq!(code, "invalid_tenant");
            assert!(message.starts_with(want), "{want}: {message}");
        }
        assert_eq!(fake.connection_tests.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn connection_tests_are_for_admins_from_csps_own_pages() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        fake.tenant.lock().unwrap().tenant_id = "acme".into();
        let body = json!({"tool_type": "servicedesk_plus"});
        for path in [
            "/api/v1/tenants/acme/test-connection",
            "/api/v1/tenants/test-connection",
        ] {
            let (status, _, answer) = call(&gw.app, post(path, None, body.clone())).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {answer}");
            for role in [Role::User, Role::Operator] {
                let (status, _, answer) =
                    call(&gw.app, post(path, Some(gw.token(role)), body.clone())).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{path} as {role}: {answer}");
            }
            // The admin's cookie from another site's page: refused as every
            // state-changing request is; from csp's own page: answered.
            for (origin, want) in [
                ("https://evil.example", StatusCode::FORBIDDEN),
                ("http://csp.example:8080", StatusCode::OK),
            ] {
                let mut req = post(path, None, body.clone());
                let cookie = format!("csp_token={}", gw.token(Role::Admin));
                req.headers_mut()
                    .insert(http::header::COOKIE, cookie.parse().unwrap());
                req.headers_mut()
                    .insert(http::header::ORIGIN, origin.parse().unwrap());
                let (status, _, answer) = call(&gw.app, req).await;
                assert_eq!(status, want, "{path} from {origin}: {answer}");
            }
        }
        assert_eq!(
            fake.connection_tests.lock().unwrap().len(),
            2,
            "only the admin's own-page requests reached the service"
        );
    }

    #[tokio::test]
    async fn an_edit_is_tested_with_the_saved_tenants_secrets() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        fake.tenant.lock().unwrap().tenant_id = "acme".into();
        let admin = gw.token(Role::Admin);
        let path = "/api/v1/tenants/acme/test-connection";
        let body = json!({
            "tool_type": "servicedesk_plus",
            "servicedesk_url": "https://sdp2.acme.example",
            "api_key": "",
        });
        let (status, _, answer) = call(&gw.app, post(path, Some(admin), body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let sent = fake.connection_tests.lock().unwrap()[0].clone();
        let Some(pb::test_connection_request::Target::Settings(settings)) = sent.target else {
            panic!("{sent:?}")
        };
        assert_eq!(settings.tenant_id, "acme");
        assert_eq!(settings.servicedesk_url, "https://sdp2.acme.example");
        assert_eq!(settings.api_key, "", "left for the service to fill in");
        // `{}`, like no body, tests the saved settings.
        let (status, _, _) = call(&gw.app, post(path, Some(admin), json!({}))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            fake.connection_tests.lock().unwrap()[1].target,
            Some(pb::test_connection_request::Target::TenantId("acme".into()))
        );
    }

    #[tokio::test]
    async fn tool_types_are_the_tickets_services_registry() {
        let (_fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let req = http::Request::builder()
            .uri("/api/v1/tool-types")
            .header("authorization", format!("Bearer {}", gw.token(Role::Admin)))
            .body(axum::body::Body::empty())
            .unwrap();
        let (status, _, answer) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let sdp = &answer["tool_types"][0];
        assert_eq!(sdp["tool_type"], "servicedesk_plus");
        assert_eq!(
            sdp["fields"][0],
            json!({"name": "servicedesk_url", "label": "ServiceDesk Plus URL", "required": true,
                   "secret": false, "kind": "url", "choices": []})
        );
        assert_eq!(sdp["fields"][1]["kind"], "choice");
        assert_eq!(
            sdp["fields"][1]["choices"],
            json!(["authtoken", "zoho_oauth"])
        );
        assert_eq!(sdp["fields"][2]["secret"], true);
    }

    fn csv(path: &str, token: &str, body: &str) -> http::Request<axum::body::Body> {
        http::Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::CONTENT_TYPE, "text/csv; charset=utf-8")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn inventory_comes_as_csv_or_json_and_errors_name_the_row() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let admin = gw.token(Role::Admin);
        let path = "/api/v1/tenants/acme/inventory";
        let file = "ip,hostname,role\r\n10.0.0.1,db1,\"Database, primary\"\r\n10.0.0.2,web1,\r\n";
        let (status, _, answer) = call(&gw.app, csv(path, admin, file)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"upserted": 2}));
        let sent = fake.inventory.lock().unwrap()[0].clone();
        assert_eq!(sent.tenant_id, "acme");
        assert_eq!(sent.systems[0].role, "Database, primary");
        assert_eq!(
            (
                sent.systems[1].hostname.as_str(),
                sent.systems[1].role.as_str()
            ),
            ("web1", "")
        );
        // JSON as before.
        let (status, _, answer) = call(
            &gw.app,
            json_request(
                Method::POST,
                path,
                admin,
                json!([{"ip": "10.0.0.3", "hostname": "x"}]),
            ),
        )
        .await;
        assert_eq!((status, answer), (StatusCode::OK, json!({"upserted": 1})));
        // Refused here, naming the row (the header is row 1) and column.
        for (file, want) in [
            (
                "ip,hostname,owner\n1,a,b\n",
                "row 1: column owner is not a known field",
            ),
            ("ip,role\n10.0.0.1,db\n", "row 2: hostname is required"),
            (
                "ip,hostname\n10.0.0.1,a\n10.0.0.2\n",
                "row 3: 1 fields where the header has 2 columns",
            ),
            ("", "The file is empty"),
        ] {
            let (status, _, answer) = call(&gw.app, csv(path, admin, file)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{file:?}: {answer}");
            let (code, message) = error(&answer);
            assert_eq!(code, "invalid_request");
            assert!(message.starts_with(want), "{file:?}: {message}");
        }
        // Refused by the tickets service: its `systems[i]` is the file's row.
        let (status, _, answer) = call(
            &gw.app,
            csv(path, admin, "hostname,ip\na,10.0.0.1\n\nb,bad\n"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(
            error(&answer).1,
            "row 4: ip must be an IPv4 or IPv6 address"
        );
    }

    #[tokio::test]
    async fn an_import_starts_once_and_reports_its_progress() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let admin = gw.token(Role::Admin);
        let path = "/api/v1/tenants/acme/import";
        let get = || {
            http::Request::builder()
                .uri(path)
                .header("authorization", format!("Bearer {admin}"))
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let (status, _, answer) = call(&gw.app, get()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        let (status, _, answer) = call(
            &gw.app,
            json_request(Method::POST, path, admin, json!({"days": 30})),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["started"], true);
        assert_eq!(answer["state"], "running");
        assert_eq!(answer["total"], Value::Null);
        assert_eq!(answer["finished_at"], Value::Null);
        // A second start answers the running one.
        let (status, _, answer) = call(
            &gw.app,
            json_request(Method::POST, path, admin, json!(null)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["started"], false);
        let sent = fake.imports.lock().unwrap().clone();
        assert_eq!(sent[0].days, 30);
        assert_eq!((sent[1].days, sent[1].start_date.as_str()), (0, ""));
        let (status, _, answer) = call(&gw.app, get()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            (&answer["state"], &answer["imported"], &answer["total"]),
            (&json!("completed"), &json!(150), &json!(151))
        );
        // A body that is not a period is refused before anything is sent.
        let (status, _, answer) = call(
            &gw.app,
            json_request(Method::POST, path, admin, json!({"weeks": 2})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(fake.imports.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn the_history_query_is_checked_before_it_is_sent() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let get = |path: &str| {
            http::Request::builder()
                .uri(path)
                .header(
                    "authorization",
                    format!("Bearer {}", gw.token(Role::Operator)),
                )
                .body(axum::body::Body::empty())
                .unwrap()
        };
        for (query, field) in [
            (
                "status=done",
                "status must be one of pending, processing, completed, failed",
            ),
            ("page=0", "page must be"),
            ("page=x", "page must be"),
            ("from=yesterday", "from must be"),
            ("to=2026-13-01", "to must be"),
            ("tenant_id=ACME", "tenant_id must be"),
        ] {
            let (status, _, answer) =
                call(&gw.app, get(&format!("/api/v1/enhancements?{query}"))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            let (code, message) = error(&answer);
            assert_eq!(code, "invalid_request");
            assert!(message.starts_with(field), "{query}: {message}");
        }
        assert!(fake.lists.lock().unwrap().is_empty());
        let (status, _, answer) = call(
            &gw.app,
            get("/api/v1/enhancements?tenant_id=acme&status=failed&from=2026-01-01&to=2026-01-31&q=1234&page=2&other=1"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["per_page"], 50);
        assert_eq!(answer["page"], 2);
        assert_eq!(
            answer["enhancements"][0]["context_gathered"],
            json!({"kb": []})
        );
        assert_eq!(answer["enhancements"][0]["completed_at"], Value::Null);
        let sent = fake.lists.lock().unwrap()[0].clone();
        assert_eq!(
            sent,
            pb::ListEnhancementsRequest {
                tenant_id: "acme".into(),
                status: "failed".into(),
                from: "2026-01-01T00:00:00Z".into(),
                to: "2026-02-01T00:00:00Z".into(),
                q: "1234".into(),
                page: 2,
            }
        );
        let (_, _, answer) = call(&gw.app, get("/api/v1/enhancements")).await;
        assert_eq!(answer["page"], 1, "the first page by default");
    }

    #[tokio::test]
    async fn an_unknown_job_is_404() {
        let (_fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        for id in ["not-a-uuid".to_owned(), uuid::Uuid::new_v4().to_string()] {
            let req = http::Request::builder()
                .uri(format!("/api/v1/enhancements/{id}"))
                .header(
                    "authorization",
                    format!("Bearer {}", gw.token(Role::Operator)),
                )
                .body(axum::body::Body::empty())
                .unwrap();
            let (status, _, answer) = call(&gw.app, req).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
            assert_eq!(error(&answer).0, "enhancement_not_found");
        }
    }

    fn request(method: Method, path: &str, token: &str) -> http::Request<axum::body::Body> {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::HOST, "csp.example:8080")
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn admins_grant_and_revoke_tenants_and_see_who_holds_them() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        fake.tenant.lock().unwrap().tenant_id = "acme".into();
        let (admin, user) = (gw.token(Role::Admin), gw.user(Role::User).to_string());
        let path = format!("/api/v1/tenants/acme/grants/{user}");
        let (status, _, answer) = call(
            &gw.app,
            request(Method::GET, "/api/v1/tenants/acme/grants", admin),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"tenant_id": "acme", "grants": []}));
        let granted = json!({"tenant_id": "acme", "grants": [{
            "user_id": user, "username": "user",
            "granted_by": gw.user(Role::Admin).to_string(),
            "granted_at": "2026-01-02T03:04:05Z",
        }]});
        // Granting twice is granting once.
        for _ in 0..2 {
            let (status, _, answer) = call(&gw.app, request(Method::PUT, &path, admin)).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(answer, granted);
        }
        let (_, _, answer) = call(
            &gw.app,
            request(Method::GET, "/api/v1/tenants/acme/grants", admin),
        )
        .await;
        assert_eq!(answer, granted);
        // A user the policy service does not know: no name.
        let stranger = csp_domain::UserId::new().to_string();
        let (_, _, answer) = call(
            &gw.app,
            request(
                Method::PUT,
                &format!("/api/v1/tenants/acme/grants/{stranger}"),
                admin,
            ),
        )
        .await;
        assert_eq!(answer["grants"][1]["user_id"], stranger.as_str());
        assert_eq!(answer["grants"][1]["username"], Value::Null);
        for _ in 0..2 {
            let (status, _, answer) = call(
                &gw.app,
                request(
                    Method::DELETE,
                    &format!("/api/v1/tenants/acme/grants/{stranger}"),
                    admin,
                ),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(answer, granted);
        }
        let (status, _, answer) = call(&gw.app, request(Method::DELETE, &path, admin)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"tenant_id": "acme", "grants": []}));
        // An unknown tenant: 404, like every tenant route.
        for (method, path) in [
            (Method::GET, "/api/v1/tenants/nobody/grants".to_owned()),
            (Method::PUT, format!("/api/v1/tenants/nobody/grants/{user}")),
            (
                Method::DELETE,
                format!("/api/v1/tenants/nobody/grants/{user}"),
            ),
        ] {
            let (status, _, answer) = call(&gw.app, request(method.clone(), &path, admin)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(error(&answer).0, "tenant_not_found");
        }
    }

    #[tokio::test]
    async fn grants_change_only_by_admins_from_csps_own_pages() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        fake.tenant.lock().unwrap().tenant_id = "acme".into();
        let user = gw.user(Role::User).to_string();
        let path = format!("/api/v1/tenants/acme/grants/{user}");
        for method in [Method::PUT, Method::DELETE] {
            for role in [Role::User, Role::Operator] {
                let (status, _, _) =
                    call(&gw.app, request(method.clone(), &path, gw.token(role))).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} as {role}");
            }
            // The admin's cookie from another site's page is refused.
            let mut req = request(method.clone(), &path, "");
            req.headers_mut().remove(http::header::AUTHORIZATION);
            let cookie = format!("csp_token={}", gw.token(Role::Admin));
            req.headers_mut()
                .insert(http::header::COOKIE, cookie.parse().unwrap());
            req.headers_mut().insert(
                http::header::ORIGIN,
                "https://evil.example".parse().unwrap(),
            );
            let (status, _, answer) = call(&gw.app, req).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method}: {answer}");
        }
        assert!(fake.grants.lock().unwrap().is_empty(), "nothing changed");
        // From csp's own page, it is answered.
        let mut req = request(Method::PUT, &path, "");
        req.headers_mut().remove(http::header::AUTHORIZATION);
        let cookie = format!("csp_token={}", gw.token(Role::Admin));
        req.headers_mut()
            .insert(http::header::COOKIE, cookie.parse().unwrap());
        req.headers_mut().insert(
            http::header::ORIGIN,
            "http://csp.example:8080".parse().unwrap(),
        );
        let (status, _, answer) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(fake.grants.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn each_user_is_told_their_own_chat_tenants() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        fake.chat_tenants.lock().unwrap().insert(
            gw.user(Role::User).to_string(),
            vec![pb::ChatTenant {
                tenant_id: "acme".into(),
                name: "Acme MSP".into(),
                tool_type: "servicedesk_plus".into(),
            }],
        );
        let path = "/api/v1/chat/tenants";
        let (status, _, answer) =
            call(&gw.app, request(Method::GET, path, gw.token(Role::User))).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer,
            json!({"tenants": [{"tenant_id": "acme", "name": "Acme MSP", "tool_type": "servicedesk_plus"}]})
        );
        let (status, _, answer) = call(
            &gw.app,
            request(Method::GET, path, gw.token(Role::Operator)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"tenants": []}));
        assert_eq!(
            *fake.chat_tenant_lists.lock().unwrap(),
            [
                gw.user(Role::User).to_string(),
                gw.user(Role::Operator).to_string()
            ],
            "asked as each caller"
        );
    }

    #[tokio::test]
    async fn ticket_routes_answer_503_while_the_service_is_down() {
        let gw = gateway().await;
        let req = json_request(
            Method::GET,
            "/api/v1/tenants",
            gw.token(Role::Admin),
            json!(null),
        );
        let (status, _, answer) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error(&answer).0, "unavailable");
    }

    // ---- Operations and the History's retry and export.

    /// A GET as a program sends it; the answer's status, headers and raw
    /// body (an error while reading it: `Err`).
    async fn get_raw(
        app: &axum::Router,
        path: &str,
        token: &str,
    ) -> (StatusCode, http::HeaderMap, Result<String, String>) {
        use tower::ServiceExt;
        let req = http::Request::builder()
            .uri(path)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .map_err(|e| e.to_string());
        (parts.status, parts.headers, body)
    }

    fn exported(job_id: &str, ticket_id: &str, error_message: &str) -> pb::Enhancement {
        pb::Enhancement {
            job_id: job_id.into(),
            tenant_id: "acme".into(),
            ticket_id: ticket_id.into(),
            status: "failed".into(),
            attempts: 3,
            processing_time_ms: Some(1_250),
            cost_usd: 0.0123,
            created_at: "2026-01-02T03:04:05Z".into(),
            completed_at: "2026-01-02T03:04:07Z".into(),
            error_message: error_message.into(),
            // Never in the CSV.
            description: "SECRET-DESCRIPTION".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_export_is_csv_streamed_page_by_page_quoted_and_defused() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        *fake.export_pages.lock().unwrap() = vec![
            pb::EnhancementPage {
                enhancements: vec![
                    exported("j1", "=cmd|' /C calc'!A0", "ServiceDesk Plus answered 500"),
                    exported("j2", "+1", "said \"no\", then, more\nlines"),
                ],
            },
            pb::EnhancementPage {
                enhancements: vec![
                    exported("j3", "@SUM(A1)", "-2+3"),
                    exported("j4", "\tTAB", "\rCR"),
                    pb::Enhancement {
                        job_id: "j5".into(),
                        tenant_id: "globex".into(),
                        ticket_id: "77".into(),
                        status: "pending".into(),
                        created_at: "2026-01-02T03:04:08Z".into(),
                        ..Default::default()
                    },
                ],
            },
        ];
        let path = "/api/v1/enhancements/export.csv?tenant_id=acme&status=failed&from=2026-01-01&to=2026-01-31&q=vpn&page=4";
        let (status, headers, body) = get_raw(&gw.app, path, gw.token(Role::Operator)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers[http::header::CONTENT_TYPE],
            "text/csv; charset=utf-8"
        );
        assert_eq!(
            headers[http::header::CONTENT_DISPOSITION],
            "attachment; filename=\"csp-enhancements.csv\""
        );
        let body = body.unwrap();
        assert_eq!(
            body,
            "job_id,tenant_id,ticket_id,status,attempts,processing_time_ms,cost_usd,created_at,completed_at,error_message\n\
             j1,acme,'=cmd|' /C calc'!A0,failed,3,1250,0.012300,2026-01-02T03:04:05Z,2026-01-02T03:04:07Z,ServiceDesk Plus answered 500\n\
             j2,acme,'+1,failed,3,1250,0.012300,2026-01-02T03:04:05Z,2026-01-02T03:04:07Z,\"said \"\"no\"\", then, more\nlines\"\n\
             j3,acme,'@SUM(A1),failed,3,1250,0.012300,2026-01-02T03:04:05Z,2026-01-02T03:04:07Z,'-2+3\n\
             j4,acme,'\tTAB,failed,3,1250,0.012300,2026-01-02T03:04:05Z,2026-01-02T03:04:07Z,\"'\rCR\"\n\
             j5,globex,77,pending,0,,0.000000,2026-01-02T03:04:08Z,,\n"
        );
        assert!(!body.contains("SECRET-DESCRIPTION"));
        // The history's filters, checked and sent as the list sends them;
        // `page` is not the export's.
        assert_eq!(
            fake.exports.lock().unwrap()[0],
            pb::ListEnhancementsRequest {
                tenant_id: "acme".into(),
                status: "failed".into(),
                from: "2026-01-01T00:00:00Z".into(),
                to: "2026-02-01T00:00:00Z".into(),
                q: "vpn".into(),
                page: 0,
            }
        );
        // Nothing matching: the header line alone.
        fake.export_pages.lock().unwrap().clear();
        let (status, _, body) = get_raw(
            &gw.app,
            "/api/v1/enhancements/export.csv",
            gw.token(Role::Admin),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.unwrap().lines().count(), 1);
    }

    #[tokio::test]
    async fn the_export_is_refused_before_anything_is_sent_and_cut_short_on_failure() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        // Bad filters: a JSON 400, the service never asked.
        let (status, headers, body) = get_raw(
            &gw.app,
            "/api/v1/enhancements/export.csv?status=done",
            gw.token(Role::Operator),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            headers[http::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let answer: Value = serde_json::from_str(&body.unwrap()).unwrap();
        assert_eq!(error(&answer).0, "invalid_request");
        // A user may not export; nobody without a login.
        let (status, _, _) = get_raw(
            &gw.app,
            "/api/v1/enhancements/export.csv",
            gw.token(Role::User),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = get_raw(&gw.app, "/api/v1/enhancements/export.csv", "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(fake.exports.lock().unwrap().is_empty());
        // A failure after the first page: the download does not end as if
        // it were complete.
        *fake.export_pages.lock().unwrap() = vec![pb::EnhancementPage {
            enhancements: vec![exported("j1", "1", "")],
        }];
        *fake.export_fails.lock().unwrap() = true;
        let (status, _, body) = get_raw(
            &gw.app,
            "/api/v1/enhancements/export.csv",
            gw.token(Role::Operator),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.is_err(), "{body:?}");
    }

    /// A state-changing request with the admin's cookie from `origin`.
    fn from_page(
        method: Method,
        path: &str,
        token: &str,
        origin: &str,
    ) -> http::Request<axum::body::Body> {
        let mut req = request(method.clone(), path, "");
        req.headers_mut().remove(http::header::AUTHORIZATION);
        let cookie = format!("csp_token={token}");
        req.headers_mut()
            .insert(http::header::COOKIE, cookie.parse().unwrap());
        req.headers_mut()
            .insert(http::header::ORIGIN, origin.parse().unwrap());
        if method == Method::PUT {
            req.headers_mut().insert(
                http::header::CONTENT_TYPE,
                "application/json".parse().unwrap(),
            );
            *req.body_mut() = axum::body::Body::from(r#"{"paused": true}"#);
        }
        req
    }

    #[tokio::test]
    async fn operations_answer_admins_and_retry_answers_operators() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let (admin, operator) = (gw.token(Role::Admin), gw.token(Role::Operator));
        let (status, _, answer) = call(
            &gw.app,
            request(Method::POST, "/api/v1/tickets/queue/clear", admin),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"cleared": 7}));
        let (status, _, answer) = call(
            &gw.app,
            request(Method::POST, "/api/v1/tickets/configs/reload", admin),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"reloaded": true}));
        for path in [
            "/api/v1/tickets/queue/clear",
            "/api/v1/tickets/configs/reload",
        ] {
            let (status, _, _) = call(&gw.app, request(Method::POST, path, operator)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
        // Retry: the failed job comes back pending; any other is 400, an
        // id that is no UUID is 404 without asking.
        let failed = "00000000-0000-4000-8000-000000000001";
        let (status, _, answer) = call(
            &gw.app,
            request(
                Method::POST,
                &format!("/api/v1/enhancements/{failed}/retry"),
                operator,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            (&answer["job_id"], &answer["status"], &answer["attempts"]),
            (&json!(failed), &json!("pending"), &json!(3))
        );
        let other = uuid::Uuid::new_v4();
        let (status, _, answer) = call(
            &gw.app,
            request(
                Method::POST,
                &format!("/api/v1/enhancements/{other}/retry"),
                operator,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(error(&answer).0, "invalid_request");
        let (status, _, answer) = call(
            &gw.app,
            request(Method::POST, "/api/v1/enhancements/nope/retry", operator),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(error(&answer).0, "enhancement_not_found");
        let (status, _, _) = call(
            &gw.app,
            request(
                Method::POST,
                &format!("/api/v1/enhancements/{failed}/retry"),
                gw.token(Role::User),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            *fake.operations.lock().unwrap(),
            [
                "clear_queue".to_owned(),
                "reload_configs".to_owned(),
                format!("retry:{failed}"),
                format!("retry:{other}"),
            ]
        );
    }

    #[tokio::test]
    async fn operations_change_state_only_from_csps_own_pages() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let admin = gw.token(Role::Admin);
        let failed = "00000000-0000-4000-8000-000000000001";
        let retry = format!("/api/v1/enhancements/{failed}/retry");
        let actions = [
            (Method::POST, "/api/v1/tickets/queue/clear"),
            (Method::POST, "/api/v1/tickets/configs/reload"),
            (Method::POST, retry.as_str()),
            (Method::PUT, "/api/v1/tickets/processing"),
        ];
        // The admin's cookie from another site's page: refused, nothing sent.
        for (method, path) in &actions {
            let req = from_page(method.clone(), path, admin, "https://evil.example");
            let (status, _, answer) = call(&gw.app, req).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        }
        assert!(
            fake.operations.lock().unwrap().is_empty(),
            "nothing reached the service"
        );
        // From csp's own page: answered (the pause reaches the fake, which
        // does not implement it: not refused by the gateway).
        for (method, path) in &actions {
            let req = from_page(method.clone(), path, admin, "http://csp.example:8080");
            let (status, _, answer) = call(&gw.app, req).await;
            assert_ne!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
            assert_ne!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path}: {answer}"
            );
        }
        assert_eq!(fake.operations.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn charts_are_read_for_a_range_with_null_where_there_is_no_value() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let get = |path: &str, role: Role| {
            http::Request::builder()
                .uri(path)
                .header("authorization", format!("Bearer {}", gw.token(role)))
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let (status, _, c) = call(
            &gw.app,
            get("/api/v1/tickets/charts?range=7d", Role::Operator),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{c}");
        assert_eq!(
            c,
            json!({
                "range": "7d",
                "source": "prometheus",
                "warning": "Prometheus unreachable since 2026-01-02 03:04:05 UTC: showing data from 2026-01-02 03:00:00 UTC.",
                "generated_at": "2026-01-02T03:00:00Z",
                "step_seconds": 900,
                "window_seconds": 900,
                "timestamps": [1_767_322_800, 1_767_323_700, 1_767_324_600],
                "queue_depth": [null, 2.0, 3.0],
                "success_rate": [null, 1.0, 0.5],
                "latency_p50_seconds": [null, 1.5, null],
                "latency_p95_seconds": [null, 4.0, 5.0],
                "latency_p99_seconds": [null, 6.0, 7.0],
            })
        );
        // No range: the default, 24 h.
        let (status, _, c) = call(&gw.app, get("/api/v1/tickets/charts", Role::Admin)).await;
        assert_eq!(status, StatusCode::OK, "{c}");
        assert_eq!(c["range"], "24h");
        assert_eq!(
            *fake.chart_ranges.lock().unwrap(),
            [pb::ChartRange::ChartRange7d, pb::ChartRange::ChartRange24h]
        );
        // A range that is not one of the four: 400 naming them, no call.
        let (status, _, e) = call(
            &gw.app,
            get("/api/v1/tickets/charts?range=2d", Role::Operator),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e["error"]["code"], "invalid_request");
        assert_eq!(e["error"]["message"], "range must be 1h, 6h, 24h or 7d");
        assert_eq!(fake.chart_ranges.lock().unwrap().len(), 2);
        let (status, _, _) = call(&gw.app, get("/api/v1/tickets/charts", Role::User)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn the_dashboard_and_the_workers_are_read_for_operators() {
        let (_fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let get = |path: &str, role: Role| {
            http::Request::builder()
                .uri(path)
                .header("authorization", format!("Bearer {}", gw.token(role)))
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let (status, _, d) = call(&gw.app, get("/api/v1/tickets/dashboard", Role::Operator)).await;
        assert_eq!(status, StatusCode::OK, "{d}");
        assert_eq!(d["status"], "degraded");
        assert_eq!(d["reason"], "The cache (redis) is unreachable.");
        assert_eq!(
            (d["queue_depth"].clone(), d["active_workers"].clone()),
            (json!(4), json!(2))
        );
        assert_eq!(d["success_rate_24h"], Value::Null, "none ended: no rate");
        assert_eq!(d["p95_latency_ms_24h"], Value::Null);
        assert_eq!(
            d["recent_failures"][0]["error_message"],
            "<b>tenant inactive</b>"
        );
        assert_eq!(d["recent_failures"][0]["status"], "failed");
        assert_eq!(
            d["dependencies"],
            json!([
                {"name": "postgres", "ok": true, "detail": "2 ms"},
                {"name": "redis", "ok": false, "detail": "unreachable"},
                {"name": "nats", "ok": true, "detail": "1 ms"},
            ])
        );
        let (status, _, w) = call(&gw.app, get("/api/v1/tickets/workers", Role::Admin)).await;
        assert_eq!(status, StatusCode::OK, "{w}");
        assert_eq!(
            w,
            json!({"workers": [{
                "worker_id": "w-1", "hostname": "worker-a",
                "started_at": "2026-01-02T03:04:05Z", "last_seen_at": "2026-01-02T04:04:05Z",
                "status": "active", "active_jobs": 2, "completed_jobs": 40, "failed_jobs": 1,
                "cpu_percent": 81.5, "memory_percent": 12.25, "jobs_per_minute": 3.0,
            }]})
        );
        for path in ["/api/v1/tickets/dashboard", "/api/v1/tickets/workers"] {
            let (status, _, answer) = call(&gw.app, get(path, Role::User)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        }
    }

    #[tokio::test]
    async fn a_workers_logs_throughput_and_restart() {
        use crate::testing::FAKE_WORKER;
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let (admin, operator) = (gw.token(Role::Admin), gw.token(Role::Operator));
        let logs = |level: &str| format!("/api/v1/tickets/workers/{FAKE_WORKER}/logs{level}");
        // Every line, then those of at least a level; text stays text.
        let (status, _, answer) = call(&gw.app, request(Method::GET, &logs(""), operator)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["worker_id"], FAKE_WORKER);
        assert_eq!(answer["level"], "debug");
        assert_eq!(answer["lines"].as_array().unwrap().len(), 3);
        assert_eq!(
            answer["lines"][1],
            json!({"level": "warn", "text": "WARN <b>kb</b> timed out"})
        );
        let (status, _, answer) = call(
            &gw.app,
            request(Method::GET, &logs("?level=warn"), operator),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["level"], "warn");
        let levels: Vec<&str> = answer["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["warn", "error"]);
        // An unknown level is refused here; an id that is no UUID names no
        // worker, without asking.
        let (status, _, answer) = call(
            &gw.app,
            request(Method::GET, &logs("?level=trace"), operator),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(error(&answer).0, "invalid_request");
        let (status, _, answer) = call(
            &gw.app,
            request(Method::GET, "/api/v1/tickets/workers/w-1/logs", operator),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(error(&answer).0, "worker_not_found");
        // A worker the service does not know: its 404, its message.
        let other = uuid::Uuid::new_v4();
        let (status, _, answer) = call(
            &gw.app,
            request(
                Method::GET,
                &format!("/api/v1/tickets/workers/{other}/logs"),
                operator,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(error(&answer).0, "worker_not_found");
        assert!(error(&answer).1.contains("no heartbeat"), "{answer}");

        let (status, _, answer) = call(
            &gw.app,
            request(
                Method::GET,
                &format!("/api/v1/tickets/workers/{FAKE_WORKER}/throughput"),
                operator,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer,
            json!({"worker_id": FAKE_WORKER, "hours": [
                {"start": "2026-01-02T02:00:00Z", "completed": 0, "failed": 0},
                {"start": "2026-01-02T03:00:00Z", "completed": 1, "failed": 1},
            ]})
        );

        // Restart: admins only, from csp's own pages only.
        let restart = format!("/api/v1/tickets/workers/{FAKE_WORKER}/restart");
        let (status, _, _) = call(&gw.app, request(Method::POST, &restart, operator)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let req = from_page(Method::POST, &restart, admin, "https://evil.example");
        let (status, _, _) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(fake.operations.lock().unwrap().is_empty(), "nothing sent");
        let req = from_page(Method::POST, &restart, admin, "http://csp.example:8080");
        let (status, _, answer) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer,
            json!({"worker_id": FAKE_WORKER, "status": "active"})
        );
        let (status, _, answer) = call(
            &gw.app,
            request(
                Method::POST,
                &format!("/api/v1/tickets/workers/{other}/restart"),
                admin,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(error(&answer).0, "worker_not_found");
        assert_eq!(
            *fake.operations.lock().unwrap(),
            [
                format!("restart_worker:{FAKE_WORKER}"),
                format!("restart_worker:{other}"),
            ]
        );
    }
}
