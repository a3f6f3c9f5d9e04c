//! The dead letters' consumer: no job may stay `processing` (or `pending`)
//! once the queue has given up on its message.
//!
//! A job's handler records its own failure before its message is
//! dead-lettered, but the loop also dead-letters a message delivered more
//! than `max_attempts` times *without calling the handler* (every delivery
//! ended in a crash or an overrun deadline), and a message whose failure
//! could not be recorded (the store was down). Here, in its own group of
//! `<topic>.dead`, each dead letter marks its job `failed` with the letter's
//! last error — or, for the first case, "worker stopped during the last
//! attempt" — unless the job is final already, or was retried after the
//! letter was written (its `queued_at` is later: the letter is of an earlier
//! round). Idempotent: a job is only ever finished once, so a letter read
//! twice changes nothing.
//!
//! On a dedicated tenant's queue, a letter of another tenant's job is one
//! the worker refused (`route.rs`): it is left as it is, and so is the job,
//! which its own tenant's queue receives again from the sweeper.

use std::sync::Arc;

use async_trait::async_trait;
use csp_bus::DeadLetter;
use csp_bus::worker::{Handler, HandlerError, JobContext};
use csp_domain::{EnhanceQueue, EnhancementStatus};
use csp_store::{EnhancementStore, Outcome};
use time::OffsetDateTime;

use crate::message::Queued;
use crate::metrics;

pub(crate) struct DeadLetters {
    jobs: Arc<dyn EnhancementStore>,
    max_attempts: u32,
    /// The queue whose dead letters these are.
    queue: EnhanceQueue,
}

impl DeadLetters {
    pub(crate) fn new(
        jobs: Arc<dyn EnhancementStore>,
        max_attempts: u32,
        queue: EnhanceQueue,
    ) -> Self {
        Self {
            jobs,
            max_attempts,
            queue,
        }
    }

    /// Why the job failed, as its record says it.
    fn reason(&self, letter: &DeadLetter) -> String {
        if letter.attempts > u64::from(self.max_attempts) {
            format!(
                "worker stopped during the last attempt (delivered {} times without an outcome)",
                letter.attempts
            )
        } else {
            letter.last_error.clone()
        }
    }
}

#[async_trait]
impl Handler<DeadLetter> for DeadLetters {
    async fn handle(&self, letter: DeadLetter, _: &JobContext) -> Result<(), HandlerError> {
        let Ok(queued) = serde_json::from_slice::<Queued>(&letter.payload) else {
            // No job to record it on; the letter itself keeps the bytes.
            tracing::warn!(id = %letter.id, error = %letter.last_error, "a dead letter names no job");
            return Ok(());
        };
        let job = queued.job;
        if let Some(mine) = self.queue.tenant()
            && *mine != job.tenant_id
        {
            tracing::warn!(tenant_id = %job.tenant_id, job_id = %job.job_id, worker_tenant = %mine,
                operation = "dead_letter", status = "skipped", error = %letter.last_error,
                "a refused job of another tenant; its record is left to its own queue");
            return Ok(());
        }
        // A letter of an earlier round must not end a later one: an
        // operator may have retried the job after this message died (a
        // retry moves `queued_at` on), and the retried round decides its
        // end. The store checks it in the same statement as the end.
        let dead_at = OffsetDateTime::UNIX_EPOCH
            + time::Duration::milliseconds(i64::try_from(letter.dead_at_ms).unwrap_or(i64::MAX));
        let reason = self.reason(&letter);
        let outcome = Outcome {
            status: Some(EnhancementStatus::Failed),
            error_message: Some(reason.clone()),
            queued_no_later_than: Some(dead_at),
            ..Outcome::default()
        };
        match self
            .jobs
            .finish_enhancement(job.job_id, outcome, OffsetDateTime::now_utc())
            .await
        {
            Ok(true) => {
                tracing::warn!(tenant_id = %job.tenant_id, correlation_id = %job.correlation_id,
                    job_id = %job.job_id, operation = "dead_letter", status = "failed", error = %reason,
                    attempts = letter.attempts, "the queue gave up on a job without an outcome; recorded as failed");
                metrics::ended(job.tenant_id.as_str(), "failed", 0.0);
                Ok(())
            }
            // Its handler recorded the end first (the usual case).
            Ok(false) => Ok(()),
            Err(csp_store::Error::NotFound(_)) => {
                tracing::warn!(job_id = %job.job_id, "a dead letter names an unknown job");
                Ok(())
            }
            Err(e) => Err(HandlerError::retryable(format!(
                "cannot record the dead-lettered job {} as failed: {e}",
                job.job_id
            ))),
        }
    }
}
