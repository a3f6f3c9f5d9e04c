use std::time::Duration;

use csp_http::{HttpError, Limits};
use csp_mock_ticketing::{MockRequest, NoteFault, TOPICS};
use csp_ticketing::servicedesk::{ConnectionError, SdpAuth, SdpError};
use csp_ticketing::{JobMarker, NoteFormat};
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::helpers::{KEY, TICKET, ZOHO, client, client_with, mock};

fn status(e: &SdpError) -> Option<u16> {
    e.status().map(|s| s.as_u16())
}

#[tokio::test]
async fn a_request_is_read_as_plain_text() {
    let m = mock().await;
    let t = client(&m).get_request(TICKET).await.unwrap();
    assert_eq!(t.ticket_id, "1234");
    assert_eq!(t.subject, "Outlook crashes");
    assert_eq!(t.description, "Outlook crashes on WS-17 (10.0.0.5)");
    assert_eq!(t.priority.as_deref(), Some("High"));
    assert_eq!(t.status.as_deref(), Some("Open"));
    assert!(t.created_at.is_some());
    assert_eq!((t.resolved_at, t.resolution), (None, None));

    let e = client(&m).get_request("999").await.unwrap_err();
    assert_eq!(status(&e), Some(404));
    assert!(matches!(
        client(&m).get_request("../admin").await,
        Err(SdpError::InvalidTicketId(_))
    ));
    m.shutdown().await;
}

#[tokio::test]
async fn cloud_urls_and_zoho_tokens_work_and_a_wrong_key_is_refused_at_once() {
    let m = mock().await;
    let cloud = client_with(
        &format!("{}/app/itdesk", m.base_url()),
        SdpAuth::ZohoOAuth(SecretString::from(ZOHO)),
    );
    assert_eq!(cloud.get_request(TICKET).await.unwrap().ticket_id, TICKET);
    // The cloud calls a note `request_note`.
    cloud
        .add_note(TICKET, "<p>from the cloud</p>")
        .await
        .unwrap();
    assert_eq!(m.mock().notes()[0].key, "request_note");
    let listed = cloud.list_notes(TICKET).await.unwrap();
    assert_eq!(listed[0].description, "<p>from the cloud</p>");

    let wrong = client_with(
        &m.base_url(),
        SdpAuth::AuthToken(SecretString::from("wrong-key-xyz")),
    );
    let e = wrong.add_note(TICKET, "x").await.unwrap_err();
    assert_eq!(status(&e), Some(401));
    assert!(!e.is_retryable());
    assert!(!e.to_string().contains("wrong-key-xyz"), "{e}");
    assert_eq!(
        m.mock().note_posts(),
        1,
        "a 401 is not retried (and not counted as a post)"
    );
    m.shutdown().await;
}

#[tokio::test]
async fn a_note_is_internal_and_its_id_comes_back() {
    let m = mock().await;
    let c = client(&m);
    let id = c
        .add_note(TICKET, "<p>Similar tickets: 100001</p>")
        .await
        .unwrap();
    let stored = m.mock().notes_for(1234);
    assert_eq!(stored.len(), 1);
    assert_eq!(id.0, stored[0].id.to_string());
    assert_eq!(stored[0].key, "note");
    assert!(!stored[0].show_to_requester);
    assert!(!stored[0].mark_first_response);
    assert!(!stored[0].add_to_linked_requests);
    let notes = c.list_notes(TICKET).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].id, id);
    assert_eq!(notes[0].show_to_requester, Some(false));
    m.shutdown().await;
}

#[tokio::test]
async fn notes_are_read_across_pages() {
    let m = mock().await;
    let c = client(&m);
    for i in 0..105 {
        c.add_note(TICKET, &format!("note {i}")).await.unwrap();
    }
    let notes = c.list_notes(TICKET).await.unwrap();
    assert_eq!(notes.len(), 105);
    assert_eq!(notes[104].description, "note 104");
    // The marker on the last page is found.
    let marker = JobMarker::new("job-late").unwrap();
    c.add_note(TICKET, &marker.apply("late", NoteFormat::Markdown))
        .await
        .unwrap();
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
    c.add_note(TICKET, "third time lucky").await.unwrap();
    assert_eq!(m.mock().note_posts(), 3);
    assert_eq!(m.mock().notes_for(1234).len(), 1);

    m.mock()
        .fail_next_note_posts(3, NoteFault::Status { status: 502 });
    let e = c.add_note(TICKET, "never").await.unwrap_err();
    assert_eq!(status(&e), Some(502));
    assert_eq!(m.mock().note_posts(), 6);
    m.shutdown().await;
}

#[tokio::test]
async fn four_hundreds_are_not_retried() {
    let m = mock().await;
    let c = client(&m);
    for code in [400, 403, 429] {
        m.mock().reset();
        m.mock()
            .fail_next_note_posts(1, NoteFault::Status { status: code });
        let e = c.add_note(TICKET, "x").await.unwrap_err();
        assert_eq!(status(&e), Some(code));
        assert_eq!(m.mock().note_posts(), 1, "{code}");
    }
    m.shutdown().await;
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let m = mock().await;
    let c = client(&m).with_limits(Limits {
        timeout: Duration::from_millis(200),
        ..Limits::default()
    });
    m.mock().fail_next_note_posts(1, NoteFault::Hang);
    c.add_note(TICKET, "after a hang").await.unwrap();
    assert_eq!(m.mock().note_posts(), 2);
    assert_eq!(m.mock().notes_for(1234).len(), 1);
    m.shutdown().await;
}

#[tokio::test]
async fn a_job_posts_at_most_one_note_across_redeliveries() {
    let m = mock().await;
    let c = client(&m);
    let marker = JobMarker::new("0b6f3c1e-2d7a-4f0e-9a57-6c1d2e3f4a5b").unwrap();
    let first = c
        .post_note_once(
            TICKET,
            &marker,
            "<h3>Similar Tickets</h3><p>100001</p>",
            NoteFormat::Html,
        )
        .await
        .unwrap();
    assert!(first.created);
    let stored = m.mock().notes_for(1234);
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0]
            .description
            .starts_with("<h3>Similar Tickets</h3>")
    );
    assert!(marker.found_in(&stored[0].description));

    // The job is redelivered (the worker died after posting): the note is found.
    let again = c
        .post_note_once(
            TICKET,
            &marker,
            "<p>a different synthesis</p>",
            NoteFormat::Html,
        )
        .await
        .unwrap();
    assert_eq!((again.note_id, again.created), (first.note_id, false));
    assert_eq!(m.mock().note_posts(), 1);
    assert_eq!(m.mock().notes_for(1234).len(), 1);

    // Another job on the same ticket gets its own note.
    let other = JobMarker::new("0b6f3c1e-2d7a-4f0e-9a57-6c1d2e3f4a5c").unwrap();
    assert!(
        c.post_note_once(TICKET, &other, "x", NoteFormat::Html)
            .await
            .unwrap()
            .created
    );
    assert_eq!(m.mock().notes_for(1234).len(), 2);
    m.shutdown().await;
}

#[tokio::test]
async fn a_note_stored_before_a_timeout_or_a_500_is_not_posted_again() {
    let m = mock().await;
    let c = client(&m).with_limits(Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let marker = JobMarker::new("job-1").unwrap();
    m.mock().fail_next_note_posts(1, NoteFault::CreateThenHang);
    let posted = c
        .post_note_once(TICKET, &marker, "body", NoteFormat::Html)
        .await
        .unwrap();
    assert!(
        !posted.created,
        "the retry found the note the timed-out attempt stored"
    );
    assert_eq!(m.mock().note_posts(), 1);
    assert_eq!(m.mock().notes_for(1234).len(), 1);

    let marker = JobMarker::new("job-2").unwrap();
    m.mock()
        .fail_next_note_posts(1, NoteFault::CreateThenStatus { status: 500 });
    let posted = c
        .post_note_once(TICKET, &marker, "body", NoteFormat::Markdown)
        .await
        .unwrap();
    assert!(!posted.created);
    assert_eq!(m.mock().notes_for(1234).len(), 2);
    // Blind retries would have posted twice; add_note says so in its docs.
    m.shutdown().await;
}

#[tokio::test]
async fn post_note_once_gives_up_after_three_failures() {
    let m = mock().await;
    let c = client(&m);
    m.mock()
        .fail_next_note_posts(3, NoteFault::Status { status: 500 });
    let e = c
        .post_note_once(
            TICKET,
            &JobMarker::new("job-x").unwrap(),
            "b",
            NoteFormat::Html,
        )
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(500));
    assert!(e.is_retryable());
    assert_eq!(m.mock().note_posts(), 3);
    assert!(m.mock().notes().is_empty());
    m.shutdown().await;
}

#[tokio::test]
async fn resolved_tickets_are_listed_page_by_page() {
    let m = mock().await;
    m.mock().seed_resolved(250);
    // A resolved request without a resolution is skipped, an open one never listed.
    let mut bare = MockRequest::open(900_000, "No resolution", "<p>x</p>", "Low");
    bare.status = "Resolved".into();
    bare.resolved_ms = Some(m.mock().request(100_001).unwrap().resolved_ms.unwrap());
    m.mock().insert(bare);
    let c = client(&m);
    let to = OffsetDateTime::now_utc();
    let from = to - time::Duration::days(90);

    let mut start = 1;
    let mut tickets = Vec::new();
    let mut skipped = Vec::new();
    let mut pages = 0;
    loop {
        let page = c.list_resolved(from, to, start).await.unwrap();
        assert_eq!(page.total_count, Some(251));
        pages += 1;
        tickets.extend(page.tickets);
        skipped.extend(page.skipped);
        if !page.has_more_rows {
            break;
        }
        start = page.next_start_index;
    }
    assert_eq!(pages, 3);
    assert_eq!(tickets.len(), 250);
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (skipped[0].ticket_id.as_str(), skipped[0].reason.as_str()),
        ("900000", "no resolution")
    );
    let first = &tickets[0];
    assert_eq!(first.ticket_id, "100001");
    assert!(
        first.description.starts_with("Outlook crashes immediately"),
        "{}",
        first.description
    );
    assert_eq!(first.resolution, TOPICS[0].resolution);
    assert_eq!(first.tags, ["Email", "Outlook"]);
    // Closed requests have only a completed time; they count too.
    assert_eq!(tickets[1].ticket_id, "100002");
    assert!(tickets[1].resolution.contains("VPN client certificate"));
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
            1,
        )
        .await
        .unwrap();
    assert!(page.tickets.is_empty() && !page.has_more_rows);
    assert_eq!(page.total_count, Some(0));
    m.shutdown().await;
}

#[tokio::test]
async fn a_resolution_is_read_from_its_own_endpoint() {
    let m = mock().await;
    m.mock().seed_resolved(1);
    let c = client(&m);
    assert!(
        c.get_resolution("100001")
            .await
            .unwrap()
            .unwrap()
            .starts_with("Repaired")
    );
    assert_eq!(c.get_resolution(TICKET).await.unwrap(), None);
    m.shutdown().await;
}

#[tokio::test]
async fn connection_tests_say_what_is_wrong() {
    let m = mock().await;
    assert_eq!(client(&m).test_connection().await, Ok(()));
    let wrong = client_with(
        &m.base_url(),
        SdpAuth::AuthToken(SecretString::from("nope-nope")),
    );
    assert_eq!(
        wrong.test_connection().await,
        Err(ConnectionError::CredentialsRejected)
    );
    let no_api = client_with(
        &format!("{}/nothing-here", m.base_url()),
        SdpAuth::AuthToken(SecretString::from(KEY)),
    );
    assert_eq!(
        no_api.test_connection().await,
        Err(ConnectionError::NotFound)
    );
    let tls = client_with(
        &m.base_url().replace("http://", "https://"),
        SdpAuth::AuthToken(SecretString::from(KEY)),
    );
    assert_eq!(tls.test_connection().await, Err(ConnectionError::Tls));
    let free = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let down = client_with(
        &format!("http://{free}"),
        SdpAuth::AuthToken(SecretString::from(KEY)),
    );
    assert_eq!(
        down.test_connection().await,
        Err(ConnectionError::Unreachable)
    );
    m.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_server_is_retried_then_reported() {
    let free = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let c = client_with(
        &format!("http://{free}"),
        SdpAuth::AuthToken(SecretString::from(KEY)),
    );
    let started = std::time::Instant::now();
    let e = c.get_request(TICKET).await.unwrap_err();
    assert!(matches!(e, SdpError::Http(HttpError::Connect(_))), "{e:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "waited 10 + 20 ms between attempts"
    );
    assert!(!e.to_string().contains(KEY));
}
