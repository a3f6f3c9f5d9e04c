//! The embedded work queue for `csp dev`, where every service runs in one
//! process: "durable" means for the life of that process, which is also the
//! life of every consumer.
//!
//! A topic keeps each message until every group of the topic has acked it;
//! messages pushed while the topic has no group yet are kept for the first
//! one. A group created later receives the messages still kept, not those
//! that all earlier groups already acked (the NATS adapter hands a late group
//! everything its stream still retains; in `csp dev` every group starts with
//! the process, so the two agree there).
//!
//! Memory is bounded by [`Config`]: at most `max_messages` messages whose
//! ids and payloads total at most `max_bytes` are kept, plus per group a
//! few dozen bytes of bookkeeping per kept message, plus at most
//! `max_messages` remembered ids for deduplication. A push beyond the bound
//! fails rather than dropping a message nobody has processed.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    DUPLICATE_WINDOW, Deliveries, Delivery, Handle, Queue, dedup_key, validate_group, validate_id,
    validate_topic,
};
use crate::Error;

/// Limits of the in-process queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Messages kept at once over all topics (pushed and not yet acked by
    /// every group of their topic). A push beyond it fails.
    pub max_messages: usize,
    /// Bytes of ids and payloads kept at once. A push beyond it fails.
    pub max_bytes: usize,
    /// How long a delivery may stay neither acked nor nacked before its
    /// message is delivered again.
    pub ack_wait: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_messages: 10_000,
            max_bytes: 64 * 1024 * 1024,
            ack_wait: Duration::from_secs(30),
        }
    }
}

impl Config {
    fn validate(&self) -> Result<(), Error> {
        if self.max_messages == 0 {
            return Err(Error::Config(
                "max_messages must be at least 1 (messages the in-process queue keeps)".into(),
            ));
        }
        if self.max_bytes == 0 {
            return Err(Error::Config(
                "max_bytes must be at least 1 (bytes the in-process queue keeps)".into(),
            ));
        }
        if self.ack_wait.is_zero() {
            return Err(Error::Config(
                "ack_wait must be greater than zero, or every delivery would be redelivered at \
                 once"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The in-process [`Queue`]. Cloning it shares the same queue.
#[derive(Clone)]
pub struct InProcessQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for InProcessQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessQueue")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Default for InProcessQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessQueue {
    /// An empty queue with the default limits.
    pub fn new() -> Self {
        Self::build(Config::default())
    }

    /// An empty queue with these limits.
    pub fn with_config(config: Config) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self::build(config))
    }

    fn build(config: Config) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State::default()),
            }),
        }
    }
}

struct Shared {
    config: Config,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Topic>,
    /// Messages kept over all topics, and their ids' and payloads' bytes.
    kept: usize,
    kept_bytes: usize,
    /// Dedup keys pushed within the duplicate window, oldest first.
    recent: VecDeque<(Instant, String)>,
    recent_keys: HashSet<String>,
}

impl State {
    fn forget_oldest_id(&mut self) {
        if let Some((_, key)) = self.recent.pop_front() {
            self.recent_keys.remove(&key);
        }
    }
}

#[derive(Default)]
struct Topic {
    next_seq: u64,
    messages: HashMap<u64, Stored>,
    /// Never removed: a group is a durable consumer.
    groups: HashMap<String, Group>,
}

struct Stored {
    id: String,
    payload: Bytes,
    /// Groups of the topic that have not acked it. Kept while non-zero, or
    /// while the topic has no group at all.
    unacked_by: usize,
}

impl Stored {
    fn size(&self) -> usize {
        self.id.len() + self.payload.len()
    }
}

/// One group's view of its topic's kept messages. Every message it has not
/// acked is in `pending` and in exactly one of `ready` (deliverable now) and
/// `waiting` (in flight until its ack deadline, or nacked until its delay).
#[derive(Default)]
struct Group {
    ready: BTreeSet<u64>,
    waiting: BTreeSet<(Instant, u64)>,
    pending: HashMap<u64, Pending>,
    /// Wakes the group's pullers when a message becomes ready or an earlier
    /// deadline appears.
    notify: Arc<Notify>,
}

struct Pending {
    /// Deliveries so far.
    attempts: u64,
    /// Its key in `waiting`, if it is there.
    waiting_until: Option<Instant>,
}

impl Group {
    fn add(&mut self, seq: u64) {
        self.ready.insert(seq);
        self.pending.insert(
            seq,
            Pending {
                attempts: 0,
                waiting_until: None,
            },
        );
    }

    /// Moves messages whose deadline or delay has passed to `ready`.
    fn promote(&mut self, now: Instant) {
        while let Some(&(until, seq)) = self.waiting.first() {
            if until > now {
                break;
            }
            self.waiting.pop_first();
            self.ready.insert(seq);
            if let Some(pending) = self.pending.get_mut(&seq) {
                pending.waiting_until = None;
            }
        }
    }

    /// Puts `seq` (pending, in neither set) into `waiting` until `until`.
    fn wait(&mut self, seq: u64, until: Instant) {
        if let Some(pending) = self.pending.get_mut(&seq) {
            pending.waiting_until = Some(until);
        }
        self.waiting.insert((until, seq));
        // Pullers sleep until the earliest entry they saw; a new earliest one
        // must wake them.
        if self.waiting.first() == Some(&(until, seq)) {
            self.notify.notify_waiters();
        }
    }

    /// Takes `seq` out of `ready` or `waiting`.
    fn unschedule(&mut self, seq: u64, waiting_until: Option<Instant>) {
        match waiting_until {
            Some(until) => self.waiting.remove(&(until, seq)),
            None => self.ready.remove(&seq),
        };
    }
}

/// What a puller should do next.
enum Next {
    Deliver(Delivery),
    /// Nothing is ready: wait for a notification, or until this time when
    /// something in flight or nacked becomes ready again.
    Wait(Option<Instant>),
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the maps consistent before anything
        // that could panic, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, topic: &str, id: &str, payload: Bytes) -> Result<(), Error> {
        let now = Instant::now();
        let limits = &self.config;
        let mut guard = self.state();
        let state = &mut *guard;

        while state
            .recent
            .front()
            .is_some_and(|(pushed, _)| now.duration_since(*pushed) >= DUPLICATE_WINDOW)
        {
            state.forget_oldest_id();
        }
        let key = dedup_key(topic, id);
        if state.recent_keys.contains(&key) {
            tracing::debug!(topic, id, "duplicate push dropped");
            return Ok(());
        }

        let stored = Stored {
            id: id.to_owned(),
            payload,
            unacked_by: 0,
        };
        let full = if state.kept >= limits.max_messages {
            Some(format!("{} messages (max_messages)", limits.max_messages))
        } else if state.kept_bytes + stored.size() > limits.max_bytes {
            Some(format!(
                "{} bytes of ids and payloads (max_bytes)",
                limits.max_bytes
            ))
        } else {
            None
        };
        if let Some(limit) = full {
            return Err(Error::Push {
                topic: topic.to_owned(),
                id: id.to_owned(),
                source: format!(
                    "the in-process queue is full: it keeps at most {limit} not yet acked by \
                     every group of their topic; check that each topic's consumers run and ack"
                )
                .into(),
            });
        }

        state.kept += 1;
        state.kept_bytes += stored.size();
        // At most `max_messages` ids: under a push rate above max_messages
        // per window, the effective window is shorter.
        while state.recent.len() >= limits.max_messages {
            state.forget_oldest_id();
        }
        state.recent.push_back((now, key.clone()));
        state.recent_keys.insert(key);

        let topic = state.topics.entry(topic.to_owned()).or_default();
        let seq = topic.next_seq;
        topic.next_seq += 1;
        topic.messages.insert(
            seq,
            Stored {
                unacked_by: topic.groups.len(),
                ..stored
            },
        );
        for group in topic.groups.values_mut() {
            group.add(seq);
            group.notify.notify_waiters();
        }
        Ok(())
    }

    /// Creates the group if it is new, with every kept message pending.
    fn join(&self, topic: &str, group: &str) -> Arc<Notify> {
        let mut state = self.state();
        let Topic {
            messages, groups, ..
        } = state.topics.entry(topic.to_owned()).or_default();
        let group = groups.entry(group.to_owned()).or_insert_with(|| {
            let mut group = Group::default();
            for (seq, message) in messages.iter_mut() {
                message.unacked_by += 1;
                group.add(*seq);
            }
            group
        });
        Arc::clone(&group.notify)
    }

    fn next(self: &Arc<Self>, topic: &str, group: &str) -> Next {
        let now = Instant::now();
        let mut state = self.state();
        let Some(Topic {
            messages, groups, ..
        }) = state.topics.get_mut(topic)
        else {
            return Next::Wait(None);
        };
        let Some(members) = groups.get_mut(group) else {
            return Next::Wait(None);
        };
        members.promote(now);
        while let Some(seq) = members.ready.pop_first() {
            let (Some(pending), Some(message)) =
                (members.pending.get_mut(&seq), messages.get(&seq))
            else {
                // Not pending for this group any more; nothing to deliver.
                continue;
            };
            pending.attempts += 1;
            let attempt = pending.attempts;
            let delivery = Delivery {
                id: message.id.clone(),
                payload: message.payload.clone(),
                attempt,
                ack_wait: self.config.ack_wait,
                handle: Handle::InProcess(Lease {
                    shared: Arc::clone(self),
                    topic: topic.to_owned(),
                    group: group.to_owned(),
                    seq,
                }),
            };
            members.wait(seq, later(now, self.config.ack_wait));
            return Next::Deliver(delivery);
        }
        Next::Wait(members.waiting.first().map(|(until, _)| *until))
    }

    fn ack(&self, topic: &str, group: &str, seq: u64) {
        let mut guard = self.state();
        let state = &mut *guard;
        let Some(Topic {
            messages, groups, ..
        }) = state.topics.get_mut(topic)
        else {
            return;
        };
        let Some(members) = groups.get_mut(group) else {
            return;
        };
        // Already gone: acked through an earlier or later delivery.
        let Some(pending) = members.pending.remove(&seq) else {
            return;
        };
        members.unschedule(seq, pending.waiting_until);
        let Some(message) = messages.get_mut(&seq) else {
            return;
        };
        message.unacked_by = message.unacked_by.saturating_sub(1);
        if message.unacked_by == 0
            && let Some(message) = messages.remove(&seq)
        {
            state.kept -= 1;
            state.kept_bytes -= message.size();
        }
    }

    /// Restarts the ack deadline of delivery `attempt` of `seq`, if it is
    /// still the one in flight.
    fn in_progress(&self, topic: &str, group: &str, seq: u64, attempt: u64) {
        let now = Instant::now();
        let mut state = self.state();
        let Some(members) = state
            .topics
            .get_mut(topic)
            .and_then(|topic| topic.groups.get_mut(group))
        else {
            return;
        };
        let Some(pending) = members.pending.get(&seq) else {
            return;
        };
        // Acked, delivered again, or (never for a live delivery) ready.
        let (true, Some(until)) = (pending.attempts == attempt, pending.waiting_until) else {
            return;
        };
        members.unschedule(seq, Some(until));
        members.wait(seq, later(now, self.config.ack_wait));
    }

    fn nack(&self, topic: &str, group: &str, seq: u64, attempt: u64, delay: Duration) {
        let now = Instant::now();
        let mut state = self.state();
        let Some(members) = state
            .topics
            .get_mut(topic)
            .and_then(|topic| topic.groups.get_mut(group))
        else {
            return;
        };
        let Some(pending) = members.pending.get(&seq) else {
            return;
        };
        // A stale delivery (its deadline passed and the message was
        // delivered again) does not reschedule the newer one.
        if pending.attempts != attempt {
            return;
        }
        let waiting_until = pending.waiting_until;
        members.unschedule(seq, waiting_until);
        members.wait(seq, later(now, delay));
    }
}

/// `now + delay`, saturating far in the future instead of overflowing.
fn later(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 60 * 60))
}

/// A delivery's claim on one message of one group.
pub(super) struct Lease {
    shared: Arc<Shared>,
    topic: String,
    group: String,
    seq: u64,
}

impl Lease {
    pub(super) fn ack(self) {
        self.shared.ack(&self.topic, &self.group, self.seq);
    }

    pub(super) fn in_progress(&self, attempt: u64) {
        self.shared
            .in_progress(&self.topic, &self.group, self.seq, attempt);
    }

    pub(super) fn nack(self, attempt: u64, delay: Duration) {
        self.shared
            .nack(&self.topic, &self.group, self.seq, attempt, delay);
    }
}

/// One `pull`'s consumer.
struct Puller {
    shared: Arc<Shared>,
    topic: String,
    group: String,
    notify: Arc<Notify>,
}

impl Puller {
    async fn next(&self) -> Delivery {
        loop {
            // Registered before looking, so a push between the look and the
            // wait still wakes us.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.shared.next(&self.topic, &self.group) {
                Next::Deliver(delivery) => return delivery,
                Next::Wait(Some(until)) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(until) => {}
                    }
                }
                Next::Wait(None) => notified.await,
            }
        }
    }
}

#[async_trait]
impl Queue for InProcessQueue {
    async fn push(&self, topic: &str, id: &str, payload: Bytes) -> Result<(), Error> {
        validate_topic(topic)?;
        validate_id(id)?;
        self.shared.push(topic, id, payload)
    }

    async fn pull(&self, topic: &str, group: &str) -> Result<Deliveries, Error> {
        validate_topic(topic)?;
        validate_group(group)?;
        let notify = self.shared.join(topic, group);
        let puller = Puller {
            shared: Arc::clone(&self.shared),
            topic: topic.to_owned(),
            group: group.to_owned(),
            notify,
        };
        let deliveries = futures::stream::unfold(puller, |puller| async move {
            let delivery = puller.next().await;
            Some((Ok(delivery), puller))
        });
        Ok(deliveries.boxed())
    }

    /// In this process: always there.
    async fn ping(&self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_are_rejected_with_the_key_name() {
        let cases = [
            (
                Config {
                    max_messages: 0,
                    ..Config::default()
                },
                "max_messages",
            ),
            (
                Config {
                    max_bytes: 0,
                    ..Config::default()
                },
                "max_bytes",
            ),
            (
                Config {
                    ack_wait: Duration::ZERO,
                    ..Config::default()
                },
                "ack_wait",
            ),
        ];
        for (config, key) in cases {
            let err = InProcessQueue::with_config(config).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn acked_by_every_group_frees_the_message() {
        let queue = InProcessQueue::new();
        let shared = &queue.shared;
        shared.join("t", "a");
        shared.join("t", "b");
        shared.push("t", "1", Bytes::from_static(b"xy")).unwrap();
        let kept = || {
            let state = shared.state();
            (state.kept, state.kept_bytes)
        };
        assert_eq!(kept(), (1, 3));
        shared.ack("t", "a", 0);
        assert_eq!(kept(), (1, 3), "group b has not acked yet");
        // An ack repeated by a stale delivery changes nothing.
        shared.ack("t", "a", 0);
        assert_eq!(kept(), (1, 3));
        shared.ack("t", "b", 0);
        assert_eq!(kept(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn remembered_ids_are_bounded_by_count_and_window() {
        let queue = InProcessQueue::with_config(Config {
            max_messages: 3,
            ..Config::default()
        })
        .unwrap();
        let shared = &queue.shared;
        shared.join("t", "g");
        for id in ["1", "2", "3"] {
            shared.push("t", id, Bytes::new()).unwrap();
            shared.ack("t", "g", id.parse::<u64>().unwrap() - 1);
        }
        assert_eq!(shared.state().recent.len(), 3);
        // A fourth id pushes the oldest out of the remembered ones.
        shared.push("t", "4", Bytes::new()).unwrap();
        assert!(!shared.state().recent_keys.contains(&dedup_key("t", "1")));
        assert_eq!(shared.state().recent.len(), 3);
        tokio::time::advance(DUPLICATE_WINDOW).await;
        shared.push("t", "5", Bytes::new()).unwrap();
        assert_eq!(
            shared.state().recent.len(),
            1,
            "only 5 is within the window"
        );
    }
}
