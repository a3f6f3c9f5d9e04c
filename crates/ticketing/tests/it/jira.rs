//! The Jira Service Management connector against the fake Jira
//! (`csp_mock_ticketing::MockJira`) and a recorded `jira:issue_created`
//! payload; [`JiraFake`] is the fake as the conformance suite sees it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use csp_http::{HttpClient, HttpError, Limits};
use csp_mock_ticketing::{MockJira, MockJiraIssue, NoteFault, RunningJira, TOPICS, text_to_adf};
use csp_ticketing::connector::{
    ApiError, ClientOptions, Connector, Delivery, Event, FailureKind, Route, Settings,
    TicketingClient, ToolType, Verified,
};
use csp_ticketing::jira::{
    DELIVERY_ID_HEADER, Jira, JiraClient, SIGNATURE_HEADER, parse_event, sign,
};
use csp_ticketing::registry::connector;
use csp_ticketing::webhook::SignatureError;
use csp_ticketing::{JobMarker, NoteFormat};
use secrecy::SecretString;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::conformance::{Fake, Fault, Replay};
use crate::helpers::FAST;

const EMAIL: &str = "csp-agent@acme.example";
const TOKEN: &str = "ATATT3xFfGF0-jira-token-0123";
const PROJECT: &str = "SUP";
/// The open issue every fake starts with.
const ISSUE: &str = "SUP-1";
const SECRET: &[u8] = b"jira-webhook-secret-current";
const PREVIOUS: &[u8] = b"jira-webhook-secret-previous";
const FIXTURE: &[u8] = include_bytes!("fixtures/jira_issue_created.json");

fn open_issue() -> MockJiraIssue {
    MockJiraIssue::open(
        ISSUE,
        "Outlook crashes on start",
        json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [
                {"type": "text", "text": "Outlook crashes on "},
                {"type": "text", "text": "WS-17", "marks": [{"type": "strong"}]},
                {"type": "text", "text": " (10.0.0.5)"}
            ]},
            {"type": "bulletList", "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": "since the Office update"}
                ]}]}
            ]}
        ]}),
        "High",
    )
}

async fn jira() -> RunningJira {
    let mock = MockJira::builder()
        .account(EMAIL, TOKEN)
        .hang_for(Duration::from_secs(30))
        .issue(open_issue())
        .build();
    RunningJira::start(mock).await.unwrap()
}

fn client(m: &RunningJira) -> JiraClient {
    client_with(&m.base_url(), TOKEN, PROJECT)
}

fn client_with(base: &str, token: &str, project: &str) -> JiraClient {
    JiraClient::new(
        HttpClient::new().unwrap(),
        base,
        EMAIL,
        &SecretString::from(token),
        project,
    )
    .unwrap()
    .with_retry(FAST)
    .with_limits(Limits {
        timeout: Duration::from_secs(5),
        ..Limits::default()
    })
}

fn status(e: &ApiError) -> Option<u16> {
    e.status().map(|s| s.as_u16())
}

fn headers(secret: &[u8], body: &[u8], delivery_id: Option<&str>) -> BTreeMap<String, String> {
    let mut h = BTreeMap::from([
        (SIGNATURE_HEADER.to_owned(), sign(secret, body)),
        ("content-type".to_owned(), "application/json".to_owned()),
        ("x-atlassian-webhook-flow".to_owned(), "Primary".to_owned()),
    ]);
    if let Some(id) = delivery_id {
        h.insert(DELIVERY_ID_HEADER.to_owned(), id.to_owned());
    }
    h
}

fn verify(
    secrets: &[&[u8]],
    headers: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<Verified, SignatureError> {
    Jira.verify(
        secrets,
        &Delivery {
            headers,
            body,
            now: SystemTime::now(),
        },
    )
}

// ---------------------------------------------------------------- webhooks

#[test]
fn signatures_by_either_secret_pass_and_others_are_told_apart() {
    let id = Some("3b7cc36d-5f0a-4b0e-9a57-6c1d2e3f4a5b");
    for secret in [SECRET, PREVIOUS] {
        let h = headers(secret, FIXTURE, id);
        assert!(verify(&[SECRET, PREVIOUS], &h, FIXTURE).is_ok());
    }
    // The previous secret after its grace period, another tenant's secret.
    let old = headers(PREVIOUS, FIXTURE, id);
    assert_eq!(
        verify(&[SECRET], &old, FIXTURE),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(&[b"someone-else"], &headers(SECRET, FIXTURE, id), FIXTURE),
        Err(SignatureError::Mismatch)
    );
    // One byte more in the body.
    let mut changed = FIXTURE.to_vec();
    changed.push(b'\n');
    assert_eq!(
        verify(&[SECRET], &headers(SECRET, FIXTURE, id), &changed),
        Err(SignatureError::Mismatch)
    );
    // No signature, or something else in its place.
    let mut missing = headers(SECRET, FIXTURE, id);
    missing.remove(SIGNATURE_HEADER);
    assert_eq!(
        verify(&[SECRET], &missing, FIXTURE),
        Err(SignatureError::Missing)
    );
    let good = sign(SECRET, FIXTURE);
    for malformed in [
        "sha256=zz",
        "sha1=0123456789abcdef0123456789abcdef01234567",
        good.trim_start_matches("sha256="),
        &good[..good.len() - 2],
        "method=sha256",
    ] {
        let mut h = headers(SECRET, FIXTURE, id);
        h.insert(SIGNATURE_HEADER.to_owned(), malformed.to_owned());
        assert_eq!(
            verify(&[SECRET], &h, FIXTURE),
            Err(SignatureError::Malformed),
            "{malformed}"
        );
    }
}

#[test]
fn a_repeated_delivery_carries_the_same_id() {
    // Jira retries a delivery with the same identifier; the intake keeps one job per id.
    let first = verify(
        &[SECRET],
        &headers(SECRET, FIXTURE, Some("d-0001")),
        FIXTURE,
    )
    .unwrap();
    let retry = verify(
        &[SECRET],
        &headers(SECRET, FIXTURE, Some("d-0001")),
        FIXTURE,
    )
    .unwrap();
    let next = verify(
        &[SECRET],
        &headers(SECRET, FIXTURE, Some("d-0002")),
        FIXTURE,
    )
    .unwrap();
    assert_eq!(first.delivery_id.as_deref(), Some("d-0001"));
    assert_eq!(first, retry);
    assert_ne!(first, next);
    // Without the header the delivery is still verified; it just has no id.
    assert_eq!(
        verify(&[SECRET], &headers(SECRET, FIXTURE, None), FIXTURE),
        Ok(Verified { delivery_id: None })
    );
}

#[test]
fn the_recorded_issue_created_payload_gives_the_metadata() {
    let Event::NewTicket(t) = connector(ToolType::Jira)
        .parse(Route::New, FIXTURE)
        .unwrap()
    else {
        panic!("not a new ticket");
    };
    assert_eq!(t.ticket_id, "SUP-42");
    assert_eq!(
        t.subject,
        "VPN disconnects every few minutes for the Berlin office"
    );
    assert_eq!(t.priority, "High");
    assert_eq!(t.tenant_id, None);
    assert_eq!(t.created_at.unwrap().unix_timestamp(), 1_705_314_600);
    // Paragraphs, a mention, lists, inline code, a code block, a link, a card and an emoji.
    assert_eq!(
        t.description,
        "Since this morning the VPN client drops the connection every few minutes for everyone in the Berlin office. @Jonas Weber noticed it first.\n\
         - Client: GlobalProtect 6.1.1\n\
         - Gateway: vpn-gw-01 (10.20.0.1)\n\
         - Affected users: about 40\n\
         Steps tried:\n\
         1. Restarted the client\n\
         2. Re-installed the client\n\
         Client log excerpt:\n\
         2024-01-15 09:12:44 [ERROR] Tunnel keep-alive failed (timeout)\n\
         2024-01-15 09:12:45 [INFO] Reconnecting to vpn-gw-01\n\
         See the VPN runbook (https://acme-support.atlassian.net/wiki/spaces/IT/pages/123/VPN) and https://acme-support.atlassian.net/browse/SUP-17 🙏"
    );
    let issue = csp_ticketing::jira::IssueEvent::parse(FIXTURE).unwrap();
    assert_eq!(issue.project_key.as_deref(), Some("SUP"));
    assert_eq!(issue.labels, ["vpn", "remote-work"]);
    assert_eq!(issue.resolution, None);
    // The same payload on the resolved route resolves nothing.
    assert!(matches!(
        parse_event(Route::Resolved, FIXTURE),
        Ok(Event::Ignored(_))
    ));
}

fn fixture() -> Value {
    serde_json::from_slice(FIXTURE).unwrap()
}

#[test]
fn the_recorded_payload_resolved_is_a_history_entry() {
    let mut v = fixture();
    v["webhookEvent"] = json!("jira:issue_updated");
    v["issue_event_type_name"] = json!("issue_resolved");
    let f = &mut v["issue"]["fields"];
    f["resolution"] = json!({"self": "https://acme-support.atlassian.net/rest/api/2/resolution/10000",
        "id": "10000", "description": "Work has been completed on this issue.", "name": "Done"});
    f["resolutiondate"] = json!("2024-01-15T14:02:11.034+0100");
    f["comment"] = json!({"comments": [
        {"id": "10100", "body": "Renewed the gateway certificate; tunnels stay up.", "jsdPublic": true},
        {"id": "10101", "body": "Similar tickets: SUP-17\n\nAdded by csp (csp-job:job-9)", "jsdPublic": false}
    ], "maxResults": 2, "total": 2, "startAt": 0});
    v["changelog"] = json!({"id": "10311", "items": [
        {"field": "resolution", "fieldtype": "jira", "fieldId": "resolution", "from": null, "fromString": null, "to": "10000", "toString": "Done"},
        {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "10001", "fromString": "Waiting for support", "to": "10002", "toString": "Resolved"}
    ]});
    let body = serde_json::to_vec(&v).unwrap();
    for route in [Route::New, Route::Resolved] {
        let Event::Resolved(e) = Jira.parse(route, &body).unwrap() else {
            panic!("not resolved on {route:?}");
        };
        assert_eq!(e.ticket.ticket_id, "SUP-42");
        assert!(e.ticket.description.starts_with("Since this morning"));
        assert_eq!(
            e.ticket.resolution,
            "Done\nRenewed the gateway certificate; tunnels stay up."
        );
        assert_eq!(e.ticket.resolved_date.unix_timestamp(), 1_705_323_731);
        assert_eq!(e.ticket.tags, ["vpn", "remote-work"]);
    }
}

#[test]
fn oversized_and_wrong_fields_are_named() {
    let mut v = fixture();
    v["issue"]["fields"]["description"] = text_to_adf(&"x".repeat(10_001));
    let e = Jira
        .parse(Route::New, &serde_json::to_vec(&v).unwrap())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "issue.fields.description exceeds 10000 characters"
    );
    assert_eq!(e.field(), Some("issue.fields.description"));
    // Exactly at the limit is fine.
    v["issue"]["fields"]["description"] = text_to_adf(&"é".repeat(10_000));
    assert!(
        Jira.parse(Route::New, &serde_json::to_vec(&v).unwrap())
            .is_ok()
    );

    let mut v = fixture();
    v["issue"]["fields"]["created"] = json!("15.01.2024 10:30");
    let e = Jira
        .parse(Route::New, &serde_json::to_vec(&v).unwrap())
        .unwrap_err();
    assert_eq!(e.field(), Some("issue.fields.created"));
    let mut v = fixture();
    v["issue"]["key"] = json!("SUP 42; DROP");
    let e = Jira
        .parse(Route::New, &serde_json::to_vec(&v).unwrap())
        .unwrap_err();
    assert_eq!(e.field(), Some("issue.key"));
}

// --------------------------------------------------------------------- API

#[tokio::test]
async fn an_issue_is_read_as_plain_text() {
    let m = jira().await;
    let t = client(&m).get_issue(ISSUE).await.unwrap();
    assert_eq!(t.ticket_id, ISSUE);
    assert_eq!(t.subject, "Outlook crashes on start");
    assert_eq!(
        t.description,
        "Outlook crashes on WS-17 (10.0.0.5)\n- since the Office update"
    );
    assert_eq!(t.priority.as_deref(), Some("High"));
    assert_eq!(t.status.as_deref(), Some("Open"));
    assert!(t.created_at.is_some());
    assert_eq!((t.resolved_at, t.resolution), (None, None));

    // Resolved, with the agent's comment and then a csp note.
    m.mock()
        .resolve(ISSUE, "Done", Some("Repaired the Office installation."));
    m.mock()
        .add_comment(ISSUE, "Similar tickets\nAdded by csp (csp-job:j-1)", false);
    let t = client(&m).get_ticket(ISSUE).await.unwrap();
    assert_eq!(
        t.resolution.as_deref(),
        Some("Done\nRepaired the Office installation.")
    );
    assert!(t.resolved_at.is_some());

    let e = client(&m).get_issue("SUP-999").await.unwrap_err();
    assert_eq!(status(&e), Some(404));
    assert!(!e.is_retryable());
    assert!(matches!(
        client(&m).get_issue("../admin").await,
        Err(ApiError::InvalidTicketId(_))
    ));
    m.shutdown().await;
}

#[tokio::test]
async fn a_note_is_an_internal_comment_posted_once_per_job() {
    let m = jira().await;
    let c = client(&m);
    let marker = JobMarker::new("0b6f3c1e-2d7a-4f0e-9a57-6c1d2e3f4a5b").unwrap();
    let first = c
        .post_note_once(
            ISSUE,
            &marker,
            "<h3>Similar Tickets</h3><ul><li>SUP-17: renewed the certificate</li></ul>",
            NoteFormat::Html,
        )
        .await
        .unwrap();
    assert!(first.created);
    let stored = m.mock().posted_comments();
    assert_eq!(stored.len(), 1);
    assert_eq!(first.note_id.0, stored[0].id.to_string());
    assert!(!stored[0].public, "internal");
    assert_eq!(stored[0].author, EMAIL);
    assert_eq!(
        stored[0].body,
        "Similar Tickets\nSUP-17: renewed the certificate\nAdded by csp (csp-job:0b6f3c1e-2d7a-4f0e-9a57-6c1d2e3f4a5b)"
    );

    // The job is redelivered: the comment is found, nothing is posted.
    let again = c
        .post_note_once(ISSUE, &marker, "<p>another synthesis</p>", NoteFormat::Html)
        .await
        .unwrap();
    assert_eq!((again.note_id, again.created), (first.note_id, false));
    assert_eq!(m.mock().comment_posts(), 1);

    // Another job gets its own comment; Markdown goes as it is.
    let other = JobMarker::new("job-2").unwrap();
    assert!(
        c.post_note_once(ISSUE, &other, "**Next steps**", NoteFormat::Markdown)
            .await
            .unwrap()
            .created
    );
    let stored = m.mock().posted_comments();
    assert_eq!(stored.len(), 2);
    assert!(stored[1].body.starts_with("**Next steps**\n\n---\n"));
    let listed = c.list_comments(ISSUE).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].public, Some(false));
    m.shutdown().await;
}

#[tokio::test]
async fn comments_are_read_across_pages_before_posting() {
    let m = jira().await;
    for i in 0..230 {
        m.mock()
            .add_comment(ISSUE, &format!("comment {i}"), i % 2 == 0);
    }
    let marker = JobMarker::new("job-late").unwrap();
    m.mock().add_comment(
        ISSUE,
        &csp_ticketing::jira::note_text(&marker, "late", NoteFormat::Markdown),
        false,
    );
    let c = client(&m);
    let comments = c.list_comments(ISSUE).await.unwrap();
    assert_eq!(comments.len(), 231);
    assert_eq!(comments[229].body, "comment 229");
    let posted = c
        .post_note_once(ISSUE, &marker, "again", NoteFormat::Markdown)
        .await
        .unwrap();
    assert!(!posted.created);
    assert_eq!(posted.note_id, comments[230].id);
    assert_eq!(m.mock().comment_posts(), 0);
    m.shutdown().await;
}

#[tokio::test]
async fn five_hundreds_and_timeouts_are_retried() {
    let m = jira().await;
    let c = client(&m);
    m.mock()
        .fail_next_comment_posts(2, NoteFault::Status { status: 500 });
    let posted = c
        .post_note_once(
            ISSUE,
            &JobMarker::new("job-500").unwrap(),
            "third time lucky",
            NoteFormat::Markdown,
        )
        .await
        .unwrap();
    assert!(posted.created);
    assert_eq!(m.mock().comment_posts(), 3);
    assert_eq!(m.mock().posted_comments().len(), 1);

    m.mock()
        .fail_next_comment_posts(3, NoteFault::Status { status: 502 });
    let e = c
        .post_note_once(
            ISSUE,
            &JobMarker::new("job-502").unwrap(),
            "never",
            NoteFormat::Markdown,
        )
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(502));
    assert!(e.is_retryable());
    assert_eq!(m.mock().comment_posts(), 6);
    assert_eq!(m.mock().posted_comments().len(), 1);

    let c = c.with_limits(Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    m.mock().fail_next_comment_posts(1, NoteFault::Hang);
    assert!(
        c.post_note_once(
            ISSUE,
            &JobMarker::new("job-hang").unwrap(),
            "after a hang",
            NoteFormat::Markdown,
        )
        .await
        .unwrap()
        .created
    );
    assert_eq!(m.mock().comment_posts(), 8);
    assert_eq!(m.mock().posted_comments().len(), 2);
    m.shutdown().await;
}

#[tokio::test]
async fn four_hundreds_are_not_retried() {
    let m = jira().await;
    let c = client(&m);
    for code in [400, 403, 404, 429] {
        m.mock().reset();
        m.mock()
            .fail_next_comment_posts(1, NoteFault::Status { status: code });
        let e = c
            .post_note_once(
                ISSUE,
                &JobMarker::new(&format!("job-{code}")).unwrap(),
                "x",
                NoteFormat::Markdown,
            )
            .await
            .unwrap_err();
        assert_eq!(status(&e), Some(code));
        assert!(!e.is_retryable());
        assert_eq!(m.mock().comment_posts(), 1, "{code}");
    }
    assert!(m.mock().posted_comments().is_empty());
    m.shutdown().await;
}

#[tokio::test]
async fn a_comment_stored_before_a_500_or_a_timeout_is_not_posted_again() {
    let m = jira().await;
    let c = client(&m).with_limits(Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let marker = JobMarker::new("job-1").unwrap();
    m.mock()
        .fail_next_comment_posts(1, NoteFault::CreateThenStatus { status: 500 });
    let posted = c
        .post_note_once(ISSUE, &marker, "body", NoteFormat::Html)
        .await
        .unwrap();
    assert!(!posted.created, "the retry found the stored comment");
    assert_eq!(m.mock().comment_posts(), 1);
    assert_eq!(m.mock().posted_comments().len(), 1);
    assert_eq!(
        posted.note_id.0,
        m.mock().posted_comments()[0].id.to_string()
    );

    let marker = JobMarker::new("job-2").unwrap();
    m.mock()
        .fail_next_comment_posts(1, NoteFault::CreateThenHang);
    let posted = c
        .post_note_once(ISSUE, &marker, "body", NoteFormat::Markdown)
        .await
        .unwrap();
    assert!(!posted.created);
    assert_eq!(m.mock().comment_posts(), 2);
    assert_eq!(m.mock().posted_comments().len(), 2);

    // `add_comment` retries blindly, which is why notes go through `post_note_once`.
    m.mock()
        .fail_next_comment_posts(1, NoteFault::CreateThenStatus { status: 503 });
    c.add_comment(ISSUE, "twice").await.unwrap();
    assert_eq!(m.mock().posted_comments().len(), 4);
    m.shutdown().await;
}

#[tokio::test]
async fn rejected_credentials_are_final_and_never_shown() {
    let m = jira().await;
    let wrong = client_with(&m.base_url(), "wrong-token-SECRET", PROJECT);
    let e = wrong.get_issue(ISSUE).await.unwrap_err();
    assert_eq!(status(&e), Some(401));
    assert!(!e.is_retryable());
    let shown = format!("{e} {e:?} {wrong:?}");
    assert!(!shown.contains("wrong-token-SECRET"), "{shown}");
    assert!(!shown.contains(TOKEN));
    let e = wrong
        .post_note_once(
            ISSUE,
            &JobMarker::new("job-x").unwrap(),
            "x",
            NoteFormat::Html,
        )
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(401));
    assert_eq!(m.mock().comment_posts(), 0, "refused before it counts");
    m.shutdown().await;
}

#[tokio::test]
async fn resolved_issues_are_imported_page_by_page() {
    let m = jira().await;
    m.mock().seed_resolved(250);
    // A resolution date without a resolution is skipped; an open issue never listed.
    let mut odd = MockJiraIssue::open("SUP-900", "Odd", json!("text"), "Low");
    odd.resolution_ms = m.mock().issue("SUP-2").unwrap().resolution_ms;
    assert!(m.mock().insert(odd));
    let c = client(&m);
    let to = OffsetDateTime::now_utc();
    let from = to - time::Duration::days(90);

    let mut cursor: Option<String> = None;
    let mut tickets = Vec::new();
    let mut skipped = Vec::new();
    let mut pages = 0;
    loop {
        let page = c.list_resolved(from, to, cursor.as_deref()).await.unwrap();
        assert_eq!(page.total_count, None, "the enhanced search has no total");
        pages += 1;
        tickets.extend(page.tickets);
        skipped.extend(page.skipped);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(tickets.len(), 250);
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (skipped[0].ticket_id.as_str(), skipped[0].reason.as_str()),
        ("SUP-900", "no resolution")
    );
    let first = &tickets[0];
    assert_eq!(first.ticket_id, "SUP-2");
    assert!(
        first.description.starts_with("Outlook crashes immediately"),
        "{}",
        first.description
    );
    assert_eq!(first.resolution, format!("Done\n{}", TOPICS[0].resolution));
    assert_eq!(first.tags, ["email", "outlook"]);
    // By key: SUP-2 … SUP-251, not SUP-10 before SUP-2.
    assert_eq!(tickets[8].ticket_id, "SUP-10");
    assert_eq!(tickets[249].ticket_id, "SUP-251");
    assert!(
        tickets
            .iter()
            .all(|t| t.resolved_date >= from && t.resolved_date <= to)
    );

    // A window that only the JQL's widening reaches lists nothing.
    let newest = tickets.iter().map(|t| t.resolved_date).max().unwrap();
    let page = c
        .list_resolved(
            newest + time::Duration::seconds(1),
            newest + time::Duration::hours(2),
            None,
        )
        .await
        .unwrap();
    assert!(page.tickets.is_empty() && page.next.is_none(), "{page:?}");
    // Only the configured issue type.
    let incidents = c
        .clone()
        .with_issue_type(Some("Incident"))
        .list_resolved(from, to, None)
        .await
        .unwrap();
    assert!(incidents.tickets.is_empty());
    assert_eq!(m.mock().stats().searches, 5);
    m.shutdown().await;
}

#[tokio::test]
async fn connection_tests_say_what_is_wrong() {
    let m = jira().await;
    assert_eq!(client(&m).test_connection().await, Ok(()));
    let check = |failure: Result<(), csp_ticketing::connector::TestFailure>| {
        let failure = failure.unwrap_err();
        assert!(!failure.reason.contains(TOKEN), "{failure}");
        assert!(!failure.reason.contains("nope-nope"), "{failure}");
        (failure.kind, failure.reason)
    };

    let wrong = client_with(&m.base_url(), "nope-nope", PROJECT);
    assert_eq!(
        check(wrong.test_connection().await),
        (
            FailureKind::CredentialsRejected,
            "Jira rejected the e-mail or API token".to_owned()
        )
    );
    let unknown = client_with(&m.base_url(), TOKEN, "NOPE");
    assert_eq!(
        check(unknown.test_connection().await),
        (
            FailureKind::NotFound,
            "Jira project 'NOPE' not found".to_owned()
        )
    );
    let no_api = client_with(&format!("{}/nothing-here", m.base_url()), TOKEN, PROJECT);
    assert_eq!(
        check(no_api.test_connection().await).0,
        FailureKind::NotFound
    );
    let tls = client_with(&m.base_url().replace("http://", "https://"), TOKEN, PROJECT);
    assert_eq!(check(tls.test_connection().await).0, FailureKind::Tls);
    let free = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let down = client_with(&format!("http://{free}"), TOKEN, PROJECT);
    assert_eq!(
        check(down.test_connection().await).0,
        FailureKind::Unreachable
    );
    let broken = answering(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
    let (kind, reason) = check(client_with(&broken, TOKEN, PROJECT).test_connection().await);
    assert_eq!(
        (kind, reason.as_str()),
        (FailureKind::Other, "Jira answered HTTP 503")
    );
    m.shutdown().await;
}

/// A server that answers every connection with `answer`.
async fn answering(answer: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(answer).await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_unreachable_site_is_retried_then_reported() {
    let free = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let c = client_with(&format!("http://{free}"), TOKEN, PROJECT);
    let started = std::time::Instant::now();
    let e = c.get_issue(ISSUE).await.unwrap_err();
    assert!(
        matches!(
            e,
            ApiError::Http {
                source: HttpError::Connect(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "waited 10 + 20 ms between attempts"
    );
}

#[tokio::test]
async fn the_fakes_webhooks_round_trip_through_the_connector() {
    let m = jira().await;
    let body =
        serde_json::to_vec(&m.mock().webhook_body("jira:issue_created", ISSUE).unwrap()).unwrap();
    let h = headers(SECRET, &body, Some("wh-1"));
    assert!(verify(&[SECRET], &h, &body).is_ok());
    let Event::NewTicket(t) = Jira.parse(Route::New, &body).unwrap() else {
        panic!("not a new ticket");
    };
    let read = client(&m).get_issue(ISSUE).await.unwrap();
    assert_eq!(
        (t.ticket_id, t.subject, t.description, Some(t.priority)),
        (
            read.ticket_id,
            read.subject,
            read.description,
            read.priority
        )
    );

    m.mock()
        .resolve(ISSUE, "Done", Some("Recreated the Outlook profile."));
    let body =
        serde_json::to_vec(&m.mock().webhook_body("jira:issue_updated", ISSUE).unwrap()).unwrap();
    let Event::Resolved(e) = Jira.parse(Route::New, &body).unwrap() else {
        panic!("not resolved");
    };
    assert_eq!(e.ticket.resolution, "Done\nRecreated the Outlook profile.");
    m.shutdown().await;
}

#[tokio::test]
async fn the_registry_builds_a_client_from_the_tenants_settings() {
    let fake = start_fake().await;
    let c = connector(ToolType::Jira);
    assert_eq!(c.tool_type(), ToolType::Jira);
    let names: Vec<&str> = c.fields().iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "jira_url",
            "jira_email",
            "jira_api_token",
            "jira_project_key",
            "jira_issue_type"
        ]
    );
    assert!(
        c.fields()
            .iter()
            .any(|f| f.name == "jira_api_token" && f.secret)
    );
    let settings = fake.settings(true);
    let client = c
        .client(
            HttpClient::new().unwrap(),
            &settings,
            ClientOptions::default(),
        )
        .unwrap();
    assert_eq!(client.get_ticket(ISSUE).await.unwrap().ticket_id, ISSUE);
    assert!(!format!("{client:?}").contains(TOKEN));
    let mut bad = settings.clone();
    bad.values.insert("jira_project_key".into(), "sup".into());
    assert_eq!(c.check(&bad).unwrap_err().field, "jira_project_key");
    fake.0.shutdown().await;
}

// ------------------------------------------------------- conformance fake

/// The fake Jira as the conformance suite drives it
/// (`conformance!(jira, crate::jira::start_fake().await)`).
pub(crate) struct JiraFake(RunningJira, AtomicU64);

impl From<RunningJira> for JiraFake {
    fn from(m: RunningJira) -> Self {
        Self(m, AtomicU64::new(1))
    }
}

/// The fake with its open issue [`ISSUE`] and a 5 s hang.
pub(crate) async fn start_fake() -> JiraFake {
    let mock = MockJira::builder()
        .account(EMAIL, TOKEN)
        .hang_for(Duration::from_secs(5))
        .issue(open_issue())
        .build();
    JiraFake::from(RunningJira::start(mock).await.unwrap())
}

impl Fake for JiraFake {
    fn tool(&self) -> ToolType {
        ToolType::Jira
    }

    fn replay(&self) -> Replay {
        Replay::DeliveryId
    }

    fn settings(&self, credentials_ok: bool) -> Settings {
        let mut s = Settings::default();
        s.values.insert("jira_url".into(), self.0.base_url());
        s.values.insert("jira_email".into(), EMAIL.into());
        s.values.insert("jira_project_key".into(), PROJECT.into());
        let token = if credentials_ok {
            TOKEN
        } else {
            "wrong-token-xyz"
        };
        s.secrets
            .insert("jira_api_token".into(), SecretString::from(token));
        s
    }

    fn client(&self, credentials_ok: bool) -> Box<dyn TicketingClient> {
        let token = if credentials_ok {
            TOKEN
        } else {
            "wrong-token-xyz"
        };
        Box::new(
            client_with(&self.0.base_url(), token, PROJECT).with_limits(Limits {
                timeout: Duration::from_secs(1),
                ..Limits::default()
            }),
        )
    }

    /// The recorded payload; Jira's scheme has no timestamp, so `sent` only
    /// makes a fresh delivery id.
    fn signed_new_ticket(
        &self,
        secret: &[u8],
        _sent: SystemTime,
    ) -> (BTreeMap<String, String>, Vec<u8>) {
        let n = self.1.fetch_add(1, Ordering::Relaxed);
        let id = format!("5f3e9a1c-0000-4000-8000-{n:012}");
        (headers(secret, FIXTURE, Some(&id)), FIXTURE.to_vec())
    }

    fn expected_new_ticket(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        (
            "SUP-42",
            "VPN disconnects every few minutes for the Berlin office",
            "High",
            "drops the connection every few minutes",
        )
    }

    fn open_ticket(&self) -> String {
        ISSUE.into()
    }

    fn fail_next_note_posts(&self, count: usize, fault: Fault) {
        let fault = match fault {
            Fault::Status(status) => NoteFault::Status { status },
            Fault::Hang => NoteFault::Hang,
            Fault::CreateThenStatus(status) => NoteFault::CreateThenStatus { status },
        };
        self.0.mock().fail_next_comment_posts(count, fault);
    }

    fn notes_on(&self, ticket: &str) -> Vec<String> {
        self.0
            .mock()
            .comments_for(ticket)
            .into_iter()
            .filter(|c| c.api)
            .map(|c| c.body)
            .collect()
    }

    fn notes_are_internal(&self, ticket: &str) -> bool {
        self.0
            .mock()
            .comments_for(ticket)
            .iter()
            .filter(|c| c.api)
            .all(|c| !c.public)
    }

    fn note_posts(&self) -> u64 {
        self.0.mock().comment_posts()
    }

    fn seed_resolved(&self, n: usize) {
        self.0.mock().seed_resolved(n).unwrap();
    }
}
