//! A fake Zendesk Support API v2, for tests, benchmarks and demos.
//!
//! Speaks the wire format csp uses, in the shapes of Zendesk's reference:
//! `GET /api/v2/users/me.json` (an anonymous user for no credentials),
//! `GET /api/v2/tickets/{id}.json`, `PUT /api/v2/tickets/{id}.json` with a
//! `comment` (its `audit` lists the new comment), `GET
//! /api/v2/tickets/{id}/comments.json` with cursor pages (`page[size]`,
//! `page[after]`, `sort=-created_at`, `meta.has_more`/`after_cursor`,
//! `links.next`) or offset pages (`page`, `per_page`, `sort_order`,
//! `next_page`) and `include=users`, and `GET /api/v2/search/export.json`
//! (`filter[type]=ticket`, cursor pages) for queries of `type:ticket` and
//! `status`, `created` and `updated` with `:`, `<`, `<=`, `>`, `>=`; any
//! other search term is refused with 400, so a client's mistake shows.
//! Credentials are `Authorization: Basic base64("{email}/token:{token}")`,
//! refused with Zendesk's `401 {"error": "Couldn't authenticate you"}`.
//!
//! Must never: be mistaken for Zendesk (it listens only where it is told,
//! keeps everything in memory, bounded, and forgets it on exit); log a
//! credential.
//!
//! Control routes (the same as methods of [`MockZendesk`]):
//! - `POST /_mock/zendesk/seed {"solved": N}` adds N solved or closed tickets
//!   ([`MockZendesk::seed_solved`]); answers `{"first_id", "last_id", "count"}`.
//! - `POST /_mock/zendesk/tickets [ {MockZendeskTicket}, ... ]` adds or replaces tickets.
//! - `POST /_mock/zendesk/comments/fail {"count": K, "mode": "status"|"hang"|"create_then_status"|"create_then_hang", "status": 500}`
//!   makes the next K comment posts fail ([`NoteFault`]).
//! - `POST /_mock/zendesk/rate_limit {"count": K, "retry_after": S}` answers
//!   the next K API calls 429 with `Retry-After: S`.
//! - `GET /_mock/zendesk/comments[?ticket_id=ID]` lists the comments posted
//!   through the API; `GET /_mock/zendesk/stats` counts; `POST
//!   /_mock/zendesk/reset` forgets posted comments, faults and counters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as CURSOR};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use crate::request::now_ms;
use crate::seed::TOPICS;
use crate::state::NoteFault;

/// The most tickets the mock holds.
pub const ZENDESK_MAX_TICKETS: usize = 200_000;
/// The most comments posted through the API the mock holds; further posts are refused.
pub const ZENDESK_MAX_POSTED_COMMENTS: usize = 10_000;
/// The first id [`MockZendesk::seed_solved`] uses when the mock is empty.
pub const ZENDESK_FIRST_SEED_ID: u64 = 10_001;
/// The user the API credential belongs to (an admin).
pub const ZENDESK_API_USER_ID: u64 = 360_001;
/// The agent who solved the seeded tickets.
pub const ZENDESK_SEED_AGENT_ID: u64 = 360_002;
/// The end user who asked (requester of every ticket unless told otherwise).
pub const ZENDESK_REQUESTER_ID: u64 = 360_100;
/// Zendesk's limit on a comment, in characters.
const MAX_COMMENT_CHARS: usize = 65_536;
/// The most pending faults and rate limits.
const MAX_PENDING: usize = 1000;

/// A ticket as the mock stores it; times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MockZendeskTicket {
    pub id: u64,
    pub subject: String,
    /// Plain text, as Zendesk keeps it: the first comment.
    pub description: String,
    /// `new`, `open`, `pending`, `hold`, `solved` or `closed`.
    pub status: String,
    /// `low`, `normal`, `high`, `urgent`, or none.
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default = "requester")]
    pub requester_id: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

fn requester() -> u64 {
    ZENDESK_REQUESTER_ID
}

impl MockZendeskTicket {
    /// An open ticket, as a new one that a webhook announces.
    pub fn open(id: u64, subject: &str, description: &str, priority: Option<&str>) -> Self {
        let now = now_ms();
        Self {
            id,
            subject: subject.to_owned(),
            description: description.to_owned(),
            status: "open".to_owned(),
            priority: priority.map(str::to_owned),
            tags: Vec::new(),
            requester_id: ZENDESK_REQUESTER_ID,
            created_ms: now,
            updated_ms: now,
        }
    }
}

/// A comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MockZendeskComment {
    pub id: u64,
    pub ticket_id: u64,
    pub author_id: u64,
    /// Plain text (`body` and `plain_body`).
    pub body: String,
    pub html_body: String,
    pub public: bool,
    pub created_ms: i64,
    /// Posted through `PUT /api/v2/tickets/{id}.json`, not seeded.
    #[serde(default)]
    pub via_api: bool,
}

/// Counters for tests and `GET /_mock/zendesk/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ZendeskStats {
    /// Authenticated comment posts (`PUT` with a comment), failed ones included.
    pub comment_posts: u64,
    /// Comments posted through the API and stored.
    pub posted_comments: usize,
    pub tickets: usize,
    /// API calls of any kind, refused ones included.
    pub api_calls: u64,
    pub pending_faults: usize,
    pub pending_rate_limits: usize,
}

#[derive(Default)]
struct ZState {
    tickets: BTreeMap<u64, MockZendeskTicket>,
    comments: BTreeMap<u64, Vec<MockZendeskComment>>,
    posted: usize,
    next_comment_id: u64,
    comment_posts: u64,
    api_calls: u64,
    faults: VecDeque<NoteFault>,
    rate_limits: VecDeque<u64>,
}

struct Inner {
    state: Mutex<ZState>,
    /// (e-mail, API token) pairs accepted; none: any well-formed credential.
    credentials: Vec<(String, String)>,
    anonymous_for_bad_credentials: bool,
    hang_for: Duration,
}

/// The fake Zendesk's data and controls. Cloning shares them.
#[derive(Clone)]
pub struct MockZendesk {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MockZendesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockZendesk")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// How to make a [`MockZendesk`].
#[derive(Default)]
pub struct MockZendeskBuilder {
    credentials: Vec<(String, String)>,
    tickets: Vec<MockZendeskTicket>,
    solved: usize,
    hang_for: Option<Duration>,
    anonymous_for_bad_credentials: bool,
}

impl MockZendeskBuilder {
    /// Accept `email` with `api_token`. With none configured, any
    /// well-formed credential is accepted.
    pub fn credential(mut self, email: impl Into<String>, api_token: impl Into<String>) -> Self {
        self.credentials.push((email.into(), api_token.into()));
        self
    }

    pub fn ticket(mut self, ticket: MockZendeskTicket) -> Self {
        self.tickets.push(ticket);
        self
    }

    /// Seed `n` solved or closed tickets ([`MockZendesk::seed_solved`]).
    pub fn solved(mut self, n: usize) -> Self {
        self.solved = n;
        self
    }

    /// How long a hanging comment post waits before answering 500 (default
    /// 10 min; shutdown ends it sooner).
    pub fn hang_for(mut self, d: Duration) -> Self {
        self.hang_for = Some(d);
        self
    }

    /// `GET /api/v2/users/me.json` answers the anonymous user, not 401, for
    /// credentials it does not take (as Zendesk does for some of them).
    pub fn anonymous_for_bad_credentials(mut self) -> Self {
        self.anonymous_for_bad_credentials = true;
        self
    }

    pub fn build(self) -> MockZendesk {
        let mock = MockZendesk {
            inner: Arc::new(Inner {
                state: Mutex::new(ZState {
                    next_comment_id: 1_000_001,
                    ..ZState::default()
                }),
                credentials: self.credentials,
                anonymous_for_bad_credentials: self.anonymous_for_bad_credentials,
                hang_for: self.hang_for.unwrap_or(Duration::from_secs(600)),
            }),
        };
        for t in self.tickets {
            mock.insert(t);
        }
        if self.solved > 0 {
            mock.seed_solved(self.solved);
        }
        mock
    }
}

impl Default for MockZendesk {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl MockZendesk {
    pub fn builder() -> MockZendeskBuilder {
        MockZendeskBuilder::default()
    }

    fn lock(&self) -> MutexGuard<'_, ZState> {
        // A panic while holding the lock leaves plain data; keep serving.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds or replaces a ticket; a new one gets its description as the
    /// first (public, requester's) comment. `false` when the mock is full.
    pub fn insert(&self, ticket: MockZendeskTicket) -> bool {
        let mut s = self.lock();
        if s.tickets.len() >= ZENDESK_MAX_TICKETS && !s.tickets.contains_key(&ticket.id) {
            return false;
        }
        if !s.comments.contains_key(&ticket.id) {
            let first = comment(
                &mut s,
                ticket.id,
                ticket.requester_id,
                &ticket.description,
                true,
                ticket.created_ms,
            );
            s.comments.insert(ticket.id, vec![first]);
        }
        s.tickets.insert(ticket.id, ticket);
        true
    }

    pub fn ticket(&self, id: u64) -> Option<MockZendeskTicket> {
        self.lock().tickets.get(&id).cloned()
    }

    /// Adds a seeded comment (not counted as posted) by `author_id`; its id,
    /// or `None` for an unknown ticket.
    pub fn add_comment(
        &self,
        ticket_id: u64,
        author_id: u64,
        text: &str,
        public: bool,
    ) -> Option<u64> {
        let mut s = self.lock();
        if !s.tickets.contains_key(&ticket_id) {
            return None;
        }
        let at = s
            .comments
            .get(&ticket_id)
            .and_then(|c| c.last())
            .map_or_else(now_ms, |c| c.created_ms + 1000)
            .max(now_ms());
        let c = comment(&mut s, ticket_id, author_id, text, public, at);
        let id = c.id;
        s.comments.entry(ticket_id).or_default().push(c);
        Some(id)
    }

    /// Every comment of the ticket, oldest first.
    pub fn comments_for(&self, ticket_id: u64) -> Vec<MockZendeskComment> {
        self.lock()
            .comments
            .get(&ticket_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Adds `n` solved or closed tickets updated within the last 80 days (at
    /// most 10 minutes apart, the newest a step before now), with ids
    /// following the highest so far (from [`ZENDESK_FIRST_SEED_ID`]). Ticket
    /// `i` follows `TOPICS[i % 8]`: its description, then the topic's
    /// resolution by an agent (a private note for every fifth), and for
    /// every third a requester's thanks after it. Returns the first and
    /// last id; fewer are added when the mock would overflow.
    pub fn seed_solved(&self, n: usize) -> Option<(u64, u64)> {
        self.seed_solved_at(n, now_ms())
    }

    /// [`MockZendesk::seed_solved`] relative to `now_ms`.
    pub fn seed_solved_at(&self, n: usize, now_ms: i64) -> Option<(u64, u64)> {
        let first = {
            let s = self.lock();
            s.tickets
                .keys()
                .next_back()
                .map_or(ZENDESK_FIRST_SEED_ID, |&max| {
                    (max + 1).max(ZENDESK_FIRST_SEED_ID)
                })
        };
        let n = n.min(ZENDESK_MAX_TICKETS.saturating_sub(self.lock().tickets.len()));
        if n == 0 {
            return None;
        }
        const SPAN_MS: i64 = 80 * 24 * 3_600_000;
        let count = i64::try_from(n).unwrap_or(i64::MAX);
        let step = (SPAN_MS / count).clamp(1, 600_000);
        for i in 0..n {
            let i64_i = i64::try_from(i).unwrap_or(i64::MAX);
            let solved = now_ms - (count - i64_i) * step;
            let id = first + i as u64;
            let (ticket, resolution) = seed_ticket(i as u64, id, solved);
            self.insert(ticket);
            let mut s = self.lock();
            let note = comment(
                &mut s,
                id,
                ZENDESK_SEED_AGENT_ID,
                resolution,
                i % 5 != 4,
                solved - 120_000,
            );
            s.comments.entry(id).or_default().push(note);
            if i % 3 == 2 {
                let thanks = comment(
                    &mut s,
                    id,
                    ZENDESK_REQUESTER_ID,
                    "Thanks, that fixed it.",
                    true,
                    solved - 60_000,
                );
                s.comments.entry(id).or_default().push(thanks);
            }
        }
        Some((first, first + n as u64 - 1))
    }

    /// The next `count` comment posts fail with `fault`, in order, after any queued before.
    pub fn fail_next_note_posts(&self, count: usize, fault: NoteFault) {
        let mut s = self.lock();
        let room = MAX_PENDING.saturating_sub(s.faults.len());
        s.faults.extend(std::iter::repeat_n(fault, count.min(room)));
    }

    /// The next `count` authenticated API calls answer 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, count: usize, retry_after_secs: u64) {
        let mut s = self.lock();
        let room = MAX_PENDING.saturating_sub(s.rate_limits.len());
        s.rate_limits
            .extend(std::iter::repeat_n(retry_after_secs, count.min(room)));
    }

    /// Comments posted through the API, oldest first.
    pub fn posted_comments(&self) -> Vec<MockZendeskComment> {
        self.lock()
            .comments
            .values()
            .flatten()
            .filter(|c| c.via_api)
            .cloned()
            .collect()
    }

    pub fn posted_comments_for(&self, ticket_id: u64) -> Vec<MockZendeskComment> {
        self.comments_for(ticket_id)
            .into_iter()
            .filter(|c| c.via_api)
            .collect()
    }

    /// Authenticated comment posts received, failed ones included.
    pub fn note_posts(&self) -> u64 {
        self.lock().comment_posts
    }

    /// API calls of any kind, refused ones included.
    pub fn api_calls(&self) -> u64 {
        self.lock().api_calls
    }

    pub fn stats(&self) -> ZendeskStats {
        let s = self.lock();
        ZendeskStats {
            comment_posts: s.comment_posts,
            posted_comments: s.posted,
            tickets: s.tickets.len(),
            api_calls: s.api_calls,
            pending_faults: s.faults.len(),
            pending_rate_limits: s.rate_limits.len(),
        }
    }

    /// Forgets posted comments, queued faults and rate limits, and counters; tickets stay.
    pub fn reset(&self) {
        let mut s = self.lock();
        for list in s.comments.values_mut() {
            list.retain(|c| !c.via_api);
        }
        s.posted = 0;
        s.faults.clear();
        s.rate_limits.clear();
        s.comment_posts = 0;
        s.api_calls = 0;
    }
}

fn comment(
    s: &mut ZState,
    ticket_id: u64,
    author_id: u64,
    text: &str,
    public: bool,
    created_ms: i64,
) -> MockZendeskComment {
    let id = s.next_comment_id;
    s.next_comment_id += 1;
    MockZendeskComment {
        id,
        ticket_id,
        author_id,
        body: text.to_owned(),
        html_body: html_of_text(text),
        public,
        created_ms,
        via_api: false,
    }
}

/// Ticket `n` (from 0) of a seed and its resolution: `TOPICS[n % 8]`, even
/// `n` solved, odd ones closed, its priority in Zendesk's words.
fn seed_ticket(n: u64, id: u64, solved_ms: i64) -> (MockZendeskTicket, &'static str) {
    let topic = &TOPICS[usize::try_from(n % TOPICS.len() as u64).unwrap_or(0)];
    let seq = (n + 1).to_string();
    let priority = match topic.priority {
        "High" => "high",
        "Low" => "low",
        _ => "normal",
    };
    let ticket = MockZendeskTicket {
        id,
        subject: topic.subject.to_owned(),
        description: topic.description.replace("{n}", &seq),
        status: if n % 2 == 1 { "closed" } else { "solved" }.to_owned(),
        priority: Some(priority.to_owned()),
        tags: vec![tag(topic.category), tag(topic.subcategory)],
        requester_id: ZENDESK_REQUESTER_ID,
        created_ms: solved_ms - 3_600_000,
        updated_ms: solved_ms,
    };
    (ticket, topic.resolution)
}

/// Zendesk's tags are lowercase words joined by `_`.
fn tag(name: &str) -> String {
    name.to_ascii_lowercase().replace(' ', "_")
}

// -------------------------------------------------------------------- server

#[derive(Clone)]
struct App {
    mock: MockZendesk,
    shutdown: CancellationToken,
}

/// The router: the API under `/api/v2/...` and the controls under
/// `/_mock/zendesk/...`. Hung comment posts end when `shutdown` is cancelled.
pub fn zendesk_router(mock: MockZendesk, shutdown: CancellationToken) -> Router {
    Router::new()
        .route("/api/v2/users/me.json", get(users_me))
        .route("/api/v2/tickets/{id}", get(show_ticket).put(update_ticket))
        .route("/api/v2/tickets/{id}/comments.json", get(list_comments))
        .route("/api/v2/search/export.json", get(search_export))
        .route("/api/v2/search/export", get(search_export))
        .route("/_mock/zendesk/seed", post(seed))
        .route("/_mock/zendesk/tickets", post(add_tickets))
        .route("/_mock/zendesk/comments/fail", post(fail_comments))
        .route("/_mock/zendesk/rate_limit", post(rate_limit))
        .route("/_mock/zendesk/comments", get(posted_comments))
        .route("/_mock/zendesk/stats", get(stats))
        .route("/_mock/zendesk/reset", post(reset))
        .with_state(App { mock, shutdown })
}

// ------------------------------------------------------------------- answers

fn error(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        json!({"error": "RecordNotFound", "description": "Not found"}),
    )
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        json!({"error": "Couldn't authenticate you"}),
    )
}

fn invalid(field: &str, description: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"error": "RecordInvalid", "description": "Record validation errors",
               "details": {field: [{"description": description, "error": "InvalidValue"}]}}),
    )
}

fn bad_request(title: &str, message: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        json!({"error": {"title": title, "message": message}}),
    )
}

fn time_json(ms: i64) -> Value {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// `http://host:port` of the request, for the absolute URLs Zendesk returns.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn ticket_json(t: &MockZendeskTicket, origin: &str) -> Value {
    json!({
        "url": format!("{origin}/api/v2/tickets/{}.json", t.id),
        "id": t.id,
        "external_id": null,
        "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": null}},
        "created_at": time_json(t.created_ms),
        "updated_at": time_json(t.updated_ms),
        "generated_timestamp": t.updated_ms / 1000,
        "type": "incident",
        "subject": t.subject,
        "raw_subject": t.subject,
        "description": t.description,
        "priority": t.priority,
        "status": t.status,
        "recipient": null,
        "requester_id": t.requester_id,
        "submitter_id": t.requester_id,
        "assignee_id": ZENDESK_SEED_AGENT_ID,
        "organization_id": null,
        "group_id": 360_000_001u64,
        "collaborator_ids": [],
        "follower_ids": [],
        "email_cc_ids": [],
        "forum_topic_id": null,
        "problem_id": null,
        "has_incidents": false,
        "is_public": true,
        "due_at": null,
        "tags": t.tags,
        "custom_fields": [],
        "satisfaction_rating": null,
        "sharing_agreement_ids": [],
        "custom_status_id": 360_000_010u64,
        "fields": [],
        "followup_ids": [],
        "ticket_form_id": 360_000_100u64,
        "brand_id": 360_000_200u64,
        "allow_channelback": false,
        "allow_attachments": true,
        "from_messaging_channel": false,
    })
}

fn comment_json(c: &MockZendeskComment) -> Value {
    json!({
        "id": c.id,
        "type": "Comment",
        "author_id": c.author_id,
        "body": c.body,
        "html_body": c.html_body,
        "plain_body": c.body,
        "public": c.public,
        "attachments": [],
        "audit_id": c.id + 1_000_000,
        "via": {"channel": if c.via_api { "api" } else { "web" }, "source": {"from": {}, "to": {}, "rel": null}},
        "created_at": time_json(c.created_ms),
        "metadata": {"system": {}, "custom": {}},
    })
}

fn user_json(id: u64, email: Option<&str>) -> Value {
    let (name, role, email) = match id {
        ZENDESK_API_USER_ID => (
            "csp integration",
            "admin",
            email.unwrap_or("csp@example.com").to_owned(),
        ),
        ZENDESK_SEED_AGENT_ID => ("Alex Agent", "agent", "alex@example.com".to_owned()),
        other => (
            "Sam Requester",
            "end-user",
            format!("user{other}@example.com"),
        ),
    };
    json!({
        "id": id, "url": null, "name": name, "email": email, "role": role,
        "active": true, "verified": true, "time_zone": "UTC", "locale": "en-US",
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
    })
}

fn anonymous_user() -> Value {
    json!({"user": {
        "id": null, "url": null, "name": "Anonymous user", "email": "invalid@example.com",
        "created_at": null, "updated_at": null, "time_zone": "UTC", "locale": "en-US",
        "role": "end-user", "verified": false, "active": true,
    }})
}

/// HTML as Zendesk renders a comment (a `zd-comment` div).
fn html_of_text(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', "<br>");
    format!("<div class=\"zd-comment\" dir=\"auto\"><p>{escaped}</p></div>")
}

fn text_of_html(html: &str) -> String {
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
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

// ---------------------------------------------------------------------- auth

enum Caller {
    /// The credential is accepted; its e-mail.
    Agent(String),
    /// No `Authorization` header.
    Anonymous,
    /// A credential that is not accepted.
    Rejected,
}

fn caller(app: &App, headers: &HeaderMap) -> Caller {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Caller::Anonymous;
    };
    let decoded = value
        .strip_prefix("Basic ")
        .and_then(|b| BASE64.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some((email, token)) = decoded.as_deref().and_then(|d| d.split_once("/token:")) else {
        return Caller::Rejected;
    };
    let creds = &app.mock.inner.credentials;
    let ok = if creds.is_empty() {
        !email.is_empty() && !token.is_empty()
    } else {
        // Every pair is compared, each without stopping at a difference.
        creds.iter().fold(false, |acc, (e, t)| {
            acc | (same(&e.to_ascii_lowercase(), &email.to_ascii_lowercase()) & same(t, token))
        })
    };
    if ok {
        Caller::Agent(email.to_owned())
    } else {
        Caller::Rejected
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

/// Why [`admit`] refused a call.
enum Refused {
    /// Zendesk's 401.
    Unauthenticated,
    /// A queued 429 with this `Retry-After`.
    RateLimited(u64),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Unauthenticated => unauthorized(),
            Refused::RateLimited(secs) => {
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"error": "APIRateLimitExceeded", "description": "Number of allowed API requests per minute exceeded"}),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                r
            }
        }
    }
}

/// Counts an API call; the caller's e-mail, or why it is refused (401, or
/// a queued 429).
fn admit(app: &App, headers: &HeaderMap) -> Result<String, Refused> {
    app.mock.lock().api_calls += 1;
    let Caller::Agent(email) = caller(app, headers) else {
        return Err(Refused::Unauthenticated);
    };
    if let Some(secs) = app.mock.lock().rate_limits.pop_front() {
        return Err(Refused::RateLimited(secs));
    }
    Ok(email)
}

// ----------------------------------------------------------------------- API

async fn users_me(State(app): State<App>, headers: HeaderMap) -> Response {
    let who = caller(&app, &headers);
    if !matches!(who, Caller::Agent(_)) {
        app.mock.lock().api_calls += 1;
    }
    match who {
        Caller::Anonymous => Json(anonymous_user()).into_response(),
        Caller::Rejected if app.mock.inner.anonymous_for_bad_credentials => {
            Json(anonymous_user()).into_response()
        }
        Caller::Rejected => unauthorized(),
        Caller::Agent(_) => match admit(&app, &headers) {
            Ok(email) => {
                Json(json!({"user": user_json(ZENDESK_API_USER_ID, Some(&email))})).into_response()
            }
            Err(r) => r.into_response(),
        },
    }
}

/// `123.json` → 123.
fn ticket_id(file: &str) -> Option<u64> {
    file.strip_suffix(".json").unwrap_or(file).parse().ok()
}

async fn show_ticket(
    State(app): State<App>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    if let Err(r) = admit(&app, &headers) {
        return r.into_response();
    }
    match ticket_id(&file).and_then(|id| app.mock.ticket(id)) {
        Some(t) => Json(json!({"ticket": ticket_json(&t, &origin(&headers))})).into_response(),
        None => not_found(),
    }
}

async fn list_comments(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&app, &headers) {
        return r.into_response();
    }
    let Some(id) = id
        .parse::<u64>()
        .ok()
        .filter(|id| app.mock.ticket(*id).is_some())
    else {
        return not_found();
    };
    let mut comments = app.mock.comments_for(id);
    let base = format!("{}/api/v2/tickets/{id}/comments.json", origin(&headers));
    let cursor_mode = q.contains_key("page[size]") || q.contains_key("page[after]");
    let mut body = if cursor_mode {
        if q.get("sort").map(String::as_str) == Some("-created_at") {
            comments.reverse();
        }
        let size = match page_size(&q, 100, 100) {
            Ok(s) => s,
            Err(message) => return bad_request("Invalid attribute", &message),
        };
        let start = match q.get("page[after]") {
            None => 0,
            Some(c) => match decode_cursor(c) {
                Some(i) => i,
                None => return bad_request("Invalid attribute", "page[after] is not a cursor"),
            },
        };
        let page: Vec<Value> = comments
            .iter()
            .skip(start)
            .take(size)
            .map(comment_json)
            .collect();
        let end = start + page.len();
        let has_more = end < comments.len();
        let after = (!page.is_empty()).then(|| encode_cursor(end));
        let before = (!page.is_empty()).then(|| encode_cursor(start));
        let mut next_q = vec![("page[size]".to_owned(), size.to_string())];
        if let Some(sort) = q.get("sort") {
            next_q.push(("sort".to_owned(), sort.clone()));
        }
        let next = match (&after, has_more) {
            (Some(a), true) => {
                next_q.push(("page[after]".to_owned(), a.clone()));
                json!(format!("{base}?{}", encode_query(&next_q)))
            }
            _ => Value::Null,
        };
        json!({
            "comments": page,
            "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": before},
            "links": {"prev": null, "next": next},
        })
    } else {
        if q.get("sort_order").map(String::as_str) == Some("desc") {
            comments.reverse();
        }
        let per_page = match q.get("per_page").map(|p| p.parse::<usize>()) {
            None => 100,
            Some(Ok(p)) if (1..=100).contains(&p) => p,
            Some(_) => return bad_request("Invalid attribute", "per_page must be 1 to 100"),
        };
        let page_no = q
            .get("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let start = (page_no - 1) * per_page;
        let page: Vec<Value> = comments
            .iter()
            .skip(start)
            .take(per_page)
            .map(comment_json)
            .collect();
        let next = (start + page.len() < comments.len())
            .then(|| format!("{base}?page={}&per_page={per_page}", page_no + 1));
        let previous =
            (page_no > 1).then(|| format!("{base}?page={}&per_page={per_page}", page_no - 1));
        json!({"comments": page, "next_page": next, "previous_page": previous, "count": comments.len()})
    };
    if q.get("include")
        .is_some_and(|i| i.split(',').any(|s| s.trim() == "users"))
    {
        let mut ids: Vec<u64> = body["comments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["author_id"].as_u64())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        body["users"] = ids.into_iter().map(|id| user_json(id, None)).collect();
    }
    Json(body).into_response()
}

#[derive(Deserialize)]
struct TicketUpdate {
    ticket: Option<UpdateFields>,
}

#[derive(Deserialize)]
struct UpdateFields {
    comment: Option<CommentInput>,
}

#[derive(Deserialize)]
struct CommentInput {
    body: Option<String>,
    html_body: Option<String>,
    #[serde(default = "yes")]
    public: bool,
}

fn yes() -> bool {
    true
}

async fn update_ticket(
    State(app): State<App>,
    headers: HeaderMap,
    Path(file): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = admit(&app, &headers) {
        return r.into_response();
    }
    let Ok(update) = serde_json::from_slice::<TicketUpdate>(&body) else {
        return bad_request("Invalid JSON", "the body is not a ticket update");
    };
    let Some(input) = update.ticket.and_then(|t| t.comment) else {
        return invalid("comment", "The mock only takes updates that add a comment");
    };
    app.mock.lock().comment_posts += 1;
    let (text, html) = match (input.html_body, input.body) {
        (Some(h), _) if !h.trim().is_empty() => (
            text_of_html(&h),
            format!("<div class=\"zd-comment\" dir=\"auto\">{h}</div>"),
        ),
        (_, Some(b)) if !b.trim().is_empty() => (b.clone(), html_of_text(&b)),
        _ => return invalid("base", "Comment: cannot be blank"),
    };
    if text.chars().count() > MAX_COMMENT_CHARS || html.chars().count() > MAX_COMMENT_CHARS {
        return invalid("base", "Comment: is too long (maximum is 65536 characters)");
    }
    let Some(ticket) = ticket_id(&file).and_then(|id| app.mock.ticket(id)) else {
        return not_found();
    };
    if ticket.status == "closed" {
        return invalid("status", "Status: closed prevents ticket update");
    }
    // A fault is spent only on a post that would otherwise have succeeded.
    let fault = app.mock.lock().faults.pop_front();
    if let Some(NoteFault::Status { status }) = fault {
        return fault_answer(status);
    }
    if fault == Some(NoteFault::Hang) {
        hang(&app).await;
        return fault_answer(500);
    }
    let (stored, ticket) = {
        let mut s = app.mock.lock();
        if s.posted >= ZENDESK_MAX_POSTED_COMMENTS {
            return error(
                StatusCode::INSUFFICIENT_STORAGE,
                json!({"error": "the mock's comment store is full"}),
            );
        }
        let now = now_ms();
        let mut c = comment(
            &mut s,
            ticket.id,
            ZENDESK_API_USER_ID,
            &text,
            input.public,
            now,
        );
        c.html_body = html;
        c.via_api = true;
        s.comments.entry(ticket.id).or_default().push(c.clone());
        s.posted += 1;
        let t = s.tickets.get_mut(&ticket.id).map(|t| {
            t.updated_ms = now;
            t.clone()
        });
        (c, t.unwrap_or(ticket))
    };
    match fault {
        Some(NoteFault::CreateThenStatus { status }) => fault_answer(status),
        Some(NoteFault::CreateThenHang) => {
            hang(&app).await;
            fault_answer(500)
        }
        _ => {
            let mut event = comment_json(&stored);
            event["audit_id"] = json!(stored.id + 1_000_000);
            Json(json!({
                "ticket": ticket_json(&ticket, &origin(&headers)),
                "audit": {
                    "id": stored.id + 1_000_000,
                    "ticket_id": ticket.id,
                    "created_at": time_json(stored.created_ms),
                    "author_id": ZENDESK_API_USER_ID,
                    "metadata": {"system": {}, "custom": {}},
                    "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": null}},
                    "events": [event],
                },
            }))
            .into_response()
        }
    }
}

fn fault_answer(status: u16) -> Response {
    let http = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if http.is_server_error() {
        error(
            http,
            json!({"error": "InternalError", "description": "Internal error (injected by the mock)"}),
        )
    } else {
        error(
            http,
            json!({"error": "RecordInvalid", "description": "Rejected (injected by the mock)"}),
        )
    }
}

async fn hang(app: &App) {
    tokio::select! {
        () = app.shutdown.cancelled() => {}
        () = tokio::time::sleep(app.mock.inner.hang_for) => {}
    }
}

// -------------------------------------------------------------------- search

/// `page[size]`, or the message that refuses it.
fn page_size(q: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, String> {
    match q.get("page[size]").map(|s| s.parse::<usize>()) {
        None => Ok(default),
        Some(Ok(n)) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(format!("page[size] must be an integer from 1 to {max}")),
    }
}

fn encode_cursor(index: usize) -> String {
    CURSOR.encode(format!("{{\"offset\":{index}}}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = CURSOR.decode(cursor).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    usize::try_from(v.get("offset")?.as_u64()?).ok()
}

fn encode_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent(k), percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds<T: Ord>(self, a: T, b: T) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

/// One `key op value` condition of a search query.
enum Term {
    Status(Op, u8),
    Created(Op, i64),
    Updated(Op, i64),
}

fn status_rank(s: &str) -> Option<u8> {
    ["new", "open", "pending", "hold", "solved", "closed"]
        .iter()
        .position(|x| x.eq_ignore_ascii_case(s))
        .and_then(|p| u8::try_from(p).ok())
}

/// `2024-01-31` (its start, UTC) or RFC 3339, in milliseconds.
fn search_time(v: &str) -> Option<i64> {
    if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        return Some(t.unix_timestamp() * 1000);
    }
    let d = time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(d.midnight().assume_utc().unix_timestamp() * 1000)
}

fn parse_query(query: &str) -> Result<Vec<Term>, String> {
    let mut terms = Vec::new();
    for token in query.split_whitespace() {
        if token.eq_ignore_ascii_case("type:ticket") {
            continue;
        }
        let at = token
            .find([':', '<', '>'])
            .ok_or_else(|| format!("the mock does not search free text ({token})"))?;
        let (key, rest) = token.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else {
            (Op::Eq, &rest[1..])
        };
        let bad = || format!("the mock cannot search {token}");
        terms.push(match key {
            "status" => Term::Status(op, status_rank(value).ok_or_else(bad)?),
            "created" => Term::Created(op, search_time(value).ok_or_else(bad)?),
            "updated" => Term::Updated(op, search_time(value).ok_or_else(bad)?),
            _ => return Err(bad()),
        });
    }
    Ok(terms)
}

fn matches(t: &MockZendeskTicket, terms: &[Term]) -> bool {
    // Zendesk compares times to the second.
    let secs = |ms: i64| ms.div_euclid(1000) * 1000;
    terms.iter().all(|term| match *term {
        Term::Status(op, rank) => status_rank(&t.status).is_some_and(|r| op.holds(r, rank)),
        Term::Created(op, at) => op.holds(secs(t.created_ms), at),
        Term::Updated(op, at) => op.holds(secs(t.updated_ms), at),
    })
}

async fn search_export(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&app, &headers) {
        return r.into_response();
    }
    match q.get("filter[type]").map(String::as_str) {
        Some("ticket") => {}
        Some(_) => return bad_request("Invalid attribute", "the mock exports tickets only"),
        None => return bad_request("Invalid attribute", "filter[type] is required"),
    }
    let terms = match parse_query(q.get("query").map_or("", String::as_str)) {
        Ok(t) => t,
        Err(message) => return bad_request("Invalid search", &message),
    };
    let size = match page_size(&q, 1000, 1000) {
        Ok(s) => s,
        Err(message) => return bad_request("Invalid attribute", &message),
    };
    let after = match q.get("page[after]") {
        None => 0,
        Some(c) => match decode_cursor(c) {
            Some(i) => i,
            None => return bad_request("Invalid attribute", "page[after] is not a cursor"),
        },
    };
    let origin = origin(&headers);
    let (results, has_more) = {
        let s = app.mock.lock();
        // By id, and the cursor is the id after which the next page starts.
        let mut hits = s
            .tickets
            .range(u64::try_from(after).unwrap_or(u64::MAX).saturating_add(1)..)
            .map(|(_, t)| t)
            .filter(|t| matches(t, &terms));
        let page: Vec<&MockZendeskTicket> = hits.by_ref().take(size).collect();
        let more = hits.next().is_some();
        let results: Vec<Value> = page
            .iter()
            .map(|t| {
                let mut v = ticket_json(t, &origin);
                v["result_type"] = json!("ticket");
                v
            })
            .collect();
        (results, more)
    };
    let last = results.last().and_then(|t| t["id"].as_u64());
    let after_cursor = last.map(|id| encode_cursor(usize::try_from(id).unwrap_or(usize::MAX)));
    let next = match (&after_cursor, has_more) {
        (Some(c), true) => {
            let mut pairs: Vec<(String, String)> = ["query", "filter[type]", "page[size]"]
                .iter()
                .filter_map(|k| q.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                .collect();
            pairs.push(("page[after]".to_owned(), c.clone()));
            json!(format!(
                "{origin}/api/v2/search/export.json?{}",
                encode_query(&pairs)
            ))
        }
        _ => Value::Null,
    };
    Json(json!({
        "results": results,
        "facets": null,
        "meta": {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": null},
        "links": {"prev": null, "next": next},
    }))
    .into_response()
}

// ------------------------------------------------------------------ controls

#[derive(Deserialize)]
struct SeedControl {
    solved: usize,
}

async fn seed(State(app): State<App>, Json(c): Json<SeedControl>) -> Response {
    match app.mock.seed_solved(c.solved) {
        Some((first, last)) => {
            Json(json!({"first_id": first, "last_id": last, "count": last - first + 1}))
                .into_response()
        }
        None => Json(json!({"first_id": null, "last_id": null, "count": 0})).into_response(),
    }
}

async fn add_tickets(State(app): State<App>, Json(list): Json<Vec<MockZendeskTicket>>) -> Response {
    let mut count = 0usize;
    for t in list {
        if !app.mock.insert(t) {
            return error(
                StatusCode::INSUFFICIENT_STORAGE,
                json!({"count": count, "error": "the mock is full"}),
            );
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

async fn fail_comments(State(app): State<App>, Json(c): Json<FailControl>) -> Response {
    app.mock.fail_next_note_posts(c.count, c.fault);
    Json(json!({"pending_faults": app.mock.stats().pending_faults})).into_response()
}

#[derive(Deserialize)]
struct RateLimitControl {
    #[serde(default = "one")]
    count: usize,
    #[serde(default)]
    retry_after: u64,
}

async fn rate_limit(State(app): State<App>, Json(c): Json<RateLimitControl>) -> Response {
    app.mock.rate_limit_next(c.count, c.retry_after);
    Json(json!({"pending_rate_limits": app.mock.stats().pending_rate_limits})).into_response()
}

#[derive(Deserialize)]
struct CommentsQuery {
    ticket_id: Option<u64>,
}

async fn posted_comments(State(app): State<App>, Query(q): Query<CommentsQuery>) -> Response {
    let comments = match q.ticket_id {
        Some(id) => app.mock.posted_comments_for(id),
        None => app.mock.posted_comments(),
    };
    Json(comments).into_response()
}

async fn stats(State(app): State<App>) -> Response {
    Json(app.mock.stats()).into_response()
}

async fn reset(State(app): State<App>) -> Response {
    app.mock.reset();
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunningZendesk;

    fn basic(email: &str, token: &str) -> String {
        format!("Basic {}", BASE64.encode(format!("{email}/token:{token}")))
    }

    async fn start() -> (RunningZendesk, reqwest::Client) {
        let mock = MockZendesk::builder()
            .credential("agent@acme.example", "tok")
            .solved(3)
            .build();
        (
            RunningZendesk::start(mock).await.unwrap(),
            reqwest::Client::new(),
        )
    }

    async fn get(c: &reqwest::Client, url: String, auth: Option<String>) -> (u16, Value) {
        let mut r = c.get(url);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn credentials_are_checked_and_no_credential_is_the_anonymous_user() {
        let (m, c) = start().await;
        let me = format!("{}/api/v2/users/me.json", m.base_url());
        let (s, v) = get(&c, me.clone(), Some(basic("agent@acme.example", "tok"))).await;
        assert_eq!((s, v["user"]["role"].as_str()), (200, Some("admin")));
        assert_eq!(v["user"]["email"], "agent@acme.example");
        let (s, v) = get(&c, me.clone(), Some(basic("agent@acme.example", "nope"))).await;
        assert_eq!((s, v), (401, json!({"error": "Couldn't authenticate you"})));
        let (s, v) = get(&c, me, None).await;
        assert_eq!((s, v["user"]["id"].clone()), (200, Value::Null));
        let t = format!("{}/api/v2/tickets/10001.json", m.base_url());
        assert_eq!(get(&c, t, None).await.0, 401);
        m.shutdown().await;
    }

    #[tokio::test]
    async fn the_export_pages_by_cursor_and_filters_by_status_and_time() {
        let (m, c) = start().await;
        m.mock()
            .insert(MockZendeskTicket::open(5, "open one", "still broken", None));
        let auth = Some(basic("agent@acme.example", "tok"));
        let mut url =
            url::Url::parse(&format!("{}/api/v2/search/export.json", m.base_url())).unwrap();
        url.query_pairs_mut()
            .append_pair("query", "type:ticket status>=solved updated>=2020-01-01")
            .append_pair("filter[type]", "ticket")
            .append_pair("page[size]", "2");
        let (s, v) = get(&c, url.to_string(), auth.clone()).await;
        assert_eq!(s, 200, "{v}");
        let ids: Vec<u64> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [10_001, 10_002]);
        assert_eq!(v["meta"]["has_more"], true);
        let (_, v) = get(
            &c,
            v["links"]["next"].as_str().unwrap().to_owned(),
            auth.clone(),
        )
        .await;
        let ids: Vec<u64> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [10_003]);
        assert_eq!(v["meta"]["has_more"], false);

        url.query_pairs_mut()
            .clear()
            .append_pair("query", "printer")
            .append_pair("filter[type]", "ticket");
        assert_eq!(get(&c, url.to_string(), auth).await.0, 400);
        m.shutdown().await;
    }

    #[tokio::test]
    async fn a_comment_is_put_and_listed_newest_first_with_its_author() {
        let (m, c) = start().await;
        let auth = basic("agent@acme.example", "tok");
        let put = |id: u64| {
            c.put(format!("{}/api/v2/tickets/{id}.json", m.base_url()))
                .header("authorization", &auth)
                .json(&json!({"ticket": {"comment": {"html_body": "<p>note &amp; more</p>", "public": false}}}))
                .send()
        };
        let r = put(10_001).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().await.unwrap();
        let event = &v["audit"]["events"][0];
        assert_eq!(
            (event["type"].as_str(), event["public"].as_bool()),
            (Some("Comment"), Some(false))
        );
        assert_eq!(event["plain_body"], "note & more");
        // Ticket 10002 is closed.
        assert_eq!(put(10_002).await.unwrap().status().as_u16(), 422);
        assert_eq!(m.mock().note_posts(), 2);
        assert_eq!(m.mock().posted_comments().len(), 1);

        let url = format!(
            "{}/api/v2/tickets/10001/comments.json?sort=-created_at&page%5Bsize%5D=1&include=users",
            m.base_url()
        );
        let (s, v) = get(&c, url, Some(auth.clone())).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["comments"][0]["id"], event["id"]);
        assert_eq!(v["users"][0]["role"], "admin");
        assert_eq!(v["meta"]["has_more"], true);
        let (_, v) = get(
            &c,
            v["links"]["next"].as_str().unwrap().to_owned(),
            Some(auth),
        )
        .await;
        assert_eq!(v["comments"][0]["author_id"], ZENDESK_SEED_AGENT_ID);
        m.shutdown().await;
    }
}
