//! Short-lived shared state: which replica serves a session (routing), how
//! many connections are attached to it (presence), and generic primitives
//! for state shared between replicas (sliding-window event logs, values and
//! leases) used by the circuit breaker and rate limits.
//!
//! Owns: the [`Cache`] trait, its Redis adapter ([`RedisCache`], distributed
//! mode) and its in-process adapter ([`MemoryCache`], `csp dev`).
//!
//! Must never: hold anything that cannot be lost. Every entry expires, a
//! restart of Redis empties it, and callers must treat a missing route as
//! "ask the session-pool" rather than "no such session". Must never print a
//! Redis URL with its password.

mod error;
mod memory;
mod redis_cache;

use async_trait::async_trait;
use csp_domain::SessionId;
use std::time::Duration;

pub use error::Error;
pub use memory::MemoryCache;
pub use redis_cache::{Config, RedisCache};

/// The value under which a gateway records when a session's WebSocket
/// closed (Unix milliseconds, as text). The session-pool reads it to suspend
/// the least recently detached idle session first when it needs a slot.
pub fn detached_key(session: SessionId) -> String {
    format!("detached:{session}")
}

#[async_trait]
pub trait Cache: Send + Sync {
    /// Routes the session to `replica` until `ttl` passes, replacing any route.
    async fn set_route(
        &self,
        session: SessionId,
        replica: &str,
        ttl: Duration,
    ) -> Result<(), Error>;
    /// The replica serving the session, unless the route expired or was removed.
    async fn route(&self, session: SessionId) -> Result<Option<String>, Error>;
    /// Forgets the route; a no-op when there is none.
    async fn remove_route(&self, session: SessionId) -> Result<(), Error>;
    /// Marks one connection (e.g. a gateway WebSocket) as attached to the
    /// session until `ttl` passes; call again to refresh, which replaces its
    /// expiry with `now + ttl`.
    async fn add_presence(
        &self,
        session: SessionId,
        conn: &str,
        ttl: Duration,
    ) -> Result<(), Error>;
    /// Detaches the connection; a no-op when it is not attached.
    async fn remove_presence(&self, session: SessionId, conn: &str) -> Result<(), Error>;
    /// The number of live (unexpired) connections attached to the session.
    async fn presence(&self, session: SessionId) -> Result<usize, Error>;
    /// Succeeds when the backend answers.
    async fn ping(&self) -> Result<(), Error>;

    /// Appends one event at `now_ms` (ms since the Unix epoch, by the
    /// caller's clock) to the sliding-window log `key`, drops the events
    /// older than `now_ms - window` (an event exactly `window` old still
    /// counts), and returns how many remain, this one included. The log
    /// expires `window` after its last event, by the cache's clock.
    /// Window logs and values (below) are separate namespaces.
    async fn window_add(&self, key: &str, now_ms: u64, window: Duration) -> Result<u64, Error>;
    /// Forgets the window log; a no-op when there is none.
    async fn window_clear(&self, key: &str) -> Result<(), Error>;
    /// Stores `value` under `key` until `ttl` passes, replacing any value.
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), Error>;
    /// Stores `value` under `key` until `ttl` passes, only if no live value
    /// is there; true when this call stored it (a lease or lock: of
    /// concurrent callers, exactly one gets true).
    async fn put_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, Error>;
    /// The value under `key`, unless it expired or was deleted.
    async fn get(&self, key: &str) -> Result<Option<String>, Error>;
    /// Forgets the value; a no-op when there is none.
    async fn delete(&self, key: &str) -> Result<(), Error>;
    /// Every live value whose key starts with `prefix` (taken literally),
    /// as `(key, value)` sorted by key. For small families of keys, such as
    /// one heartbeat per worker: Redis finds them by walking its keyspace
    /// (`SCAN`), so the cost grows with every key the cache holds.
    async fn values_by_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, Error>;
}

/// Redis keeps milliseconds; a TTL below one millisecond would mean "already
/// expired" on one adapter and an error on the other, so both reject it.
/// Sub-millisecond remainders round up.
fn ttl_millis(ttl: Duration) -> Result<u64, Error> {
    let millis = ttl.as_nanos().div_ceil(1_000_000);
    match u64::try_from(millis) {
        Ok(0) | Err(_) => Err(Error::InvalidTtl(ttl)),
        Ok(millis) => Ok(millis),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_milliseconds() {
        assert_eq!(ttl_millis(Duration::from_millis(1500)).unwrap(), 1500);
        assert_eq!(ttl_millis(Duration::from_micros(1001)).unwrap(), 2);
        assert_eq!(ttl_millis(Duration::from_nanos(1)).unwrap(), 1);
    }

    #[test]
    fn zero_ttl_is_rejected() {
        assert!(matches!(
            ttl_millis(Duration::ZERO),
            Err(Error::InvalidTtl(_))
        ));
    }
}
