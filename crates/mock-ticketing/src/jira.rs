//! A fake Jira Service Management (Jira Cloud) for tests, benchmarks and
//! the offline demo, beside the fake ServiceDesk Plus and on its own router.
//!
//! Owns: what csp calls, in Jira's wire format —
//! - `GET /rest/api/3/issue/{issueIdOrKey}[?fields=a,b]`: an issue with its
//!   `fields` (ADF description, priority, status, resolution,
//!   `resolutiondate`, labels, `comment.comments` with ADF bodies),
//! - `GET /rest/api/3/search/jql?jql=&maxResults=&nextPageToken=&fields=`:
//!   the enhanced search, `{"issues", "nextPageToken"?, "isLast"}`, page
//!   tokens tied to their query; the JQL it understands is clauses joined by
//!   `AND` on `project`, `issuetype`, `status`, `resolution`, `labels`,
//!   `key`, `created` and `resolved`/`resolutiondate` (`= != > >= < <=`,
//!   `is [not] EMPTY`; dates as `"yyyy/MM/dd HH:mm"` or `"yyyy-MM-dd"`, read
//!   in UTC, the fake account's time zone) and `ORDER BY key|created|resolved
//!   [ASC|DESC]`; anything else is Jira's 400, and a query without a clause
//!   is refused as unbounded,
//! - `GET /rest/api/3/project/{projectIdOrKey}`,
//! - `GET`/`POST /rest/servicedeskapi/request/{issueIdOrKey}/comment`: JSM
//!   comment pages (`start`, `limit`, `isLastPage`, `values[].body` as plain
//!   text, `public`/`internal` filters) and comment creation
//!   (`{"body", "public"}` → 201);
//! - `Authorization: Basic base64(email:api_token)` against the configured
//!   accounts (none configured: anything goes), refused with Atlassian's
//!   401 (`Client must be authenticated to access this resource.`);
//! - test controls as methods on [`MockJira`] and as routes under
//!   `/_mock/jira/`:
//!   - `POST /_mock/jira/seed {"resolved": N}` adds N resolved issues to the
//!     default project ([`JIRA_PROJECT`]), deterministic by sequence number
//!     (the fake ServiceDesk Plus's [`crate::TOPICS`]): summary, ADF
//!     description, resolution `Done`, labels and the agent's public
//!     comment with the topic's resolution; answers `{"first_key", "last_key", "count"}`,
//!   - `POST /_mock/jira/issues [ {MockJiraIssue}, ... ]` adds or replaces issues,
//!   - `POST /_mock/jira/comments/fail {"count": K, "mode": "status"|"hang"|"create_then_status"|"create_then_hang", "status": 500}`
//!     makes the next K comment posts fail ([`NoteFault`]),
//!   - `GET /_mock/jira/comments[?issue=KEY]` lists comments posted through
//!     the API; `GET /_mock/jira/stats` counts; `POST /_mock/jira/reset`
//!     forgets posted comments, faults and counters (issues stay),
//!   - `GET /_mock/jira/webhook/{key}?event=jira:issue_created` is the body
//!     Jira's webhook would carry for the issue (unsigned: the connector signs).
//!
//! Must never: be mistaken for a real site (it keeps everything in memory,
//! bounded, and forgets it on exit); log a credential.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::request::now_ms;
use crate::seed::TOPICS;
use crate::state::NoteFault;

/// The project seeded issues go to, and the one a mock has when the
/// builder names none.
pub const JIRA_PROJECT: &str = "SUP";
/// The most issues the mock holds.
pub const JIRA_MAX_ISSUES: usize = 200_000;
/// The most comments the mock holds (seeded ones included); further posts are refused.
pub const JIRA_MAX_COMMENTS: usize = 250_000;
/// Jira's limit on a comment's length.
const MAX_COMMENT_CHARS: usize = 32_767;
/// The site name in `self` links of webhook bodies.
const WEBHOOK_SITE: &str = "https://mock-jira.atlassian.net";

// -------------------------------------------------------------------- data

/// An issue as the mock keeps it; times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MockJiraIssue {
    /// `SUP-12`: the project's key, `-`, a number.
    pub key: String,
    pub summary: String,
    /// An Atlassian Document Format document, or a string the mock turns
    /// into one (a paragraph per line).
    #[serde(default)]
    pub description: Option<Value>,
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    #[serde(default = "default_status")]
    pub status: String,
    #[serde(default)]
    pub priority: Option<String>,
    pub created_ms: i64,
    #[serde(default)]
    pub resolution: Option<String>,
    #[serde(default)]
    pub resolution_ms: Option<i64>,
    #[serde(default)]
    pub labels: Vec<String>,
}

fn default_issue_type() -> String {
    "Service Request".to_owned()
}

fn default_status() -> String {
    "Open".to_owned()
}

impl MockJiraIssue {
    /// An open issue created now, as a `jira:issue_created` webhook announces it.
    pub fn open(key: &str, summary: &str, description: Value, priority: &str) -> Self {
        Self {
            key: key.to_owned(),
            summary: summary.to_owned(),
            description: Some(description),
            issue_type: default_issue_type(),
            status: default_status(),
            priority: Some(priority.to_owned()),
            created_ms: now_ms(),
            resolution: None,
            resolution_ms: None,
            labels: Vec::new(),
        }
    }

    /// The project key of [`MockJiraIssue::key`].
    pub fn project_key(&self) -> &str {
        self.key.rsplit_once('-').map_or("", |(p, _)| p)
    }
}

/// A comment on an issue. `body` is plain text, as JSM takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MockJiraComment {
    pub id: u64,
    pub issue_key: String,
    pub body: String,
    pub public: bool,
    /// The account that wrote it: the API caller's e-mail, or the seed's agent.
    pub author: String,
    pub created_ms: i64,
    /// Posted through `POST .../comment` (not seeded or added by a control).
    pub api: bool,
}

/// Counters for tests and `GET /_mock/jira/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JiraStats {
    /// Authenticated comment posts received, failed ones included.
    pub comment_posts: u64,
    /// Comments posted through the API and stored.
    pub api_comments: usize,
    /// All comments, seeded ones included.
    pub comments: usize,
    pub issues: usize,
    /// Authenticated searches answered.
    pub searches: u64,
    pub pending_faults: usize,
}

/// `SUP-12` as `("SUP", 12)`, so that keys sort as Jira sorts them.
type IssueKey = (String, u64);

fn split_key(key: &str) -> Option<IssueKey> {
    let (project, number) = key.trim().rsplit_once('-')?;
    let valid_project = project.len() <= 64
        && project.starts_with(|c: char| c.is_ascii_uppercase())
        && project
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    let number: u64 = number.parse().ok().filter(|&n| n > 0)?;
    valid_project.then(|| (project.to_owned(), number))
}

struct StoredIssue {
    id: u64,
    issue: MockJiraIssue,
}

#[derive(Default)]
struct JiraState {
    projects: BTreeMap<String, (u64, String)>,
    issues: BTreeMap<IssueKey, StoredIssue>,
    comments: BTreeMap<IssueKey, Vec<MockJiraComment>>,
    comment_count: usize,
    next_issue_id: u64,
    next_comment_id: u64,
    comment_posts: u64,
    searches: u64,
    faults: VecDeque<NoteFault>,
}

impl JiraState {
    fn project_id(&mut self, key: &str) -> u64 {
        let next = 10_000 + self.projects.len() as u64;
        self.projects
            .entry(key.to_owned())
            .or_insert_with(|| (next, key.to_owned()))
            .0
    }

    fn find(&self, id_or_key: &str) -> Option<(&IssueKey, &StoredIssue)> {
        if let Some(k) = split_key(id_or_key) {
            return self.issues.get_key_value(&k);
        }
        let id: u64 = id_or_key.parse().ok()?;
        self.issues.iter().find(|(_, s)| s.id == id)
    }

    fn add_comment(
        &mut self,
        key: &IssueKey,
        mut comment: MockJiraComment,
    ) -> Option<MockJiraComment> {
        if self.comment_count >= JIRA_MAX_COMMENTS {
            return None;
        }
        comment.id = self.next_comment_id;
        self.next_comment_id += 1;
        self.comment_count += 1;
        self.comments
            .entry(key.clone())
            .or_default()
            .push(comment.clone());
        Some(comment)
    }
}

struct Inner {
    state: Mutex<JiraState>,
    /// `(email, api_token)` pairs accepted.
    accounts: Vec<(String, String)>,
    hang_for: Duration,
}

/// The fake Jira's data and controls. Cloning shares them.
#[derive(Clone)]
pub struct MockJira {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MockJira {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockJira")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// How to make a [`MockJira`].
#[derive(Default)]
pub struct MockJiraBuilder {
    accounts: Vec<(String, String)>,
    projects: Vec<(String, String)>,
    issues: Vec<MockJiraIssue>,
    resolved: usize,
    hang_for: Option<Duration>,
}

impl MockJiraBuilder {
    /// Accept `Authorization: Basic base64(email:api_token)`. With no
    /// account configured, any credential or none is accepted.
    pub fn account(mut self, email: impl Into<String>, api_token: impl Into<String>) -> Self {
        self.accounts.push((email.into(), api_token.into()));
        self
    }

    /// A service project besides [`JIRA_PROJECT`] ("IT Support"), which
    /// always exists and is where seeds go; naming it here renames it.
    pub fn project(mut self, key: impl Into<String>, name: impl Into<String>) -> Self {
        self.projects.push((key.into(), name.into()));
        self
    }

    pub fn issue(mut self, issue: MockJiraIssue) -> Self {
        self.issues.push(issue);
        self
    }

    /// Seed `n` resolved issues ([`MockJira::seed_resolved`]).
    pub fn resolved(mut self, n: usize) -> Self {
        self.resolved = n;
        self
    }

    /// How long a hanging comment post waits before answering 500 (default
    /// 10 min; shutdown ends it sooner).
    pub fn hang_for(mut self, d: Duration) -> Self {
        self.hang_for = Some(d);
        self
    }

    pub fn build(self) -> MockJira {
        let mut state = JiraState {
            next_issue_id: 10_001,
            next_comment_id: 10_001,
            ..JiraState::default()
        };
        state.project_id(JIRA_PROJECT);
        state
            .projects
            .entry(JIRA_PROJECT.to_owned())
            .and_modify(|p| p.1 = "IT Support".to_owned());
        for (key, name) in self.projects {
            state.project_id(&key);
            if let Some(p) = state.projects.get_mut(&key) {
                p.1 = name;
            }
        }
        let mock = MockJira {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                accounts: self.accounts,
                hang_for: self.hang_for.unwrap_or(Duration::from_secs(600)),
            }),
        };
        for issue in self.issues {
            mock.insert(issue);
        }
        if self.resolved > 0 {
            mock.seed_resolved(self.resolved);
        }
        mock
    }
}

impl Default for MockJira {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl MockJira {
    pub fn builder() -> MockJiraBuilder {
        MockJiraBuilder::default()
    }

    fn lock(&self) -> MutexGuard<'_, JiraState> {
        // A panic while holding the lock leaves plain data; keep serving.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds or replaces an issue (its project is created when new); `false`
    /// when the key is not `PROJECT-N` or the mock is full.
    pub fn insert(&self, issue: MockJiraIssue) -> bool {
        let Some(key) = split_key(&issue.key) else {
            return false;
        };
        let mut s = self.lock();
        if let Some(stored) = s.issues.get_mut(&key) {
            stored.issue = issue;
            return true;
        }
        if s.issues.len() >= JIRA_MAX_ISSUES {
            return false;
        }
        s.project_id(&key.0);
        let id = s.next_issue_id;
        s.next_issue_id += 1;
        s.issues.insert(key, StoredIssue { id, issue });
        true
    }

    pub fn issue(&self, key: &str) -> Option<MockJiraIssue> {
        self.lock().find(key).map(|(_, s)| s.issue.clone())
    }

    /// Resolves an issue now with `resolution` (`Done`, say), adding the
    /// agent's public `comment` first when given; `false` when there is no such issue.
    pub fn resolve(&self, key: &str, resolution: &str, comment: Option<&str>) -> bool {
        let now = now_ms();
        let mut s = self.lock();
        let Some(k) = s.find(key).map(|(k, _)| k.clone()) else {
            return false;
        };
        if let Some(body) = comment {
            s.add_comment(&k, agent_comment(&k, body, now - 1));
        }
        if let Some(stored) = s.issues.get_mut(&k) {
            stored.issue.status = "Resolved".to_owned();
            stored.issue.resolution = Some(resolution.to_owned());
            stored.issue.resolution_ms = Some(now);
        }
        true
    }

    /// Adds a comment as the seed's agent would (not counted as a post);
    /// its id, or `None` when there is no such issue or the mock is full.
    pub fn add_comment(&self, key: &str, body: &str, public: bool) -> Option<u64> {
        let mut s = self.lock();
        let k = s.find(key).map(|(k, _)| k.clone())?;
        let mut c = agent_comment(&k, body, now_ms());
        c.public = public;
        s.add_comment(&k, c).map(|c| c.id)
    }

    /// Adds `n` resolved issues to [`JIRA_PROJECT`], numbered after its
    /// highest issue, resolved within the last 80 days (at most 10 minutes
    /// apart, the newest a step before now). Returns the first and last key;
    /// fewer are added when the mock would overflow.
    pub fn seed_resolved(&self, n: usize) -> Option<(String, String)> {
        self.seed_resolved_at(n, now_ms())
    }

    /// [`MockJira::seed_resolved`] relative to `now_ms`.
    pub fn seed_resolved_at(&self, n: usize, now_ms: i64) -> Option<(String, String)> {
        let mut s = self.lock();
        let n = n.min(JIRA_MAX_ISSUES.saturating_sub(s.issues.len()));
        if n == 0 {
            return None;
        }
        let first = s
            .issues
            .range((JIRA_PROJECT.to_owned(), 0)..=(JIRA_PROJECT.to_owned(), u64::MAX))
            .next_back()
            .map_or(1, |((_, number), _)| number + 1);
        const SPAN_MS: i64 = 80 * 24 * 3_600_000;
        let count = i64::try_from(n).unwrap_or(i64::MAX);
        let step = (SPAN_MS / count).clamp(1, 600_000);
        for i in 0..n {
            let seq = i as u64;
            let resolved_ms = now_ms - (count - i64::try_from(i).unwrap_or(i64::MAX)) * step;
            let k = (JIRA_PROJECT.to_owned(), first + seq);
            let (issue, resolution) =
                seed_issue(seq, &format!("{JIRA_PROJECT}-{}", k.1), resolved_ms);
            let id = s.next_issue_id;
            s.next_issue_id += 1;
            s.issues.insert(k.clone(), StoredIssue { id, issue });
            s.add_comment(&k, agent_comment(&k, resolution, resolved_ms - 60_000));
        }
        Some((
            format!("{JIRA_PROJECT}-{first}"),
            format!("{JIRA_PROJECT}-{}", first + n as u64 - 1),
        ))
    }

    /// The next `count` comment posts fail with `fault`, in order, after any queued before.
    pub fn fail_next_comment_posts(&self, count: usize, fault: NoteFault) {
        let mut s = self.lock();
        let room = 1000usize.saturating_sub(s.faults.len());
        s.faults.extend(std::iter::repeat_n(fault, count.min(room)));
    }

    /// Comments posted through the API, oldest first.
    pub fn posted_comments(&self) -> Vec<MockJiraComment> {
        let mut all: Vec<MockJiraComment> = self
            .lock()
            .comments
            .values()
            .flatten()
            .filter(|c| c.api)
            .cloned()
            .collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Every comment of an issue (seeded, added and posted), oldest first.
    pub fn comments_for(&self, key: &str) -> Vec<MockJiraComment> {
        let s = self.lock();
        split_key(key)
            .and_then(|k| s.comments.get(&k).cloned())
            .unwrap_or_default()
    }

    /// Authenticated comment posts received, failed ones included.
    pub fn comment_posts(&self) -> u64 {
        self.lock().comment_posts
    }

    pub fn stats(&self) -> JiraStats {
        let s = self.lock();
        JiraStats {
            comment_posts: s.comment_posts,
            api_comments: s.comments.values().flatten().filter(|c| c.api).count(),
            comments: s.comment_count,
            issues: s.issues.len(),
            searches: s.searches,
            pending_faults: s.faults.len(),
        }
    }

    /// Forgets comments posted through the API, queued faults and counters;
    /// issues and their other comments stay.
    pub fn reset(&self) {
        let mut s = self.lock();
        for list in s.comments.values_mut() {
            list.retain(|c| !c.api);
        }
        s.comment_count = s.comments.values().map(Vec::len).sum();
        s.faults.clear();
        s.comment_posts = 0;
        s.searches = 0;
    }

    /// The body of the webhook Jira would send for `event`
    /// (`jira:issue_created`, `jira:issue_updated`, ...) about the issue, as
    /// it is now: `timestamp`, `webhookEvent`, `issue_event_type_name`,
    /// `user`, the issue with all its fields and, for an update of a
    /// resolved issue, a `changelog` that sets the resolution.
    pub fn webhook_body(&self, event: &str, key: &str) -> Option<Value> {
        let s = self.lock();
        let (k, stored) = s.find(key)?;
        let issue = issue_json(&s, k, stored, WEBHOOK_SITE, &FieldFilter::All);
        let type_name = match event {
            "jira:issue_created" => "issue_created",
            "jira:issue_updated" if stored.issue.resolution.is_some() => "issue_resolved",
            _ => "issue_generic",
        };
        let mut body = json!({
            "timestamp": now_ms(),
            "webhookEvent": event,
            "issue_event_type_name": type_name,
            "user": user_json(WEBHOOK_SITE, "agent@mock-jira.example", "Alex Agent"),
            "issue": issue,
        });
        if event == "jira:issue_updated"
            && let Some(name) = &stored.issue.resolution
        {
            body["changelog"] = json!({"id": "10500", "items": [{
                "field": "resolution", "fieldtype": "jira", "fieldId": "resolution",
                "from": null, "fromString": null, "to": id_for(name), "toString": name,
            }]});
        }
        Some(body)
    }
}

/// Seeded issue number `n` (from 0) with key `key`, resolved at
/// `resolved_ms`, and the text of its agent's comment: topic `n % 8` of
/// [`TOPICS`], resolution `Done`.
fn seed_issue(n: u64, key: &str, resolved_ms: i64) -> (MockJiraIssue, &'static str) {
    let topic = &TOPICS[usize::try_from(n % TOPICS.len() as u64).unwrap_or(0)];
    let seq = (n + 1).to_string();
    let label = |s: &str| s.to_ascii_lowercase().replace(' ', "-");
    let issue = MockJiraIssue {
        key: key.to_owned(),
        summary: topic.subject.to_owned(),
        description: Some(text_to_adf(&topic.description.replace("{n}", &seq))),
        issue_type: default_issue_type(),
        status: if n % 2 == 1 { "Closed" } else { "Resolved" }.to_owned(),
        priority: Some(topic.priority.to_owned()),
        created_ms: resolved_ms - 3_600_000,
        resolution: Some("Done".to_owned()),
        resolution_ms: Some(resolved_ms),
        labels: vec![label(topic.category), label(topic.subcategory)],
    };
    (issue, topic.resolution)
}

fn agent_comment(key: &IssueKey, body: &str, created_ms: i64) -> MockJiraComment {
    MockJiraComment {
        id: 0,
        issue_key: format!("{}-{}", key.0, key.1),
        body: body.to_owned(),
        public: true,
        author: "Alex Agent".to_owned(),
        created_ms,
        api: false,
    }
}

// ------------------------------------------------------------------ server

#[derive(Clone)]
struct App {
    mock: MockJira,
    shutdown: CancellationToken,
}

/// The fake Jira's routes: the API under `/rest/` and the controls under
/// `/_mock/jira/`. Hung comment posts end when `shutdown` is cancelled.
pub fn jira_router(mock: MockJira, shutdown: CancellationToken) -> Router {
    Router::new()
        .route("/rest/api/3/issue/{key}", get(get_issue))
        .route("/rest/api/3/search/jql", get(search))
        .route("/rest/api/3/project/{key}", get(get_project))
        .route(
            "/rest/servicedeskapi/request/{key}/comment",
            get(list_comments).post(add_comment),
        )
        .route("/_mock/jira/seed", post(seed))
        .route("/_mock/jira/issues", post(add_issues))
        .route("/_mock/jira/comments/fail", post(fail_comments))
        .route("/_mock/jira/comments", get(posted_comments))
        .route("/_mock/jira/stats", get(stats))
        .route("/_mock/jira/reset", post(reset))
        .route("/_mock/jira/webhook/{key}", get(webhook))
        .with_state(App { mock, shutdown })
}

// ------------------------------------------------------------------ answers

/// The platform API's error body.
fn jira_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"errorMessages": [message], "errors": {}})),
    )
        .into_response()
}

/// The JSM API's error body.
fn jsm_error(status: StatusCode, key: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "errorMessage": message,
            "i18nErrorMessage": {"i18nKey": key, "parameters": []},
        })),
    )
        .into_response()
}

/// Atlassian's answer to a missing or wrong credential.
struct Unauthorized;

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Basic realm=\"protected-area\""),
                (header::CONTENT_TYPE, "text/plain;charset=UTF-8"),
            ],
            "Client must be authenticated to access this resource.",
        )
            .into_response()
    }
}

/// Which account called (its e-mail, when one was presented), or Atlassian's 401.
fn authenticate(app: &App, headers: &HeaderMap) -> Result<Option<String>, Unauthorized> {
    let accounts = &app.mock.inner.accounts;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| BASE64.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let email = presented
        .as_deref()
        .and_then(|p| p.split_once(':'))
        .map(|(email, _)| email.to_owned());
    if accounts.is_empty() {
        return Ok(email);
    }
    let ok = presented.as_deref().is_some_and(|p| {
        accounts
            .iter()
            .any(|(email, token)| same(p, &format!("{email}:{token}")))
    });
    if ok { Ok(email) } else { Err(Unauthorized) }
}

/// Equal without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `http://host:port` of the request, for `self` links.
fn base_of(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Jira's `2024-01-15T10:30:00.000+0000`, in UTC.
fn jira_time(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// JSM's `2024-01-15T10:30:00+0000`, in UTC.
fn iso8601(ms: i64) -> String {
    let jira = jira_time(ms);
    format!("{}+0000", &jira[..19])
}

/// A stable id for a name, as Jira gives every named entity one.
fn id_for(name: &str) -> String {
    let h = name.bytes().fold(1_469_598_103_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
    });
    (h % 90_000 + 10_000).to_string()
}

/// Text as an ADF document: a paragraph per non-empty line.
pub fn text_to_adf(text: &str) -> Value {
    let content: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| json!({"type": "paragraph", "content": [{"type": "text", "text": l}]}))
        .collect();
    json!({"type": "doc", "version": 1, "content": content})
}

fn adf_of(v: &Value) -> Value {
    match v {
        Value::String(s) => text_to_adf(s),
        other => other.clone(),
    }
}

fn user_json(base: &str, email: &str, name: &str) -> Value {
    let account_id = format!("557058:{}", id_for(email));
    json!({
        "self": format!("{base}/rest/api/3/user?accountId={account_id}"),
        "accountId": account_id,
        "emailAddress": email,
        "displayName": name,
        "active": true,
        "timeZone": "Etc/UTC",
        "accountType": "atlassian",
    })
}

fn named_json(base: &str, kind: &str, name: &str) -> Value {
    let id = id_for(name);
    json!({"self": format!("{base}/rest/api/3/{kind}/{id}"), "id": id, "name": name})
}

fn platform_comment_json(base: &str, issue_id: u64, c: &MockJiraComment) -> Value {
    let author = user_json(base, &c.author, &c.author);
    json!({
        "self": format!("{base}/rest/api/3/issue/{issue_id}/comment/{}", c.id),
        "id": c.id.to_string(),
        "author": author,
        "body": text_to_adf(&c.body),
        "updateAuthor": author,
        "created": jira_time(c.created_ms),
        "updated": jira_time(c.created_ms),
        "jsdPublic": c.public,
    })
}

fn jsm_comment_json(base: &str, key: &str, c: &MockJiraComment) -> Value {
    let mut author = user_json(base, &c.author, &c.author);
    if let Some(a) = author.as_object_mut() {
        a.remove("self");
        a.remove("accountType");
    }
    json!({
        "_expands": ["attachment", "renderedBody"],
        "id": c.id.to_string(),
        "body": c.body,
        "public": c.public,
        "author": author,
        "created": {
            "iso8601": iso8601(c.created_ms),
            "jira": jira_time(c.created_ms),
            "friendly": iso8601(c.created_ms).replace('T', " ").replace("+0000", " UTC"),
            "epochMillis": c.created_ms,
        },
        "_links": {"self": format!("{base}/rest/servicedeskapi/request/{key}/comment/{}", c.id)},
    })
}

/// Which fields an answer carries (`fields=` of the issue and search calls).
enum FieldFilter {
    All,
    Only(Vec<String>),
}

impl FieldFilter {
    fn parse(q: Option<&String>) -> Self {
        let Some(list) = q else {
            return FieldFilter::All;
        };
        let names: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty() && !n.starts_with('-'))
            .map(str::to_owned)
            .collect();
        if names.is_empty() || names.iter().any(|n| n == "*all" || n == "*navigable") {
            FieldFilter::All
        } else {
            FieldFilter::Only(names)
        }
    }

    fn keeps(&self, name: &str) -> bool {
        match self {
            FieldFilter::All => true,
            FieldFilter::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

fn issue_json(
    s: &JiraState,
    k: &IssueKey,
    stored: &StoredIssue,
    base: &str,
    filter: &FieldFilter,
) -> Value {
    let i = &stored.issue;
    let (project_id, project_name) = s
        .projects
        .get(&k.0)
        .cloned()
        .unwrap_or((10_000, k.0.clone()));
    let comments: Vec<Value> = s
        .comments
        .get(k)
        .map(|list| {
            list.iter()
                .map(|c| platform_comment_json(base, stored.id, c))
                .collect()
        })
        .unwrap_or_default();
    let done = i.resolution.is_some();
    let all = json!({
        "summary": i.summary,
        "description": i.description.as_ref().map_or(Value::Null, adf_of),
        "issuetype": {
            "self": format!("{base}/rest/api/3/issuetype/{}", id_for(&i.issue_type)),
            "id": id_for(&i.issue_type), "name": i.issue_type, "subtask": false, "hierarchyLevel": 0,
        },
        "project": {
            "self": format!("{base}/rest/api/3/project/{project_id}"),
            "id": project_id.to_string(), "key": k.0, "name": project_name,
            "projectTypeKey": "service_desk", "simplified": false,
        },
        "status": {
            "self": format!("{base}/rest/api/3/status/{}", id_for(&i.status)),
            "id": id_for(&i.status), "name": i.status,
            "statusCategory": if done {
                json!({"id": 3, "key": "done", "name": "Done"})
            } else {
                json!({"id": 2, "key": "new", "name": "To Do"})
            },
        },
        "priority": i.priority.as_deref().map_or(Value::Null, |p| named_json(base, "priority", p)),
        "created": jira_time(i.created_ms),
        "updated": jira_time(i.resolution_ms.unwrap_or(i.created_ms).max(i.created_ms)),
        "resolution": i.resolution.as_deref().map_or(Value::Null, |r| {
            let mut v = named_json(base, "resolution", r);
            v["description"] = json!("Work has been completed on this issue.");
            v
        }),
        "resolutiondate": i.resolution_ms.map_or(Value::Null, |ms| json!(jira_time(ms))),
        "labels": i.labels,
        "comment": {
            "self": format!("{base}/rest/api/3/issue/{}/comment", stored.id),
            "maxResults": comments.len(), "total": comments.len(), "startAt": 0,
            "comments": comments,
        },
    });
    let fields: serde_json::Map<String, Value> = all
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| filter.keeps(name))
        .map(|(name, v)| (name.clone(), v.clone()))
        .collect();
    json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": stored.id.to_string(),
        "self": format!("{base}/rest/api/3/issue/{}", stored.id),
        "key": format!("{}-{}", k.0, k.1),
        "fields": fields,
    })
}

// --------------------------------------------------------------------- API

async fn get_issue(
    State(app): State<App>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authenticate(&app, &headers) {
        return r.into_response();
    }
    let s = app.mock.lock();
    let Some((k, stored)) = s.find(&key) else {
        return jira_error(
            StatusCode::NOT_FOUND,
            "Issue does not exist or you do not have permission to see it.",
        );
    };
    let filter = FieldFilter::parse(q.get("fields"));
    Json(issue_json(&s, k, stored, &base_of(&headers), &filter)).into_response()
}

async fn get_project(
    State(app): State<App>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    if let Err(r) = authenticate(&app, &headers) {
        return r.into_response();
    }
    let base = base_of(&headers);
    let s = app.mock.lock();
    let found = s
        .projects
        .iter()
        .find(|(k, (id, _))| **k == key || id.to_string() == key);
    let Some((k, (id, name))) = found else {
        return jira_error(
            StatusCode::NOT_FOUND,
            &format!("No project could be found with key '{key}'."),
        );
    };
    Json(json!({
        "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
        "self": format!("{base}/rest/api/3/project/{id}"),
        "id": id.to_string(),
        "key": k,
        "name": name,
        "description": "",
        "lead": user_json(&base, "lead@mock-jira.example", "Project Lead"),
        "issueTypes": [
            {"id": id_for("Service Request"), "name": "Service Request", "subtask": false},
            {"id": id_for("Incident"), "name": "Incident", "subtask": false},
        ],
        "assigneeType": "UNASSIGNED",
        "projectTypeKey": "service_desk",
        "simplified": false,
        "style": "classic",
        "isPrivate": false,
        "properties": {},
    }))
    .into_response()
}

async fn search(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authenticate(&app, &headers) {
        return r.into_response();
    }
    let jql_text = q.get("jql").map(String::as_str).unwrap_or_default();
    let query = match jql::parse(jql_text) {
        Ok(query) => query,
        Err(message) => return jira_error(StatusCode::BAD_REQUEST, &message),
    };
    let max_results = q
        .get("maxResults")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 100);
    let offset = match q.get("nextPageToken") {
        None => 0,
        Some(token) => match page_token::decode(token, jql_text) {
            Some(offset) => offset,
            None => {
                return jira_error(
                    StatusCode::BAD_REQUEST,
                    "The provided next page token is invalid or expired.",
                );
            }
        },
    };
    let filter = FieldFilter::parse(q.get("fields"));
    let base = base_of(&headers);
    let mut s = app.mock.lock();
    s.searches += 1;
    let mut hits: Vec<(&IssueKey, &StoredIssue)> = s
        .issues
        .iter()
        .filter(|(k, stored)| query.matches(k, &stored.issue, &s.projects))
        .collect();
    query.sort(&mut hits);
    let total = hits.len();
    let issues: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(max_results)
        .map(|(k, stored)| issue_json(&s, k, stored, &base, &filter))
        .collect();
    let end = offset + issues.len();
    let mut answer = json!({"issues": issues, "isLast": end >= total});
    if end < total {
        answer["nextPageToken"] = json!(page_token::encode(end, jql_text));
    }
    Json(answer).into_response()
}

async fn list_comments(
    State(app): State<App>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authenticate(&app, &headers) {
        return r.into_response();
    }
    let flag = |name: &str| q.get(name).is_none_or(|v| v != "false");
    let (public, internal) = (flag("public"), flag("internal"));
    let start = q
        .get("start")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 100);
    let base = base_of(&headers);
    let s = app.mock.lock();
    let Some((k, _)) = s.find(&key) else {
        return jsm_error(
            StatusCode::NOT_FOUND,
            "sd.request.not.found",
            "Request does not exist or you do not have permission to see it.",
        );
    };
    let key_text = format!("{}-{}", k.0, k.1);
    let all: Vec<&MockJiraComment> = s
        .comments
        .get(k)
        .into_iter()
        .flatten()
        .filter(|c| if c.public { public } else { internal })
        .collect();
    let values: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|c| jsm_comment_json(&base, &key_text, c))
        .collect();
    let last = start + values.len() >= all.len();
    let self_link = format!("{base}/rest/servicedeskapi/request/{key_text}/comment");
    let mut links = json!({"base": base, "context": "", "self": self_link});
    if !last {
        links["next"] = json!(format!(
            "{self_link}?start={}&limit={limit}",
            start + values.len()
        ));
    }
    Json(json!({
        "_expands": [],
        "size": values.len(),
        "start": start,
        "limit": limit,
        "isLastPage": last,
        "_links": links,
        "values": values,
    }))
    .into_response()
}

async fn add_comment(
    State(app): State<App>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let email = match authenticate(&app, &headers) {
        Ok(email) => email,
        Err(r) => return r.into_response(),
    };
    app.mock.lock().comment_posts += 1;
    let Ok(Json(body)) = body else {
        return jsm_error(
            StatusCode::BAD_REQUEST,
            "sd.request.body.invalid",
            "The request body is not valid JSON.",
        );
    };
    let Some(text) = body
        .get("body")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
    else {
        return jsm_error(
            StatusCode::BAD_REQUEST,
            "sd.comment.body.required",
            "The comment body is required.",
        );
    };
    if text.chars().count() > MAX_COMMENT_CHARS {
        return jsm_error(
            StatusCode::BAD_REQUEST,
            "sd.comment.body.too.long",
            "The comment is too long: 32767 characters at most.",
        );
    }
    let public = body.get("public").and_then(Value::as_bool).unwrap_or(true);
    let Some(k) = app.mock.lock().find(&key).map(|(k, _)| k.clone()) else {
        return jsm_error(
            StatusCode::NOT_FOUND,
            "sd.request.not.found",
            "Request does not exist or you do not have permission to see it.",
        );
    };
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
        let comment = MockJiraComment {
            id: 0,
            issue_key: format!("{}-{}", k.0, k.1),
            body: text.to_owned(),
            public,
            author: email.unwrap_or_else(|| "anonymous@mock-jira.example".to_owned()),
            created_ms: now_ms(),
            api: true,
        };
        match s.add_comment(&k, comment) {
            Some(c) => c,
            None => {
                return jsm_error(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "mock.full",
                    "The mock's comment store is full.",
                );
            }
        }
    };
    match fault {
        Some(NoteFault::CreateThenStatus { status }) => fault_answer(status),
        Some(NoteFault::CreateThenHang) => {
            hang(&app).await;
            fault_answer(500)
        }
        _ => (
            StatusCode::CREATED,
            Json(jsm_comment_json(
                &base_of(&headers),
                &stored.issue_key,
                &stored,
            )),
        )
            .into_response(),
    }
}

fn fault_answer(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    jsm_error(
        status,
        "mock.injected",
        "Internal server error (injected by the mock)",
    )
}

async fn hang(app: &App) {
    tokio::select! {
        () = app.shutdown.cancelled() => {}
        () = tokio::time::sleep(app.mock.inner.hang_for) => {}
    }
}

// ----------------------------------------------------------------- controls

#[derive(Deserialize)]
struct SeedControl {
    resolved: usize,
}

async fn seed(State(app): State<App>, Json(c): Json<SeedControl>) -> Response {
    match app.mock.seed_resolved(c.resolved) {
        Some((first, last)) => {
            let number = |key: &str| split_key(key).map_or(0, |k| k.1);
            let count = number(&last) + 1 - number(&first);
            Json(json!({"first_key": first, "last_key": last, "count": count})).into_response()
        }
        None => Json(json!({"first_key": null, "last_key": null, "count": 0})).into_response(),
    }
}

async fn add_issues(State(app): State<App>, Json(list): Json<Vec<MockJiraIssue>>) -> Response {
    let mut count = 0usize;
    for issue in list {
        if !app.mock.insert(issue) {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"count": count, "error": "a key that is not PROJECT-N, or the mock is full"})),
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

async fn fail_comments(State(app): State<App>, Json(c): Json<FailControl>) -> Response {
    app.mock.fail_next_comment_posts(c.count, c.fault);
    Json(json!({"pending_faults": app.mock.stats().pending_faults})).into_response()
}

#[derive(Deserialize)]
struct CommentsQuery {
    issue: Option<String>,
}

async fn posted_comments(State(app): State<App>, Query(q): Query<CommentsQuery>) -> Response {
    let mut comments = app.mock.posted_comments();
    if let Some(key) = q.issue {
        comments.retain(|c| c.issue_key == key);
    }
    Json(comments).into_response()
}

async fn stats(State(app): State<App>) -> Response {
    Json(app.mock.stats()).into_response()
}

async fn reset(State(app): State<App>) -> Response {
    app.mock.reset();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct WebhookQuery {
    event: Option<String>,
}

async fn webhook(
    State(app): State<App>,
    Path(key): Path<String>,
    Query(q): Query<WebhookQuery>,
) -> Response {
    let event = q.event.as_deref().unwrap_or("jira:issue_created");
    match app.mock.webhook_body(event, &key) {
        Some(body) => Json(body).into_response(),
        None => jira_error(StatusCode::NOT_FOUND, "Issue does not exist."),
    }
}

// -------------------------------------------------------------- page tokens

/// Opaque-looking page tokens that remember their offset and their query,
/// so a token used with another query is refused, as Jira refuses it.
mod page_token {
    fn fingerprint(jql: &str) -> u64 {
        jql.bytes().fold(1_469_598_103_934_665_603_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
        })
    }

    pub(super) fn encode(offset: usize, jql: &str) -> String {
        format!(
            "{:016x}{:016x}",
            offset as u64 ^ 0x5bd1_e995,
            fingerprint(jql)
        )
    }

    pub(super) fn decode(token: &str, jql: &str) -> Option<usize> {
        if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let offset = u64::from_str_radix(&token[..16], 16).ok()? ^ 0x5bd1_e995;
        let print = u64::from_str_radix(&token[16..], 16).ok()?;
        (print == fingerprint(jql))
            .then(|| usize::try_from(offset).ok())
            .flatten()
    }
}

// --------------------------------------------------------------------- JQL

/// The part of JQL the fake understands (see the module's docs).
mod jql {
    use std::collections::BTreeMap;

    use time::macros::format_description;
    use time::{Date, PrimitiveDateTime, Time};

    use super::{IssueKey, MockJiraIssue, StoredIssue};

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Tok {
        Word(String),
        Str(String),
        Op(&'static str),
    }

    fn tokens(jql: &str) -> Result<Vec<Tok>, String> {
        let mut out = Vec::new();
        let mut chars = jql.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
            } else if c == '"' || c == '\'' {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(error("the quoted value is not closed")),
                        Some('\\') => match chars.next() {
                            Some(e) => s.push(e),
                            None => return Err(error("the quoted value is not closed")),
                        },
                        Some(q) if q == c => break,
                        Some(other) => s.push(other),
                    }
                }
                out.push(Tok::Str(s));
            } else if "=!<>".contains(c) {
                chars.next();
                let two = chars.peek() == Some(&'=');
                let op = match (c, two) {
                    ('=', _) => "=",
                    ('!', true) => "!=",
                    ('<', true) => "<=",
                    ('>', true) => ">=",
                    ('<', false) => "<",
                    ('>', false) => ">",
                    _ => return Err(error("'!' must be followed by '='")),
                };
                if two && c != '=' {
                    chars.next();
                }
                out.push(Tok::Op(op));
            } else if c.is_alphanumeric() || "_-./:*".contains(c) {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || "_-./:*".contains(c) {
                        w.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Word(w));
            } else {
                return Err(error(&format!(
                    "the character '{c}' is a reserved JQL character"
                )));
            }
        }
        Ok(out)
    }

    fn error(what: &str) -> String {
        format!("Error in the JQL Query: {what}.")
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Field {
        Project,
        IssueType,
        Status,
        Resolution,
        Labels,
        Key,
        Created,
        Resolved,
    }

    impl Field {
        fn parse(name: &str) -> Option<Self> {
            Some(match name.to_ascii_lowercase().as_str() {
                "project" => Field::Project,
                "issuetype" | "type" => Field::IssueType,
                "status" => Field::Status,
                "resolution" => Field::Resolution,
                "labels" => Field::Labels,
                "key" | "issuekey" | "issue" => Field::Key,
                "created" | "createddate" => Field::Created,
                "resolved" | "resolutiondate" => Field::Resolved,
                _ => return None,
            })
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Op {
        Eq,
        Ne,
        Lt,
        Le,
        Gt,
        Ge,
        IsEmpty,
        IsNotEmpty,
    }

    #[derive(Debug)]
    struct Clause {
        field: Field,
        op: Op,
        value: String,
        /// `value` as milliseconds, for the date fields.
        ms: Option<i64>,
    }

    #[derive(Debug)]
    pub(super) struct Query {
        clauses: Vec<Clause>,
        order: Field,
        descending: bool,
    }

    pub(super) fn parse(jql: &str) -> Result<Query, String> {
        let toks = tokens(jql)?;
        let mut at = 0;
        let mut clauses = Vec::new();
        let mut order = Field::Key;
        let mut descending = false;
        let word = |t: Option<&Tok>| match t {
            Some(Tok::Word(w)) => Some(w.to_ascii_uppercase()),
            _ => None,
        };
        while at < toks.len() {
            if word(toks.get(at)).as_deref() == Some("ORDER") {
                if word(toks.get(at + 1)).as_deref() != Some("BY") {
                    return Err(error("expecting 'by' after 'order'"));
                }
                let Some(Tok::Word(name)) = toks.get(at + 2) else {
                    return Err(error("expecting a field name after 'order by'"));
                };
                order = match Field::parse(name) {
                    Some(f @ (Field::Key | Field::Created | Field::Resolved)) => f,
                    _ => return Err(error(&format!("the mock cannot order by '{name}'"))),
                };
                at += 3;
                match word(toks.get(at)).as_deref() {
                    Some("ASC") => at += 1,
                    Some("DESC") => {
                        descending = true;
                        at += 1;
                    }
                    _ => {}
                }
                if at != toks.len() {
                    return Err(error("expecting the end of the query after 'order by'"));
                }
                break;
            }
            if !clauses.is_empty() {
                match word(toks.get(at)).as_deref() {
                    Some("AND") => at += 1,
                    Some("OR") => return Err(error("the mock supports AND only")),
                    _ => return Err(error("expecting either 'OR' or 'AND'")),
                }
            }
            let Some(Tok::Word(name)) = toks.get(at) else {
                return Err(error("expecting a field name"));
            };
            let Some(field) = Field::parse(name) else {
                return Err(format!(
                    "Field '{name}' does not exist or you do not have permission to view it."
                ));
            };
            at += 1;
            let op = match toks.get(at) {
                Some(Tok::Op(op)) => {
                    at += 1;
                    match *op {
                        "=" => Op::Eq,
                        "!=" => Op::Ne,
                        "<" => Op::Lt,
                        "<=" => Op::Le,
                        ">" => Op::Gt,
                        _ => Op::Ge,
                    }
                }
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("is") => {
                    at += 1;
                    let not = word(toks.get(at)).as_deref() == Some("NOT");
                    if not {
                        at += 1;
                    }
                    match word(toks.get(at)).as_deref() {
                        Some("EMPTY" | "NULL") => {}
                        _ => return Err(error("expecting EMPTY or NULL after 'is'")),
                    }
                    at += 1;
                    clauses.push(Clause {
                        field,
                        op: if not { Op::IsNotEmpty } else { Op::IsEmpty },
                        value: String::new(),
                        ms: None,
                    });
                    continue;
                }
                _ => return Err(error(&format!("expecting an operator after '{name}'"))),
            };
            let value = match toks.get(at) {
                Some(Tok::Str(s) | Tok::Word(s)) => s.clone(),
                _ => return Err(error(&format!("expecting a value after '{name}'"))),
            };
            at += 1;
            let ms = match field {
                Field::Created | Field::Resolved => Some(date_ms(&value).ok_or_else(|| {
                    format!(
                        "Date value '{value}' for field '{name}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd'."
                    )
                })?),
                _ => None,
            };
            if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge)
                && !matches!(field, Field::Created | Field::Resolved | Field::Key)
            {
                return Err(error(&format!(
                    "the operator cannot be used with the field '{name}'"
                )));
            }
            clauses.push(Clause {
                field,
                op,
                value,
                ms,
            });
        }
        if clauses.is_empty() {
            return Err(
                "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
                    .to_owned(),
            );
        }
        Ok(Query {
            clauses,
            order,
            descending,
        })
    }

    fn date_ms(value: &str) -> Option<i64> {
        let v = value.trim();
        let t = PrimitiveDateTime::parse(
            v,
            format_description!("[year]/[month]/[day] [hour]:[minute]"),
        )
        .or_else(|_| {
            PrimitiveDateTime::parse(
                v,
                format_description!("[year]-[month]-[day] [hour]:[minute]"),
            )
        })
        .ok()
        .or_else(|| {
            Date::parse(v, format_description!("[year]/[month]/[day]"))
                .or_else(|_| Date::parse(v, format_description!("[year]-[month]-[day]")))
                .ok()
                .map(|d| PrimitiveDateTime::new(d, Time::MIDNIGHT))
        })?;
        i64::try_from(t.assume_utc().unix_timestamp_nanos() / 1_000_000).ok()
    }

    impl Query {
        pub(super) fn matches(
            &self,
            key: &IssueKey,
            issue: &MockJiraIssue,
            projects: &BTreeMap<String, (u64, String)>,
        ) -> bool {
            self.clauses.iter().all(|c| c.matches(key, issue, projects))
        }

        pub(super) fn sort(&self, hits: &mut [(&IssueKey, &StoredIssue)]) {
            match self.order {
                Field::Created => hits.sort_by_key(|(k, s)| (s.issue.created_ms, (*k).clone())),
                Field::Resolved => {
                    hits.sort_by_key(|(k, s)| (s.issue.resolution_ms, (*k).clone()));
                }
                _ => hits.sort_by(|a, b| a.0.cmp(b.0)),
            }
            if self.descending {
                hits.reverse();
            }
        }
    }

    impl Clause {
        fn matches(
            &self,
            key: &IssueKey,
            issue: &MockJiraIssue,
            projects: &BTreeMap<String, (u64, String)>,
        ) -> bool {
            let text = |actual: Option<&str>| -> bool {
                match self.op {
                    Op::IsEmpty => actual.is_none(),
                    Op::IsNotEmpty => actual.is_some(),
                    Op::Eq => actual.is_some_and(|a| a.eq_ignore_ascii_case(&self.value)),
                    Op::Ne => actual.is_none_or(|a| !a.eq_ignore_ascii_case(&self.value)),
                    _ => false,
                }
            };
            match self.field {
                Field::Project => {
                    let (id, name) = projects
                        .get(&key.0)
                        .map_or((0, ""), |(id, name)| (*id, name.as_str()));
                    let hit = key.0.eq_ignore_ascii_case(&self.value)
                        || name.eq_ignore_ascii_case(&self.value)
                        || id.to_string() == self.value;
                    match self.op {
                        Op::Eq => hit,
                        Op::Ne => !hit,
                        Op::IsNotEmpty => true,
                        _ => false,
                    }
                }
                Field::IssueType => text(Some(&issue.issue_type)),
                Field::Status => text(Some(&issue.status)),
                Field::Resolution => text(issue.resolution.as_deref()),
                Field::Labels => match self.op {
                    Op::IsEmpty => issue.labels.is_empty(),
                    Op::IsNotEmpty => !issue.labels.is_empty(),
                    Op::Eq => issue.labels.iter().any(|l| l == &self.value),
                    Op::Ne => !issue.labels.iter().any(|l| l == &self.value),
                    _ => false,
                },
                Field::Key => {
                    let Some(other) = super::split_key(&self.value) else {
                        return false;
                    };
                    compare(self.op, Some(key), Some(&other))
                }
                Field::Created => compare(self.op, Some(issue.created_ms), self.ms),
                Field::Resolved => compare(self.op, issue.resolution_ms, self.ms),
            }
        }
    }

    fn compare<T: Ord>(op: Op, actual: Option<T>, value: Option<T>) -> bool {
        match (op, actual, value) {
            (Op::IsEmpty, a, _) => a.is_none(),
            (Op::IsNotEmpty, a, _) => a.is_some(),
            (_, None, _) | (_, _, None) => false,
            (Op::Eq, Some(a), Some(v)) => a == v,
            (Op::Ne, Some(a), Some(v)) => a != v,
            (Op::Lt, Some(a), Some(v)) => a < v,
            (Op::Le, Some(a), Some(v)) => a <= v,
            (Op::Gt, Some(a), Some(v)) => a > v,
            (Op::Ge, Some(a), Some(v)) => a >= v,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_import_query_parses() {
            let q = parse(
                r#"project = "SUP" AND resolved >= "2024/01/14 20:30" AND resolved <= "2024/01/17 00:31" AND issuetype = "Service \"Request\"" ORDER BY key ASC"#,
            )
            .unwrap();
            assert_eq!(q.clauses.len(), 4);
            assert_eq!(q.clauses[1].ms, Some(1_705_264_200_000));
            assert_eq!(q.clauses[3].value, "Service \"Request\"");
            assert_eq!((q.order, q.descending), (Field::Key, false));
            let q = parse("resolution is not EMPTY order by resolved desc").unwrap();
            assert_eq!(q.clauses[0].op, Op::IsNotEmpty);
            assert!(q.descending);
        }

        #[test]
        fn what_it_does_not_understand_is_refused() {
            for bad in [
                "",
                "ORDER BY key",
                "project = SUP OR project = IT",
                "summary ~ vpn",
                "resolved >= \"yesterday\"",
                "project = \"SUP",
                "project = SUP ORDER BY key ASC extra",
                "status > Open",
            ] {
                assert!(parse(bad).is_err(), "{bad}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_number_within_a_project() {
        assert_eq!(split_key("SUP-12"), Some(("SUP".to_owned(), 12)));
        for bad in ["SUP", "sup-1", "SUP-0", "SUP-x", "-1", "SUP-1-"] {
            assert_eq!(split_key(bad), None, "{bad}");
        }
        assert!(split_key("SUP-2") < split_key("SUP-10"));
    }

    #[test]
    fn page_tokens_are_tied_to_their_query() {
        let t = page_token::encode(100, "project = SUP");
        assert_eq!(page_token::decode(&t, "project = SUP"), Some(100));
        assert_eq!(page_token::decode(&t, "project = IT"), None);
        assert_eq!(page_token::decode("nonsense", "project = SUP"), None);
    }

    #[test]
    fn seeding_numbers_after_the_highest_issue() {
        let mock = MockJira::builder()
            .issue(MockJiraIssue::open("SUP-7", "open", json!("text"), "High"))
            .build();
        let (first, last) = mock.seed_resolved_at(3, 1_700_000_000_000).unwrap();
        assert_eq!((first.as_str(), last.as_str()), ("SUP-8", "SUP-10"));
        let seeded = mock.issue("SUP-8").unwrap();
        assert_eq!(seeded.summary, TOPICS[0].subject);
        assert_eq!(seeded.labels, ["email", "outlook"]);
        assert_eq!(mock.comments_for("SUP-8")[0].body, TOPICS[0].resolution);
        assert_eq!(mock.stats().comments, 3);
        assert!(mock.posted_comments().is_empty());
        assert_eq!(jira_time(1_705_314_600_123), "2024-01-15T10:30:00.123+0000");
    }
}
