//! The one consumer loop of the work queue: [`run_worker`] consumes a topic
//! as a named group and settles every delivery for its [`Handler`].
//!
//! - At most `concurrency` handlers run at once; a delivery is taken from
//!   the queue only when one of them is free.
//! - Each payload is decoded (JSON) into the handler's message type; one
//!   that does not decode is dead-lettered at once, since no retry can fix
//!   it.
//! - A [`HandlerError::Retryable`] failure is nacked with exponential
//!   [`Backoff`] until the message has been delivered `max_deliveries`
//!   times; then, or at once for a [`HandlerError::Permanent`] one, the
//!   message goes to the dead-letter topic as a [`DeadLetter`] (original
//!   payload, attempts, last error) and only then is acked.
//! - A message delivered more than `max_deliveries` times without being
//!   settled (its consumer crashed on it, or overran the ack deadline) is
//!   dead-lettered without being handled again.
//! - When `stop` is cancelled no new delivery is started, and the handlers
//!   already running finish and settle theirs before [`run_worker`]
//!   returns. Dropping the future instead (a crash) aborts them unsettled:
//!   their messages are delivered again after the queue's ack deadline.
//!
//! - While a handler runs, its delivery is kept alive with
//!   [`Delivery::in_progress`] every third of the queue's
//!   [`Delivery::ack_wait`], so a handler may take longer than the ack
//!   deadline without its message being delivered to a second consumer
//!   meanwhile. A crashed worker stops sending them, and its message is
//!   delivered again after one `ack_wait`; a handler that never returns
//!   keeps its message, so handlers bound their own time.
//! - A [`HandlerError::Defer`] hands the message back for later without
//!   spending a delivery of its `max_deliveries` (the tickets worker defers a
//!   job whose tenant is at its in-flight cap). See "Deferral" below.
//!
//! Delivery stays at least once: a handler must be idempotent by
//! [`JobContext::id`].
//!
//! # Deferral
//!
//! A queue counts every delivery, and NATS JetStream has no way to hand a
//! message back uncounted (`num_delivered` grows with every nack), so a
//! deferral is not a nack. The loop frees the handler's slot at once, keeps
//! the delivery alive (`in_progress`) for the delay, then pushes a *copy* of
//! the message to the same topic and acks the original. The copy's payload
//! is an envelope, `{"csp_queue_deferred":{"id","group","failed",
//! "deferrals"},"payload":"<base64 of the original bytes>"}`: the original
//! id (the handler's [`JobContext::id`] and the dead letter's id stay the
//! original's), the deliveries of the message that did not end in a
//! deferral (`failed`), and how often it was deferred. A copy's attempt is
//! `failed` + its own deliveries, so its retry budget is where the original
//! left it. Properties:
//! - Both adapters, no adapter code: only `push`, `ack` and `in_progress`.
//! - Nothing lost: the copy is stored before the original is acked; a crash
//!   in between leaves both (a duplicate, which handlers tolerate), a crash
//!   during the delay leaves the original to be delivered again (counted,
//!   as any crash). If the copy cannot be pushed the original is nacked
//!   after the delay instead (counted: the queue is failing anyway).
//! - The copy goes to the back of the topic, behind messages pushed since:
//!   that is what lets another tenant's job overtake a burst.
//! - Every group of a topic receives the copy; a group acks another group's
//!   copies unhandled (the envelope names the group).
//! - Copies are pushed under a new id (`<id>~d<n>-<unix ms>`, the id hashed
//!   when long): the queue deduplicates ids, and a retried push of one copy
//!   is stored once.
//! - A payload whose JSON starts with the key `csp_queue_deferred` is taken
//!   for an envelope; no message of csp starts so.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::queue::{validate_group, validate_topic};
use crate::{Delivery, Error, Queue, push_retrying};

/// The first pause before pulling again after the queue failed; it doubles
/// up to [`PULL_PAUSE_MAX`] while the queue stays unavailable.
const PULL_PAUSE_MIN: Duration = Duration::from_millis(200);
const PULL_PAUSE_MAX: Duration = Duration::from_secs(10);

/// Tries of one dead-letter push before the message is nacked instead.
const DEAD_LETTER_PUSH_TRIES: u32 = 3;

/// How long a retried message waits: `initial` after its first failed
/// delivery, multiplied by `factor` after each further one, never more than
/// `max`.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            factor: 2.0,
        }
    }
}

impl Backoff {
    /// The delay after delivery `attempt` (1 for the first) failed.
    pub fn delay(&self, attempt: u64) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * self.factor.powi(exponent);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if !self.factor.is_finite() || self.factor < 1.0 {
            return Err(Error::Config(format!(
                "worker backoff factor must be a finite number of at least 1.0, got {} (e.g. 2.0)",
                self.factor
            )));
        }
        if self.initial > self.max {
            return Err(Error::Config(format!(
                "worker backoff initial ({:?}) must not exceed its max ({:?})",
                self.initial, self.max
            )));
        }
        Ok(())
    }
}

/// What one worker consumes and how it retries.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    pub topic: String,
    /// The consumer group: workers of one group share the topic's messages.
    pub group: String,
    /// Handlers running at once, at least 1.
    pub concurrency: usize,
    /// Deliveries of one message before a retryable failure dead-letters
    /// it, at least 1. `u32::MAX` retries for as long as the queue keeps
    /// the message.
    pub max_deliveries: u32,
    pub backoff: Backoff,
    /// Where dead messages go; `<topic>.dead` by default. Several groups of
    /// one topic need one each: a dead letter is pushed with the original
    /// id, so a second group's within the duplicate window would be dropped.
    pub dead_letter_topic: String,
}

impl WorkerConfig {
    /// One handler at a time, 5 deliveries, [`Backoff::default`], dead
    /// letters to `<topic>.dead`.
    pub fn new(topic: impl Into<String>, group: impl Into<String>) -> Self {
        let topic = topic.into();
        Self {
            dead_letter_topic: format!("{topic}.dead"),
            topic,
            group: group.into(),
            concurrency: 1,
            max_deliveries: 5,
            backoff: Backoff::default(),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        validate_topic(&self.topic)?;
        validate_group(&self.group)?;
        validate_topic(&self.dead_letter_topic)?;
        if self.dead_letter_topic == self.topic {
            return Err(Error::Config(format!(
                "worker dead_letter_topic must differ from its topic {:?}, or dead messages would \
                 be consumed again (e.g. \"{}.dead\")",
                self.topic, self.topic
            )));
        }
        if self.concurrency == 0 {
            return Err(Error::Config(
                "worker concurrency must be at least 1 (handlers running at once)".into(),
            ));
        }
        if self.max_deliveries == 0 {
            return Err(Error::Config(
                "worker max_deliveries must be at least 1 (deliveries before a message is \
                 dead-lettered)"
                    .into(),
            ));
        }
        self.backoff.validate()
    }
}

/// What a handler knows of the delivery it handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContext {
    /// The id the message was pushed with: the key of idempotent handling.
    pub id: String,
    /// Deliveries of this message so far, 1 the first time; deferrals
    /// are not counted.
    pub attempt: u64,
    /// Times the message was handed back with [`HandlerError::Defer`].
    pub deferrals: u64,
}

/// Why a handler did not handle a message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (a backend is down): delivered again after the
    /// backoff, until `max_deliveries`.
    #[error("{0}")]
    Retryable(String),
    /// Can never work (the message is invalid): dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
    /// Not now: delivered again after this delay, without counting as a
    /// delivery towards `max_deliveries` (module docs, "Deferral").
    #[error("deferred for {0:?}")]
    Defer(Duration),
}

impl HandlerError {
    pub fn retryable(reason: impl std::fmt::Display) -> Self {
        Self::Retryable(reason.to_string())
    }

    pub fn permanent(reason: impl std::fmt::Display) -> Self {
        Self::Permanent(reason.to_string())
    }

    pub fn defer(delay: Duration) -> Self {
        Self::Defer(delay)
    }
}

/// Handles one decoded message of type `M`.
#[async_trait]
pub trait Handler<M>: Send + Sync + 'static {
    async fn handle(&self, message: M, context: &JobContext) -> Result<(), HandlerError>;
}

/// A message that was given up on, as pushed to the dead-letter topic
/// (JSON, with the id of the original message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    pub topic: String,
    pub group: String,
    /// The original bytes (base64 in JSON).
    #[serde(with = "base64_bytes")]
    pub payload: Bytes,
    /// Deliveries of the message when it was given up on.
    pub attempts: u64,
    pub last_error: String,
    /// Unix time in milliseconds.
    pub dead_at_ms: u64,
}

impl DeadLetter {
    /// Reads a dead-letter topic's payload.
    pub fn decode(payload: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        bytes: &Bytes,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Bytes, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text)
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

/// Consumes `config.topic` as `config.group` until `stop` is cancelled,
/// then waits for the handlers in flight. Errs only for an invalid
/// `config`; an unavailable queue is pulled again after a pause.
#[tracing::instrument(name = "queue.worker", skip_all, fields(topic = %config.topic, group = %config.group), err)]
pub async fn run_worker<M, H>(
    queue: Arc<dyn Queue>,
    config: WorkerConfig,
    handler: Arc<H>,
    stop: CancellationToken,
) -> Result<(), Error>
where
    M: DeserializeOwned + Send + 'static,
    H: Handler<M>,
{
    config.validate()?;
    crate::metrics::describe();
    let config = Arc::new(config);
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let mut tasks = JoinSet::new();
    let mut pause = PULL_PAUSE_MIN;
    'pull: while !stop.is_cancelled() {
        let pulled = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            pulled = queue.pull(&config.topic, &config.group) => pulled,
        };
        match pulled {
            Ok(mut deliveries) => loop {
                reap(&mut tasks);
                // A delivery is taken only when a handler is free, so the
                // rest stay with the group's other workers.
                let permit = tokio::select! {
                    biased;
                    () = stop.cancelled() => break 'pull,
                    permit = Arc::clone(&permits).acquire_owned() => {
                        permit.expect("the semaphore is never closed")
                    }
                };
                let next = tokio::select! {
                    biased;
                    () = stop.cancelled() => break 'pull,
                    next = deliveries.next() => next,
                };
                match next {
                    Some(Ok(delivery)) => {
                        pause = PULL_PAUSE_MIN;
                        tasks.spawn(work(
                            Arc::clone(&queue),
                            Arc::clone(&config),
                            Arc::clone(&handler),
                            delivery,
                            permit,
                        ));
                    }
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "queue deliveries broke; pulling again");
                        break;
                    }
                    None => {
                        tracing::warn!("queue deliveries ended; pulling again");
                        break;
                    }
                }
            },
            Err(err) => tracing::warn!(error = %err, "cannot pull from the queue; retrying"),
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(PULL_PAUSE_MAX);
    }
    // Stopped: nothing new starts; what runs finishes and settles.
    while let Some(joined) = tasks.join_next().await {
        log_panic(joined);
    }
    Ok(())
}

fn reap(tasks: &mut JoinSet<()>) {
    while let Some(joined) = tasks.try_join_next() {
        log_panic(joined);
    }
}

fn log_panic(joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined {
        // Its delivery was dropped unsettled: delivered again after the
        // ack deadline, dead-lettered once over max_deliveries.
        tracing::error!(error = %err, "queue handler panicked");
    }
}

/// What becomes of one delivery.
enum Outcome {
    Done,
    Retry(String),
    Dead(String),
    Defer(Duration),
}

/// The key that marks a deferred copy's envelope; it comes first.
const DEFERRED_KEY: &str = "csp_queue_deferred";

/// A deferred copy as pushed (module docs, "Deferral").
#[derive(Debug, Serialize, Deserialize)]
struct Deferred {
    csp_queue_deferred: DeferredMeta,
    #[serde(with = "base64_bytes")]
    payload: Bytes,
}

#[derive(Debug, Serialize, Deserialize)]
struct DeferredMeta {
    /// The original message's id.
    id: String,
    /// The group that deferred it; other groups ignore the copy.
    group: String,
    /// Deliveries of the message that did not end in a deferral.
    failed: u64,
    deferrals: u64,
}

/// A delivery as the loop sees it: the original message, whether it came
/// directly or in a deferred copy.
struct Message {
    id: String,
    payload: Bytes,
    /// Deliveries that count towards `max_deliveries`, this one included.
    attempt: u64,
    deferrals: u64,
}

impl Message {
    /// `None` for another group's deferred copy.
    fn of(delivery: &Delivery, group: &str) -> Option<Self> {
        let prefix = format!("{{\"{DEFERRED_KEY}\":");
        if delivery.payload.starts_with(prefix.as_bytes())
            && let Ok(copy) = serde_json::from_slice::<Deferred>(&delivery.payload)
        {
            let meta = copy.csp_queue_deferred;
            if meta.group != group {
                return None;
            }
            return Some(Self {
                id: meta.id,
                payload: copy.payload,
                attempt: meta.failed.saturating_add(delivery.attempt()),
                deferrals: meta.deferrals,
            });
        }
        Some(Self {
            id: delivery.id.clone(),
            payload: delivery.payload.clone(),
            attempt: delivery.attempt(),
            deferrals: 0,
        })
    }
}

async fn work<M, H>(
    queue: Arc<dyn Queue>,
    config: Arc<WorkerConfig>,
    handler: Arc<H>,
    delivery: Delivery,
    permit: OwnedSemaphorePermit,
) where
    M: DeserializeOwned + Send + 'static,
    H: Handler<M>,
{
    let running = crate::metrics::Running::start(&config.topic);
    let Some(message) = Message::of(&delivery, &config.group) else {
        // Another group's deferred copy: that group handles it.
        let id = delivery.id.clone();
        settle(delivery.ack().await, &id);
        return;
    };
    let attempt = message.attempt;
    let max = u64::from(config.max_deliveries);
    let outcome = if attempt > max {
        Outcome::Dead(format!(
            "delivered {attempt} times, more than max_deliveries ({max}), without being settled: \
             its consumer crashed or overran the ack deadline each time"
        ))
    } else {
        match serde_json::from_slice::<M>(&message.payload) {
            Err(err) => Outcome::Dead(format!(
                "cannot decode the message as {}: {err}",
                std::any::type_name::<M>()
            )),
            Ok(decoded) => {
                let context = JobContext {
                    id: message.id.clone(),
                    attempt,
                    deferrals: message.deferrals,
                };
                let handled = keep_alive(&delivery, handler.handle(decoded, &context)).await;
                match handled {
                    Ok(()) => Outcome::Done,
                    Err(HandlerError::Permanent(reason)) => Outcome::Dead(reason),
                    Err(HandlerError::Retryable(reason)) if attempt >= max => Outcome::Dead(reason),
                    Err(HandlerError::Retryable(reason)) => Outcome::Retry(reason),
                    Err(HandlerError::Defer(delay)) => Outcome::Defer(delay),
                }
            }
        }
    };
    let id = message.id.clone();
    match outcome {
        Outcome::Done => {
            crate::metrics::settled(&config.topic, "handled");
            settle(delivery.ack().await, &id);
        }
        Outcome::Retry(reason) => {
            let delay = config.backoff.delay(attempt);
            tracing::warn!(id, attempt, error = %reason, delay_ms = delay.as_millis() as u64, "queue handler failed; retrying");
            crate::metrics::settled(&config.topic, "retried");
            settle(delivery.nack(delay).await, &id);
        }
        Outcome::Dead(reason) => dead_letter(&*queue, &config, delivery, message, reason).await,
        Outcome::Defer(delay) => {
            // The slot goes to the next delivery while this one waits.
            drop(permit);
            drop(running);
            defer(&*queue, &config, delivery, message, delay).await;
        }
    }
}

/// Runs `work`, telling the queue every third of its ack deadline that the
/// delivery is still being worked on.
async fn keep_alive<F: Future>(delivery: &Delivery, work: F) -> F::Output {
    let every = (delivery.ack_wait() / 3).max(Duration::from_millis(10));
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            output = &mut work => return output,
            _ = beat.tick() => {
                if let Err(err) = delivery.in_progress().await {
                    // The next beat tries again; if none arrives in time the
                    // message is delivered again, which handlers tolerate.
                    tracing::warn!(id = %delivery.id, error = %err, "cannot extend a queue delivery's ack deadline");
                }
            }
        }
    }
}

/// Hands the message back after `delay` without spending a delivery: a
/// copy is pushed to the back of the topic, then the original is acked.
async fn defer(
    queue: &dyn Queue,
    config: &WorkerConfig,
    delivery: Delivery,
    message: Message,
    delay: Duration,
) {
    keep_alive(&delivery, tokio::time::sleep(delay)).await;
    let deferrals = message.deferrals.saturating_add(1);
    let copy = Deferred {
        csp_queue_deferred: DeferredMeta {
            id: message.id.clone(),
            group: config.group.clone(),
            failed: message.attempt.saturating_sub(1),
            deferrals,
        },
        payload: message.payload,
    };
    let bytes = Bytes::from(serde_json::to_vec(&copy).expect("a deferred copy serializes"));
    let copy_id = deferred_id(&message.id, deferrals);
    match push_retrying(
        queue,
        &config.topic,
        &copy_id,
        bytes,
        DEAD_LETTER_PUSH_TRIES,
    )
    .await
    {
        Ok(()) => {
            tracing::debug!(id = %message.id, deferrals, delay_ms = delay.as_millis() as u64, "queue message deferred");
            crate::metrics::settled(&config.topic, "deferred");
            settle(delivery.ack().await, &message.id);
        }
        Err(err) => {
            tracing::warn!(id = %message.id, error = %err, "cannot push a deferred copy; the message is nacked instead (a delivery is spent)");
            crate::metrics::settled(&config.topic, "retried");
            settle(delivery.nack(Duration::ZERO).await, &message.id);
        }
    }
}

/// A deferred copy's id: new for each deferral (the queue drops an id it
/// saw within its duplicate window), at most 256 bytes.
fn deferred_id(id: &str, deferrals: u64) -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    const KEEP: usize = 200;
    let base = if id.len() <= KEEP {
        id.to_owned()
    } else {
        let mut end = KEEP;
        while !id.is_char_boundary(end) {
            end -= 1;
        }
        format!(
            "{}~{:016x}",
            &id[..end],
            crate::queue::nats::fnv1a(id.as_bytes())
        )
    };
    format!("{base}~d{deferrals}-{now_ms}")
}

fn settle(result: Result<(), Error>, id: &str) {
    if let Err(err) = result {
        // Delivered again after the ack deadline; handlers are idempotent.
        tracing::warn!(id, error = %err, "cannot settle a queue delivery");
    }
}

/// Keeps the message and its error on the dead-letter topic, then acks it;
/// if the dead letter cannot be stored the message is nacked instead, so
/// it is never lost.
async fn dead_letter(
    queue: &dyn Queue,
    config: &WorkerConfig,
    delivery: Delivery,
    message: Message,
    reason: String,
) {
    let dead_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let attempt = message.attempt;
    // A message published without an id (not by `push`) still needs one.
    let id = if message.id.is_empty() {
        format!("no-id-{dead_at_ms}")
    } else {
        message.id.clone()
    };
    let letter = DeadLetter {
        id: id.clone(),
        topic: config.topic.clone(),
        group: config.group.clone(),
        payload: message.payload,
        attempts: attempt,
        last_error: reason,
        dead_at_ms,
    };
    let bytes = Bytes::from(serde_json::to_vec(&letter).expect("a dead letter serializes"));
    match push_retrying(
        queue,
        &config.dead_letter_topic,
        &id,
        bytes,
        DEAD_LETTER_PUSH_TRIES,
    )
    .await
    {
        Ok(()) => {
            tracing::error!(id, attempt, error = %letter.last_error, dead_letter_topic = %config.dead_letter_topic, "queue message dead-lettered");
            crate::metrics::settled(&config.topic, "dead_lettered");
            settle(delivery.ack().await, &id);
        }
        Err(err) => {
            tracing::error!(id, attempt, error = %err, "cannot push a dead letter; the message stays queued");
            let delay = config.backoff.delay(attempt);
            crate::metrics::settled(&config.topic, "retried");
            settle(delivery.nack(delay).await, &id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_its_factor_up_to_its_max() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            factor: 3.0,
        };
        let delays: Vec<_> = (1..=5).map(|attempt| backoff.delay(attempt)).collect();
        assert_eq!(
            delays,
            [100, 300, 900, 1000, 1000].map(Duration::from_millis)
        );
        assert_eq!(backoff.delay(0), Duration::from_millis(100));
        assert_eq!(backoff.delay(u64::MAX), Duration::from_secs(1));
        let constant = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1),
            factor: 1.0,
        };
        assert_eq!(constant.delay(40), Duration::from_secs(1));
    }

    #[test]
    fn config_is_validated_with_the_key_name() {
        let good = WorkerConfig::new("tickets.jobs", "worker");
        assert_eq!(good.dead_letter_topic, "tickets.jobs.dead");
        good.validate().unwrap();
        type Change = fn(&mut WorkerConfig);
        let cases: [(Change, &str); 7] = [
            (|c| c.concurrency = 0, "concurrency"),
            (|c| c.max_deliveries = 0, "max_deliveries"),
            (|c| c.backoff.factor = 0.5, "factor"),
            (|c| c.backoff.factor = f64::NAN, "factor"),
            (|c| c.backoff.initial = Duration::from_secs(120), "initial"),
            (
                |c| c.dead_letter_topic = c.topic.clone(),
                "dead_letter_topic",
            ),
            (|c| c.group = "a.b".into(), "queue group"),
        ];
        for (change, key) in cases {
            let mut config = good.clone();
            change(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn deferred_ids_are_new_per_deferral_and_bounded() {
        assert!(deferred_id("job-1", 3).starts_with("job-1~d3-"));
        let long = "é".repeat(200);
        let id = deferred_id(&long, 1);
        assert!(id.len() <= 256, "{}", id.len());
        let other = format!("{}x", &long[..398]);
        assert_ne!(
            id.split("~d").next(),
            deferred_id(&other, 1).split("~d").next(),
            "long ids stay distinct"
        );
        crate::queue::validate_id(&id).unwrap();
    }

    #[test]
    fn a_dead_letter_keeps_the_exact_bytes() {
        let letter = DeadLetter {
            id: "j1".into(),
            topic: "jobs".into(),
            group: "worker".into(),
            payload: Bytes::from_static(b"\xff not json \n"),
            attempts: 3,
            last_error: "boom".into(),
            dead_at_ms: 1,
        };
        let json = serde_json::to_vec(&letter).unwrap();
        assert_eq!(DeadLetter::decode(&json).unwrap(), letter);
    }
}
