//! The suite against the in-memory adapter, on paused time.

use crate::helpers::Fixture;
use csp_cache::{Cache, MemoryCache};

pub(crate) struct Memory(MemoryCache);

impl Fixture for Memory {
    fn cache(&self) -> &dyn Cache {
        &self.0
    }
}

cache_suite!(
    #[tokio::test(start_paused = true)]
    async {
        Memory(MemoryCache::new())
    }
);
