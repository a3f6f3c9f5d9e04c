//! Against the NATS server at `CSP_TEST_NATS_URL` (default
//! `nats://127.0.0.1:4222`), a stream prefix per test.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{consumer, stream};
use csp_bus::queue::nats::Config;
use csp_bus::{Error, NatsQueue, Queue};
use csp_domain::SessionId;

use crate::nats::DeleteStream;
use crate::queue_suite::{LONG_ACK_WAIT, ack_all, expect, expect_nothing, payload, push};

fn nats_url() -> String {
    std::env::var("CSP_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn unique_prefix() -> String {
    format!("q{}", &SessionId::new().0.simple().to_string()[..16])
}

fn config(prefix: &str, ack_wait: Duration) -> Config {
    Config {
        url: nats_url(),
        prefix: prefix.into(),
        max_age: Duration::from_secs(10 * 60),
        ack_wait,
        ..Config::default()
    }
}

async fn connect(prefix: &str, ack_wait: Duration) -> NatsQueue {
    NatsQueue::connect(config(prefix, ack_wait))
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

async fn make(ack_wait: Duration) -> (Arc<dyn Queue>, DeleteStream) {
    let queue = connect(&unique_prefix(), ack_wait).await;
    let guard = DeleteStream(queue.stream_name().to_owned());
    (Arc::new(queue), guard)
}

crate::queue_suite::queue_suite!(make);
crate::worker_suite::worker_suite!(make);

async fn jetstream() -> async_nats::jetstream::Context {
    async_nats::jetstream::new(async_nats::connect(nats_url()).await.unwrap())
}

/// The consumer service restarts: its pull and its connection end, messages
/// are pushed meanwhile by another process, and a new connection's pull of
/// the same group gets exactly what the group had not acked.
#[tokio::test]
async fn messages_pushed_while_no_consumer_runs_survive_a_new_connection() {
    let prefix = unique_prefix();
    let consumer = connect(&prefix, LONG_ACK_WAIT).await;
    let _guard = DeleteStream(consumer.stream_name().to_owned());
    let mut deliveries = consumer.pull("audit", "policy").await.unwrap();
    push(&consumer, "audit", &["before"]).await;
    ack_all(&mut deliveries, &["before"]).await;
    drop(deliveries);
    drop(consumer);

    let producer = connect(&prefix, LONG_ACK_WAIT).await;
    push(&producer, "audit", &["while-down-1", "while-down-2"]).await;
    drop(producer);

    let restarted = connect(&prefix, LONG_ACK_WAIT).await;
    let mut deliveries = restarted.pull("audit", "policy").await.unwrap();
    ack_all(&mut deliveries, &["while-down-1", "while-down-2"]).await;
    expect_nothing(&mut deliveries, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn stream_and_consumers_are_durable_and_named_from_the_prefix() {
    let prefix = unique_prefix();
    let queue = connect(&prefix, Duration::from_secs(7)).await;
    let _guard = DeleteStream(queue.stream_name().to_owned());
    assert_eq!(
        queue.stream_name(),
        format!("{}_QUEUE", prefix.to_ascii_uppercase())
    );
    let mut deliveries = queue.pull("tickets.jobs", "worker").await.unwrap();
    push(&queue, "tickets.jobs", &["j1"]).await;
    // The message id is scoped by topic, so ids need only be unique per topic.
    let mut stream = jetstream()
        .await
        .get_stream(queue.stream_name())
        .await
        .unwrap();
    let stored = stream
        .get_last_raw_message_by_subject(&format!("{prefix}.queue.tickets.jobs"))
        .await
        .unwrap();
    assert_eq!(
        stored.headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some("tickets.jobs:j1")
    );
    expect(&mut deliveries, "j1", 1).await.ack().await.unwrap();

    let info = stream.info().await.unwrap();
    assert_eq!(info.config.subjects, [format!("{prefix}.queue.>")]);
    assert_eq!(info.config.retention, stream::RetentionPolicy::Limits);
    assert_eq!(info.config.storage, stream::StorageType::File);
    assert_eq!(info.config.max_age, Duration::from_secs(600));

    let consumer = stream
        .consumer_info(NatsQueue::consumer_name("tickets.jobs", "worker"))
        .await
        .unwrap();
    let config = &consumer.config;
    assert!(config.durable_name.is_some());
    assert_eq!(
        config.filter_subject,
        format!("{prefix}.queue.tickets.jobs")
    );
    assert_eq!(config.ack_policy, consumer::AckPolicy::Explicit);
    assert_eq!(config.ack_wait, Duration::from_secs(7));
    assert_eq!(config.max_deliver, -1);
}

#[tokio::test]
async fn a_new_ack_wait_applies_when_the_group_is_joined_again() {
    let prefix = unique_prefix();
    let first = connect(&prefix, Duration::from_secs(7)).await;
    let _guard = DeleteStream(first.stream_name().to_owned());
    let mut deliveries = first.pull("audit", "policy").await.unwrap();
    push(&first, "audit", &["e1"]).await;
    let held = expect(&mut deliveries, "e1", 1).await;
    // A pull that is not read still has messages fetched into it.
    drop(deliveries);

    let second = connect(&prefix, Duration::from_secs(9)).await;
    let mut joined = second.pull("audit", "policy").await.unwrap();
    let ack_wait = jetstream()
        .await
        .get_stream(first.stream_name())
        .await
        .unwrap()
        .consumer_info(NatsQueue::consumer_name("audit", "policy"))
        .await
        .unwrap()
        .config
        .ack_wait;
    assert_eq!(ack_wait, Duration::from_secs(9));
    // Joining kept the group's state: the held message is still in flight.
    held.ack().await.unwrap();
    push(&second, "audit", &["e2"]).await;
    expect(&mut joined, "e2", 1).await.ack().await.unwrap();
}

#[tokio::test]
async fn push_and_pull_fail_once_the_stream_is_gone() {
    let queue = connect(&unique_prefix(), LONG_ACK_WAIT).await;
    jetstream()
        .await
        .delete_stream(queue.stream_name())
        .await
        .unwrap();
    let err = queue.push("audit", "e1", payload("e1")).await.unwrap_err();
    assert!(matches!(err, Error::Push { .. }), "{err}");
    assert!(err.to_string().contains("same id"), "{err}");
    match queue.pull("audit", "policy").await {
        Err(err @ Error::Pull { .. }) => assert!(err.to_string().contains("policy"), "{err}"),
        Err(other) => panic!("expected a pull error, got {other}"),
        Ok(_) => panic!("pulled from a deleted stream"),
    }
}

#[tokio::test]
async fn connect_failure_names_the_server_but_not_the_credentials() {
    let mut config = config(&unique_prefix(), LONG_ACK_WAIT);
    config.url = "nats://alice:s3cret@127.0.0.1:1".into();
    let err = NatsQueue::connect(config).await.unwrap_err();
    match &err {
        Error::Connect { url, .. } => assert_eq!(url, "nats://alice:***@127.0.0.1:1"),
        other => panic!("expected a connect error, got {other}"),
    }
    let text = format!("{err} {err:?}");
    assert!(!text.contains("s3cret"), "{text}");
}

/// A ping reads the stream: once it is gone, the ping says so.
#[tokio::test]
async fn ping_fails_once_the_stream_is_gone() {
    let queue = connect(&unique_prefix(), LONG_ACK_WAIT).await;
    queue.ping().await.unwrap();
    jetstream()
        .await
        .delete_stream(queue.stream_name())
        .await
        .unwrap();
    let err = queue.ping().await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
}
