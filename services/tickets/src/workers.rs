//! The tickets workers as their heartbeats tell them (`ListWorkers`, and the
//! dashboard's active workers): every `tickets-worker:<id>` value in the
//! shared cache, written by each worker every 5 s and kept an hour (see
//! `csp_domain::WorkerHeartbeat`). A worker that stopped gracefully deleted
//! its own; one silent for three of its intervals is `unresponsive`, by
//! this service's clock against the worker's (clocks of the hosts are
//! expected to agree within seconds).

use crate::Clock;
use csp_cache::Cache;
use csp_domain::{WORKER_HEARTBEAT_PREFIX, WorkerHeartbeat, WorkerStatus};
use csp_proto::v1 as pb;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(crate) struct Workers {
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Workers {
    /// Every worker with a heartbeat, newest first (by start, then id, so
    /// rows keep their place from one refresh to the next). A value that is
    /// not a heartbeat is left out and logged.
    pub(crate) async fn list(&self) -> Result<Vec<pb::Worker>, csp_cache::Error> {
        let now = self.clock.now();
        let mut beats: Vec<WorkerHeartbeat> = self
            .cache
            .values_by_prefix(WORKER_HEARTBEAT_PREFIX)
            .await?
            .into_iter()
            .filter_map(|(key, json)| match serde_json::from_str(&json) {
                Ok(beat) => Some(beat),
                Err(e) => {
                    tracing::warn!(key, error = %e, "a worker heartbeat cannot be read; left out");
                    None
                }
            })
            .collect();
        beats.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then(a.worker_id.cmp(&b.worker_id))
        });
        Ok(beats.into_iter().map(|b| worker(b, now)).collect())
    }
}

/// Workers that are not unresponsive.
pub(crate) fn alive(workers: &[pb::Worker]) -> u32 {
    let n = workers
        .iter()
        .filter(|w| w.status != WorkerStatus::Unresponsive.as_str())
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn worker(b: WorkerHeartbeat, now: OffsetDateTime) -> pb::Worker {
    pb::Worker {
        status: b.status(now).as_str().to_owned(),
        worker_id: b.worker_id.to_string(),
        hostname: b.hostname,
        started_at: rfc3339(b.started_at),
        last_seen_at: rfc3339(b.sent_at),
        active_jobs: b.active_jobs,
        completed_jobs: b.completed_jobs,
        failed_jobs: b.failed_jobs,
        cpu_percent: b.cpu_percent,
        memory_percent: b.memory_percent,
        jobs_per_minute: b.jobs_per_minute,
    }
}
