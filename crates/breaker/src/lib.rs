//! The model-API circuit breaker (US-015): after repeated model-API failures
//! it stops new requests at once instead of letting every user wait for a
//! timeout, then lets a single probe find out whether the API is back.
//!
//! Owns: the breaker's state machine (closed → open → half-open → closed or
//! open again), its keys in the [`csp_cache::Cache`] and the
//! `csp_circuit_breaker_state` gauge. The state lives in the cache, so every
//! session-pool replica sharing it (Redis in production) sees one outage
//! once instead of each rediscovering it with five failures of its own.
//!
//! Must never: block a user because of itself. When the cache fails the
//! breaker logs a warning and allows the request (fails open): a broken
//! cache says nothing about the model API, and an outage of the cache must
//! not become an outage of the chat. Must never send a request itself, nor
//! know what a request is; callers report outcomes.
//!
//! Time: the breaker's clock (`now_ms`) decides when the circuit opened and
//! when it turns half-open; the cache's TTLs only bound how long an
//! abandoned probe lease or a forgotten circuit lingers. Replicas' clocks
//! are compared through `open_until`, so skew between them shifts the
//! half-open moment by that skew, nothing worse.

mod metrics;

use csp_cache::Cache;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::metrics::STATE_GAUGE;

/// Failure events of the closed circuit (a window log).
const FAILURES: &str = "breaker:model_api:failures";
/// When the open circuit turns half-open, in ms since the Unix epoch; absent
/// while closed.
const OPEN_UNTIL: &str = "breaker:model_api:open_until";
/// The half-open probe's lease: whoever stores it sends the probe.
const PROBE: &str = "breaker:model_api:probe";
/// `open_until` outlives `open_for` by this: the circuit must stay half-open
/// through hung probes and their successors, and only a circuit nobody has
/// used for this long may close without a probe.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// Thresholds; [`Config::default`] is the seed's contract. Durations must
/// be at least 1 ms: the cache rejects shorter ones, and the breaker then
/// fails open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// This many failures within `window` open the circuit (0 acts as 1).
    pub failure_threshold: u32,
    pub window: Duration,
    /// How long an opened circuit rejects everything before a probe.
    pub open_for: Duration,
    /// How long a claimed probe may take before another caller may probe.
    pub probe_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(60),
            probe_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Requests flow; failures are counted.
    Closed,
    /// `open_for` has passed; one probe may go.
    HalfOpen,
    /// Every new request is rejected.
    Open,
}

impl State {
    /// The value of [`STATE_GAUGE`].
    pub fn gauge_value(self) -> f64 {
        match self {
            State::Closed => 0.0,
            State::HalfOpen => 1.0,
            State::Open => 2.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::HalfOpen => "half_open",
            State::Open => "open",
        }
    }
}

/// The answer of [`Breaker::permit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Send the request; report a failure with [`Breaker::on_failure`].
    Allowed,
    /// Send the request as the one probe of the half-open circuit; report
    /// its outcome, or the next probe waits for `probe_timeout`.
    Probe,
    /// Do not send it: the model API is considered down.
    Rejected,
}

/// The model-API breaker. Cheap to clone (the cache and clock are shared
/// `Arc`s); clones and other instances on the same cache share one state.
#[derive(Clone)]
pub struct Breaker {
    config: Config,
    cache: Arc<dyn Cache>,
    now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Breaker {
    /// A breaker on the system clock.
    pub fn new(config: Config, cache: Arc<dyn Cache>) -> Self {
        Self::with_clock(config, cache, Arc::new(system_now_ms))
    }

    /// A breaker on `now_ms` (ms since the Unix epoch), for tests.
    pub fn with_clock(
        config: Config,
        cache: Arc<dyn Cache>,
        now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> Self {
        Self {
            config,
            cache,
            now_ms,
        }
    }

    /// Whether a new request may go to the model API now.
    pub async fn permit(&self) -> Permit {
        let now = (self.now_ms)();
        let state = match self.open_until().await {
            Ok(open_until) => state_at(now, open_until),
            Err(error) => return fail_open("permit", &error),
        };
        metrics::record(state);
        match state {
            State::Closed => Permit::Allowed,
            State::Open => Permit::Rejected,
            State::HalfOpen => {
                match self
                    .cache
                    .put_if_absent(PROBE, &now.to_string(), self.config.probe_timeout)
                    .await
                {
                    Ok(true) => {
                        tracing::info!("model API circuit half-open: sending a probe");
                        Permit::Probe
                    }
                    Ok(false) => Permit::Rejected,
                    Err(error) => fail_open("probe lease", &error),
                }
            }
        }
    }

    /// The request made under `permit` succeeded (a Probe success closes the
    /// circuit). Other successes change nothing: the circuit opens on
    /// failures within a window, not on consecutive failures, and a request
    /// admitted before the circuit opened proves less than the probe.
    pub async fn on_success(&self, permit: Permit) {
        if permit == Permit::Probe {
            self.close().await;
        }
    }

    /// One model-API request failed (counts toward opening; a failure while
    /// half-open re-opens). A failure while open is a request admitted
    /// before the circuit opened; it does not extend the opening.
    pub async fn on_failure(&self) {
        let now = (self.now_ms)();
        let open_until = match self.open_until().await {
            Ok(open_until) => open_until,
            Err(error) => {
                tracing::warn!(%error, "circuit breaker cannot read its state; failure not counted");
                return;
            }
        };
        match state_at(now, open_until) {
            State::Open => {}
            State::HalfOpen => self.open(now, "a request failed while half-open").await,
            State::Closed => {
                match self
                    .cache
                    .window_add(FAILURES, now, self.config.window)
                    .await
                {
                    Ok(failures) if failures >= u64::from(self.config.failure_threshold.max(1)) => {
                        self.open(now, "too many failures").await;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "circuit breaker cannot count a failure");
                    }
                }
            }
        }
    }

    /// Current state (also refreshes the gauge). Open→HalfOpen is
    /// time-driven: Open with `now >= open_until` reads as HalfOpen. Reads
    /// Closed when the cache fails, as the breaker then allows everything.
    pub async fn state(&self) -> State {
        let state = match self.open_until().await {
            Ok(open_until) => state_at((self.now_ms)(), open_until),
            Err(error) => {
                tracing::warn!(%error, "circuit breaker cannot read its state; reading it as closed");
                State::Closed
            }
        };
        metrics::record(state);
        state
    }

    /// Registers the description of [`STATE_GAUGE`] with the recorder.
    pub fn describe_metrics() {
        metrics::describe();
    }

    /// `Ok(None)` while closed.
    async fn open_until(&self) -> Result<Option<u64>, csp_cache::Error> {
        let Some(value) = self.cache.get(OPEN_UNTIL).await? else {
            return Ok(None);
        };
        // Only this crate writes the key; a value it cannot read is treated
        // like no value rather than as an outage nobody can end.
        let parsed = value.parse().ok();
        if parsed.is_none() {
            tracing::warn!(value, "circuit breaker ignores an unreadable open_until");
        }
        Ok(parsed)
    }

    async fn open(&self, now: u64, reason: &'static str) {
        let open_for_ms = u64::try_from(self.config.open_for.as_millis()).unwrap_or(u64::MAX);
        let open_until = now.saturating_add(open_for_ms);
        let ttl = self.config.open_for.saturating_add(FORGET_AFTER);
        if let Err(error) = self
            .cache
            .put(OPEN_UNTIL, &open_until.to_string(), ttl)
            .await
        {
            tracing::warn!(%error, reason, "circuit breaker cannot open the circuit");
            return;
        }
        // After storing open_until, not before: until then a caller could
        // read the old half-open state, find no lease and probe.
        if let Err(error) = self.cache.delete(PROBE).await {
            // The lease expires by itself; the next probe waits for that.
            tracing::warn!(%error, "circuit breaker cannot drop the probe lease");
        }
        // The next closed period starts counting from zero.
        if let Err(error) = self.cache.window_clear(FAILURES).await {
            tracing::warn!(%error, "circuit breaker cannot clear its failures");
        }
        metrics::record(State::Open);
        tracing::warn!(
            reason,
            open_for_ms,
            "model API circuit opened: rejecting new messages"
        );
    }

    async fn close(&self) {
        // Failures first: while open_until is there no failure is counted,
        // so nothing of the new closed period can be cleared by mistake.
        if let Err(error) = self.cache.window_clear(FAILURES).await {
            tracing::warn!(%error, "circuit breaker cannot clear its failures");
        }
        if let Err(error) = self.cache.delete(OPEN_UNTIL).await {
            tracing::warn!(%error, "circuit breaker cannot close the circuit");
            return;
        }
        if let Err(error) = self.cache.delete(PROBE).await {
            tracing::warn!(%error, "circuit breaker cannot drop the probe lease");
        }
        metrics::record(State::Closed);
        tracing::info!("model API circuit closed: the probe succeeded");
    }
}

fn state_at(now: u64, open_until: Option<u64>) -> State {
    match open_until {
        None => State::Closed,
        Some(until) if now < until => State::Open,
        Some(_) => State::HalfOpen,
    }
}

fn fail_open(operation: &'static str, error: &csp_cache::Error) -> Permit {
    tracing::warn!(%error, operation, "circuit breaker cache failed; allowing the request");
    metrics::record(State::Closed);
    Permit::Allowed
}

fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauge_values_follow_the_seed() {
        assert_eq!(State::Closed.gauge_value(), 0.0);
        assert_eq!(State::HalfOpen.gauge_value(), 1.0);
        assert_eq!(State::Open.gauge_value(), 2.0);
        assert_eq!(State::Closed.as_str(), "closed");
        assert_eq!(State::HalfOpen.as_str(), "half_open");
        assert_eq!(State::Open.as_str(), "open");
    }

    #[test]
    fn open_turns_half_open_at_open_until() {
        assert_eq!(state_at(100, None), State::Closed);
        assert_eq!(state_at(99, Some(100)), State::Open);
        assert_eq!(state_at(100, Some(100)), State::HalfOpen);
        assert_eq!(state_at(101, Some(100)), State::HalfOpen);
    }

    #[test]
    fn default_config_is_the_seed_contract() {
        let config = Config::default();
        assert_eq!(config.failure_threshold, 5);
        assert_eq!(config.window, Duration::from_secs(60));
        assert_eq!(config.open_for, Duration::from_secs(60));
        assert_eq!(config.probe_timeout, Duration::from_secs(120));
    }

    #[test]
    fn system_clock_is_in_unix_milliseconds() {
        // 2023-11-14 onwards and not in microseconds.
        let now = system_now_ms();
        assert!(
            (1_700_000_000_000..10_000_000_000_000).contains(&now),
            "{now}"
        );
    }
}
