//! The embedded event bus for `csp dev`: everything lives in this process.
//!
//! Each session has one bounded [`Ring`] of its latest events, which is both
//! the replay window and the live feed (see `ring.rs` for why that makes
//! replay and live join without overlap or hole). This module adds the
//! bookkeeping around the rings: which sessions retain events, and evicting
//! the least recently published one beyond `max_sessions`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use csp_domain::{SessionEvent, SessionId};

use crate::ring::Ring;
use crate::{Cursor, Error, EventBus, EventStream};

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
/// publisher of a session always share one ring.
struct Entry {
    ring: Arc<Ring>,
    /// Key in `by_last_publish` while the session retains events.
    last_publish: Option<u64>,
    subscribers: usize,
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
        let capacity = self.config.replay_per_session;
        let entry = registry
            .sessions
            .entry(id)
            .or_insert_with(|| Entry::new(capacity));

        // Appending under the registry lock keeps eviction (which also runs
        // under it) from clearing a ring between the bookkeeping and the
        // append.
        if !entry.ring.append_ref(event) {
            // A retry of something already published.
            return;
        }

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
            entry.ring.clear();
            if entry.subscribers == 0 {
                registry.sessions.remove(&evicted);
            }
            tracing::debug!(session.id = %evicted, "evicted retained events of least recently published session");
        }
    }

    /// The session's dedup watermark. It outlives the ring's events while
    /// the session has subscribers (eviction only clears the ring), and is
    /// gone with the entry otherwise; either way it is the seq below which a
    /// publish would be dropped as a retry.
    fn last_seq(&self, id: SessionId) -> u64 {
        self.registry()
            .sessions
            .get(&id)
            .map_or(0, |entry| entry.ring.last_seq())
    }

    /// Registers a subscriber; dropping the returned stream unregisters it.
    fn attach(self: &Arc<Self>, id: SessionId, after_seq: u64) -> EventStream {
        let capacity = self.config.replay_per_session;
        let mut registry = self.registry();
        let entry = registry
            .sessions
            .entry(id)
            .or_insert_with(|| Entry::new(capacity));
        entry.subscribers += 1;
        let subscription = Subscription {
            shared: Arc::clone(self),
            id,
        };
        entry.ring.stream(Cursor::new(id, after_seq), subscription)
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
    fn new(capacity: usize) -> Self {
        Self {
            ring: Arc::new(Ring::new(capacity, 0)),
            last_publish: None,
            subscribers: 0,
        }
    }
}

/// Keeps a subscriber's session entry alive; dropping the stream drops it.
struct Subscription {
    shared: Arc<Shared>,
    id: SessionId,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shared.detach(self.id);
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: &SessionEvent) -> Result<(), Error> {
        self.shared.publish(event);
        Ok(())
    }

    async fn subscribe(&self, session: SessionId, after_seq: u64) -> Result<EventStream, Error> {
        Ok(self.shared.attach(session, after_seq))
    }

    async fn ping(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn last_seq(&self, session: SessionId) -> Result<u64, Error> {
        Ok(self.shared.last_seq(session))
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
