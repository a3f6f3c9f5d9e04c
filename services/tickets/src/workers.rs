//! The tickets workers as their heartbeats tell them (`ListWorkers`, and the
//! dashboard's active workers): every `tickets-worker:<id>` value in the
//! shared cache, written by each worker every 5 s and kept an hour (see
//! `csp_domain::WorkerHeartbeat`). A worker that stopped gracefully deleted
//! its own; one silent for three of its intervals is `unresponsive`, by
//! this service's clock against the worker's (clocks of the hosts are
//! expected to agree within seconds).
//!
//! And what the Workers page asks of one worker: its last log lines (the
//! `tickets-worker-logs:<id>` value it writes beside its heartbeat), the
//! jobs it ended per hour over 7 days (the store's `worker_throughput`,
//! from the worker id on each job it ended), and the admin's restart: a
//! `tickets-worker-drain:<id>` command in the cache, expiring, which the
//! worker reads at its next heartbeat and drains on (audited,
//! `tickets.restart_worker`).

use crate::Clock;
use crate::admin::store_error;
use crate::audit::Auditor;
use csp_cache::Cache;
use csp_domain::{
    AuditStatus, ErrorCode, LogLevel, UserId, WORKER_DRAIN_TTL, WORKER_HEARTBEAT_PREFIX,
    WorkerHeartbeat, WorkerLogs, WorkerStatus,
};
use csp_proto::v1 as pb;
use csp_rpc::status_with_message;
use csp_store::Store;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::Status;

/// The throughput's hours: 7 days.
pub(crate) const THROUGHPUT_HOURS: u32 = 7 * 24;
const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

pub(crate) struct Workers {
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) audit: Auditor,
}

fn not_found() -> Status {
    status_with_message(
        ErrorCode::WorkerNotFound,
        "There is no running worker with this id: it has sent no heartbeat in the last hour.",
    )
}

fn cache_down(e: csp_cache::Error) -> Status {
    tracing::error!(error = %e, "cannot read the workers' values in the cache");
    status_with_message(
        ErrorCode::Unavailable,
        "The workers cannot be read: the cache does not answer.",
    )
}

/// A worker id from a request: ids are UUIDs, so anything else names no
/// worker.
fn worker_id(text: &str) -> Result<uuid::Uuid, Status> {
    uuid::Uuid::parse_str(text.trim()).map_err(|_| not_found())
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

impl Workers {
    /// The worker's heartbeat, or `worker_not_found`.
    async fn heartbeat(&self, id: uuid::Uuid) -> Result<WorkerHeartbeat, Status> {
        let json = self
            .cache
            .get(&csp_domain::heartbeat_key(id))
            .await
            .map_err(cache_down)?
            .ok_or_else(not_found)?;
        serde_json::from_str(&json).map_err(|e| {
            tracing::warn!(worker_id = %id, error = %e, "a worker heartbeat cannot be read");
            not_found()
        })
    }

    /// The worker's last log lines of at least `level` (empty: every
    /// line), oldest first. A worker whose lines are not (yet) in the cache
    /// has none.
    pub(crate) async fn logs(
        &self,
        r: &pb::WorkerLogsRequest,
    ) -> Result<pb::WorkerLogLines, Status> {
        let min = match r.level.trim() {
            "" => LogLevel::Debug,
            l => l.parse::<LogLevel>().map_err(|_| {
                status_with_message(
                    ErrorCode::InvalidRequest,
                    "level must be error, warn, info or debug",
                )
            })?,
        };
        let id = worker_id(&r.worker_id)?;
        self.heartbeat(id).await?;
        let lines = match self
            .cache
            .get(&csp_domain::worker_logs_key(id))
            .await
            .map_err(cache_down)?
        {
            Some(json) => match serde_json::from_str::<WorkerLogs>(&json) {
                Ok(logs) => logs.lines,
                Err(e) => {
                    tracing::warn!(worker_id = %id, error = %e, "a worker's log lines cannot be read");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        Ok(pb::WorkerLogLines {
            worker_id: id.to_string(),
            level: min.as_str().to_owned(),
            lines: lines
                .into_iter()
                .filter(|l| l.level.at_least(min))
                .map(|l| pb::WorkerLogLine {
                    level: l.level.as_str().to_owned(),
                    text: l.text,
                })
                .collect(),
        })
    }

    /// The jobs the worker ended per hour over the last [`THROUGHPUT_HOURS`],
    /// the last hour the current one. Answered for any worker id: one that
    /// stopped still has its history.
    pub(crate) async fn throughput(&self, id: &str) -> Result<pb::WorkerThroughput, Status> {
        let id = worker_id(id)?;
        let now = self.clock.now();
        let this_hour = now.replace_minute(0).and_then(|t| t.replace_second(0));
        let this_hour = this_hour
            .and_then(|t| t.replace_nanosecond(0))
            .unwrap_or(now);
        let from = this_hour - HOUR * (THROUGHPUT_HOURS - 1);
        let hours = self
            .store
            .worker_throughput(id, from, HOUR, THROUGHPUT_HOURS)
            .await
            .map_err(store_error)?;
        Ok(pb::WorkerThroughput {
            worker_id: id.to_string(),
            hours: hours
                .into_iter()
                .map(|h| pb::ThroughputHour {
                    start: rfc3339(h.start),
                    completed: h.completed,
                    failed: h.failed,
                })
                .collect(),
        })
    }

    /// Writes the worker's restart command (kept [`WORKER_DRAIN_TTL`]);
    /// `worker_not_found` without a heartbeat, `invalid_request` for an
    /// unresponsive worker, which would not read it.
    pub(crate) async fn restart(
        &self,
        id: &str,
        actor: Option<UserId>,
    ) -> Result<pb::WorkerRestart, Status> {
        let id = worker_id(id)?;
        let beat = self.heartbeat(id).await?;
        let status = beat.status(self.clock.now());
        if status == WorkerStatus::Unresponsive {
            return Err(status_with_message(
                ErrorCode::InvalidRequest,
                "This worker is unresponsive: it cannot read a restart. Its supervisor restarts \
                 it if its process died; see docs/runbooks/worker-failures.md.",
            ));
        }
        let command = serde_json::json!({
            "requested_at": rfc3339(self.clock.now()),
            "by": actor.map(|u| u.to_string()),
        });
        self.cache
            .put(
                &csp_domain::worker_drain_key(id),
                &command.to_string(),
                WORKER_DRAIN_TTL,
            )
            .await
            .map_err(cache_down)?;
        self.audit.record(
            actor,
            "tickets.restart_worker",
            serde_json::json!({
                "worker_id": id.to_string(),
                "hostname": beat.hostname,
                "status": status.as_str(),
            }),
            AuditStatus::Success,
        );
        tracing::warn!(worker_id = %id, hostname = %beat.hostname, operation = "restart_worker",
            status = "requested", "worker restart requested: it drains at its next heartbeat");
        Ok(pb::WorkerRestart {
            worker_id: id.to_string(),
            status: status.as_str().to_owned(),
        })
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
