//! Queued marks: a job's `queued_at`, written after its message was pushed,
//! off the request path. The intake's answer waits for one commit (the job
//! row: accepted means durable) and no longer for this second one; a
//! background task collects the ids and marks them in batches
//! (`mark_queued_many`, one statement a batch).
//!
//! A mark is bookkeeping for the sweeper, not a promise to anyone: a mark
//! that is late or never written only makes the sweeper push the job again
//! once it is `SETTLE` old (`outbox.rs`), which is harmless — the
//! message's id is the job id (the broker dedups it) and a worker skips a
//! job that is already final.

use crate::Clock;
use csp_store::EnhancementStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A batch is written once this many new ids wait…
pub(crate) const MAX_BATCH: usize = 256;
/// …or once the oldest waiting id has waited this long, whichever first.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Flushes an id may fail before it is dropped (and left to the sweeper).
const MAX_ATTEMPTS: u32 = 3;
/// Ids handed over but not yet taken by the batcher. Only a batcher far
/// behind (a store that hangs) fills it; a further id is then dropped, as
/// a batch that keeps failing is.
const CHANNEL_CAPACITY: usize = 16 * MAX_BATCH;

/// The publishing side: hands a pushed job's id over without waiting.
#[derive(Clone)]
pub(crate) struct Marks {
    tx: mpsc::Sender<Uuid>,
}

impl Marks {
    /// Queues the job's mark; never waits (see the module's comment for why
    /// a mark dropped here is harmless).
    pub(crate) fn mark(&self, job_id: Uuid) {
        match self.tx.try_send(job_id) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => tracing::warn!(
                job_id = %job_id, operation = "mark_queued", status = "dropped",
                "queued marks are backed up; the sweeper will push this job again"
            ),
            Err(TrySendError::Closed(_)) => tracing::debug!(
                job_id = %job_id, operation = "mark_queued", status = "dropped",
                "queued-marks batcher stopped; the sweeper will push this job again"
            ),
        }
    }
}

/// The background side: collects ids and writes them in batches until
/// stopped.
pub(crate) struct Batcher {
    rx: mpsc::Receiver<Uuid>,
    store: Arc<dyn EnhancementStore>,
    clock: Arc<dyn Clock>,
}

/// A connected pair: ids given to the [`Marks`] are written by the
/// [`Batcher`] once it runs.
pub(crate) fn channel(store: Arc<dyn EnhancementStore>, clock: Arc<dyn Clock>) -> (Marks, Batcher) {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    (Marks { tx }, Batcher { rx, store, clock })
}

/// Ids waiting for a flush.
#[derive(Default)]
struct Pending {
    /// Each id with the flushes it has failed.
    ids: Vec<(Uuid, u32)>,
    /// Ids received since the last flush (retried ones do not count).
    fresh: usize,
    /// When the next flush is due; `None` while nothing waits.
    due: Option<Instant>,
}

impl Pending {
    fn add(&mut self, id: Uuid) {
        self.ids.push((id, 0));
        self.fresh += 1;
        self.due.get_or_insert_with(|| Instant::now() + FLUSH_EVERY);
    }
}

impl Batcher {
    /// Writes batches until `shutdown` (or until every [`Marks`] is gone),
    /// then writes what is still waiting, once.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        let mut pending = Pending::default();
        loop {
            let due = pending.due;
            let deadline = async move {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                received = self.rx.recv() => match received {
                    Some(id) => {
                        pending.add(id);
                        if pending.fresh >= MAX_BATCH {
                            self.flush(&mut pending).await;
                        }
                    }
                    None => break,
                },
                _ = deadline => self.flush(&mut pending).await,
            }
        }
        // Whatever was handed over before the stop is written too.
        self.rx.close();
        while let Ok(id) = self.rx.try_recv() {
            pending.add(id);
        }
        self.flush(&mut pending).await;
        if !pending.ids.is_empty() {
            tracing::warn!(
                jobs = pending.ids.len(),
                operation = "mark_queued",
                status = "dropped",
                "stopping with jobs not marked queued; the sweeper will push them again"
            );
        }
    }

    /// Marks every waiting id in one call. On failure the ids wait for the
    /// next flush, each at most [`MAX_ATTEMPTS`] flushes.
    async fn flush(&self, pending: &mut Pending) {
        pending.fresh = 0;
        pending.due = None;
        if pending.ids.is_empty() {
            return;
        }
        let ids: Vec<Uuid> = pending.ids.iter().map(|(id, _)| *id).collect();
        let error = match self.store.mark_queued_many(&ids, self.clock.now()).await {
            Ok(marked) => {
                pending.ids.clear();
                tracing::debug!(
                    jobs = ids.len(),
                    marked,
                    operation = "mark_queued",
                    "jobs marked queued"
                );
                return;
            }
            Err(e) => e,
        };
        for (_, failed) in &mut pending.ids {
            *failed += 1;
        }
        pending.ids.retain(|(_, failed)| *failed < MAX_ATTEMPTS);
        let dropped = ids.len() - pending.ids.len();
        if dropped > 0 {
            // Their jobs stay unmarked: the sweeper pushes them again after
            // SETTLE, which is harmless (same message id; workers skip a
            // final job).
            tracing::warn!(jobs = dropped, error = %error, operation = "mark_queued", status = "dropped",
                "gave up marking jobs queued; the sweeper will push them again");
        }
        if !pending.ids.is_empty() {
            tracing::warn!(jobs = pending.ids.len(), error = %error, operation = "mark_queued",
                status = "retrying", "cannot mark jobs queued; the next flush retries");
            pending.due = Some(Instant::now() + FLUSH_EVERY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use csp_domain::EnhancementStatus;
    use csp_store::{
        Claim, EnhancementQuery, EnhancementRecord, Error, NewEnhancement, Outcome, Recorded,
    };
    use std::sync::atomic::{AtomicU32, Ordering};
    use time::OffsetDateTime;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-02 03:04:05 UTC);

    struct FixedClock;

    impl Clock for FixedClock {
        fn now(&self) -> OffsetDateTime {
            NOW
        }
    }

    /// Reports every `mark_queued_many` call; fails the first `failures`.
    struct Fake {
        calls: mpsc::UnboundedSender<Vec<Uuid>>,
        failures: AtomicU32,
    }

    #[async_trait]
    impl EnhancementStore for Fake {
        async fn mark_queued_many(
            &self,
            job_ids: &[Uuid],
            at: OffsetDateTime,
        ) -> Result<u64, Error> {
            assert_eq!(at, NOW, "marked at the service clock's now");
            self.calls.send(job_ids.to_vec()).unwrap();
            let failed = self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failed {
                return Err(Error::Aborted("the fake store is down".into()));
            }
            Ok(job_ids.len() as u64)
        }
        async fn record_enhancement(&self, _: NewEnhancement) -> Result<Recorded, Error> {
            unreachable!()
        }
        async fn unqueued_enhancements(
            &self,
            _: OffsetDateTime,
            _: OffsetDateTime,
            _: u32,
        ) -> Result<Vec<EnhancementRecord>, Error> {
            unreachable!()
        }
        async fn start_attempt(
            &self,
            _: Uuid,
            _: OffsetDateTime,
            _: std::time::Duration,
        ) -> Result<Claim, Error> {
            unreachable!()
        }
        async fn release_attempt(&self, _: Uuid, _: u32) -> Result<bool, Error> {
            unreachable!()
        }
        async fn finish_enhancement(
            &self,
            _: Uuid,
            _: Outcome,
            _: OffsetDateTime,
        ) -> Result<bool, Error> {
            unreachable!()
        }
        async fn enhancement(&self, _: Uuid) -> Result<Option<EnhancementRecord>, Error> {
            unreachable!()
        }
        async fn enhancements_page(
            &self,
            _: &EnhancementQuery,
        ) -> Result<(Vec<EnhancementRecord>, u64), Error> {
            unreachable!()
        }
        async fn enhancement_counts(&self) -> Result<Vec<(EnhancementStatus, u64)>, Error> {
            unreachable!()
        }
        async fn processing_paused(&self) -> Result<bool, Error> {
            unreachable!()
        }
        async fn set_processing_paused(&self, _: bool) -> Result<(), Error> {
            unreachable!()
        }
        async fn clear_pending_enhancements(&self, _: OffsetDateTime) -> Result<u64, Error> {
            unreachable!()
        }
        async fn retry_enhancement(
            &self,
            _: Uuid,
            _: OffsetDateTime,
        ) -> Result<Option<EnhancementRecord>, Error> {
            unreachable!()
        }
        async fn enhancements_after(
            &self,
            _: &EnhancementQuery,
            _: Option<csp_store::EnhancementCursor>,
            _: u32,
        ) -> Result<Vec<EnhancementRecord>, Error> {
            unreachable!()
        }
    }

    struct Running {
        marks: Marks,
        calls: mpsc::UnboundedReceiver<Vec<Uuid>>,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<()>,
        started: Instant,
    }

    /// A batcher on a store that fails its first `failures` calls.
    fn start(failures: u32) -> Running {
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let store = Arc::new(Fake {
            calls: calls_tx,
            failures: AtomicU32::new(failures),
        });
        let (marks, batcher) = channel(store, Arc::new(FixedClock));
        let stop = CancellationToken::new();
        let task = tokio::spawn(batcher.run(stop.clone()));
        Running {
            marks,
            calls,
            stop,
            task,
            started: Instant::now(),
        }
    }

    impl Running {
        fn mark(&self, n: usize) -> Vec<Uuid> {
            let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
            for id in &ids {
                self.marks.mark(*id);
            }
            ids
        }

        /// The next call and how long after the start it came.
        async fn next_call(&mut self) -> (Vec<Uuid>, Duration) {
            let ids = self.calls.recv().await.expect("a call");
            (ids, self.started.elapsed())
        }

        /// Stops the batcher and waits until it has.
        async fn stop(&mut self) {
            self.stop.cancel();
            (&mut self.task).await.unwrap();
        }

        /// True if no call comes within `wait`.
        async fn quiet_for(&mut self, wait: Duration) -> bool {
            tokio::time::timeout(wait, self.calls.recv()).await.is_err()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_is_written_at_once() {
        let mut r = start(0);
        let ids = r.mark(MAX_BATCH + 1);
        let (batch, after) = r.next_call().await;
        assert_eq!(batch, ids[..MAX_BATCH]);
        assert_eq!(after, Duration::ZERO, "no wait for the timer");
        // The one left over waits for the timer.
        let (rest, after) = r.next_call().await;
        assert_eq!(rest, ids[MAX_BATCH..]);
        assert_eq!(after, FLUSH_EVERY);
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_batch_is_written_when_its_first_id_has_waited_long_enough() {
        let mut r = start(0);
        let first = r.mark(2);
        tokio::time::sleep(FLUSH_EVERY / 2).await;
        let second = r.mark(1);
        let (batch, after) = r.next_call().await;
        assert_eq!(batch, [first, second].concat());
        assert_eq!(after, FLUSH_EVERY);
        // Idle: no empty writes.
        assert!(r.quiet_for(10 * FLUSH_EVERY).await);
        let third = r.mark(1);
        let (batch, after) = r.next_call().await;
        assert_eq!(batch, third);
        assert_eq!(after, 12 * FLUSH_EVERY);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_writes_what_is_waiting() {
        let mut r = start(0);
        let ids = r.mark(5);
        r.stop().await;
        let (batch, after) = r.next_call().await;
        assert_eq!(batch, ids);
        assert_eq!(after, Duration::ZERO, "no wait for the timer");
        assert!(r.calls.recv().await.is_none(), "one call, then stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_is_retried_on_the_next_flush() {
        let mut r = start(1);
        let first = r.mark(2);
        let (batch, after) = r.next_call().await;
        assert_eq!((batch, after), (first.clone(), FLUSH_EVERY));
        let second = r.mark(1);
        let (batch, after) = r.next_call().await;
        assert_eq!(batch, [first, second].concat());
        assert_eq!(after, 2 * FLUSH_EVERY);
        assert!(r.quiet_for(10 * FLUSH_EVERY).await, "written: not again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_that_keeps_failing_is_given_up() {
        let mut r = start(u32::MAX);
        let lost = r.mark(3);
        for attempt in 1..=MAX_ATTEMPTS {
            let (batch, after) = r.next_call().await;
            assert_eq!(batch, lost, "attempt {attempt}");
            assert_eq!(after, FLUSH_EVERY * attempt);
        }
        assert!(r.quiet_for(10 * FLUSH_EVERY).await, "dropped");
        // Later ids are still written, without the dropped ones.
        let later = r.mark(1);
        assert_eq!(r.next_call().await.0, later);
        // And on shutdown, one more try for what waits, then nothing.
        r.stop().await;
        assert_eq!(r.next_call().await.0, later);
        assert!(r.calls.recv().await.is_none());
    }
}
