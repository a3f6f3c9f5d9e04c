//! `csp_circuit_breaker_state` as a recorder sees it, through a recorder of
//! this thread only (tests run in parallel; a global one would mix them).

use crate::helpers::Clock;
use crate::suite::open;
use csp_breaker::{Breaker, Config, Permit, STATE_GAUGE};
use csp_cache::MemoryCache;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keeps the last value of the state gauge and every gauge description.
struct StateRecorder {
    /// f64 bits, as `AtomicU64`'s `GaugeFn` stores them; NaN until set.
    state: Arc<AtomicU64>,
    described: Mutex<Vec<(String, String)>>,
}

impl StateRecorder {
    fn new() -> Self {
        Self {
            state: Arc::new(AtomicU64::new(f64::NAN.to_bits())),
            described: Mutex::new(Vec::new()),
        }
    }

    fn state(&self) -> f64 {
        f64::from_bits(self.state.load(Ordering::SeqCst))
    }
}

impl Recorder for StateRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        let entry = (key.as_str().to_owned(), description.into_owned());
        self.described.lock().unwrap().push(entry);
    }
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        // No labels: the name alone must identify the gauge.
        if key.name() == STATE_GAUGE && key.labels().next().is_none() {
            Gauge::from_arc(self.state.clone())
        } else {
            Gauge::noop()
        }
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test(start_paused = true)]
async fn the_gauge_follows_every_transition() {
    let recorder = StateRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let clock = Clock::new();
    let breaker = clock.breaker(Config::default(), Arc::new(MemoryCache::new()));

    breaker.state().await;
    assert_eq!(recorder.state(), 0.0);
    // Opening sets it by itself, without a call to state().
    open_quietly(&breaker).await;
    assert_eq!(recorder.state(), 2.0);

    clock.advance(Duration::from_secs(60));
    breaker.state().await;
    assert_eq!(recorder.state(), 1.0);
    let probe = breaker.permit().await;
    assert_eq!(probe, Permit::Probe);
    assert_eq!(recorder.state(), 1.0);

    breaker.on_failure().await;
    assert_eq!(recorder.state(), 2.0);
    clock.advance(Duration::from_secs(60));
    let probe = breaker.permit().await;
    breaker.on_success(probe).await;
    assert_eq!(recorder.state(), 0.0);

    open(&breaker).await;
    assert_eq!(recorder.state(), 2.0);
}

/// Five failures, and no other call that could set the gauge.
async fn open_quietly(breaker: &Breaker) {
    for _ in 0..5 {
        breaker.on_failure().await;
    }
}

#[test]
fn describe_metrics_describes_the_gauge() {
    let recorder = StateRecorder::new();
    metrics::with_local_recorder(&recorder, Breaker::describe_metrics);
    let described = recorder.described.lock().unwrap();
    assert_eq!(described.len(), 1, "{described:?}");
    assert_eq!(described[0].0, STATE_GAUGE);
    assert!(described[0].1.contains("0 closed, 1 half-open, 2 open"));
}
