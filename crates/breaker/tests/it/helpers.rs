use csp_breaker::{Breaker, Config};
use csp_cache::Cache;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A cache under test, reachable the way two replicas reach it.
pub(crate) trait Fixture {
    /// This replica's handle.
    fn cache(&self) -> Arc<dyn Cache>;
    /// Another replica's handle on the same cache (its own connection where
    /// the adapter has connections).
    fn other_replica(&self) -> Arc<dyn Cache>;
}

/// The breakers' clock, moved only by the test. Starts far from the epoch
/// so that no window reaches back past 0.
#[derive(Clone)]
pub(crate) struct Clock(Arc<AtomicU64>);

impl Clock {
    pub(crate) fn new() -> Self {
        Self(Arc::new(AtomicU64::new(1_700_000_000_000)))
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap();
        self.0.fetch_add(by, Ordering::SeqCst);
    }

    pub(crate) fn breaker(&self, config: Config, cache: Arc<dyn Cache>) -> Breaker {
        let now = Arc::clone(&self.0);
        Breaker::with_clock(config, cache, Arc::new(move || now.load(Ordering::SeqCst)))
    }
}

pub(crate) const MS: Duration = Duration::from_millis(1);
pub(crate) const SECOND: Duration = Duration::from_secs(1);
