//! REST handlers for budgets, user administration, the audit log and the
//! operators' view of every session. Authorisation happened in
//! `auth::authorize` (route rule) and happens again in the policy service
//! (current state of the acting user); these handlers translate.

use crate::auth::AuthUser;
use crate::dto;
use crate::error::{ApiError, body_bytes};
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use csp_domain::ErrorCode;
use csp_proto::v1 as pb;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Rows a CSV export holds at most; past it the file says it was cut.
const CSV_MAX_ROWS: usize = 100_000;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError {
        code: ErrorCode::InvalidRequest,
        message: Some(message.into()),
    }
}

pub(crate) async fn budget(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::Budget>, ApiError> {
    let b = state
        .policy
        .clone()
        .get_budget(state.as_user(
            &user,
            pb::GetBudgetRequest {
                user_id: user.id.to_string(),
            },
        ))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(b.into()))
}

pub(crate) async fn list_users(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::Users>, ApiError> {
    let list = state
        .policy
        .clone()
        .list_users(state.as_user(&user, pb::ListUsersRequest {}))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(dto::Users {
        users: list.users.into_iter().map(dto::User::from).collect(),
    }))
}

pub(crate) async fn create_user(
    State(state): State<AppState>,
    user: AuthUser,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let b: dto::NewUserBody = serde_json::from_slice(&body).map_err(|e| {
        invalid(format!(
            "Send a JSON body with username, password, role and optionally monthly_cost_cap_usd ({e})."
        ))
    })?;
    let created = state
        .policy
        .clone()
        .create_user(state.as_user(
            &user,
            pb::CreateUserRequest {
                username: b.username,
                password: b.password,
                role: b.role,
                monthly_cost_cap_usd: b.monthly_cost_cap_usd,
            },
        ))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok((http::StatusCode::CREATED, Json(dto::User::from(created))).into_response())
}

pub(crate) async fn update_user(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<dto::User>, ApiError> {
    let body = body_bytes(body)?;
    let patch = user_patch(&body)?;
    let (cap, clear_cap) = match patch.monthly_cost_cap_usd {
        None => (None, false),
        Some(None) => (None, true),
        Some(Some(cap)) => (Some(cap), false),
    };
    let updated = state
        .policy
        .clone()
        .update_user(state.as_user(
            &user,
            pb::UpdateUserRequest {
                user_id: id,
                role: patch.role,
                monthly_cost_cap_usd: cap,
                clear_cap,
                is_active: patch.is_active,
            },
        ))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(updated.into()))
}

const NOT_A_PATCH: &str = "Send a JSON object with role, monthly_cost_cap_usd or is_active.";

/// The fields of [`dto::UserPatch`], in the order their errors are
/// reported, each with what a value of the wrong type is told.
const PATCH_FIELDS: [(&str, &str); 3] = [
    ("role", "role must be admin, operator or user."),
    (
        "monthly_cost_cap_usd",
        "monthly_cost_cap_usd must be a number or null.",
    ),
    ("is_active", "is_active must be true or false."),
];

/// Reads a user patch, naming what is wrong with it: an unknown field
/// first, then the first field of [`PATCH_FIELDS`] whose value has the
/// wrong type.
fn user_patch(body: &[u8]) -> Result<dto::UserPatch, ApiError> {
    let body: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| invalid(NOT_A_PATCH))?;
    if let Some(k) = body
        .keys()
        .find(|k| !PATCH_FIELDS.iter().any(|(name, _)| name == k))
    {
        return Err(invalid(format!(
            "Unknown field '{k}': only role, monthly_cost_cap_usd and is_active can be changed."
        )));
    }
    let parse = |body: Map<String, Value>| serde_json::from_value::<dto::UserPatch>(body.into());
    parse(body.clone()).map_err(|_| {
        let wrong = PATCH_FIELDS.into_iter().find(|(name, _)| {
            let alone = body.get(*name).map(|v| (name.to_string(), v.clone()));
            parse(alone.into_iter().collect()).is_err()
        });
        invalid(wrong.map_or(NOT_A_PATCH, |(_, message)| message))
    })
}

#[derive(Deserialize)]
pub(crate) struct AuditParams {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    format: String,
    /// Actions, comma-separated (`tickets.pause,tickets.resume`): only
    /// their entries. The Operations page lists its operations with it.
    #[serde(default)]
    tool_name: String,
}

/// `?tool_name=a,b` as the list of actions (empty: every action).
fn tool_names(param: &str) -> Vec<String> {
    param
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `YYYY-MM-DD` or RFC 3339 as RFC 3339; a bare `end` date includes its
/// whole day.
pub(crate) fn bound(field: &str, value: &str, is_end: bool) -> Result<String, ApiError> {
    use time::format_description::well_known::Rfc3339;
    if value.is_empty() {
        return Ok(String::new());
    }
    if time::OffsetDateTime::parse(value, &Rfc3339).is_ok() {
        return Ok(value.to_owned());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(value, &format).map_err(|_| {
        invalid(format!(
            "{field} must be a date (YYYY-MM-DD) or an RFC 3339 time."
        ))
    })?;
    let date = if is_end {
        date.next_day()
            .ok_or_else(|| invalid(format!("{field} is out of range.")))?
    } else {
        date
    };
    date.midnight()
        .assume_utc()
        .format(&Rfc3339)
        .map_err(|_| invalid(format!("{field} is out of range.")))
}

pub(crate) async fn audit_log(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<AuditParams>,
) -> Result<Response, ApiError> {
    let start = bound("start", &q.start, false)?;
    let end = bound("end", &q.end, true)?;
    // Usernames for display; the log keeps ids (rows outlive renames).
    let names: HashMap<String, String> = state
        .policy
        .clone()
        .list_users(state.as_user(&user, pb::ListUsersRequest {}))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner()
        .users
        .into_iter()
        .map(|u| (u.user_id, u.username))
        .collect();
    let page = |before: i64, limit: u32| {
        let state = state.clone();
        let user = user.clone();
        let req = pb::ListAuditRequest {
            user_id: q.user_id.clone(),
            start: start.clone(),
            end: end.clone(),
            before_seq: before,
            limit,
            tool_names: tool_names(&q.tool_name),
        };
        async move {
            state
                .policy
                .clone()
                .list_audit(state.as_user(&user, req))
                .await
                .map(|r| r.into_inner())
                .map_err(|s| ApiError::from_status(&s))
        }
    };
    if q.format == "csv" {
        let mut out = String::from(
            "audit_id,timestamp,user_id,username,session_id,tool_name,sanitized_input,result_status,execution_duration_ms,cost_usd\n",
        );
        let (mut before, mut rows) = (0, 0usize);
        loop {
            let r = page(before, 1000).await?;
            for e in &r.entries {
                out.push_str(&csv_row(e, &names));
                rows += 1;
            }
            if r.next_before_seq == 0 || rows >= CSV_MAX_ROWS {
                if r.next_before_seq != 0 {
                    out.push_str("# truncated: narrow the date range to export the rest\n");
                }
                break;
            }
            before = r.next_before_seq;
        }
        return Ok((
            [
                (http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"csp-audit-log.csv\"",
                ),
            ],
            out,
        )
            .into_response());
    }
    let r = page(q.before.unwrap_or(0), 100).await?;
    let next_before = (r.next_before_seq != 0).then_some(r.next_before_seq);
    let entries = r
        .entries
        .into_iter()
        .map(|e| dto::AuditEntry::new(e, &names))
        .collect();
    Ok(Json(dto::AuditPage {
        entries,
        next_before,
    })
    .into_response())
}

/// One CSV line (RFC 4180 quoting). Cells that a spreadsheet would run as
/// a formula are prefixed with `'`.
fn csv_row(e: &pb::AuditEntry, names: &HashMap<String, String>) -> String {
    let cells = [
        e.audit_id.clone(),
        e.timestamp.clone(),
        e.user_id.clone(),
        names.get(&e.user_id).cloned().unwrap_or_default(),
        e.session_id.clone(),
        e.tool_name.clone(),
        e.sanitized_input.clone(),
        e.result_status.clone(),
        e.execution_duration_ms
            .map(|d| d.to_string())
            .unwrap_or_default(),
        e.cost_usd.map(|c| format!("{c:.6}")).unwrap_or_default(),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// One CSV cell: RFC 4180 quoting, and a cell a spreadsheet would run as
/// a formula (`=`, `+`, `-`, `@`, tab, CR first) prefixed with `'`.
pub(crate) fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

pub(crate) async fn all_sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::Sessions>, ApiError> {
    let list = state
        .default_pool
        .clone()
        .list_all_sessions(state.as_user(&user, pb::ListAllSessionsRequest { limit: 500 }))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(list.sessions.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_are_a_comma_separated_list() {
        assert!(tool_names("").is_empty());
        assert_eq!(
            tool_names(" tickets.pause, tickets.resume ,,"),
            ["tickets.pause", "tickets.resume"]
        );
    }

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn a_user_patch_reads_as_before() {
        let read = |body: &str| user_patch(body.as_bytes()).map_err(|e| e.message.unwrap());
        let p = read(r#"{"role":"admin","monthly_cost_cap_usd":null,"is_active":false}"#).unwrap();
        assert_eq!(p.role.as_deref(), Some("admin"));
        assert_eq!(p.monthly_cost_cap_usd, Some(None), "null clears the cap");
        assert_eq!(p.is_active, Some(false));
        let p = read(r#"{"monthly_cost_cap_usd":12}"#).unwrap();
        assert_eq!(p.monthly_cost_cap_usd, Some(Some(12.0)));
        assert!(p.role.is_none() && p.is_active.is_none());
        assert_eq!(read("[]").unwrap_err(), NOT_A_PATCH);
        assert_eq!(
            read(r#"{"is_active":1,"zz":1}"#).unwrap_err(),
            "Unknown field 'zz': only role, monthly_cost_cap_usd and is_active can be changed."
        );
        // Every known field is one `UserPatch` accepts (deny_unknown_fields).
        for (name, message) in PATCH_FIELDS {
            assert!(
                read(&format!(r#"{{"{name}":null,"zz":1}}"#))
                    .unwrap_err()
                    .starts_with("Unknown field 'zz'")
            );
            let wrong = if name == "is_active" {
                "\"yes\""
            } else {
                "true"
            };
            assert_eq!(
                read(&format!(r#"{{"{name}":{wrong}}}"#)).unwrap_err(),
                message
            );
        }
        // The first wrong field in the listed order, as it always was.
        assert_eq!(
            read(r#"{"is_active":null,"role":null}"#).unwrap_err(),
            "role must be admin, operator or user."
        );
    }

    #[test]
    fn date_bounds() {
        assert_eq!(
            bound("start", "2026-02-01", false).unwrap(),
            "2026-02-01T00:00:00Z"
        );
        assert_eq!(
            bound("end", "2026-02-07", true).unwrap(),
            "2026-02-08T00:00:00Z"
        );
        assert_eq!(bound("end", "", true).unwrap(), "");
        assert!(bound("start", "yesterday", false).is_err());
    }
}
