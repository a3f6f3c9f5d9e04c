//! A cache that goes down on command: the breaker must then allow every
//! request (fail open) and pick its state up again once the cache is back.

use crate::helpers::Clock;
use crate::suite::{fail, open};
use async_trait::async_trait;
use csp_breaker::{Config, Permit, State};
use csp_cache::{Cache, Error, MemoryCache};
use csp_domain::SessionId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A [`MemoryCache`] that answers every call with the error of a refused
/// Redis connection while `down` is set.
#[derive(Default)]
struct FlakyCache {
    inner: MemoryCache,
    down: AtomicBool,
}

impl FlakyCache {
    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            return Err(Error::Unavailable {
                target: "redis://127.0.0.1:6379".to_owned(),
                source: refused.into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Cache for FlakyCache {
    async fn set_route(
        &self,
        session: SessionId,
        replica: &str,
        ttl: Duration,
    ) -> Result<(), Error> {
        self.check()?;
        self.inner.set_route(session, replica, ttl).await
    }
    async fn route(&self, session: SessionId) -> Result<Option<String>, Error> {
        self.check()?;
        self.inner.route(session).await
    }
    async fn remove_route(&self, session: SessionId) -> Result<(), Error> {
        self.check()?;
        self.inner.remove_route(session).await
    }
    async fn add_presence(
        &self,
        session: SessionId,
        conn: &str,
        ttl: Duration,
    ) -> Result<(), Error> {
        self.check()?;
        self.inner.add_presence(session, conn, ttl).await
    }
    async fn remove_presence(&self, session: SessionId, conn: &str) -> Result<(), Error> {
        self.check()?;
        self.inner.remove_presence(session, conn).await
    }
    async fn presence(&self, session: SessionId) -> Result<usize, Error> {
        self.check()?;
        self.inner.presence(session).await
    }
    async fn ping(&self) -> Result<(), Error> {
        self.check()?;
        self.inner.ping().await
    }
    async fn window_add(&self, key: &str, now_ms: u64, window: Duration) -> Result<u64, Error> {
        self.check()?;
        self.inner.window_add(key, now_ms, window).await
    }
    async fn window_clear(&self, key: &str) -> Result<(), Error> {
        self.check()?;
        self.inner.window_clear(key).await
    }
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), Error> {
        self.check()?;
        self.inner.put(key, value, ttl).await
    }
    async fn put_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, Error> {
        self.check()?;
        self.inner.put_if_absent(key, value, ttl).await
    }
    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        self.check()?;
        self.inner.get(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.check()?;
        self.inner.delete(key).await
    }
    async fn values_by_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, Error> {
        self.check()?;
        self.inner.values_by_prefix(prefix).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_down_cache_allows_every_request() {
    let cache = Arc::new(FlakyCache::default());
    cache.set_down(true);
    let breaker = Clock::new().breaker(Config::default(), cache.clone());
    fail(&breaker, 10).await;
    assert_eq!(breaker.state().await, State::Closed);
    assert_eq!(breaker.permit().await, Permit::Allowed);
    breaker.on_success(Permit::Probe).await;

    // Nothing was counted while it was down.
    cache.set_down(false);
    assert_eq!(breaker.state().await, State::Closed);
    fail(&breaker, 4).await;
    assert_eq!(breaker.state().await, State::Closed);
}

#[tokio::test(start_paused = true)]
async fn an_outage_of_the_cache_suspends_an_open_circuit_without_ending_it() {
    let cache = Arc::new(FlakyCache::default());
    let clock = Clock::new();
    let breaker = clock.breaker(Config::default(), cache.clone());
    open(&breaker).await;

    cache.set_down(true);
    assert_eq!(breaker.permit().await, Permit::Allowed);
    assert_eq!(breaker.state().await, State::Closed);

    cache.set_down(false);
    assert_eq!(breaker.permit().await, Permit::Rejected);
    assert_eq!(breaker.state().await, State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_zero_probe_timeout_fails_open_instead_of_rejecting_forever() {
    // The cache rejects the zero lease TTL; users must not pay for that.
    let config = Config {
        probe_timeout: Duration::ZERO,
        ..Config::default()
    };
    let clock = Clock::new();
    let breaker = clock.breaker(config, Arc::new(MemoryCache::new()));
    open(&breaker).await;
    clock.advance(config.open_for);
    assert_eq!(breaker.permit().await, Permit::Allowed);
}
