//! What operators watch of ticket enhancement: the pipeline's health as the
//! dashboard states it, and the tickets workers' heartbeats (written by each
//! worker into the shared cache, read by the tickets service).

use crate::event::ParseStatusError;
use crate::tickets::vocabulary;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;
use time::OffsetDateTime;

/// Every worker's heartbeat is the cache value `<prefix><worker_id>`.
pub const WORKER_HEARTBEAT_PREFIX: &str = "tickets-worker:";
/// How often a worker writes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How long a heartbeat is kept after it was written: a worker that died
/// is listed (unresponsive) for this long, then forgotten.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(3600);
/// A worker that missed this many of its heartbeats is unresponsive.
pub const HEARTBEATS_MISSED: u32 = 3;

vocabulary! {
    /// The pipeline's health on the dashboard: `Down` when jobs cannot be
    /// recorded or taken, `Degraded` when they are but something is wrong.
    Health, "health" {
        Healthy = "healthy",
        Degraded = "degraded",
        Down = "down",
    }
}

vocabulary! {
    /// Where a worker stands: working on jobs, waiting for some, or silent
    /// for [`HEARTBEATS_MISSED`] intervals.
    WorkerStatus, "worker status" {
        Active = "active",
        Idle = "idle",
        Unresponsive = "unresponsive",
    }
}

/// One heartbeat of one tickets-worker process: who it is and what it has
/// done since it started. Figures are the process's own (in `csp dev` the
/// worker runs inside the one `csp` process, whose figures they are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerHeartbeat {
    /// Drawn when the process starts.
    pub worker_id: uuid::Uuid,
    pub hostname: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When this heartbeat was written, by the worker's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// The worker's heartbeat interval, so a reader knows when it is late.
    pub interval_ms: u64,
    /// Jobs being worked on now.
    pub active_jobs: u32,
    /// Jobs this process ended, since it started.
    pub completed_jobs: u64,
    pub failed_jobs: u64,
    /// CPU time of the process over the last interval, as a share of every
    /// core of the machine (100: all of them busy).
    pub cpu_percent: f64,
    /// Resident memory of the process as a share of the machine's memory.
    pub memory_percent: f64,
    /// Jobs completed in the last minute.
    pub jobs_per_minute: f64,
}

impl WorkerHeartbeat {
    /// The cache key of this worker's heartbeat.
    pub fn key(&self) -> String {
        heartbeat_key(self.worker_id)
    }

    /// Where the worker stands at `now`: unresponsive once
    /// [`HEARTBEATS_MISSED`] intervals passed since this heartbeat, else
    /// active with jobs in flight and idle without.
    pub fn status(&self, now: OffsetDateTime) -> WorkerStatus {
        let interval = Duration::from_millis(self.interval_ms.max(1));
        let late = interval * HEARTBEATS_MISSED;
        if now - self.sent_at > late {
            WorkerStatus::Unresponsive
        } else if self.active_jobs > 0 {
            WorkerStatus::Active
        } else {
            WorkerStatus::Idle
        }
    }
}

/// The cache key of worker `worker_id`'s heartbeat.
pub fn heartbeat_key(worker_id: uuid::Uuid) -> String {
    format!("{WORKER_HEARTBEAT_PREFIX}{worker_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(active_jobs: u32, sent_at: OffsetDateTime) -> WorkerHeartbeat {
        WorkerHeartbeat {
            worker_id: uuid::Uuid::nil(),
            hostname: "worker-1".into(),
            started_at: sent_at - time::Duration::minutes(5),
            sent_at,
            interval_ms: 5000,
            active_jobs,
            completed_jobs: 7,
            failed_jobs: 1,
            cpu_percent: 12.5,
            memory_percent: 3.25,
            jobs_per_minute: 2.0,
        }
    }

    #[test]
    fn a_worker_is_unresponsive_after_three_missed_heartbeats() {
        let now = OffsetDateTime::now_utc();
        let at = |secs: i64| now - time::Duration::seconds(secs);
        assert_eq!(beat(2, at(1)).status(now), WorkerStatus::Active);
        assert_eq!(beat(0, at(1)).status(now), WorkerStatus::Idle);
        assert_eq!(
            beat(0, at(15)).status(now),
            WorkerStatus::Idle,
            "3 intervals: still in time"
        );
        assert_eq!(beat(2, at(16)).status(now), WorkerStatus::Unresponsive);
        // A clock a little ahead of ours is not late.
        assert_eq!(
            beat(0, now + time::Duration::seconds(2)).status(now),
            WorkerStatus::Idle
        );
    }

    #[test]
    fn a_heartbeat_is_json_with_rfc3339_times_under_its_key() {
        let sent = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let b = beat(1, sent);
        let json = serde_json::to_value(&b).unwrap();
        assert_eq!(json["sent_at"], "2026-01-01T00:00:00Z");
        assert_eq!(json["started_at"], "2025-12-31T23:55:00Z");
        let back: WorkerHeartbeat = serde_json::from_value(json).unwrap();
        assert_eq!(back, b);
        assert_eq!(
            b.key(),
            "tickets-worker:00000000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn vocabularies_read_back() {
        for h in Health::ALL {
            assert_eq!(h.as_str().parse::<Health>().unwrap(), *h);
        }
        for s in WorkerStatus::ALL {
            assert_eq!(s.as_str().parse::<WorkerStatus>().unwrap(), *s);
        }
    }
}
