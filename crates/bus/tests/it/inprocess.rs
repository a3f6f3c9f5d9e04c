use std::sync::Arc;

use csp_bus::inprocess::Config;
use csp_bus::{Error, EventBus, InProcessBus};
use csp_domain::SessionId;

use crate::helpers::{expect_end, expect_events, next, publish_range};

async fn make(retained_per_session: usize) -> (Arc<dyn EventBus>, ()) {
    let bus = InProcessBus::new(Config {
        replay_per_session: retained_per_session,
        ..Config::default()
    })
    .unwrap();
    (Arc::new(bus), ())
}

crate::suite::event_bus_suite!(make);

fn bus(replay_per_session: usize, max_sessions: usize) -> InProcessBus {
    InProcessBus::new(Config {
        replay_per_session,
        max_sessions,
    })
    .unwrap()
}

#[tokio::test]
async fn slow_subscriber_catches_up_from_the_ring() {
    let bus = bus(10, 16);
    let session = SessionId::new();
    let mut stream = bus.subscribe(session, 0).await.unwrap();
    publish_range(&bus, session, 1..=1).await;
    expect_events(&mut stream, session, 1..=1).await;
    // Nine events published while the subscriber reads nothing: the ring
    // (10) still holds them all.
    publish_range(&bus, session, 2..=10).await;
    expect_events(&mut stream, session, 2..=10).await;
}

#[tokio::test]
async fn subscriber_behind_the_ring_gets_lagged_then_ends() {
    let bus = bus(10, 16);
    let session = SessionId::new();
    let mut stream = bus.subscribe(session, 0).await.unwrap();
    publish_range(&bus, session, 1..=1).await;
    expect_events(&mut stream, session, 1..=1).await;
    publish_range(&bus, session, 2..=25).await;
    match next(&mut stream).await {
        Err(Error::Lagged {
            session: s,
            last_delivered,
            first_available,
        }) => assert_eq!((s, last_delivered, first_available), (session, 1, 16)),
        other => panic!("expected lagged, got {other:?}"),
    }
    expect_end(&mut stream).await;
}

#[tokio::test]
async fn least_recently_published_session_is_evicted_first() {
    let bus = bus(10, 2);
    let (a, b, c) = (SessionId::new(), SessionId::new(), SessionId::new());
    publish_range(&bus, a, 1..=1).await;
    publish_range(&bus, b, 1..=1).await;
    publish_range(&bus, a, 2..=2).await;
    // Third session: b was published to least recently, so b goes.
    publish_range(&bus, c, 1..=1).await;

    let mut replay_a = bus.subscribe(a, 0).await.unwrap();
    expect_events(&mut replay_a, a, 1..=2).await;
    let mut replay_c = bus.subscribe(c, 0).await.unwrap();
    expect_events(&mut replay_c, c, 1..=1).await;

    // b's first event is gone: the next one reveals the gap.
    let mut replay_b = bus.subscribe(b, 0).await.unwrap();
    publish_range(&bus, b, 2..=2).await;
    match next(&mut replay_b).await {
        Err(Error::Gap {
            after_seq: 0,
            first_available: 2,
            ..
        }) => {}
        other => panic!("expected a gap, got {other:?}"),
    }
}

#[tokio::test]
async fn eviction_keeps_live_subscribers_attached() {
    let bus = bus(10, 1);
    let (a, b) = (SessionId::new(), SessionId::new());
    let mut stream = bus.subscribe(a, 0).await.unwrap();
    publish_range(&bus, a, 1..=1).await;
    expect_events(&mut stream, a, 1..=1).await;
    // b evicts a's retained events, but a's subscriber must keep receiving.
    publish_range(&bus, b, 1..=1).await;
    publish_range(&bus, a, 2..=3).await;
    expect_events(&mut stream, a, 2..=3).await;
}

#[tokio::test]
async fn a_retry_of_an_event_the_ring_dropped_is_still_ignored() {
    let bus = bus(4, 16);
    let a = SessionId::new();
    let mut stream = bus.subscribe(a, 0).await.unwrap();
    for seq in 1..=6 {
        publish_range(&bus, a, seq..=seq).await;
        expect_events(&mut stream, a, seq..=seq).await;
    }
    // Seq 2 again, long after the ring let go of it.
    publish_range(&bus, a, 2..=2).await;
    publish_range(&bus, a, 7..=7).await;
    expect_events(&mut stream, a, 7..=7).await;
    let mut replay = bus.subscribe(a, 3).await.unwrap();
    expect_events(&mut replay, a, 4..=7).await;
}

#[test]
fn unusable_limits_are_rejected() {
    for config in [
        Config {
            replay_per_session: 0,
            max_sessions: 1,
        },
        Config {
            replay_per_session: 1,
            max_sessions: 0,
        },
    ] {
        assert!(matches!(InProcessBus::new(config), Err(Error::Config(_))));
    }
}

#[tokio::test]
async fn last_seq_is_the_retry_watermark_while_the_bus_knows_the_session() {
    let bus = bus(4, 1);
    let (watched, unwatched, other) = (SessionId::new(), SessionId::new(), SessionId::new());
    let _subscriber = bus.subscribe(watched, 0).await.unwrap();
    publish_range(&bus, watched, 1..=6).await;
    // The ring holds 3..=6, but 1 and 2 would still be dropped as retries.
    assert_eq!(bus.last_seq(watched).await.unwrap(), 6);
    publish_range(&bus, unwatched, 1..=2).await;
    // Evicted by that: the watched session keeps its watermark (its
    // subscriber holds the entry), so a publish of 6 is still a retry...
    assert_eq!(bus.last_seq(watched).await.unwrap(), 6);
    publish_range(&bus, other, 1..=1).await;
    // ...while the unwatched one is forgotten entirely, retries included.
    assert_eq!(bus.last_seq(unwatched).await.unwrap(), 0);
}
