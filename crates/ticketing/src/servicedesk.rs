//! The ServiceDesk Plus connector: API v3, on-premises (`authtoken` header)
//! and cloud (`Authorization: Zoho-oauthtoken`).
//!
//! Wire format (ManageEngine's v3 reference): every call sends
//! `Accept: application/vnd.manageengine.sdp.v3+json`; list calls take their
//! paging and filters as JSON in the `input_data` query parameter
//! (`list_info`: `row_count`, `start_index` from 1, `sort_field`,
//! `search_criteria` of `field`/`condition`/`value(s)`/`logical_operator`/
//! `children`) and answer `list_info.has_more_rows`; writes send
//! `input_data=<JSON>` form-urlencoded. An on-premises server calls a note
//! `note` (`notes` in lists), the cloud `request_note` (`request_notes`);
//! writes use the key of the deployment the credential belongs to and
//! answers are read under either key. Times are
//! `{"value": "<ms since epoch>", "display_value": "..."}`; ids are numbers
//! sent as strings.
//!
//! Retries: [`RetryPolicy`] (3 attempts, 0.5 s then 1 s) on timeouts,
//! failed connections and 5xx only; a 4xx is the server's final word. Every
//! failure is logged with the operation and the ticket id; the credential
//! never reaches a log or an error.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use csp_http::{HttpClient, HttpError, Limits};
use futures::StreamExt;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

use crate::connector::{
    ApiError, BoxFuture, ClientOptions, Connector, Delivery, Event, FailureKind, Field, FieldKind,
    Page, Route, Settings, SettingsError, TestFailure, TicketingClient, ToolType, Verified,
    post_once,
};
use crate::text::html_to_text;
use crate::types::{
    InvalidTicketId, JobMarker, NoteFormat, NoteId, ResolvedTicket, Ticket, validate_ticket_id,
};
use crate::webhook::{NewTicket, ResolvedTicketEvent, SignatureError, ValidationError};

/// The media type every v3 call asks for.
pub const V3_MEDIA_TYPE: &str = "application/vnd.manageengine.sdp.v3+json";
/// Rows per page of [`SdpClient::list_resolved`] (the API's maximum).
pub const PAGE_SIZE: u32 = 100;
/// The statuses whose requests count as resolved.
pub const RESOLVED_STATUSES: [&str; 2] = ["Resolved", "Closed"];
/// How many pages of a ticket's notes are read before giving up (5,000 notes).
const MAX_NOTE_PAGES: u32 = 50;
/// Requests of one page whose details are fetched at the same time.
const DETAIL_CONCURRENCY: usize = 8;

/// A tenant's credential.
#[derive(Clone, Debug)]
pub enum SdpAuth {
    /// On-premises: the technician's API key, sent as `authtoken: <key>`.
    AuthToken(SecretString),
    /// Cloud: a Zoho OAuth access token, sent as `Authorization: Zoho-oauthtoken <token>`.
    ZohoOAuth(SecretString),
}

impl SdpAuth {
    fn note_key(&self) -> &'static str {
        match self {
            SdpAuth::AuthToken(_) => "note",
            SdpAuth::ZohoOAuth(_) => "request_note",
        }
    }
}

/// Every connector's retry policy, here too for the callers of [`SdpClient`].
pub use crate::connector::RetryPolicy;

#[derive(Debug, thiserror::Error)]
pub enum SdpError {
    #[error("invalid ServiceDesk Plus settings: {0}")]
    Config(String),
    #[error(transparent)]
    InvalidTicketId(#[from] InvalidTicketId),
    #[error("ServiceDesk Plus call failed: {0}")]
    Http(#[from] HttpError),
    #[error("unexpected answer from ServiceDesk Plus: {0}")]
    Unexpected(String),
}

impl SdpError {
    /// Timeouts, failed connections and 5xx: worth another attempt. Never a 4xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            SdpError::Http(HttpError::Timeout | HttpError::Connect(_)) => true,
            SdpError::Http(HttpError::Status { status, .. }) => status.is_server_error(),
            _ => false,
        }
    }

    /// The HTTP status ServiceDesk Plus answered with, for a non-2xx answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            SdpError::Http(e) => e.status(),
            _ => None,
        }
    }
}

/// Why [`SdpClient::test_connection`] failed, in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("ServiceDesk Plus could not be reached (check the URL and the network)")]
    Unreachable,
    #[error(
        "the TLS connection to ServiceDesk Plus failed (check the URL's scheme and the server's certificate)"
    )]
    Tls,
    #[error("ServiceDesk Plus rejected the API key or token")]
    CredentialsRejected,
    #[error("no ServiceDesk Plus API v3 at this URL (cloud URLs end in /app/<portal>)")]
    NotFound,
    #[error("ServiceDesk Plus answered unexpectedly: {0}")]
    Other(String),
}

/// A note on a request, its description as stored (HTML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub id: NoteId,
    pub description: String,
    pub show_to_requester: Option<bool>,
}

/// What [`SdpClient::post_note_once`] did, and a request
/// [`SdpClient::list_resolved`] could not take: the connector's types.
pub use crate::connector::{PostedNote, Skipped};

/// One page of resolved and closed requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPage {
    pub tickets: Vec<ResolvedTicket>,
    pub skipped: Vec<Skipped>,
    pub has_more_rows: bool,
    /// `start_index` of the next page.
    pub next_start_index: u32,
    /// All matching requests, when the server says (`get_total_count`).
    pub total_count: Option<u64>,
}

/// A client for one ServiceDesk Plus instance. Cloning is cheap.
#[derive(Clone)]
pub struct SdpClient {
    http: HttpClient,
    base: Url,
    auth: Arc<SdpAuth>,
    retry: RetryPolicy,
    limits: Limits,
}

impl std::fmt::Debug for SdpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match *self.auth {
            SdpAuth::AuthToken(_) => "authtoken",
            SdpAuth::ZohoOAuth(_) => "zoho-oauthtoken",
        };
        f.debug_struct("SdpClient")
            .field("base", &csp_redact::url(self.base.as_str()))
            .field("auth", &auth)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl SdpClient {
    /// `base_url` is the server's root, `https://sdp.example.com` on
    /// premises or `https://sdpondemand.manageengine.com/app/<portal>` in the
    /// cloud; `/api/v3/...` is appended.
    pub fn new(http: HttpClient, base_url: &str, auth: SdpAuth) -> Result<Self, SdpError> {
        Ok(Self {
            http,
            base: parse_base_url(base_url)?,
            auth: Arc::new(auth),
            retry: RetryPolicy::default(),
            limits: Limits::default(),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Per-call timeout and answer size (default 30 s, 4 MiB).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// `GET /api/v3/requests/{id}`.
    pub async fn get_request(&self, ticket_id: &str) -> Result<Ticket, SdpError> {
        validate_ticket_id(ticket_id)?;
        self.retrying("get_request", ticket_id, move || async move {
            let v = self.get(&["requests", ticket_id], None).await?;
            ticket_from(field(&v, "request")?)
        })
        .await
    }

    /// `GET /api/v3/requests/{id}/resolutions`: the resolution's text, if any.
    pub async fn get_resolution(&self, ticket_id: &str) -> Result<Option<String>, SdpError> {
        validate_ticket_id(ticket_id)?;
        self.retrying("get_resolution", ticket_id, move || async move {
            let v = self
                .get(&["requests", ticket_id, "resolutions"], None)
                .await?;
            Ok(v.get("resolution")
                .and_then(|r| r.get("content"))
                .and_then(Value::as_str)
                .map(html_to_text)
                .filter(|s| !s.trim().is_empty()))
        })
        .await
    }

    /// `GET /api/v3/requests/{id}/notes`, every page.
    pub async fn list_notes(&self, ticket_id: &str) -> Result<Vec<Note>, SdpError> {
        validate_ticket_id(ticket_id)?;
        self.retrying("list_notes", ticket_id, move || {
            self.notes_attempt(ticket_id)
        })
        .await
    }

    /// `POST /api/v3/requests/{id}/notes`: an internal note (not shown to
    /// the requester, not a first response, not copied to linked requests).
    ///
    /// Retried like every call, so a timeout after ServiceDesk Plus stored
    /// the note can leave two; [`SdpClient::post_note_once`] cannot.
    pub async fn add_note(&self, ticket_id: &str, description: &str) -> Result<NoteId, SdpError> {
        validate_ticket_id(ticket_id)?;
        self.retrying("add_note", ticket_id, move || {
            self.add_note_attempt(ticket_id, description)
        })
        .await
    }

    /// Posts `body` with `marker`'s footer unless a note of the ticket
    /// already carries the marker, whose id is returned instead. Each
    /// attempt reads the notes again before posting, so neither a retry here
    /// nor a redelivered job posts twice once a note has been stored.
    /// (Two deliveries of one job running at the same moment could still
    /// both post; the queue hands a job to one worker at a time.)
    pub async fn post_note_once(
        &self,
        ticket_id: &str,
        marker: &JobMarker,
        body: &str,
        format: NoteFormat,
    ) -> Result<PostedNote, SdpError> {
        validate_ticket_id(ticket_id)?;
        let content = marker.apply(body, format);
        let content = content.as_str();
        post_once(
            &self.retry,
            ToolType::ServicedeskPlus,
            ticket_id,
            marker,
            || async {
                let notes = self.notes_attempt(ticket_id).await?;
                Ok(notes
                    .into_iter()
                    .find(|n| marker.found_in(&n.description))
                    .map(|n| n.id))
            },
            || self.add_note_attempt(ticket_id, content),
        )
        .await
    }

    /// One page (up to [`PAGE_SIZE`]) of requests in a resolved status
    /// ([`RESOLVED_STATUSES`]) resolved or completed between `from` and `to`,
    /// sorted by id, from `start_index` (1 for the first page). Each request's
    /// description and resolution are read from its detail (a list row
    /// carries neither), and from `/resolutions` when the detail has none.
    /// A request without description, resolution or date, or whose detail
    /// answers 4xx, is [`Skipped`].
    pub async fn list_resolved(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        start_index: u32,
    ) -> Result<ResolvedPage, SdpError> {
        let start_index = start_index.max(1);
        let input = json!({"list_info": {
            "row_count": PAGE_SIZE,
            "start_index": start_index,
            "sort_field": "id",
            "sort_order": "asc",
            "get_total_count": true,
            "search_criteria": resolved_criteria(from, to),
        }});
        let page = self
            .retrying("list_resolved", "-", || {
                self.get(&["requests"], Some(&input))
            })
            .await?;
        let rows = page
            .get("requests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let list_info = page.get("list_info");
        let has_more_rows = list_info
            .and_then(|l| l.get("has_more_rows"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let total_count = list_info
            .and_then(|l| l.get("total_count"))
            .and_then(as_u64);
        let row_count = u32::try_from(rows.len()).unwrap_or(u32::MAX);

        // Collected first: a stream over a borrowing closure is not `Send`
        // enough for the boxed future of `TicketingClient`.
        let details: Vec<_> = rows.iter().map(|row| self.resolved_detail(row)).collect();
        let outcomes: Vec<Result<Result<ResolvedTicket, Skipped>, SdpError>> =
            futures::stream::iter(details)
                .buffered(DETAIL_CONCURRENCY)
                .collect()
                .await;
        let mut tickets = Vec::with_capacity(outcomes.len());
        let mut skipped = Vec::new();
        for outcome in outcomes {
            match outcome? {
                Ok(t) => tickets.push(t),
                Err(s) => skipped.push(s),
            }
        }
        Ok(ResolvedPage {
            tickets,
            skipped,
            has_more_rows,
            next_start_index: start_index.saturating_add(row_count),
            total_count,
        })
    }

    /// Can we read requests with these settings? One call, not retried.
    pub async fn test_connection(&self) -> Result<(), ConnectionError> {
        let input = json!({"list_info": {"row_count": 1, "start_index": 1}});
        match self.get(&["requests"], Some(&input)).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(operation = "test_connection", error = %e, "ServiceDesk Plus connection test failed");
                Err(match e {
                    SdpError::Http(HttpError::Timeout | HttpError::Connect(_)) => {
                        ConnectionError::Unreachable
                    }
                    SdpError::Http(HttpError::Tls(_)) => ConnectionError::Tls,
                    SdpError::Http(HttpError::Status { status, .. })
                        if status == StatusCode::UNAUTHORIZED
                            || status == StatusCode::FORBIDDEN =>
                    {
                        ConnectionError::CredentialsRejected
                    }
                    SdpError::Http(HttpError::Status { status, .. })
                        if status == StatusCode::NOT_FOUND =>
                    {
                        ConnectionError::NotFound
                    }
                    other => ConnectionError::Other(other.to_string()),
                })
            }
        }
    }

    // ------------------------------------------------------------ internals

    async fn resolved_detail(
        &self,
        row: &Value,
    ) -> Result<Result<ResolvedTicket, Skipped>, SdpError> {
        let Some(id) = row.get("id").and_then(id_of) else {
            return Ok(Err(Skipped {
                ticket_id: String::new(),
                reason: "a request without an id".into(),
            }));
        };
        let skip = |reason: String| {
            tracing::warn!(operation = "list_resolved", ticket_id = %id, reason = %reason, "skipping a resolved request");
            Ok(Err(Skipped {
                ticket_id: id.clone(),
                reason,
            }))
        };
        if validate_ticket_id(&id).is_err() {
            return skip("an id that is not a valid ticket id".into());
        }
        let ticket = match self.get_request(&id).await {
            Ok(t) => t,
            Err(e) if e.status().is_some_and(|s| s.is_client_error()) => {
                return skip(format!("its detail answered {e}"));
            }
            Err(e) => return Err(e),
        };
        let resolution = match ticket.resolution.clone() {
            Some(r) => Some(r),
            None => match self.get_resolution(&id).await {
                Ok(r) => r,
                Err(e) if e.status().is_some_and(|s| s.is_client_error()) => None,
                Err(e) => return Err(e),
            },
        };
        let Some(resolution) = resolution else {
            return skip("no resolution".into());
        };
        if ticket.description.trim().is_empty() {
            return skip("no description".into());
        }
        let Some(resolved_date) = ticket.resolved_at else {
            return skip("no resolved or completed time".into());
        };
        Ok(Ok(ResolvedTicket {
            ticket_id: ticket.ticket_id,
            description: ticket.description,
            resolution,
            resolved_date,
            tags: ticket.tags,
        }))
    }

    async fn notes_attempt(&self, ticket_id: &str) -> Result<Vec<Note>, SdpError> {
        let mut notes = Vec::new();
        let mut start_index = 1u32;
        for _ in 0..MAX_NOTE_PAGES {
            let input = json!({"list_info": {"row_count": PAGE_SIZE, "start_index": start_index}});
            let v = self
                .get(&["requests", ticket_id, "notes"], Some(&input))
                .await?;
            let rows = v
                .get("notes")
                .or_else(|| v.get("request_notes"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let count = u32::try_from(rows.len()).unwrap_or(u32::MAX);
            for row in rows {
                let Some(id) = row.get("id").and_then(id_of) else {
                    continue;
                };
                let description = match row.get("description").and_then(Value::as_str) {
                    Some(d) => d.to_owned(),
                    // Some versions list notes without their text; read it.
                    None => self.note_description(ticket_id, &id).await?,
                };
                notes.push(Note {
                    id: NoteId(id),
                    description,
                    show_to_requester: row.get("show_to_requester").and_then(Value::as_bool),
                });
            }
            let more = v
                .get("list_info")
                .and_then(|l| l.get("has_more_rows"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !more || count == 0 {
                return Ok(notes);
            }
            start_index = start_index.saturating_add(count);
        }
        Err(SdpError::Unexpected(format!(
            "request {ticket_id} has more than {} notes",
            MAX_NOTE_PAGES * PAGE_SIZE
        )))
    }

    async fn note_description(&self, ticket_id: &str, note_id: &str) -> Result<String, SdpError> {
        if validate_ticket_id(note_id).is_err() {
            return Err(SdpError::Unexpected(
                "a note id that is not a number".into(),
            ));
        }
        let v = self
            .get(&["requests", ticket_id, "notes", note_id], None)
            .await?;
        let note = v.get("note").or_else(|| v.get("request_note"));
        Ok(note
            .and_then(|n| n.get("description"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    async fn add_note_attempt(
        &self,
        ticket_id: &str,
        description: &str,
    ) -> Result<NoteId, SdpError> {
        let key = self.auth.note_key();
        let input = json!({ key: {
            "description": description,
            "show_to_requester": false,
            "mark_first_response": false,
            "add_to_linked_requests": false,
        }});
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("input_data", &input.to_string())
            .finish();
        let uri = self.uri(&["requests", ticket_id, "notes"], None)?;
        let req = self.request(Method::POST, uri, Some(form))?;
        let (_, v): (_, Value) = self.http.json(req, self.limits).await?;
        let note = v.get("note").or_else(|| v.get("request_note"));
        note.and_then(|n| n.get("id"))
            .and_then(id_of)
            .map(NoteId)
            .ok_or_else(|| SdpError::Unexpected("the created note has no id".into()))
    }

    async fn get(&self, segments: &[&str], input: Option<&Value>) -> Result<Value, SdpError> {
        let uri = self.uri(segments, input)?;
        let req = self.request(Method::GET, uri, None)?;
        let (_, v) = self.http.json(req, self.limits).await?;
        Ok(v)
    }

    fn uri(&self, segments: &[&str], input: Option<&Value>) -> Result<http::Uri, SdpError> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| SdpError::Config("the base URL cannot have a path".into()))?;
            path.pop_if_empty().extend(["api", "v3"]).extend(segments);
        }
        if let Some(input) = input {
            url.query_pairs_mut()
                .append_pair("input_data", &input.to_string());
        }
        url.as_str()
            .parse()
            .map_err(|_| SdpError::Config("the base URL is not a valid URI".into()))
    }

    fn request(
        &self,
        method: Method,
        uri: http::Uri,
        form: Option<String>,
    ) -> Result<http::Request<Bytes>, SdpError> {
        let (name, value) = match &*self.auth {
            SdpAuth::AuthToken(key) => ("authtoken", key.expose_secret().to_owned()),
            SdpAuth::ZohoOAuth(token) => (
                AUTHORIZATION.as_str(),
                format!("Zoho-oauthtoken {}", token.expose_secret()),
            ),
        };
        // The message never quotes the value.
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            SdpError::Config("the API key contains characters a header cannot carry".into())
        })?;
        value.set_sensitive(true);
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(ACCEPT, V3_MEDIA_TYPE)
            .header(name, value);
        let body = match form {
            Some(form) => {
                builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                Bytes::from(form)
            }
            None => Bytes::new(),
        };
        builder
            .body(body)
            .map_err(|e| SdpError::Config(format!("cannot build the request: {e}")))
    }

    async fn retrying<T, F, Fut>(
        &self,
        operation: &'static str,
        ticket_id: &str,
        call: F,
    ) -> Result<T, SdpError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdpError>>,
    {
        self.retry
            .run(ToolType::ServicedeskPlus, operation, ticket_id, call)
            .await
    }
}

fn parse_base_url(base_url: &str) -> Result<Url, SdpError> {
    let shown = || csp_redact::url(base_url);
    let url = Url::parse(base_url.trim())
        .map_err(|e| SdpError::Config(format!("servicedesk_url {}: {e}", shown())))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SdpError::Config(format!(
            "servicedesk_url {} must be an http or https URL",
            shown()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(SdpError::Config(format!(
            "servicedesk_url {} has no host",
            shown()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SdpError::Config(
            "servicedesk_url must not carry credentials; use the API key".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SdpError::Config(format!(
            "servicedesk_url {} must not have a query or fragment",
            shown()
        )));
    }
    Ok(url)
}

/// `status.name is Resolved/Closed AND (resolved_time between OR completed_time between)`,
/// in the v3 nesting: children join their parent with their `logical_operator`.
fn resolved_criteria(from: OffsetDateTime, to: OffsetDateTime) -> Value {
    let range = json!([millis(from).to_string(), millis(to).to_string()]);
    json!([
        {"field": "status.name", "condition": "is", "values": RESOLVED_STATUSES},
        {"field": "resolved_time", "condition": "between", "values": range, "logical_operator": "and",
         "children": [
            {"field": "completed_time", "condition": "between", "values": range, "logical_operator": "or"}
         ]},
    ])
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, SdpError> {
    v.get(key)
        .ok_or_else(|| SdpError::Unexpected(format!("the answer has no `{key}`")))
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Ids come as strings of digits, sometimes as numbers.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

/// `{"name": "High", ...}` or, from some versions, `"High"`.
fn name_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
    .filter(|s| !s.trim().is_empty())
}

/// `{"value": "1738315800000", "display_value": "..."}`, milliseconds.
fn time_of(v: Option<&Value>) -> Option<OffsetDateTime> {
    let v = v?;
    let ms = match v {
        Value::Object(o) => o.get("value").and_then(as_u64)?,
        other => as_u64(other)?,
    };
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn ticket_from(v: &Value) -> Result<Ticket, SdpError> {
    let ticket_id = v
        .get("id")
        .and_then(id_of)
        .ok_or_else(|| SdpError::Unexpected("a request without an id".into()))?;
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(html_to_text);
    let description = text("description")
        .filter(|d| !d.trim().is_empty())
        .or_else(|| text("short_description"))
        .unwrap_or_default();
    let mut tags: Vec<String> = Vec::new();
    for key in ["category", "subcategory", "item"] {
        if let Some(name) = name_of(v.get(key))
            && !tags.contains(&name)
        {
            tags.push(name);
        }
    }
    Ok(Ticket {
        ticket_id,
        subject: text("subject").unwrap_or_default(),
        description,
        priority: name_of(v.get("priority")),
        status: name_of(v.get("status")),
        created_at: time_of(v.get("created_time")),
        resolved_at: time_of(v.get("resolved_time")).or_else(|| time_of(v.get("completed_time"))),
        resolution: v
            .get("resolution")
            .and_then(|r| r.get("content"))
            .and_then(Value::as_str)
            .map(html_to_text)
            .filter(|s| !s.trim().is_empty()),
        tags,
    })
}

// ------------------------------------------------------------ the connector

/// ServiceDesk Plus behind the [`Connector`] interface: csp's own webhook
/// scheme ([`crate::webhook`]: `X-ServiceDesk-Signature` over timestamp and
/// body, sent by the custom function of `docs/ticket-enhancement.md`) and
/// [`SdpClient`].
pub struct ServiceDeskPlus;

/// Tenant fields of a ServiceDesk Plus tenant.
pub const FIELDS: &[Field] = &[
    Field {
        name: "servicedesk_url",
        label: "ServiceDesk Plus URL",
        required: true,
        secret: false,
        kind: FieldKind::Url,
    },
    Field {
        name: "servicedesk_auth",
        label: "Authentication",
        required: false,
        secret: false,
        kind: FieldKind::Choice(&["authtoken", "zoho_oauth"]),
    },
    Field {
        name: "api_key",
        label: "API key (on premises) or Zoho OAuth token (cloud)",
        required: true,
        secret: true,
        kind: FieldKind::Credential,
    },
];

impl Connector for ServiceDeskPlus {
    fn tool_type(&self) -> ToolType {
        ToolType::ServicedeskPlus
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn verify(
        &self,
        secrets: &[&[u8]],
        delivery: &Delivery<'_>,
    ) -> Result<Verified, SignatureError> {
        crate::webhook::verify_signature(
            secrets,
            delivery.header(crate::webhook::TIMESTAMP_HEADER),
            delivery.header(crate::webhook::SIGNATURE_HEADER),
            delivery.body,
            delivery.now,
        )?;
        // No delivery id: a repeated delivery is recognised by its signature.
        Ok(Verified::default())
    }

    fn parse(&self, route: Route, body: &[u8]) -> Result<Event, ValidationError> {
        Ok(match route {
            Route::New => Event::NewTicket(NewTicket::parse(body)?),
            Route::Resolved => Event::Resolved(ResolvedTicketEvent::parse(body)?),
        })
    }

    fn client(
        &self,
        http: HttpClient,
        settings: &Settings,
        options: ClientOptions,
    ) -> Result<Box<dyn TicketingClient>, SettingsError> {
        self.check(settings)?;
        let key = settings
            .secret("api_key")
            .cloned()
            .ok_or_else(|| SettingsError::new("api_key", "api_key is required"))?;
        let auth = match settings.value("servicedesk_auth") {
            Some("zoho_oauth") => SdpAuth::ZohoOAuth(key),
            _ => SdpAuth::AuthToken(key),
        };
        let url = settings.value("servicedesk_url").unwrap_or_default();
        let client = SdpClient::new(http, url, auth)
            .map_err(|e| SettingsError::new("servicedesk_url", e.to_string()))?
            .with_retry(options.retry)
            .with_limits(options.limits);
        Ok(Box::new(client))
    }
}

impl crate::connector::Retryable for SdpError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
}

impl From<SdpError> for ApiError {
    fn from(e: SdpError) -> Self {
        let tool = ToolType::ServicedeskPlus;
        match e {
            SdpError::Config(message) => ApiError::Config { tool, message },
            SdpError::InvalidTicketId(e) => ApiError::InvalidTicketId(e),
            SdpError::Http(source) => ApiError::Http { tool, source },
            SdpError::Unexpected(message) => ApiError::Unexpected { tool, message },
        }
    }
}

impl From<ConnectionError> for TestFailure {
    fn from(e: ConnectionError) -> Self {
        let kind = match e {
            ConnectionError::Unreachable => FailureKind::Unreachable,
            ConnectionError::Tls => FailureKind::Tls,
            ConnectionError::CredentialsRejected => FailureKind::CredentialsRejected,
            ConnectionError::NotFound => FailureKind::NotFound,
            ConnectionError::Other(_) => FailureKind::Other,
        };
        TestFailure {
            kind,
            reason: e.to_string(),
        }
    }
}

impl TicketingClient for SdpClient {
    fn tool_type(&self) -> ToolType {
        ToolType::ServicedeskPlus
    }

    fn get_ticket<'a>(&'a self, ticket_id: &'a str) -> BoxFuture<'a, Result<Ticket, ApiError>> {
        Box::pin(async move { Ok(self.get_request(ticket_id).await?) })
    }

    fn post_note_once<'a>(
        &'a self,
        ticket_id: &'a str,
        marker: &'a JobMarker,
        body: &'a str,
        format: NoteFormat,
    ) -> BoxFuture<'a, Result<PostedNote, ApiError>> {
        Box::pin(async move {
            Ok(SdpClient::post_note_once(self, ticket_id, marker, body, format).await?)
        })
    }

    fn list_resolved<'a>(
        &'a self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page, ApiError>> {
        Box::pin(async move {
            // The cursor is the next page's `start_index`.
            let start_index = match cursor {
                None => 1,
                Some(c) => c.parse().map_err(|_| ApiError::Config {
                    tool: ToolType::ServicedeskPlus,
                    message: format!("not a page cursor: {c:?}"),
                })?,
            };
            let page = SdpClient::list_resolved(self, from, to, start_index).await?;
            let more = page.has_more_rows && page.next_start_index > start_index;
            Ok(Page {
                tickets: page.tickets,
                skipped: page.skipped,
                next: more.then(|| page.next_start_index.to_string()),
                total_count: page.total_count,
            })
        })
    }

    fn test_connection(&self) -> BoxFuture<'_, Result<(), TestFailure>> {
        Box::pin(async move { Ok(SdpClient::test_connection(self).await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_without_echoing_secrets() {
        for ok in [
            "https://sdp.acme.example",
            "http://10.0.0.2:8080/",
            "https://sdpondemand.manageengine.com/app/itdesk",
        ] {
            assert!(parse_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://sdp.example",
            "sdp.example",
            "https://u:hunter2@sdp.example",
            "https://sdp.example/?x=1",
            "",
        ] {
            let err = parse_base_url(bad).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn urls_put_input_data_in_the_query() {
        let client = SdpClient::new(
            HttpClient::new().unwrap(),
            "https://sdpondemand.manageengine.com/app/itdesk/",
            SdpAuth::ZohoOAuth(SecretString::from("t")),
        )
        .unwrap();
        let uri = client
            .uri(
                &["requests", "12"],
                Some(&json!({"list_info": {"row_count": 1}})),
            )
            .unwrap();
        assert_eq!(uri.path(), "/app/itdesk/api/v3/requests/12");
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            query,
            [(
                "input_data".to_owned(),
                r#"{"list_info":{"row_count":1}}"#.to_owned()
            )]
        );
    }

    #[test]
    fn the_debug_form_shows_no_credential() {
        let client = SdpClient::new(
            HttpClient::new().unwrap(),
            "https://sdp.example",
            SdpAuth::AuthToken(SecretString::from("AAAA-SECRET-KEY")),
        )
        .unwrap();
        let shown = format!(
            "{client:?} {:?}",
            SdpAuth::AuthToken(SecretString::from("AAAA-SECRET-KEY"))
        );
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn a_request_reads_loosely() {
        let t = ticket_from(&json!({
            "id": 42, "subject": "<b>VPN</b>", "description": "<div>drops &amp; reconnects</div>",
            "status": {"name": "Closed"}, "priority": "High",
            "created_time": {"value": "1738315800000", "display_value": "Jan 31, 2025"},
            "resolved_time": null, "completed_time": {"value": 1738400400000u64},
            "resolution": {"content": "<p>New cert</p>"},
            "category": {"name": "Network"}, "subcategory": {"name": "VPN"}, "item": null
        }))
        .unwrap();
        assert_eq!(t.ticket_id, "42");
        assert_eq!(t.subject, "VPN");
        assert_eq!(t.description, "drops & reconnects");
        assert_eq!(t.status.as_deref(), Some("Closed"));
        assert_eq!(t.priority.as_deref(), Some("High"));
        assert_eq!(t.created_at.unwrap().unix_timestamp(), 1_738_315_800);
        assert_eq!(t.resolved_at.unwrap().unix_timestamp(), 1_738_400_400);
        assert_eq!(t.resolution.as_deref(), Some("New cert"));
        assert_eq!(t.tags, ["Network", "VPN"]);
        assert!(ticket_from(&json!({"subject": "x"})).is_err());
    }

    #[test]
    fn the_resolved_criteria_nest_as_v3_expects() {
        let from = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let to = OffsetDateTime::from_unix_timestamp(1_700_086_400).unwrap();
        let c = resolved_criteria(from, to);
        assert_eq!(c[0]["values"], json!(["Resolved", "Closed"]));
        assert_eq!(c[1]["values"], json!(["1700000000000", "1700086400000"]));
        assert_eq!(c[1]["logical_operator"], "and");
        assert_eq!(c[1]["children"][0]["field"], "completed_time");
        assert_eq!(c[1]["children"][0]["logical_operator"], "or");
    }
}
