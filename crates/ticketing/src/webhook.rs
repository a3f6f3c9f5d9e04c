//! The webhook contract: what a ticketing tool sends to
//! `POST /webhook/{tool_type}/{tenant_id}[/resolved]` and how it proves it
//! was the tool.
//!
//! Order of work for a delivery, as the svix and Standard Webhooks
//! libraries do it: refuse a body over [`MAX_WEBHOOK_BODY_BYTES`], verify the
//! signature over the raw bytes ([`verify_signature`]), and only then parse
//! ([`NewTicket::parse`], [`ResolvedTicketEvent::parse`]).
//!
//! ServiceDesk Plus has no signing of its own; the scheme here is ours, and
//! a ServiceDesk Plus custom function computes it (`docs/ticket-enhancement.md`):
//! `X-ServiceDesk-Timestamp: <unix seconds>` and
//! `X-ServiceDesk-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::types::{ResolvedTicket, validate_ticket_id};

/// The largest webhook body read; more is refused (413) before anything else.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 256 * 1024;
/// In characters, not bytes.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
pub const MAX_SUBJECT_CHARS: usize = 500;
pub const MAX_RESOLUTION_CHARS: usize = 10_000;
pub const MAX_PRIORITY_CHARS: usize = 64;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 100;

/// Header names, lowercase as `http::HeaderName` keeps them.
pub const TIMESTAMP_HEADER: &str = "x-servicedesk-timestamp";
pub const SIGNATURE_HEADER: &str = "x-servicedesk-signature";
/// How far a delivery's timestamp may be from our clock, either way.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------- signatures

/// Why a delivery's signature was refused. All of them answer 401; the
/// variant is for the security log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the timestamp or signature header is missing")]
    Missing,
    #[error("the timestamp or signature header is malformed")]
    Malformed,
    #[error("the timestamp is {skew_secs} s away from the server's clock (more than 300 s)")]
    Stale { skew_secs: i64 },
    #[error("the signature does not match")]
    Mismatch,
}

/// `sha256=<hex>` for `body` sent at `timestamp` (unix seconds) under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex(&csp_auth::hmac_sha256(
            secret,
            &signed_message(timestamp, body)
        ))
    )
}

/// Checks a delivery against each of `secrets` (the tenant's current one and,
/// during a rotation's grace period, the previous one).
///
/// Every secret is tried, whichever matches, so the time taken says nothing
/// about which one (or how much of a signature) was right. The timestamp is
/// checked first: a stale delivery is refused without computing anything.
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
    if ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    let timestamp: i64 = ts.parse().map_err(|_| SignatureError::Malformed)?;
    let hex_sig = sig
        .strip_prefix("sha256=")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(SignatureError::Malformed)?;
    let now_secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let skew_secs = now_secs.saturating_sub(timestamp);
    if skew_secs.unsigned_abs() > TIMESTAMP_TOLERANCE.as_secs() {
        return Err(SignatureError::Stale { skew_secs });
    }
    let message = signed_message(timestamp, body);
    let mut matched = false;
    for secret in secrets {
        // `|` rather than `||`: no early exit.
        matched |= csp_auth::verify_hmac_sha256_hex(secret, &message, hex_sig);
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn signed_message(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let ts = timestamp.to_string();
    let mut msg = Vec::with_capacity(ts.len() + 1 + body.len());
    msg.extend_from_slice(ts.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(body);
    msg
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

// ------------------------------------------------------------------ payloads

/// Why a payload was refused (400, or 413 for [`ValidationError::TooLarge`]).
/// Every message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("the body exceeds {max} bytes", max = MAX_WEBHOOK_BODY_BYTES)]
    TooLarge,
    #[error("the body is not a JSON object")]
    NotJson,
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("{field} exceeds {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

impl ValidationError {
    /// The payload field at fault, if it is one field.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ValidationError::TooLarge | ValidationError::NotJson => None,
            ValidationError::Missing { field }
            | ValidationError::Empty { field }
            | ValidationError::WrongType { field, .. }
            | ValidationError::TooLong { field, .. }
            | ValidationError::Invalid { field, .. } => Some(field),
        }
    }
}

/// A new ticket, validated; `description` and `subject` are plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewTicket {
    pub ticket_id: String,
    pub subject: String,
    pub description: String,
    pub priority: String,
    /// Only on the seed's `POST /webhook/servicedesk`, where the URL has no tenant.
    pub tenant_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

impl NewTicket {
    /// `{"ticket_id": "1234", "subject": "...", "description": "...",
    /// "priority": "High", "tenant_id"?: "acme", "created_at"?: RFC 3339}`;
    /// other fields are ignored. `ticket_id` may also be a JSON number.
    pub fn parse(body: &[u8]) -> Result<Self, ValidationError> {
        let obj = object(body)?;
        let ticket_id = ticket_id(&obj)?;
        let subject = required_text(&obj, "subject", MAX_SUBJECT_CHARS)?;
        let description = required_text(&obj, "description", MAX_DESCRIPTION_CHARS)?;
        let priority = required_text(&obj, "priority", MAX_PRIORITY_CHARS)?;
        // Like the description: a subject of markup only (`<p>&nbsp;</p>`)
        // is no subject, not an empty one accepted.
        let subject = one_line(&crate::html_to_text(&subject));
        if subject.is_empty() {
            return Err(ValidationError::Empty { field: "subject" });
        }
        Ok(Self {
            ticket_id,
            subject,
            description: plain_description(&description, "description")?,
            priority,
            tenant_id: tenant_id(&obj)?,
            created_at: optional_time(&obj, "created_at")?,
        })
    }
}

/// A resolved or closed ticket from `POST /webhook/{tool}/{tenant}/resolved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedTicketEvent {
    pub ticket: ResolvedTicket,
    pub tenant_id: Option<String>,
}

impl ResolvedTicketEvent {
    /// `{"ticket_id", "description", "resolution", "resolved_date": RFC 3339,
    /// "tags"?: [...], "tenant_id"?}`; other fields are ignored.
    pub fn parse(body: &[u8]) -> Result<Self, ValidationError> {
        let obj = object(body)?;
        let ticket_id = ticket_id(&obj)?;
        let description = required_text(&obj, "description", MAX_DESCRIPTION_CHARS)?;
        let resolution = required_text(&obj, "resolution", MAX_RESOLUTION_CHARS)?;
        let resolved_date =
            optional_time(&obj, "resolved_date")?.ok_or(ValidationError::Missing {
                field: "resolved_date",
            })?;
        Ok(Self {
            ticket: ResolvedTicket {
                ticket_id,
                description: plain_description(&description, "description")?,
                resolution: plain_description(&resolution, "resolution")?,
                resolved_date,
                tags: tags(&obj)?,
            },
            tenant_id: tenant_id(&obj)?,
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

fn present<'a>(obj: &'a Map<String, Value>, field: &'static str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

fn ticket_id(obj: &Map<String, Value>) -> Result<String, ValidationError> {
    const FIELD: &str = "ticket_id";
    let id = match present(obj, FIELD) {
        None => return Err(ValidationError::Missing { field: FIELD }),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        Some(_) => {
            return Err(ValidationError::WrongType {
                field: FIELD,
                expected: "a string",
            });
        }
    };
    if id.is_empty() {
        return Err(ValidationError::Empty { field: FIELD });
    }
    validate_ticket_id(&id).map_err(|_| ValidationError::Invalid {
        field: FIELD,
        reason: "must be at most 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
    })?;
    Ok(id)
}

fn required_text(
    obj: &Map<String, Value>,
    field: &'static str,
    max_chars: usize,
) -> Result<String, ValidationError> {
    let s = match present(obj, field) {
        None => return Err(ValidationError::Missing { field }),
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(ValidationError::WrongType {
                field,
                expected: "a string",
            });
        }
    };
    // Counted as sent, before any HTML is taken out: the limit is on what
    // the tool delivers.
    if s.chars().count() > max_chars {
        return Err(ValidationError::TooLong {
            field,
            max: max_chars,
        });
    }
    if s.trim().is_empty() {
        return Err(ValidationError::Empty { field });
    }
    Ok(s.clone())
}

/// The text of an HTML description; one that is only markup is empty.
fn plain_description(raw: &str, field: &'static str) -> Result<String, ValidationError> {
    let text = crate::html_to_text(raw);
    if text.trim().is_empty() {
        return Err(ValidationError::Empty { field });
    }
    Ok(text)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn tenant_id(obj: &Map<String, Value>) -> Result<Option<String>, ValidationError> {
    const FIELD: &str = "tenant_id";
    match present(obj, FIELD) {
        None => Ok(None),
        Some(Value::String(s)) if is_tenant_slug(s) => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ValidationError::Invalid {
            field: FIELD,
            reason: "must match [a-z0-9][a-z0-9-]{1,62}",
        }),
        Some(_) => Err(ValidationError::WrongType {
            field: FIELD,
            expected: "a string",
        }),
    }
}

/// `[a-z0-9][a-z0-9-]{1,62}`, the tenant id's form.
pub fn is_tenant_slug(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

fn optional_time(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<OffsetDateTime>, ValidationError> {
    match present(obj, field) {
        None => Ok(None),
        Some(Value::String(s)) => {
            OffsetDateTime::parse(s.trim(), &Rfc3339)
                .map(Some)
                .map_err(|_| ValidationError::Invalid {
                    field,
                    reason: "must be an RFC 3339 timestamp such as 2025-01-31T09:30:00Z",
                })
        }
        Some(_) => Err(ValidationError::WrongType {
            field,
            expected: "an RFC 3339 timestamp string",
        }),
    }
}

fn tags(obj: &Map<String, Value>) -> Result<Vec<String>, ValidationError> {
    const FIELD: &str = "tags";
    let list = match present(obj, FIELD) {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(ValidationError::WrongType {
                field: FIELD,
                expected: "a list of strings",
            });
        }
    };
    if list.len() > MAX_TAGS {
        return Err(ValidationError::Invalid {
            field: FIELD,
            reason: "has more than 50 entries",
        });
    }
    let mut out = Vec::with_capacity(list.len());
    for tag in list {
        let Value::String(tag) = tag else {
            return Err(ValidationError::WrongType {
                field: FIELD,
                expected: "a list of strings",
            });
        };
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(ValidationError::Invalid {
                field: FIELD,
                reason: "has an entry longer than 100 characters",
            });
        }
        let tag = tag.trim();
        if !tag.is_empty() && !out.iter().any(|t: &String| t == tag) {
            out.push(tag.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"whsec-current-0123456789";
    const OLD: &[u8] = b"whsec-previous-0123456789";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    // A worked example that docs/ticket-enhancement.md can quote: anyone's
    // HMAC-SHA256 of "1700000000.{\"ticket_id\":\"1234\"}" under "demo-secret".
    #[test]
    fn signing_is_hmac_sha256_of_timestamp_dot_body() {
        let sig = sign(b"demo-secret", 1_700_000_000, br#"{"ticket_id":"1234"}"#);
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        let expected = hex(&csp_auth::hmac_sha256(
            b"demo-secret",
            br#"1700000000.{"ticket_id":"1234"}"#,
        ));
        assert_eq!(sig, format!("sha256={expected}"));
        // The same figure from Python's hmac module, for the docs.
        assert_eq!(
            sig,
            "sha256=b7ec24b85288954d92ac6320dfbf3e7d701684f9e512aa0dd275ef0a7c6fca11"
        );
    }

    #[test]
    fn a_fresh_signature_by_the_current_or_previous_secret_passes() {
        let body = br#"{"ticket_id":"1"}"#;
        let now = at(1_700_000_000);
        for (secret, ts) in [
            (SECRET, 1_700_000_000),
            (OLD, 1_699_999_750),
            (SECRET, 1_700_000_300),
        ] {
            let sig = sign(secret, ts, body);
            assert_eq!(
                verify_signature(&[SECRET, OLD], Some(&ts.to_string()), Some(&sig), body, now),
                Ok(())
            );
        }
        // Uppercase hex and surrounding spaces are fine.
        let sig = sign(SECRET, 1_700_000_000, body)
            .to_ascii_uppercase()
            .replace("SHA256=", "sha256=");
        assert_eq!(
            verify_signature(&[SECRET], Some(" 1700000000 "), Some(&sig), body, now),
            Ok(())
        );
    }

    #[test]
    fn missing_malformed_stale_and_wrong_signatures_are_told_apart() {
        let body = br#"{"ticket_id":"1"}"#;
        let now = at(1_700_000_000);
        let good = sign(SECRET, 1_700_000_000, body);
        let check = |ts: Option<&str>, sig: Option<&str>, body: &[u8]| {
            verify_signature(&[SECRET], ts, sig, body, now)
        };
        assert_eq!(check(None, Some(&good), body), Err(SignatureError::Missing));
        assert_eq!(
            check(Some("1700000000"), None, body),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            check(Some(""), Some(&good), body),
            Err(SignatureError::Missing)
        );
        for ts in ["-5", "17e8", "now", "1700000000000000"] {
            assert_eq!(
                check(Some(ts), Some(&good), body),
                Err(SignatureError::Malformed),
                "{ts}"
            );
        }
        let bare = good.trim_start_matches("sha256=");
        for sig in [bare, "sha1=abc", "sha256=zz", &good[..good.len() - 1]] {
            assert_eq!(
                check(Some("1700000000"), Some(sig), body),
                Err(SignatureError::Malformed),
                "{sig}"
            );
        }
        let old = sign(SECRET, 1_699_999_699, body);
        assert_eq!(
            check(Some("1699999699"), Some(&old), body),
            Err(SignatureError::Stale { skew_secs: 301 })
        );
        let future = sign(SECRET, 1_700_000_301, body);
        assert_eq!(
            check(Some("1700000301"), Some(&future), body),
            Err(SignatureError::Stale { skew_secs: -301 })
        );
        assert_eq!(
            check(Some("1700000000"), Some(&good), br#"{"ticket_id":"2"}"#),
            Err(SignatureError::Mismatch)
        );
        // Another tenant's secret, or a replayed signature under a new timestamp.
        let other = sign(b"someone-else", 1_700_000_000, body);
        assert_eq!(
            check(Some("1700000000"), Some(&other), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(Some("1700000001"), Some(&good), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&[], Some("1700000000"), Some(&good), body, now),
            Err(SignatureError::Mismatch)
        );
    }

    fn new_ticket(v: Value) -> Result<NewTicket, ValidationError> {
        NewTicket::parse(&serde_json::to_vec(&v).unwrap())
    }

    fn valid() -> Value {
        json!({"ticket_id": "1234", "subject": "Outlook crashes", "description": "Outlook crashes on 10.0.0.5",
               "priority": "High", "tenant_id": "acme", "created_at": "2025-01-31T09:30:00Z",
               "unknown": {"nested": true}})
    }

    #[test]
    fn a_new_ticket_parses_and_ignores_unknown_fields() {
        let t = new_ticket(valid()).unwrap();
        assert_eq!(t.ticket_id, "1234");
        assert_eq!(t.subject, "Outlook crashes");
        assert_eq!(t.priority, "High");
        assert_eq!(t.tenant_id.as_deref(), Some("acme"));
        assert_eq!(t.created_at.unwrap().unix_timestamp(), 1_738_315_800);
        let mut v = valid();
        v["ticket_id"] = json!(1234);
        v.as_object_mut().unwrap().remove("tenant_id");
        v.as_object_mut().unwrap().remove("created_at");
        let t = new_ticket(v).unwrap();
        assert_eq!(
            (t.ticket_id.as_str(), t.tenant_id, t.created_at),
            ("1234", None, None)
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("ticket_id", Value::Null, "ticket_id is required"),
            ("ticket_id", json!(""), "ticket_id must not be empty"),
            (
                "ticket_id",
                json!("12/34"),
                "ticket_id must be at most 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
            ),
            (
                "ticket_id",
                json!("9".repeat(65)),
                "ticket_id must be at most 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
            ),
            ("ticket_id", json!(true), "ticket_id must be a string"),
            ("subject", json!("   "), "subject must not be empty"),
            (
                "subject",
                json!("s".repeat(501)),
                "subject exceeds 500 characters",
            ),
            ("description", Value::Null, "description is required"),
            (
                "description",
                json!("<p> </p>"),
                "description must not be empty",
            ),
            ("description", json!(["x"]), "description must be a string"),
            ("priority", json!(""), "priority must not be empty"),
            (
                "tenant_id",
                json!("Acme!"),
                "tenant_id must match [a-z0-9][a-z0-9-]{1,62}",
            ),
            (
                "created_at",
                json!("yesterday"),
                "created_at must be an RFC 3339 timestamp such as 2025-01-31T09:30:00Z",
            ),
        ];
        for (field, value, message) in cases {
            let mut v = valid();
            if value.is_null() {
                v.as_object_mut().unwrap().remove(field);
            } else {
                v[field] = value;
            }
            let err = new_ticket(v).unwrap_err();
            assert_eq!(err.to_string(), message, "{field}");
            assert_eq!(err.field(), Some(field));
        }
    }

    #[test]
    fn the_description_limit_counts_characters_not_bytes() {
        let mut v = valid();
        v["description"] = json!("é".repeat(10_000));
        assert_eq!(
            new_ticket(v.clone()).unwrap().description.chars().count(),
            10_000
        );
        v["description"] = json!("a".repeat(10_001));
        assert_eq!(
            new_ticket(v).unwrap_err().to_string(),
            "description exceeds 10000 characters"
        );
    }

    #[test]
    fn bodies_that_are_too_large_or_not_objects_are_refused() {
        let big = vec![b' '; MAX_WEBHOOK_BODY_BYTES + 1];
        assert_eq!(NewTicket::parse(&big), Err(ValidationError::TooLarge));
        for body in [&b"not json"[..], b"[1,2]", b"\"s\"", b""] {
            assert_eq!(NewTicket::parse(body), Err(ValidationError::NotJson));
            assert_eq!(
                ResolvedTicketEvent::parse(body).unwrap_err(),
                ValidationError::NotJson
            );
        }
    }

    #[test]
    fn an_html_description_becomes_plain_text() {
        let mut v = valid();
        v["description"] = json!(
            "<div>Printer <b>PRN-2</b> offline</div><div>since &quot;9:00&quot;</div><script>x()</script>"
        );
        v["subject"] = json!("<b>Printer</b>\n offline");
        let t = new_ticket(v).unwrap();
        assert_eq!(t.description, "Printer PRN-2 offline\nsince \"9:00\"");
        assert_eq!(t.subject, "Printer offline");
    }

    // Found by the property tests: markup passed the blank check as sent
    // and became an empty subject.
    #[test]
    fn a_subject_of_markup_only_is_empty() {
        for subject in ["<p></p>", "<b>&nbsp;</b>", "<br/>\n<div> </div>"] {
            let mut v = valid();
            v["subject"] = json!(subject);
            assert_eq!(
                new_ticket(v),
                Err(ValidationError::Empty { field: "subject" }),
                "{subject:?}"
            );
        }
    }

    #[test]
    fn a_resolved_ticket_parses_with_tags_and_a_date() {
        let body = json!({"ticket_id": "77", "description": "VPN drops", "resolution": "<p>Renewed the certificate</p>",
                          "resolved_date": "2025-02-01T10:00:00+01:00", "tags": ["vpn", " vpn ", "network", ""],
                          "tenant_id": "acme", "extra": 1});
        let e = ResolvedTicketEvent::parse(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(e.ticket.ticket_id, "77");
        assert_eq!(e.ticket.resolution, "Renewed the certificate");
        assert_eq!(e.ticket.resolved_date.unix_timestamp(), 1_738_400_400);
        assert_eq!(e.ticket.tags, ["vpn", "network"]);
        assert_eq!(e.tenant_id.as_deref(), Some("acme"));
    }

    #[test]
    fn a_resolved_ticket_names_its_bad_fields() {
        let base = json!({"ticket_id": "77", "description": "VPN drops", "resolution": "fixed",
                          "resolved_date": "2025-02-01T10:00:00Z"});
        let cases: Vec<(&str, Value, &str)> = vec![
            ("resolution", Value::Null, "resolution is required"),
            ("resolved_date", Value::Null, "resolved_date is required"),
            (
                "resolved_date",
                json!(1738400400),
                "resolved_date must be an RFC 3339 timestamp string",
            ),
            (
                "description",
                json!("x".repeat(10_001)),
                "description exceeds 10000 characters",
            ),
            ("tags", json!("vpn"), "tags must be a list of strings"),
            ("tags", json!([1]), "tags must be a list of strings"),
            (
                "tags",
                json!(vec!["t"; 51]),
                "tags has more than 50 entries",
            ),
        ];
        for (field, value, message) in cases {
            let mut v = base.clone();
            if value.is_null() {
                v.as_object_mut().unwrap().remove(field);
            } else {
                v[field] = value;
            }
            let err = ResolvedTicketEvent::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
            assert_eq!(err.to_string(), message, "{field}");
            assert_eq!(err.field(), Some(field));
        }
    }

    #[test]
    fn tenant_slugs() {
        for ok in ["acme", "a1", "0-msp", &"a".repeat(63)] {
            assert!(is_tenant_slug(ok), "{ok}");
        }
        for bad in ["a", "-acme", "Acme", "ac_me", "", &"a".repeat(64)] {
            assert!(!is_tenant_slug(bad), "{bad}");
        }
    }
}
