//! The Zendesk connector: webhooks signed by Zendesk, and the Support API v2
//! called with an agent's e-mail address and API token.
//!
//! Webhooks (Zendesk's "Verifying webhook authenticity"): every request
//! carries `X-Zendesk-Webhook-Signature-Timestamp` (ISO 8601, such as
//! `2021-07-25T10:00:00Z`) and `X-Zendesk-Webhook-Signature`, the base64 of
//! HMAC-SHA256 under the webhook's signing secret of the timestamp as sent
//! followed directly by the raw body ([`sign`], [`verify_signature`]). The
//! signing secret is used as the text Zendesk shows, not base64-decoded.
//! A delivery more than 300 s from our clock is refused, and
//! `X-Zendesk-Webhook-Invocation-Id` (the same on Zendesk's retries of one
//! invocation) is the delivery's id.
//!
//! Two kinds of body are understood ([`parse_delivery`]), on either route:
//! - Zendesk's event payloads (a webhook subscribed to Zendesk events):
//!   `zen:event-type:ticket.created` becomes a new ticket from its `detail`;
//!   `zen:event-type:ticket.status_changed` to `SOLVED` or `CLOSED` becomes a
//!   resolved ticket only if its `detail` carries a `description` and a
//!   `resolution`, which Zendesk's own events do not, so in practice it is
//!   ignored with a reason that says to use the trigger below; every other
//!   event is ignored with its type.
//! - A JSON body built by a trigger from Zendesk placeholders, in the shape
//!   of [`NewTicket::parse`] on `/webhook/zendesk/{tenant}`
//!   ([`NEW_TICKET_TEMPLATE`]) and of [`ResolvedTicketEvent::parse`] on
//!   `/webhook/zendesk/{tenant}/resolved` ([`RESOLVED_TICKET_TEMPLATE`], for a
//!   trigger on "Status changed to Solved"). `{{ticket.tags}}` renders the
//!   tags space-separated, so `tags` may be one string.
//!
//! A missing or empty priority is [`DEFAULT_PRIORITY`] (Zendesk's
//! `priority` is optional, and "normal" is its middle value); a priority is
//! written capitalised (`HIGH`, `high` → `High`). An event whose `subject`
//! is empty takes the first line of the description.
//!
//! API: `Authorization: Basic base64("{email}/token:{api_token}")`; tickets at
//! `GET /api/v2/tickets/{id}.json`; the note is a private comment, `PUT
//! /api/v2/tickets/{id}.json` with `{"ticket": {"comment": {"html_body" |
//! "body": ..., "public": false}}}`, after reading the comments (cursor
//! pages, `page[size]`, `meta.has_more`, `meta.after_cursor`) for the job's
//! marker; solved and closed tickets for the import from the Export Search
//! Results endpoint (`GET /api/v2/search/export.json`, `query=type:ticket
//! status>=solved updated>=… updated<=…`, `filter[type]=ticket`, cursor in
//! `meta.after_cursor`, which Zendesk keeps for an hour), each ticket's
//! resolution from one more call, its newest comments with their authors.
//!
//! Retries: [`RetryPolicy`] (3 attempts) on timeouts, failed connections and
//! 5xx, and on a 429 whose `Retry-After` is at most [`MAX_RETRY_AFTER`]
//! (waiting that long instead); any other 4xx is Zendesk's final word. The
//! credential never reaches a log or an error.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use csp_http::{HttpClient, HttpError, Limits};
use futures::StreamExt;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use url::Url;

use crate::connector::{
    ApiError, BoxFuture, ClientOptions, Connector, Delivery, Event, FailureKind, Field, FieldKind,
    Page, PostedNote, RetryPolicy, Route, Settings, SettingsError, Skipped, TestFailure,
    TicketingClient, ToolType, Verified, check_fields, post_once,
};
use crate::types::{JobMarker, NoteFormat, NoteId, ResolvedTicket, Ticket, validate_ticket_id};
use crate::webhook::{
    MAX_WEBHOOK_BODY_BYTES, NewTicket, ResolvedTicketEvent, SignatureError, TIMESTAMP_TOLERANCE,
    ValidationError,
};

/// Header names, lowercase as [`Delivery::headers`] keeps them.
pub const SIGNATURE_HEADER: &str = "x-zendesk-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-zendesk-webhook-signature-timestamp";
/// The same on Zendesk's retries of one invocation: the delivery id.
pub const INVOCATION_HEADER: &str = "x-zendesk-webhook-invocation-id";

/// Every Zendesk event type starts so.
pub const EVENT_TYPE_PREFIX: &str = "zen:event-type:";
pub const TICKET_CREATED: &str = "zen:event-type:ticket.created";
pub const TICKET_STATUS_CHANGED: &str = "zen:event-type:ticket.status_changed";

/// The priority of a ticket that has none.
pub const DEFAULT_PRIORITY: &str = "Normal";

/// The trigger body for `POST /webhook/zendesk/{tenant_id}` ("Ticket is
/// Created"), for accounts that use triggers rather than event webhooks.
pub const NEW_TICKET_TEMPLATE: &str = r#"{"ticket_id": "{{ticket.id}}", "subject": "{{ticket.title}}", "description": "{{ticket.description}}", "priority": "{{ticket.priority}}", "created_at": "{{ticket.created_at_with_timestamp}}"}"#;

/// The trigger body for `POST /webhook/zendesk/{tenant_id}/resolved`
/// ("Status changed to Solved"). The latest public comment is the reply
/// that solved it; csp's own notes are private and never in it.
pub const RESOLVED_TICKET_TEMPLATE: &str = r#"{"ticket_id": "{{ticket.id}}", "description": "{{ticket.description}}", "resolution": "{{ticket.latest_public_comment}}", "resolved_date": "{{ticket.updated_at_with_timestamp}}", "tags": "{{ticket.tags}}"}"#;

/// Tickets per page of [`ZendeskClient::list_resolved`] (Zendesk recommends
/// 100 for the export).
pub const PAGE_SIZE: u32 = 100;
/// Comments per page (the API's maximum).
pub const COMMENT_PAGE_SIZE: u32 = 100;
/// The statuses whose tickets count as resolved (`status>=solved`).
pub const RESOLVED_STATUSES: [&str; 2] = ["solved", "closed"];
/// The longest `Retry-After` of a 429 that is waited out; a longer one fails the call.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How many pages of a ticket's comments are read before giving up (5,000 comments).
const MAX_COMMENT_PAGES: u32 = 50;
/// Tickets of one page whose comments are read at the same time.
const DETAIL_CONCURRENCY: usize = 8;
/// What every csp note carries ([`JobMarker::token`]'s prefix): such a
/// comment is never taken for a ticket's resolution.
const CSP_NOTE_TOKEN: &str = "csp-job:";
/// The longest import cursor accepted back.
const MAX_CURSOR_LEN: usize = 4096;

const TOOL: ToolType = ToolType::Zendesk;

// ---------------------------------------------------------------- settings

pub const SUBDOMAIN_FIELD: &str = "zendesk_subdomain";
pub const EMAIL_FIELD: &str = "zendesk_email";
pub const API_TOKEN_FIELD: &str = "zendesk_api_token";
pub const URL_FIELD: &str = "zendesk_url";

/// A tenant's Zendesk settings.
pub const FIELDS: &[Field] = &[
    Field {
        name: SUBDOMAIN_FIELD,
        label: "Zendesk subdomain (acme for acme.zendesk.com)",
        required: true,
        secret: false,
        kind: FieldKind::Text,
    },
    Field {
        name: EMAIL_FIELD,
        label: "E-mail address of the agent the API token belongs to",
        required: true,
        secret: false,
        kind: FieldKind::Email,
    },
    Field {
        name: API_TOKEN_FIELD,
        label: "Zendesk API token",
        required: true,
        secret: true,
        kind: FieldKind::Credential,
    },
    Field {
        name: URL_FIELD,
        label: "API base URL (default https://<subdomain>.zendesk.com)",
        required: false,
        secret: false,
        kind: FieldKind::Url,
    },
];

/// `[a-z0-9][a-z0-9-]{0,62}`, a Zendesk subdomain.
pub fn is_subdomain(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

// ---------------------------------------------------------------- connector

/// The Zendesk connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Zendesk;

impl Connector for Zendesk {
    fn tool_type(&self) -> ToolType {
        TOOL
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn verify(
        &self,
        secrets: &[&[u8]],
        delivery: &Delivery<'_>,
    ) -> Result<Verified, SignatureError> {
        verify_signature(
            secrets,
            delivery.header(TIMESTAMP_HEADER),
            delivery.header(SIGNATURE_HEADER),
            delivery.body,
            delivery.now,
        )?;
        Ok(Verified {
            delivery_id: delivery.header(INVOCATION_HEADER).and_then(invocation_id),
        })
    }

    fn parse(&self, route: Route, body: &[u8]) -> Result<Event, ValidationError> {
        parse_delivery(route, body)
    }

    fn check(&self, settings: &Settings) -> Result<(), SettingsError> {
        check_fields(FIELDS, settings)?;
        let subdomain = settings.value(SUBDOMAIN_FIELD).unwrap_or_default();
        if !is_subdomain(subdomain) {
            return Err(SettingsError::new(
                SUBDOMAIN_FIELD,
                "zendesk_subdomain must match [a-z0-9][a-z0-9-]{0,62} (acme for acme.zendesk.com)",
            ));
        }
        Ok(())
    }

    fn client(
        &self,
        http: HttpClient,
        settings: &Settings,
        options: ClientOptions,
    ) -> Result<Box<dyn TicketingClient>, SettingsError> {
        Ok(Box::new(
            ZendeskClient::from_settings(http, settings)?
                .with_retry(options.retry)
                .with_limits(options.limits),
        ))
    }
}

/// At most 128 printable ASCII characters, or no id.
fn invocation_id(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| v.to_owned())
}

// -------------------------------------------------------------- signatures

/// `X-Zendesk-Webhook-Signature` for `body` sent at `timestamp` (the
/// header's text) under `secret`: base64 of HMAC-SHA256 of timestamp + body.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    BASE64.encode(csp_auth::hmac_sha256(
        secret,
        &signed_message(timestamp, body),
    ))
}

/// Checks a delivery against each of `secrets` (the tenant's current one
/// and, during a rotation, the previous one), every one of them tried, the
/// decoded signature compared in constant time. The timestamp is ISO 8601
/// (RFC 3339) as Zendesk sends it, or unix seconds; a stale one is refused
/// before anything is computed.
pub fn verify_signature(
    secrets: &[&[u8]],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    let (Some(ts), Some(sig)) = (
        timestamp_header.map(str::trim).filter(|s| !s.is_empty()),
        signature_header.map(str::trim).filter(|s| !s.is_empty()),
    ) else {
        return Err(SignatureError::Missing);
    };
    let timestamp = timestamp_secs(ts).ok_or(SignatureError::Malformed)?;
    // 44 characters of base64 for 32 bytes; anything longer is not ours.
    if sig.len() > 64 {
        return Err(SignatureError::Malformed);
    }
    let presented = BASE64
        .decode(sig)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or(SignatureError::Malformed)?;
    let skew_secs = unix_secs(now).saturating_sub(timestamp);
    if skew_secs.unsigned_abs() > TIMESTAMP_TOLERANCE.as_secs() {
        return Err(SignatureError::Stale { skew_secs });
    }
    let message = signed_message(ts, body);
    let mut matched = false;
    for secret in secrets {
        let expected = csp_auth::hmac_sha256(secret, &message);
        // `|` rather than `||`: no early exit.
        matched |= csp_auth::constant_time_eq(&expected, &presented);
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(timestamp.len() + body.len());
    msg.extend_from_slice(timestamp.as_bytes());
    msg.extend_from_slice(body);
    msg
}

/// RFC 3339 (`2021-07-25T10:00:00Z`) or up to 12 digits of unix seconds.
fn timestamp_secs(ts: &str) -> Option<i64> {
    if ts.len() > 64 {
        return None;
    }
    if ts.bytes().all(|b| b.is_ascii_digit()) {
        return (ts.len() <= 12).then(|| ts.parse().ok()).flatten();
    }
    OffsetDateTime::parse(ts, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

// ---------------------------------------------------------------- payloads

/// What a verified delivery's body says (see the module docs): Zendesk's
/// event payloads by their `type` on either route, otherwise a trigger's
/// body in the shape of the route.
pub fn parse_delivery(route: Route, body: &[u8]) -> Result<Event, ValidationError> {
    if body.len() > MAX_WEBHOOK_BODY_BYTES {
        return Err(ValidationError::TooLarge);
    }
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return Err(ValidationError::NotJson);
    };
    match obj.get("type").and_then(Value::as_str) {
        Some(t) if t.starts_with(EVENT_TYPE_PREFIX) => parse_event(t, &obj),
        _ => match route {
            Route::New => new_from_trigger(obj).map(Event::NewTicket),
            Route::Resolved => resolved_from_trigger(obj).map(Event::Resolved),
        },
    }
}

fn parse_event(event_type: &str, obj: &Map<String, Value>) -> Result<Event, ValidationError> {
    match event_type {
        TICKET_CREATED => new_from_event(obj).map(Event::NewTicket),
        TICKET_STATUS_CHANGED => status_changed(obj),
        other => Ok(Event::Ignored(format!(
            "Zendesk event {} is not one csp acts on",
            shown(other)
        ))),
    }
}

fn new_from_trigger(mut obj: Map<String, Value>) -> Result<NewTicket, ValidationError> {
    let priority = normal_priority(obj.get("priority"));
    obj.insert("priority".into(), priority);
    NewTicket::parse(&to_body(obj))
}

fn resolved_from_trigger(
    mut obj: Map<String, Value>,
) -> Result<ResolvedTicketEvent, ValidationError> {
    // `{{ticket.tags}}` renders as "vpn network".
    if let Some(Value::String(tags)) = obj.get("tags") {
        let list: Vec<Value> = tags.split_whitespace().map(|t| json!(t)).collect();
        obj.insert("tags".into(), Value::Array(list));
    }
    ResolvedTicketEvent::parse(&to_body(obj))
}

fn new_from_event(obj: &Map<String, Value>) -> Result<NewTicket, ValidationError> {
    let detail = detail(obj)?;
    let description = detail.get("description").cloned().unwrap_or(Value::Null);
    let subject = match detail.get("subject") {
        Some(Value::String(s)) if !s.trim().is_empty() => json!(s),
        None | Some(Value::Null) | Some(Value::String(_)) => description
            .as_str()
            .and_then(first_line)
            .map_or(Value::Null, |s| json!(s)),
        Some(other) => other.clone(),
    };
    let mut ticket = Map::new();
    ticket.insert(
        "ticket_id".into(),
        detail.get("id").cloned().unwrap_or(Value::Null),
    );
    ticket.insert("subject".into(), subject);
    ticket.insert("description".into(), description);
    ticket.insert("priority".into(), normal_priority(detail.get("priority")));
    if let Some(created) = detail.get("created_at") {
        ticket.insert("created_at".into(), created.clone());
    }
    NewTicket::parse(&to_body(ticket)).map_err(in_event)
}

fn status_changed(obj: &Map<String, Value>) -> Result<Event, ValidationError> {
    const CURRENT: &str = "event.current";
    let current = match obj.get("event").and_then(|e| e.get("current")) {
        None | Some(Value::Null) => return Err(ValidationError::Missing { field: CURRENT }),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => {
            return Err(ValidationError::WrongType {
                field: CURRENT,
                expected: "a string",
            });
        }
    };
    let detail = detail(obj)?;
    let id = detail
        .get("id")
        .map(|v| match v {
            Value::String(s) => shown(s),
            other => shown(&other.to_string()),
        })
        .unwrap_or_default();
    if !RESOLVED_STATUSES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&current))
    {
        return Ok(Event::Ignored(format!(
            "Zendesk ticket {id} changed status to {}; csp acts on solved and closed tickets",
            shown(&current)
        )));
    }
    let has = |key: &str| {
        detail
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    };
    if !has("description") || !has("resolution") {
        return Ok(Event::Ignored(format!(
            "Zendesk ticket {id} is {}, but the event carries no description and resolution; \
             connect a trigger with the resolved-ticket template to /resolved",
            current.to_ascii_lowercase()
        )));
    }
    let mut ticket = Map::new();
    for (to, from) in [
        ("ticket_id", "id"),
        ("description", "description"),
        ("resolution", "resolution"),
        ("tags", "tags"),
    ] {
        if let Some(v) = detail.get(from) {
            ticket.insert(to.into(), v.clone());
        }
    }
    let when = obj
        .get("time")
        .or_else(|| detail.get("updated_at"))
        .cloned()
        .unwrap_or(Value::Null);
    ticket.insert("resolved_date".into(), when);
    ResolvedTicketEvent::parse(&to_body(ticket))
        .map(Event::Resolved)
        .map_err(in_event)
}

fn detail(obj: &Map<String, Value>) -> Result<&Map<String, Value>, ValidationError> {
    match obj.get("detail") {
        None | Some(Value::Null) => Err(ValidationError::Missing { field: "detail" }),
        Some(Value::Object(d)) => Ok(d),
        Some(_) => Err(ValidationError::WrongType {
            field: "detail",
            expected: "an object",
        }),
    }
}

/// Names a field of Zendesk's event as it is in the event.
fn in_event(e: ValidationError) -> ValidationError {
    fn rename(field: &'static str) -> &'static str {
        match field {
            "ticket_id" => "detail.id",
            "subject" => "detail.subject",
            "description" => "detail.description",
            "priority" => "detail.priority",
            "created_at" => "detail.created_at",
            "resolution" => "detail.resolution",
            "tags" => "detail.tags",
            "resolved_date" => "time",
            other => other,
        }
    }
    match e {
        ValidationError::Missing { field } => ValidationError::Missing {
            field: rename(field),
        },
        ValidationError::Empty { field } => ValidationError::Empty {
            field: rename(field),
        },
        ValidationError::WrongType { field, expected } => ValidationError::WrongType {
            field: rename(field),
            expected,
        },
        ValidationError::TooLong { field, max } => ValidationError::TooLong {
            field: rename(field),
            max,
        },
        ValidationError::Invalid { field, reason } => ValidationError::Invalid {
            field: rename(field),
            reason,
        },
        other @ (ValidationError::TooLarge | ValidationError::NotJson) => other,
    }
}

/// A priority capitalised, [`DEFAULT_PRIORITY`] for none (`null`, `""`, or
/// the `-` a trigger renders for an unset one); anything not a string is
/// left for the validation to name.
fn normal_priority(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => json!(DEFAULT_PRIORITY),
        Some(Value::String(s)) => json!(capitalised(s).unwrap_or_else(|| DEFAULT_PRIORITY.into())),
        Some(other) => other.clone(),
    }
}

/// `HIGH`, `high` → `High`; `None` for an empty or `-` value.
fn capitalised(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s == "-" {
        return None;
    }
    let mut chars = s.chars();
    let first = chars.next()?;
    Some(
        first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
    )
}

/// The first non-empty line, at most 80 characters: a subject for a ticket without one.
fn first_line(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(80).collect())
}

fn to_body(obj: Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(&Value::Object(obj)).unwrap_or_default()
}

/// At most 64 characters of untrusted text, without control characters.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

// -------------------------------------------------------------- API client

/// The agent whose API token csp uses.
#[derive(Clone)]
pub struct ZendeskAuth {
    pub email: String,
    pub api_token: SecretString,
}

impl std::fmt::Debug for ZendeskAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZendeskAuth").finish_non_exhaustive()
    }
}

/// A comment on a ticket, as Zendesk returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: NoteId,
    pub author_id: Option<u64>,
    /// The comment as text (Zendesk's `body`).
    pub body: String,
    pub html_body: Option<String>,
    pub plain_body: Option<String>,
    pub public: Option<bool>,
    pub created_at: Option<OffsetDateTime>,
}

impl Comment {
    /// Whether any rendering of the comment carries `marker`.
    pub fn carries(&self, marker: &JobMarker) -> bool {
        marker.found_in(&self.body)
            || self
                .html_body
                .as_deref()
                .is_some_and(|h| marker.found_in(h))
            || self
                .plain_body
                .as_deref()
                .is_some_and(|p| marker.found_in(p))
    }

    /// Its plain text: `plain_body`, else `body`.
    pub fn text(&self) -> &str {
        self.plain_body
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or(&self.body)
    }

    fn is_csp_note(&self) -> bool {
        [
            Some(self.body.as_str()),
            self.html_body.as_deref(),
            self.plain_body.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|t| t.contains(CSP_NOTE_TOKEN))
    }
}

/// A failed attempt, and how long Zendesk asked us to wait (a 429's
/// `Retry-After`, when short enough to honour).
struct Failure {
    error: ApiError,
    retry_after: Option<Duration>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl crate::connector::Retryable for Failure {
    /// A 429 with a `Retry-After` the client will wait is worth another
    /// attempt too.
    fn retryable(&self) -> bool {
        self.error.is_retryable() || self.retry_after.is_some()
    }

    fn wait(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

impl From<crate::types::InvalidTicketId> for Failure {
    fn from(e: crate::types::InvalidTicketId) -> Self {
        ApiError::from(e).into()
    }
}

/// A client for one Zendesk account. Cloning is cheap.
#[derive(Clone)]
pub struct ZendeskClient {
    http: HttpClient,
    base: Url,
    subdomain: String,
    auth: Arc<ZendeskAuth>,
    retry: RetryPolicy,
    limits: Limits,
}

impl std::fmt::Debug for ZendeskClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZendeskClient")
            .field("base", &csp_redact::url(self.base.as_str()))
            .field("subdomain", &self.subdomain)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ZendeskClient {
    /// A client for `subdomain`'s account, at `base_url` when given (a
    /// proxy, a test server) or else `https://{subdomain}.zendesk.com`;
    /// `/api/v2/...` is appended.
    pub fn new(
        http: HttpClient,
        subdomain: &str,
        base_url: Option<&str>,
        auth: ZendeskAuth,
    ) -> Result<Self, ApiError> {
        if !is_subdomain(subdomain) {
            return Err(config(format!(
                "zendesk_subdomain '{}' must match [a-z0-9][a-z0-9-]{{0,62}}",
                shown(subdomain)
            )));
        }
        let base = match base_url {
            Some(u) => parse_base_url(u)?,
            None => parse_base_url(&format!("https://{subdomain}.zendesk.com"))?,
        };
        Ok(Self {
            http,
            base,
            subdomain: subdomain.to_owned(),
            auth: Arc::new(auth),
            retry: RetryPolicy::default(),
            limits: Limits::default(),
        })
    }

    /// A client from a tenant's settings ([`FIELDS`]), checked first.
    pub fn from_settings(http: HttpClient, settings: &Settings) -> Result<Self, SettingsError> {
        Zendesk.check(settings)?;
        let subdomain = settings.value(SUBDOMAIN_FIELD).unwrap_or_default();
        let email = settings.value(EMAIL_FIELD).unwrap_or_default().to_owned();
        let api_token = settings
            .secret(API_TOKEN_FIELD)
            .cloned()
            .ok_or_else(|| SettingsError::new(API_TOKEN_FIELD, "zendesk_api_token is required"))?;
        Self::new(
            http,
            subdomain,
            settings.value(URL_FIELD),
            ZendeskAuth { email, api_token },
        )
        .map_err(|e| SettingsError::new(URL_FIELD, e.to_string()))
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

    pub fn subdomain(&self) -> &str {
        &self.subdomain
    }

    /// `GET /api/v2/tickets/{id}.json`.
    pub async fn get_ticket(&self, ticket_id: &str) -> Result<Ticket, ApiError> {
        validate_ticket_id(ticket_id)?;
        let file = format!("{ticket_id}.json");
        let file = file.as_str();
        self.retrying("get_ticket", ticket_id, move || async move {
            let v = self
                .call(Method::GET, &["tickets", file], &[], None)
                .await?;
            Ok(ticket_from(field(&v, "ticket")?)?)
        })
        .await
    }

    /// `GET /api/v2/tickets/{id}/comments.json`, every page, oldest first.
    pub async fn list_comments(&self, ticket_id: &str) -> Result<Vec<Comment>, ApiError> {
        validate_ticket_id(ticket_id)?;
        self.retrying("list_comments", ticket_id, move || {
            self.comments_attempt(ticket_id)
        })
        .await
    }

    /// `PUT /api/v2/tickets/{id}.json` with a private comment (`html_body`
    /// for HTML, `body` for Markdown); the new comment's id.
    ///
    /// Retried like every call, so a timeout after Zendesk stored the
    /// comment can leave two; [`ZendeskClient::post_note_once`] cannot.
    pub async fn add_private_comment(
        &self,
        ticket_id: &str,
        content: &str,
        format: NoteFormat,
    ) -> Result<NoteId, ApiError> {
        validate_ticket_id(ticket_id)?;
        self.retrying("add_comment", ticket_id, move || {
            self.add_comment_attempt(ticket_id, content, format)
        })
        .await
    }

    /// Posts `body` with `marker`'s footer as a private comment unless a
    /// comment of the ticket already carries the marker (in `body`,
    /// `html_body` or `plain_body`), whose id is returned instead. Each
    /// attempt reads the comments again before posting, so neither a retry
    /// nor a redelivered job posts twice once a comment has been stored.
    pub async fn post_note_once(
        &self,
        ticket_id: &str,
        marker: &JobMarker,
        body: &str,
        format: NoteFormat,
    ) -> Result<PostedNote, ApiError> {
        validate_ticket_id(ticket_id)?;
        let content = marker.apply(body, format);
        let content = content.as_str();
        post_once(
            &self.retry,
            TOOL,
            ticket_id,
            marker,
            || async {
                let comments = self.comments_attempt(ticket_id).await?;
                Ok(comments
                    .into_iter()
                    .find(|c| c.carries(marker))
                    .map(|c| c.id))
            },
            || self.add_comment_attempt(ticket_id, content, format),
        )
        .await
        .map_err(|f: Failure| f.error)
    }

    /// One page (up to [`PAGE_SIZE`]) of solved and closed tickets updated
    /// between `from` and `to`, from `cursor` (`None`: the first page; then
    /// [`Page::next`], valid for an hour). A ticket's `description` is its
    /// description; its resolution is its newest comment by an agent (csp's
    /// own notes and the description left out), else its newest other
    /// comment, read with one call per ticket; its resolved date is its last
    /// update (Zendesk's ticket has no solve time; for a solved ticket the
    /// last update is usually the solving one, for a closed one its
    /// closing). A ticket without description or resolution, or whose
    /// comments answer 4xx, is [`Skipped`].
    pub async fn list_resolved(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<&str>,
    ) -> Result<Page, ApiError> {
        if let Some(c) = cursor
            && (c.is_empty()
                || c.len() > MAX_CURSOR_LEN
                || !c.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(config("the import cursor is not one Zendesk gave".into()));
        }
        let query = resolved_query(from, to);
        let size = PAGE_SIZE.to_string();
        let mut params = vec![
            ("query", query.as_str()),
            ("filter[type]", "ticket"),
            ("page[size]", size.as_str()),
        ];
        if let Some(c) = cursor {
            params.push(("page[after]", c));
        }
        let params = params.as_slice();
        let v = self
            .retrying("list_resolved", "-", move || async move {
                self.call(Method::GET, &["search", "export.json"], params, None)
                    .await
            })
            .await?;
        let rows = v
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let meta = v.get("meta");
        let has_more = meta
            .and_then(|m| m.get("has_more"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let next = if has_more && !rows.is_empty() {
            let after = meta
                .and_then(|m| m.get("after_cursor"))
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| unexpected("the export has more results but no after_cursor"))?;
            Some(after.to_owned())
        } else {
            None
        };

        // Collected first: a stream over a borrowing closure is not `Send`
        // enough for the boxed future of `TicketingClient`.
        let details: Vec<_> = rows.iter().map(|row| self.resolved_from(row)).collect();
        let outcomes: Vec<Result<Result<ResolvedTicket, Skipped>, ApiError>> =
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
        Ok(Page {
            tickets,
            skipped,
            next,
            total_count: None,
        })
    }

    /// Can csp read tickets with these settings? `GET /api/v2/users/me.json`,
    /// once: Zendesk answers an anonymous user (or 401) for credentials it
    /// does not take.
    pub async fn test_connection(&self) -> Result<(), TestFailure> {
        let fail = |kind: FailureKind, reason: String| {
            tracing::warn!(operation = "test_connection", reason = %reason, "Zendesk connection test failed");
            Err(TestFailure { kind, reason })
        };
        let rejected = "Zendesk rejected the e-mail or API token";
        match self.call(Method::GET, &["users", "me.json"], &[], None).await {
            Ok(v) => {
                let user = v.get("user");
                let id = user.and_then(|u| u.get("id")).filter(|id| !id.is_null());
                let role = user.and_then(|u| u.get("role")).and_then(Value::as_str);
                match (user, id, role) {
                    (None, _, _) => fail(
                        FailureKind::Other,
                        "Zendesk answered unexpectedly: no user in /api/v2/users/me.json".into(),
                    ),
                    (Some(_), None, _) => fail(FailureKind::CredentialsRejected, rejected.into()),
                    (Some(_), Some(_), Some("end-user")) => fail(
                        FailureKind::CredentialsRejected,
                        "the Zendesk user of this e-mail is an end user; csp needs an agent's or admin's API token".into(),
                    ),
                    _ => Ok(()),
                }
            }
            Err(f) => match f.error {
                ApiError::Http {
                    source: HttpError::Timeout | HttpError::Connect(_),
                    ..
                } => fail(
                    FailureKind::Unreachable,
                    "Zendesk could not be reached (check zendesk_subdomain, zendesk_url and the network)".into(),
                ),
                ApiError::Http {
                    source: HttpError::Tls(_),
                    ..
                } => fail(
                    FailureKind::Tls,
                    "the TLS connection to Zendesk failed (check zendesk_url's scheme and the server's certificate)".into(),
                ),
                ApiError::Http {
                    source: HttpError::Status { status, .. },
                    ..
                } if status == StatusCode::UNAUTHORIZED => {
                    fail(FailureKind::CredentialsRejected, rejected.into())
                }
                ApiError::Http {
                    source: HttpError::Status { status, .. },
                    ..
                } if status == StatusCode::FORBIDDEN => fail(
                    FailureKind::CredentialsRejected,
                    "Zendesk refused the API token (is token access turned on in the Admin Center?)".into(),
                ),
                ApiError::Http {
                    source: HttpError::Status { status, .. },
                    ..
                } if status == StatusCode::NOT_FOUND => fail(
                    FailureKind::NotFound,
                    format!("no Zendesk account '{}'", self.subdomain),
                ),
                other => fail(
                    FailureKind::Other,
                    format!("Zendesk answered unexpectedly: {other}"),
                ),
            },
        }
    }

    // ------------------------------------------------------------ internals

    async fn resolved_from(
        &self,
        row: &Value,
    ) -> Result<Result<ResolvedTicket, Skipped>, ApiError> {
        let Some(id) = row.get("id").and_then(id_of) else {
            return Ok(Err(Skipped {
                ticket_id: String::new(),
                reason: "a ticket without an id".into(),
            }));
        };
        let skip = |reason: String| {
            tracing::warn!(operation = "list_resolved", ticket_id = %id, reason = %reason, "skipping a resolved ticket");
            Ok(Err(Skipped {
                ticket_id: id.clone(),
                reason,
            }))
        };
        if validate_ticket_id(&id).is_err() {
            return skip("an id that is not a valid ticket id".into());
        }
        let ticket = match ticket_from(row) {
            Ok(t) => t,
            Err(e) => return skip(e.to_string()),
        };
        if !ticket
            .status
            .as_deref()
            .is_some_and(|s| RESOLVED_STATUSES.iter().any(|r| r.eq_ignore_ascii_case(s)))
        {
            return skip(format!(
                "status {} is not solved or closed",
                ticket.status.as_deref().unwrap_or("none")
            ));
        }
        if ticket.description.trim().is_empty() {
            return skip("no description".into());
        }
        let Some(resolved_date) = ticket.resolved_at else {
            return skip("no update time".into());
        };
        let resolution = match self.resolution_of(&id).await {
            Ok(Some(r)) => r,
            Ok(None) => return skip("no comment besides the description".into()),
            Err(e) if e.status().is_some_and(|s| s.is_client_error()) => {
                return skip(format!("its comments answered {e}"));
            }
            Err(e) => return Err(e),
        };
        Ok(Ok(ResolvedTicket {
            ticket_id: ticket.ticket_id,
            description: ticket.description,
            resolution,
            resolved_date,
            tags: ticket.tags,
        }))
    }

    /// The newest agent comment that is neither the description nor a csp
    /// note, else the newest such comment by anyone: one call.
    async fn resolution_of(&self, ticket_id: &str) -> Result<Option<String>, ApiError> {
        let size = COMMENT_PAGE_SIZE.to_string();
        let size = size.as_str();
        self.retrying("get_resolution", ticket_id, move || async move {
            let v = self
                .call(
                    Method::GET,
                    &["tickets", ticket_id, "comments.json"],
                    &[
                        ("sort", "-created_at"),
                        ("page[size]", size),
                        ("include", "users"),
                    ],
                    None,
                )
                .await?;
            let mut comments = comments_of(&v);
            let has_more = v
                .get("meta")
                .and_then(|m| m.get("has_more"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            // Newest first, whatever order the server kept.
            comments.sort_by_key(|c| std::cmp::Reverse((c.created_at, id_num(c))));
            if !has_more {
                // The oldest comment is the description.
                comments.pop();
            }
            let agents: Vec<u64> = v
                .get("users")
                .and_then(Value::as_array)
                .map(|users| {
                    users
                        .iter()
                        .filter(|u| {
                            matches!(
                                u.get("role").and_then(Value::as_str),
                                Some("agent" | "admin")
                            )
                        })
                        .filter_map(|u| u.get("id").and_then(Value::as_u64))
                        .collect()
                })
                .unwrap_or_default();
            let candidates: Vec<&Comment> = comments
                .iter()
                .filter(|c| !c.is_csp_note() && !c.text().trim().is_empty())
                .collect();
            let chosen = candidates
                .iter()
                .find(|c| c.author_id.is_some_and(|a| agents.contains(&a)))
                .or_else(|| candidates.first());
            Ok(chosen.map(|c| c.text().trim().to_owned()))
        })
        .await
    }

    async fn comments_attempt(&self, ticket_id: &str) -> Result<Vec<Comment>, Failure> {
        let size = COMMENT_PAGE_SIZE.to_string();
        let mut comments = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_COMMENT_PAGES {
            let mut params = vec![("page[size]", size.as_str())];
            if let Some(a) = &after {
                params.push(("page[after]", a.as_str()));
            }
            let v = self
                .call(
                    Method::GET,
                    &["tickets", ticket_id, "comments.json"],
                    &params,
                    None,
                )
                .await?;
            let page = comments_of(&v);
            let count = page.len();
            comments.extend(page);
            let meta = v.get("meta");
            let more = meta
                .and_then(|m| m.get("has_more"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !more || count == 0 {
                return Ok(comments);
            }
            after = Some(
                meta.and_then(|m| m.get("after_cursor"))
                    .and_then(Value::as_str)
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| unexpected("comments have more pages but no after_cursor"))?
                    .to_owned(),
            );
        }
        Err(unexpected(format!(
            "ticket {ticket_id} has more than {} comments",
            MAX_COMMENT_PAGES * COMMENT_PAGE_SIZE
        ))
        .into())
    }

    async fn add_comment_attempt(
        &self,
        ticket_id: &str,
        content: &str,
        format: NoteFormat,
    ) -> Result<NoteId, Failure> {
        let key = match format {
            NoteFormat::Html => "html_body",
            NoteFormat::Markdown => "body",
        };
        let body = json!({"ticket": {"comment": {key: content, "public": false}}});
        let file = format!("{ticket_id}.json");
        let v = self
            .call(Method::PUT, &["tickets", &file], &[], Some(&body))
            .await?;
        let events = v
            .get("audit")
            .and_then(|a| a.get("events"))
            .and_then(Value::as_array);
        events
            .into_iter()
            .flatten()
            .find(|e| e.get("type").and_then(Value::as_str) == Some("Comment"))
            .and_then(|e| e.get("id"))
            .and_then(id_of)
            .map(NoteId)
            .ok_or_else(|| unexpected("the update's audit has no comment").into())
    }

    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let uri = self.uri(segments, query)?;
        let req = self.request(method, uri, body)?;
        let resp = self.http.send(req, self.limits).await.map_err(http)?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = (status == StatusCode::TOO_MANY_REQUESTS)
                .then(|| retry_after(resp.headers()))
                .flatten();
            return Err(Failure {
                error: http(HttpError::from_status(status, resp.body())),
                retry_after,
            });
        }
        serde_json::from_slice(resp.body()).map_err(|e| {
            // serde_json quotes offending strings in its messages.
            http(HttpError::Decode(
                csp_redact::redact_text(&e.to_string()).into_owned(),
            ))
            .into()
        })
    }

    fn uri(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<http::Uri, ApiError> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| config("the base URL cannot have a path".into()))?;
            path.pop_if_empty().extend(["api", "v2"]).extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url.as_str()
            .parse()
            .map_err(|_| config("the base URL is not a valid URI".into()))
    }

    fn request(
        &self,
        method: Method,
        uri: http::Uri,
        body: Option<&Value>,
    ) -> Result<http::Request<Bytes>, ApiError> {
        let credential = format!(
            "{}/token:{}",
            self.auth.email,
            self.auth.api_token.expose_secret()
        );
        // The message never quotes the value.
        let mut auth = HeaderValue::from_str(&format!("Basic {}", BASE64.encode(credential)))
            .map_err(|_| config("the credential cannot be sent in a header".into()))?;
        auth.set_sensitive(true);
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, auth);
        let body = match body {
            Some(v) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        builder
            .body(body)
            .map_err(|e| config(format!("cannot build the request: {e}")))
    }

    async fn retrying<T, F, Fut>(
        &self,
        operation: &'static str,
        ticket_id: &str,
        call: F,
    ) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.retry
            .run(TOOL, operation, ticket_id, call)
            .await
            .map_err(|f| f.error)
    }
}

impl TicketingClient for ZendeskClient {
    fn tool_type(&self) -> ToolType {
        TOOL
    }

    fn get_ticket<'a>(&'a self, ticket_id: &'a str) -> BoxFuture<'a, Result<Ticket, ApiError>> {
        Box::pin(ZendeskClient::get_ticket(self, ticket_id))
    }

    fn post_note_once<'a>(
        &'a self,
        ticket_id: &'a str,
        marker: &'a JobMarker,
        body: &'a str,
        format: NoteFormat,
    ) -> BoxFuture<'a, Result<PostedNote, ApiError>> {
        Box::pin(ZendeskClient::post_note_once(
            self, ticket_id, marker, body, format,
        ))
    }

    fn list_resolved<'a>(
        &'a self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page, ApiError>> {
        Box::pin(ZendeskClient::list_resolved(self, from, to, cursor))
    }

    fn test_connection(&self) -> BoxFuture<'_, Result<(), TestFailure>> {
        Box::pin(ZendeskClient::test_connection(self))
    }
}

fn http(source: HttpError) -> ApiError {
    ApiError::Http { tool: TOOL, source }
}

fn unexpected(message: impl Into<String>) -> ApiError {
    ApiError::Unexpected {
        tool: TOOL,
        message: message.into(),
    }
}

fn config(message: String) -> ApiError {
    ApiError::Config {
        tool: TOOL,
        message,
    }
}

/// Whole seconds, honoured up to [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let wait = Duration::from_secs(secs);
    (wait <= MAX_RETRY_AFTER).then_some(wait)
}

fn parse_base_url(base_url: &str) -> Result<Url, ApiError> {
    let shown = || csp_redact::url(base_url);
    let url =
        Url::parse(base_url.trim()).map_err(|e| config(format!("zendesk_url {}: {e}", shown())))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config(format!(
            "zendesk_url {} must be an http or https URL",
            shown()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(config(format!("zendesk_url {} has no host", shown())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config(
            "zendesk_url must not carry credentials; use the API token".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config(format!(
            "zendesk_url {} must not have a query or fragment",
            shown()
        )));
    }
    Ok(url)
}

/// `type:ticket status>=solved updated>=FROM updated<=TO`, UTC to the second.
fn resolved_query(from: OffsetDateTime, to: OffsetDateTime) -> String {
    format!(
        "type:ticket status>=solved updated>={} updated<={}",
        utc_seconds(from),
        utc_seconds(to)
    )
}

fn utc_seconds(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, ApiError> {
    v.get(key)
        .ok_or_else(|| unexpected(format!("the answer has no `{key}`")))
}

/// Ids are numbers; strings of digits are taken too.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn id_num(c: &Comment) -> u64 {
    c.id.0.parse().unwrap_or(0)
}

fn time_of(v: Option<&Value>) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v?.as_str()?.trim(), &Rfc3339).ok()
}

fn comments_of(v: &Value) -> Vec<Comment> {
    v.get("comments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(comment_from)
        .collect()
}

fn comment_from(v: &Value) -> Option<Comment> {
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(Comment {
        id: NoteId(v.get("id").and_then(id_of)?),
        author_id: v.get("author_id").and_then(Value::as_u64),
        body: text("body").unwrap_or_default(),
        html_body: text("html_body"),
        plain_body: text("plain_body"),
        public: v.get("public").and_then(Value::as_bool),
        created_at: time_of(v.get("created_at")),
    })
}

fn ticket_from(v: &Value) -> Result<Ticket, ApiError> {
    let ticket_id = v
        .get("id")
        .and_then(id_of)
        .ok_or_else(|| unexpected("a ticket without an id"))?;
    let text = |key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let status = text("status");
    let resolved = status
        .as_deref()
        .is_some_and(|s| RESOLVED_STATUSES.iter().any(|r| r.eq_ignore_ascii_case(s)));
    let tags = v
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .fold(Vec::<String>::new(), |mut acc, t| {
            if !acc.iter().any(|a| a == t) {
                acc.push(t.to_owned());
            }
            acc
        });
    Ok(Ticket {
        ticket_id,
        subject: text("subject")
            .or_else(|| text("raw_subject"))
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        // Zendesk keeps the description as plain text (the first comment's).
        description: text("description").unwrap_or_default(),
        priority: text("priority").and_then(|p| capitalised(&p)),
        status,
        created_at: time_of(v.get("created_at")),
        resolved_at: if resolved {
            time_of(v.get("updated_at"))
        } else {
            None
        },
        resolution: None,
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const SECRET: &[u8] = b"dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";
    const OLD: &[u8] = b"previous-signing-secret";
    const TS: &str = "2021-07-25T10:00:00Z";
    const TS_SECS: u64 = 1_627_207_200;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    // The figure from Python's hmac and base64 modules:
    // base64(hmac.new(secret, b"2021-07-25T10:00:00Z" + body, sha256).digest()).
    #[test]
    fn signing_is_base64_hmac_sha256_of_timestamp_then_body() {
        let sig = sign(
            b"HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA=",
            TS,
            br#"{"say": "hello"}"#,
        );
        assert_eq!(sig, "Rry/4TtIdFyawtXXp8QdI6tlAUUQ/5kL1OTp5qo/ZIk=");
    }

    #[test]
    fn a_fresh_signature_by_either_secret_passes() {
        let body = br#"{"type":"zen:event-type:ticket.created"}"#;
        for secret in [SECRET, OLD] {
            let sig = sign(secret, TS, body);
            assert_eq!(
                verify_signature(
                    &[SECRET, OLD],
                    Some(TS),
                    Some(&sig),
                    body,
                    at(TS_SECS + 300)
                ),
                Ok(())
            );
        }
        // Unix seconds work too.
        let secs = TS_SECS.to_string();
        let sig = sign(SECRET, &secs, body);
        assert_eq!(
            verify_signature(&[SECRET], Some(&secs), Some(&sig), body, at(TS_SECS)),
            Ok(())
        );
    }

    #[test]
    fn bad_signatures_are_told_apart() {
        let body = b"{}";
        let good = sign(SECRET, TS, body);
        let check = |ts: Option<&str>, sig: Option<&str>| {
            verify_signature(&[SECRET], ts, sig, body, at(TS_SECS))
        };
        assert_eq!(check(None, Some(&good)), Err(SignatureError::Missing));
        assert_eq!(check(Some(TS), Some(" ")), Err(SignatureError::Missing));
        for ts in ["yesterday", "2021-07-25", "1627207200000000"] {
            assert_eq!(
                check(Some(ts), Some(&good)),
                Err(SignatureError::Malformed),
                "{ts}"
            );
        }
        let hex = "ab".repeat(32);
        for sig in ["not base64!", "c2hvcnQ=", hex.as_str()] {
            assert_eq!(
                check(Some(TS), Some(sig)),
                Err(SignatureError::Malformed),
                "{sig}"
            );
        }
        assert_eq!(
            verify_signature(&[SECRET], Some(TS), Some(&good), body, at(TS_SECS + 301)),
            Err(SignatureError::Stale { skew_secs: 301 })
        );
        assert_eq!(
            check(Some("2021-07-25T10:00:01Z"), Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&[OLD], Some(TS), Some(&good), body, at(TS_SECS)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_connector_reads_lowercase_headers_and_the_invocation_id() {
        let body = b"{}";
        let mut headers = BTreeMap::new();
        headers.insert(TIMESTAMP_HEADER.to_owned(), TS.to_owned());
        headers.insert(SIGNATURE_HEADER.to_owned(), sign(SECRET, TS, body));
        headers.insert(INVOCATION_HEADER.to_owned(), "8350205582".to_owned());
        let delivery = Delivery {
            headers: &headers,
            body,
            now: at(TS_SECS),
        };
        let v = Zendesk.verify(&[SECRET], &delivery).unwrap();
        assert_eq!(v.delivery_id.as_deref(), Some("8350205582"));
    }

    #[test]
    fn priorities_are_capitalised_and_default_to_normal() {
        assert_eq!(normal_priority(Some(&json!("HIGH"))), json!("High"));
        assert_eq!(normal_priority(Some(&json!("urgent"))), json!("Urgent"));
        assert_eq!(normal_priority(Some(&Value::Null)), json!("Normal"));
        assert_eq!(normal_priority(None), json!("Normal"));
        assert_eq!(normal_priority(Some(&json!("-"))), json!("Normal"));
        assert_eq!(normal_priority(Some(&json!(3))), json!(3));
    }

    #[test]
    fn subdomains() {
        for ok in ["acme", "a", "0-msp", &"a".repeat(63)] {
            assert!(is_subdomain(ok), "{ok}");
        }
        for bad in [
            "",
            "-acme",
            "Acme",
            "ac_me",
            "acme.zendesk.com",
            &"a".repeat(64),
        ] {
            assert!(!is_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn the_search_query_is_utc_to_the_second() {
        let from = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000).unwrap();
        let to = OffsetDateTime::from_unix_timestamp(1_700_086_400)
            .unwrap()
            .to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(
            resolved_query(from, to),
            "type:ticket status>=solved updated>=2023-11-14T22:13:20Z updated<=2023-11-15T22:13:20Z"
        );
    }

    #[test]
    fn the_debug_form_and_errors_show_no_credential() {
        let auth = ZendeskAuth {
            email: "agent@acme.example".into(),
            api_token: SecretString::from("SECRET-TOKEN-123"),
        };
        let client =
            ZendeskClient::new(HttpClient::new().unwrap(), "acme", None, auth.clone()).unwrap();
        let shown = format!("{client:?} {auth:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert_eq!(client.base.as_str(), "https://acme.zendesk.com/");
        let req = client
            .request(
                Method::GET,
                "https://acme.zendesk.com/".parse().unwrap(),
                None,
            )
            .unwrap();
        let header = req.headers()[AUTHORIZATION].clone();
        assert!(header.is_sensitive());
        assert_eq!(
            header.to_str().unwrap(),
            format!(
                "Basic {}",
                BASE64.encode("agent@acme.example/token:SECRET-TOKEN-123")
            )
        );
        let e = ZendeskClient::new(
            HttpClient::new().unwrap(),
            "acme",
            Some("https://u:hunter2@x.example"),
            auth,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn a_ticket_reads_from_the_api_shape() {
        let t = ticket_from(&json!({
            "id": 35436, "subject": "Help,\n my printer is on fire!", "raw_subject": "{{dc.printer_on_fire}}",
            "description": "The fire is very colorful.", "priority": "high", "status": "solved",
            "created_at": "2009-07-20T22:55:29Z", "updated_at": "2011-05-05T10:38:52Z",
            "tags": ["enterprise", "other_tag", "enterprise"]
        }))
        .unwrap();
        assert_eq!(t.ticket_id, "35436");
        assert_eq!(t.subject, "Help, my printer is on fire!");
        assert_eq!(t.priority.as_deref(), Some("High"));
        assert_eq!(t.status.as_deref(), Some("solved"));
        assert_eq!(t.resolved_at.unwrap().unix_timestamp(), 1_304_591_932);
        assert_eq!(t.tags, ["enterprise", "other_tag"]);
        let open = ticket_from(&json!({"id": 1, "status": "open", "priority": null,
                                       "updated_at": "2011-05-05T10:38:52Z"}))
        .unwrap();
        assert_eq!((open.priority, open.resolved_at), (None, None));
    }
}
