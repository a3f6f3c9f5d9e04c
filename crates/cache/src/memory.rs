//! The in-process cache of `csp dev`: one replica, so routing and presence
//! need not be shared.

use crate::{Cache, Error, ttl_millis};
use async_trait::async_trait;
use csp_domain::SessionId;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
// tokio's clock, not std's, so tests can pause and advance time.
use tokio::time::Instant;

/// Below this many keys a sweep is not worth its cost.
const MIN_SWEEP_KEYS: usize = 1024;
/// Dead keys outlive their TTL by at most this long, as long as anything
/// is written.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// In-memory adapter. Expiry is checked when an entry is read; expired
/// entries are purged on writes, so memory stays proportional to the live
/// entries even for sessions that are never touched again.
#[derive(Debug)]
pub struct MemoryCache {
    // A std mutex: no critical section awaits, and each is a few map operations.
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    routes: HashMap<SessionId, (String, Instant)>,
    /// Connection id -> expiry, per session; a session with no connection
    /// left has no entry.
    presence: HashMap<SessionId, HashMap<String, Instant>>,
    /// A full sweep runs when the key count reaches this, then the threshold
    /// becomes twice the live count: a sweep either frees half of what it
    /// visits or doubles the threshold, so it costs O(1) per write amortised.
    sweep_at: usize,
    /// A full sweep also runs on the first write this long after the last,
    /// so dead keys of a quiet period do not wait for the threshold.
    swept_at: Instant,
}

impl MemoryCache {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                routes: HashMap::new(),
                presence: HashMap::new(),
                sweep_at: MIN_SWEEP_KEYS,
                swept_at: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic mid-update leaves at worst a stale entry, which expires.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keys held, live or expired (sessions with a route plus sessions with
    /// presence); for tests of the purge.
    #[cfg(test)]
    fn keys(&self) -> usize {
        self.lock().keys()
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl Inner {
    fn keys(&self) -> usize {
        self.routes.len() + self.presence.len()
    }

    fn after_write(&mut self, now: Instant) {
        if self.keys() < self.sweep_at && now < self.swept_at + SWEEP_INTERVAL {
            return;
        }
        self.routes.retain(|_, (_, expires)| *expires > now);
        self.presence.retain(|_, conns| {
            conns.retain(|_, expires| *expires > now);
            !conns.is_empty()
        });
        self.sweep_at = MIN_SWEEP_KEYS.max(2 * self.keys());
        self.swept_at = now;
    }
}

fn expiry(now: Instant, ttl: Duration) -> Result<Instant, Error> {
    ttl_millis(ttl)?;
    // A TTL too far out to represent never expires in practice.
    Ok(now
        .checked_add(ttl)
        .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400)))
}

#[async_trait]
impl Cache for MemoryCache {
    async fn set_route(
        &self,
        session: SessionId,
        replica: &str,
        ttl: Duration,
    ) -> Result<(), Error> {
        let now = Instant::now();
        let expires = expiry(now, ttl)?;
        let mut inner = self.lock();
        inner.routes.insert(session, (replica.to_owned(), expires));
        inner.after_write(now);
        Ok(())
    }

    async fn route(&self, session: SessionId) -> Result<Option<String>, Error> {
        let now = Instant::now();
        let inner = self.lock();
        Ok(inner
            .routes
            .get(&session)
            .filter(|(_, expires)| *expires > now)
            .map(|(replica, _)| replica.clone()))
    }

    async fn remove_route(&self, session: SessionId) -> Result<(), Error> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.routes.remove(&session);
        inner.after_write(now);
        Ok(())
    }

    async fn add_presence(
        &self,
        session: SessionId,
        conn: &str,
        ttl: Duration,
    ) -> Result<(), Error> {
        let now = Instant::now();
        let expires = expiry(now, ttl)?;
        let mut inner = self.lock();
        let conns = inner.presence.entry(session).or_default();
        // This session's dead connections go now; other sessions' at the next sweep.
        conns.retain(|_, expires| *expires > now);
        conns.insert(conn.to_owned(), expires);
        inner.after_write(now);
        Ok(())
    }

    async fn remove_presence(&self, session: SessionId, conn: &str) -> Result<(), Error> {
        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(conns) = inner.presence.get_mut(&session) {
            conns.remove(conn);
            conns.retain(|_, expires| *expires > now);
            if conns.is_empty() {
                inner.presence.remove(&session);
            }
        }
        inner.after_write(now);
        Ok(())
    }

    async fn presence(&self, session: SessionId) -> Result<usize, Error> {
        let now = Instant::now();
        let inner = self.lock();
        Ok(inner.presence.get(&session).map_or(0, |conns| {
            conns.values().filter(|expires| **expires > now).count()
        }))
    }

    async fn ping(&self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(10);
    const LONG: Duration = Duration::from_secs(3600);

    async fn fill(cache: &MemoryCache, sessions: usize, ttl: Duration) {
        for i in 0..sessions {
            let session = SessionId::new();
            cache.set_route(session, "replica-a", ttl).await.unwrap();
            cache
                .add_presence(session, &format!("ws-{i}"), ttl)
                .await
                .unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn growth_purges_dead_keys() {
        let cache = MemoryCache::new();
        let kept = SessionId::new();
        cache.set_route(kept, "replica-b", LONG).await.unwrap();
        fill(&cache, 1000, SHORT).await;
        assert_eq!(cache.keys(), 2001);

        tokio::time::advance(SHORT * 2).await;
        // New sessions, never the dead ones: their keys must go anyway.
        fill(&cache, 100, LONG).await;
        assert!(cache.keys() <= 201, "{} keys left", cache.keys());
        assert_eq!(
            cache.route(kept).await.unwrap().as_deref(),
            Some("replica-b")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_period_purges_dead_keys_at_the_next_write() {
        let cache = MemoryCache::new();
        fill(&cache, 10, SHORT).await;
        assert_eq!(cache.keys(), 20);

        tokio::time::advance(SWEEP_INTERVAL).await;
        cache
            .set_route(SessionId::new(), "replica-a", LONG)
            .await
            .unwrap();
        assert_eq!(cache.keys(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_whose_connections_all_left_holds_nothing() {
        let cache = MemoryCache::new();
        let session = SessionId::new();
        cache
            .add_presence(session, "a", Duration::from_secs(5))
            .await
            .unwrap();
        cache
            .add_presence(session, "b", Duration::from_millis(5))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_millis(10)).await;
        cache.remove_presence(session, "a").await.unwrap();
        assert_eq!(cache.keys(), 0);
    }
}
