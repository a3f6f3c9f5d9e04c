//! Behaviour of the breaker on every cache adapter. Each case gets a fresh,
//! empty cache; `breaker_suite!` turns the list below into one test per
//! case for an adapter, so an adapter cannot skip a case.
//!
//! Only the breakers' clock moves (see `helpers::Clock`); the cache's clock
//! stands still (paused for memory, a few real milliseconds for Redis), so
//! no cache TTL runs out during a case. A probe lease that a case sees
//! released was therefore released by the breaker, not by its expiry.

use crate::helpers::{Clock, Fixture, MS, SECOND};
use csp_breaker::{Breaker, Config, Permit, State};
use std::time::Duration;
use tokio::task::JoinSet;

const MINUTE: Duration = Duration::from_secs(60);

/// Expands to one test per case, each with `#[$test]` on a fresh
/// `$fixture` (an expression yielding a future of a `helpers::Fixture`).
macro_rules! breaker_suite {
    (#[$test:meta] $fixture:expr) => {
        breaker_suite!(@cases #[$test] $fixture;
            a_new_breaker_is_closed,
            opens_after_the_threshold_of_failures_within_the_window,
            failures_spread_over_more_than_the_window_do_not_open,
            successes_do_not_reset_the_failure_count,
            open_circuit_rejects_until_open_for_has_passed,
            half_open_lets_exactly_one_probe_through,
            probe_success_closes_and_forgets_the_failures,
            only_a_probe_success_closes,
            probe_failure_reopens_for_another_open_for,
            replicas_sharing_a_cache_share_the_state,
            thresholds_are_configurable,
        );
    };
    (@cases #[$test:meta] $fixture:expr; $($case:ident),+ $(,)?) => {$(
        #[$test]
        async fn $case() {
            let fixture = $fixture.await;
            $crate::suite::$case(&fixture).await;
        }
    )+};
}

pub(crate) async fn fail(breaker: &Breaker, times: usize) {
    for _ in 0..times {
        breaker.on_failure().await;
    }
}

/// Opens the circuit of a default breaker with five quick failures.
pub(crate) async fn open(breaker: &Breaker) {
    fail(breaker, 5).await;
    assert_eq!(breaker.state().await, State::Open);
}

pub(crate) async fn a_new_breaker_is_closed(fixture: &dyn Fixture) {
    let breaker = Clock::new().breaker(Config::default(), fixture.cache());
    assert_eq!(breaker.state().await, State::Closed);
    assert_eq!(breaker.permit().await, Permit::Allowed);
}

pub(crate) async fn opens_after_the_threshold_of_failures_within_the_window(fixture: &dyn Fixture) {
    let clock = Clock::new();
    let breaker = clock.breaker(Config::default(), fixture.cache());
    for _ in 0..4 {
        breaker.on_failure().await;
        assert_eq!(breaker.state().await, State::Closed);
        assert_eq!(breaker.permit().await, Permit::Allowed);
        clock.advance(14 * SECOND);
    }
    // The fifth, 56 s after the first.
    breaker.on_failure().await;
    assert_eq!(breaker.state().await, State::Open);
    assert_eq!(breaker.permit().await, Permit::Rejected);
}

pub(crate) async fn failures_spread_over_more_than_the_window_do_not_open(fixture: &dyn Fixture) {
    let clock = Clock::new();
    let breaker = clock.breaker(Config::default(), fixture.cache());
    // At 0, 15, 30, 45 and 61 s: never five within 60 s.
    for step in [15, 15, 15, 16] {
        breaker.on_failure().await;
        clock.advance(step * SECOND);
    }
    breaker.on_failure().await;
    assert_eq!(breaker.state().await, State::Closed);
    assert_eq!(breaker.permit().await, Permit::Allowed);

    // At 62 s the four latest and this one are within 60 s.
    clock.advance(SECOND);
    breaker.on_failure().await;
    assert_eq!(breaker.state().await, State::Open);
}

pub(crate) async fn successes_do_not_reset_the_failure_count(fixture: &dyn Fixture) {
    let breaker = Clock::new().breaker(Config::default(), fixture.cache());
    fail(&breaker, 4).await;
    let permit = breaker.permit().await;
    assert_eq!(permit, Permit::Allowed);
    breaker.on_success(permit).await;
    fail(&breaker, 1).await;
    assert_eq!(breaker.state().await, State::Open);
}

pub(crate) async fn open_circuit_rejects_until_open_for_has_passed(fixture: &dyn Fixture) {
    let clock = Clock::new();
    let breaker = clock.breaker(Config::default(), fixture.cache());
    open(&breaker).await;

    clock.advance(MINUTE - MS);
    assert_eq!(breaker.permit().await, Permit::Rejected);
    assert_eq!(breaker.state().await, State::Open);
    // Requests admitted before the opening may still fail; they must not
    // push the probe further out.
    fail(&breaker, 5).await;

    clock.advance(MS);
    assert_eq!(breaker.state().await, State::HalfOpen);
}

pub(crate) async fn half_open_lets_exactly_one_probe_through(fixture: &dyn Fixture) {
    let clock = Clock::new();
    let here = clock.breaker(Config::default(), fixture.cache());
    let there = clock.breaker(Config::default(), fixture.other_replica());
    open(&here).await;
    clock.advance(MINUTE);

    let mut permits = JoinSet::new();
    for i in 0..16 {
        let breaker = if i % 2 == 0 { &here } else { &there };
        let breaker = breaker.clone();
        permits.spawn(async move { breaker.permit().await });
    }
    let permits = permits.join_all().await;
    let probes = permits.iter().filter(|p| **p == Permit::Probe).count();
    let rejected = permits.iter().filter(|p| **p == Permit::Rejected).count();
    assert_eq!((probes, rejected), (1, 15), "{permits:?}");

    // The probe is out: everybody else waits for its outcome.
    assert_eq!(here.state().await, State::HalfOpen);
    assert_eq!(there.permit().await, Permit::Rejected);
}

pub(crate) async fn probe_success_closes_and_forgets_the_failures(fixture: &dyn Fixture) {
    // A window longer than open_for: failures of before the opening would
    // still be in it if the breaker did not forget them.
    let config = Config {
        window: 10 * MINUTE,
        ..Config::default()
    };
    let clock = Clock::new();
    let breaker = clock.breaker(config, fixture.cache());
    open(&breaker).await;
    clock.advance(MINUTE);
    let probe = breaker.permit().await;
    assert_eq!(probe, Permit::Probe);

    breaker.on_success(probe).await;
    assert_eq!(breaker.state().await, State::Closed);
    assert_eq!(breaker.permit().await, Permit::Allowed);
    fail(&breaker, 4).await;
    assert_eq!(breaker.state().await, State::Closed);

    // The next outage gets a probe of its own: the old lease went with the
    // closing (by the cache's clock it would still be held).
    fail(&breaker, 1).await;
    assert_eq!(breaker.state().await, State::Open);
    clock.advance(MINUTE);
    assert_eq!(breaker.permit().await, Permit::Probe);
}

pub(crate) async fn only_a_probe_success_closes(fixture: &dyn Fixture) {
    let clock = Clock::new();
    let breaker = clock.breaker(Config::default(), fixture.cache());
    let early = breaker.permit().await;
    assert_eq!(early, Permit::Allowed);
    open(&breaker).await;
    clock.advance(MINUTE);

    // A request admitted before the opening that succeeded late.
    breaker.on_success(early).await;
    breaker.on_success(Permit::Rejected).await;
    assert_eq!(breaker.state().await, State::HalfOpen);
    assert_eq!(breaker.permit().await, Permit::Probe);
}

pub(crate) async fn probe_failure_reopens_for_another_open_for(fixture: &dyn Fixture) {
    let clock = Clock::new();
    let breaker = clock.breaker(Config::default(), fixture.cache());
    open(&breaker).await;
    clock.advance(MINUTE);
    assert_eq!(breaker.permit().await, Permit::Probe);

    breaker.on_failure().await;
    assert_eq!(breaker.state().await, State::Open);
    assert_eq!(breaker.permit().await, Permit::Rejected);
    clock.advance(MINUTE - MS);
    assert_eq!(breaker.permit().await, Permit::Rejected);
    clock.advance(MS);
    assert_eq!(breaker.state().await, State::HalfOpen);
    assert_eq!(breaker.permit().await, Permit::Probe);
}

pub(crate) async fn replicas_sharing_a_cache_share_the_state(fixture: &dyn Fixture) {
    let clock = Clock::new();
    let here = clock.breaker(Config::default(), fixture.cache());
    let there = clock.breaker(Config::default(), fixture.other_replica());

    // Failures count together.
    fail(&here, 3).await;
    fail(&there, 1).await;
    assert_eq!(here.state().await, State::Closed);
    fail(&there, 1).await;
    assert_eq!(here.state().await, State::Open);
    assert_eq!(there.state().await, State::Open);
    assert_eq!(here.permit().await, Permit::Rejected);

    clock.advance(MINUTE);
    assert_eq!(there.state().await, State::HalfOpen);
    let probe = here.permit().await;
    assert_eq!(probe, Permit::Probe);
    assert_eq!(there.permit().await, Permit::Rejected);

    here.on_success(probe).await;
    assert_eq!(there.state().await, State::Closed);
    assert_eq!(there.permit().await, Permit::Allowed);
}

pub(crate) async fn thresholds_are_configurable(fixture: &dyn Fixture) {
    let config = Config {
        failure_threshold: 2,
        window: 10 * SECOND,
        open_for: 5 * SECOND,
        probe_timeout: 30 * SECOND,
    };
    let clock = Clock::new();
    let breaker = clock.breaker(config, fixture.cache());
    fail(&breaker, 1).await;
    clock.advance(10 * SECOND + MS);
    fail(&breaker, 1).await;
    assert_eq!(breaker.state().await, State::Closed);
    fail(&breaker, 1).await;
    assert_eq!(breaker.state().await, State::Open);

    clock.advance(5 * SECOND - MS);
    assert_eq!(breaker.permit().await, Permit::Rejected);
    clock.advance(MS);
    assert_eq!(breaker.permit().await, Permit::Probe);
}
