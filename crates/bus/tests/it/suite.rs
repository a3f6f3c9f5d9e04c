//! The behaviour every `EventBus` adapter must have. Each adapter module
//! instantiates it with `event_bus_suite!(make)`, where
//! `make(retained_per_session).await` returns `(Arc<dyn EventBus>, guard)`;
//! the guard cleans up whatever the bus created when the test ends. The
//! macro also runs the suite through a `FanoutBus` over the adapter.

use std::sync::Arc;

use csp_bus::{Error, EventBus, FanoutBus};
use csp_domain::SessionId;
use rand::Rng;
use tokio::sync::watch;

use crate::helpers::{event, expect_end, expect_events, next, publish_range};

/// Retention for tests that must not run into it.
pub(crate) const ROOMY: usize = 2048;

macro_rules! event_bus_suite {
    ($make:ident) => {
        $crate::suite::event_bus_suite!(@adapter $make);

        /// The same suite through a `FanoutBus` over this adapter.
        mod through_fanout {
            async fn make(
                retained_per_session: usize,
            ) -> (std::sync::Arc<dyn csp_bus::EventBus>, impl Sized) {
                let (upstream, guard) = super::$make(retained_per_session).await;
                (
                    $crate::suite::fanout(upstream, retained_per_session),
                    guard,
                )
            }

            $crate::suite::event_bus_suite!(@adapter make);
        }
    };
    (@adapter $make:ident) => {
        $crate::suite::event_bus_suite!(@tests $make,
            replays_everything_after_zero_then_continues_live,
            replays_from_the_middle,
            replays_nothing_after_the_latest_then_continues_live,
            subscriber_before_first_publish_gets_live_events,
            replays_one_session_from_interleaved_publishes,
            sessions_are_isolated,
            concurrent_subscribers_each_get_everything,
            subscribers_attaching_while_publishing_see_contiguous_runs,
            retried_publish_is_delivered_once,
            ping_succeeds,
            last_seq_is_the_highest_published,
        );

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn gap_when_the_retained_window_was_exceeded() {
            let (bus, _guard) = $make(10).await;
            $crate::suite::gap_when_the_retained_window_was_exceeded(bus, 10).await;
        }
    };
    (@tests $make:ident, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (bus, _guard) = $make($crate::suite::ROOMY).await;
                $crate::suite::$name(bus).await;
            }
        )*
    };
}
pub(crate) use event_bus_suite;

/// `upstream` behind a `FanoutBus` whose feeds keep as many events as the
/// upstream retains, so the suite's windows hold through both.
pub(crate) fn fanout(
    upstream: Arc<dyn EventBus>,
    retained_per_session: usize,
) -> Arc<dyn EventBus> {
    let config = csp_bus::fanout::Config {
        ring_per_session: retained_per_session,
        ..Default::default()
    };
    Arc::new(FanoutBus::new(upstream, config).unwrap())
}

pub(crate) async fn replays_everything_after_zero_then_continues_live(bus: Arc<dyn EventBus>) {
    let session = SessionId::new();
    publish_range(&*bus, session, 1..=20).await;
    let mut stream = bus.subscribe(session, 0).await.unwrap();
    expect_events(&mut stream, session, 1..=20).await;
    publish_range(&*bus, session, 21..=30).await;
    expect_events(&mut stream, session, 21..=30).await;
}

pub(crate) async fn replays_from_the_middle(bus: Arc<dyn EventBus>) {
    let session = SessionId::new();
    publish_range(&*bus, session, 1..=20).await;
    let mut stream = bus.subscribe(session, 7).await.unwrap();
    expect_events(&mut stream, session, 8..=20).await;
    publish_range(&*bus, session, 21..=22).await;
    expect_events(&mut stream, session, 21..=22).await;
}

pub(crate) async fn replays_nothing_after_the_latest_then_continues_live(bus: Arc<dyn EventBus>) {
    let session = SessionId::new();
    publish_range(&*bus, session, 1..=20).await;
    let mut stream = bus.subscribe(session, 20).await.unwrap();
    publish_range(&*bus, session, 21..=23).await;
    expect_events(&mut stream, session, 21..=23).await;
}

pub(crate) async fn subscriber_before_first_publish_gets_live_events(bus: Arc<dyn EventBus>) {
    let session = SessionId::new();
    let mut stream = bus.subscribe(session, 0).await.unwrap();
    publish_range(&*bus, session, 1..=5).await;
    expect_events(&mut stream, session, 1..=5).await;
}

/// Other sessions' events sit between this session's in a shared log; the
/// replay must still start exactly after `after_seq`, from every position.
pub(crate) async fn replays_one_session_from_interleaved_publishes(bus: Arc<dyn EventBus>) {
    let sessions = [SessionId::new(), SessionId::new(), SessionId::new()];
    let mut third = 0;
    for seq in 1..=40 {
        bus.publish(&event(sessions[0], seq)).await.unwrap();
        bus.publish(&event(sessions[1], seq)).await.unwrap();
        // Uneven interleaving: the third session publishes every other round.
        if seq % 2 == 0 {
            third += 1;
            bus.publish(&event(sessions[2], third)).await.unwrap();
        }
    }
    let target = sessions[0];
    for after_seq in [1, 2, 13, 20, 21, 38, 39] {
        let mut stream = bus.subscribe(target, after_seq).await.unwrap();
        expect_events(&mut stream, target, after_seq + 1..=40).await;
    }
    let mut stream = bus.subscribe(target, 40).await.unwrap();
    publish_range(&*bus, target, 41..=41).await;
    expect_events(&mut stream, target, 41..=41).await;
    let mut stream = bus.subscribe(sessions[2], 7).await.unwrap();
    expect_events(&mut stream, sessions[2], 8..=20).await;
}

pub(crate) async fn sessions_are_isolated(bus: Arc<dyn EventBus>) {
    let (a, b) = (SessionId::new(), SessionId::new());
    let mut stream_a = bus.subscribe(a, 0).await.unwrap();
    let mut stream_b = bus.subscribe(b, 0).await.unwrap();
    publish_range(&*bus, a, 1..=3).await;
    publish_range(&*bus, b, 1..=5).await;
    publish_range(&*bus, a, 4..=4).await;
    // Had any of b's events leaked to a, it would come before a's seq 4.
    expect_events(&mut stream_a, a, 1..=4).await;
    expect_events(&mut stream_b, b, 1..=5).await;
    let mut replay_b = bus.subscribe(b, 0).await.unwrap();
    expect_events(&mut replay_b, b, 1..=5).await;
    publish_range(&*bus, b, 6..=6).await;
    expect_events(&mut replay_b, b, 6..=6).await;
}

pub(crate) async fn concurrent_subscribers_each_get_everything(bus: Arc<dyn EventBus>) {
    let session = SessionId::new();
    let first = bus.subscribe(session, 0).await.unwrap();
    let second = bus.subscribe(session, 0).await.unwrap();
    let readers = [first, second].map(|mut stream| {
        tokio::spawn(async move { expect_events(&mut stream, session, 1..=100).await })
    });
    publish_range(&*bus, session, 1..=100).await;
    for reader in readers {
        reader.await.unwrap();
    }
}

/// Subscribers attach at random moments of a running publisher, with
/// `after_seq` anywhere up to what was published so far: each must see
/// exactly `after_seq + 1 ..= last`, whatever it got from replay and what
/// from live delivery.
pub(crate) async fn subscribers_attaching_while_publishing_see_contiguous_runs(
    bus: Arc<dyn EventBus>,
) {
    const LAST: u64 = 500;
    const SUBSCRIBERS: usize = 12;
    let session = SessionId::new();
    let (published_tx, published) = watch::channel(0u64);
    // Decide every attach point up front: the rng is not Send.
    let plan: Vec<(u64, u64)> = {
        let mut rng = rand::rng();
        (0..SUBSCRIBERS)
            .map(|_| {
                let attach_at = rng.random_range(0..LAST);
                let after_seq = match rng.random_range(0..4) {
                    0 => attach_at,
                    1 => 0,
                    _ => rng.random_range(0..=attach_at),
                };
                (attach_at, after_seq)
            })
            .collect()
    };
    let mut readers = Vec::new();
    for (attach_at, after_seq) in plan {
        let bus = Arc::clone(&bus);
        let mut published = published.clone();
        readers.push(tokio::spawn(async move {
            published.wait_for(|n| *n >= attach_at).await.unwrap();
            let mut stream = bus.subscribe(session, after_seq).await.unwrap();
            for want in after_seq + 1..=LAST {
                let got = next(&mut stream).await.unwrap_or_else(|err| {
                    panic!("attached at {attach_at} after {after_seq}: {err}")
                });
                assert_eq!(
                    got.seq, want,
                    "attached at {attach_at} after {after_seq}: wrong seq"
                );
            }
        }));
    }
    let publisher = {
        let bus = Arc::clone(&bus);
        tokio::spawn(async move {
            for seq in 1..=LAST {
                bus.publish(&event(session, seq)).await.unwrap();
                published_tx.send_replace(seq);
                if seq % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    publisher.await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
}

pub(crate) async fn retried_publish_is_delivered_once(bus: Arc<dyn EventBus>) {
    let session = SessionId::new();
    let mut live = bus.subscribe(session, 0).await.unwrap();
    for seq in [1, 2, 2, 3, 3, 3, 4] {
        bus.publish(&event(session, seq)).await.unwrap();
    }
    expect_events(&mut live, session, 1..=4).await;
    let mut replay = bus.subscribe(session, 0).await.unwrap();
    expect_events(&mut replay, session, 1..=4).await;
    // Had a duplicate been stored, it would come before seq 5.
    publish_range(&*bus, session, 5..=5).await;
    expect_events(&mut live, session, 5..=5).await;
    expect_events(&mut replay, session, 5..=5).await;
}

pub(crate) async fn ping_succeeds(bus: Arc<dyn EventBus>) {
    bus.ping().await.unwrap();
}

pub(crate) async fn last_seq_is_the_highest_published(bus: Arc<dyn EventBus>) {
    let (a, b) = (SessionId::new(), SessionId::new());
    assert_eq!(bus.last_seq(a).await.unwrap(), 0);
    publish_range(&*bus, a, 1..=7).await;
    assert_eq!(bus.last_seq(a).await.unwrap(), 7);
    // Retries of the latest and of an earlier event change nothing.
    publish_range(&*bus, a, 7..=7).await;
    publish_range(&*bus, a, 3..=3).await;
    assert_eq!(bus.last_seq(a).await.unwrap(), 7);

    assert_eq!(bus.last_seq(b).await.unwrap(), 0);
    publish_range(&*bus, b, 1..=2).await;
    assert_eq!(bus.last_seq(b).await.unwrap(), 2);
    assert_eq!(bus.last_seq(a).await.unwrap(), 7);
    // Numbering continues after it, as a resumed session's does.
    let mut stream = bus.subscribe(a, 7).await.unwrap();
    publish_range(&*bus, a, 8..=8).await;
    expect_events(&mut stream, a, 8..=8).await;
    assert_eq!(bus.last_seq(a).await.unwrap(), 8);
}

/// With `retained` events kept per session and more published, subscribing
/// after a seq the window no longer holds yields `Gap` and ends; subscribing
/// right before the window replays it.
pub(crate) async fn gap_when_the_retained_window_was_exceeded(
    bus: Arc<dyn EventBus>,
    retained: u64,
) {
    let session = SessionId::new();
    let last = retained * 2 + 5;
    let first_available = last - retained + 1;
    publish_range(&*bus, session, 1..=last).await;
    // Events dropped from the window still count.
    assert_eq!(bus.last_seq(session).await.unwrap(), last);

    for after_seq in [0, 3, first_available - 2] {
        let mut stream = bus.subscribe(session, after_seq).await.unwrap();
        match next(&mut stream).await {
            Err(Error::Gap {
                session: s,
                after_seq: a,
                first_available: f,
            }) => {
                assert_eq!((s, a, f), (session, after_seq, first_available));
            }
            other => panic!("after {after_seq}: expected a gap, got {other:?}"),
        }
        expect_end(&mut stream).await;
    }

    let mut stream = bus.subscribe(session, first_available - 1).await.unwrap();
    expect_events(&mut stream, session, first_available..=last).await;
    publish_range(&*bus, session, last + 1..=last + 1).await;
    expect_events(&mut stream, session, last + 1..=last + 1).await;
}
