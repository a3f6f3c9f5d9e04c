//! Login throttling: failed logins slow down the account they name and the
//! address they come from (the rule is in `docs/policy.md`).
//!
//! The state lives in the [`Cache`] (Redis with several replicas), so every
//! gateway replica counts the same attempts. An account's attempts are
//! counted when they start and cleared by a success, which makes a burst of
//! concurrent guesses count as much as the same guesses one after another;
//! an address counts failures only, so people behind one NAT who sign in
//! successfully do not lock each other out. When the cache fails, logins go
//! on unthrottled (logged): the password check stays bounded by the policy
//! service's hashing threads.

use csp_cache::Cache;
use std::sync::Arc;
use std::time::Duration;

/// `CSP_LOGIN_*`: when failed logins start to wait, and how long.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Failed attempts on one account (in `window`) before each further
    /// attempt waits.
    pub account_failures: u32,
    /// Failed attempts from one client address (in `window`) before each
    /// further attempt from it waits.
    pub address_failures: u32,
    /// The first wait; each further failure doubles it.
    pub lockout_base: Duration,
    /// The longest wait.
    pub lockout_max: Duration,
    /// How long a failure counts.
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            account_failures: 5,
            address_failures: 20,
            lockout_base: Duration::from_secs(1),
            lockout_max: Duration::from_secs(15 * 60),
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl LoginLimits {
    /// The wait after the `n`th failure (`n` ≥ `threshold`):
    /// `lockout_base × 2^(n − threshold)`, at most `lockout_max`.
    pub(crate) fn lockout(&self, n: u64, threshold: u32) -> Option<Duration> {
        let over = n.checked_sub(u64::from(threshold))?;
        let shift = u32::try_from(over).unwrap_or(u32::MAX);
        let factor = 1u32.checked_shl(shift).unwrap_or(0);
        Some(if factor == 0 {
            self.lockout_max
        } else {
            self.lockout_base
                .saturating_mul(factor)
                .min(self.lockout_max)
        })
    }
}

/// Reads the clock the lock times are written in (ms since the Unix epoch).
pub(crate) type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub(crate) fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) struct Throttle {
    cache: Arc<dyn Cache>,
    limits: LoginLimits,
    now_ms: Clock,
}

/// Where a login attempt comes from and what it names.
pub(crate) struct Attempt {
    /// `csp_auth::username::confusable_key` of the username.
    account: String,
    /// The client address.
    address: String,
}

impl Attempt {
    pub(crate) fn new(username: &str, address: &str) -> Self {
        // Policy refuses longer names without a check; keep keys short.
        let name: String = username.chars().take(256).collect();
        Self {
            account: csp_auth::username::confusable_key(&name),
            address: address.to_owned(),
        }
    }

    fn count(&self, scope: Scope) -> String {
        match scope {
            Scope::Account => format!("login:attempts:account:{}", self.account),
            Scope::Address => format!("login:failures:address:{}", self.address),
        }
    }

    fn lock(&self, scope: Scope) -> String {
        match scope {
            Scope::Account => format!("login:lock:account:{}", self.account),
            Scope::Address => format!("login:lock:address:{}", self.address),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Account,
    Address,
}

impl Throttle {
    pub(crate) fn new(cache: Arc<dyn Cache>, limits: LoginLimits, now_ms: Clock) -> Self {
        Self {
            cache,
            limits,
            now_ms,
        }
    }

    /// Whether the attempt may check its password now; `Err(wait)` when it
    /// must wait that long (answer 429 with `Retry-After`). An allowed
    /// attempt must be followed by [`Throttle::succeeded`] or
    /// [`Throttle::failed`].
    pub(crate) async fn begin(&self, attempt: &Attempt) -> Result<(), Duration> {
        let now = (self.now_ms)();
        for scope in [Scope::Account, Scope::Address] {
            if let Some(wait) = self.locked(&attempt.lock(scope), now).await {
                return Err(wait);
            }
        }
        let n = match self
            .cache
            .window_add(&attempt.count(Scope::Account), now, self.limits.window)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "login throttle: cache failed; not throttling");
                return Ok(());
            }
        };
        let Some(wait) = self.limits.lockout(n, self.limits.account_failures) else {
            return Ok(());
        };
        // Of concurrent attempts past the threshold, only the one that
        // takes the lock goes on; it holds the account for `wait`.
        let until = now.saturating_add(millis(wait));
        match self
            .cache
            .put_if_absent(&attempt.lock(Scope::Account), &until.to_string(), wait)
            .await
        {
            Ok(true) => Ok(()),
            // A lock that just ran out may linger a moment in the cache.
            Ok(false) => Err(self
                .locked(&attempt.lock(Scope::Account), now)
                .await
                .unwrap_or(Duration::from_secs(1))),
            Err(e) => {
                tracing::error!(error = %e, "login throttle: cache failed; not throttling");
                Ok(())
            }
        }
    }

    /// The right password: the account starts afresh.
    pub(crate) async fn succeeded(&self, attempt: &Attempt) {
        let (count, lock) = (attempt.count(Scope::Account), attempt.lock(Scope::Account));
        let cleared = tokio::join!(self.cache.window_clear(&count), self.cache.delete(&lock));
        if let (Err(e), _) | (_, Err(e)) = cleared {
            tracing::error!(error = %e, "login throttle: could not reset an account");
        }
    }

    /// A refused login (unknown user, wrong password, deactivated account):
    /// counts against the address; the account counted it at `begin`.
    pub(crate) async fn failed(&self, attempt: &Attempt) {
        let now = (self.now_ms)();
        let m = match self
            .cache
            .window_add(&attempt.count(Scope::Address), now, self.limits.window)
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "login throttle: cache failed; not counting");
                return;
            }
        };
        let Some(wait) = self.limits.lockout(m, self.limits.address_failures) else {
            return;
        };
        tracing::warn!(
            failures = m,
            wait_s = wait.as_secs(),
            "login throttle: an address is waiting"
        );
        let until = now.saturating_add(millis(wait));
        if let Err(e) = self
            .cache
            .put(&attempt.lock(Scope::Address), &until.to_string(), wait)
            .await
        {
            tracing::error!(error = %e, "login throttle: could not lock an address");
        }
    }

    /// How long the lock under `key` still holds.
    async fn locked(&self, key: &str, now: u64) -> Option<Duration> {
        match self.cache.get(key).await {
            Ok(Some(until)) => {
                let until: u64 = until.parse().unwrap_or(0);
                (until > now).then(|| Duration::from_millis(until - now))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "login throttle: cache failed; not throttling");
                None
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_cache::MemoryCache;

    /// Milliseconds on tokio's clock, so paused time moves it.
    fn paused_clock() -> Clock {
        let start = tokio::time::Instant::now();
        Arc::new(move || 1_700_000_000_000 + start.elapsed().as_millis() as u64)
    }

    fn throttle() -> Throttle {
        Throttle::new(
            Arc::new(MemoryCache::new()),
            LoginLimits::default(),
            paused_clock(),
        )
    }

    async fn fail(t: &Throttle, a: &Attempt) -> Result<(), Duration> {
        t.begin(a).await?;
        t.failed(a).await;
        Ok(())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn waits_double_from_the_threshold_up_to_the_cap() {
        let l = LoginLimits::default();
        assert_eq!(l.lockout(4, 5), None);
        assert_eq!(l.lockout(5, 5), Some(secs(1)));
        assert_eq!(l.lockout(6, 5), Some(secs(2)));
        assert_eq!(l.lockout(14, 5), Some(secs(512)));
        assert_eq!(l.lockout(15, 5), Some(secs(900)));
        assert_eq!(l.lockout(80, 5), Some(secs(900)));
        assert_eq!(l.lockout(u64::MAX, 5), Some(secs(900)));
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_account_waits_after_five_failures_and_longer_after_each_more() {
        let t = throttle();
        let a = Attempt::new("admin", "10.0.0.1");
        for i in 1..=5 {
            assert_eq!(fail(&t, &a).await, Ok(()), "attempt {i}");
        }
        // The sixth waits a second, from anywhere and in any spelling.
        assert_eq!(t.begin(&a).await, Err(secs(1)));
        assert_eq!(
            t.begin(&Attempt::new("ADMIN", "10.9.9.9")).await,
            Err(secs(1))
        );
        assert_eq!(
            t.begin(&Attempt::new("\u{430}dmin", "10.9.9.9")).await,
            Err(secs(1))
        );
        // Refused attempts do not count: after the second, the next goes on.
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(t.begin(&a).await, Err(Duration::from_millis(600)));
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(fail(&t, &a).await, Ok(()));
        assert_eq!(t.begin(&a).await, Err(secs(2)));
        tokio::time::advance(secs(2)).await;
        assert_eq!(fail(&t, &a).await, Ok(()));
        assert_eq!(t.begin(&a).await, Err(secs(4)));
        // Other accounts from the same address are not held up.
        assert_eq!(fail(&t, &Attempt::new("ada", "10.0.0.1")).await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_older_than_the_window_stop_counting() {
        let t = throttle();
        let a = Attempt::new("ada", "10.0.0.1");
        for _ in 0..4 {
            fail(&t, &a).await.unwrap();
        }
        tokio::time::advance(secs(15 * 60 + 1)).await;
        for _ in 0..4 {
            assert_eq!(fail(&t, &a).await, Ok(()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_account() {
        let t = throttle();
        let a = Attempt::new("ada", "10.0.0.1");
        for _ in 0..5 {
            fail(&t, &a).await.unwrap();
        }
        assert!(t.begin(&a).await.is_err());
        tokio::time::advance(secs(1)).await;
        t.begin(&a).await.unwrap();
        t.succeeded(&a).await;
        for i in 1..=4 {
            assert_eq!(fail(&t, &a).await, Ok(()), "attempt {i} after the reset");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_waits_after_twenty_failures_on_any_accounts() {
        let t = throttle();
        for i in 0..20 {
            let a = Attempt::new(&format!("user{i}"), "10.0.0.7");
            assert_eq!(fail(&t, &a).await, Ok(()), "failure {i}");
        }
        let fresh = Attempt::new("someone-else", "10.0.0.7");
        assert_eq!(t.begin(&fresh).await, Err(secs(1)));
        // Another address is not held up.
        assert_eq!(
            t.begin(&Attempt::new("someone-else", "10.0.0.8")).await,
            Ok(())
        );
        tokio::time::advance(secs(1)).await;
        assert_eq!(fail(&t, &fresh).await, Ok(()));
        assert_eq!(
            t.begin(&Attempt::new("third", "10.0.0.7")).await,
            Err(secs(2))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_concurrent_guesses_gets_no_more_tries() {
        let t = Arc::new(throttle());
        let tries = (0..50).map(|_| {
            let t = t.clone();
            async move { t.begin(&Attempt::new("admin", "10.0.0.1")).await.is_ok() }
        });
        let allowed = futures::future::join_all(tries)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        // Four below the threshold, and the one that took the lock.
        assert_eq!(allowed, 5);
    }
}
