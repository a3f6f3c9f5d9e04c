//! The one conformance suite every connector passes, run against its fake
//! server (each speaking its tool's wire format). A connector is added by
//! implementing [`Fake`] for its fake and listing it in `conformance!` at
//! the bottom: `docs/connector-development.md` walks through it.
//!
//! What it proves, per connector: valid, invalid, missing, stale or
//! repeated signatures are told apart (every secret tried); the metadata of
//! a recorded new-ticket payload of the real shape; notes are internal and
//! posted at most once per job, also when a post fails after the tool
//! stored it; 5xx and timeouts are retried, 4xx never; rejected
//! credentials; import paging over several pages; the registry's client
//! is built from the tenant's settings.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use csp_http::HttpClient;
use csp_ticketing::connector::{
    ClientOptions, Delivery, Event, FailureKind, Route, Settings, TicketingClient, ToolType,
};
use csp_ticketing::registry::connector;
use csp_ticketing::webhook::SignatureError;
use csp_ticketing::{JobMarker, NoteFormat};
use time::OffsetDateTime;

/// How a tool keeps a delivery from being replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// A signed timestamp: deliveries older than 300 s are refused.
    Timestamp,
    /// An id per delivery (`Verified::delivery_id`): a repeat has the same.
    DeliveryId,
}

/// What the next note posts of a fake do instead of succeeding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer this status; nothing stored.
    Status(u16),
    /// Answer nothing (the client times out); nothing stored.
    Hang,
    /// Store the note, then answer this status.
    CreateThenStatus(u16),
}

/// What the suite needs of a connector's fake server.
pub(crate) trait Fake {
    fn tool(&self) -> ToolType;
    fn replay(&self) -> Replay;
    /// A tenant's settings for this fake, with working or wrong credentials.
    fn settings(&self, credentials_ok: bool) -> Settings;
    /// A client with fast retries (3 attempts) and a 1 s timeout.
    fn client(&self, credentials_ok: bool) -> Box<dyn TicketingClient>;
    /// A recorded new-ticket delivery of the tool's real shape, signed with
    /// `secret` as sent at `sent`: its headers (lower-case) and body.
    fn signed_new_ticket(
        &self,
        secret: &[u8],
        sent: SystemTime,
    ) -> (BTreeMap<String, String>, Vec<u8>);
    /// What that payload says: ticket id, subject, priority, and a phrase
    /// of its description (as plain text).
    fn expected_new_ticket(&self) -> (&'static str, &'static str, &'static str, &'static str);
    /// An open ticket on the fake.
    fn open_ticket(&self) -> String;
    fn fail_next_note_posts(&self, count: usize, fault: Fault);
    /// Bodies of the notes on `ticket`, as the tool stores them.
    fn notes_on(&self, ticket: &str) -> Vec<String>;
    /// Whether every note on `ticket` is internal (not customer-visible).
    fn notes_are_internal(&self, ticket: &str) -> bool;
    /// Authenticated note posts so far, failed ones included.
    fn note_posts(&self) -> u64;
    /// Adds `n` resolved tickets, resolved within the last day.
    fn seed_resolved(&self, n: usize);
}

const SECRET: &[u8] = b"whsec-current-0123456789";
const PREVIOUS: &[u8] = b"whsec-previous-9876543210";

fn verify(
    fake: &dyn Fake,
    secrets: &[&[u8]],
    headers: &BTreeMap<String, String>,
    body: &[u8],
    now: SystemTime,
) -> Result<csp_ticketing::connector::Verified, SignatureError> {
    connector(fake.tool()).verify(secrets, &Delivery { headers, body, now })
}

pub(crate) fn signatures(fake: &dyn Fake) {
    let now = SystemTime::now();
    let (headers, body) = fake.signed_new_ticket(SECRET, now);
    // The current secret, or the previous one during a rotation.
    assert!(verify(fake, &[SECRET, PREVIOUS], &headers, &body, now).is_ok());
    let (old, old_body) = fake.signed_new_ticket(PREVIOUS, now);
    assert!(verify(fake, &[SECRET, PREVIOUS], &old, &old_body, now).is_ok());
    assert_eq!(
        verify(fake, &[SECRET], &old, &old_body, now),
        Err(SignatureError::Mismatch)
    );
    // Another secret, a changed body, no signature.
    assert_eq!(
        verify(fake, &[b"someone-else"], &headers, &body, now),
        Err(SignatureError::Mismatch)
    );
    let mut changed = body.clone();
    changed.extend_from_slice(b" ");
    assert_eq!(
        verify(fake, &[SECRET], &headers, &changed, now),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(fake, &[SECRET], &BTreeMap::new(), &body, now),
        Err(SignatureError::Missing)
    );
    // A signature header that is not one.
    for garbage in ["", "sha256=zz", "not a signature", "sha1=abc"] {
        let mut bad = headers.clone();
        for (name, value) in bad.iter_mut() {
            if name.contains("signature") && !name.contains("timestamp") {
                *value = garbage.to_owned();
            }
        }
        assert!(
            verify(fake, &[SECRET], &bad, &body, now).is_err(),
            "{garbage:?}"
        );
    }
    match fake.replay() {
        Replay::Timestamp => {
            let sent = now - Duration::from_secs(301);
            let (stale, stale_body) = fake.signed_new_ticket(SECRET, sent);
            assert!(matches!(
                verify(fake, &[SECRET], &stale, &stale_body, now),
                Err(SignatureError::Stale { .. })
            ));
            let (recent, recent_body) =
                fake.signed_new_ticket(SECRET, now - Duration::from_secs(200));
            assert!(verify(fake, &[SECRET], &recent, &recent_body, now).is_ok());
        }
        Replay::DeliveryId => {
            let first = verify(fake, &[SECRET], &headers, &body, now).unwrap();
            let again = verify(fake, &[SECRET], &headers, &body, now).unwrap();
            assert!(first.delivery_id.is_some());
            assert_eq!(first.delivery_id, again.delivery_id);
            let (other, other_body) = fake.signed_new_ticket(SECRET, now);
            let other = verify(fake, &[SECRET], &other, &other_body, now).unwrap();
            assert_ne!(other.delivery_id, first.delivery_id);
        }
    }
}

pub(crate) fn metadata(fake: &dyn Fake) {
    let (_, body) = fake.signed_new_ticket(SECRET, SystemTime::now());
    let (id, subject, priority, phrase) = fake.expected_new_ticket();
    match connector(fake.tool()).parse(Route::New, &body).unwrap() {
        Event::NewTicket(t) => {
            assert_eq!(t.ticket_id, id);
            assert_eq!(t.subject, subject);
            assert_eq!(t.priority, priority);
            assert!(t.description.contains(phrase), "{:?}", t.description);
            assert!(
                !t.description.contains('<') && !t.description.contains("\"type\""),
                "plain text: {:?}",
                t.description
            );
        }
        other => panic!("not a new ticket: {other:?}"),
    }
    // Not JSON, or not the tool's shape: a validation error, no panic.
    for junk in [&b"not json"[..], b"[]", b"{}", b"{\"ticket_id\": {}}"] {
        assert!(
            connector(fake.tool()).parse(Route::New, junk).is_err()
                || matches!(
                    connector(fake.tool()).parse(Route::New, junk),
                    Ok(Event::Ignored(_))
                ),
            "{:?}",
            String::from_utf8_lossy(junk)
        );
    }
}

pub(crate) async fn note_once(fake: &dyn Fake) {
    let client = fake.client(true);
    let ticket = fake.open_ticket();
    let read = client.get_ticket(&ticket).await.unwrap();
    assert_eq!(read.ticket_id, ticket);
    let marker = JobMarker::new("job-conformance-1").unwrap();
    let first = client
        .post_note_once(
            &ticket,
            &marker,
            "<p>Similar tickets: none</p>",
            NoteFormat::Html,
        )
        .await
        .unwrap();
    assert!(first.created);
    let again = client
        .post_note_once(
            &ticket,
            &marker,
            "<p>Similar tickets: none</p>",
            NoteFormat::Html,
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.note_id, first.note_id);
    let notes = fake.notes_on(&ticket);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(marker.found_in(&notes[0]), "{:?}", notes[0]);
    assert!(fake.notes_are_internal(&ticket));
    // Another job, another note; Markdown too.
    let other = JobMarker::new("job-conformance-2").unwrap();
    assert!(
        client
            .post_note_once(&ticket, &other, "**Next steps**", NoteFormat::Markdown)
            .await
            .unwrap()
            .created
    );
    assert_eq!(fake.notes_on(&ticket).len(), 2);
}

pub(crate) async fn retries(fake: &dyn Fake) {
    let client = fake.client(true);
    let ticket = fake.open_ticket();

    // 5xx twice, then success: one note.
    let before = fake.note_posts();
    fake.fail_next_note_posts(2, Fault::Status(503));
    let marker = JobMarker::new("job-retry-5xx").unwrap();
    assert!(
        client
            .post_note_once(&ticket, &marker, "after 503s", NoteFormat::Markdown)
            .await
            .unwrap()
            .created
    );
    assert_eq!(fake.note_posts() - before, 3);

    // A timeout, then success.
    fake.fail_next_note_posts(1, Fault::Hang);
    let marker = JobMarker::new("job-retry-hang").unwrap();
    client
        .post_note_once(&ticket, &marker, "after a timeout", NoteFormat::Markdown)
        .await
        .unwrap();

    // Stored, then 500: the retry finds the note instead of posting again.
    fake.fail_next_note_posts(1, Fault::CreateThenStatus(500));
    let marker = JobMarker::new("job-stored-then-500").unwrap();
    client
        .post_note_once(&ticket, &marker, "stored first", NoteFormat::Markdown)
        .await
        .unwrap();
    let with_marker = fake
        .notes_on(&ticket)
        .iter()
        .filter(|n| marker.found_in(n))
        .count();
    assert_eq!(with_marker, 1);

    // A 4xx is final: one attempt.
    let before = fake.note_posts();
    fake.fail_next_note_posts(1, Fault::Status(400));
    let marker = JobMarker::new("job-400").unwrap();
    let e = client
        .post_note_once(&ticket, &marker, "refused", NoteFormat::Markdown)
        .await
        .unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(400));
    assert!(!e.is_retryable());
    assert_eq!(fake.note_posts() - before, 1);
    fake.fail_next_note_posts(0, Fault::Status(500));
}

pub(crate) async fn rejected_credentials(fake: &dyn Fake) {
    let wrong = fake.client(false);
    let e = wrong.get_ticket(&fake.open_ticket()).await.unwrap_err();
    assert!(
        matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)),
        "{e}"
    );
    assert!(!e.is_retryable());
    let failure = wrong.test_connection().await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::CredentialsRejected, "{failure}");
    // The reason never carries the credential.
    for secret in fake.settings(false).secrets.values() {
        use secrecy::ExposeSecret;
        assert!(!failure.reason.contains(secret.expose_secret()));
        assert!(!e.to_string().contains(secret.expose_secret()));
    }
    assert!(fake.client(true).test_connection().await.is_ok());
}

pub(crate) async fn import_pages(fake: &dyn Fake) {
    fake.seed_resolved(250);
    let client = fake.client(true);
    let to = OffsetDateTime::now_utc() + time::Duration::minutes(5);
    let from = to - time::Duration::days(30);
    let mut cursor: Option<String> = None;
    let mut seen = BTreeSet::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_resolved(from, to, cursor.as_deref())
            .await
            .unwrap();
        pages += 1;
        for t in &page.tickets {
            assert!(!t.description.is_empty() && !t.resolution.is_empty());
            assert!(seen.insert(t.ticket_id.clone()), "{} twice", t.ticket_id);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 100, "paging does not end");
    }
    assert!(pages >= 3, "{pages} pages");
    assert!(seen.len() >= 250, "{} tickets", seen.len());
}

pub(crate) async fn registry_client(fake: &dyn Fake) {
    let c = connector(fake.tool());
    let settings = fake.settings(true);
    c.check(&settings).unwrap();
    let client = c
        .client(
            HttpClient::new().unwrap(),
            &settings,
            ClientOptions::default(),
        )
        .unwrap();
    assert_eq!(client.tool_type(), fake.tool());
    let ticket = fake.open_ticket();
    assert_eq!(client.get_ticket(&ticket).await.unwrap().ticket_id, ticket);
    // Every required field is named when missing.
    for field in c.fields().iter().filter(|f| f.required) {
        let mut without = settings.clone();
        without.values.remove(field.name);
        without.secrets.remove(field.name);
        let e = c.check(&without).unwrap_err();
        assert_eq!(e.field, field.name, "{e}");
    }
    // Debug output never shows a secret.
    use secrecy::ExposeSecret;
    for secret in settings.secrets.values() {
        assert!(!format!("{client:?}").contains(secret.expose_secret()));
        assert!(!format!("{settings:?}").contains(secret.expose_secret()));
    }
}

/// One test per case for a connector; `$fake` builds its started fake.
macro_rules! conformance {
    ($name:ident, $fake:expr) => {
        mod $name {
            #[tokio::test]
            async fn signatures() {
                let fake = $fake;
                super::signatures(&fake);
            }

            #[tokio::test]
            async fn metadata() {
                let fake = $fake;
                super::metadata(&fake);
            }

            #[tokio::test]
            async fn note_once() {
                let fake = $fake;
                super::note_once(&fake).await;
            }

            #[tokio::test]
            async fn retries() {
                let fake = $fake;
                super::retries(&fake).await;
            }

            #[tokio::test]
            async fn rejected_credentials() {
                let fake = $fake;
                super::rejected_credentials(&fake).await;
            }

            #[tokio::test]
            async fn import_pages() {
                let fake = $fake;
                super::import_pages(&fake).await;
            }

            #[tokio::test]
            async fn registry_client() {
                let fake = $fake;
                super::registry_client(&fake).await;
            }
        }
    };
}

conformance!(servicedesk_plus, super::sdp::start().await);
conformance!(jira, crate::jira::start_fake().await);

/// ServiceDesk Plus: `csp_mock_ticketing::MockSdp`.
mod sdp {
    use super::*;
    use csp_http::Limits;
    use csp_mock_ticketing::{MockRequest, MockSdp, NoteFault, RunningMock};
    use csp_ticketing::servicedesk::{SdpAuth, SdpClient};
    use secrecy::SecretString;

    const KEY: &str = "tech-key-conformance";

    pub(crate) struct Sdp(RunningMock);

    pub(crate) async fn start() -> Sdp {
        let mock = MockSdp::builder()
            .authtoken(KEY)
            .hang_for(Duration::from_secs(5))
            .build();
        mock.insert(MockRequest::open(
            1234,
            "Outlook crashes",
            "<div>Outlook crashes on <b>WS-17</b></div>",
            "High",
        ));
        Sdp(RunningMock::start(mock).await.unwrap())
    }

    impl Fake for Sdp {
        fn tool(&self) -> ToolType {
            ToolType::ServicedeskPlus
        }

        fn replay(&self) -> Replay {
            Replay::Timestamp
        }

        fn settings(&self, credentials_ok: bool) -> Settings {
            let mut s = Settings::default();
            s.values.insert("servicedesk_url".into(), self.0.base_url());
            s.values
                .insert("servicedesk_auth".into(), "authtoken".into());
            let key = if credentials_ok { KEY } else { "wrong-key-xyz" };
            s.secrets.insert("api_key".into(), SecretString::from(key));
            s
        }

        fn client(&self, credentials_ok: bool) -> Box<dyn TicketingClient> {
            let key = if credentials_ok { KEY } else { "wrong-key-xyz" };
            Box::new(
                SdpClient::new(
                    HttpClient::new().unwrap(),
                    &self.0.base_url(),
                    SdpAuth::AuthToken(SecretString::from(key)),
                )
                .unwrap()
                .with_retry(crate::helpers::FAST)
                .with_limits(Limits {
                    timeout: Duration::from_secs(1),
                    ..Limits::default()
                }),
            )
        }

        fn signed_new_ticket(
            &self,
            secret: &[u8],
            sent: SystemTime,
        ) -> (BTreeMap<String, String>, Vec<u8>) {
            let body = br#"{"ticket_id": "1234", "subject": "Outlook crashes", "description": "<div>Outlook crashes on <b>WS-17</b> since the update</div>", "priority": "High", "requester": {"name": "Ann"}}"#.to_vec();
            let ts = sent
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let headers = BTreeMap::from([
                (
                    csp_ticketing::webhook::TIMESTAMP_HEADER.to_owned(),
                    ts.to_string(),
                ),
                (
                    csp_ticketing::webhook::SIGNATURE_HEADER.to_owned(),
                    csp_ticketing::webhook::sign(secret, ts, &body),
                ),
            ]);
            (headers, body)
        }

        fn expected_new_ticket(&self) -> (&'static str, &'static str, &'static str, &'static str) {
            ("1234", "Outlook crashes", "High", "WS-17 since the update")
        }

        fn open_ticket(&self) -> String {
            "1234".into()
        }

        fn fail_next_note_posts(&self, count: usize, fault: Fault) {
            let fault = match fault {
                Fault::Status(status) => NoteFault::Status { status },
                Fault::Hang => NoteFault::Hang,
                Fault::CreateThenStatus(status) => NoteFault::CreateThenStatus { status },
            };
            self.0.mock().fail_next_note_posts(count, fault);
        }

        fn notes_on(&self, ticket: &str) -> Vec<String> {
            self.0
                .mock()
                .notes_for(ticket.parse().unwrap())
                .into_iter()
                .map(|n| n.description)
                .collect()
        }

        fn notes_are_internal(&self, ticket: &str) -> bool {
            self.0
                .mock()
                .notes_for(ticket.parse().unwrap())
                .iter()
                .all(|n| !n.show_to_requester)
        }

        fn note_posts(&self) -> u64 {
            self.0.mock().note_posts()
        }

        fn seed_resolved(&self, n: usize) {
            self.0.mock().seed_resolved(n).unwrap();
        }
    }
}

conformance!(zendesk, super::zd::start().await);

/// Zendesk: `csp_mock_ticketing::MockZendesk`.
mod zd {
    use super::*;
    use csp_http::Limits;
    use csp_mock_ticketing::{MockZendesk, MockZendeskTicket, NoteFault, RunningZendesk};
    use csp_ticketing::zendesk::{
        INVOCATION_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, ZendeskAuth, ZendeskClient, sign,
    };
    use secrecy::SecretString;
    use std::sync::atomic::{AtomicU64, Ordering};
    use time::format_description::well_known::Rfc3339;

    const EMAIL: &str = "agent@acme.example";
    const TOKEN: &str = "zd-token-conformance";
    const FIXTURE: &[u8] = include_bytes!("fixtures/zendesk_ticket_created.json");

    pub(crate) struct Zd(RunningZendesk, AtomicU64);

    pub(crate) async fn start() -> Zd {
        let mock = MockZendesk::builder()
            .credential(EMAIL, TOKEN)
            .hang_for(Duration::from_secs(5))
            .build();
        mock.insert(MockZendeskTicket::open(
            5158,
            "Cannot login to mobile app",
            "Customer is experiencing login issues with the mobile app",
            Some("high"),
        ));
        Zd(
            RunningZendesk::start(mock).await.unwrap(),
            AtomicU64::new(1),
        )
    }

    fn token(ok: bool) -> &'static str {
        if ok { TOKEN } else { "wrong-token-xyz" }
    }

    impl Fake for Zd {
        fn tool(&self) -> ToolType {
            ToolType::Zendesk
        }

        fn replay(&self) -> Replay {
            Replay::Timestamp
        }

        fn settings(&self, credentials_ok: bool) -> Settings {
            let mut s = Settings::default();
            s.values.insert("zendesk_subdomain".into(), "acme".into());
            s.values.insert("zendesk_email".into(), EMAIL.into());
            s.values.insert("zendesk_url".into(), self.0.base_url());
            s.secrets.insert(
                "zendesk_api_token".into(),
                SecretString::from(token(credentials_ok)),
            );
            s
        }

        fn client(&self, credentials_ok: bool) -> Box<dyn TicketingClient> {
            let auth = ZendeskAuth {
                email: EMAIL.into(),
                api_token: SecretString::from(token(credentials_ok)),
            };
            Box::new(
                ZendeskClient::new(
                    HttpClient::new().unwrap(),
                    "acme",
                    Some(&self.0.base_url()),
                    auth,
                )
                .unwrap()
                .with_retry(crate::helpers::FAST)
                .with_limits(Limits {
                    timeout: Duration::from_secs(1),
                    ..Limits::default()
                }),
            )
        }

        fn signed_new_ticket(
            &self,
            secret: &[u8],
            sent: SystemTime,
        ) -> (BTreeMap<String, String>, Vec<u8>) {
            let timestamp = OffsetDateTime::from(sent).format(&Rfc3339).unwrap();
            let invocation = self.1.fetch_add(1, Ordering::Relaxed).to_string();
            let headers = BTreeMap::from([
                (TIMESTAMP_HEADER.to_owned(), timestamp.clone()),
                (
                    SIGNATURE_HEADER.to_owned(),
                    sign(secret, &timestamp, FIXTURE),
                ),
                (INVOCATION_HEADER.to_owned(), invocation),
            ]);
            (headers, FIXTURE.to_vec())
        }

        fn expected_new_ticket(&self) -> (&'static str, &'static str, &'static str, &'static str) {
            ("5158", "Cannot login to mobile app", "High", "login issues")
        }

        fn open_ticket(&self) -> String {
            "5158".into()
        }

        fn fail_next_note_posts(&self, count: usize, fault: Fault) {
            let fault = match fault {
                Fault::Status(status) => NoteFault::Status { status },
                Fault::Hang => NoteFault::Hang,
                Fault::CreateThenStatus(status) => NoteFault::CreateThenStatus { status },
            };
            self.0.mock().fail_next_note_posts(count, fault);
        }

        fn notes_on(&self, ticket: &str) -> Vec<String> {
            self.0
                .mock()
                .posted_comments_for(ticket.parse().unwrap())
                .into_iter()
                .map(|c| c.html_body)
                .collect()
        }

        fn notes_are_internal(&self, ticket: &str) -> bool {
            self.0
                .mock()
                .posted_comments_for(ticket.parse().unwrap())
                .iter()
                .all(|c| !c.public)
        }

        fn note_posts(&self) -> u64 {
            self.0.mock().note_posts()
        }

        fn seed_resolved(&self, n: usize) {
            self.0.mock().seed_solved(n).unwrap();
        }
    }
}
