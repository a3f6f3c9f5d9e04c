//! The durable work queue: jobs that must reach a consumer service even if
//! that service is down when they are pushed (audit events from the
//! session-pool to policy, later ticket-pipeline jobs).
//!
//! A different shape from the session event stream: no per-session seq and
//! no replay for browsers, but at-least-once delivery to one consumer of a
//! group, with acks. [`NatsQueue`] (JetStream) serves distributed mode,
//! [`InProcessQueue`] serves `csp dev`; one shared suite tests both.
//!
//! Delivery is at least once, never exactly once: a message is delivered
//! again when it is nacked, when its ack deadline (`ack_wait`) passes
//! without an ack (a crashed or stuck consumer, or a [`Delivery`] dropped
//! without ack or nack), or when an ack is lost. Consumers must handle a
//! message idempotently, keyed by its id. A dropped delivery waits for its
//! deadline rather than returning at once, so a consumer that keeps failing
//! on a message retries it every `ack_wait`, not in a hot loop. A consumer
//! that needs longer than `ack_wait` for one message says it is still at
//! work with [`Delivery::in_progress`] (NATS `+WPI`), which restarts the
//! deadline; the worker loop does so every third of [`Delivery::ack_wait`].

pub mod inprocess;
pub mod nats;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Error;

pub use inprocess::InProcessQueue;
pub use nats::NatsQueue;

/// A durable, at-least-once work queue. Each message pushed to a topic is
/// delivered to one consumer of a group and redelivered until acked (crash,
/// nack, or ack deadline passed).
///
/// Every group of a topic receives every message of that topic; consumers
/// that pull the same (topic, group) share its messages between them.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Stores the message durably before returning. `id` dedups: a retried
    /// push of the same id to the same topic within the broker's duplicate
    /// window (two minutes) is stored once.
    ///
    /// Topics are `.`-separated segments of letters, digits, `_` and `-`
    /// (`audit`, `tickets.jobs`); ids are 1 to 256 printable characters.
    async fn push(&self, topic: &str, id: &str, payload: Bytes) -> Result<(), Error>;

    /// Starts (or joins) durable consumer `group` on `topic`; messages
    /// pushed before it started and not yet acked by the group are
    /// delivered too.
    ///
    /// Groups are letters, digits, `_` and `-`. The stream ends only after
    /// it has yielded an error; pull again to go on (what was not acked is
    /// delivered again).
    async fn pull(&self, topic: &str, group: &str) -> Result<Deliveries, Error>;

    /// Succeeds when the broker answers (NATS: the queue's stream can be
    /// read), for health checks; it neither pushes nor pulls anything.
    async fn ping(&self) -> Result<(), Error>;
}

/// One consumer's deliveries, in no promised order. An adapter may fetch a
/// few messages ahead of the reader (their ack deadlines running): drop
/// the stream when you stop reading it, so they go to the group's other
/// consumers.
pub type Deliveries = futures::stream::BoxStream<'static, Result<Delivery, Error>>;

/// One delivery of a message to a consumer. Settle it with [`Delivery::ack`]
/// or [`Delivery::nack`]; dropping it unsettled leaves the message to be
/// delivered again once its ack deadline has passed.
pub struct Delivery {
    /// The id the message was pushed with.
    pub id: String,
    pub payload: Bytes,
    attempt: u64,
    /// The queue's ack deadline for this delivery.
    ack_wait: Duration,
    handle: Handle,
}

/// How a delivery is settled, per adapter.
enum Handle {
    // Boxed: it holds a JetStream context, several times the size of a lease.
    Nats(Box<nats::Acker>),
    InProcess(inprocess::Lease),
}

impl Delivery {
    /// Done: never delivered to this group again.
    ///
    /// Acking a message that was already redelivered elsewhere (its deadline
    /// had passed) still settles it: whichever ack arrives first wins.
    pub async fn ack(self) -> Result<(), Error> {
        match self.handle {
            Handle::Nats(acker) => acker.ack(&self.id).await,
            Handle::InProcess(lease) => {
                lease.ack();
                Ok(())
            }
        }
    }

    /// Not done: deliver again after `delay`.
    pub async fn nack(self, delay: Duration) -> Result<(), Error> {
        match self.handle {
            Handle::Nats(acker) => acker.nack(&self.id, delay).await,
            Handle::InProcess(lease) => {
                lease.nack(self.attempt, delay);
                Ok(())
            }
        }
    }

    /// How many times this message was delivered (1 the first time).
    pub fn attempt(&self) -> u64 {
        self.attempt
    }

    /// How long this delivery may stay unsettled before the message is
    /// delivered again, unless [`Delivery::in_progress`] restarts the clock.
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    /// Still at work: the ack deadline starts again from now (NATS sends
    /// `+WPI`). Does nothing once the message was acked through another
    /// delivery, or was delivered again after its deadline passed.
    pub async fn in_progress(&self) -> Result<(), Error> {
        match &self.handle {
            Handle::Nats(acker) => acker.in_progress(&self.id).await,
            Handle::InProcess(lease) => {
                lease.in_progress(self.attempt);
                Ok(())
            }
        }
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The payload may be sensitive (audit events) and large: its size only.
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("attempt", &self.attempt)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

/// Pushes with up to `attempts` tries, waiting 200 ms, 400 ms, 800 ms…
/// between them: a producer that must not block its caller on a broker
/// blip (the audit trail) runs this in a task. Retries reuse `id`, so a push
/// that was stored but not confirmed is stored once. The last error when
/// every try failed.
pub async fn push_retrying(
    queue: &dyn Queue,
    topic: &str,
    id: &str,
    payload: Bytes,
    attempts: u32,
) -> Result<(), Error> {
    let mut attempt = 0u32;
    loop {
        match queue.push(topic, id, payload.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt + 1 >= attempts => return Err(e),
            Err(e) => tracing::warn!(error = %e, topic, attempt, "push failed; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(200u64 << attempt.min(10))).await;
        attempt += 1;
    }
}

/// How long a pushed id is remembered: a push retried within it is stored
/// once. The same as the event bus's, for the same reason (a publisher's
/// retries end well within it).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

const MAX_TOPIC_LEN: usize = 128;
const MAX_GROUP_LEN: usize = 64;
const MAX_ID_LEN: usize = 256;

/// A topic becomes the tail of a NATS subject, so each segment is held to
/// the characters valid in a subject token (and in a consumer name).
pub(crate) fn validate_topic(topic: &str) -> Result<(), Error> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(Error::Config(format!(
            "queue topic must be 1 to {MAX_TOPIC_LEN} characters, got {} (e.g. \"audit\" or \
             \"tickets.jobs\")",
            topic.len()
        )));
    }
    for segment in topic.split('.') {
        if segment.is_empty() {
            return Err(Error::Config(format!(
                "queue topic {topic:?} has an empty segment: segments are separated by single \
                 '.' with none at either end, e.g. \"tickets.jobs\""
            )));
        }
        if let Some(bad) = segment.chars().find(|c| !is_name_char(*c)) {
            return Err(Error::Config(format!(
                "queue topic {topic:?} contains {bad:?}: it must be '.'-separated segments of \
                 letters, digits, '_' and '-' (no '*', '>' or spaces), e.g. \"tickets.jobs\""
            )));
        }
    }
    Ok(())
}

/// A group names a durable consumer, where '.' is not allowed.
pub(crate) fn validate_group(group: &str) -> Result<(), Error> {
    if group.is_empty() || group.len() > MAX_GROUP_LEN {
        return Err(Error::Config(format!(
            "queue group must be 1 to {MAX_GROUP_LEN} characters, got {} (e.g. \"policy\")",
            group.len()
        )));
    }
    if let Some(bad) = group.chars().find(|c| !is_name_char(*c)) {
        return Err(Error::Config(format!(
            "queue group {group:?} contains {bad:?}: it must be letters, digits, '_' and '-' \
             only (no '.', '*', '>' or spaces), e.g. \"policy\""
        )));
    }
    Ok(())
}

/// An id travels in a NATS header, which cannot hold line breaks.
pub(crate) fn validate_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(Error::Config(format!(
            "queue message id must be 1 to {MAX_ID_LEN} bytes, got {}",
            id.len()
        )));
    }
    if let Some(bad) = id.chars().find(|c| c.is_control()) {
        return Err(Error::Config(format!(
            "queue message id {id:?} contains the control character {bad:?}; use printable \
             characters, e.g. a UUID"
        )));
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The key a push is deduplicated by: ids are unique per topic, not per
/// queue (the same event id may well be pushed to two topics). A topic has
/// no ':', so the key is unambiguous.
fn dedup_key(topic: &str, id: &str) -> String {
    format!("{topic}:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails the first `failures` pushes, then stores into an in-process queue.
    struct Flaky {
        failures: u32,
        pushes: std::sync::atomic::AtomicU32,
        inner: InProcessQueue,
    }

    #[async_trait]
    impl Queue for Flaky {
        async fn push(&self, topic: &str, id: &str, payload: Bytes) -> Result<(), Error> {
            let n = self
                .pushes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n < self.failures {
                return Err(Error::Unavailable {
                    reason: format!("down ({n})"),
                });
            }
            self.inner.push(topic, id, payload).await
        }

        async fn pull(&self, topic: &str, group: &str) -> Result<Deliveries, Error> {
            self.inner.pull(topic, group).await
        }

        async fn ping(&self) -> Result<(), Error> {
            self.inner.ping().await
        }
    }

    fn flaky(failures: u32) -> Flaky {
        Flaky {
            failures,
            pushes: Default::default(),
            inner: InProcessQueue::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn push_retrying_backs_off_until_stored_or_out_of_tries() {
        use std::sync::atomic::Ordering::SeqCst;
        let q = flaky(2);
        let t0 = tokio::time::Instant::now();
        push_retrying(&q, "audit", "a1", Bytes::from_static(b"x"), 5)
            .await
            .unwrap();
        assert_eq!(q.pushes.load(SeqCst), 3);
        assert_eq!(t0.elapsed(), Duration::from_millis(200 + 400));

        let q = flaky(u32::MAX);
        let err = push_retrying(&q, "audit", "a2", Bytes::from_static(b"x"), 3)
            .await
            .unwrap_err();
        assert_eq!(q.pushes.load(SeqCst), 3, "exactly the tries asked for");
        assert!(
            err.to_string().contains("down (2)"),
            "the last error: {err}"
        );
    }

    #[test]
    fn topics_are_dot_separated_name_segments() {
        for good in [
            "audit",
            "tickets.jobs",
            "a-b_c.D9",
            &"x".repeat(MAX_TOPIC_LEN),
        ] {
            validate_topic(good).unwrap_or_else(|err| panic!("{good:?}: {err}"));
        }
        let long = "x".repeat(MAX_TOPIC_LEN + 1);
        for bad in [
            "", ".audit", "audit.", "a..b", "a*", "a.>", "a b", "naïve", "a:b", &long,
        ] {
            let err = validate_topic(bad).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{bad:?}: {err}");
            assert!(err.to_string().contains("queue topic"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn groups_are_single_names() {
        for good in ["policy", "ticket-worker_2"] {
            validate_group(good).unwrap();
        }
        for bad in ["", "a.b", "a*", "a b", &"g".repeat(MAX_GROUP_LEN + 1)] {
            let err = validate_group(bad).unwrap_err().to_string();
            assert!(err.contains("queue group"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn ids_are_printable_and_bounded() {
        validate_id("0190f3a1-7c4e-7d2a-9b1e-3f2a1c0d9e8b").unwrap();
        validate_id("audit:login ok/ünïcode").unwrap();
        for bad in [
            "",
            "a\r\nNats-Msg-Id: x",
            "tab\there",
            &"i".repeat(MAX_ID_LEN + 1),
        ] {
            let err = validate_id(bad).unwrap_err().to_string();
            assert!(err.contains("queue message id"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_same_id_on_two_topics_is_two_messages() {
        assert_ne!(dedup_key("audit", "1"), dedup_key("tickets", "1"));
    }
}
