//! Record, then publish: the job row commits first, the queue message
//! follows, and the sweeper publishes what was recorded but never (or long
//! ago and still pending) published — the transactional-outbox pattern. The
//! store is the source of truth; the queue only carries a job's id, so a
//! message pushed twice is harmless (the worker starts an attempt only on a
//! job that is not final and that no other attempt holds, and posts at most
//! one note per job).
//!
//! The intake's path has one commit, the job row's. After its push, the
//! job's `queued_at` (the sweeper's bookkeeping, nobody's promise) is handed
//! to the queued-marks batcher (`marks.rs`), which writes it within
//! [`FLUSH_EVERY`] in one statement per batch; a mark that is late or lost
//! only lets the sweeper push the job once more. The sweeper marks its own
//! pushes directly, one statement per pass.
//!
//! Every push goes to the topic of the job's tenant
//! ([`csp_domain::EnhanceQueue::of`]): a tenant with a queue of its own
//! (`dedicated_queue`) has its jobs taken only by its own workers. The
//! intake knows the tenant's flag from the configuration it verified the
//! webhook with; a retry and the sweeper read it from the store (once per
//! tenant per pass), so a job pushed again after the flag changed goes to
//! the tenant's new queue.

use crate::Clock;
use crate::marks::{FLUSH_EVERY, Marks};
use csp_bus::Queue;
use csp_domain::{EnhanceJob, EnhanceQueue, EnhancementStatus, TenantId};
use csp_store::{EnhancementRecord, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A job younger than this is left alone by the sweeper: its intake may
/// still be between the commit and the push (which has a 2 s deadline) or
/// its mark may still wait in the batcher (flushed every [`FLUSH_EVERY`],
/// 100 ms, plus a few retries), and pushing it twice would only cost a
/// duplicate message. Kept well above the flush interval, so that a job
/// the intake queued is marked long before the sweeper looks at it.
pub(crate) const SETTLE: Duration = Duration::from_secs(5);
const _: () = assert!(SETTLE.as_millis() >= 20 * FLUSH_EVERY.as_millis());
/// A job queued this long ago and still pending lost its message (a broker
/// that forgot it, or a worker group that never saw it): queue it again.
/// Long against the workers' ack deadline and retries, so a job that is
/// simply waiting behind others is rarely pushed twice (and a paused
/// pipeline gets one extra message per job every 10 minutes, no more).
pub(crate) const REQUEUE_AFTER: Duration = Duration::from_secs(10 * 60);
/// How long one push may take before the intake gives up on it and leaves
/// the job to the sweeper (the answer does not wait on a broker outage).
const PUSH_DEADLINE: Duration = Duration::from_secs(2);

pub(crate) struct Outbox {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) queue: Arc<dyn Queue>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Where the intake's pushes are marked queued, off its path.
    pub(crate) marks: Marks,
}

impl Outbox {
    /// Pushes the job's message to `queue` (its tenant's, as the caller
    /// read it) and hands its id to the queued-marks batcher: the caller
    /// does not wait for that write.
    pub(crate) async fn publish(
        &self,
        job: &EnhancementRecord,
        queue: &EnhanceQueue,
    ) -> Result<(), String> {
        self.push_as(job, queue, &job.job_id.to_string()).await?;
        self.marks.mark(job.job_id);
        Ok(())
    }

    /// An operator's retry of a failed job ([`Outbox::publish`] under a
    /// message id of its own, `<job>:retry:<uuid>`): the broker drops a
    /// repeated id for two minutes, and the job's first message (or a
    /// sweeper's push) used the job id.
    pub(crate) async fn publish_retry(&self, job: &EnhancementRecord) -> Result<(), String> {
        let id = format!("{}:retry:{}", job.job_id, uuid::Uuid::new_v4().simple());
        let queue = self.queue_of(&job.tenant_id).await?;
        self.push_as(job, &queue, &id).await?;
        self.marks.mark(job.job_id);
        Ok(())
    }

    /// The queue of `tenant`'s jobs as the store has it now. An unknown
    /// tenant's job goes to the shared queue, whose worker records why it
    /// cannot be done.
    async fn queue_of(&self, tenant: &TenantId) -> Result<EnhanceQueue, String> {
        let record = self
            .store
            .tenant(tenant)
            .await
            .map_err(|e| format!("cannot read the tenant's queue: {e}"))?;
        Ok(EnhanceQueue::of(
            tenant,
            record.is_some_and(|r| r.dedicated_queue),
        ))
    }

    async fn push_as(
        &self,
        job: &EnhancementRecord,
        queue: &EnhanceQueue,
        id: &str,
    ) -> Result<(), String> {
        let topic = queue.topic();
        let span = tracing::info_span!("job_queued", tenant_id = %job.tenant_id, ticket_id = %job.ticket_id,
            job_id = %job.job_id, correlation_id = %job.correlation_id, topic = %topic);
        async {
            let message = EnhanceJob {
                job_id: job.job_id,
                tenant_id: job.tenant_id.clone(),
                correlation_id: job.correlation_id.clone(),
            };
            // The W3C trace context rides in the message (the queue has no
            // headers): the worker's spans continue this trace.
            let mut payload = serde_json::to_value(&message).map_err(|e| e.to_string())?;
            payload["traceparent"] = csp_telemetry::current_context()
                .into_iter()
                .find(|(k, _)| *k == "traceparent")
                .map(|(_, v)| v)
                .into();
            let payload = serde_json::to_vec(&payload).map_err(|e| e.to_string())?;
            match tokio::time::timeout(
                PUSH_DEADLINE,
                self.queue.push(&topic, id, payload.into()),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("push failed: {e}")),
                Err(_) => return Err("push timed out".into()),
            }
            tracing::info!(tenant_id = %job.tenant_id, ticket_id = %job.ticket_id, job_id = %job.job_id,
                correlation_id = %job.correlation_id, operation = "job_queued", status = "queued", "job queued");
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// One pass: queues what was recorded and not queued (or lost), at most
    /// `batch` jobs, oldest first. Returns how many were pushed.
    pub(crate) async fn sweep(&self, batch: u32) -> Result<usize, csp_store::Error> {
        let now = self.clock.now();
        self.sweep_before(now - SETTLE, now - REQUEUE_AFTER, batch)
            .await
    }

    /// A pass over the jobs created before `created_before` whose message
    /// counts as lost when it was pushed (or the job started) before
    /// `lost_before`. Its pushes are marked queued before it returns (one
    /// statement, not through the batcher): the recovery's next batch reads
    /// the store right after and must not find them again.
    async fn sweep_before(
        &self,
        created_before: time::OffsetDateTime,
        lost_before: time::OffsetDateTime,
        batch: u32,
    ) -> Result<usize, csp_store::Error> {
        let jobs = self
            .store
            .unqueued_enhancements(created_before, lost_before, batch)
            .await?;
        let mut pushed = Vec::with_capacity(jobs.len());
        // Each tenant's queue read once per pass.
        let mut queues: HashMap<TenantId, EnhanceQueue> = HashMap::new();
        for job in &jobs {
            let queue = match queues.get(&job.tenant_id) {
                Some(queue) => Ok(queue.clone()),
                None => self.queue_of(&job.tenant_id).await.inspect(|queue| {
                    queues.insert(job.tenant_id.clone(), queue.clone());
                }),
            };
            let result = match queue {
                Ok(queue) => self.push_as(job, &queue, &job.job_id.to_string()).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    pushed.push(job.job_id);
                    tracing::info!(tenant_id = %job.tenant_id, ticket_id = %job.ticket_id, job_id = %job.job_id,
                        correlation_id = %job.correlation_id, operation = "sweep", status = "requeued",
                        never_queued = job.queued_at.is_none(), "sweeper queued a recorded job");
                }
                Err(e) => {
                    // The queue (or the store) is down: the rest would
                    // fail the same way.
                    tracing::warn!(tenant_id = %job.tenant_id, job_id = %job.job_id, operation = "sweep",
                        status = "failed", error = %e, "sweeper could not queue a job; next pass retries");
                    break;
                }
            }
        }
        // Unmarked (the store failing), they are pushed again by a later
        // pass: harmless, as above.
        self.store
            .mark_queued_many(&pushed, self.clock.now())
            .await?;
        Ok(pushed.len())
    }

    /// Queues every job not final now (`Config::volatile_queue`: the
    /// queue that held their messages died with the last process), in
    /// batches until none is left. Returns how many were pushed.
    pub(crate) async fn recover_all(&self, batch: u32) -> Result<usize, csp_store::Error> {
        // One cutoff for the whole recovery: a job pushed by an earlier
        // batch is queued after it and is not picked again.
        let cutoff = self.clock.now();
        let mut total = 0;
        loop {
            let pushed = self.sweep_before(cutoff, cutoff, batch).await?;
            total += pushed;
            if pushed < batch as usize {
                return Ok(total);
            }
        }
    }

    /// Pending plus processing jobs, for `GetProcessing` and the gauge.
    pub(crate) async fn depth(&self) -> Result<(u64, u64), csp_store::Error> {
        let counts = self.store.enhancement_counts().await?;
        let of = |s: EnhancementStatus| {
            counts
                .iter()
                .filter(|(status, _)| *status == s)
                .map(|(_, n)| *n)
                .sum::<u64>()
        };
        Ok((
            of(EnhancementStatus::Pending) + of(EnhancementStatus::Processing),
            of(EnhancementStatus::Processing),
        ))
    }
}

/// Sweeps every `every` until `shutdown`, refreshing the queue-depth gauge
/// on each pass.
pub(crate) async fn run_sweeper(
    outbox: Arc<Outbox>,
    every: Duration,
    batch: u32,
    volatile_queue: bool,
    shutdown: CancellationToken,
) {
    if volatile_queue {
        match outbox.recover_all(batch).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                jobs = n,
                operation = "sweep",
                "queued again the jobs the last run left unfinished"
            ),
            Err(e) => tracing::warn!(error = %e, operation = "sweep",
                "cannot read the unfinished jobs; the regular sweep will retry"),
        }
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match outbox.sweep(batch).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                jobs = n,
                operation = "sweep",
                "sweeper queued recorded jobs"
            ),
            Err(e) => {
                tracing::warn!(error = %e, operation = "sweep", "sweeper cannot reach the store")
            }
        }
        if let Ok((depth, _)) = outbox.depth().await {
            crate::metrics::queue_depth(depth);
        }
    }
}
