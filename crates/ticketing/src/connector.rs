//! One interface over every ticketing tool (the seed's `TicketingToolPlugin`):
//! a [`Connector`] per tool, found by its [`ToolType`] in the registry
//! ([`connector`]). A connector knows the tool's webhooks ([`Connector::verify`],
//! [`Connector::parse`]: its signature scheme, its replay rules, its payloads)
//! and makes [`TicketingClient`]s, which call the tool's API with a tenant's
//! settings (get a ticket, post an internal note once per job, list resolved
//! tickets page by page, test the connection).
//!
//! What a connector must do is proven by one conformance suite run against
//! each of them and its fake server (`crates/ticketing/tests/it/conformance.rs`);
//! `docs/connector-development.md` walks through adding one.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use csp_http::{HttpClient, HttpError, Limits};
use http::StatusCode;
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::types::{JobMarker, NoteFormat, NoteId, ResolvedTicket, Ticket};
use crate::webhook::{NewTicket, ResolvedTicketEvent, SignatureError, ValidationError};

/// A boxed future, so that [`TicketingClient`] is object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// ------------------------------------------------------------------ tools

/// The ticketing tools csp has a connector for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ToolType {
    ServicedeskPlus,
    Jira,
    Zendesk,
}

/// `tool_type` names no connector. The message is the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown tool_type '{0}'. Supported: servicedesk_plus, jira, zendesk.")]
pub struct UnknownToolType(pub String);

impl ToolType {
    /// Every tool, in the order they are listed to users.
    pub const ALL: [ToolType; 3] = [Self::ServicedeskPlus, Self::Jira, Self::Zendesk];

    /// The `tool_type` of tenants, webhook paths and the registry.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServicedeskPlus => "servicedesk_plus",
            Self::Jira => "jira",
            Self::Zendesk => "zendesk",
        }
    }

    /// The tool's name for people.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::ServicedeskPlus => "ServiceDesk Plus",
            Self::Jira => "Jira Service Management",
            Self::Zendesk => "Zendesk",
        }
    }

    /// `text` exactly (no case folding, no trimming): a tool type is an
    /// identifier in URLs and stored rows.
    pub fn parse(text: &str) -> Result<Self, UnknownToolType> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| UnknownToolType(shown(text)))
    }
}

impl fmt::Display for ToolType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ToolType {
    type Err = UnknownToolType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// At most 64 characters of untrusted text, without control characters,
/// for an error message.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

// --------------------------------------------------------------- settings

/// One setting of a tool, as tenants carry it: its name is the REST field
/// (`jira_url`, `api_key`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// Shown to admins.
    pub label: &'static str,
    pub required: bool,
    /// Sealed at rest, write-only: never returned, never logged.
    pub secret: bool,
    pub kind: FieldKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// An http(s) URL without credentials, query or fragment.
    Url,
    /// An e-mail address.
    Email,
    /// One line of text.
    Text,
    /// A token or key: printable, no whitespace.
    Credential,
    /// One of a closed list of values.
    Choice(&'static [&'static str]),
}

/// A tenant's settings for its tool: plain values by field name, and the
/// secret ones (unsealed, in memory only while a client is built).
#[derive(Clone, Default)]
pub struct Settings {
    pub values: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, SecretString>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("values", &self.values)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Settings {
    /// The plain value of `field`, if set and not empty.
    pub fn value(&self, field: &str) -> Option<&str> {
        self.values
            .get(field)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The secret `field`, if set.
    pub fn secret(&self, field: &str) -> Option<&SecretString> {
        self.secrets.get(field)
    }
}

/// A setting that is missing or wrong; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

impl SettingsError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------- webhooks

/// A webhook delivery as received: its headers (lower-case names) and the
/// raw body, with the time it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub headers: &'a BTreeMap<String, String>,
    pub body: &'a [u8],
    pub now: SystemTime,
}

impl Delivery<'_> {
    /// A header's value; `name` in lower case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What a verified delivery says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// The tool's id of this delivery when it sends one (Jira's
    /// `X-Atlassian-Webhook-Identifier`): a repeated delivery carries the
    /// same id, and the intake keeps the first job.
    pub delivery_id: Option<String>,
}

/// Which route a delivery came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /webhook/{tool_type}/{tenant_id}`
    New,
    /// `POST /webhook/{tool_type}/{tenant_id}/resolved`
    Resolved,
}

/// What a verified delivery is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new ticket: enhance it.
    NewTicket(NewTicket),
    /// A resolved or closed ticket: into the history.
    Resolved(ResolvedTicketEvent),
    /// An event csp does not act on (an update that resolves nothing, say),
    /// with why; answered 202 and dropped.
    Ignored(String),
}

// ------------------------------------------------------------- API client

/// A failed API call, whatever the tool.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid {} settings: {message}", tool.display_name())]
    Config { tool: ToolType, message: String },
    #[error(transparent)]
    InvalidTicketId(#[from] crate::types::InvalidTicketId),
    #[error("{} call failed: {source}", tool.display_name())]
    Http {
        tool: ToolType,
        #[source]
        source: HttpError,
    },
    #[error("unexpected answer from {}: {message}", tool.display_name())]
    Unexpected { tool: ToolType, message: String },
}

impl ApiError {
    /// Timeouts, failed connections and 5xx: worth another attempt. Never a 4xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Http {
                source: HttpError::Timeout | HttpError::Connect(_),
                ..
            } => true,
            ApiError::Http {
                source: HttpError::Status { status, .. },
                ..
            } => status.is_server_error(),
            _ => false,
        }
    }

    /// The HTTP status the tool answered with, for a non-2xx answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Http { source, .. } => source.status(),
            _ => None,
        }
    }
}

/// Why a connection test failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Unreachable,
    Tls,
    CredentialsRejected,
    /// No API at the URL, or the project/portal/subdomain does not exist.
    NotFound,
    Other,
}

/// A failed connection test: its kind and a reason an admin can act on
/// (never a credential).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct TestFailure {
    pub kind: FailureKind,
    pub reason: String,
}

/// A note [`TicketingClient::post_note_once`] left on the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedNote {
    pub note_id: NoteId,
    /// `false` when the job's note was already on the ticket.
    pub created: bool,
}

/// A resolved ticket the import could not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub ticket_id: String,
    pub reason: String,
}

/// One page of resolved tickets for the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub tickets: Vec<ResolvedTicket>,
    pub skipped: Vec<Skipped>,
    /// Where the next page starts ([`TicketingClient::list_resolved`]'s
    /// `cursor`); `None` on the last page.
    pub next: Option<String>,
    /// All matching tickets, when the tool says.
    pub total_count: Option<u64>,
}

/// Attempts and backoff for calls that may be repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, waiting 0.5 s then 1 s.
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (from 1).
    pub fn delay_after(&self, n: u32) -> Duration {
        self.base_delay
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1)))
    }

    /// Runs `call` until it succeeds, fails in a way another attempt would
    /// not mend, or the attempts are spent; waits [`RetryPolicy::delay_after`]
    /// (or what the tool asked for) in between. Every failure is logged with
    /// the tool, the operation and the ticket; the one connectors' retry loop.
    pub(crate) async fn run<T, E, F, Fut>(
        &self,
        tool: ToolType,
        operation: &'static str,
        ticket_id: &str,
        mut call: F,
    ) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let attempts = self.attempts.max(1);
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if e.retryable() && attempt < attempts => {
                    let delay = e.wait().unwrap_or_else(|| self.delay_after(attempt));
                    tracing::warn!(
                        tool = tool.display_name(),
                        operation,
                        ticket_id,
                        attempt,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error = %e,
                        "ticketing tool call failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => {
                    tracing::warn!(tool = tool.display_name(), operation, ticket_id, attempt,
                        error = %e, "ticketing tool call failed");
                    return Err(e);
                }
            }
        }
    }
}

/// The one-note-per-job rule, whatever the tool: each attempt (retried as
/// `retry` says) reads the ticket's notes — `find` answers the id of one
/// carrying `marker`'s token, if any — and returns that note, or else posts
/// the note (`post`). Reading again before every post is what keeps a retry,
/// or a redelivered job, from posting twice once the tool has stored the
/// note. (Two deliveries of one job at the same moment could still both
/// post; the queue hands a job to one worker at a time.)
pub(crate) async fn post_once<E, Find, FindFut, Post, PostFut>(
    retry: &RetryPolicy,
    tool: ToolType,
    ticket_id: &str,
    marker: &JobMarker,
    find: Find,
    post: Post,
) -> Result<PostedNote, E>
where
    E: Retryable,
    Find: Fn() -> FindFut,
    FindFut: Future<Output = Result<Option<NoteId>, E>>,
    Post: Fn() -> PostFut,
    PostFut: Future<Output = Result<NoteId, E>>,
{
    let (find, post) = (&find, &post);
    let result = retry
        .run(tool, "post_note", ticket_id, move || async move {
            if let Some(note_id) = find().await? {
                return Ok(PostedNote {
                    note_id,
                    created: false,
                });
            }
            Ok(PostedNote {
                note_id: post().await?,
                created: true,
            })
        })
        .await?;
    tracing::info!(
        tool = tool.display_name(),
        operation = "post_note",
        ticket_id,
        job_id = marker.job_id(),
        note_id = %result.note_id,
        created = result.created,
        "note on the ticket"
    );
    Ok(result)
}

/// A failed attempt, as [`RetryPolicy::run`] sees it.
pub(crate) trait Retryable: fmt::Display {
    /// Whether another attempt may succeed (timeouts, failed connections,
    /// 5xx; never a refusal).
    fn retryable(&self) -> bool;
    /// The wait the tool asked for (a 429's `Retry-After`), instead of the
    /// backoff.
    fn wait(&self) -> Option<Duration> {
        None
    }
}

impl Retryable for ApiError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
}

/// How a client calls its tool, whatever the tool: the retries of calls
/// that may be repeated (timeouts, failed connections, 5xx) and each call's
/// bounds. The defaults are production's; tests shorten the backoff.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    /// Per call (default 30 s, 4 MiB).
    pub limits: Limits,
}

/// Calls to one tenant's tool. Cloning the client that implements it is
/// cheap; a client holds the tenant's credential and never shows it.
pub trait TicketingClient: Send + Sync + fmt::Debug {
    fn tool_type(&self) -> ToolType;

    /// The ticket, its text fields as plain text.
    fn get_ticket<'a>(&'a self, ticket_id: &'a str) -> BoxFuture<'a, Result<Ticket, ApiError>>;

    /// Posts `body` as an internal (not customer-visible) note with the
    /// job's marker, unless a note with that marker is already on the
    /// ticket. Retries timeouts and 5xx, never a 4xx.
    fn post_note_once<'a>(
        &'a self,
        ticket_id: &'a str,
        marker: &'a JobMarker,
        body: &'a str,
        format: NoteFormat,
    ) -> BoxFuture<'a, Result<PostedNote, ApiError>>;

    /// One page of tickets resolved between `from` and `to`, from `cursor`
    /// (`None`: the first page).
    fn list_resolved<'a>(
        &'a self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page, ApiError>>;

    /// Can csp read tickets with these settings? One call, not retried.
    fn test_connection(&self) -> BoxFuture<'_, Result<(), TestFailure>>;
}

/// A ticketing tool: its webhooks, its settings and its API.
pub trait Connector: Send + Sync {
    fn tool_type(&self) -> ToolType;

    /// The tool's settings on a tenant.
    fn fields(&self) -> &'static [Field];

    /// Checks a delivery's signature against each of `secrets` (the
    /// tenant's current and, during a rotation's grace period, previous
    /// webhook secret) and the tool's replay rules. Constant time in the
    /// signature; every secret is tried.
    fn verify(
        &self,
        secrets: &[&[u8]],
        delivery: &Delivery<'_>,
    ) -> Result<Verified, SignatureError>;

    /// What a verified delivery's body says, on the route it came in on.
    fn parse(&self, route: Route, body: &[u8]) -> Result<Event, ValidationError>;

    /// Checks `settings` beyond [`Connector::fields`]' kinds (a
    /// combination, a format the tool needs).
    fn check(&self, settings: &Settings) -> Result<(), SettingsError> {
        check_fields(self.fields(), settings)
    }

    /// A client for the tenant's tool, calling it as `options` say.
    fn client(
        &self,
        http: HttpClient,
        settings: &Settings,
        options: ClientOptions,
    ) -> Result<Box<dyn TicketingClient>, SettingsError>;
}

/// Checks every field's presence and kind.
pub fn check_fields(fields: &[Field], settings: &Settings) -> Result<(), SettingsError> {
    for field in fields {
        if field.secret {
            if field.required && settings.secret(field.name).is_none() {
                return Err(SettingsError::new(
                    field.name,
                    format!("{} is required", field.name),
                ));
            }
            continue;
        }
        let Some(value) = settings.value(field.name) else {
            if field.required {
                return Err(SettingsError::new(
                    field.name,
                    format!("{} is required", field.name),
                ));
            }
            continue;
        };
        check_kind(field, value)?;
    }
    Ok(())
}

fn check_kind(field: &Field, value: &str) -> Result<(), SettingsError> {
    let bad = |why: &str| {
        Err(SettingsError::new(
            field.name,
            format!("{} {why}", field.name),
        ))
    };
    if value.chars().any(char::is_control) || value.len() > 2048 {
        return bad("must be one line of at most 2048 bytes");
    }
    match field.kind {
        FieldKind::Url => match url::Url::parse(value) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.username().is_empty()
                    && u.password().is_none()
                    && u.query().is_none()
                    && u.fragment().is_none() =>
            {
                Ok(())
            }
            _ => bad("must be an http or https URL without credentials, query or fragment"),
        },
        FieldKind::Email => match value.split_once('@') {
            Some((user, domain))
                if !user.is_empty()
                    && domain.contains('.')
                    && !value.chars().any(char::is_whitespace) =>
            {
                Ok(())
            }
            _ => bad("must be an e-mail address"),
        },
        FieldKind::Text => Ok(()),
        FieldKind::Credential => {
            if value.chars().any(char::is_whitespace) {
                bad("must not contain whitespace")
            } else {
                Ok(())
            }
        }
        FieldKind::Choice(choices) => {
            if choices.contains(&value) {
                Ok(())
            } else {
                bad(&format!("must be one of: {}", choices.join(", ")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_types_round_trip_and_unknown_ones_say_what_is_supported() {
        for tool in ToolType::ALL {
            assert_eq!(ToolType::parse(tool.as_str()), Ok(tool));
        }
        assert_eq!(
            ToolType::parse("freshservice").unwrap_err().to_string(),
            "Unknown tool_type 'freshservice'. Supported: servicedesk_plus, jira, zendesk."
        );
        assert!(ToolType::parse("Jira").is_err());
        assert!(ToolType::parse(" jira").is_err());
    }

    #[test]
    fn backoff_doubles_from_the_base() {
        let p = RetryPolicy::default();
        assert_eq!(p.attempts, 3);
        assert_eq!(p.delay_after(1), Duration::from_millis(500));
        assert_eq!(p.delay_after(2), Duration::from_secs(1));
        assert_eq!(p.delay_after(3), Duration::from_secs(2));
    }

    #[test]
    fn fields_are_checked_by_kind() {
        const FIELDS: &[Field] = &[
            Field {
                name: "url",
                label: "URL",
                required: true,
                secret: false,
                kind: FieldKind::Url,
            },
            Field {
                name: "email",
                label: "E-mail",
                required: false,
                secret: false,
                kind: FieldKind::Email,
            },
            Field {
                name: "token",
                label: "Token",
                required: true,
                secret: true,
                kind: FieldKind::Credential,
            },
        ];
        let mut s = Settings::default();
        s.values.insert("url".into(), "https://x.example".into());
        s.secrets.insert("token".into(), SecretString::from("t"));
        assert_eq!(check_fields(FIELDS, &s), Ok(()));
        for (field, value, expected) in [
            ("url", "ftp://x.example", "url must be an http or https URL"),
            (
                "url",
                "https://u:p@x.example",
                "url must be an http or https URL",
            ),
            ("url", "", "url is required"),
            ("email", "nobody", "email must be an e-mail address"),
        ] {
            let mut bad = s.clone();
            bad.values.insert(field.into(), value.into());
            let e = check_fields(FIELDS, &bad).unwrap_err();
            assert_eq!(e.field, field);
            assert!(e.message.starts_with(expected), "{e}");
        }
        let mut no_token = s.clone();
        no_token.secrets.clear();
        assert_eq!(check_fields(FIELDS, &no_token).unwrap_err().field, "token");
        assert!(!format!("{s:?}").contains("SecretString(\"t\")"));
    }
}
