//! The routes: the v3 API and the `/_mock/` controls.

use std::collections::HashMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use crate::criteria;
use crate::state::{MAX_NOTES, MockNote, MockRequest, MockSdp, NoteFault, now_ms};

/// The longest note description stored.
const MAX_NOTE_CHARS: usize = 256 * 1024;

#[derive(Clone)]
struct App {
    mock: MockSdp,
    shutdown: CancellationToken,
}

pub(crate) fn router(mock: MockSdp, shutdown: CancellationToken) -> Router {
    let api = Router::new()
        .route("/api/v3/requests", get(list_requests))
        .route("/api/v3/requests/{id}", get(get_request))
        .route("/api/v3/requests/{id}/resolutions", get(get_resolution))
        .route(
            "/api/v3/requests/{id}/notes",
            get(list_notes).post(add_note),
        )
        .route("/api/v3/requests/{id}/notes/{note_id}", get(get_note));
    Router::new()
        .merge(api.clone())
        .nest("/app/{portal}", api)
        .route("/_mock/seed", post(seed))
        .route("/_mock/requests", post(add_requests))
        .route("/_mock/notes/fail", post(fail_notes))
        .route("/_mock/notes", get(posted_notes))
        .route("/_mock/stats", get(stats))
        .route("/_mock/reset", post(reset))
        .with_state(App { mock, shutdown })
}

// ------------------------------------------------------------------ answers

/// The v3 error body: `{"response_status": {"status_code": 4000, "messages": [...], "status": "failed"}}`.
struct ApiError {
    http: StatusCode,
    code: u32,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.http,
            Json(json!({"response_status": {
                "status_code": 4000,
                "messages": [{"status_code": self.code, "type": "failed", "message": self.message}],
                "status": "failed",
            }})),
        )
            .into_response()
    }
}

fn api_error(http: StatusCode, code: u32, message: &str) -> ApiError {
    ApiError {
        http,
        code,
        message: message.to_owned(),
    }
}

fn error(http: StatusCode, code: u32, message: &str) -> Response {
    api_error(http, code, message).into_response()
}

fn success() -> Value {
    json!({"status_code": 2000, "status": "success"})
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        4007,
        "Invalid URL or resource not found",
    )
}

fn time_json(ms: i64) -> Value {
    let display = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    json!({"value": ms.to_string(), "display_value": display})
}

fn opt_time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, time_json)
}

fn named(name: Option<&str>) -> Value {
    name.map_or(Value::Null, |n| json!({"id": id_for(n), "name": n}))
}

/// A stable id for a name, as the API gives every named entity one.
fn id_for(name: &str) -> String {
    let h = name.bytes().fold(1_469_598_103_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
    });
    (h % 1_000_000 + 1).to_string()
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// A list row: the API leaves description and resolution out of lists.
fn row_json(r: &MockRequest) -> Value {
    let short: String = strip_tags(&r.description).chars().take(100).collect();
    json!({
        "id": r.id.to_string(),
        "subject": r.subject,
        "short_description": short,
        "status": named(Some(&r.status)),
        "priority": named(Some(&r.priority)),
        "created_time": time_json(r.created_ms),
        "resolved_time": opt_time(r.resolved_ms),
        "completed_time": opt_time(r.completed_ms),
        "has_notes": false,
    })
}

fn detail_json(r: &MockRequest) -> Value {
    let mut v = row_json(r);
    v["description"] = json!(r.description);
    v["resolution"] = r.resolution.as_ref().map_or(
        Value::Null,
        |c| json!({"content": c, "submitted_on": opt_time(r.resolved_ms.or(r.completed_ms))}),
    );
    v["category"] = named(r.category.as_deref());
    v["subcategory"] = named(r.subcategory.as_deref());
    v["item"] = named(r.item.as_deref());
    v
}

fn note_json(n: &MockNote) -> Value {
    json!({
        "id": n.id.to_string(),
        "description": n.description,
        "show_to_requester": n.show_to_requester,
        "mark_first_response": n.mark_first_response,
        "added_time": time_json(n.added_ms),
        "last_updated_time": time_json(n.added_ms),
        "added_by": {"name": "csp", "is_technician": true},
    })
}

// ---------------------------------------------------------------------- auth

#[derive(Clone, Copy, PartialEq, Eq)]
enum Deployment {
    OnPremises,
    Cloud,
}

impl Deployment {
    fn note_key(self) -> &'static str {
        match self {
            Deployment::OnPremises => "note",
            Deployment::Cloud => "request_note",
        }
    }
}

/// Which deployment the credential belongs to, or the API's 401.
fn authenticate(app: &App, headers: &HeaderMap) -> Result<Deployment, ApiError> {
    let authtoken = headers.get("authtoken").and_then(|v| v.to_str().ok());
    let oauth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Zoho-oauthtoken "));
    let deployment = if oauth.is_some() {
        Deployment::Cloud
    } else {
        Deployment::OnPremises
    };
    let inner = &app.mock.inner;
    if inner.authtokens.is_empty() && inner.oauth_tokens.is_empty() {
        return Ok(deployment);
    }
    let ok = authtoken.is_some_and(|k| inner.authtokens.iter().any(|a| same(a, k)))
        || oauth.is_some_and(|t| inner.oauth_tokens.iter().any(|a| same(a, t)));
    if ok {
        Ok(deployment)
    } else {
        Err(api_error(
            StatusCode::UNAUTHORIZED,
            4022,
            "Invalid API key received",
        ))
    }
}

/// Equal without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

// ----------------------------------------------------------------------- v3

fn input_data(q: &HashMap<String, String>) -> Result<Value, ApiError> {
    match q.get("input_data") {
        None => Ok(Value::Null),
        Some(s) => serde_json::from_str(s).map_err(|_| {
            api_error(
                StatusCode::BAD_REQUEST,
                4001,
                "input_data is not valid JSON",
            )
        }),
    }
}

fn request_id(params: &HashMap<String, String>) -> Option<u64> {
    params.get("id")?.parse().ok()
}

async fn list_requests(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authenticate(&app, &headers) {
        return r.into_response();
    }
    let input = match input_data(&q) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let info = input.get("list_info").cloned().unwrap_or(Value::Null);
    let num = |key: &str, default: u64| info.get(key).and_then(as_u64).unwrap_or(default);
    let row_count = num("row_count", 10).clamp(1, 100) as usize;
    let start_index = num("start_index", 1).max(1) as usize;
    let sort_field = info
        .get("sort_field")
        .and_then(Value::as_str)
        .unwrap_or("id");
    let descending = info
        .get("sort_order")
        .and_then(Value::as_str)
        .is_some_and(|o| o.eq_ignore_ascii_case("desc"));
    let criteria = info.get("search_criteria").cloned().unwrap_or(Value::Null);

    let s = app.mock.lock();
    let mut hits: Vec<&MockRequest> = Vec::new();
    for r in s.requests.values() {
        match criteria::matches(r, &criteria) {
            Ok(true) => hits.push(r),
            Ok(false) => {}
            Err(message) => return error(StatusCode::BAD_REQUEST, 4001, &message),
        }
    }
    match sort_field {
        "created_time" => hits.sort_by_key(|r| (r.created_ms, r.id)),
        "subject" => hits.sort_by(|a, b| a.subject.cmp(&b.subject).then(a.id.cmp(&b.id))),
        _ => {} // by id already
    }
    if descending {
        hits.reverse();
    }
    let total = hits.len();
    let page: Vec<Value> = hits
        .iter()
        .skip(start_index - 1)
        .take(row_count)
        .map(|r| row_json(r))
        .collect();
    let mut list_info = json!({
        "has_more_rows": start_index - 1 + page.len() < total,
        "row_count": page.len(),
        "start_index": start_index,
        "sort_field": sort_field,
        "sort_order": if descending { "desc" } else { "asc" },
    });
    if info.get("get_total_count").and_then(Value::as_bool) == Some(true) {
        list_info["total_count"] = json!(total);
    }
    Json(json!({"requests": page, "list_info": list_info, "response_status": [success()]}))
        .into_response()
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

async fn get_request(
    State(app): State<App>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authenticate(&app, &headers) {
        return r.into_response();
    }
    let Some(r) = request_id(&params).and_then(|id| app.mock.request(id)) else {
        return not_found();
    };
    Json(json!({"request": detail_json(&r), "response_status": success()})).into_response()
}

async fn get_resolution(
    State(app): State<App>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authenticate(&app, &headers) {
        return r.into_response();
    }
    let Some(r) = request_id(&params).and_then(|id| app.mock.request(id)) else {
        return not_found();
    };
    let resolution = r.resolution.as_ref().map_or(
        Value::Null,
        |c| json!({"content": c, "submitted_on": opt_time(r.resolved_ms.or(r.completed_ms))}),
    );
    Json(json!({"resolution": resolution, "response_status": success()})).into_response()
}

async fn list_notes(
    State(app): State<App>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let deployment = match authenticate(&app, &headers) {
        Ok(d) => d,
        Err(r) => return r.into_response(),
    };
    let input = match input_data(&q) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let Some(id) = request_id(&params).filter(|id| app.mock.request(*id).is_some()) else {
        return not_found();
    };
    let info = input.get("list_info").cloned().unwrap_or(Value::Null);
    let row_count = info
        .get("row_count")
        .and_then(as_u64)
        .unwrap_or(10)
        .clamp(1, 100) as usize;
    let start_index = info.get("start_index").and_then(as_u64).unwrap_or(1).max(1) as usize;
    let notes = app.mock.notes_for(id);
    let page: Vec<Value> = notes
        .iter()
        .skip(start_index - 1)
        .take(row_count)
        .map(note_json)
        .collect();
    let list_info = json!({
        "has_more_rows": start_index - 1 + page.len() < notes.len(),
        "row_count": page.len(),
        "start_index": start_index,
    });
    let key = format!("{}s", deployment.note_key());
    Json(json!({key: page, "list_info": list_info, "response_status": [success()]})).into_response()
}

async fn get_note(
    State(app): State<App>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let deployment = match authenticate(&app, &headers) {
        Ok(d) => d,
        Err(r) => return r.into_response(),
    };
    let note_id: Option<u64> = params.get("note_id").and_then(|n| n.parse().ok());
    let (Some(id), Some(note_id)) = (request_id(&params), note_id) else {
        return not_found();
    };
    let Some(note) = app.mock.notes_for(id).into_iter().find(|n| n.id == note_id) else {
        return not_found();
    };
    Json(json!({deployment.note_key(): note_json(&note), "response_status": success()}))
        .into_response()
}

async fn add_note(
    State(app): State<App>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let deployment = match authenticate(&app, &headers) {
        Ok(d) => d,
        Err(r) => return r.into_response(),
    };
    app.mock.lock().note_posts += 1;
    let Ok(Form(form)) = form else {
        return error(
            StatusCode::BAD_REQUEST,
            4001,
            "expected a form with input_data",
        );
    };
    let Some(input) = form
        .get("input_data")
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            4001,
            "input_data is not valid JSON",
        );
    };
    let (key, note) = match (input.get("note"), input.get("request_note")) {
        (Some(n), _) => ("note", n),
        (None, Some(n)) => ("request_note", n),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                4012,
                "Value for mandatory-field is not provided: note",
            );
        }
    };
    let description = note
        .get("description")
        .and_then(Value::as_str)
        .filter(|d| !d.trim().is_empty());
    let Some(description) = description else {
        return error(
            StatusCode::BAD_REQUEST,
            4012,
            "Value for mandatory-field is not provided: description",
        );
    };
    if description.chars().count() > MAX_NOTE_CHARS {
        return error(StatusCode::BAD_REQUEST, 4014, "description is too long");
    }
    let Some(request_id) = request_id(&params).filter(|id| app.mock.request(*id).is_some()) else {
        return not_found();
    };
    let flag = |name: &str| note.get(name).and_then(Value::as_bool).unwrap_or(false);
    // A fault is spent only on a post that would otherwise have succeeded.
    let fault = app.mock.lock().faults.pop_front();

    if let Some(NoteFault::Status { status }) = fault {
        return fault_answer(status);
    }
    if fault == Some(NoteFault::Hang) {
        hang(&app).await;
        return fault_answer(500);
    }
    let stored = {
        let mut s = app.mock.lock();
        if s.notes.len() >= MAX_NOTES {
            return error(
                StatusCode::INSUFFICIENT_STORAGE,
                4000,
                "the mock's note store is full",
            );
        }
        let note = MockNote {
            id: s.next_note_id,
            request_id,
            description: description.to_owned(),
            show_to_requester: flag("show_to_requester"),
            mark_first_response: flag("mark_first_response"),
            add_to_linked_requests: flag("add_to_linked_requests"),
            added_ms: now_ms(),
            key: key.to_owned(),
        };
        s.next_note_id += 1;
        s.notes.push(note.clone());
        note
    };
    match fault {
        Some(NoteFault::CreateThenStatus { status }) => fault_answer(status),
        Some(NoteFault::CreateThenHang) => {
            hang(&app).await;
            fault_answer(500)
        }
        _ => (
            StatusCode::CREATED,
            Json(json!({deployment.note_key(): note_json(&stored), "response_status": success()})),
        )
            .into_response(),
    }
}

fn fault_answer(status: u16) -> Response {
    let http = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = if http.is_server_error() { 4004 } else { 4000 };
    error(http, code, "Internal error (injected by the mock)")
}

async fn hang(app: &App) {
    tokio::select! {
        () = app.shutdown.cancelled() => {}
        () = tokio::time::sleep(app.mock.inner.hang_for) => {}
    }
}

// ------------------------------------------------------------------ controls

#[derive(Deserialize)]
struct SeedControl {
    resolved: usize,
}

async fn seed(State(app): State<App>, Json(c): Json<SeedControl>) -> Response {
    match app.mock.seed_resolved(c.resolved) {
        Some((first, last)) => {
            Json(json!({"first_id": first, "last_id": last, "count": last - first + 1}))
                .into_response()
        }
        None => Json(json!({"first_id": null, "last_id": null, "count": 0})).into_response(),
    }
}

async fn add_requests(State(app): State<App>, Json(list): Json<Vec<MockRequest>>) -> Response {
    let mut count = 0usize;
    for r in list {
        if !app.mock.insert(r) {
            return (
                StatusCode::INSUFFICIENT_STORAGE,
                Json(json!({"count": count, "error": "the mock is full"})),
            )
                .into_response();
        }
        count += 1;
    }
    Json(json!({"count": count})).into_response()
}

#[derive(Deserialize)]
struct FailControl {
    #[serde(default = "one")]
    count: usize,
    #[serde(flatten)]
    fault: NoteFault,
}

fn one() -> usize {
    1
}

async fn fail_notes(State(app): State<App>, Json(c): Json<FailControl>) -> Response {
    app.mock.fail_next_note_posts(c.count, c.fault);
    Json(json!({"pending_faults": app.mock.stats().pending_faults})).into_response()
}

#[derive(Deserialize)]
struct NotesQuery {
    request_id: Option<u64>,
}

async fn posted_notes(State(app): State<App>, Query(q): Query<NotesQuery>) -> Response {
    let notes = match q.request_id {
        Some(id) => app.mock.notes_for(id),
        None => app.mock.notes(),
    };
    Json(notes).into_response()
}

async fn stats(State(app): State<App>) -> Response {
    Json(app.mock.stats()).into_response()
}

async fn reset(State(app): State<App>) -> Response {
    app.mock.reset();
    StatusCode::NO_CONTENT.into_response()
}
