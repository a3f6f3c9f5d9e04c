//! Behaviour every [`Cache`] adapter must share. Each case gets a fresh,
//! empty cache; `cache_suite!` turns the list below into one test per case
//! for an adapter, so an adapter cannot skip a case.
//!
//! Expiry is awaited with `tokio::time::sleep`: the memory adapter's tests
//! run on paused time, where the sleep advances the clock at once; Redis'
//! run on real time, where it waits. Either way the cases only rely on "at
//! least this long has passed", never on "at most". Window logs take the
//! caller's clock (`now_ms`) for their events, so those cases pass explicit
//! times; only the expiry of a whole log waits.

use csp_cache::{Cache, Error};
use csp_domain::SessionId;
use std::time::Duration;
use tokio::time::sleep;

const SHORT: Duration = Duration::from_millis(20);
const PAST_SHORT: Duration = Duration::from_millis(60);
const LONG: Duration = Duration::from_secs(3600);

/// Expands to one test per case, each with `#[$test]` (the test attribute,
/// e.g. to pause time) on the cache of a fresh `$fixture` (an expression
/// yielding a future of a `helpers::Fixture`).
macro_rules! cache_suite {
    (#[$test:meta] $fixture:expr) => {
        cache_suite!(@cases #[$test] $fixture;
            route_is_set_replaced_and_removed,
            routes_are_per_session,
            route_expires_after_its_ttl,
            setting_a_route_again_refreshes_it,
            presence_counts_connections_once_each,
            presence_is_per_session,
            presence_expires_per_connection,
            adding_presence_again_refreshes_it,
            zero_ttl_is_rejected,
            ping_answers,
            window_counts_the_events_within_the_window,
            window_counts_events_of_one_millisecond_apart,
            windows_are_per_key_and_can_be_cleared,
            window_expires_after_a_window_without_events,
            value_is_put_replaced_and_deleted,
            value_expires_after_its_ttl,
            putting_a_value_again_refreshes_it,
            put_if_absent_stores_only_when_absent,
            put_if_absent_lets_exactly_one_concurrent_caller_store,
            windows_values_and_routes_do_not_collide,
            zero_window_or_value_ttl_is_rejected,
            values_are_listed_by_prefix,
            a_prefix_is_taken_literally,
        );
    };
    (@cases #[$test:meta] $fixture:expr; $($case:ident),+ $(,)?) => {$(
        #[$test]
        async fn $case() {
            use $crate::helpers::Fixture as _;
            let fixture = $fixture.await;
            $crate::suite::$case(fixture.cache()).await;
        }
    )+};
}

pub(crate) async fn route_is_set_replaced_and_removed(cache: &dyn Cache) {
    let session = SessionId::new();
    assert_eq!(cache.route(session).await.unwrap(), None);
    cache.set_route(session, "pool-0", LONG).await.unwrap();
    assert_eq!(
        cache.route(session).await.unwrap().as_deref(),
        Some("pool-0")
    );
    cache.set_route(session, "pool-1", LONG).await.unwrap();
    assert_eq!(
        cache.route(session).await.unwrap().as_deref(),
        Some("pool-1")
    );
    cache.remove_route(session).await.unwrap();
    assert_eq!(cache.route(session).await.unwrap(), None);
    // Removing what is not there is fine: a retried cleanup must not fail.
    cache.remove_route(session).await.unwrap();
}

pub(crate) async fn routes_are_per_session(cache: &dyn Cache) {
    let (a, b) = (SessionId::new(), SessionId::new());
    cache.set_route(a, "pool-0", LONG).await.unwrap();
    cache.set_route(b, "pool-1", LONG).await.unwrap();
    cache.remove_route(a).await.unwrap();
    assert_eq!(cache.route(a).await.unwrap(), None);
    assert_eq!(cache.route(b).await.unwrap().as_deref(), Some("pool-1"));
}

pub(crate) async fn route_expires_after_its_ttl(cache: &dyn Cache) {
    let (short, long) = (SessionId::new(), SessionId::new());
    cache.set_route(short, "pool-0", SHORT).await.unwrap();
    cache.set_route(long, "pool-1", LONG).await.unwrap();
    sleep(PAST_SHORT).await;
    assert_eq!(cache.route(short).await.unwrap(), None);
    assert_eq!(cache.route(long).await.unwrap().as_deref(), Some("pool-1"));
}

pub(crate) async fn setting_a_route_again_refreshes_it(cache: &dyn Cache) {
    let session = SessionId::new();
    cache.set_route(session, "pool-0", SHORT).await.unwrap();
    cache.set_route(session, "pool-0", LONG).await.unwrap();
    sleep(PAST_SHORT).await;
    assert_eq!(
        cache.route(session).await.unwrap().as_deref(),
        Some("pool-0")
    );
}

pub(crate) async fn presence_counts_connections_once_each(cache: &dyn Cache) {
    let session = SessionId::new();
    assert_eq!(cache.presence(session).await.unwrap(), 0);
    cache.add_presence(session, "ws-a", LONG).await.unwrap();
    cache.add_presence(session, "ws-b", LONG).await.unwrap();
    assert_eq!(cache.presence(session).await.unwrap(), 2);
    cache.add_presence(session, "ws-a", LONG).await.unwrap();
    assert_eq!(cache.presence(session).await.unwrap(), 2);
    cache.remove_presence(session, "ws-a").await.unwrap();
    assert_eq!(cache.presence(session).await.unwrap(), 1);
    cache.remove_presence(session, "ws-a").await.unwrap();
    assert_eq!(cache.presence(session).await.unwrap(), 1);
    cache.remove_presence(session, "ws-b").await.unwrap();
    assert_eq!(cache.presence(session).await.unwrap(), 0);
    cache
        .remove_presence(SessionId::new(), "ws-z")
        .await
        .unwrap();
}

pub(crate) async fn presence_is_per_session(cache: &dyn Cache) {
    let (a, b) = (SessionId::new(), SessionId::new());
    cache.add_presence(a, "ws-1", LONG).await.unwrap();
    cache.add_presence(b, "ws-1", LONG).await.unwrap();
    cache.add_presence(b, "ws-2", LONG).await.unwrap();
    cache.remove_presence(a, "ws-1").await.unwrap();
    assert_eq!(cache.presence(a).await.unwrap(), 0);
    assert_eq!(cache.presence(b).await.unwrap(), 2);
}

pub(crate) async fn presence_expires_per_connection(cache: &dyn Cache) {
    // Both orders: the short-lived connection must not cut the long-lived
    // one's life short, whichever was added last.
    let (short_last, short_first) = (SessionId::new(), SessionId::new());
    cache
        .add_presence(short_last, "ws-long", LONG)
        .await
        .unwrap();
    cache
        .add_presence(short_last, "ws-short", SHORT)
        .await
        .unwrap();
    cache
        .add_presence(short_first, "ws-short", SHORT)
        .await
        .unwrap();
    cache
        .add_presence(short_first, "ws-long", LONG)
        .await
        .unwrap();
    assert_eq!(cache.presence(short_last).await.unwrap(), 2);

    sleep(PAST_SHORT).await;
    assert_eq!(cache.presence(short_last).await.unwrap(), 1);
    assert_eq!(cache.presence(short_first).await.unwrap(), 1);

    // A connection that expired can attach again.
    cache
        .add_presence(short_last, "ws-short", LONG)
        .await
        .unwrap();
    assert_eq!(cache.presence(short_last).await.unwrap(), 2);
}

pub(crate) async fn adding_presence_again_refreshes_it(cache: &dyn Cache) {
    let session = SessionId::new();
    cache.add_presence(session, "ws-a", SHORT).await.unwrap();
    cache.add_presence(session, "ws-a", LONG).await.unwrap();
    sleep(PAST_SHORT).await;
    assert_eq!(cache.presence(session).await.unwrap(), 1);
}

pub(crate) async fn zero_ttl_is_rejected(cache: &dyn Cache) {
    let session = SessionId::new();
    let err = cache
        .set_route(session, "pool-0", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTtl(_)), "{err:?}");
    let err = cache
        .add_presence(session, "ws-a", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTtl(_)), "{err:?}");
    assert_eq!(cache.route(session).await.unwrap(), None);
    assert_eq!(cache.presence(session).await.unwrap(), 0);
}

pub(crate) async fn ping_answers(cache: &dyn Cache) {
    cache.ping().await.unwrap();
}

/// Far from 0, so `now_ms - window` does not saturate.
const T0: u64 = 1_700_000_000_000;
const MINUTE: Duration = Duration::from_secs(60);

pub(crate) async fn window_counts_the_events_within_the_window(cache: &dyn Cache) {
    assert_eq!(cache.window_add("w", T0, MINUTE).await.unwrap(), 1);
    assert_eq!(cache.window_add("w", T0 + 10_000, MINUTE).await.unwrap(), 2);
    assert_eq!(cache.window_add("w", T0 + 59_999, MINUTE).await.unwrap(), 3);
    // T0 is exactly one window old: it still counts.
    assert_eq!(cache.window_add("w", T0 + 60_000, MINUTE).await.unwrap(), 4);
    // Now it is older: T0 goes, the others stay.
    assert_eq!(cache.window_add("w", T0 + 60_001, MINUTE).await.unwrap(), 4);
    // Everything but this one is older than a window.
    assert_eq!(
        cache.window_add("w", T0 + 200_000, MINUTE).await.unwrap(),
        1
    );
}

pub(crate) async fn window_counts_events_of_one_millisecond_apart(cache: &dyn Cache) {
    for expected in 1..=3 {
        assert_eq!(cache.window_add("w", T0, MINUTE).await.unwrap(), expected);
    }
}

pub(crate) async fn windows_are_per_key_and_can_be_cleared(cache: &dyn Cache) {
    cache.window_add("a", T0, MINUTE).await.unwrap();
    cache.window_add("a", T0 + 1, MINUTE).await.unwrap();
    assert_eq!(cache.window_add("b", T0 + 2, MINUTE).await.unwrap(), 1);

    cache.window_clear("a").await.unwrap();
    assert_eq!(cache.window_add("a", T0 + 3, MINUTE).await.unwrap(), 1);
    assert_eq!(cache.window_add("b", T0 + 3, MINUTE).await.unwrap(), 2);
    // Clearing what is not there is fine.
    cache.window_clear("never-written").await.unwrap();
}

pub(crate) async fn window_expires_after_a_window_without_events(cache: &dyn Cache) {
    assert_eq!(cache.window_add("short", T0, SHORT).await.unwrap(), 1);
    assert_eq!(cache.window_add("long", T0, LONG).await.unwrap(), 1);
    sleep(PAST_SHORT).await;
    // Same caller time, so only the expiry of the log can have dropped the
    // first event.
    assert_eq!(cache.window_add("short", T0, SHORT).await.unwrap(), 1);
    assert_eq!(cache.window_add("long", T0, LONG).await.unwrap(), 2);
}

pub(crate) async fn value_is_put_replaced_and_deleted(cache: &dyn Cache) {
    assert_eq!(cache.get("k").await.unwrap(), None);
    cache.put("k", "one", LONG).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("one"));
    cache.put("k", "two", LONG).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("two"));
    cache.put("other", "three", LONG).await.unwrap();
    cache.delete("k").await.unwrap();
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert_eq!(cache.get("other").await.unwrap().as_deref(), Some("three"));
    // Deleting what is not there is fine.
    cache.delete("k").await.unwrap();
}

pub(crate) async fn value_expires_after_its_ttl(cache: &dyn Cache) {
    cache.put("short", "a", SHORT).await.unwrap();
    cache.put("long", "b", LONG).await.unwrap();
    sleep(PAST_SHORT).await;
    assert_eq!(cache.get("short").await.unwrap(), None);
    assert_eq!(cache.get("long").await.unwrap().as_deref(), Some("b"));
}

pub(crate) async fn putting_a_value_again_refreshes_it(cache: &dyn Cache) {
    cache.put("k", "a", SHORT).await.unwrap();
    cache.put("k", "a", LONG).await.unwrap();
    sleep(PAST_SHORT).await;
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("a"));
}

pub(crate) async fn put_if_absent_stores_only_when_absent(cache: &dyn Cache) {
    assert!(cache.put_if_absent("lease", "first", LONG).await.unwrap());
    assert!(!cache.put_if_absent("lease", "second", LONG).await.unwrap());
    assert_eq!(cache.get("lease").await.unwrap().as_deref(), Some("first"));

    cache.delete("lease").await.unwrap();
    assert!(cache.put_if_absent("lease", "third", SHORT).await.unwrap());
    sleep(PAST_SHORT).await;
    // An expired lease is as good as absent.
    assert!(cache.put_if_absent("lease", "fourth", LONG).await.unwrap());
    assert_eq!(cache.get("lease").await.unwrap().as_deref(), Some("fourth"));
}

pub(crate) async fn put_if_absent_lets_exactly_one_concurrent_caller_store(cache: &dyn Cache) {
    let (a, b, c, d) = tokio::join!(
        cache.put_if_absent("lease", "a", LONG),
        cache.put_if_absent("lease", "b", LONG),
        cache.put_if_absent("lease", "c", LONG),
        cache.put_if_absent("lease", "d", LONG),
    );
    let won: Vec<bool> = [a, b, c, d].into_iter().map(Result::unwrap).collect();
    assert_eq!(won.iter().filter(|won| **won).count(), 1, "{won:?}");
    let winner = ["a", "b", "c", "d"][won.iter().position(|won| *won).unwrap()];
    assert_eq!(cache.get("lease").await.unwrap().as_deref(), Some(winner));
}

pub(crate) async fn windows_values_and_routes_do_not_collide(cache: &dyn Cache) {
    let session = SessionId::new();
    let name = format!("route:{session}");
    cache.set_route(session, "pool-0", LONG).await.unwrap();
    cache.put(&name, "value", LONG).await.unwrap();
    assert_eq!(cache.window_add(&name, T0, MINUTE).await.unwrap(), 1);

    cache.window_clear(&name).await.unwrap();
    assert_eq!(cache.get(&name).await.unwrap().as_deref(), Some("value"));
    cache.delete(&name).await.unwrap();
    assert_eq!(
        cache.route(session).await.unwrap().as_deref(),
        Some("pool-0")
    );
}

pub(crate) async fn zero_window_or_value_ttl_is_rejected(cache: &dyn Cache) {
    let err = cache.window_add("w", T0, Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, Error::InvalidTtl(_)), "{err:?}");
    let err = cache.put("k", "v", Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, Error::InvalidTtl(_)), "{err:?}");
    let err = cache
        .put_if_absent("k", "v", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTtl(_)), "{err:?}");
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert_eq!(cache.window_add("w", T0, MINUTE).await.unwrap(), 1);
}

pub(crate) async fn values_are_listed_by_prefix(cache: &dyn Cache) {
    assert_eq!(cache.values_by_prefix("worker:").await.unwrap(), vec![]);
    cache.put("worker:b", "2", LONG).await.unwrap();
    cache.put("worker:a", "1", LONG).await.unwrap();
    cache.put("worker:gone", "3", SHORT).await.unwrap();
    cache.put("workers", "not this one", LONG).await.unwrap();
    cache.put("other:a", "x", LONG).await.unwrap();
    // Windows and routes are not values.
    cache.window_add("worker:w", T0, MINUTE).await.unwrap();
    sleep(PAST_SHORT).await;
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        cache.values_by_prefix("worker:").await.unwrap(),
        vec![pair("worker:a", "1"), pair("worker:b", "2")],
        "live values only, sorted by key"
    );
    cache.delete("worker:a").await.unwrap();
    assert_eq!(
        cache.values_by_prefix("worker:").await.unwrap(),
        vec![pair("worker:b", "2")]
    );
    assert_eq!(cache.values_by_prefix("").await.unwrap().len(), 3);
}

pub(crate) async fn a_prefix_is_taken_literally(cache: &dyn Cache) {
    cache.put("w*:1", "star", LONG).await.unwrap();
    cache.put("wx:1", "x", LONG).await.unwrap();
    cache.put("w?[a]\\:1", "glob", LONG).await.unwrap();
    let keys = |found: Vec<(String, String)>| found.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(keys(cache.values_by_prefix("w*").await.unwrap()), ["w*:1"]);
    assert_eq!(
        keys(cache.values_by_prefix("w?[a]\\").await.unwrap()),
        ["w?[a]\\:1"]
    );
}
