//! One test binary: the shared breaker suite run on the in-memory cache and
//! on Redis, plus what needs a clock or a cache under the test's control
//! (probe lease expiry, cache failures, the gauge).

mod helpers;
#[macro_use]
mod suite;
mod failing_cache;
mod gauge;
mod memory;
mod redis;
