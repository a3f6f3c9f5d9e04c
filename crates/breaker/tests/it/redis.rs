//! The suite on Redis, one key prefix per test and one connection per
//! replica, plus the keys the breaker writes.

use crate::helpers::{Clock, Fixture};
use crate::suite::open;
use csp_breaker::Config;
use csp_cache::{Cache, RedisCache};
use std::sync::Arc;

fn server_url() -> String {
    std::env::var("CSP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Two connections under a prefix of their own, as two replicas of one
/// deployment; the prefix's keys are deleted when the test ends, passed or
/// failed.
pub(crate) struct TestRedis {
    here: RedisCache,
    there: RedisCache,
    prefix: String,
}

impl TestRedis {
    pub(crate) async fn create() -> Self {
        let prefix = format!("csp-test:{}:", uuid::Uuid::new_v4().simple());
        let connect = || async {
            RedisCache::connect(&server_url(), &prefix)
                .await
                .unwrap_or_else(|e| panic!("cannot reach the test Redis (CSP_TEST_REDIS_URL): {e}"))
        };
        let (here, there) = (connect().await, connect().await);
        Self {
            here,
            there,
            prefix,
        }
    }

    fn raw(&self) -> ::redis::Connection {
        ::redis::Client::open(server_url())
            .and_then(|client| client.get_connection())
            .expect("raw Redis connection")
    }
}

impl Fixture for TestRedis {
    fn cache(&self) -> Arc<dyn Cache> {
        Arc::new(self.here.clone())
    }

    fn other_replica(&self) -> Arc<dyn Cache> {
        Arc::new(self.there.clone())
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

breaker_suite!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    TestRedis::create()
);

/// Other tools (an operator's `redis-cli`, dashboards) rely on these names.
#[tokio::test]
async fn state_lives_under_the_documented_keys() {
    let redis = TestRedis::create().await;
    let clock = Clock::new();
    let breaker = clock.breaker(Config::default(), redis.cache());
    breaker.on_failure().await;
    let mut raw = redis.raw();
    let failures = format!("{}win:breaker:model_api:failures", redis.prefix);
    assert_eq!(raw.zcard::<_, u64>(&failures).unwrap(), 1);

    let opened_at = clock.now_ms();
    open(&breaker).await;
    let open_until: String = raw
        .get(format!("{}kv:breaker:model_api:open_until", redis.prefix))
        .unwrap();
    assert_eq!(open_until, (opened_at + 60_000).to_string());
    assert!(!raw.exists::<_, bool>(&failures).unwrap());

    clock.advance(Config::default().open_for);
    breaker.permit().await;
    let probe_key = format!("{}kv:breaker:model_api:probe", redis.prefix);
    let ttl: i64 = raw.pttl(&probe_key).unwrap();
    assert!(0 < ttl && ttl <= 120_000, "probe lease PTTL {ttl}");
}
