//! Behaviour every [`Cache`] adapter must share. Each case gets a fresh,
//! empty cache; `cache_suite!` turns the list below into one test per case
//! for an adapter, so an adapter cannot skip a case.
//!
//! Expiry is awaited with `tokio::time::sleep`: the memory adapter's tests
//! run on paused time, where the sleep advances the clock at once; Redis'
//! run on real time, where it waits. Either way the cases only rely on "at
//! least this long has passed", never on "at most".

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
