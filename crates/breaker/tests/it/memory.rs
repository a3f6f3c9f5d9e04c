//! The suite on the in-memory cache, on paused time, plus what needs the
//! cache's clock moved: the expiry of an abandoned probe lease.

use crate::helpers::{Clock, Fixture, MS};
use crate::suite::open;
use csp_breaker::{Config, Permit};
use csp_cache::{Cache, MemoryCache};
use std::sync::Arc;
use std::time::Duration;

/// One cache: in `csp dev` every "replica" is this process.
pub(crate) struct Memory(Arc<MemoryCache>);

impl Fixture for Memory {
    fn cache(&self) -> Arc<dyn Cache> {
        self.0.clone()
    }

    fn other_replica(&self) -> Arc<dyn Cache> {
        self.0.clone()
    }
}

breaker_suite!(
    #[tokio::test(start_paused = true)]
    async {
        Memory(Arc::new(MemoryCache::new()))
    }
);

/// The prober crashed and never reported: after `probe_timeout` by the
/// cache's clock another caller probes.
#[tokio::test(start_paused = true)]
async fn an_abandoned_probe_lease_expires_after_probe_timeout() {
    let config = Config::default();
    let clock = Clock::new();
    let breaker = clock.breaker(config, Arc::new(MemoryCache::new()));
    open(&breaker).await;
    clock.advance(Duration::from_secs(60));
    assert_eq!(breaker.permit().await, Permit::Probe);

    let almost = config.probe_timeout - MS;
    clock.advance(almost);
    tokio::time::advance(almost).await;
    assert_eq!(breaker.permit().await, Permit::Rejected);

    clock.advance(MS);
    tokio::time::advance(MS).await;
    assert_eq!(breaker.permit().await, Permit::Probe);
    assert_eq!(breaker.permit().await, Permit::Rejected);
}
