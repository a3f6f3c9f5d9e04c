//! The in-process queue: the shared suite, and its memory bound.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use csp_bus::queue::inprocess::Config;
use csp_bus::{Error, InProcessQueue, Queue};

use crate::queue_suite::{LONG_ACK_WAIT, ack_all, expect, next, payload, push};

async fn make(ack_wait: Duration) -> (Arc<dyn Queue>, ()) {
    let queue = InProcessQueue::with_config(Config {
        ack_wait,
        ..Config::default()
    })
    .unwrap();
    (Arc::new(queue), ())
}

crate::queue_suite::queue_suite!(make);
crate::worker_suite::worker_suite!(make);

fn queue(max_messages: usize, max_bytes: usize) -> InProcessQueue {
    InProcessQueue::with_config(Config {
        max_messages,
        max_bytes,
        ack_wait: LONG_ACK_WAIT,
    })
    .unwrap()
}

fn assert_full(result: Result<(), Error>, limit: &str) {
    match result {
        Err(err @ Error::Push { .. }) => {
            assert!(err.to_string().contains(limit), "{err}");
        }
        other => panic!("expected the queue to be full ({limit}), got {other:?}"),
    }
}

#[tokio::test]
async fn a_full_queue_refuses_pushes_until_acks_make_room() {
    let queue = queue(2, 1 << 20);
    push(&queue, "audit", &["e1", "e2"]).await;
    assert_full(
        queue.push("audit", "e3", payload("e3")).await,
        "max_messages",
    );
    // The bound is over all topics.
    assert_full(
        queue.push("other", "e3", payload("e3")).await,
        "max_messages",
    );
    // A retry of a kept message is no new message: it still succeeds.
    queue.push("audit", "e1", payload("e1")).await.unwrap();

    let mut deliveries = queue.pull("audit", "policy").await.unwrap();
    expect(&mut deliveries, "e1", 1).await.ack().await.unwrap();
    push(&queue, "audit", &["e3"]).await;
    ack_all(&mut deliveries, &["e2", "e3"]).await;
}

#[tokio::test]
async fn the_byte_bound_counts_ids_and_payloads() {
    let queue = queue(100, 10);
    queue
        .push("audit", "e1", Bytes::from_static(b"12345678"))
        .await
        .unwrap();
    // 2 + 8 bytes kept: even an empty payload's id would exceed 10.
    assert_full(
        queue.push("audit", "e2", Bytes::from_static(b"")).await,
        "max_bytes",
    );
    let mut deliveries = queue.pull("audit", "policy").await.unwrap();
    next(&mut deliveries).await.ack().await.unwrap();
    queue
        .push("audit", "e2", Bytes::from_static(b"12345678"))
        .await
        .unwrap();
}

#[tokio::test]
async fn messages_are_kept_until_every_group_acked_them() {
    let queue = queue(1, 1 << 20);
    let mut policy = queue.pull("audit", "policy").await.unwrap();
    let mut archive = queue.pull("audit", "archive").await.unwrap();
    push(&queue, "audit", &["e1"]).await;
    expect(&mut policy, "e1", 1).await.ack().await.unwrap();
    assert_full(
        queue.push("audit", "e2", payload("e2")).await,
        "max_messages",
    );
    expect(&mut archive, "e1", 1).await.ack().await.unwrap();
    push(&queue, "audit", &["e2"]).await;
}

#[tokio::test]
async fn clones_share_the_queue() {
    let queue = InProcessQueue::new();
    let producer = queue.clone();
    let mut deliveries = queue.pull("audit", "policy").await.unwrap();
    push(&producer, "audit", &["e1"]).await;
    expect(&mut deliveries, "e1", 1).await.ack().await.unwrap();
}

/// With paused time the backoff is exact: each retry waits precisely its
/// delay, growing by the factor up to the max, and the dead letter follows
/// the last delivery.
#[tokio::test(start_paused = true)]
async fn worker_retries_wait_exactly_their_backoff() {
    use crate::worker_suite::{
        Act, Recorder, config, dead_letters, job, spawn_worker, stop_worker, until,
    };
    use csp_bus::Backoff;

    let queue: Arc<dyn Queue> = Arc::new(
        InProcessQueue::with_config(Config {
            ack_wait: LONG_ACK_WAIT,
            ..Config::default()
        })
        .unwrap(),
    );
    let (handler, _) = Recorder::new(Act::FailUntil(u64::MAX));
    let worker = csp_bus::WorkerConfig {
        backoff: Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(3),
            factor: 2.0,
        },
        ..config(1, 5)
    };
    let (task, stop) = spawn_worker(&queue, worker, &handler);
    queue.push("jobs", "j1", job(1)).await.unwrap();
    until("five deliveries", || handler.attempts().len() == 5).await;
    let letters = dead_letters(&*queue, 1).await;
    assert_eq!(letters["j1"].attempts, 5);
    stop_worker(task, stop).await;
    let calls = handler.calls.lock().unwrap().clone();
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].2 - w[0].2).collect();
    assert_eq!(gaps, [1, 2, 3, 3].map(Duration::from_secs));
}
