//! The embedded event bus for `csp dev`: everything lives in this process.
//!
//! Each session has one bounded ring of its latest events, and the ring is
//! both the replay window and the live feed: a subscriber is a cursor into
//! it plus a wake-up signal. Because there is no second channel to join,
//! replay and live cannot overlap or leave a hole between them, and a slow
//! subscriber catches up from the ring for as long as the ring still holds
//! what it missed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use csp_domain::{SessionEvent, SessionId};
use futures::StreamExt;
use tokio::sync::watch;

use crate::{Cursor, Error, EventBus, EventStream, Step};

/// Limits of the in-process bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Events retained per session for replay (and for slow subscribers to
    /// catch up from).
    pub replay_per_session: usize,
    /// Sessions whose events are retained; beyond it the session published
    /// to least recently loses its retained events.
    pub max_sessions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            replay_per_session: 2048,
            max_sessions: 4096,
        }
    }
}

impl Config {
    fn validate(&self) -> Result<(), Error> {
        if self.replay_per_session == 0 {
            return Err(Error::Config(
                "replay_per_session must be at least 1 (events retained per session)".into(),
            ));
        }
        if self.max_sessions == 0 {
            return Err(Error::Config(
                "max_sessions must be at least 1 (sessions whose events are retained)".into(),
            ));
        }
        Ok(())
    }
}

/// At most this many events are copied out of a ring per lock, so that a
/// subscriber replaying a long window does not hold up publishers.
const BATCH: usize = 64;

/// The in-process [`EventBus`]. Cloning it shares the same bus.
#[derive(Clone)]
pub struct InProcessBus {
    shared: Arc<Shared>,
}

struct Shared {
    config: Config,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    sessions: HashMap<SessionId, Entry>,
    /// Sessions that retain events, by the tick of their latest publish.
    by_last_publish: BTreeMap<u64, SessionId>,
    tick: u64,
}

/// A session the bus knows: it retains events, has subscribers, or both.
/// An entry with subscribers is never removed, so every subscriber and every
/// publisher of a session always share one `Session`.
struct Entry {
    session: Arc<Session>,
    /// Key in `by_last_publish` while the session retains events.
    last_publish: Option<u64>,
    subscribers: usize,
}

struct Session {
    ring: Mutex<Ring>,
    /// Bumped after every append, so that waiting subscribers look again.
    appended: watch::Sender<u64>,
}

#[derive(Default)]
struct Ring {
    events: VecDeque<Arc<SessionEvent>>,
    /// Highest seq ever appended, kept when the events are evicted, so that a
    /// retried publish is still recognised.
    last_seq: u64,
}

impl std::fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessBus")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl InProcessBus {
    /// A new, empty bus.
    pub fn new(config: Config) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                registry: Mutex::new(Registry::default()),
            }),
        })
    }
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves the maps consistent (every
        // mutation is a single insert or remove), so carry on.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish(&self, event: &SessionEvent) {
        let id = event.session_id;
        let mut guard = self.registry();
        let registry = &mut *guard;
        let entry = registry.sessions.entry(id).or_insert_with(Entry::new);

        // Appending under the registry lock keeps eviction (which also runs
        // under it) from clearing a ring between the bookkeeping and the
        // append.
        {
            let mut ring = entry.session.ring();
            if event.seq <= ring.last_seq {
                // A retry of something already published.
                return;
            }
            ring.events.push_back(Arc::new(event.clone()));
            if ring.events.len() > self.config.replay_per_session {
                ring.events.pop_front();
            }
            ring.last_seq = event.seq;
        }
        entry.session.appended.send_replace(event.seq);

        registry.tick += 1;
        let tick = registry.tick;
        if let Some(previous) = entry.last_publish.replace(tick) {
            registry.by_last_publish.remove(&previous);
        }
        registry.by_last_publish.insert(tick, id);

        while registry.by_last_publish.len() > self.config.max_sessions {
            let Some((_, evicted)) = registry.by_last_publish.pop_first() else {
                break;
            };
            let Some(entry) = registry.sessions.get_mut(&evicted) else {
                continue;
            };
            entry.last_publish = None;
            entry.session.ring().events.clear();
            if entry.subscribers == 0 {
                registry.sessions.remove(&evicted);
            }
            tracing::debug!(session.id = %evicted, "evicted retained events of least recently published session");
        }
    }

    /// Registers a subscriber; the returned guard unregisters it.
    fn attach(self: &Arc<Self>, id: SessionId) -> Subscription {
        let mut registry = self.registry();
        let entry = registry.sessions.entry(id).or_insert_with(Entry::new);
        entry.subscribers += 1;
        Subscription {
            shared: Arc::clone(self),
            id,
            session: Arc::clone(&entry.session),
        }
    }

    fn detach(&self, id: SessionId) {
        let mut registry = self.registry();
        let Some(entry) = registry.sessions.get_mut(&id) else {
            return;
        };
        entry.subscribers = entry.subscribers.saturating_sub(1);
        if entry.subscribers == 0 && entry.last_publish.is_none() {
            registry.sessions.remove(&id);
        }
    }
}

impl Entry {
    fn new() -> Self {
        Self {
            session: Arc::new(Session {
                ring: Mutex::new(Ring::default()),
                appended: watch::Sender::new(0),
            }),
            last_publish: None,
            subscribers: 0,
        }
    }
}

impl Session {
    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Keeps a subscriber's session entry alive; dropping the stream drops it.
struct Subscription {
    shared: Arc<Shared>,
    id: SessionId,
    session: Arc<Session>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shared.detach(self.id);
    }
}

struct Reader {
    subscription: Subscription,
    appended: watch::Receiver<u64>,
    cursor: Cursor,
    /// Events copied out of the ring, not yet yielded.
    pending: VecDeque<Arc<SessionEvent>>,
    done: bool,
}

impl Reader {
    async fn next(&mut self) -> Option<Result<SessionEvent, Error>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(SessionEvent::clone(&event)));
            }
            if self.done {
                return None;
            }
            // Marking the signal seen before reading the ring means an append
            // that lands after the read wakes `changed()` below.
            self.appended.borrow_and_update();
            if let Err(hole) = self.fill() {
                self.done = true;
                return Some(Err(hole));
            }
            if self.pending.is_empty() && self.appended.changed().await.is_err() {
                // Unreachable while `subscription` holds the session, which
                // owns the sender; end rather than spin if it ever happens.
                return None;
            }
        }
    }

    /// Copies the next run of events after the cursor out of the ring.
    fn fill(&mut self) -> Result<(), Error> {
        let ring = self.subscription.session.ring();
        let start = ring
            .events
            .partition_point(|event| event.seq <= self.cursor.last);
        for event in ring.events.range(start..).take(BATCH) {
            match self.cursor.step(event.seq) {
                Ok(Step::Deliver) => self.pending.push_back(Arc::clone(event)),
                Ok(Step::Skip) => {}
                // Deliver what came before the hole first, then report it.
                Err(hole) if self.pending.is_empty() => return Err(hole),
                Err(_) => break,
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: &SessionEvent) -> Result<(), Error> {
        self.shared.publish(event);
        Ok(())
    }

    async fn subscribe(&self, session: SessionId, after_seq: u64) -> Result<EventStream, Error> {
        let subscription = self.shared.attach(session);
        let reader = Reader {
            appended: subscription.session.appended.subscribe(),
            subscription,
            cursor: Cursor::new(session, after_seq),
            pending: VecDeque::new(),
            done: false,
        };
        let stream = futures::stream::unfold(reader, |mut reader| async move {
            let item = reader.next().await?;
            Some((item, reader))
        });
        Ok(stream.boxed())
    }

    async fn ping(&self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_are_rejected_with_the_key_name() {
        let err = InProcessBus::new(Config {
            replay_per_session: 0,
            ..Config::default()
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("replay_per_session"), "{err}");
        let err = InProcessBus::new(Config {
            max_sessions: 0,
            ..Config::default()
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("max_sessions"), "{err}");
    }
}
