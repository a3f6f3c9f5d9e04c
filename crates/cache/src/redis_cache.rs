//! The distributed-mode cache: one Redis shared by every replica.

use crate::{Cache, Error, ttl_millis};
use async_trait::async_trait;
use csp_domain::SessionId;
use csp_redact::url as redact_url;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;
use std::time::Duration;
use tracing::instrument;

/// Presence is a sorted set per session: member = connection id, score =
/// expiry in unix ms by Redis' clock (replicas' clocks may disagree, Redis'
/// is the one that counts). Adding drops members that have expired, and the
/// key itself expires with its longest-lived member, so an abandoned session
/// leaves nothing behind. Lua keeps the read-modify-write atomic, and
/// numbers are formatted with `%d` because Redis would otherwise receive Lua
/// floats in whatever notation they print.
static ADD_PRESENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
        redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
        local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
        redis.call('PEXPIREAT', KEYS[1], string.format('%d', tonumber(last[2])))
        return 1
        ",
    )
});

/// Counts members whose expiry is still ahead of Redis' clock.
static COUNT_PRESENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        return redis.call('ZCOUNT', KEYS[1], string.format('(%d', now), '+inf')
        ",
    )
});

/// Connection settings for [`RedisCache::connect_with`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Each connection attempt gives up after this.
    pub connect_timeout: Duration,
    /// A command without an answer after this fails, so a hung Redis fails
    /// requests instead of stalling them.
    pub response_timeout: Duration,
    /// Further attempts, with exponential backoff, when connecting at start
    /// or reconnecting after the connection broke.
    pub connect_retries: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            connect_retries: 6,
        }
    }
}

/// Redis adapter. Cheap to clone: clones share one multiplexed connection,
/// which reconnects by itself when it breaks.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    prefix: String,
    /// The URL without its password, for errors.
    target: String,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connects with [`Config::default`]. Every key starts with `key_prefix`
    /// (e.g. `"csp:"`), so deployments or tests can share one Redis.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self, Error> {
        Self::connect_with(url, key_prefix, &Config::default()).await
    }

    #[instrument(name = "cache.connect", skip_all, fields(redis.url = %redact_url(url)), err)]
    pub async fn connect_with(url: &str, key_prefix: &str, config: &Config) -> Result<Self, Error> {
        let target = redact_url(url);
        let client = redis::Client::open(url).map_err(|source| Error::InvalidUrl {
            url: target.clone(),
            source,
        })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(config.connect_retries);
        let conn = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(|e| Error::from_redis(&target, e))?;
        Ok(Self {
            conn,
            prefix: key_prefix.to_owned(),
            target,
        })
    }

    fn route_key(&self, session: SessionId) -> String {
        format!("{}route:{session}", self.prefix)
    }

    fn presence_key(&self, session: SessionId) -> String {
        format!("{}presence:{session}", self.prefix)
    }

    fn window_key(&self, key: &str) -> String {
        format!("{}win:{key}", self.prefix)
    }

    fn value_key(&self, key: &str) -> String {
        format!("{}kv:{key}", self.prefix)
    }

    fn error(&self, error: redis::RedisError) -> Error {
        Error::from_redis(&self.target, error)
    }
}

#[async_trait]
impl Cache for RedisCache {
    #[instrument(name = "cache.set_route", skip_all, fields(session.id = %session, replica))]
    async fn set_route(
        &self,
        session: SessionId,
        replica: &str,
        ttl: Duration,
    ) -> Result<(), Error> {
        let millis = ttl_millis(ttl)?;
        let mut conn = self.conn.clone();
        conn.pset_ex::<_, _, ()>(self.route_key(session), replica, millis)
            .await
            .map_err(|e| self.error(e))
    }

    async fn route(&self, session: SessionId) -> Result<Option<String>, Error> {
        let mut conn = self.conn.clone();
        conn.get(self.route_key(session))
            .await
            .map_err(|e| self.error(e))
    }

    #[instrument(name = "cache.remove_route", skip_all, fields(session.id = %session))]
    async fn remove_route(&self, session: SessionId) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.route_key(session))
            .await
            .map_err(|e| self.error(e))
    }

    async fn add_presence(
        &self,
        session: SessionId,
        conn_id: &str,
        ttl: Duration,
    ) -> Result<(), Error> {
        let millis = ttl_millis(ttl)?;
        let mut conn = self.conn.clone();
        ADD_PRESENCE
            .key(self.presence_key(session))
            .arg(conn_id)
            .arg(millis)
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error(e))
    }

    async fn remove_presence(&self, session: SessionId, conn_id: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        conn.zrem::<_, _, ()>(self.presence_key(session), conn_id)
            .await
            .map_err(|e| self.error(e))
    }

    async fn presence(&self, session: SessionId) -> Result<usize, Error> {
        let mut conn = self.conn.clone();
        COUNT_PRESENCE
            .key(self.presence_key(session))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error(e))
    }

    async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error(e))
    }

    /// A window log is a sorted set: score = the event's ms, member = that
    /// ms plus a random suffix, so events in the same millisecond (on any
    /// replica) are counted apart. MULTI keeps trim, add, count and expiry
    /// one step, so concurrent callers each see a count that includes
    /// exactly the events before theirs.
    async fn window_add(&self, key: &str, now_ms: u64, window: Duration) -> Result<u64, Error> {
        let window_ms = ttl_millis(window)?;
        let key = self.window_key(key);
        let member = format!("{now_ms}:{}", uuid::Uuid::new_v4().simple());
        // '(' excludes the bound: only events strictly older than the
        // cutoff go.
        let older = format!("({}", now_ms.saturating_sub(window_ms));
        let mut conn = self.conn.clone();
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .zrembyscore(&key, "-inf", older)
            .ignore()
            .zadd(&key, member, now_ms)
            .ignore()
            .zcard(&key)
            .pexpire(&key, i64::try_from(window_ms).unwrap_or(i64::MAX))
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(count)
    }

    async fn window_clear(&self, key: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.window_key(key))
            .await
            .map_err(|e| self.error(e))
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), Error> {
        let millis = ttl_millis(ttl)?;
        let mut conn = self.conn.clone();
        conn.pset_ex::<_, _, ()>(self.value_key(key), value, millis)
            .await
            .map_err(|e| self.error(e))
    }

    async fn put_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, Error> {
        let millis = ttl_millis(ttl)?;
        let mut conn = self.conn.clone();
        // SET NX answers OK when it stored the value and nil when a value
        // was there; both map onto the bool.
        redis::cmd("SET")
            .arg(self.value_key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))
    }

    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        let mut conn = self.conn.clone();
        conn.get(self.value_key(key))
            .await
            .map_err(|e| self.error(e))
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.value_key(key))
            .await
            .map_err(|e| self.error(e))
    }

    /// `SCAN` for the keys (it may return a key twice, and a key that
    /// expires meanwhile), then `MGET` of those found: a key gone between
    /// the two reads nil and is left out.
    async fn values_by_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, Error> {
        let full = self.value_key("");
        let pattern = format!("{}*", glob_literal(&format!("{full}{prefix}")));
        let mut conn = self.conn.clone();
        let mut keys = std::collections::BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error(e))?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = keys.into_iter().collect();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(keys
            .into_iter()
            .zip(values)
            .filter_map(|(key, value)| Some((key.strip_prefix(&full)?.to_owned(), value?)))
            .collect())
    }
}

/// `text` as a Redis glob pattern that matches only itself.
fn glob_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_literal("csp:kv:w"), "csp:kv:w");
        assert_eq!(glob_literal("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
