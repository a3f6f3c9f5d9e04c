//! The HTTP server: routes, the per-call choice of behaviour, the request log.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request as HttpRequest, State as AxumState};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::behaviour::{Behaviour, HttpError, Reply, ToolUse, Usage};
use crate::request::Request;
use crate::response::{Ids, Plan, PlanBody, Step, error_body, render_event};
use crate::{Error, Options, Rules};

/// Where the behaviour of a call came from, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The session-title side request; never consumes the queue.
    Title,
    Queue,
    /// Set with `POST /_mock/default` or [`MockLlm::set_default`].
    Default,
    /// `MOCK{...}MOCK` in the last user text.
    Directive,
    /// The system prompt is csp's ticket-enhancement prompt: a note built from its context.
    Enhancement,
    /// The rule with this index in the rules file.
    Rule(usize),
    /// The last user message ends with a tool result: the answer quotes it.
    ToolResult,
    /// The last user text starts with `run `: a Bash call.
    RunCommand,
    /// The rules file's `default`.
    RulesDefault,
    /// The built-in demo answer.
    Demo,
}

/// One request the server received, as returned by `GET /_mock/log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Position in the log, from 0 (again from 0 after a reset).
    pub index: usize,
    /// RFC 3339, UTC.
    pub time: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// All request headers, with credentials replaced by `[redacted]`.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON; a string when it is not JSON, null when empty.
    pub body: Value,
    pub source: Option<Source>,
    pub behaviour: Option<Behaviour>,
    /// The `request-id` header sent back, for `/v1/messages` and `/v1/models` calls and for
    /// calls turned away for their key.
    pub request_id: Option<String>,
    pub status: Option<u16>,
    /// The client went away before the answer was complete.
    pub client_disconnected: bool,
}

const REDACTED_HEADERS: &[&str] = &[
    "x-api-key",
    "authorization",
    "proxy-authorization",
    "cookie",
];

struct Inner {
    queue: VecDeque<Behaviour>,
    default: Option<Behaviour>,
    log: Vec<LogEntry>,
    /// Bumped by a reset, so answers still in flight do not write into the new log.
    epoch: u64,
}

pub(crate) struct State {
    inner: Mutex<Inner>,
    rules: Rules,
    api_key: Option<String>,
    shutdown: CancellationToken,
}

impl State {
    fn new(opts: Options, shutdown: CancellationToken) -> State {
        State {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                default: None,
                log: Vec::new(),
                epoch: 0,
            }),
            rules: opts.rules,
            api_key: opts.api_key,
            shutdown,
        }
    }

    /// The two ways the CLI sends a credential: `ANTHROPIC_API_KEY` becomes `x-api-key`,
    /// `ANTHROPIC_AUTH_TOKEN` becomes a bearer token.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(key) = &self.api_key else {
            return true;
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let bearer = header("authorization")
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        header("x-api-key") == Some(key.as_str()) || bearer == Some(key.as_str())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, behaviours: impl IntoIterator<Item = Behaviour>) -> usize {
        let mut inner = self.lock();
        inner.queue.extend(behaviours);
        inner.queue.len()
    }

    fn set_default(&self, behaviour: Option<Behaviour>) {
        self.lock().default = behaviour;
    }

    fn log_since(&self, since: usize) -> Vec<LogEntry> {
        self.lock().log.iter().skip(since).cloned().collect()
    }

    fn reset(&self) {
        let mut inner = self.lock();
        inner.queue.clear();
        inner.default = None;
        inner.log.clear();
        inner.epoch += 1;
    }

    fn record(&self, entry: LogEntry) -> LogRef {
        let mut inner = self.lock();
        let index = inner.log.len();
        inner.log.push(LogEntry { index, ..entry });
        LogRef {
            index,
            epoch: inner.epoch,
        }
    }

    fn update(&self, at: LogRef, change: impl FnOnce(&mut LogEntry)) {
        let mut inner = self.lock();
        if inner.epoch == at.epoch
            && let Some(entry) = inner.log.get_mut(at.index)
        {
            change(entry);
        }
    }

    /// Steps 1-6 of the documented order.
    fn choose(&self, request: &Request) -> (Source, Behaviour) {
        if request.is_title {
            return (
                Source::Title,
                Behaviour::text(r#"{"title":"Mock session"}"#),
            );
        }
        {
            let mut inner = self.lock();
            if let Some(b) = inner.queue.pop_front() {
                return (Source::Queue, b);
            }
            if let Some(b) = &inner.default {
                return (Source::Default, b.clone());
            }
        }
        match request.directive() {
            Some(Ok(b)) => return (Source::Directive, b),
            Some(Err(reason)) => {
                let error = HttpError {
                    status: 400,
                    message: Some(reason),
                    ..Default::default()
                };
                return (Source::Directive, Behaviour::HttpError(error));
            }
            None => {}
        }
        if request.is_enhancement {
            return (Source::Enhancement, enhancement_reply(request));
        }
        if let Some(text) = &request.last_user_text
            && let Some((i, b)) = self.rules.find(text)
        {
            return (Source::Rule(i), b.clone());
        }
        if let Some(result) = &request.tool_result {
            let verb = if result.is_error {
                "failed"
            } else {
                "finished"
            };
            let output: String = result.output.chars().take(500).collect();
            let text = format!("The command {verb}. Output:\n```\n{output}\n```");
            return (Source::ToolResult, Behaviour::text(text));
        }
        if let Some(command) = request
            .last_user_text
            .as_deref()
            .map(str::trim)
            .and_then(|t| t.strip_prefix("run "))
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            let input = json!({"command": command, "description": format!("Run {command}")});
            return (
                Source::RunCommand,
                Behaviour::ToolUse(ToolUse {
                    name: "Bash".to_owned(),
                    input,
                    ..ToolUse::default()
                }),
            );
        }
        if let Some(b) = self.rules.default_behaviour() {
            return (Source::RulesDefault, b.clone());
        }
        (Source::Demo, demo_reply(request.last_user_text.as_deref()))
    }
}

/// The demo model's note for an enhancement request, with token counts that follow the text
/// (about four characters a token) so that costs are deterministic and plausible.
fn enhancement_reply(request: &Request) -> Behaviour {
    let user = request.last_user_text.as_deref().unwrap_or_default();
    let text = crate::enhancement::note(user);
    let tokens = |s: &str| (s.chars().count() as u64 / 4).max(1);
    Behaviour::Text(Reply {
        usage: Usage {
            input_tokens: tokens(user) + 250,
            output_tokens: tokens(&text),
            ..Usage::default()
        },
        text: Some(text),
        ..Reply::default()
    })
}

fn demo_reply(prompt: Option<&str>) -> Behaviour {
    let mut text = String::from(
        "Hello! I'm **the offline demo model**: a scripted stand-in for Claude that runs \
         without an API key, so my answers are canned rather than thought through.\n\n",
    );
    if let Some(prompt) = prompt.map(str::trim).filter(|p| !p.is_empty()) {
        let quoted: String = prompt.chars().take(200).collect();
        text.push_str(&format!(
            "You wrote:\n\n> {}\n\n",
            quoted.replace('\n', "\n> ")
        ));
    }
    text.push_str(
        "Things to try:\n\n\
         - `run ls` — I ask to run `ls` with the Bash tool, then show you its output.\n\
         - `run <any shell command>` — the same for any command.\n\n\
         To talk to the real Claude, start csp with an Anthropic API key.",
    );
    Behaviour::Text(Reply {
        text: Some(text),
        chunks: Some(12),
        chunk_delay_ms: 25,
        ..Reply::default()
    })
}

#[derive(Debug, Clone, Copy)]
struct LogRef {
    index: usize,
    epoch: u64,
}

/// Marks the log entry `client_disconnected` when dropped before the answer was complete:
/// hyper drops the handler future, or the body stream, when the client goes away.
struct DisconnectGuard {
    state: Arc<State>,
    at: LogRef,
    armed: bool,
}

impl DisconnectGuard {
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for DisconnectGuard {
    fn drop(&mut self) {
        if self.armed {
            tracing::debug!(index = self.at.index, "mock model client disconnected");
            self.state
                .update(self.at, |entry| entry.client_disconnected = true);
        }
    }
}

fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/api/v1/chat/completions", post(chat_completions))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models))
        .route("/api/hello", any(hello))
        .route("/_mock/queue", post(queue))
        .route("/_mock/default", post(set_default))
        .route("/_mock/log", get(log))
        .route("/_mock/reset", post(reset))
        .fallback(not_found)
        // A layer rather than a route layer, so that unknown `/v1/` paths need the key too,
        // as on the real API.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .with_state(state)
}

/// The real API's answer to a missing or wrong key. Logged like any other `/v1/` call, so a
/// test can see that the request arrived and was turned away.
async fn authenticate(
    AxumState(state): AxumState<Arc<State>>,
    request: HttpRequest,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let guarded = path == "/v1" || path.starts_with("/v1/") || path.starts_with("/api/v1/");
    if !guarded || state.authorized(request.headers()) {
        return next.run(request).await;
    }
    let (entry, _) = read_body(request).await;
    let request_id = new_id("req_mock_", 12);
    state.record(LogEntry {
        request_id: Some(request_id.clone()),
        status: Some(401),
        ..entry
    });
    let body = error_body("authentication_error", "invalid x-api-key", &request_id);
    (
        StatusCode::UNAUTHORIZED,
        [("request-id", request_id)],
        axum::Json(body),
    )
        .into_response()
}

fn new_id(prefix: &str, hex_len: usize) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..hex_len]
    )
}

fn log_entry(method: &Method, uri: &axum::http::Uri, headers: &HeaderMap, body: &[u8]) -> LogEntry {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            let value = if REDACTED_HEADERS.contains(&name.as_str()) {
                "[redacted]".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), value)
        })
        .collect();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
    };
    LogEntry {
        index: 0,
        time: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body,
        source: None,
        behaviour: None,
        request_id: None,
        status: None,
        client_disconnected: false,
    }
}

async fn read_body(request: HttpRequest) -> (LogEntry, Bytes) {
    let (parts, body) = request.into_parts();
    // The CLI sends whole conversations; there is no reason to cap them in a test server.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    (
        log_entry(&parts.method, &parts.uri, &parts.headers, &bytes),
        bytes,
    )
}

/// The two wire formats the mock speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// Anthropic's `/v1/messages`.
    Messages,
    /// OpenAI's `/v1/chat/completions` (non-streaming).
    Chat,
}

async fn messages(state: AxumState<Arc<State>>, request: HttpRequest) -> Response {
    answer(state, request, Wire::Messages).await
}

async fn chat_completions(state: AxumState<Arc<State>>, request: HttpRequest) -> Response {
    answer(state, request, Wire::Chat).await
}

fn bad_request(wire: Wire, message: &str, request_id: &str) -> Response {
    let body = match wire {
        Wire::Messages => error_body("invalid_request_error", message, request_id),
        Wire::Chat => crate::chat::error_body(400, message),
    };
    (
        StatusCode::BAD_REQUEST,
        [("request-id", request_id.to_owned())],
        axum::Json(body),
    )
        .into_response()
}

async fn answer(
    AxumState(state): AxumState<Arc<State>>,
    request: HttpRequest,
    wire: Wire,
) -> Response {
    let (entry, bytes) = read_body(request).await;
    let request_id = new_id("req_mock_", 12);
    let parsed = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object);
    let at = state.record(LogEntry {
        request_id: Some(request_id.clone()),
        ..entry
    });
    let mut guard = DisconnectGuard {
        state: state.clone(),
        at,
        armed: true,
    };
    let Some(body) = parsed else {
        guard.disarm();
        state.update(at, |e| e.status = Some(400));
        return bad_request(wire, "the request body is not a JSON object", &request_id);
    };
    let request = match wire {
        Wire::Messages => Request::from_body(&body),
        Wire::Chat => Request::from_chat_body(&body),
    };
    if wire == Wire::Chat && request.stream {
        guard.disarm();
        state.update(at, |e| e.status = Some(400));
        return bad_request(
            wire,
            "the mock model's chat completions do not stream; send \"stream\": false",
            &request_id,
        );
    }
    let (source, behaviour) = state.choose(&request);
    tracing::debug!(index = at.index, ?source, ?wire, "mock model answering");
    let ids = Ids {
        request_id: request_id.clone(),
        message_id: match wire {
            Wire::Messages => new_id("msg_mock_", 24),
            Wire::Chat => new_id("chatcmpl-mock-", 24),
        },
    };
    let plan = match wire {
        Wire::Messages => Plan::new(&behaviour, &request, &ids),
        Wire::Chat => crate::chat::plan(&behaviour, &request, &ids),
    };
    state.update(at, |e| {
        e.source = Some(source);
        e.behaviour = Some(behaviour);
        e.status = Some(plan.status.as_u16());
    });
    if !plan.first_byte_delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(plan.first_byte_delay) => {}
            () = state.shutdown.cancelled() => {
                guard.disarm();
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
    }
    let mut response =
        match plan.body {
            PlanBody::Full(bytes) => {
                guard.disarm();
                Response::new(Body::from(bytes))
            }
            PlanBody::Steps { steps, event_lines } => Response::new(Body::from_stream(
                body_stream(steps.into(), event_lines, state.shutdown.clone(), guard),
            )),
        };
    *response.status_mut() = plan.status;
    let headers = response.headers_mut();
    for (name, value) in plan
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain([("request-id", request_id.as_str())])
    {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => {
                headers.insert(name, value);
            }
            // Parsed behaviours are checked; only one built in Rust can get here.
            _ => tracing::warn!(name, "mock model skipped an invalid scripted header"),
        }
    }
    response
}

struct BodyState {
    steps: VecDeque<Step>,
    event_lines: bool,
    shutdown: CancellationToken,
    guard: DisconnectGuard,
}

fn body_stream(
    steps: VecDeque<Step>,
    event_lines: bool,
    shutdown: CancellationToken,
    guard: DisconnectGuard,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let state = BodyState {
        steps,
        event_lines,
        shutdown,
        guard,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            match st.steps.pop_front() {
                None => {
                    st.guard.disarm();
                    return None;
                }
                Some(Step::Event(event, data)) => {
                    let bytes = render_event(event, &data, st.event_lines);
                    return Some((Ok(bytes), st));
                }
                Some(Step::Bytes(bytes)) => return Some((Ok(bytes), st)),
                Some(Step::Pause(duration)) => {
                    tokio::select! {
                        () = tokio::time::sleep(duration) => {}
                        () = st.shutdown.cancelled() => {
                            st.guard.disarm();
                            st.steps.clear();
                            return Some((Err(std::io::Error::other("mock model server is shutting down")), st));
                        }
                    }
                }
                Some(Step::Cut) => {
                    // Hyper flushes what it has buffered only when the body is pending; without
                    // this the error would discard the healthy prefix along with the connection.
                    tokio::task::yield_now().await;
                    st.guard.disarm();
                    st.steps.clear();
                    // An error from the body makes hyper drop the connection mid-body.
                    return Some((Err(std::io::Error::other("scripted cut")), st));
                }
            }
        }
    })
}

async fn count_tokens(AxumState(state): AxumState<Arc<State>>, request: HttpRequest) -> Response {
    let (entry, _) = read_body(request).await;
    let messages_len = match &entry.body {
        Value::Object(body) => body.get("messages").map_or(0, |m| m.to_string().len()),
        _ => 0,
    };
    let at = state.record(entry);
    state.update(at, |e| e.status = Some(200));
    axum::Json(json!({"input_tokens": (messages_len / 4).max(1)})).into_response()
}

async fn hello(AxumState(state): AxumState<Arc<State>>, request: HttpRequest) -> StatusCode {
    let (entry, _) = read_body(request).await;
    let at = state.record(entry);
    state.update(at, |e| e.status = Some(200));
    StatusCode::OK
}

async fn not_found(AxumState(state): AxumState<Arc<State>>, request: HttpRequest) -> Response {
    let (entry, _) = read_body(request).await;
    let message = format!(
        "the mock model server has no route {} {}",
        entry.method, entry.path
    );
    let at = state.record(entry);
    state.update(at, |e| e.status = Some(404));
    (
        StatusCode::NOT_FOUND,
        axum::Json(error_body("not_found_error", &message, "req_mock_none")),
    )
        .into_response()
}

/// The catalogue `GET /v1/models` lists, newest first as the API orders it: the models the CLI
/// resolves its aliases to, and the ones the tests request by name. Only the ids matter to
/// clients; the dates of the 5.x models are made up.
const MODELS: &[(&str, &str, &str)] = &[
    ("claude-opus-5-5", "Claude Opus 5.5", "2026-09-01T00:00:00Z"),
    (
        "claude-sonnet-5-5",
        "Claude Sonnet 5.5",
        "2026-09-01T00:00:00Z",
    ),
    (
        "claude-haiku-5-5",
        "Claude Haiku 5.5",
        "2026-09-01T00:00:00Z",
    ),
    (
        "claude-fable-5-2",
        "Claude Fable 5.2",
        "2026-05-01T00:00:00Z",
    ),
    (
        "claude-haiku-4-5",
        "Claude Haiku 4.5",
        "2025-10-15T00:00:00Z",
    ),
    (
        "claude-sonnet-4-5",
        "Claude Sonnet 4.5",
        "2025-09-29T00:00:00Z",
    ),
    ("claude-opus-4-1", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    (
        "claude-3-5-haiku-20241022",
        "Claude Haiku 3.5",
        "2024-10-22T00:00:00Z",
    ),
];

#[derive(Deserialize)]
struct ModelsQuery {
    limit: Option<usize>,
    after_id: Option<String>,
    before_id: Option<String>,
}

/// "List Models": one page of [`MODELS`], paged like every list endpoint of the API.
async fn models(AxumState(state): AxumState<Arc<State>>, request: HttpRequest) -> Response {
    let query = Query::<ModelsQuery>::try_from_uri(request.uri());
    let (entry, _) = read_body(request).await;
    let request_id = new_id("req_mock_", 12);
    let page = query
        .map_err(|e| e.body_text())
        .and_then(|Query(q)| models_page(&q));
    let (status, body) = match page {
        Ok(page) => (StatusCode::OK, page),
        Err(message) => (
            StatusCode::BAD_REQUEST,
            error_body("invalid_request_error", &message, &request_id),
        ),
    };
    state.record(LogEntry {
        request_id: Some(request_id.clone()),
        status: Some(status.as_u16()),
        ..entry
    });
    (status, [("request-id", request_id)], axum::Json(body)).into_response()
}

fn models_page(q: &ModelsQuery) -> Result<Value, String> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(format!("limit: must be between 1 and 1000, got {limit}"));
    }
    let position = |id: &str| {
        MODELS
            .iter()
            .position(|(model, _, _)| *model == id)
            .ok_or_else(|| format!("no model with id {id}"))
    };
    let (start, end, has_more) = match (&q.before_id, &q.after_id) {
        (Some(_), Some(_)) => return Err("give before_id or after_id, not both".to_owned()),
        (Some(before), None) => {
            let end = position(before)?;
            let start = end.saturating_sub(limit);
            (start, end, start > 0)
        }
        (None, after) => {
            let start = match after {
                Some(after) => position(after)? + 1,
                None => 0,
            };
            let end = (start + limit).min(MODELS.len());
            (start, end, end < MODELS.len())
        }
    };
    let data: Vec<Value> = MODELS[start..end]
        .iter()
        .map(|(id, display_name, created_at)| {
            json!({"type": "model", "id": id, "display_name": display_name, "created_at": created_at})
        })
        .collect();
    Ok(json!({
        "data": data,
        "has_more": has_more,
        "first_id": data.first().map(|m| m["id"].clone()),
        "last_id": data.last().map(|m| m["id"].clone()),
    }))
}

fn bad_control_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message})),
    )
        .into_response()
}

async fn queue(AxumState(state): AxumState<Arc<State>>, body: Bytes) -> Response {
    // Not an untagged enum: that would hide the real error behind "did not match".
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_control_request(format!("invalid JSON: {e}")),
    };
    let behaviours = match value {
        Value::Array(_) => serde_json::from_value::<Vec<Behaviour>>(value),
        other => serde_json::from_value::<Behaviour>(other).map(|b| vec![b]),
    };
    let behaviours = match behaviours {
        Ok(list) => list,
        Err(e) => return bad_control_request(format!("invalid behaviour: {e}")),
    };
    let queued = behaviours.len();
    let queue_len = state.push(behaviours);
    axum::Json(json!({"queued": queued, "queue_len": queue_len})).into_response()
}

async fn set_default(AxumState(state): AxumState<Arc<State>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Option<Behaviour>>(&body) {
        Ok(b) => {
            state.set_default(b);
            axum::Json(json!({"ok": true})).into_response()
        }
        Err(e) => bad_control_request(format!("invalid behaviour: {e}")),
    }
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    since: usize,
}

async fn log(AxumState(state): AxumState<Arc<State>>, Query(q): Query<LogQuery>) -> Response {
    axum::Json(state.log_since(q.since)).into_response()
}

async fn reset(AxumState(state): AxumState<Arc<State>>) -> Response {
    state.reset();
    axum::Json(json!({"ok": true})).into_response()
}

async fn run(listener: TcpListener, state: Arc<State>) -> Result<(), Error> {
    let shutdown = state.shutdown.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(Error::Serve)
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// Runs the server on `opts.addr` until `shutdown` is cancelled (for `csp mock-llm`).
pub async fn serve(opts: Options, shutdown: CancellationToken) -> Result<(), Error> {
    let listener = bind(opts.addr).await?;
    let addr = listener.local_addr().map_err(Error::Serve)?;
    tracing::info!(%addr, "mock model server listening");
    run(listener, Arc::new(State::new(opts, shutdown))).await
}

/// A running mock server, for tests and `csp dev`. Dropping it stops the server.
pub struct MockLlm {
    addr: SocketAddr,
    state: Arc<State>,
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl MockLlm {
    /// Binds `opts.addr` (port 0 picks a free port) and serves in a background task.
    pub async fn start(opts: Options) -> Result<MockLlm, Error> {
        let listener = bind(opts.addr).await?;
        let addr = listener.local_addr().map_err(Error::Serve)?;
        let state = Arc::new(State::new(opts, CancellationToken::new()));
        let task = tokio::spawn(run(listener, state.clone()));
        tracing::debug!(%addr, "mock model server started");
        Ok(MockLlm {
            addr,
            state,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, the value for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a behaviour for the next `/v1/messages` or chat-completions call that is not a
    /// title request.
    pub fn push(&self, behaviour: Behaviour) {
        self.state.push([behaviour]);
    }

    /// The behaviour for calls when the queue is empty; `None` restores directives and rules.
    pub fn set_default(&self, behaviour: Option<Behaviour>) {
        self.state.set_default(behaviour);
    }

    /// Every request received since the start or the last reset.
    pub fn log(&self) -> Vec<LogEntry> {
        self.state.log_since(0)
    }

    /// Clears the queue, the default and the log.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stops accepting connections, ends answers in flight and waits for the server task.
    pub async fn shutdown(mut self) {
        self.state.shutdown.cancel();
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "mock model server failed"),
                Err(e) => tracing::warn!(error = %e, "mock model server task failed"),
            }
        }
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}
