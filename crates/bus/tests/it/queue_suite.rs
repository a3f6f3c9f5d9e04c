//! The behaviour every `Queue` adapter must have. Each adapter module
//! instantiates it with `queue_suite!(make)`, where `make(ack_wait).await`
//! returns `(Arc<dyn Queue>, guard)`; the guard cleans up whatever the queue
//! created when the test ends.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use csp_bus::{Deliveries, Delivery, Error, Queue};
use futures::StreamExt;
use tokio::time::Instant;

/// Only guards against a hang: a test waiting this long for a delivery has
/// already failed. Below `LONG_ACK_WAIT`, so a delivery the test waits for
/// with it can never be a deadline redelivery.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// For tests of deadline redelivery.
pub(crate) const SHORT_ACK_WAIT: Duration = Duration::from_secs(1);

/// For tests in which no deadline may pass.
pub(crate) const LONG_ACK_WAIT: Duration = Duration::from_secs(60);

/// How long "nothing more arrives" is watched for when a wrong delivery
/// would come at once (both adapters deliver a ready message in
/// milliseconds).
const QUIET: Duration = Duration::from_millis(500);

macro_rules! queue_suite {
    ($make:ident) => {
        $crate::queue_suite::queue_suite!(@tests $make,
            push_then_pull_delivers,
            messages_pushed_before_the_first_pull_are_delivered,
            acked_messages_are_not_redelivered_to_a_new_pull_of_the_group,
            nacked_message_is_redelivered_after_its_delay,
            unsettled_delivery_is_redelivered_after_the_ack_deadline,
            duplicate_push_is_stored_once,
            two_pullers_of_one_group_split_the_messages,
            every_group_gets_every_message,
            topics_are_isolated,
            invalid_names_are_config_errors,
            ping_answers,
        );
    };
    (@tests $make:ident, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::queue_suite::$name($make).await;
            }
        )*
    };
}
pub(crate) use queue_suite;

/// The payload pushed with `id`: unicode and a line break, so the bytes
/// cross the queue unchanged or the test fails.
pub(crate) fn payload(id: &str) -> Bytes {
    Bytes::from(format!("{{\"id\":\"{id}\",\"text\":\"ünïcode\\nline\"}}"))
}

pub(crate) async fn push(queue: &dyn Queue, topic: &str, ids: &[&str]) {
    for id in ids {
        queue
            .push(topic, id, payload(id))
            .await
            .unwrap_or_else(|err| panic!("push {id}: {err}"));
    }
}

/// The next delivery; panics on an error, the end, or a hang.
pub(crate) async fn next(deliveries: &mut Deliveries) -> Delivery {
    tokio::time::timeout(HANG_GUARD, deliveries.next())
        .await
        .expect("the queue delivered nothing")
        .expect("the deliveries ended")
        .unwrap_or_else(|err| panic!("{err}"))
}

/// The next delivery, checked to be `id` with its payload, at `attempt`.
pub(crate) async fn expect(deliveries: &mut Deliveries, id: &str, attempt: u64) -> Delivery {
    let delivery = next(deliveries).await;
    assert_eq!(delivery.id, id, "{delivery:?}");
    assert_eq!(delivery.payload, payload(id), "{delivery:?}");
    assert_eq!(delivery.attempt(), attempt, "{delivery:?}");
    delivery
}

/// Receives and acks `ids.len()` first deliveries, which must be `ids` in
/// any order.
pub(crate) async fn ack_all(deliveries: &mut Deliveries, ids: &[&str]) {
    let mut got = Vec::new();
    for _ in ids {
        let delivery = next(deliveries).await;
        assert_eq!(delivery.attempt(), 1, "{delivery:?}");
        assert_eq!(delivery.payload, payload(&delivery.id), "{delivery:?}");
        got.push(delivery.id.clone());
        delivery.ack().await.unwrap();
    }
    got.sort();
    let mut want: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
}

/// Asserts that nothing is delivered for `quiet`.
pub(crate) async fn expect_nothing(deliveries: &mut Deliveries, quiet: Duration) {
    if let Ok(item) = tokio::time::timeout(quiet, deliveries.next()).await {
        panic!("expected no delivery, got {item:?}");
    }
}

pub(crate) async fn push_then_pull_delivers<F, G>(make: impl FnOnce(Duration) -> F)
where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    let mut deliveries = queue.pull("audit", "policy").await.unwrap();
    push(&*queue, "audit", &["e1"]).await;
    expect(&mut deliveries, "e1", 1).await.ack().await.unwrap();
    push(&*queue, "audit", &["e2"]).await;
    expect(&mut deliveries, "e2", 1).await.ack().await.unwrap();
}

pub(crate) async fn messages_pushed_before_the_first_pull_are_delivered<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    push(&*queue, "audit", &["e1", "e2", "e3"]).await;
    let mut deliveries = queue.pull("audit", "policy").await.unwrap();
    ack_all(&mut deliveries, &["e1", "e2", "e3"]).await;
    expect_nothing(&mut deliveries, QUIET).await;
}

pub(crate) async fn acked_messages_are_not_redelivered_to_a_new_pull_of_the_group<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(SHORT_ACK_WAIT).await;
    push(&*queue, "audit", &["e1", "e2"]).await;
    let mut first = queue.pull("audit", "policy").await.unwrap();
    ack_all(&mut first, &["e1", "e2"]).await;
    drop(first);

    let mut second = queue.pull("audit", "policy").await.unwrap();
    push(&*queue, "audit", &["e3"]).await;
    expect(&mut second, "e3", 1).await.ack().await.unwrap();
    // Past every deadline: an ack that did not stick would show now.
    expect_nothing(&mut second, SHORT_ACK_WAIT * 3).await;
}

pub(crate) async fn nacked_message_is_redelivered_after_its_delay<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    const DELAY: Duration = Duration::from_millis(700);
    // The deadline cannot pass within the test, so only the nack redelivers.
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    let mut deliveries = queue.pull("audit", "policy").await.unwrap();
    push(&*queue, "audit", &["e1"]).await;

    let first = expect(&mut deliveries, "e1", 1).await;
    first.nack(Duration::ZERO).await.unwrap();
    let second = expect(&mut deliveries, "e1", 2).await;

    let nacked_at = Instant::now();
    second.nack(DELAY).await.unwrap();
    let third = expect(&mut deliveries, "e1", 3).await;
    let waited = nacked_at.elapsed();
    assert!(
        waited >= DELAY,
        "redelivered after {waited:?}, before the delay"
    );
    third.ack().await.unwrap();
    expect_nothing(&mut deliveries, QUIET).await;
}

pub(crate) async fn unsettled_delivery_is_redelivered_after_the_ack_deadline<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(SHORT_ACK_WAIT).await;
    let mut deliveries = queue.pull("audit", "policy").await.unwrap();
    push(&*queue, "audit", &["e1"]).await;

    // Dropped unsettled, as by a consumer that failed with `?`.
    let dropped_at = Instant::now();
    drop(expect(&mut deliveries, "e1", 1).await);
    let held = expect(&mut deliveries, "e1", 2).await;
    let waited = dropped_at.elapsed();
    // Not at once: after the deadline (which the server starts a little
    // before our receipt).
    assert!(
        waited >= SHORT_ACK_WAIT / 2,
        "redelivered after {waited:?}, before the ack deadline"
    );

    // Still held, as by a stuck consumer: delivered again all the same.
    let third = expect(&mut deliveries, "e1", 3).await;
    third.ack().await.unwrap();
    // The stuck consumer's late ack is harmless.
    held.ack().await.unwrap();
    expect_nothing(&mut deliveries, SHORT_ACK_WAIT * 3).await;
}

pub(crate) async fn duplicate_push_is_stored_once<F, G>(make: impl FnOnce(Duration) -> F)
where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    push(&*queue, "audit", &["e1", "e1", "e2"]).await;
    // A retry carries the same id; even with other bytes it is dropped.
    queue
        .push("audit", "e1", Bytes::from_static(b"retried"))
        .await
        .unwrap();
    // The same id on another topic is another message.
    push(&*queue, "tickets", &["e1"]).await;

    let mut audit = queue.pull("audit", "policy").await.unwrap();
    ack_all(&mut audit, &["e1", "e2"]).await;
    expect_nothing(&mut audit, QUIET).await;
    let mut tickets = queue.pull("tickets", "worker").await.unwrap();
    ack_all(&mut tickets, &["e1"]).await;
}

pub(crate) async fn two_pullers_of_one_group_split_the_messages<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    const COUNT: usize = 40;
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    let ids: Vec<String> = (0..COUNT).map(|n| format!("job-{n}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    push(&*queue, "tickets.jobs", &id_refs).await;
    let mut a = queue.pull("tickets.jobs", "worker").await.unwrap();
    let mut b = queue.pull("tickets.jobs", "worker").await.unwrap();

    // While `a` holds its message, `b` gets another one.
    let held_by_a = next(&mut a).await;
    let held_by_b = next(&mut b).await;
    assert_ne!(held_by_a.id, held_by_b.id);

    let mut seen = HashSet::from([held_by_a.id.clone(), held_by_b.id.clone()]);
    held_by_a.ack().await.unwrap();
    held_by_b.ack().await.unwrap();
    let mut both = futures::stream::select(a, b);
    while seen.len() < COUNT {
        let delivery = tokio::time::timeout(HANG_GUARD, both.next())
            .await
            .expect("the queue delivered nothing")
            .expect("the deliveries ended")
            .unwrap();
        assert_eq!(delivery.attempt(), 1, "{delivery:?}");
        assert!(
            seen.insert(delivery.id.clone()),
            "{} delivered twice",
            delivery.id
        );
        delivery.ack().await.unwrap();
    }
    assert_eq!(seen, ids.into_iter().collect::<HashSet<_>>());
    if let Ok(item) = tokio::time::timeout(QUIET, both.next()).await {
        panic!("expected no delivery, got {item:?}");
    }
}

pub(crate) async fn every_group_gets_every_message<F, G>(make: impl FnOnce(Duration) -> F)
where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    let mut policy = queue.pull("audit", "policy").await.unwrap();
    let mut archive = queue.pull("audit", "archive").await.unwrap();
    push(&*queue, "audit", &["e1", "e2"]).await;
    // One group's acks do not settle the other's deliveries.
    ack_all(&mut policy, &["e1", "e2"]).await;
    ack_all(&mut archive, &["e1", "e2"]).await;
    expect_nothing(&mut policy, QUIET).await;
}

pub(crate) async fn topics_are_isolated<F, G>(make: impl FnOnce(Duration) -> F)
where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    let mut audit = queue.pull("audit", "policy").await.unwrap();
    push(&*queue, "audit.sub", &["sub"]).await;
    push(&*queue, "other", &["other"]).await;
    push(&*queue, "audit", &["mine"]).await;
    expect(&mut audit, "mine", 1).await.ack().await.unwrap();
    expect_nothing(&mut audit, QUIET).await;
    let mut sub = queue.pull("audit.sub", "policy").await.unwrap();
    expect(&mut sub, "sub", 1).await.ack().await.unwrap();
}

pub(crate) async fn invalid_names_are_config_errors<F, G>(make: impl FnOnce(Duration) -> F)
where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    let is_config = |result: Result<(), Error>, what: &str| match result {
        Err(Error::Config(reason)) => assert!(reason.contains(what), "{reason}"),
        other => panic!("expected a config error about {what}, got {other:?}"),
    };
    is_config(
        queue.push("audit.*", "e1", payload("e1")).await,
        "queue topic",
    );
    is_config(
        queue.push("audit", "e1\r\nX: y", payload("e1")).await,
        "queue message id",
    );
    is_config(
        queue.pull("audit..x", "policy").await.map(drop),
        "queue topic",
    );
    is_config(
        queue.pull("audit", "policy.v2").await.map(drop),
        "queue group",
    );
}

pub(crate) async fn ping_answers<F, G>(make: impl FnOnce(Duration) -> F)
where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    queue.ping().await.unwrap();
    // Nothing was pushed or consumed by it.
    push(&*queue, "audit", &["after-ping"]).await;
    let mut deliveries = queue.pull("audit", "policy").await.unwrap();
    expect(&mut deliveries, "after-ping", 1)
        .await
        .ack()
        .await
        .unwrap();
}
