//! The behaviour of `run_worker` on every `Queue` adapter. Each adapter
//! module instantiates it with `worker_suite!(make)`, the same `make` as the
//! queue suite's. Real time (NATS keeps its own clock): backoffs are tens of
//! milliseconds and every wait is bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use csp_bus::{
    Backoff, DeadLetter, Handler, HandlerError, JobContext, Queue, WorkerConfig, run_worker,
};
use serde::Deserialize;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::queue_suite::{LONG_ACK_WAIT, SHORT_ACK_WAIT, expect_nothing, next};

/// Only guards against a hang.
const HANG_GUARD: Duration = Duration::from_secs(20);
const QUIET: Duration = Duration::from_millis(500);
const TOPIC: &str = "jobs";
const GROUP: &str = "worker";
const BACKOFF: Duration = Duration::from_millis(60);

macro_rules! worker_suite {
    ($make:ident) => {
        $crate::worker_suite::worker_suite!(@tests $make,
            retryable_failures_are_retried_with_backoff,
            retries_end_in_the_dead_letter_topic_with_the_last_error,
            undecodable_and_permanently_failing_messages_are_dead_lettered_at_once,
            stop_lets_a_running_handler_finish_and_leaves_the_rest_queued,
            a_crashed_worker_s_message_is_delivered_again,
            concurrency_is_bounded,
            a_deferred_message_comes_back_after_its_delay_with_its_retry_budget,
            a_handler_longer_than_the_ack_deadline_keeps_its_delivery,
        );
    };
    (@tests $make:ident, $($name:ident),* $(,)?) => {
        mod worker {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::worker_suite::$name($make).await;
                }
            )*
        }
    };
}
pub(crate) use worker_suite;

#[derive(Debug, Deserialize)]
pub(crate) struct Job {
    #[allow(dead_code)]
    pub(crate) n: u32,
}

pub(crate) fn job(n: u32) -> Bytes {
    Bytes::from(format!("{{\"n\":{n}}}"))
}

pub(crate) fn config(concurrency: usize, max_deliveries: u32) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        max_deliveries,
        backoff: Backoff {
            initial: BACKOFF,
            max: Duration::from_secs(1),
            factor: 2.0,
        },
        ..WorkerConfig::new(TOPIC, GROUP)
    }
}

/// What the test handler does with a delivery.
#[derive(Clone, Copy)]
pub(crate) enum Act {
    Succeed,
    /// Fails retryably while the attempt is at most this.
    FailUntil(u64),
    FailPermanently,
    /// Waits for `release` before succeeding.
    WaitForRelease,
    /// Never returns.
    Hang,
    /// Takes this long, then succeeds.
    Take(Duration),
    /// Defers the first `times` calls by `delay`, then fails retryably
    /// while the attempt is at most `fail_until`, then succeeds.
    Defer {
        times: usize,
        delay: Duration,
        fail_until: u64,
    },
}

/// Records every call: id, attempt, when it started, and whether it succeeded.
pub(crate) struct Recorder {
    act: Act,
    pub(crate) calls: Mutex<Vec<(String, u64, Instant)>>,
    pub(crate) deferrals: Mutex<Vec<u64>>,
    pub(crate) succeeded: Mutex<Vec<String>>,
    started: mpsc::UnboundedSender<String>,
    pub(crate) release: Notify,
    running: AtomicUsize,
    pub(crate) max_running: AtomicUsize,
}

impl Recorder {
    pub(crate) fn new(act: Act) -> (Arc<Self>, mpsc::UnboundedReceiver<String>) {
        let (started, rx) = mpsc::unbounded_channel();
        let recorder = Arc::new(Self {
            act,
            calls: Mutex::default(),
            deferrals: Mutex::default(),
            succeeded: Mutex::default(),
            started,
            release: Notify::new(),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
        });
        (recorder, rx)
    }

    pub(crate) fn attempts(&self) -> Vec<u64> {
        let calls = self.calls.lock().unwrap();
        calls.iter().map(|(_, attempt, _)| *attempt).collect()
    }

    pub(crate) fn call_ids(&self) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        calls.iter().map(|(id, _, _)| id.clone()).collect()
    }
}

#[async_trait]
impl Handler<Job> for Recorder {
    async fn handle(&self, _job: Job, context: &JobContext) -> Result<(), HandlerError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let earlier_calls = {
            let mut calls = self.calls.lock().unwrap();
            calls.push((context.id.clone(), context.attempt, Instant::now()));
            self.deferrals.lock().unwrap().push(context.deferrals);
            calls.len() - 1
        };
        let _ = self.started.send(context.id.clone());
        let result = match self.act {
            Act::Succeed => Ok(()),
            Act::FailUntil(last) if context.attempt <= last => Err(HandlerError::retryable(
                format!("backend down at attempt {}", context.attempt),
            )),
            Act::FailUntil(_) => Ok(()),
            Act::FailPermanently => Err(HandlerError::permanent("the job names no ticket")),
            Act::WaitForRelease => {
                self.release.notified().await;
                Ok(())
            }
            Act::Hang => std::future::pending().await,
            Act::Take(time) => {
                tokio::time::sleep(time).await;
                Ok(())
            }
            Act::Defer { times, delay, .. } if earlier_calls < times => {
                Err(HandlerError::defer(delay))
            }
            Act::Defer { fail_until, .. } if context.attempt <= fail_until => Err(
                HandlerError::retryable(format!("backend down at attempt {}", context.attempt)),
            ),
            Act::Defer { .. } => Ok(()),
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        if result.is_ok() {
            self.succeeded.lock().unwrap().push(context.id.clone());
        }
        result
    }
}

pub(crate) fn spawn_worker(
    queue: &Arc<dyn Queue>,
    config: WorkerConfig,
    handler: &Arc<Recorder>,
) -> (JoinHandle<()>, CancellationToken) {
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_worker::<Job, _>(
        Arc::clone(queue),
        config,
        Arc::clone(handler),
        stop.clone(),
    ));
    let task = tokio::spawn(async move { task.await.unwrap().unwrap() });
    (task, stop)
}

pub(crate) async fn stop_worker(task: JoinHandle<()>, stop: CancellationToken) {
    stop.cancel();
    tokio::time::timeout(HANG_GUARD, task)
        .await
        .expect("the worker did not stop")
        .unwrap();
}

/// Waits until `done` holds, polling.
pub(crate) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) async fn started(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(HANG_GUARD, rx.recv())
        .await
        .expect("no handler started")
        .expect("the handler is gone")
}

/// Every dead letter on the topic's dead-letter topic, by id.
pub(crate) async fn dead_letters(queue: &dyn Queue, count: usize) -> HashMap<String, DeadLetter> {
    let mut deliveries = queue
        .pull(&format!("{TOPIC}.dead"), "inspect")
        .await
        .unwrap();
    let mut letters = HashMap::new();
    for _ in 0..count {
        let delivery = next(&mut deliveries).await;
        let letter = DeadLetter::decode(&delivery.payload).unwrap();
        assert_eq!(letter.id, delivery.id, "pushed with the original id");
        letters.insert(letter.id.clone(), letter);
        delivery.ack().await.unwrap();
    }
    expect_nothing(&mut deliveries, QUIET).await;
    letters
}

pub(crate) async fn retryable_failures_are_retried_with_backoff<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    let (handler, _) = Recorder::new(Act::FailUntil(2));
    let (task, stop) = spawn_worker(&queue, config(1, 5), &handler);
    queue.push(TOPIC, "j1", job(1)).await.unwrap();

    until("j1 succeeded", || {
        !handler.succeeded.lock().unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(QUIET).await;
    stop_worker(task, stop).await;
    assert_eq!(handler.attempts(), [1, 2, 3]);
    assert_eq!(*handler.succeeded.lock().unwrap(), ["j1"]);
    let calls = handler.calls.lock().unwrap().clone();
    let first_gap = calls[1].2 - calls[0].2;
    let second_gap = calls[2].2 - calls[1].2;
    assert!(first_gap >= BACKOFF, "retried after {first_gap:?}");
    assert!(second_gap >= BACKOFF * 2, "retried after {second_gap:?}");
    // Handled, acked, nothing dead.
    dead_letters(&*queue, 0).await;
    let (again, _) = Recorder::new(Act::Succeed);
    let (task, stop) = spawn_worker(&queue, config(1, 5), &again);
    tokio::time::sleep(QUIET).await;
    stop_worker(task, stop).await;
    assert!(again.attempts().is_empty(), "an acked message came back");
}

pub(crate) async fn retries_end_in_the_dead_letter_topic_with_the_last_error<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    let (handler, _) = Recorder::new(Act::FailUntil(u64::MAX));
    let (task, stop) = spawn_worker(&queue, config(1, 3), &handler);
    queue.push(TOPIC, "j1", job(1)).await.unwrap();

    let letters = dead_letters(&*queue, 1).await;
    let letter = &letters["j1"];
    assert_eq!(
        (letter.topic.as_str(), letter.group.as_str()),
        (TOPIC, GROUP)
    );
    assert_eq!(letter.payload, job(1), "the original bytes are kept");
    assert_eq!(letter.attempts, 3);
    assert_eq!(letter.last_error, "backend down at attempt 3");
    assert!(letter.dead_at_ms > 0);
    // Given up on: not delivered a fourth time.
    tokio::time::sleep(QUIET).await;
    stop_worker(task, stop).await;
    assert_eq!(handler.attempts(), [1, 2, 3]);
}

pub(crate) async fn undecodable_and_permanently_failing_messages_are_dead_lettered_at_once<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    let (handler, _) = Recorder::new(Act::FailPermanently);
    let (task, stop) = spawn_worker(&queue, config(1, 5), &handler);
    queue
        .push(TOPIC, "garbled", Bytes::from_static(b"{\"n\": \"seven\"}"))
        .await
        .unwrap();
    queue.push(TOPIC, "invalid", job(2)).await.unwrap();

    let letters = dead_letters(&*queue, 2).await;
    let garbled = &letters["garbled"];
    assert_eq!(garbled.attempts, 1);
    assert!(
        garbled.last_error.contains("cannot decode") && garbled.last_error.contains("Job"),
        "{}",
        garbled.last_error
    );
    assert!(
        garbled.last_error.contains("invalid type"),
        "the decode error itself: {}",
        garbled.last_error
    );
    assert_eq!(garbled.payload, Bytes::from_static(b"{\"n\": \"seven\"}"));
    let invalid = &letters["invalid"];
    assert_eq!(invalid.attempts, 1);
    assert_eq!(invalid.last_error, "the job names no ticket");
    tokio::time::sleep(QUIET).await;
    stop_worker(task, stop).await;
    assert_eq!(
        handler.call_ids(),
        ["invalid"],
        "a garbled message is never handled"
    );
}

pub(crate) async fn stop_lets_a_running_handler_finish_and_leaves_the_rest_queued<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(SHORT_ACK_WAIT).await;
    let (handler, mut started_rx) = Recorder::new(Act::WaitForRelease);
    let (mut task, stop) = spawn_worker(&queue, config(1, 5), &handler);
    queue.push(TOPIC, "running", job(1)).await.unwrap();
    assert_eq!(started(&mut started_rx).await, "running");
    queue.push(TOPIC, "waiting", job(2)).await.unwrap();

    stop.cancel();
    // Still waiting for its handler.
    assert!(
        tokio::time::timeout(QUIET, &mut task).await.is_err(),
        "the worker returned while its handler ran"
    );
    handler.release.notify_one();
    tokio::time::timeout(HANG_GUARD, task)
        .await
        .expect("the worker did not stop")
        .unwrap();
    assert_eq!(*handler.succeeded.lock().unwrap(), ["running"]);
    assert_eq!(handler.call_ids(), ["running"], "nothing new started");

    // The next worker gets what was never started, and not what was acked,
    // even past the ack deadline.
    let (next_handler, _) = Recorder::new(Act::Succeed);
    let (task, stop) = spawn_worker(&queue, config(1, 5), &next_handler);
    until("waiting was handled", || {
        !next_handler.succeeded.lock().unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(SHORT_ACK_WAIT * 2).await;
    stop_worker(task, stop).await;
    assert_eq!(next_handler.call_ids(), ["waiting"]);
}

pub(crate) async fn a_crashed_worker_s_message_is_delivered_again<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(SHORT_ACK_WAIT).await;
    let (handler, mut started_rx) = Recorder::new(Act::Hang);
    let stop = CancellationToken::new();
    let crashed = tokio::spawn(run_worker::<Job, _>(
        Arc::clone(&queue),
        config(1, 5),
        Arc::clone(&handler),
        stop,
    ));
    queue.push(TOPIC, "j1", job(1)).await.unwrap();
    assert_eq!(started(&mut started_rx).await, "j1");
    crashed.abort();
    assert!(crashed.await.unwrap_err().is_cancelled());

    let (next_handler, _) = Recorder::new(Act::Succeed);
    let (task, stop) = spawn_worker(&queue, config(1, 5), &next_handler);
    until("j1 was handled again", || {
        !next_handler.succeeded.lock().unwrap().is_empty()
    })
    .await;
    stop_worker(task, stop).await;
    assert_eq!(next_handler.call_ids(), ["j1"]);
    assert_eq!(next_handler.attempts(), [2], "the crashed delivery counts");
    dead_letters(&*queue, 0).await;
}

pub(crate) async fn concurrency_is_bounded<F, G>(make: impl FnOnce(Duration) -> F)
where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    const COUNT: u32 = 12;
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    for n in 0..COUNT {
        queue.push(TOPIC, &format!("j{n}"), job(n)).await.unwrap();
    }
    let (handler, _) = Recorder::new(Act::Take(Duration::from_millis(50)));
    let (task, stop) = spawn_worker(&queue, config(3, 5), &handler);
    until("every job was handled", || {
        handler.succeeded.lock().unwrap().len() == COUNT as usize
    })
    .await;
    stop_worker(task, stop).await;
    assert_eq!(
        handler.max_running.load(Ordering::SeqCst),
        3,
        "at most (and, with work waiting, exactly) 3 at once"
    );
    let mut ids = handler.call_ids();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), COUNT as usize, "each handled once");
}

pub(crate) async fn a_deferred_message_comes_back_after_its_delay_with_its_retry_budget<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    const DELAY: Duration = Duration::from_millis(300);
    let (queue, _guard) = make(LONG_ACK_WAIT).await;
    // Deferred three times with a budget of two deliveries: were deferrals
    // counted, it would be dead-lettered before it ever failed.
    let (handler, _) = Recorder::new(Act::Defer {
        times: 3,
        delay: DELAY,
        fail_until: 1,
    });
    let (task, stop) = spawn_worker(&queue, config(2, 2), &handler);
    queue.push(TOPIC, "j1", job(1)).await.unwrap();
    queue.push(TOPIC, "j2", job(2)).await.unwrap();

    until("j1 and j2 succeeded", || {
        handler.succeeded.lock().unwrap().len() == 2
    })
    .await;
    tokio::time::sleep(QUIET).await;
    stop_worker(task, stop).await;
    let calls = handler.calls.lock().unwrap().clone();
    let j1: Vec<_> = calls.iter().filter(|(id, ..)| id == "j1").collect();
    // The handler's first three calls were deferrals; while one waited,
    // the other message was handled (the slot was free).
    assert_eq!(calls.len(), 3 + 2 + 2, "{calls:?}");
    let attempts: Vec<u64> = j1.iter().map(|(_, attempt, _)| *attempt).collect();
    assert!(
        attempts.windows(2).all(|w| w[0] <= w[1]) && attempts.last() == Some(&2),
        "j1 keeps its id and budget: {attempts:?}"
    );
    for (id, _, _) in &calls {
        assert!(id == "j1" || id == "j2", "the original id: {id}");
    }
    // Each message's deferred calls were followed by one at attempt 1
    // (failed) and one at attempt 2 (succeeded): nothing spent by waiting.
    for id in ["j1", "j2"] {
        let of: Vec<_> = calls.iter().filter(|(i, ..)| i == id).collect();
        let tail: Vec<u64> = of[of.len() - 2..].iter().map(|(_, a, _)| *a).collect();
        assert_eq!(tail, [1, 2], "{id}: {of:?}");
        for pair in of.windows(2) {
            if pair[0].1 == pair[1].1 {
                let gap = pair[1].2 - pair[0].2;
                assert!(
                    gap >= DELAY,
                    "{id} came back after {gap:?}, before its delay"
                );
            }
        }
    }
    let mut succeeded = handler.succeeded.lock().unwrap().clone();
    succeeded.sort();
    assert_eq!(succeeded, ["j1", "j2"]);
    // Each call is told how often its message was deferred before: every
    // call but the last two of a message was a deferral.
    let deferrals = handler.deferrals.lock().unwrap().clone();
    for id in ["j1", "j2"] {
        let of: Vec<u64> = calls
            .iter()
            .zip(&deferrals)
            .filter(|((i, ..), _)| i == id)
            .map(|(_, d)| *d)
            .collect();
        let deferred = of.len() as u64 - 2;
        let expected: Vec<u64> = (0..of.len() as u64).map(|n| n.min(deferred)).collect();
        assert_eq!(of, expected, "{id}");
    }
    dead_letters(&*queue, 0).await;
    // The originals and every copy were acked: a new worker gets nothing.
    let (again, _) = Recorder::new(Act::Succeed);
    let (task, stop) = spawn_worker(&queue, config(1, 5), &again);
    tokio::time::sleep(QUIET).await;
    stop_worker(task, stop).await;
    assert!(again.attempts().is_empty(), "{:?}", again.call_ids());
}

pub(crate) async fn a_handler_longer_than_the_ack_deadline_keeps_its_delivery<F, G>(
    make: impl FnOnce(Duration) -> F,
) where
    F: Future<Output = (Arc<dyn Queue>, G)>,
{
    let (queue, _guard) = make(SHORT_ACK_WAIT).await;
    let (handler, _) = Recorder::new(Act::Take(SHORT_ACK_WAIT * 3));
    // A second free slot would take a redelivery at once.
    let (task, stop) = spawn_worker(&queue, config(2, 5), &handler);
    queue.push(TOPIC, "slow", job(1)).await.unwrap();
    until("slow succeeded", || {
        !handler.succeeded.lock().unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(SHORT_ACK_WAIT * 2).await;
    stop_worker(task, stop).await;
    assert_eq!(
        handler.attempts(),
        [1],
        "delivered once: in_progress kept the deadline from passing"
    );
    dead_letters(&*queue, 0).await;
}
