//! The Zendesk connector: its webhooks, and its client against the fake
//! Zendesk (`csp_mock_ticketing::MockZendesk`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use csp_http::{HttpClient, Limits};
use csp_mock_ticketing::{
    MockZendesk, MockZendeskTicket, NoteFault, RunningZendesk, TOPICS, ZENDESK_FIRST_SEED_ID,
    ZENDESK_REQUESTER_ID,
};
use csp_ticketing::connector::{
    ClientOptions, Delivery, Event, FailureKind, RetryPolicy, Route, Settings, ToolType,
};
use csp_ticketing::registry::connector;
use csp_ticketing::webhook::{SignatureError, ValidationError};
use csp_ticketing::zendesk::{
    INVOCATION_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, ZendeskAuth, ZendeskClient, sign,
};
use csp_ticketing::{JobMarker, NoteFormat};
use secrecy::SecretString;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const EMAIL: &str = "agent@acme.example";
const TOKEN: &str = "zd-token-0123456789";
const TICKET: &str = "5158";
const SECRET: &[u8] = b"dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";
const PREVIOUS: &[u8] = b"previous-signing-secret-0123";
const FIXTURE: &[u8] = include_bytes!("fixtures/zendesk_ticket_created.json");

/// Retries fast enough for tests.
const FAST: RetryPolicy = RetryPolicy {
    attempts: 3,
    base_delay: Duration::from_millis(10),
};

async fn mock() -> RunningZendesk {
    mock_with(MockZendesk::builder()).await
}

async fn mock_with(builder: csp_mock_ticketing::MockZendeskBuilder) -> RunningZendesk {
    let mock = builder
        .credential(EMAIL, TOKEN)
        .hang_for(Duration::from_secs(30))
        .build();
    let mut open = MockZendeskTicket::open(
        5158,
        "Cannot login to mobile app",
        "Customer is experiencing login issues with the mobile app",
        Some("high"),
    );
    open.tags = vec!["mobile".into(), "login".into()];
    mock.insert(open);
    RunningZendesk::start(mock).await.unwrap()
}

fn client(m: &RunningZendesk) -> ZendeskClient {
    client_with(&m.base_url(), TOKEN)
}

fn client_with(base: &str, token: &str) -> ZendeskClient {
    ZendeskClient::new(
        HttpClient::new().unwrap(),
        "acme",
        Some(base),
        ZendeskAuth {
            email: EMAIL.into(),
            api_token: SecretString::from(token),
        },
    )
    .unwrap()
    .with_retry(FAST)
    .with_limits(Limits {
        timeout: Duration::from_secs(5),
        ..Limits::default()
    })
}

fn status(e: &csp_ticketing::connector::ApiError) -> Option<u16> {
    e.status().map(|s| s.as_u16())
}

fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t).format(&Rfc3339).unwrap()
}

// ------------------------------------------------------------------ webhooks

fn headers(secret: &[u8], timestamp: &str, body: &[u8]) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TIMESTAMP_HEADER.to_owned(), timestamp.to_owned()),
        (SIGNATURE_HEADER.to_owned(), sign(secret, timestamp, body)),
        (INVOCATION_HEADER.to_owned(), "8350205582".to_owned()),
    ])
}

fn verify(
    secrets: &[&[u8]],
    headers: &BTreeMap<String, String>,
    body: &[u8],
    now: SystemTime,
) -> Result<Option<String>, SignatureError> {
    connector(ToolType::Zendesk)
        .verify(secrets, &Delivery { headers, body, now })
        .map(|v| v.delivery_id)
}

#[test]
fn signatures_by_either_secret_pass_and_bad_ones_are_told_apart() {
    let now = SystemTime::now();
    let ts = rfc3339(now);
    let good = headers(SECRET, &ts, FIXTURE);
    assert_eq!(
        verify(&[SECRET, PREVIOUS], &good, FIXTURE, now),
        Ok(Some("8350205582".into()))
    );
    let old = headers(PREVIOUS, &ts, FIXTURE);
    assert!(verify(&[SECRET, PREVIOUS], &old, FIXTURE, now).is_ok());
    assert_eq!(
        verify(&[SECRET], &old, FIXTURE, now),
        Err(SignatureError::Mismatch)
    );
    // A changed body, another timestamp under the same signature.
    let mut changed = FIXTURE.to_vec();
    changed.push(b'\n');
    assert_eq!(
        verify(&[SECRET], &good, &changed, now),
        Err(SignatureError::Mismatch)
    );
    let mut moved = good.clone();
    moved.insert(
        TIMESTAMP_HEADER.into(),
        rfc3339(now - Duration::from_secs(1)),
    );
    assert_eq!(
        verify(&[SECRET], &moved, FIXTURE, now),
        Err(SignatureError::Mismatch)
    );
    // Missing headers.
    for name in [TIMESTAMP_HEADER, SIGNATURE_HEADER] {
        let mut missing = good.clone();
        missing.remove(name);
        assert_eq!(
            verify(&[SECRET], &missing, FIXTURE, now),
            Err(SignatureError::Missing),
            "{name}"
        );
    }
    // Malformed ones: a hex signature, a signature of another length, a date that is not one.
    for (name, value) in [
        (SIGNATURE_HEADER, "sha256=abcdef"),
        (SIGNATURE_HEADER, "c2hvcnQ="),
        (TIMESTAMP_HEADER, "last tuesday"),
    ] {
        let mut bad = good.clone();
        bad.insert(name.into(), value.into());
        assert_eq!(
            verify(&[SECRET], &bad, FIXTURE, now),
            Err(SignatureError::Malformed),
            "{value}"
        );
    }
    // Stale either way, by more than 300 s.
    let stale_ts = rfc3339(now - Duration::from_secs(301));
    let stale = headers(SECRET, &stale_ts, FIXTURE);
    assert!(matches!(
        verify(&[SECRET], &stale, FIXTURE, now),
        Err(SignatureError::Stale { skew_secs: 301 })
    ));
    let future_ts = rfc3339(now + Duration::from_secs(302));
    let future = headers(SECRET, &future_ts, FIXTURE);
    assert!(matches!(
        verify(&[SECRET], &future, FIXTURE, now),
        Err(SignatureError::Stale { .. })
    ));
    let recent_ts = rfc3339(now - Duration::from_secs(299));
    let recent = headers(SECRET, &recent_ts, FIXTURE);
    assert!(verify(&[SECRET], &recent, FIXTURE, now).is_ok());
}

fn parse(route: Route, body: &Value) -> Result<Event, ValidationError> {
    connector(ToolType::Zendesk).parse(route, &serde_json::to_vec(body).unwrap())
}

#[test]
fn the_recorded_ticket_created_event_is_a_new_ticket_on_either_route() {
    for route in [Route::New, Route::Resolved] {
        let Ok(Event::NewTicket(t)) = connector(ToolType::Zendesk).parse(route, FIXTURE) else {
            panic!("not a new ticket");
        };
        assert_eq!(t.ticket_id, "5158");
        assert_eq!(t.subject, "Cannot login to mobile app");
        assert_eq!(
            t.description,
            "Customer is experiencing login issues with the mobile app"
        );
        assert_eq!(t.priority, "High");
        assert_eq!(t.tenant_id, None);
        assert_eq!(
            t.created_at.unwrap(),
            OffsetDateTime::parse("2025-01-08T10:12:07Z", &Rfc3339).unwrap()
        );
    }
}

#[test]
fn a_ticket_without_priority_or_subject_still_parses() {
    let mut v: Value = serde_json::from_slice(FIXTURE).unwrap();
    v["detail"]["priority"] = Value::Null;
    v["detail"]["subject"] = json!("");
    v["detail"]["description"] = json!("\n  VPN drops every hour\nsince Monday");
    let Ok(Event::NewTicket(t)) = parse(Route::New, &v) else {
        panic!("not a new ticket");
    };
    assert_eq!(t.priority, "Normal");
    assert_eq!(t.subject, "VPN drops every hour");
}

#[test]
fn bad_event_fields_are_named_as_in_the_event() {
    let base: Value = serde_json::from_slice(FIXTURE).unwrap();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("id", Value::Null, "detail.id is required"),
        (
            "id",
            json!("12/34"),
            "detail.id must be at most 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
        ),
        ("description", Value::Null, "detail.description is required"),
        (
            "description",
            json!("x".repeat(10_001)),
            "detail.description exceeds 10000 characters",
        ),
        (
            "subject",
            json!("s".repeat(501)),
            "detail.subject exceeds 500 characters",
        ),
        ("priority", json!(3), "detail.priority must be a string"),
        (
            "created_at",
            json!("yesterday"),
            "detail.created_at must be an RFC 3339 timestamp such as 2025-01-31T09:30:00Z",
        ),
    ];
    for (field, value, message) in cases {
        let mut v = base.clone();
        if value.is_null() {
            v["detail"].as_object_mut().unwrap().remove(field);
        } else {
            v["detail"][field] = value;
        }
        let e = parse(Route::New, &v).unwrap_err();
        assert_eq!(e.to_string(), message, "{field}");
        assert_eq!(e.field(), Some(message.split(' ').next().unwrap()));
    }
    let mut no_detail = base.clone();
    no_detail.as_object_mut().unwrap().remove("detail");
    assert_eq!(
        parse(Route::New, &no_detail).unwrap_err(),
        ValidationError::Missing { field: "detail" }
    );
    let big = vec![b' '; csp_ticketing::webhook::MAX_WEBHOOK_BODY_BYTES + 1];
    assert_eq!(
        connector(ToolType::Zendesk).parse(Route::New, &big),
        Err(ValidationError::TooLarge)
    );
}

#[test]
fn status_changes_and_other_events_are_ignored_with_a_reason() {
    let mut v: Value = serde_json::from_slice(FIXTURE).unwrap();
    v["type"] = json!("zen:event-type:ticket.status_changed");
    v["event"] = json!({"current": "PENDING", "previous": "OPEN"});
    let Ok(Event::Ignored(why)) = parse(Route::New, &v) else {
        panic!("not ignored");
    };
    assert!(why.contains("5158") && why.contains("PENDING"), "{why}");

    // Solved, but Zendesk's event carries no resolution.
    v["event"] = json!({"current": "SOLVED", "previous": "OPEN"});
    let Ok(Event::Ignored(why)) = parse(Route::Resolved, &v) else {
        panic!("not ignored");
    };
    assert!(why.contains("no description and resolution"), "{why}");

    // One that carries both (an enriching proxy) is a resolved ticket.
    v["detail"]["resolution"] = json!("Reset the app's cached token.");
    let Ok(Event::Resolved(r)) = parse(Route::Resolved, &v) else {
        panic!("not resolved");
    };
    assert_eq!(r.ticket.ticket_id, "5158");
    assert_eq!(r.ticket.resolution, "Reset the app's cached token.");
    assert_eq!(r.ticket.tags, ["mobile", "login"]);
    assert_eq!(r.ticket.resolved_date.unix_timestamp(), 1_736_331_127);

    let mut other: Value = serde_json::from_slice(FIXTURE).unwrap();
    other["type"] = json!("zen:event-type:ticket.comment_added");
    let Ok(Event::Ignored(why)) = parse(Route::New, &other) else {
        panic!("not ignored");
    };
    assert!(why.contains("ticket.comment_added"), "{why}");
    other["event"] = json!({});
    other["type"] = json!("zen:event-type:ticket.status_changed");
    assert_eq!(
        parse(Route::New, &other).unwrap_err(),
        ValidationError::Missing {
            field: "event.current"
        }
    );
}

#[test]
fn trigger_bodies_follow_the_documented_templates() {
    use csp_ticketing::zendesk::{NEW_TICKET_TEMPLATE, RESOLVED_TICKET_TEMPLATE};
    // What Zendesk renders from the templates.
    let resolved = RESOLVED_TICKET_TEMPLATE
        .replace("{{ticket.id}}", "77")
        .replace("{{ticket.description}}", "VPN drops")
        .replace(
            "{{ticket.latest_public_comment}}",
            "Renewed the certificate",
        )
        .replace(
            "{{ticket.updated_at_with_timestamp}}",
            "2025-02-01T09:00:00Z",
        )
        .replace("{{ticket.tags}}", "vpn network vpn");
    let Ok(Event::Resolved(r)) =
        connector(ToolType::Zendesk).parse(Route::Resolved, resolved.as_bytes())
    else {
        panic!("not resolved");
    };
    assert_eq!(r.ticket.ticket_id, "77");
    assert_eq!(r.ticket.resolution, "Renewed the certificate");
    assert_eq!(r.ticket.tags, ["vpn", "network"]);
    assert_eq!(r.ticket.resolved_date.unix_timestamp(), 1_738_400_400);

    let new = NEW_TICKET_TEMPLATE
        .replace("{{ticket.id}}", "78")
        .replace("{{ticket.title}}", "Printer offline")
        .replace("{{ticket.description}}", "PRN-2 shows offline")
        .replace("{{ticket.priority}}", "-")
        .replace(
            "{{ticket.created_at_with_timestamp}}",
            "2025-02-01T08:00:00Z",
        );
    let Ok(Event::NewTicket(t)) = connector(ToolType::Zendesk).parse(Route::New, new.as_bytes())
    else {
        panic!("not new");
    };
    assert_eq!(
        (t.ticket_id.as_str(), t.priority.as_str()),
        ("78", "Normal")
    );

    // A trigger body missing a field names it.
    let e = parse(
        Route::Resolved,
        &json!({"ticket_id": "77", "description": "x", "resolved_date": "2025-02-01T09:00:00Z"}),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "resolution is required");
}

#[test]
fn settings_are_checked() {
    let c = connector(ToolType::Zendesk);
    let mut s = Settings::default();
    s.values.insert("zendesk_subdomain".into(), "acme".into());
    s.values.insert("zendesk_email".into(), EMAIL.into());
    s.secrets
        .insert("zendesk_api_token".into(), SecretString::from(TOKEN));
    assert_eq!(c.check(&s), Ok(()));
    for (field, value) in [
        ("zendesk_subdomain", "Acme.zendesk.com"),
        ("zendesk_email", "nobody"),
        ("zendesk_url", "ftp://proxy.example"),
    ] {
        let mut bad = s.clone();
        bad.values.insert(field.into(), value.into());
        assert_eq!(c.check(&bad).unwrap_err().field, field, "{value}");
    }
    let mut no_token = s.clone();
    no_token.secrets.clear();
    assert_eq!(c.check(&no_token).unwrap_err().field, "zendesk_api_token");
    let names: Vec<&str> = c.fields().iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "zendesk_subdomain",
            "zendesk_email",
            "zendesk_api_token",
            "zendesk_url"
        ]
    );
}

// ----------------------------------------------------------------------- API

#[tokio::test]
async fn a_ticket_is_read() {
    let m = mock().await;
    let t = client(&m).get_ticket(TICKET).await.unwrap();
    assert_eq!(t.ticket_id, "5158");
    assert_eq!(t.subject, "Cannot login to mobile app");
    assert_eq!(
        t.description,
        "Customer is experiencing login issues with the mobile app"
    );
    assert_eq!(t.priority.as_deref(), Some("High"));
    assert_eq!(t.status.as_deref(), Some("open"));
    assert_eq!(t.tags, ["mobile", "login"]);
    assert!(t.created_at.is_some());
    assert_eq!((t.resolved_at, t.resolution), (None, None));

    let e = client(&m).get_ticket("999").await.unwrap_err();
    assert_eq!(status(&e), Some(404));
    assert!(matches!(
        client(&m).get_ticket("../admin").await,
        Err(csp_ticketing::connector::ApiError::InvalidTicketId(_))
    ));
    m.shutdown().await;
}

#[tokio::test]
async fn the_registry_builds_a_client_from_settings() {
    let m = mock().await;
    let mut s = Settings::default();
    s.values.insert("zendesk_subdomain".into(), "acme".into());
    s.values.insert("zendesk_email".into(), EMAIL.into());
    s.values.insert("zendesk_url".into(), m.base_url());
    s.secrets
        .insert("zendesk_api_token".into(), SecretString::from(TOKEN));
    let c = connector(ToolType::Zendesk)
        .client(
            HttpClient::new().unwrap(),
            &s,
            ClientOptions {
                retry: FAST,
                limits: Limits::default(),
            },
        )
        .unwrap();
    assert_eq!(c.tool_type(), ToolType::Zendesk);
    assert_eq!(c.get_ticket(TICKET).await.unwrap().ticket_id, TICKET);
    assert!(c.test_connection().await.is_ok());
    assert!(!format!("{c:?}").contains(TOKEN));
    m.shutdown().await;
}

#[tokio::test]
async fn a_job_posts_one_private_comment_across_redeliveries() {
    let m = mock().await;
    let c = client(&m);
    let marker = JobMarker::new("0b6f3c1e-2d7a-4f0e-9a57-6c1d2e3f4a5b").unwrap();
    let first = c
        .post_note_once(
            TICKET,
            &marker,
            "<h3>Similar Tickets</h3><p>10001</p>",
            NoteFormat::Html,
        )
        .await
        .unwrap();
    assert!(first.created);
    let posted = m.mock().posted_comments_for(5158);
    assert_eq!(posted.len(), 1);
    assert!(!posted[0].public, "a private comment");
    assert_eq!(first.note_id.0, posted[0].id.to_string());
    assert!(posted[0].html_body.contains("<h3>Similar Tickets</h3>"));
    assert!(marker.found_in(&posted[0].html_body));

    // Redelivered: the comment is found, nothing is posted.
    let again = c
        .post_note_once(
            TICKET,
            &marker,
            "<p>another synthesis</p>",
            NoteFormat::Html,
        )
        .await
        .unwrap();
    assert_eq!((again.note_id, again.created), (first.note_id, false));
    assert_eq!(m.mock().note_posts(), 1);

    // Another job gets its own comment; Markdown goes in `body`.
    let other = JobMarker::new("job-2").unwrap();
    assert!(
        c.post_note_once(TICKET, &other, "**Next steps**", NoteFormat::Markdown)
            .await
            .unwrap()
            .created
    );
    let posted = m.mock().posted_comments_for(5158);
    assert_eq!(posted.len(), 2);
    assert!(posted[1].body.starts_with("**Next steps**"));
    assert!(other.found_in(&posted[1].body));
    m.shutdown().await;
}

#[tokio::test]
async fn the_marker_is_found_on_a_later_page_of_comments() {
    let m = mock().await;
    let c = client(&m);
    for i in 0..120 {
        m.mock()
            .add_comment(5158, ZENDESK_REQUESTER_ID, &format!("reply {i}"), true);
    }
    let marker = JobMarker::new("job-late").unwrap();
    c.add_private_comment(
        TICKET,
        &marker.apply("late", NoteFormat::Markdown),
        NoteFormat::Markdown,
    )
    .await
    .unwrap();
    let comments = c.list_comments(TICKET).await.unwrap();
    assert_eq!(comments.len(), 122);
    assert!(comments[121].carries(&marker));
    let before = m.mock().note_posts();
    let posted = c
        .post_note_once(TICKET, &marker, "again", NoteFormat::Markdown)
        .await
        .unwrap();
    assert!(!posted.created);
    assert_eq!(m.mock().note_posts(), before);
    m.shutdown().await;
}

#[tokio::test]
async fn five_hundreds_are_retried_three_times_in_all() {
    let m = mock().await;
    let c = client(&m);
    m.mock()
        .fail_next_note_posts(2, NoteFault::Status { status: 500 });
    let marker = JobMarker::new("job-500").unwrap();
    assert!(
        c.post_note_once(TICKET, &marker, "third time", NoteFormat::Markdown)
            .await
            .unwrap()
            .created
    );
    assert_eq!(m.mock().note_posts(), 3);
    assert_eq!(m.mock().posted_comments().len(), 1);

    m.mock()
        .fail_next_note_posts(3, NoteFault::Status { status: 503 });
    let e = c
        .post_note_once(
            TICKET,
            &JobMarker::new("job-503").unwrap(),
            "never",
            NoteFormat::Markdown,
        )
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(503));
    assert!(e.is_retryable());
    assert_eq!(m.mock().note_posts(), 6);
    assert_eq!(m.mock().posted_comments().len(), 1);
    m.shutdown().await;
}

#[tokio::test]
async fn four_hundreds_are_not_retried() {
    let m = mock().await;
    let c = client(&m);
    for code in [400, 403, 409, 422] {
        m.mock().reset();
        m.mock()
            .fail_next_note_posts(1, NoteFault::Status { status: code });
        let e = c
            .post_note_once(
                TICKET,
                &JobMarker::new("job-4xx").unwrap(),
                "x",
                NoteFormat::Markdown,
            )
            .await
            .unwrap_err();
        assert_eq!(status(&e), Some(code));
        assert!(!e.is_retryable());
        assert_eq!(m.mock().note_posts(), 1, "{code}");
        assert!(m.mock().posted_comments().is_empty());
    }
    // A closed ticket takes no comment: Zendesk's 422, final.
    m.mock().seed_solved(2);
    let e = c
        .post_note_once(
            &(ZENDESK_FIRST_SEED_ID + 1).to_string(),
            &JobMarker::new("job-closed").unwrap(),
            "x",
            NoteFormat::Html,
        )
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(422));
    m.shutdown().await;
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let m = mock().await;
    let c = client(&m).with_limits(Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    m.mock().fail_next_note_posts(1, NoteFault::Hang);
    let posted = c
        .post_note_once(
            TICKET,
            &JobMarker::new("job-hang").unwrap(),
            "after a hang",
            NoteFormat::Markdown,
        )
        .await
        .unwrap();
    assert!(posted.created);
    assert_eq!(m.mock().note_posts(), 2);
    assert_eq!(m.mock().posted_comments().len(), 1);
    m.shutdown().await;
}

#[tokio::test]
async fn a_comment_stored_before_a_500_or_a_timeout_is_not_posted_again() {
    let m = mock().await;
    let c = client(&m).with_limits(Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    m.mock()
        .fail_next_note_posts(1, NoteFault::CreateThenStatus { status: 500 });
    let marker = JobMarker::new("job-stored-500").unwrap();
    let posted = c
        .post_note_once(TICKET, &marker, "body", NoteFormat::Html)
        .await
        .unwrap();
    assert!(!posted.created, "the retry found the stored comment");
    assert_eq!(m.mock().note_posts(), 1);
    assert_eq!(m.mock().posted_comments().len(), 1);

    m.mock().fail_next_note_posts(1, NoteFault::CreateThenHang);
    let marker = JobMarker::new("job-stored-hang").unwrap();
    let posted = c
        .post_note_once(TICKET, &marker, "body", NoteFormat::Markdown)
        .await
        .unwrap();
    assert!(!posted.created);
    assert_eq!(m.mock().posted_comments().len(), 2);
    m.shutdown().await;
}

#[tokio::test]
async fn a_short_retry_after_is_waited_out_and_a_long_one_is_not() {
    let m = mock().await;
    let c = client(&m);
    m.mock().rate_limit_next(1, 1);
    let started = Instant::now();
    assert_eq!(c.get_ticket(TICKET).await.unwrap().ticket_id, TICKET);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(m.mock().api_calls(), 2);

    m.mock().reset();
    m.mock().rate_limit_next(1, 3600);
    let e = c.get_ticket(TICKET).await.unwrap_err();
    assert_eq!(status(&e), Some(429));
    assert_eq!(m.mock().api_calls(), 1);
    m.shutdown().await;
}

#[tokio::test]
async fn rejected_credentials_are_not_retried_and_never_shown() {
    let m = mock().await;
    let wrong = client_with(&m.base_url(), "wrong-token-xyz");
    let e = wrong.get_ticket(TICKET).await.unwrap_err();
    assert_eq!(status(&e), Some(401));
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("Couldn't authenticate you"), "{e}");
    assert!(!e.to_string().contains("wrong-token-xyz"), "{e}");
    assert_eq!(m.mock().api_calls(), 1);
    let e = wrong
        .post_note_once(
            TICKET,
            &JobMarker::new("job-401").unwrap(),
            "x",
            NoteFormat::Html,
        )
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(401));
    assert_eq!(m.mock().note_posts(), 0);
    m.shutdown().await;
}

#[tokio::test]
async fn solved_and_closed_tickets_are_imported_page_by_page() {
    let m = mock().await;
    m.mock().seed_solved(250);
    let c = client(&m);
    // csp's own note on a solved ticket is never its resolution (odd
    // seeds are closed and take no comment).
    let last = ZENDESK_FIRST_SEED_ID + 248;
    c.add_private_comment(
        &last.to_string(),
        &JobMarker::new("job-old")
            .unwrap()
            .apply("<p>csp note</p>", NoteFormat::Html),
        NoteFormat::Html,
    )
    .await
    .unwrap();
    // A solved ticket with nothing but its description is skipped.
    let mut bare = MockZendeskTicket::open(900_000, "No answer", "Nobody replied", None);
    bare.status = "solved".into();
    m.mock().insert(bare);
    m.mock().reset();

    let to = OffsetDateTime::now_utc() + time::Duration::minutes(1);
    let from = to - time::Duration::days(90);
    let mut cursor: Option<String> = None;
    let mut tickets = Vec::new();
    let mut skipped = Vec::new();
    let mut pages = 0;
    loop {
        let page = c.list_resolved(from, to, cursor.as_deref()).await.unwrap();
        pages += 1;
        assert_eq!(page.total_count, None);
        tickets.extend(page.tickets);
        skipped.extend(page.skipped);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(tickets.len(), 250);
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (skipped[0].ticket_id.as_str(), skipped[0].reason.as_str()),
        ("900000", "no comment besides the description")
    );
    // One search per page and one comments call per ticket.
    assert_eq!(m.mock().api_calls(), 3 + 251);

    let first = &tickets[0];
    assert_eq!(first.ticket_id, ZENDESK_FIRST_SEED_ID.to_string());
    assert!(
        first.description.starts_with("Outlook crashes immediately"),
        "{}",
        first.description
    );
    assert_eq!(first.resolution, TOPICS[0].resolution);
    assert_eq!(first.tags, ["email", "outlook"]);
    // Closed ones count too; a requester's thanks after the agent's answer
    // and a private agent note are handled.
    assert_eq!(tickets[1].resolution, TOPICS[1].resolution);
    assert_eq!(tickets[2].resolution, TOPICS[2].resolution);
    assert_eq!(tickets[4].resolution, TOPICS[4].resolution);
    assert_eq!(tickets[248].resolution, TOPICS[248 % 8].resolution);
    assert!(
        tickets
            .iter()
            .all(|t| t.resolved_date >= from && t.resolved_date <= to)
    );

    // A window before everything lists nothing.
    let page = c
        .list_resolved(
            from - time::Duration::days(400),
            from - time::Duration::days(300),
            None,
        )
        .await
        .unwrap();
    assert!(page.tickets.is_empty() && page.next.is_none());
    // A cursor that is not one is refused before any call.
    assert!(c.list_resolved(from, to, Some("a b")).await.is_err());
    m.shutdown().await;
}

#[tokio::test]
async fn connection_tests_say_what_is_wrong() {
    let m = mock().await;
    assert_eq!(client(&m).test_connection().await, Ok(()));

    let wrong = client_with(&m.base_url(), "nope-nope")
        .test_connection()
        .await;
    let failure = wrong.unwrap_err();
    assert_eq!(failure.kind, FailureKind::CredentialsRejected);
    assert_eq!(failure.reason, "Zendesk rejected the e-mail or API token");
    assert!(!failure.reason.contains("nope-nope"));

    let missing = client_with(&format!("{}/nothing-here", m.base_url()), TOKEN)
        .test_connection()
        .await
        .unwrap_err();
    assert_eq!(missing.kind, FailureKind::NotFound);
    assert_eq!(missing.reason, "no Zendesk account 'acme'");

    let tls = client_with(&m.base_url().replace("http://", "https://"), TOKEN)
        .test_connection()
        .await
        .unwrap_err();
    assert_eq!(tls.kind, FailureKind::Tls, "{tls}");

    let free = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let down = client_with(&format!("http://{free}"), TOKEN)
        .test_connection()
        .await
        .unwrap_err();
    assert_eq!(down.kind, FailureKind::Unreachable, "{down}");
    m.shutdown().await;

    // Some accounts answer an anonymous user instead of 401.
    let m = mock_with(MockZendesk::builder().anonymous_for_bad_credentials()).await;
    let anonymous = client_with(&m.base_url(), "nope-nope")
        .test_connection()
        .await
        .unwrap_err();
    assert_eq!(anonymous.kind, FailureKind::CredentialsRejected);
    m.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_server_is_retried_then_reported() {
    let free = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let c = client_with(&format!("http://{free}"), TOKEN);
    let started = Instant::now();
    let e = c.get_ticket(TICKET).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "waited 10 + 20 ms between attempts"
    );
    assert!(!e.to_string().contains(TOKEN));
}

#[test]
fn unix_seconds_are_taken_with_the_same_tolerance() {
    let body = b"{}";
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let h = headers(SECRET, "1700000000", body);
    assert!(verify(&[SECRET], &h, body, now).is_ok());
    let h = headers(SECRET, "1699999000", body);
    assert!(matches!(
        verify(&[SECRET], &h, body, now),
        Err(SignatureError::Stale { .. })
    ));
}
