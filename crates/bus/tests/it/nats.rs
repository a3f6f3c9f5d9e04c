//! Against the NATS server at `CSP_TEST_NATS_URL` (default
//! `nats://127.0.0.1:4222`), a stream prefix per test.

use std::sync::Arc;
use std::time::Duration;

use csp_bus::nats::{Config, SEQ_HEADER};
use csp_bus::{Error, EventBus, FanoutBus, NatsBus};
use csp_domain::{SessionEvent, SessionId};

use crate::helpers::{event, expect_events, publish_range};

fn nats_url() -> String {
    std::env::var("CSP_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn unique_prefix() -> String {
    format!("t{}", &SessionId::new().0.simple().to_string()[..16])
}

fn config(prefix: &str, max_msgs_per_subject: i64) -> Config {
    Config {
        url: nats_url(),
        prefix: prefix.into(),
        max_age: Duration::from_secs(10 * 60),
        max_msgs_per_subject,
        replicas: 1,
    }
}

/// Deletes a test's stream when the test ends, passed or not.
pub(crate) struct DeleteStream(pub(crate) String);

impl Drop for DeleteStream {
    fn drop(&mut self) {
        let stream = self.0.clone();
        // Drop cannot await, and may run on a runtime that is shutting down:
        // use a thread with a runtime of its own.
        let deleted = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    let client = async_nats::connect(nats_url()).await?;
                    async_nats::jetstream::new(client)
                        .delete_stream(&stream)
                        .await?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                })
        })
        .join();
        if !matches!(deleted, Ok(Ok(()))) {
            eprintln!("could not delete test stream {}: {deleted:?}", self.0);
        }
    }
}

async fn connect(prefix: &str, retained: i64) -> (NatsBus, DeleteStream) {
    let bus = NatsBus::connect(config(prefix, retained))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let guard = DeleteStream(bus.stream_name().to_owned());
    (bus, guard)
}

async fn make(retained_per_session: usize) -> (Arc<dyn EventBus>, DeleteStream) {
    let (bus, guard) = connect(&unique_prefix(), retained_per_session as i64).await;
    (Arc::new(bus), guard)
}

crate::suite::event_bus_suite!(make);

async fn jetstream() -> async_nats::jetstream::Context {
    async_nats::jetstream::new(async_nats::connect(nats_url()).await.unwrap())
}

#[tokio::test]
async fn messages_carry_the_event_json_and_seq_and_dedup_headers() {
    let prefix = unique_prefix();
    let (bus, _guard) = connect(&prefix, 100).await;
    let session = SessionId::new();
    publish_range(&bus, session, 1..=3).await;

    let stream = jetstream()
        .await
        .get_stream(bus.stream_name())
        .await
        .unwrap();
    let stored = stream
        .direct_get_last_for_subject(format!("{prefix}.session.{session}"))
        .await
        .unwrap();
    let header = |name: &str| stored.headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(header(SEQ_HEADER).as_deref(), Some("3"));
    assert_eq!(header("Nats-Msg-Id"), Some(format!("{session}:3")));
    let payload: SessionEvent = serde_json::from_slice(&stored.payload).unwrap();
    assert_eq!(payload, event(session, 3));
}

#[tokio::test]
async fn stream_is_named_from_the_prefix_and_bounded() {
    let prefix = unique_prefix();
    let (bus, _guard) = connect(&prefix, 100).await;
    assert_eq!(
        bus.stream_name(),
        format!("{}_SESSION_EVENTS", prefix.to_ascii_uppercase())
    );
    let mut stream = jetstream()
        .await
        .get_stream(bus.stream_name())
        .await
        .unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.subjects, [format!("{prefix}.session.*")]);
    assert_eq!(info.config.max_messages_per_subject, 100);
    assert_eq!(info.config.max_age, Duration::from_secs(600));
    assert!(info.config.allow_direct);
}

#[tokio::test]
async fn connecting_again_updates_the_limits_and_shares_the_stream() {
    let prefix = unique_prefix();
    let (first, _guard) = connect(&prefix, 10).await;
    let (second, _same_stream) = connect(&prefix, 20).await;
    let mut stream = jetstream()
        .await
        .get_stream(first.stream_name())
        .await
        .unwrap();
    assert_eq!(
        stream.info().await.unwrap().config.max_messages_per_subject,
        20
    );
    let session = SessionId::new();
    let mut events = first.subscribe(session, 0).await.unwrap();
    publish_range(&second, session, 1..=3).await;
    expect_events(&mut events, session, 1..=3).await;
}

#[tokio::test]
async fn a_prefix_differing_only_in_case_does_not_take_over_the_stream() {
    let prefix = unique_prefix();
    let (_bus, _guard) = connect(&prefix, 10).await;
    let err = NatsBus::connect(config(&prefix.to_ascii_uppercase(), 10))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Stream { .. }), "{err}");
    assert!(
        err.to_string().contains("choose a different prefix"),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_prefix_is_rejected_before_connecting() {
    let mut config = config("csp.prod", 10);
    config.url = "nats://127.0.0.1:1".into();
    let err = NatsBus::connect(config).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("subject token"), "{err}");
}

#[tokio::test]
async fn connect_failure_names_the_server_but_not_the_credentials() {
    let mut config = config(&unique_prefix(), 10);
    config.url = "nats://alice:s3cret@127.0.0.1:1".into();
    let err = NatsBus::connect(config).await.unwrap_err();
    match &err {
        Error::Connect { url, .. } => assert_eq!(url, "nats://alice:***@127.0.0.1:1"),
        other => panic!("expected a connect error, got {other}"),
    }
    let text = format!("{err} {err:?}");
    // The user name stays (it helps find the account); the password never.
    assert!(!text.contains("s3cret"), "{text}");
}

#[tokio::test]
async fn ping_and_last_seq_fail_once_the_stream_is_gone() {
    let (bus, guard) = connect(&unique_prefix(), 10).await;
    bus.ping().await.unwrap();
    let session = SessionId::new();
    publish_range(&bus, session, 1..=2).await;
    assert_eq!(bus.last_seq(session).await.unwrap(), 2);
    jetstream()
        .await
        .delete_stream(bus.stream_name())
        .await
        .unwrap();
    std::mem::forget(guard);
    let err = bus.ping().await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    // Not 0: a resumed session would renumber from 1.
    let err = bus.last_seq(session).await.unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err}");
}

#[tokio::test]
async fn fanout_holds_one_consumer_per_session() {
    let (bus, _guard) = connect(&unique_prefix(), 100).await;
    let name = bus.stream_name().to_owned();
    let fanout = FanoutBus::new(Arc::new(bus), Default::default()).unwrap();
    let session = SessionId::new();
    let mut streams = Vec::new();
    for _ in 0..20 {
        streams.push(fanout.subscribe(session, 0).await.unwrap());
    }
    publish_range(&fanout, session, 1..=3).await;
    for stream in &mut streams {
        expect_events(stream, session, 1..=3).await;
    }
    let mut stream = jetstream().await.get_stream(&name).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.consumer_count, 1);
}
