//! Operations on the enhancement pipeline, for the Operations and History
//! pages: clearing the queue, reloading the tenant configurations of every
//! replica, retrying a failed job, and the history's export. Each change is
//! audited with its actor (`tickets.clear_queue`, `tickets.reload_configs`,
//! `tickets.retry`; pausing and resuming are `tickets.pause` and
//! `tickets.resume`, written by `SetProcessing`).
//!
//! Nothing here deletes a job: clearing fails every pending one with the
//! error [`CLEARED`] (a worker that later receives its message finds it
//! final and drops it), and a retry puts a failed one back to pending and
//! queues it the way the intake does (the row first, then the message,
//! the sweeper behind both).

use crate::Clock;
use crate::admin::store_error;
use crate::audit::Auditor;
use crate::configs::Configs;
use crate::outbox::Outbox;
use csp_domain::{AuditStatus, ErrorCode, UserId};
use csp_proto::v1 as pb;
use csp_rpc::{status, status_with_message};
use csp_store::{CLEARED, EnhancementCursor, EnhancementQuery, EnhancementRecord, Store};
use futures::stream::BoxStream;
use prost::Message as _;
use std::sync::Arc;
use tonic::Status;

/// Rows per page of the export, read by keyset: 100k rows are 200 short
/// queries, each as cheap as the first, and at most one page in memory.
pub(crate) const EXPORT_PAGE: u32 = 500;
/// An export message stays under this (gRPC refuses a message over 4 MiB);
/// a page of long descriptions goes out as several messages.
const EXPORT_MESSAGE_BYTES: usize = 3 * 1024 * 1024;

pub(crate) struct Operations {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) configs: Arc<Configs>,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) audit: Auditor,
    pub(crate) clock: Arc<dyn Clock>,
}

fn job_not_found() -> Status {
    status_with_message(
        ErrorCode::EnhancementNotFound,
        "There is no enhancement job with this id.",
    )
}

impl Operations {
    /// Every pending job becomes `failed` with the error [`CLEARED`]; how
    /// many did.
    pub(crate) async fn clear_queue(&self, actor: Option<UserId>) -> Result<u64, Status> {
        let cleared = self
            .store
            .clear_pending_enhancements(self.clock.now())
            .await
            .map_err(store_error)?;
        self.audit.record(
            actor,
            "tickets.clear_queue",
            serde_json::json!({ "cleared": cleared, "error": CLEARED }),
            AuditStatus::Success,
        );
        tracing::warn!(
            cleared,
            operation = "clear_queue",
            status = "cleared",
            "enhancement queue cleared: pending jobs failed as '{CLEARED}'"
        );
        if let Ok((depth, _)) = self.outbox.depth().await {
            crate::metrics::queue_depth(depth);
        }
        Ok(cleared)
    }

    /// Every replica drops its cached tenant configurations. A replica the
    /// announcement did not reach (the shared cache failing) keeps its copy
    /// until it expires: said as `unavailable`, and audited as an error.
    pub(crate) async fn reload_configs(&self, actor: Option<UserId>) -> Result<(), Status> {
        let (tenants, failed) = self.configs.reload_all().await.map_err(store_error)?;
        let result = if failed == 0 {
            AuditStatus::Success
        } else {
            AuditStatus::Error
        };
        self.audit.record(
            actor,
            "tickets.reload_configs",
            serde_json::json!({ "tenants": tenants, "not_announced": failed }),
            result,
        );
        tracing::info!(
            tenants,
            not_announced = failed,
            operation = "reload_configs",
            "tenant configurations reloaded"
        );
        if failed > 0 {
            return Err(status_with_message(
                ErrorCode::Unavailable,
                format!(
                    "This replica reloads every tenant's configuration, but {failed} of {tenants} \
                     could not be announced to the other replicas (the shared cache is \
                     unavailable): they reload within 5 minutes."
                ),
            ));
        }
        Ok(())
    }

    /// A failed job back to pending and on the queue; `invalid_request`
    /// for a job in any other state.
    pub(crate) async fn retry(
        &self,
        job_id: &str,
        actor: Option<UserId>,
    ) -> Result<EnhancementRecord, Status> {
        let id = uuid::Uuid::parse_str(job_id.trim()).map_err(|_| job_not_found())?;
        let job = match self.store.retry_enhancement(id, self.clock.now()).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                let now = self
                    .store
                    .enhancement(id)
                    .await
                    .map_err(store_error)?
                    .ok_or_else(job_not_found)?;
                return Err(status_with_message(
                    ErrorCode::InvalidRequest,
                    format!(
                        "Only a failed job can be retried; this one is {}.",
                        now.status.as_str()
                    ),
                ));
            }
            Err(csp_store::Error::NotFound(_)) => return Err(job_not_found()),
            Err(e) => return Err(store_error(e)),
        };
        // Committed first; if the push fails, the sweeper queues the job
        // once its `queued_at` is old (as for an intake whose push failed).
        if let Err(e) = self.outbox.publish_retry(&job).await {
            tracing::warn!(tenant_id = %job.tenant_id, job_id = %job.job_id, operation = "retry",
                status = "deferred", error = %e, "job set to pending but not queued; the sweeper will queue it");
        }
        self.audit.record(
            actor,
            "tickets.retry",
            serde_json::json!({
                "job_id": job.job_id.to_string(),
                "tenant_id": job.tenant_id.as_str(),
                "ticket_id": job.ticket_id,
                "attempts": job.attempts,
            }),
            AuditStatus::Success,
        );
        tracing::info!(tenant_id = %job.tenant_id, ticket_id = %job.ticket_id, job_id = %job.job_id,
            correlation_id = %job.correlation_id, operation = "retry", status = "queued",
            attempts = job.attempts, "failed job queued again");
        Ok(job)
    }

    /// Every job matching `query`, newest first, in store pages of up to
    /// [`EXPORT_PAGE`] read one at a time as the stream is polled (the
    /// caller's reading paces the store's). A store error ends the stream
    /// with it.
    pub(crate) fn export(
        &self,
        query: EnhancementQuery,
    ) -> BoxStream<'static, Result<Vec<EnhancementRecord>, Status>> {
        struct Walk {
            store: Arc<dyn Store>,
            query: EnhancementQuery,
            after: Option<EnhancementCursor>,
            done: bool,
        }
        let walk = Walk {
            store: self.store.clone(),
            query,
            after: None,
            done: false,
        };
        Box::pin(futures::stream::try_unfold(walk, |mut walk| async move {
            if walk.done {
                return Ok(None);
            }
            let rows = walk
                .store
                .enhancements_after(&walk.query, walk.after, EXPORT_PAGE)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, operation = "export", "export page failed");
                    status(ErrorCode::Unavailable, "tickets store unavailable")
                })?;
            walk.done = rows.len() < EXPORT_PAGE as usize;
            walk.after = rows.last().map(EnhancementCursor::of);
            if rows.is_empty() {
                return Ok(None);
            }
            Ok(Some((rows, walk)))
        }))
    }
}

/// `jobs` as export messages, each under [`EXPORT_MESSAGE_BYTES`] encoded
/// (a job too large for one alone still goes, alone).
pub(crate) fn export_messages(jobs: Vec<pb::Enhancement>) -> Vec<pb::EnhancementPage> {
    let mut pages = Vec::new();
    let mut page = pb::EnhancementPage::default();
    let mut bytes = 0;
    for job in jobs {
        // The field's tag and length prefix: at most 6 bytes here.
        let size = job.encoded_len() + 6;
        if !page.enhancements.is_empty() && bytes + size > EXPORT_MESSAGE_BYTES {
            pages.push(std::mem::take(&mut page));
            bytes = 0;
        }
        bytes += size;
        page.enhancements.push(job);
    }
    if !page.enhancements.is_empty() {
        pages.push(page);
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(description_bytes: usize) -> pb::Enhancement {
        pb::Enhancement {
            job_id: uuid::Uuid::new_v4().to_string(),
            description: "d".repeat(description_bytes),
            ..Default::default()
        }
    }

    #[test]
    fn export_messages_stay_under_the_grpc_limit() {
        assert!(export_messages(vec![]).is_empty());
        let small: Vec<_> = (0..500).map(|_| job(200)).collect();
        let pages = export_messages(small);
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].enhancements.len(), 500);
        // 500 descriptions of 64 KiB: 31 MiB, cut into messages under 3 MiB.
        let large: Vec<_> = (0..500).map(|_| job(64 * 1024)).collect();
        let ids: Vec<String> = large.iter().map(|j| j.job_id.clone()).collect();
        let pages = export_messages(large);
        assert!(pages.len() >= 11, "{}", pages.len());
        for p in &pages {
            assert!(
                p.encoded_len() <= EXPORT_MESSAGE_BYTES,
                "{}",
                p.encoded_len()
            );
        }
        let back: Vec<String> = pages
            .iter()
            .flat_map(|p| p.enhancements.iter().map(|j| j.job_id.clone()))
            .collect();
        assert_eq!(back, ids, "every job once, in order");
        // One job over the budget still goes, alone.
        let pages = export_messages(vec![job(10), job(4 * 1024 * 1024), job(10)]);
        assert_eq!(
            pages
                .iter()
                .map(|p| p.enhancements.len())
                .collect::<Vec<_>>(),
            [1, 1, 1]
        );
    }
}
