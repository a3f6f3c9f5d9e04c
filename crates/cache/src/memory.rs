//! The in-process cache of `csp dev`: one replica, so routing, presence,
//! windows and values need not be shared.

use crate::{Cache, Error, ttl_millis};
use async_trait::async_trait;
use csp_domain::SessionId;
use std::collections::{BTreeMap, HashMap};
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
    windows: HashMap<String, Window>,
    /// Value -> expiry.
    values: HashMap<String, (String, Instant)>,
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
                windows: HashMap::new(),
                values: HashMap::new(),
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

/// A sliding-window log.
#[derive(Debug)]
struct Window {
    /// Event ms -> how many events at that ms; ordered, so dropping the old
    /// ones costs what they are, not what the log is.
    events: BTreeMap<u64, u64>,
    /// The sum of `events`' counts.
    len: u64,
    /// The whole log goes `window` after its last event, like the Redis
    /// key, whatever the events' own timestamps say.
    expires: Instant,
}

impl Inner {
    fn keys(&self) -> usize {
        self.routes.len() + self.presence.len() + self.windows.len() + self.values.len()
    }

    /// The live value under `key`.
    fn value(&self, key: &str, now: Instant) -> Option<&str> {
        self.values
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.as_str())
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
        self.windows.retain(|_, window| window.expires > now);
        self.values.retain(|_, (_, expires)| *expires > now);
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

    async fn window_add(&self, key: &str, now_ms: u64, window: Duration) -> Result<u64, Error> {
        let now = Instant::now();
        let expires = expiry(now, window)?;
        let cutoff = now_ms.saturating_sub(ttl_millis(window)?);
        let mut inner = self.lock();
        let log = inner.windows.entry(key.to_owned()).or_insert(Window {
            events: BTreeMap::new(),
            len: 0,
            expires,
        });
        if log.expires <= now {
            log.events.clear();
            log.len = 0;
        }
        let kept = log.events.split_off(&cutoff);
        let dropped = std::mem::replace(&mut log.events, kept);
        log.len -= dropped.values().sum::<u64>();
        *log.events.entry(now_ms).or_default() += 1;
        log.len += 1;
        log.expires = expires;
        let count = log.len;
        inner.after_write(now);
        Ok(count)
    }

    async fn window_clear(&self, key: &str) -> Result<(), Error> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.windows.remove(key);
        inner.after_write(now);
        Ok(())
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), Error> {
        let now = Instant::now();
        let expires = expiry(now, ttl)?;
        let mut inner = self.lock();
        inner
            .values
            .insert(key.to_owned(), (value.to_owned(), expires));
        inner.after_write(now);
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, Error> {
        let now = Instant::now();
        let expires = expiry(now, ttl)?;
        let mut inner = self.lock();
        // One lock for the check and the store: that is what makes it a lease.
        if inner.value(key, now).is_some() {
            return Ok(false);
        }
        inner
            .values
            .insert(key.to_owned(), (value.to_owned(), expires));
        inner.after_write(now);
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        let now = Instant::now();
        Ok(self.lock().value(key, now).map(str::to_owned))
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.values.remove(key);
        inner.after_write(now);
        Ok(())
    }

    async fn values_by_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, Error> {
        let now = Instant::now();
        let inner = self.lock();
        let mut found: Vec<(String, String)> = inner
            .values
            .iter()
            .filter(|(key, (_, expires))| key.starts_with(prefix) && *expires > now)
            .map(|(key, (value, _))| (key.clone(), value.clone()))
            .collect();
        found.sort();
        Ok(found)
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
    async fn dead_windows_and_values_are_purged_too() {
        let cache = MemoryCache::new();
        for i in 0..1000 {
            let key = format!("k-{i}");
            cache.window_add(&key, 1_000, SHORT).await.unwrap();
            cache.put(&key, "v", SHORT).await.unwrap();
        }
        assert_eq!(cache.keys(), 2000);

        tokio::time::advance(SHORT * 2).await;
        // Only new keys: the dead ones must go anyway.
        for i in 0..100 {
            cache.put(&format!("new-{i}"), "v", LONG).await.unwrap();
        }
        assert!(cache.keys() <= 100, "{} keys left", cache.keys());
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
