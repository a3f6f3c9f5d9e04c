//! The Jira Service Management connector (Jira Cloud): issues through the
//! platform REST API v3, internal comments through the JSM `servicedeskapi`,
//! webhooks signed the way Atlassian signs admin webhooks.
//!
//! Webhooks: `POST /webhook/jira/{tenant_id}` (and `.../resolved`), set up as
//! a Jira admin webhook with a secret (System → WebHooks; its JQL filter
//! should name the tenant's project, `project = SUP`). Jira signs the raw
//! body, `X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>` ([`sign`],
//! [`verify_signature`]), and names each delivery in
//! `X-Atlassian-Webhook-Identifier`, unchanged across its own retries.
//! The scheme has no timestamp, so nothing can be refused as stale: a
//! repeated delivery is recognised by that identifier instead
//! ([`Verified::delivery_id`]; the intake keeps the first job per id). The
//! identifier is not covered by the signature, so someone who captured a
//! signed body could send it again under a new identifier; what that buys
//! them is a second enhancement of a ticket they already saw, and the note
//! marker still keeps one note per job. (The body's own `timestamp` is not
//! checked either: Atlassian documents no bound on how late a retry comes.)
//!
//! Payloads ([`parse_event`], [`IssueEvent`]): `jira:issue_created` on the
//! new-ticket route is a [`NewTicket`] (`issue.key`, `issue.fields.summary`,
//! `issue.fields.description` as plain text from Atlassian Document Format
//! or a string, `issue.fields.priority.name` or [`DEFAULT_PRIORITY`],
//! `issue.fields.created`); a description that is absent or empty is
//! replaced by the summary, since Jira does not require one. An issue that
//! has a `resolution` is a [`ResolvedTicketEvent`]: on the resolved route
//! whatever the issue event, on the new-ticket route from
//! `jira:issue_updated` when `resolutiondate` is set too and the changelog
//! (if sent) changed the resolution. Everything else is [`Event::Ignored`].
//! The limits and messages are [`crate::webhook`]'s, with the payload path
//! as the field name (`issue.fields.description exceeds 10000 characters`).
//!
//! Resolution text (webhook and import alike): the resolution's name, and
//! on the next line the last comment that is not a csp note, cut to fit
//! [`MAX_RESOLUTION_CHARS`] (`Done\nReplaced the VPN certificate.`).
//!
//! API: `Authorization: Basic base64(email:api_token)`, JSON both ways.
//! `GET /rest/api/3/issue/{key}` reads a ticket; the note is an internal
//! comment, `POST /rest/servicedeskapi/request/{key}/comment`
//! `{"body": <plain text>, "public": false}`, after the comments
//! (`GET .../comment?start=&limit=`, `isLastPage`) were searched for the
//! job's marker; the import pages through `GET /rest/api/3/search/jql`
//! (the enhanced search: `nextPageToken`, `isLast`, no total) with
//! `project = "KEY" AND resolved >= "yyyy/MM/dd HH:mm" AND resolved <= "..."
//! ORDER BY key ASC`. JQL reads those dates in the API user's time zone,
//! which csp does not know: the window is widened by 14 hours (the largest
//! UTC offset) each way and issues outside `[from, to]` by their
//! `resolutiondate` are left off the page. `GET /rest/api/3/project/{key}`
//! tests a connection.
//!
//! Retries: [`RetryPolicy`] as for ServiceDesk Plus (3 attempts) on
//! timeouts, failed connections and 5xx only. The credential never reaches
//! a log, an error or `Debug` output.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use csp_http::{HttpClient, HttpError, Limits};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use url::Url;

use crate::adf;
use crate::connector::{
    ApiError, BoxFuture, ClientOptions, Connector, Delivery, Event, FailureKind, Field, FieldKind,
    Page, PostedNote, RetryPolicy, Route, Settings, SettingsError, Skipped, TestFailure,
    TicketingClient, ToolType, Verified, check_fields, post_once,
};
use crate::text::html_to_text_keeping_links;
use crate::types::{JobMarker, NoteFormat, NoteId, ResolvedTicket, Ticket, validate_ticket_id};
use crate::webhook::{
    MAX_DESCRIPTION_CHARS, MAX_PRIORITY_CHARS, MAX_RESOLUTION_CHARS, MAX_SUBJECT_CHARS,
    MAX_TAG_CHARS, MAX_TAGS, MAX_WEBHOOK_BODY_BYTES, NewTicket, ResolvedTicketEvent,
    SignatureError, ValidationError,
};

/// Header names, lowercase as [`Delivery::headers`] keeps them.
pub const SIGNATURE_HEADER: &str = "x-hub-signature";
pub const DELIVERY_ID_HEADER: &str = "x-atlassian-webhook-identifier";
/// A longer (or empty, or non-printable) delivery identifier is not used.
pub const MAX_DELIVERY_ID_LEN: usize = 128;
/// The priority of an issue that has none: Jira's own default.
pub const DEFAULT_PRIORITY: &str = "Medium";
/// Issues per page of [`JiraClient::list_resolved`] (the search's maximum
/// when fields are asked for).
pub const PAGE_SIZE: u32 = 100;
/// Comments per page read before posting a note, and how many pages at most.
const COMMENT_PAGE_SIZE: u32 = 100;
const MAX_COMMENT_PAGES: u32 = 50;
/// The largest UTC offset: how far the import's JQL window is widened.
const JQL_SLACK: time::Duration = time::Duration::hours(14);
/// Jira caps issue type names at 60 characters.
const MAX_ISSUE_TYPE_CHARS: usize = 60;
const ISSUE_FIELDS: &str =
    "summary,description,priority,status,created,resolution,resolutiondate,labels,comment";
const SEARCH_FIELDS: &str = "summary,description,resolution,resolutiondate,labels,comment";
const TOOL: ToolType = ToolType::Jira;

// ---------------------------------------------------------------- connector

/// A tenant's Jira settings.
pub const FIELDS: &[Field] = &[
    Field {
        name: "jira_url",
        label: "Jira URL (https://<site>.atlassian.net)",
        required: true,
        secret: false,
        kind: FieldKind::Url,
    },
    Field {
        name: "jira_email",
        label: "E-mail of the Jira account",
        required: true,
        secret: false,
        kind: FieldKind::Email,
    },
    Field {
        name: "jira_api_token",
        label: "API token of the Jira account",
        required: true,
        secret: true,
        kind: FieldKind::Credential,
    },
    Field {
        name: "jira_project_key",
        label: "Service project key (such as SUP)",
        required: true,
        secret: false,
        kind: FieldKind::Text,
    },
    Field {
        name: "jira_issue_type",
        label: "Issue type to import (all when empty)",
        required: false,
        secret: false,
        kind: FieldKind::Text,
    },
];

/// Jira Service Management: [`Connector`] for `tool_type` `jira`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Jira;

impl Connector for Jira {
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
        verify_signature(secrets, delivery.header(SIGNATURE_HEADER), delivery.body)?;
        Ok(Verified {
            delivery_id: delivery_id(delivery.header(DELIVERY_ID_HEADER)),
        })
    }

    fn parse(&self, route: Route, body: &[u8]) -> Result<Event, ValidationError> {
        parse_event(route, body)
    }

    fn check(&self, settings: &Settings) -> Result<(), SettingsError> {
        check_fields(FIELDS, settings)?;
        if !is_project_key(settings.value("jira_project_key").unwrap_or_default()) {
            return Err(SettingsError::new(
                "jira_project_key",
                "jira_project_key must be 2 to 10 characters of A-Z, 0-9 or '_', starting with a letter (such as SUP)",
            ));
        }
        if let Some(issue_type) = settings.value("jira_issue_type")
            && (issue_type.trim().is_empty() || issue_type.chars().count() > MAX_ISSUE_TYPE_CHARS)
        {
            return Err(SettingsError::new(
                "jira_issue_type",
                "jira_issue_type must be an issue type name of at most 60 characters",
            ));
        }
        // `check_fields` does not look into secrets; the message never quotes it.
        if let Some(token) = settings.secret("jira_api_token")
            && token
                .expose_secret()
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(SettingsError::new(
                "jira_api_token",
                "jira_api_token must not contain whitespace",
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
        self.check(settings)?;
        let required = |name: &'static str| {
            settings
                .value(name)
                .ok_or_else(|| SettingsError::new(name, format!("{name} is required")))
        };
        let token = settings
            .secret("jira_api_token")
            .ok_or_else(|| SettingsError::new("jira_api_token", "jira_api_token is required"))?;
        let client = JiraClient::new(
            http,
            required("jira_url")?,
            required("jira_email")?,
            token,
            required("jira_project_key")?,
        )
        .map_err(|e| SettingsError::new("jira_url", e.to_string()))?
        .with_issue_type(settings.value("jira_issue_type"))
        .with_retry(options.retry)
        .with_limits(options.limits);
        Ok(Box::new(client))
    }
}

/// `[A-Z][A-Z0-9_]{1,9}`, a Jira project key as csp accepts it.
pub fn is_project_key(key: &str) -> bool {
    let b = key.as_bytes();
    (2..=10).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
}

// --------------------------------------------------------------- signatures

/// `sha256=<hex>`, the `X-Hub-Signature` Jira sends for `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex(&csp_auth::hmac_sha256(secret, body)))
}

/// Checks `X-Hub-Signature` against each of `secrets` (the tenant's current
/// one and, during a rotation's grace period, the previous one). Every
/// secret is tried, whichever matches, and each comparison is constant
/// time. There is no timestamp to check (see the module's docs).
pub fn verify_signature(
    secrets: &[&[u8]],
    signature_header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let Some(sig) = signature_header.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(SignatureError::Missing);
    };
    let hex_sig = sig
        .strip_prefix("sha256=")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(SignatureError::Malformed)?;
    let mut matched = false;
    for secret in secrets {
        // `|` rather than `||`: no early exit.
        matched |= csp_auth::verify_hmac_sha256_hex(secret, body, hex_sig);
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `X-Atlassian-Webhook-Identifier`, when it is one printable token of at
/// most [`MAX_DELIVERY_ID_LEN`] bytes.
fn delivery_id(header: Option<&str>) -> Option<String> {
    let id = header?.trim();
    (!id.is_empty() && id.len() <= MAX_DELIVERY_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| id.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

// ----------------------------------------------------------------- payloads

/// What a verified delivery says, on the route it came in on (see the
/// module's docs for which events become what).
pub fn parse_event(route: Route, body: &[u8]) -> Result<Event, ValidationError> {
    let obj = object(body)?;
    let name = webhook_event(&obj)?;
    if !matches!(name, "jira:issue_created" | "jira:issue_updated") {
        return Ok(Event::Ignored(format!(
            "Jira event '{}' is not one csp acts on",
            shown(name)
        )));
    }
    let issue = IssueEvent::from_object(&obj, name)?;
    let key = &issue.key;
    match (route, name) {
        (Route::New, "jira:issue_created") => issue.new_ticket().map(Event::NewTicket),
        (Route::New, _) => {
            if issue.resolution.is_none() || issue.resolved_at.is_none() {
                Ok(Event::Ignored(format!(
                    "the update leaves {key} unresolved"
                )))
            } else if issue.resolution_changed == Some(false) {
                Ok(Event::Ignored(format!(
                    "the update does not change the resolution of {key}"
                )))
            } else {
                issue.resolved().map(Event::Resolved)
            }
        }
        (Route::Resolved, _) => {
            if issue.resolution.is_none() {
                Ok(Event::Ignored(format!("{key} has no resolution")))
            } else {
                issue.resolved().map(Event::Resolved)
            }
        }
    }
}

/// A Jira issue webhook (`jira:issue_created`, `jira:issue_updated`),
/// validated, its text as plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueEvent {
    /// `webhookEvent`.
    pub webhook_event: String,
    /// `issue.key`: the ticket id.
    pub key: String,
    /// `issue.fields.project.key`, when sent.
    pub project_key: Option<String>,
    /// `issue.fields.summary` on one line, when sent.
    pub summary: Option<String>,
    /// `issue.fields.description` as plain text, when sent.
    pub description: Option<String>,
    /// `issue.fields.priority.name`, when set.
    pub priority: Option<String>,
    /// `issue.fields.created`.
    pub created_at: Option<OffsetDateTime>,
    /// `issue.fields.resolution.name`, when resolved.
    pub resolution: Option<String>,
    /// `issue.fields.resolutiondate`.
    pub resolved_at: Option<OffsetDateTime>,
    /// `issue.fields.labels`, trimmed, without duplicates or empty ones.
    pub labels: Vec<String>,
    /// The last comment in the payload that is not a csp note
    /// (`issue.fields.comment.comments`, else the top-level `comment`).
    pub last_comment: Option<String>,
    /// Whether `changelog.items` changes `resolution`; `None` without a changelog.
    pub resolution_changed: Option<bool>,
}

impl IssueEvent {
    /// Any Jira issue webhook's body; `webhookEvent` is not checked against a list.
    pub fn parse(body: &[u8]) -> Result<Self, ValidationError> {
        let obj = object(body)?;
        let name = webhook_event(&obj)?;
        Self::from_object(&obj, name)
    }

    fn from_object(obj: &Map<String, Value>, name: &str) -> Result<Self, ValidationError> {
        let issue = match present(obj, "issue") {
            None => return Err(ValidationError::Missing { field: "issue" }),
            Some(Value::Object(issue)) => issue,
            Some(_) => return Err(wrong("issue", "an object")),
        };
        let key = issue_key(issue)?;
        let fields = match present(issue, "fields") {
            None => {
                return Err(ValidationError::Missing {
                    field: "issue.fields",
                });
            }
            Some(Value::Object(fields)) => fields,
            Some(_) => return Err(wrong("issue.fields", "an object")),
        };
        Ok(Self {
            webhook_event: name.to_owned(),
            key,
            project_key: project_key(fields)?,
            summary: summary(fields)?,
            description: description(fields)?,
            priority: named(
                fields,
                "priority",
                "issue.fields.priority",
                MAX_PRIORITY_CHARS,
            )?,
            created_at: jira_time(fields, "created", "issue.fields.created")?,
            resolution: named(
                fields,
                "resolution",
                "issue.fields.resolution",
                MAX_RESOLUTION_CHARS,
            )?,
            resolved_at: jira_time(fields, "resolutiondate", "issue.fields.resolutiondate")?,
            labels: labels(fields)?,
            last_comment: last_comment(fields.get("comment"))
                .or_else(|| present(obj, "comment").and_then(comment_text)),
            resolution_changed: resolution_changed(obj),
        })
    }

    /// The issue as a new ticket: a summary is required, the priority
    /// defaults to [`DEFAULT_PRIORITY`], the description to the summary.
    pub fn new_ticket(&self) -> Result<NewTicket, ValidationError> {
        const SUMMARY: &str = "issue.fields.summary";
        let subject = match &self.summary {
            None => return Err(ValidationError::Missing { field: SUMMARY }),
            Some(s) if s.is_empty() => return Err(ValidationError::Empty { field: SUMMARY }),
            Some(s) => s.clone(),
        };
        Ok(NewTicket {
            ticket_id: self.key.clone(),
            description: self.description_or_summary()?,
            subject,
            priority: self
                .priority
                .clone()
                .unwrap_or_else(|| DEFAULT_PRIORITY.to_owned()),
            tenant_id: None,
            created_at: self.created_at,
        })
    }

    /// The issue as a resolved ticket: a resolution and its date are required.
    pub fn resolved(&self) -> Result<ResolvedTicketEvent, ValidationError> {
        let Some(name) = &self.resolution else {
            return Err(ValidationError::Missing {
                field: "issue.fields.resolution",
            });
        };
        let Some(resolved_date) = self.resolved_at else {
            return Err(ValidationError::Missing {
                field: "issue.fields.resolutiondate",
            });
        };
        Ok(ResolvedTicketEvent {
            ticket: ResolvedTicket {
                ticket_id: self.key.clone(),
                description: self.description_or_summary()?,
                resolution: resolution_text(name, self.last_comment.as_deref()),
                resolved_date,
                tags: self.labels.clone(),
            },
            tenant_id: None,
        })
    }

    fn description_or_summary(&self) -> Result<String, ValidationError> {
        [&self.description, &self.summary]
            .into_iter()
            .flatten()
            .find(|s| !s.trim().is_empty())
            .cloned()
            .ok_or(ValidationError::Empty {
                field: "issue.fields.description",
            })
    }
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ValidationError> {
    if body.len() > MAX_WEBHOOK_BODY_BYTES {
        return Err(ValidationError::TooLarge);
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err(ValidationError::NotJson),
    }
}

fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn wrong(field: &'static str, expected: &'static str) -> ValidationError {
    ValidationError::WrongType { field, expected }
}

fn too_long(field: &'static str, max: usize) -> ValidationError {
    ValidationError::TooLong { field, max }
}

fn webhook_event(obj: &Map<String, Value>) -> Result<&str, ValidationError> {
    const FIELD: &str = "webhookEvent";
    match present(obj, FIELD) {
        None => Err(ValidationError::Missing { field: FIELD }),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(ValidationError::Empty { field: FIELD })
        }
        Some(Value::String(s)) => Ok(s.trim()),
        Some(_) => Err(wrong(FIELD, "a string")),
    }
}

fn issue_key(issue: &Map<String, Value>) -> Result<String, ValidationError> {
    const FIELD: &str = "issue.key";
    let key = match present(issue, "key") {
        None => return Err(ValidationError::Missing { field: FIELD }),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(wrong(FIELD, "a string")),
    };
    if key.is_empty() {
        return Err(ValidationError::Empty { field: FIELD });
    }
    validate_ticket_id(key).map_err(|_| ValidationError::Invalid {
        field: FIELD,
        reason: "must be at most 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
    })?;
    Ok(key.to_owned())
}

fn project_key(fields: &Map<String, Value>) -> Result<Option<String>, ValidationError> {
    const FIELD: &str = "issue.fields.project";
    let Some(project) = present(fields, "project") else {
        return Ok(None);
    };
    let Some(key) = project.get("key") else {
        return Err(wrong(FIELD, "an object with a key"));
    };
    match key {
        Value::Null => Ok(None),
        Value::String(k) if validate_ticket_id(k.trim()).is_ok() => Ok(Some(k.trim().to_owned())),
        Value::String(_) => Err(ValidationError::Invalid {
            field: FIELD,
            reason: "has a key that is not a project key",
        }),
        _ => Err(wrong(FIELD, "an object with a key")),
    }
}

fn summary(fields: &Map<String, Value>) -> Result<Option<String>, ValidationError> {
    const FIELD: &str = "issue.fields.summary";
    match present(fields, "summary") {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() > MAX_SUBJECT_CHARS => {
            Err(too_long(FIELD, MAX_SUBJECT_CHARS))
        }
        Some(Value::String(s)) => Ok(Some(one_line(s))),
        Some(_) => Err(wrong(FIELD, "a string")),
    }
}

/// An ADF document or a string, as plain text; the limit is on the text.
fn description(fields: &Map<String, Value>) -> Result<Option<String>, ValidationError> {
    const FIELD: &str = "issue.fields.description";
    let text = match present(fields, "description") {
        None => return Ok(None),
        Some(v @ (Value::String(_) | Value::Object(_))) => adf::to_text(v),
        Some(_) => {
            return Err(wrong(
                FIELD,
                "an Atlassian Document Format document or a string",
            ));
        }
    };
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(too_long(FIELD, MAX_DESCRIPTION_CHARS));
    }
    Ok(Some(text))
}

/// `{"name": "High", ...}` (or a bare string), when set.
fn named(
    fields: &Map<String, Value>,
    key: &str,
    field: &'static str,
    max_chars: usize,
) -> Result<Option<String>, ValidationError> {
    let name = match present(fields, key) {
        None => return Ok(None),
        Some(Value::String(s)) => s,
        Some(Value::Object(o)) => match o.get("name") {
            Some(Value::String(s)) => s,
            _ => return Err(wrong(field, "an object with a name")),
        },
        Some(_) => return Err(wrong(field, "an object with a name")),
    };
    if name.chars().count() > max_chars {
        return Err(too_long(field, max_chars));
    }
    let name = name.trim();
    Ok((!name.is_empty()).then(|| name.to_owned()))
}

fn jira_time(
    fields: &Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<OffsetDateTime>, ValidationError> {
    match present(fields, key) {
        None => Ok(None),
        Some(Value::String(s)) => parse_jira_time(s)
            .map(Some)
            .ok_or(ValidationError::Invalid {
                field,
                reason: "must be a Jira timestamp such as 2024-01-15T10:30:00.000+0000",
            }),
        Some(_) => Err(wrong(field, "a timestamp string")),
    }
}

fn labels(fields: &Map<String, Value>) -> Result<Vec<String>, ValidationError> {
    const FIELD: &str = "issue.fields.labels";
    let list = match present(fields, "labels") {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(wrong(FIELD, "a list of strings")),
    };
    if list.len() > MAX_TAGS {
        return Err(ValidationError::Invalid {
            field: FIELD,
            reason: "has more than 50 entries",
        });
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for label in list {
        let Value::String(label) = label else {
            return Err(wrong(FIELD, "a list of strings"));
        };
        if label.chars().count() > MAX_TAG_CHARS {
            return Err(ValidationError::Invalid {
                field: FIELD,
                reason: "has an entry longer than 100 characters",
            });
        }
        push_label(&mut out, label);
    }
    Ok(out)
}

fn push_label(out: &mut Vec<String>, label: &str) {
    let label = label.trim();
    if !label.is_empty() && !out.iter().any(|l| l == label) {
        out.push(label.to_owned());
    }
}

/// Whether the changelog says the resolution changed; `None` without one.
fn resolution_changed(obj: &Map<String, Value>) -> Option<bool> {
    let items = present(obj, "changelog")?.get("items")?.as_array()?;
    Some(items.iter().any(|item| {
        ["field", "fieldId"]
            .iter()
            .any(|k| item.get(*k).and_then(Value::as_str) == Some("resolution"))
    }))
}

// ---------------------------------------------------- shared with the API

/// Jira's `2024-01-15T10:30:00.000+0000`, with or without the fraction, or RFC 3339.
pub fn parse_jira_time(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    OffsetDateTime::parse(
        s,
        format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory][offset_minute]"
        ),
    )
    .or_else(|_| {
        OffsetDateTime::parse(
            s,
            format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
            ),
        )
    })
    .or_else(|_| OffsetDateTime::parse(s, &Rfc3339))
    .ok()
}

/// A name, from `{"name": ...}` or a string, when not blank.
fn name_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Object(o) => o
            .get("name")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned()),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

/// A comment's body (ADF or a string) as text, unless it is blank or a csp note.
fn comment_text(comment: &Value) -> Option<String> {
    let text = adf::to_text(comment.get("body")?);
    (!text.trim().is_empty() && !is_csp_note(&text)).then_some(text)
}

/// The last of `fields.comment.comments` that is not a csp note, given
/// `fields.comment`.
fn last_comment(comment_field: Option<&Value>) -> Option<String> {
    comment_field?
        .get("comments")?
        .as_array()?
        .iter()
        .rev()
        .find_map(comment_text)
}

/// Notes csp posted carry a job marker; they are not the resolution.
fn is_csp_note(text: &str) -> bool {
    text.contains("csp-job:")
}

/// `name`, and `comment` on the next line, within [`MAX_RESOLUTION_CHARS`].
fn resolution_text(name: &str, comment: Option<&str>) -> String {
    let room = MAX_RESOLUTION_CHARS.saturating_sub(name.chars().count() + 1);
    match comment.map(str::trim).filter(|c| !c.is_empty()) {
        Some(comment) if room > 1 => format!("{name}\n{}", cut(comment, room)),
        _ => name.to_owned(),
    }
}

/// At most `max` characters, the last one `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most 64 characters of untrusted text, without control characters.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

fn labels_of(fields: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for label in fields
        .get("labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .take(MAX_TAGS)
    {
        push_label(&mut out, label);
    }
    out
}

fn time_of(fields: &Value, key: &str) -> Option<OffsetDateTime> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .and_then(parse_jira_time)
}

fn description_text(fields: &Value) -> String {
    fields
        .get("description")
        .map(adf::to_text)
        .unwrap_or_default()
}

// ------------------------------------------------------------------- client

/// A comment on a request as the JSM API lists it; `body` is plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: NoteId,
    pub body: String,
    /// `false` for an internal comment.
    pub public: Option<bool>,
}

/// A client for one Jira site and service project. Cloning is cheap.
#[derive(Clone)]
pub struct JiraClient {
    http: HttpClient,
    base: Url,
    /// `Basic base64(email:api_token)`.
    authorization: Arc<SecretString>,
    project_key: String,
    issue_type: Option<String>,
    retry: RetryPolicy,
    limits: Limits,
}

impl fmt::Debug for JiraClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JiraClient")
            .field("base", &csp_redact::url(self.base.as_str()))
            .field("project_key", &self.project_key)
            .field("issue_type", &self.issue_type)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl JiraClient {
    /// `base_url` is the site, `https://<site>.atlassian.net`; `/rest/...`
    /// is appended. `project_key` is the service project's key.
    pub fn new(
        http: HttpClient,
        base_url: &str,
        email: &str,
        api_token: &SecretString,
        project_key: &str,
    ) -> Result<Self, ApiError> {
        let base = parse_base_url(base_url)?;
        if !is_project_key(project_key) {
            return Err(config(
                "jira_project_key must be 2 to 10 characters of A-Z, 0-9 or '_', starting with a letter",
            ));
        }
        let email = email.trim();
        // Basic authentication cannot carry a user name with a colon.
        if email.is_empty() || email.contains(':') || email.chars().any(char::is_control) {
            return Err(config("jira_email must be an e-mail address"));
        }
        let credentials = SecretString::from(format!("{email}:{}", api_token.expose_secret()));
        let authorization = SecretString::from(format!(
            "Basic {}",
            BASE64.encode(credentials.expose_secret())
        ));
        Ok(Self {
            http,
            base,
            authorization: Arc::new(authorization),
            project_key: project_key.to_owned(),
            issue_type: None,
            retry: RetryPolicy::default(),
            limits: Limits::default(),
        })
    }

    /// Import only issues of this type (`issuetype = "..."` in the JQL).
    pub fn with_issue_type(mut self, issue_type: Option<&str>) -> Self {
        self.issue_type = issue_type
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        self
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

    pub fn project_key(&self) -> &str {
        &self.project_key
    }

    /// `GET /rest/api/3/issue/{key}`: summary, description (ADF → text),
    /// priority, status, dates, resolution (with the last comment) and labels.
    pub async fn get_issue(&self, issue_key: &str) -> Result<Ticket, ApiError> {
        validate_ticket_id(issue_key)?;
        self.retrying("get_issue", issue_key, move || async move {
            let v = self
                .get(
                    &["rest", "api", "3", "issue", issue_key],
                    &[("fields", ISSUE_FIELDS)],
                )
                .await?;
            ticket_from(&v)
        })
        .await
    }

    /// `GET /rest/servicedeskapi/request/{key}/comment`, every page, public
    /// and internal.
    pub async fn list_comments(&self, issue_key: &str) -> Result<Vec<Comment>, ApiError> {
        validate_ticket_id(issue_key)?;
        self.retrying("list_comments", issue_key, move || {
            self.comments_attempt(issue_key)
        })
        .await
    }

    /// `POST /rest/servicedeskapi/request/{key}/comment`: an internal
    /// comment (`"public": false`) of plain text.
    ///
    /// Retried like every call, so a timeout after Jira stored the comment
    /// can leave two; [`JiraClient::post_note_once`] cannot.
    pub async fn add_comment(&self, issue_key: &str, body: &str) -> Result<NoteId, ApiError> {
        validate_ticket_id(issue_key)?;
        self.retrying("add_comment", issue_key, move || {
            self.add_comment_attempt(issue_key, body)
        })
        .await
    }

    /// Posts `body` ([`note_text`]: HTML as plain text) with `marker`'s
    /// footer as an internal comment, unless a comment of the issue already
    /// carries the marker, whose id is returned instead. Each attempt reads
    /// the comments again before posting, so neither a retry here nor a
    /// redelivered job posts twice once a comment has been stored.
    pub async fn post_note_once(
        &self,
        issue_key: &str,
        marker: &JobMarker,
        body: &str,
        format: NoteFormat,
    ) -> Result<PostedNote, ApiError> {
        validate_ticket_id(issue_key)?;
        let content = note_text(marker, body, format);
        let content = content.as_str();
        post_once(
            &self.retry,
            TOOL,
            issue_key,
            marker,
            || async {
                let comments = self.comments_attempt(issue_key).await?;
                Ok(comments
                    .into_iter()
                    .find(|c| marker.found_in(&c.body))
                    .map(|c| c.id))
            },
            || self.add_comment_attempt(issue_key, content),
        )
        .await
    }

    /// One page (up to [`PAGE_SIZE`]) of the project's issues resolved
    /// between `from` and `to` ([`resolved_jql`]), by key, from `cursor` (a
    /// `nextPageToken`; `None` for the first page). An issue without a
    /// resolution, a resolution date or any text is [`Skipped`].
    pub async fn list_resolved(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<&str>,
    ) -> Result<Page, ApiError> {
        let jql = resolved_jql(&self.project_key, self.issue_type.as_deref(), from, to);
        let max_results = PAGE_SIZE.to_string();
        let mut query = vec![
            ("jql", jql.as_str()),
            ("maxResults", max_results.as_str()),
            ("fields", SEARCH_FIELDS),
        ];
        if let Some(token) = cursor.filter(|c| !c.is_empty()) {
            query.push(("nextPageToken", token));
        }
        let page = self
            .retrying("list_resolved", "-", || {
                self.get(&["rest", "api", "3", "search", "jql"], &query)
            })
            .await?;
        let issues = page
            .get("issues")
            .and_then(Value::as_array)
            .ok_or_else(|| unexpected("the search answer has no issues"))?;
        let mut tickets = Vec::with_capacity(issues.len());
        let mut skipped = Vec::new();
        for issue in issues {
            match resolved_from(issue, from, to) {
                Some(Ok(t)) => tickets.push(t),
                Some(Err(s)) => {
                    tracing::warn!(operation = "list_resolved", ticket_id = %s.ticket_id, reason = %s.reason, "skipping a resolved issue");
                    skipped.push(s);
                }
                None => {}
            }
        }
        let is_last = page.get("isLast").and_then(Value::as_bool) == Some(true);
        let next = page
            .get("nextPageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && !is_last)
            .map(str::to_owned);
        Ok(Page {
            tickets,
            skipped,
            next,
            total_count: None,
        })
    }

    /// `GET /rest/api/3/project/{key}`: can csp read the project with these
    /// settings? One call, not retried.
    pub async fn test_connection(&self) -> Result<(), TestFailure> {
        match self
            .get(&["rest", "api", "3", "project", &self.project_key], &[])
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(operation = "test_connection", error = %e, "Jira connection test failed");
                Err(self.failure(&e))
            }
        }
    }

    fn failure(&self, e: &ApiError) -> TestFailure {
        let (kind, reason) = match e {
            ApiError::Http {
                source: HttpError::Timeout | HttpError::Connect(_),
                ..
            } => (
                FailureKind::Unreachable,
                "Jira could not be reached (check the URL and the network)".to_owned(),
            ),
            ApiError::Http {
                source: HttpError::Tls(_),
                ..
            } => (
                FailureKind::Tls,
                "the TLS connection to Jira failed (check the URL's scheme and the server's certificate)"
                    .to_owned(),
            ),
            ApiError::Http {
                source: HttpError::Status { status, .. },
                ..
            } => match *status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => (
                    FailureKind::CredentialsRejected,
                    "Jira rejected the e-mail or API token".to_owned(),
                ),
                StatusCode::NOT_FOUND => (
                    FailureKind::NotFound,
                    format!("Jira project '{}' not found", self.project_key),
                ),
                other => (
                    FailureKind::Other,
                    format!("Jira answered HTTP {}", other.as_u16()),
                ),
            },
            other => (
                FailureKind::Other,
                format!("Jira answered unexpectedly: {other}"),
            ),
        };
        TestFailure { kind, reason }
    }

    // ------------------------------------------------------------ internals

    async fn comments_attempt(&self, issue_key: &str) -> Result<Vec<Comment>, ApiError> {
        let mut comments = Vec::new();
        let limit = COMMENT_PAGE_SIZE.to_string();
        let mut start = 0u32;
        for _ in 0..MAX_COMMENT_PAGES {
            let from = start.to_string();
            let v = self
                .get(
                    &["rest", "servicedeskapi", "request", issue_key, "comment"],
                    &[("start", from.as_str()), ("limit", limit.as_str())],
                )
                .await?;
            let values = v
                .get("values")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            for c in values {
                let Some(id) = c.get("id").and_then(id_of) else {
                    continue;
                };
                comments.push(Comment {
                    id: NoteId(id),
                    body: c.get("body").map(adf::to_text).unwrap_or_default(),
                    public: c.get("public").and_then(Value::as_bool),
                });
            }
            let count = u32::try_from(values.len()).unwrap_or(u32::MAX);
            let last = v
                .get("isLastPage")
                .and_then(Value::as_bool)
                .unwrap_or(count < COMMENT_PAGE_SIZE);
            if last || count == 0 {
                return Ok(comments);
            }
            start = start.saturating_add(count);
        }
        Err(unexpected(&format!(
            "issue {issue_key} has more than {} comments",
            MAX_COMMENT_PAGES * COMMENT_PAGE_SIZE
        )))
    }

    async fn add_comment_attempt(&self, issue_key: &str, body: &str) -> Result<NoteId, ApiError> {
        let uri = self.uri(
            &["rest", "servicedeskapi", "request", issue_key, "comment"],
            &[],
        )?;
        let payload = json!({"body": body, "public": false});
        let req = self.request(Method::POST, uri, Some(payload.to_string()))?;
        let (_, v): (_, Value) = self.http.json(req, self.limits).await.map_err(http_error)?;
        v.get("id")
            .and_then(id_of)
            .map(NoteId)
            .ok_or_else(|| unexpected("the created comment has no id"))
    }

    async fn get(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Value, ApiError> {
        let uri = self.uri(segments, query)?;
        let req = self.request(Method::GET, uri, None)?;
        let (_, v) = self.http.json(req, self.limits).await.map_err(http_error)?;
        Ok(v)
    }

    fn uri(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<http::Uri, ApiError> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| config("the base URL cannot have a path"))?;
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url.as_str()
            .parse()
            .map_err(|_| config("the base URL is not a valid URI"))
    }

    fn request(
        &self,
        method: Method,
        uri: http::Uri,
        json_body: Option<String>,
    ) -> Result<http::Request<Bytes>, ApiError> {
        // The message never quotes the value.
        let mut auth = HeaderValue::from_str(self.authorization.expose_secret()).map_err(|_| {
            config("the e-mail or API token contains characters a header cannot carry")
        })?;
        auth.set_sensitive(true);
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, auth);
        let body = match json_body {
            Some(json) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Bytes::from(json)
            }
            None => Bytes::new(),
        };
        builder
            .body(body)
            .map_err(|e| config(&format!("cannot build the request: {e}")))
    }

    async fn retrying<T, F, Fut>(
        &self,
        operation: &'static str,
        ticket_id: &str,
        call: F,
    ) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        self.retry.run(TOOL, operation, ticket_id, call).await
    }
}

impl TicketingClient for JiraClient {
    fn tool_type(&self) -> ToolType {
        TOOL
    }

    fn get_ticket<'a>(&'a self, ticket_id: &'a str) -> BoxFuture<'a, Result<Ticket, ApiError>> {
        Box::pin(self.get_issue(ticket_id))
    }

    fn post_note_once<'a>(
        &'a self,
        ticket_id: &'a str,
        marker: &'a JobMarker,
        body: &'a str,
        format: NoteFormat,
    ) -> BoxFuture<'a, Result<PostedNote, ApiError>> {
        Box::pin(JiraClient::post_note_once(
            self, ticket_id, marker, body, format,
        ))
    }

    fn list_resolved<'a>(
        &'a self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page, ApiError>> {
        Box::pin(JiraClient::list_resolved(self, from, to, cursor))
    }

    fn test_connection(&self) -> BoxFuture<'_, Result<(), TestFailure>> {
        Box::pin(JiraClient::test_connection(self))
    }
}

/// The comment text for a note: HTML (the note and its marker footer) as
/// plain text, since JSM comments are plain text or wiki markup, each link's
/// target after its text (the note's sources, its feedback links); Markdown
/// as it is, with the Markdown footer.
pub fn note_text(marker: &JobMarker, body: &str, format: NoteFormat) -> String {
    match format {
        NoteFormat::Html => html_to_text_keeping_links(&marker.apply(body, NoteFormat::Html)),
        NoteFormat::Markdown => marker.apply(body, NoteFormat::Markdown),
    }
}

/// The import's JQL: the project's issues resolved within `[from, to]`
/// widened by 14 hours each way (JQL reads dates in the API user's time
/// zone), of `issue_type` when given, by key.
pub fn resolved_jql(
    project_key: &str,
    issue_type: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> String {
    let from = from.checked_sub(JQL_SLACK).unwrap_or(from);
    // Minutes are the finest JQL takes: round the end up.
    let to = to
        .checked_add(JQL_SLACK + time::Duration::minutes(1))
        .unwrap_or(to);
    let mut jql = format!(
        "project = {} AND resolved >= {} AND resolved <= {}",
        jql_string(project_key),
        jql_string(&jql_minute(from)),
        jql_string(&jql_minute(to)),
    );
    if let Some(issue_type) = issue_type {
        jql.push_str(&format!(" AND issuetype = {}", jql_string(issue_type)));
    }
    jql.push_str(" ORDER BY key ASC");
    jql
}

/// `"..."` with `\` and `"` escaped; control characters become spaces.
fn jql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `yyyy/MM/dd HH:mm` in UTC.
fn jql_minute(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

fn http_error(source: HttpError) -> ApiError {
    ApiError::Http { tool: TOOL, source }
}

fn config(message: &str) -> ApiError {
    ApiError::Config {
        tool: TOOL,
        message: message.to_owned(),
    }
}

fn unexpected(message: &str) -> ApiError {
    ApiError::Unexpected {
        tool: TOOL,
        message: message.to_owned(),
    }
}

fn parse_base_url(base_url: &str) -> Result<Url, ApiError> {
    let shown = || csp_redact::url(base_url);
    let url =
        Url::parse(base_url.trim()).map_err(|e| config(&format!("jira_url {}: {e}", shown())))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config(&format!(
            "jira_url {} must be an http or https URL",
            shown()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(config(&format!("jira_url {} has no host", shown())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config(
            "jira_url must not carry credentials; use the e-mail and API token",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config(&format!(
            "jira_url {} must not have a query or fragment",
            shown()
        )));
    }
    Ok(url)
}

/// Ids come as strings of digits, sometimes as numbers.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

fn ticket_from(v: &Value) -> Result<Ticket, ApiError> {
    let key = v
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| unexpected("an issue without a key"))?;
    let fields = v.get("fields").unwrap_or(&Value::Null);
    Ok(Ticket {
        ticket_id: key.to_owned(),
        subject: fields
            .get("summary")
            .and_then(Value::as_str)
            .map(one_line)
            .unwrap_or_default(),
        description: description_text(fields),
        priority: name_of(fields.get("priority")),
        status: name_of(fields.get("status")),
        created_at: time_of(fields, "created"),
        resolved_at: time_of(fields, "resolutiondate"),
        resolution: name_of(fields.get("resolution"))
            .map(|name| resolution_text(&name, last_comment(fields.get("comment")).as_deref())),
        tags: labels_of(fields),
    })
}

/// A search hit as a resolved ticket, [`Skipped`] when it lacks something,
/// `None` when it was resolved outside `[from, to]`.
fn resolved_from(
    issue: &Value,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Option<Result<ResolvedTicket, Skipped>> {
    let key = issue.get("key").and_then(Value::as_str).unwrap_or_default();
    let skip = |reason: &str| {
        Some(Err(Skipped {
            ticket_id: shown(key),
            reason: reason.to_owned(),
        }))
    };
    if validate_ticket_id(key).is_err() {
        return skip("an issue without a valid key");
    }
    let fields = issue.get("fields").unwrap_or(&Value::Null);
    let Some(resolved_date) = time_of(fields, "resolutiondate") else {
        return skip("no resolution date");
    };
    if resolved_date < from || resolved_date > to {
        return None;
    }
    let Some(name) = name_of(fields.get("resolution")) else {
        return skip("no resolution");
    };
    let description = Some(description_text(fields))
        .filter(|d| !d.trim().is_empty())
        .or_else(|| {
            fields
                .get("summary")
                .and_then(Value::as_str)
                .map(one_line)
                .filter(|s| !s.is_empty())
        });
    let Some(description) = description else {
        return skip("no description");
    };
    Some(Ok(ResolvedTicket {
        ticket_id: key.to_owned(),
        description,
        resolution: resolution_text(&name, last_comment(fields.get("comment")).as_deref()),
        resolved_date,
        tags: labels_of(fields),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    const SECRET: &[u8] = b"jira-webhook-secret-current";
    const OLD: &[u8] = b"jira-webhook-secret-previous";

    fn adf(text: &str) -> Value {
        json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": text}]}
        ]})
    }

    fn created() -> Value {
        json!({
            "timestamp": 1_705_314_600_000u64,
            "webhookEvent": "jira:issue_created",
            "issue_event_type_name": "issue_created",
            "issue": {"id": "10042", "key": "SUP-42", "fields": {
                "summary": "VPN  drops\nevery hour",
                "description": adf("The VPN client disconnects."),
                "priority": {"id": "2", "name": "High"},
                "project": {"id": "10000", "key": "SUP", "name": "Support"},
                "created": "2024-01-15T10:30:00.000+0000",
                "resolution": null, "resolutiondate": null,
                "labels": ["vpn", " vpn", "network"]
            }}
        })
    }

    fn body(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    #[test]
    fn signing_is_hmac_sha256_of_the_raw_body() {
        let body = br#"{"webhookEvent":"jira:issue_created"}"#;
        let sig = sign(b"demo-secret", body);
        assert_eq!(
            sig,
            format!(
                "sha256={}",
                hex(&csp_auth::hmac_sha256(b"demo-secret", body))
            )
        );
        assert_eq!(sig.len(), 7 + 64);
    }

    #[test]
    fn signatures_are_checked_against_every_secret() {
        let body = br#"{"a":1}"#;
        for secret in [SECRET, OLD] {
            assert_eq!(
                verify_signature(&[SECRET, OLD], Some(&sign(secret, body)), body),
                Ok(())
            );
        }
        let upper = sign(SECRET, body)
            .to_ascii_uppercase()
            .replace("SHA256=", "sha256=");
        assert_eq!(
            verify_signature(&[SECRET], Some(&format!(" {upper} ")), body),
            Ok(())
        );
        let good = sign(SECRET, body);
        assert_eq!(
            verify_signature(&[SECRET], None, body),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(&[SECRET], Some("  "), body),
            Err(SignatureError::Missing)
        );
        for bad in [
            good.trim_start_matches("sha256="),
            "sha1=abc",
            "sha256=zz",
            &good[..good.len() - 1],
        ] {
            assert_eq!(
                verify_signature(&[SECRET], Some(bad), body),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            verify_signature(&[SECRET], Some(&good), br#"{"a":2}"#),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&[], Some(&good), body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_connector_returns_the_delivery_id() {
        let body = body(&created());
        let mut headers = BTreeMap::new();
        headers.insert(SIGNATURE_HEADER.to_owned(), sign(SECRET, &body));
        let delivery = |headers: &BTreeMap<String, String>| {
            Jira.verify(
                &[SECRET],
                &Delivery {
                    headers,
                    body: &body,
                    now: SystemTime::now(),
                },
            )
        };
        assert_eq!(delivery(&headers), Ok(Verified { delivery_id: None }));
        headers.insert(
            DELIVERY_ID_HEADER.to_owned(),
            " 1b7c0a0e-4f0e-4a57-9c1d-2e3f4a5b6c7d ".to_owned(),
        );
        assert_eq!(
            delivery(&headers).unwrap().delivery_id.as_deref(),
            Some("1b7c0a0e-4f0e-4a57-9c1d-2e3f4a5b6c7d")
        );
        for unusable in ["", "a b", &"x".repeat(129)] {
            headers.insert(DELIVERY_ID_HEADER.to_owned(), unusable.to_owned());
            assert_eq!(delivery(&headers).unwrap().delivery_id, None);
        }
    }

    #[test]
    fn an_issue_created_is_a_new_ticket() {
        let Event::NewTicket(t) = parse_event(Route::New, &body(&created())).unwrap() else {
            panic!("not a new ticket");
        };
        assert_eq!(t.ticket_id, "SUP-42");
        assert_eq!(t.subject, "VPN drops every hour");
        assert_eq!(t.description, "The VPN client disconnects.");
        assert_eq!(t.priority, "High");
        assert_eq!(t.tenant_id, None);
        assert_eq!(t.created_at.unwrap().unix_timestamp(), 1_705_314_600);
        let issue = IssueEvent::parse(&body(&created())).unwrap();
        assert_eq!(issue.project_key.as_deref(), Some("SUP"));
        assert_eq!(issue.labels, ["vpn", "network"]);
    }

    #[test]
    fn defaults_for_priority_and_description() {
        let mut v = created();
        v["issue"]["fields"]["priority"] = Value::Null;
        v["issue"]["fields"]
            .as_object_mut()
            .unwrap()
            .remove("description");
        let Event::NewTicket(t) = parse_event(Route::New, &body(&v)).unwrap() else {
            panic!();
        };
        assert_eq!(t.priority, DEFAULT_PRIORITY);
        assert_eq!(t.description, "VPN drops every hour");
        // A description in wiki markup (Jira's webhooks in the v2 shape) is kept as text.
        v["issue"]["fields"]["description"] = json!("h2. Steps\n* reboot");
        let Event::NewTicket(t) = parse_event(Route::New, &body(&v)).unwrap() else {
            panic!();
        };
        assert_eq!(t.description, "h2. Steps\n* reboot");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(&str, &str, Value, &str)> = vec![
            ("", "webhookEvent", Value::Null, "webhookEvent is required"),
            (
                "",
                "webhookEvent",
                json!(1),
                "webhookEvent must be a string",
            ),
            ("", "issue", Value::Null, "issue is required"),
            ("", "issue", json!("SUP-1"), "issue must be an object"),
            ("issue", "key", Value::Null, "issue.key is required"),
            ("issue", "key", json!(""), "issue.key must not be empty"),
            (
                "issue",
                "key",
                json!("SUP/1"),
                "issue.key must be at most 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
            ),
            ("issue", "fields", Value::Null, "issue.fields is required"),
            (
                "fields",
                "summary",
                Value::Null,
                "issue.fields.summary is required",
            ),
            (
                "fields",
                "summary",
                json!(" "),
                "issue.fields.summary must not be empty",
            ),
            (
                "fields",
                "summary",
                json!("s".repeat(501)),
                "issue.fields.summary exceeds 500 characters",
            ),
            (
                "fields",
                "description",
                adf(&"d".repeat(10_001)),
                "issue.fields.description exceeds 10000 characters",
            ),
            (
                "fields",
                "description",
                json!(["x"]),
                "issue.fields.description must be an Atlassian Document Format document or a string",
            ),
            (
                "fields",
                "priority",
                json!(3),
                "issue.fields.priority must be an object with a name",
            ),
            (
                "fields",
                "priority",
                json!({"name": "p".repeat(65)}),
                "issue.fields.priority exceeds 64 characters",
            ),
            (
                "fields",
                "created",
                json!("yesterday"),
                "issue.fields.created must be a Jira timestamp such as 2024-01-15T10:30:00.000+0000",
            ),
            (
                "fields",
                "labels",
                json!("vpn"),
                "issue.fields.labels must be a list of strings",
            ),
            (
                "fields",
                "labels",
                json!(vec!["l"; 51]),
                "issue.fields.labels has more than 50 entries",
            ),
        ];
        for (parent, key, value, message) in cases {
            let mut v = created();
            let target = match parent {
                "" => &mut v,
                "issue" => &mut v["issue"],
                _ => &mut v["issue"]["fields"],
            };
            if value.is_null() {
                target.as_object_mut().unwrap().remove(key);
            } else {
                target[key] = value;
            }
            let err = parse_event(Route::New, &body(&v)).unwrap_err();
            assert_eq!(err.to_string(), message, "{parent}.{key}");
            assert!(err.field().is_some());
        }
        assert_eq!(
            parse_event(Route::New, b"[1]").unwrap_err(),
            ValidationError::NotJson
        );
        assert_eq!(
            parse_event(Route::New, &vec![b' '; MAX_WEBHOOK_BODY_BYTES + 1]).unwrap_err(),
            ValidationError::TooLarge
        );
    }

    fn resolved_update() -> Value {
        let mut v = created();
        v["webhookEvent"] = json!("jira:issue_updated");
        let f = &mut v["issue"]["fields"];
        f["resolution"] =
            json!({"id": "10000", "name": "Done", "description": "Work has been completed."});
        f["resolutiondate"] = json!("2024-01-16T09:12:44.512+0100");
        f["comment"] = json!({"comments": [
            {"id": "1", "body": adf("Renewed the VPN certificate.")},
            {"id": "2", "body": "Similar tickets: SUP-1\n\nAdded by csp (csp-job:j1)"}
        ], "maxResults": 2, "total": 2, "startAt": 0});
        v["changelog"] = json!({"id": "1", "items": [
            {"field": "resolution", "fieldtype": "jira", "from": null, "fromString": null, "to": "10000", "toString": "Done"}
        ]});
        v
    }

    #[test]
    fn an_update_that_resolves_is_a_resolved_ticket() {
        for route in [Route::New, Route::Resolved] {
            let Event::Resolved(e) = parse_event(route, &body(&resolved_update())).unwrap() else {
                panic!("not resolved on {route:?}");
            };
            assert_eq!(e.ticket.ticket_id, "SUP-42");
            assert_eq!(e.ticket.description, "The VPN client disconnects.");
            // The csp note is not the resolution; the comment before it is.
            assert_eq!(e.ticket.resolution, "Done\nRenewed the VPN certificate.");
            assert_eq!(e.ticket.resolved_date.unix_timestamp(), 1_705_392_764);
            assert_eq!(e.ticket.tags, ["vpn", "network"]);
        }
        // Without comments, the resolution's name.
        let mut v = resolved_update();
        v["issue"]["fields"]
            .as_object_mut()
            .unwrap()
            .remove("comment");
        let Event::Resolved(e) = parse_event(Route::Resolved, &body(&v)).unwrap() else {
            panic!();
        };
        assert_eq!(e.ticket.resolution, "Done");
        // A long comment is cut to fit.
        v["comment"] = json!({"body": "c".repeat(20_000)});
        let Event::Resolved(e) = parse_event(Route::Resolved, &body(&v)).unwrap() else {
            panic!();
        };
        assert_eq!(e.ticket.resolution.chars().count(), MAX_RESOLUTION_CHARS);
        assert!(e.ticket.resolution.ends_with('…'));
    }

    #[test]
    fn other_events_and_updates_that_resolve_nothing_are_ignored() {
        let mut v = created();
        v["webhookEvent"] = json!("jira:issue_deleted");
        assert!(matches!(
            parse_event(Route::New, &body(&v)),
            Ok(Event::Ignored(r)) if r.contains("jira:issue_deleted")
        ));
        // Ignored events are not validated further.
        let ignored = json!({"webhookEvent": "comment_created", "comment": {}});
        assert!(matches!(
            parse_event(Route::Resolved, &body(&ignored)),
            Ok(Event::Ignored(_))
        ));
        v["webhookEvent"] = json!("jira:issue_updated");
        assert!(matches!(
            parse_event(Route::New, &body(&v)),
            Ok(Event::Ignored(r)) if r == "the update leaves SUP-42 unresolved"
        ));
        assert!(matches!(
            parse_event(Route::Resolved, &body(&v)),
            Ok(Event::Ignored(r)) if r == "SUP-42 has no resolution"
        ));
        // A resolved issue whose update changed something else.
        let mut v = resolved_update();
        v["changelog"]["items"][0]["field"] = json!("labels");
        assert!(matches!(
            parse_event(Route::New, &body(&v)),
            Ok(Event::Ignored(_))
        ));
        assert!(matches!(
            parse_event(Route::Resolved, &body(&v)),
            Ok(Event::Resolved(_))
        ));
        // On the resolved route, a resolution needs its date.
        v["issue"]["fields"]["resolutiondate"] = Value::Null;
        assert_eq!(
            parse_event(Route::Resolved, &body(&v))
                .unwrap_err()
                .to_string(),
            "issue.fields.resolutiondate is required"
        );
    }

    #[test]
    fn jira_times_parse_in_their_offsets() {
        for (s, secs) in [
            ("2024-01-15T10:30:00.000+0000", 1_705_314_600),
            ("2024-01-15T11:30:00.000+0100", 1_705_314_600),
            ("2024-01-15T10:30:00+0000", 1_705_314_600),
            ("2024-01-15T10:30:00Z", 1_705_314_600),
        ] {
            assert_eq!(
                parse_jira_time(s).map(OffsetDateTime::unix_timestamp),
                Some(secs),
                "{s}"
            );
        }
        assert_eq!(parse_jira_time("15/01/2024"), None);
    }

    #[test]
    fn the_import_jql_is_quoted_and_widened() {
        let from = OffsetDateTime::from_unix_timestamp(1_705_314_600).unwrap(); // 2024-01-15 10:30 UTC
        let to = OffsetDateTime::from_unix_timestamp(1_705_401_045).unwrap(); // 2024-01-16 10:30:45 UTC
        assert_eq!(
            resolved_jql("SUP", None, from, to),
            r#"project = "SUP" AND resolved >= "2024/01/14 20:30" AND resolved <= "2024/01/17 00:31" ORDER BY key ASC"#
        );
        assert!(
            resolved_jql("SUP", Some("Service \"request\"\n"), from, to)
                .contains(r#"AND issuetype = "Service \"request\" " ORDER BY"#)
        );
    }

    #[test]
    fn project_keys_and_settings() {
        for ok in ["SUP", "IT", "A1_B2", "ABCDEFGHIJ"] {
            assert!(is_project_key(ok), "{ok}");
        }
        for bad in ["S", "sup", "1SUP", "SUP-1", "ABCDEFGHIJK", ""] {
            assert!(!is_project_key(bad), "{bad}");
        }
        let mut s = Settings::default();
        for (k, v) in [
            ("jira_url", "https://acme.atlassian.net"),
            ("jira_email", "agent@acme.example"),
            ("jira_project_key", "SUP"),
        ] {
            s.values.insert(k.into(), v.into());
        }
        s.secrets
            .insert("jira_api_token".into(), SecretString::from("ATATT3x-token"));
        assert_eq!(Jira.check(&s), Ok(()));
        let client = Jira
            .client(HttpClient::new().unwrap(), &s, ClientOptions::default())
            .unwrap();
        assert_eq!(client.tool_type(), ToolType::Jira);
        assert!(!format!("{client:?}").contains("ATATT3x"));

        let mut bad = s.clone();
        bad.values.insert("jira_project_key".into(), "sup-1".into());
        assert_eq!(Jira.check(&bad).unwrap_err().field, "jira_project_key");
        let mut bad = s.clone();
        bad.values.insert("jira_issue_type".into(), "t".repeat(61));
        assert_eq!(Jira.check(&bad).unwrap_err().field, "jira_issue_type");
        let mut bad = s.clone();
        bad.secrets
            .insert("jira_api_token".into(), SecretString::from("a b-SECRET"));
        let e = Jira.check(&bad).unwrap_err();
        assert_eq!(e.field, "jira_api_token");
        assert!(!e.message.contains("SECRET"));
        let mut bad = s.clone();
        bad.values
            .insert("jira_url".into(), "https://u:hunter2@acme.example".into());
        let e = Jira.check(&bad).unwrap_err();
        assert_eq!(e.field, "jira_url");
        assert!(!e.message.contains("hunter2"));
    }

    #[test]
    fn the_basic_credential_is_email_colon_token() {
        let c = JiraClient::new(
            HttpClient::new().unwrap(),
            "https://acme.atlassian.net/",
            "agent@acme.example",
            &SecretString::from("tok"),
            "SUP",
        )
        .unwrap();
        assert_eq!(
            c.authorization.expose_secret(),
            format!("Basic {}", BASE64.encode("agent@acme.example:tok"))
        );
        let uri = c
            .uri(
                &["rest", "api", "3", "search", "jql"],
                &[("jql", "project = \"SUP\""), ("nextPageToken", "a+b/c=")],
            )
            .unwrap();
        assert_eq!(uri.path(), "/rest/api/3/search/jql");
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(query[0].1, "project = \"SUP\"");
        assert_eq!(query[1].1, "a+b/c=");
        assert!(
            JiraClient::new(
                HttpClient::new().unwrap(),
                "https://acme.atlassian.net",
                "a:b@acme.example",
                &SecretString::from("tok"),
                "SUP",
            )
            .is_err()
        );
    }

    #[test]
    fn notes_are_plain_text_with_the_marker() {
        let m = JobMarker::new("job-7").unwrap();
        let html = note_text(
            &m,
            "<h3>Similar tickets</h3><ul><li>SUP-1</li></ul>",
            NoteFormat::Html,
        );
        assert_eq!(html, "Similar tickets\nSUP-1\nAdded by csp (csp-job:job-7)");
        assert!(m.found_in(&html));
        let md = note_text(&m, "### Similar tickets", NoteFormat::Markdown);
        assert!(md.starts_with("### Similar tickets\n\n---\n"));
        assert!(m.found_in(&md));
    }

    #[test]
    fn search_hits_become_resolved_tickets_or_skips() {
        let from = OffsetDateTime::from_unix_timestamp(1_705_000_000).unwrap();
        let to = OffsetDateTime::from_unix_timestamp(1_706_000_000).unwrap();
        let hit = json!({"id": "1", "key": "SUP-1", "fields": {
            "summary": "Printer offline", "description": null,
            "resolution": {"name": "Fixed"}, "resolutiondate": "2024-01-16T09:12:44.000+0000",
            "labels": ["printer"], "comment": {"comments": [{"body": adf("Restarted the spooler.")}]}
        }});
        let t = resolved_from(&hit, from, to).unwrap().unwrap();
        assert_eq!(t.description, "Printer offline");
        assert_eq!(t.resolution, "Fixed\nRestarted the spooler.");
        assert_eq!(t.tags, ["printer"]);
        let mut outside = hit.clone();
        outside["fields"]["resolutiondate"] = json!("2020-01-01T00:00:00.000+0000");
        assert_eq!(resolved_from(&outside, from, to), None);
        let mut unresolved = hit.clone();
        unresolved["fields"]["resolution"] = Value::Null;
        assert_eq!(
            resolved_from(&unresolved, from, to)
                .unwrap()
                .unwrap_err()
                .reason,
            "no resolution"
        );
        let mut undated = hit;
        undated["fields"]["resolutiondate"] = Value::Null;
        assert_eq!(
            resolved_from(&undated, from, to)
                .unwrap()
                .unwrap_err()
                .reason,
            "no resolution date"
        );
    }
}
