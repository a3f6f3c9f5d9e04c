//! What `FanoutBus` adds over the shared suite (which `event_bus_suite!`
//! runs through it over every adapter): one upstream subscription per
//! session, direct replay for what a feed no longer holds, lingering, and
//! upstream failures reaching every subscriber.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use csp_bus::fanout::Config;
use csp_bus::{Error, EventBus, EventStream, FanoutBus, InProcessBus};
use csp_domain::{SessionEvent, SessionId};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::helpers::{event, expect_end, expect_events, next, publish_range};

/// Counts the subscriptions made upstream and how many are still open.
struct Counting {
    upstream: Arc<dyn EventBus>,
    subscribes: AtomicUsize,
    open: Arc<AtomicUsize>,
}

impl Counting {
    fn over(upstream: impl EventBus) -> Arc<Self> {
        Arc::new(Self {
            upstream: Arc::new(upstream),
            subscribes: AtomicUsize::new(0),
            open: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn in_process(replay_per_session: usize) -> Arc<Self> {
        Self::over(
            InProcessBus::new(csp_bus::inprocess::Config {
                replay_per_session,
                ..Default::default()
            })
            .unwrap(),
        )
    }

    fn subscribes(&self) -> usize {
        self.subscribes.load(Ordering::SeqCst)
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl EventBus for Counting {
    async fn publish(&self, event: &SessionEvent) -> Result<(), Error> {
        self.upstream.publish(event).await
    }

    async fn subscribe(&self, session: SessionId, after_seq: u64) -> Result<EventStream, Error> {
        self.subscribes.fetch_add(1, Ordering::SeqCst);
        let stream = self.upstream.subscribe(session, after_seq).await?;
        self.open.fetch_add(1, Ordering::SeqCst);
        let open = Open(Arc::clone(&self.open));
        Ok(stream
            .map(move |item| {
                let _held = &open;
                item
            })
            .boxed())
    }

    async fn ping(&self) -> Result<(), Error> {
        self.upstream.ping().await
    }

    async fn last_seq(&self, session: SessionId) -> Result<u64, Error> {
        self.upstream.last_seq(session).await
    }
}

/// An upstream whose subscriptions the test feeds by hand.
#[derive(Default)]
struct Scripted {
    /// What each next subscribe returns.
    next: Mutex<VecDeque<Result<Items, Error>>>,
    subscribes: AtomicUsize,
}

type Feed = mpsc::UnboundedSender<Result<SessionEvent, Error>>;
type Items = mpsc::UnboundedReceiver<Result<SessionEvent, Error>>;

impl Scripted {
    /// The next subscribe succeeds; what is sent on the returned sender is
    /// its stream, which ends when the sender is dropped.
    fn expect_subscribe(&self) -> Feed {
        let (tx, rx) = mpsc::unbounded_channel();
        self.next.lock().unwrap().push_back(Ok(rx));
        tx
    }

    fn fail_next_subscribe(&self, error: Error) {
        self.next.lock().unwrap().push_back(Err(error));
    }

    fn subscribes(&self) -> usize {
        self.subscribes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventBus for Scripted {
    async fn publish(&self, _event: &SessionEvent) -> Result<(), Error> {
        Ok(())
    }

    async fn subscribe(&self, _session: SessionId, _after_seq: u64) -> Result<EventStream, Error> {
        self.subscribes.fetch_add(1, Ordering::SeqCst);
        let next = self.next.lock().unwrap().pop_front();
        let rx = next.unwrap_or_else(|| {
            Err(Error::Unavailable {
                reason: "the test did not expect this subscribe".into(),
            })
        })?;
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed())
    }

    async fn ping(&self) -> Result<(), Error> {
        Err(Error::Unavailable {
            reason: "scripted ping".into(),
        })
    }

    async fn last_seq(&self, session: SessionId) -> Result<u64, Error> {
        Err(Error::Read {
            session,
            source: "scripted last_seq".into(),
        })
    }
}

fn fanout(upstream: Arc<dyn EventBus>, ring_per_session: usize) -> FanoutBus {
    FanoutBus::new(
        upstream,
        Config {
            ring_per_session,
            ..Config::default()
        },
    )
    .unwrap()
}

fn subscribe_error(session: SessionId, reason: &str) -> Error {
    Error::Subscribe {
        session,
        source: reason.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_of_a_session_share_one_upstream_subscription() {
    let upstream = Counting::in_process(2048);
    let bus = fanout(upstream.clone(), 2048);
    let (session, other) = (SessionId::new(), SessionId::new());

    // Subscribing all at once: only the first starts a feed.
    let mut streams = futures::future::join_all((0..16).map(|_| bus.subscribe(session, 0)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    publish_range(&bus, session, 1..=20).await;
    for stream in &mut streams {
        expect_events(stream, session, 1..=20).await;
    }
    // Reattaching within the feed's window, or at its edge, shares it too.
    for after_seq in [0, 7, 20] {
        let mut stream = bus.subscribe(session, after_seq).await.unwrap();
        expect_events(&mut stream, session, after_seq + 1..=20).await;
        streams.push(stream);
    }
    publish_range(&bus, session, 21..=25).await;
    for stream in &mut streams {
        expect_events(stream, session, 21..=25).await;
    }
    assert_eq!(upstream.subscribes(), 1);
    assert_eq!(upstream.open(), 1);

    let mut elsewhere = bus.subscribe(other, 0).await.unwrap();
    publish_range(&bus, other, 1..=1).await;
    expect_events(&mut elsewhere, other, 1..=1).await;
    assert_eq!(upstream.subscribes(), 2, "one per session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_older_than_the_feed_holds_is_subscribed_directly() {
    let upstream = Counting::in_process(100);
    let bus = fanout(upstream.clone(), 10);
    let session = SessionId::new();
    let mut first = bus.subscribe(session, 0).await.unwrap();
    // One at a time, so that `first` keeps up with the feed's ring of 10.
    for seq in 1..=30 {
        publish_range(&bus, session, seq..=seq).await;
        expect_events(&mut first, session, seq..=seq).await;
    }
    // The feed now holds 21..=30.

    let mut from_feed = bus.subscribe(session, 20).await.unwrap();
    expect_events(&mut from_feed, session, 21..=30).await;
    assert_eq!(upstream.subscribes(), 1);

    let mut deep = bus.subscribe(session, 5).await.unwrap();
    assert_eq!(upstream.subscribes(), 2, "seq 6 is only upstream");
    expect_events(&mut deep, session, 6..=30).await;
    publish_range(&bus, session, 31..=32).await;
    for stream in [&mut first, &mut from_feed, &mut deep] {
        expect_events(stream, session, 31..=32).await;
    }
    // The direct subscription is the caller's own; the feed stays shared.
    drop(deep);
    assert_eq!(upstream.open(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_behind_the_feed_gets_lagged_while_others_continue() {
    let upstream = Counting::in_process(100);
    let bus = fanout(upstream.clone(), 10);
    let session = SessionId::new();
    let mut slow = bus.subscribe(session, 0).await.unwrap();
    publish_range(&bus, session, 1..=1).await;
    expect_events(&mut slow, session, 1..=1).await;
    publish_range(&bus, session, 2..=25).await;
    // Once this one has seq 25, the feed has appended everything.
    let mut at_the_edge = bus.subscribe(session, 24).await.unwrap();
    expect_events(&mut at_the_edge, session, 25..=25).await;

    match next(&mut slow).await {
        Err(Error::Lagged {
            session: s,
            last_delivered,
            first_available,
        }) => assert_eq!((s, last_delivered, first_available), (session, 1, 16)),
        other => panic!("expected lagged, got {other:?}"),
    }
    expect_end(&mut slow).await;
    publish_range(&bus, session, 26..=26).await;
    expect_events(&mut at_the_edge, session, 26..=26).await;
    assert_eq!(upstream.subscribes(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_idle_feed_lingers_then_lets_go_of_upstream() {
    const LINGER: Duration = Duration::from_secs(30);
    let upstream = Counting::in_process(100);
    let bus = FanoutBus::new(
        upstream.clone(),
        Config {
            ring_per_session: 100,
            linger: LINGER,
        },
    )
    .unwrap();
    let session = SessionId::new();
    let mut first = bus.subscribe(session, 0).await.unwrap();
    publish_range(&bus, session, 1..=3).await;
    expect_events(&mut first, session, 1..=3).await;
    drop(first);

    tokio::time::sleep(LINGER - Duration::from_secs(1)).await;
    assert_eq!(upstream.open(), 1, "let go before the linger was over");
    // A reconnect within the linger reuses the feed and restarts the linger.
    let mut second = bus.subscribe(session, 3).await.unwrap();
    publish_range(&bus, session, 4..=4).await;
    expect_events(&mut second, session, 4..=4).await;
    drop(second);
    tokio::time::sleep(LINGER - Duration::from_secs(1)).await;
    assert_eq!(
        upstream.open(),
        1,
        "the reconnect did not cancel the teardown"
    );
    assert_eq!(upstream.subscribes(), 1);

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        upstream.open(),
        0,
        "the idle feed kept its upstream subscription"
    );
    let mut third = bus.subscribe(session, 4).await.unwrap();
    assert_eq!(upstream.subscribes(), 2);
    publish_range(&bus, session, 5..=5).await;
    expect_events(&mut third, session, 5..=5).await;
}

#[tokio::test]
async fn an_upstream_failure_reaches_every_subscriber_and_the_next_subscribe_starts_afresh() {
    let upstream = Arc::new(Scripted::default());
    let bus = fanout(upstream.clone(), 100);
    let session = SessionId::new();
    let feed = upstream.expect_subscribe();
    let mut streams = vec![
        bus.subscribe(session, 0).await.unwrap(),
        bus.subscribe(session, 0).await.unwrap(),
    ];
    feed.send(Ok(event(session, 1))).unwrap();
    feed.send(Ok(event(session, 2))).unwrap();
    streams.push(bus.subscribe(session, 2).await.unwrap());
    feed.send(Err(subscribe_error(session, "connection reset by peer")))
        .unwrap();

    for (i, stream) in streams.iter_mut().enumerate() {
        if i < 2 {
            expect_events(stream, session, 1..=2).await;
        }
        match next(stream).await {
            Err(err @ Error::Subscribe { .. }) => {
                assert!(
                    err.to_string().contains("connection reset by peer"),
                    "{err}"
                )
            }
            other => panic!("subscriber {i}: expected the upstream error, got {other:?}"),
        }
        expect_end(stream).await;
    }
    assert_eq!(upstream.subscribes(), 1);

    let feed = upstream.expect_subscribe();
    let mut fresh = bus.subscribe(session, 2).await.unwrap();
    assert_eq!(upstream.subscribes(), 2);
    feed.send(Ok(event(session, 3))).unwrap();
    expect_events(&mut fresh, session, 3..=3).await;
}

#[tokio::test]
async fn the_end_of_the_upstream_stream_reaches_every_subscriber() {
    let upstream = Arc::new(Scripted::default());
    let bus = fanout(upstream.clone(), 100);
    let session = SessionId::new();
    let feed = upstream.expect_subscribe();
    let mut streams = [
        bus.subscribe(session, 0).await.unwrap(),
        bus.subscribe(session, 0).await.unwrap(),
    ];
    feed.send(Ok(event(session, 1))).unwrap();
    drop(feed);
    for stream in &mut streams {
        expect_events(stream, session, 1..=1).await;
        let err = next(stream).await.unwrap_err();
        assert!(matches!(err, Error::Subscribe { .. }), "{err:?}");
        assert!(err.to_string().contains("ended"), "{err}");
        expect_end(stream).await;
    }
}

/// An upstream `Lagged` or `Gap` is restated from each subscriber's own
/// position, so it still says what that subscriber received.
#[tokio::test]
async fn an_upstream_hole_is_restated_per_subscriber() {
    let upstream = Arc::new(Scripted::default());
    let bus = fanout(upstream.clone(), 100);
    let session = SessionId::new();
    let feed = upstream.expect_subscribe();
    let mut from_start = bus.subscribe(session, 0).await.unwrap();
    feed.send(Ok(event(session, 1))).unwrap();
    feed.send(Ok(event(session, 2))).unwrap();
    expect_events(&mut from_start, session, 1..=2).await;
    let mut at_the_edge = bus.subscribe(session, 2).await.unwrap();
    feed.send(Err(Error::Lagged {
        session,
        last_delivered: 2,
        first_available: 9,
    }))
    .unwrap();

    match next(&mut from_start).await {
        Err(Error::Lagged {
            last_delivered: 2,
            first_available: 9,
            ..
        }) => {}
        other => panic!("expected lagged, got {other:?}"),
    }
    match next(&mut at_the_edge).await {
        Err(Error::Gap {
            after_seq: 2,
            first_available: 9,
            ..
        }) => {}
        other => panic!("expected a gap, got {other:?}"),
    }
    expect_end(&mut from_start).await;
    expect_end(&mut at_the_edge).await;
}

#[tokio::test]
async fn a_failed_upstream_subscribe_is_returned_and_the_next_one_retries() {
    let upstream = Arc::new(Scripted::default());
    let bus = fanout(upstream.clone(), 100);
    let session = SessionId::new();
    upstream.fail_next_subscribe(subscribe_error(session, "no responders"));
    let err = bus.subscribe(session, 0).await.err().unwrap();
    assert!(
        matches!(err, Error::Subscribe { .. }) && err.to_string().contains("no responders"),
        "{err}"
    );

    let feed = upstream.expect_subscribe();
    let mut stream = bus.subscribe(session, 0).await.unwrap();
    assert_eq!(upstream.subscribes(), 2);
    feed.send(Ok(event(session, 1))).unwrap();
    expect_events(&mut stream, session, 1..=1).await;
}

#[tokio::test]
async fn publish_ping_and_last_seq_go_to_the_upstream() {
    let inner = InProcessBus::new(Default::default()).unwrap();
    let bus = fanout(Arc::new(inner.clone()), 100);
    let session = SessionId::new();
    publish_range(&bus, session, 1..=2).await;
    let mut direct = inner.subscribe(session, 0).await.unwrap();
    expect_events(&mut direct, session, 1..=2).await;
    bus.ping().await.unwrap();
    // Published elsewhere, and no feed of this session runs here.
    publish_range(&inner, session, 3..=3).await;
    assert_eq!(bus.last_seq(session).await.unwrap(), 3);

    let failing = fanout(Arc::new(Scripted::default()), 100);
    let err = failing.ping().await.unwrap_err();
    assert!(err.to_string().contains("scripted ping"), "{err}");
    let err = failing.last_seq(session).await.unwrap_err();
    assert!(err.to_string().contains("scripted last_seq"), "{err}");
}
