//! The suite against Redis, one key prefix per test, plus key layout and
//! connection errors.

use crate::helpers::Fixture;
use csp_cache::{Cache, Config, Error, RedisCache};
use csp_domain::SessionId;
use std::time::Duration;

fn server_url() -> String {
    std::env::var("CSP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A cache whose keys carry a prefix of its own; they are deleted when the
/// test ends, passed or failed.
pub(crate) struct TestRedis {
    cache: RedisCache,
    prefix: String,
}

impl TestRedis {
    pub(crate) async fn create() -> Self {
        let prefix = format!("csp-test:{}:", uuid::Uuid::new_v4().simple());
        let cache = RedisCache::connect(&server_url(), &prefix)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test Redis (CSP_TEST_REDIS_URL): {e}"));
        Self { cache, prefix }
    }

    /// A plain connection, to look at the keys the cache writes.
    fn raw(&self) -> ::redis::Connection {
        ::redis::Client::open(server_url())
            .and_then(|client| client.get_connection())
            .expect("raw Redis connection")
    }
}

impl Fixture for TestRedis {
    fn cache(&self) -> &dyn Cache {
        &self.cache
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // Blocking, but brief, and only at the end of a test.
        let mut conn = self.raw();
        let keys: Vec<String> = conn
            .scan_match(format!("{}*", self.prefix))
            .map(|keys| keys.filter_map(Result::ok).collect())
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = ::redis::Commands::del(&mut conn, keys);
        }
    }
}

use ::redis::Commands as _;

cache_suite!(
    #[tokio::test]
    TestRedis::create()
);

#[tokio::test]
async fn keys_follow_the_documented_layout() {
    let redis = TestRedis::create().await;
    let session = SessionId::new();
    redis
        .cache
        .set_route(session, "pool-0", Duration::from_secs(60))
        .await
        .unwrap();
    redis
        .cache
        .add_presence(session, "ws-a", Duration::from_secs(60))
        .await
        .unwrap();

    let mut raw = redis.raw();
    let route_key = format!("{}route:{session}", redis.prefix);
    let replica: String = raw.get(&route_key).unwrap();
    assert_eq!(replica, "pool-0");
    let ttl: i64 = raw.pttl(&route_key).unwrap();
    assert!(0 < ttl && ttl <= 60_000, "route PTTL {ttl}");

    let presence_key = format!("{}presence:{session}", redis.prefix);
    let kind: String = ::redis::cmd("TYPE")
        .arg(&presence_key)
        .query(&mut raw)
        .unwrap();
    assert_eq!(kind, "zset");
    let (seconds, micros): (u64, u64) = ::redis::cmd("TIME").query(&mut raw).unwrap();
    let now_ms = seconds * 1000 + micros / 1000;
    let expiry: f64 = raw.zscore(&presence_key, "ws-a").unwrap();
    let remaining = expiry - now_ms as f64;
    assert!(
        0.0 < remaining && remaining <= 60_000.0,
        "score {expiry}, now {now_ms}"
    );
    let ttl: i64 = raw.pttl(&presence_key).unwrap();
    assert!(0 < ttl && ttl <= 60_000, "presence PTTL {ttl}");
}

#[tokio::test]
async fn windows_and_values_follow_the_documented_layout() {
    let redis = TestRedis::create().await;
    let now_ms = 1_700_000_000_000;
    for _ in 0..2 {
        redis
            .cache
            .window_add("failures", now_ms, Duration::from_secs(60))
            .await
            .unwrap();
    }
    redis
        .cache
        .put("open_until", "42", Duration::from_secs(60))
        .await
        .unwrap();

    let mut raw = redis.raw();
    let window_key = format!("{}win:failures", redis.prefix);
    let events: Vec<(String, f64)> = raw.zrange_withscores(&window_key, 0, -1).unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    for (member, score) in &events {
        assert_eq!(*score, now_ms as f64, "{member}");
        assert!(member.starts_with(&format!("{now_ms}:")), "{member}");
    }
    let ttl: i64 = raw.pttl(&window_key).unwrap();
    assert!(0 < ttl && ttl <= 60_000, "window PTTL {ttl}");

    let value_key = format!("{}kv:open_until", redis.prefix);
    let value: String = raw.get(&value_key).unwrap();
    assert_eq!(value, "42");
    let ttl: i64 = raw.pttl(&value_key).unwrap();
    assert!(0 < ttl && ttl <= 60_000, "value PTTL {ttl}");
}

#[tokio::test]
async fn abandoned_presence_leaves_no_key() {
    let redis = TestRedis::create().await;
    let session = SessionId::new();
    redis
        .cache
        .add_presence(session, "ws-a", Duration::from_millis(20))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let exists: bool = redis
        .raw()
        .exists(format!("{}presence:{session}", redis.prefix))
        .unwrap();
    assert!(!exists);
}

#[tokio::test]
async fn prefixes_keep_deployments_apart() {
    let (one, two) = (TestRedis::create().await, TestRedis::create().await);
    let session = SessionId::new();
    one.cache
        .set_route(session, "pool-0", Duration::from_secs(60))
        .await
        .unwrap();
    one.cache
        .add_presence(session, "ws-a", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(two.cache.route(session).await.unwrap(), None);
    assert_eq!(two.cache.presence(session).await.unwrap(), 0);
}

#[tokio::test]
async fn unreachable_server_names_the_url_without_the_password() {
    let config = Config {
        connect_retries: 0,
        ..Config::default()
    };
    // Port 1 is closed: the connection is refused.
    let err = RedisCache::connect_with("redis://:hunter2@127.0.0.1:1/0", "csp:", &config)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("redis://:***@127.0.0.1:1/0"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn invalid_url_is_reported_without_the_password() {
    let err = RedisCache::connect("http://:hunter2@cache:6379", "csp:")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("http://:***@cache:6379"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}
