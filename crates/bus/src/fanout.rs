//! Fan-out: this process's subscribers of a session share one upstream
//! subscription.
//!
//! A gateway subscribes once per browser socket. Against JetStream that is
//! one consumer per socket, each with its own heartbeats and server state,
//! so ten thousand viewers of one session cost ten thousand consumers. Here
//! the first subscriber of a session starts a *feed*: a pump task holding
//! the one upstream subscription and appending every event to a bounded
//! [`Ring`], from which every local subscriber reads through its own cursor
//! (the same machinery as the in-process bus, so replay, live, slow readers
//! and `Lagged` behave the same).
//!
//! A feed serves a subscriber whose `after_seq` its ring still covers (or
//! has not reached yet); an older `after_seq` gets a direct upstream
//! subscription of its own, so a deep replay is never served short. When
//! the upstream subscription fails or ends, every subscriber of the feed
//! gets that error and the feed is gone, so the next subscribe starts
//! afresh. A feed without subscribers lingers for [`Config::linger`] so that
//! a reconnect storm finds it still running.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use csp_domain::{SessionEvent, SessionId};
use futures::StreamExt;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::ring::Ring;
use crate::{Cursor, Error, EventBus, EventStream};

/// Limits of the fan-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Events each feed keeps for local replay (a reattaching subscriber
    /// within it shares the feed) and for slow subscribers to catch up
    /// from. Best no smaller than the upstream's replay window.
    pub ring_per_session: usize,
    /// How long a feed without subscribers keeps its upstream subscription.
    pub linger: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ring_per_session: 2048,
            linger: Duration::from_secs(30),
        }
    }
}

impl Config {
    fn validate(&self) -> Result<(), Error> {
        if self.ring_per_session == 0 {
            return Err(Error::Config(
                "ring_per_session must be at least 1 (events kept per fanned-out session)".into(),
            ));
        }
        Ok(())
    }
}

/// An [`EventBus`] that shares one subscription of `upstream` per session
/// among this process's subscribers. Publishing, pinging and `last_seq` go
/// straight to `upstream`. Cloning it shares the feeds.
#[derive(Clone)]
pub struct FanoutBus {
    shared: Arc<Shared>,
}

struct Shared {
    upstream: Arc<dyn EventBus>,
    config: Config,
    feeds: Mutex<HashMap<SessionId, Entry>>,
    /// Tells feeds apart across time: a session's next feed gets a new id,
    /// so a stale subscriber or pump never touches it.
    next_id: AtomicU64,
}

/// A running feed. Only its pump removes it (when the upstream subscription
/// ends, or after lingering without subscribers), so an entry in the map is
/// never an ended feed.
struct Entry {
    id: u64,
    ring: Arc<Ring>,
    /// Local subscribers reading the feed; changed under the map lock, and
    /// watched by the pump to know when to start lingering.
    subscribers: watch::Sender<usize>,
}

impl std::fmt::Debug for FanoutBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutBus")
            .field("config", &self.shared.config)
            .field("feeds", &self.shared.feeds().len())
            .finish_non_exhaustive()
    }
}

impl FanoutBus {
    /// Fans out `upstream`; feeds start on the first subscribe of each
    /// session.
    pub fn new(upstream: Arc<dyn EventBus>, config: Config) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            shared: Arc::new(Shared {
                upstream,
                config,
                feeds: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
            }),
        })
    }
}

/// How a subscribe is served.
enum Join {
    /// From the session's running feed.
    Feed(EventStream),
    /// From a feed just started; `started` says whether its upstream
    /// subscription was made.
    Started {
        stream: EventStream,
        started: oneshot::Receiver<Result<(), Error>>,
    },
    /// The feed no longer holds what the subscriber needs.
    Direct,
}

impl Shared {
    fn feeds(&self) -> MutexGuard<'_, HashMap<SessionId, Entry>> {
        // A panic while holding the lock leaves the map consistent (every
        // mutation is a single insert, remove or counter change).
        self.feeds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn join(self: &Arc<Self>, session: SessionId, after_seq: u64) -> Join {
        let mut feeds = self.feeds();
        if let Some(entry) = feeds.get(&session) {
            if !entry.ring.serves(after_seq) {
                return Join::Direct;
            }
            entry.subscribers.send_modify(|n| *n += 1);
            let member = Member {
                shared: Arc::clone(self),
                session,
                id: entry.id,
            };
            return Join::Feed(entry.ring.stream(Cursor::new(session, after_seq), member));
        }

        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let ring = Arc::new(Ring::new(self.config.ring_per_session, after_seq));
        let (subscribers, watching) = watch::channel(1);
        feeds.insert(
            session,
            Entry {
                id,
                ring: Arc::clone(&ring),
                subscribers,
            },
        );
        let (started_tx, started) = oneshot::channel();
        let feed = Feed {
            shared: Arc::clone(self),
            session,
            id,
            ring: Arc::clone(&ring),
        };
        tokio::spawn(feed.pump(after_seq, watching, started_tx));
        tracing::debug!(session.id = %session, after_seq, "started event feed");
        let member = Member {
            shared: Arc::clone(self),
            session,
            id,
        };
        Join::Started {
            stream: ring.stream(Cursor::new(session, after_seq), member),
            started,
        }
    }
}

/// One local subscriber of a feed; dropping its stream drops it.
struct Member {
    shared: Arc<Shared>,
    session: SessionId,
    id: u64,
}

impl Drop for Member {
    fn drop(&mut self) {
        let feeds = self.shared.feeds();
        if let Some(entry) = feeds.get(&self.session)
            && entry.id == self.id
        {
            entry.subscribers.send_modify(|n| *n = n.saturating_sub(1));
        }
    }
}

/// The pump's hold on its feed. However the pump stops (its upstream
/// failed, it lingered out, or its task was dropped), dropping this removes
/// the feed and ends its ring, so no subscriber waits on a dead feed.
struct Feed {
    shared: Arc<Shared>,
    session: SessionId,
    id: u64,
    ring: Arc<Ring>,
}

impl Feed {
    async fn pump(
        self,
        after_seq: u64,
        mut subscribers: watch::Receiver<usize>,
        started: oneshot::Sender<Result<(), Error>>,
    ) {
        let session = self.session;
        let mut upstream = match self.shared.upstream.subscribe(session, after_seq).await {
            Ok(stream) => {
                // The subscriber that started the feed may have gone already.
                let _ = started.send(Ok(()));
                stream
            }
            Err(error) => {
                self.finish(error.duplicate());
                let _ = started.send(Err(error));
                return;
            }
        };
        let linger = self.shared.config.linger;
        let mut idle_since: Option<Instant> = None;
        loop {
            let idle = *subscribers.borrow_and_update() == 0;
            idle_since = match (idle, idle_since) {
                (true, None) => Some(Instant::now()),
                (true, since) => since,
                (false, _) => None,
            };
            let lingered = async move {
                match idle_since {
                    Some(since) => tokio::time::sleep_until(since + linger).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                item = upstream.next() => match item {
                    Some(Ok(event)) => {
                        self.ring.append(event);
                    }
                    Some(Err(error)) => {
                        tracing::debug!(session.id = %session, %error, "event feed's upstream subscription failed");
                        self.finish(error);
                        return;
                    }
                    None => {
                        self.finish(Error::Subscribe {
                            session,
                            source: "the upstream event subscription ended".into(),
                        });
                        return;
                    }
                },
                changed = subscribers.changed() => {
                    if changed.is_err() {
                        // Only this pump removes the entry that owns the sender.
                        return;
                    }
                }
                () = lingered => {
                    if self.retire_if_idle() {
                        tracing::debug!(session.id = %session, "stopped event feed without subscribers");
                        return;
                    }
                }
            }
        }
    }

    /// Removes the feed if it still has no subscriber; under the map lock,
    /// so no subscriber can join it in between.
    fn retire_if_idle(&self) -> bool {
        let mut feeds = self.shared.feeds();
        match feeds.get(&self.session) {
            Some(entry) if entry.id == self.id => {
                if *entry.subscribers.borrow() > 0 {
                    return false;
                }
                feeds.remove(&self.session);
                true
            }
            _ => true,
        }
    }

    /// Removes the feed, then ends its ring with `error`: removed first (both
    /// under the map lock), so a subscribe from now on starts a new feed
    /// instead of joining one that has ended.
    fn finish(&self, error: Error) {
        let mut feeds = self.shared.feeds();
        if feeds.get(&self.session).is_some_and(|e| e.id == self.id) {
            feeds.remove(&self.session);
        }
        self.ring.end(error);
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if !self.ring.has_ended() {
            self.finish(Error::Subscribe {
                session: self.session,
                source: "the event feed stopped".into(),
            });
        }
    }
}

#[async_trait]
impl EventBus for FanoutBus {
    async fn publish(&self, event: &SessionEvent) -> Result<(), Error> {
        self.shared.upstream.publish(event).await
    }

    async fn subscribe(&self, session: SessionId, after_seq: u64) -> Result<EventStream, Error> {
        match self.shared.join(session, after_seq) {
            Join::Feed(stream) => Ok(stream),
            Join::Started { stream, started } => match started.await {
                Ok(Ok(())) => Ok(stream),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(Error::Subscribe {
                    session,
                    source: "the event feed stopped before it had subscribed upstream".into(),
                }),
            },
            Join::Direct => {
                tracing::debug!(session.id = %session, after_seq, "replay older than the event feed holds; subscribing upstream directly");
                self.shared.upstream.subscribe(session, after_seq).await
            }
        }
    }

    async fn ping(&self) -> Result<(), Error> {
        self.shared.upstream.ping().await
    }

    /// Asked upstream, where publishing happens: a feed's ring only holds
    /// what this process subscribed to, and may lag behind.
    async fn last_seq(&self, session: SessionId) -> Result<u64, Error> {
        self.shared.upstream.last_seq(session).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InProcessBus;

    #[test]
    fn an_empty_ring_is_rejected_with_the_key_name() {
        let upstream = Arc::new(InProcessBus::new(Default::default()).unwrap());
        let err = FanoutBus::new(
            upstream,
            Config {
                ring_per_session: 0,
                ..Config::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(err.to_string().contains("ring_per_session"), "{err}");
    }
}
