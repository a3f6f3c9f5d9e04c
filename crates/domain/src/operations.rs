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
/// Every worker's recent log lines are the cache value `<prefix><worker_id>`
/// ([`WorkerLogs`]), written beside its heartbeat and kept as long.
pub const WORKER_LOGS_PREFIX: &str = "tickets-worker-logs:";
/// A worker keeps this many of its last log lines ([`WorkerLogs`]).
pub const WORKER_LOG_LINES: usize = 100;
/// Each kept line is cut to this many bytes (a marker says so).
pub const WORKER_LOG_LINE_BYTES: usize = 1024;
/// An admin's "restart this worker" is the cache value `<prefix><worker_id>`,
/// read by the worker at its next heartbeat.
pub const WORKER_DRAIN_PREFIX: &str = "tickets-worker-drain:";
/// How long a restart command waits for its worker: a worker that did not
/// read it by then (it died) never will.
pub const WORKER_DRAIN_TTL: Duration = Duration::from_secs(600);

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
    /// Where a worker stands: working on jobs, waiting for some, taking
    /// no more before it restarts (an admin asked; its jobs in flight
    /// finish), or silent for [`HEARTBEATS_MISSED`] intervals.
    WorkerStatus, "worker status" {
        Active = "active",
        Idle = "idle",
        Draining = "draining",
        Unresponsive = "unresponsive",
    }
}

vocabulary! {
    /// The level of a worker's log line, most severe first; a reader asks
    /// for the lines of at least one level ([`LogLevel::at_least`]). Trace
    /// lines are not kept.
    LogLevel, "log level" {
        Error = "error",
        Warn = "warn",
        Info = "info",
        Debug = "debug",
    }
}

impl LogLevel {
    /// Whether a line of this level is shown to a reader who asked for
    /// `min` and more severe ones (`Warn` shows warnings and errors).
    pub fn at_least(self, min: LogLevel) -> bool {
        self.severity() >= min.severity()
    }

    fn severity(self) -> u8 {
        match self {
            LogLevel::Error => 3,
            LogLevel::Warn => 2,
            LogLevel::Info => 1,
            LogLevel::Debug => 0,
        }
    }
}

/// One log line of a worker, as the process logged it in the text format
/// (control characters escaped, secrets redacted, at most
/// [`WORKER_LOG_LINE_BYTES`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerLogLine {
    pub level: LogLevel,
    pub text: String,
}

/// A worker's last [`WORKER_LOG_LINES`] log lines, oldest first: the cache
/// value under [`worker_logs_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerLogs {
    pub worker_id: uuid::Uuid,
    pub lines: Vec<WorkerLogLine>,
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
    /// It read a restart command and takes no new job: it exits once its
    /// jobs in flight have settled, and its supervisor starts it again.
    #[serde(default)]
    pub draining: bool,
}

impl WorkerHeartbeat {
    /// The cache key of this worker's heartbeat.
    pub fn key(&self) -> String {
        heartbeat_key(self.worker_id)
    }

    /// Where the worker stands at `now`: unresponsive once
    /// [`HEARTBEATS_MISSED`] intervals passed since this heartbeat, else
    /// draining once it read a restart command, else active with jobs in
    /// flight and idle without.
    pub fn status(&self, now: OffsetDateTime) -> WorkerStatus {
        let interval = Duration::from_millis(self.interval_ms.max(1));
        let late = interval * HEARTBEATS_MISSED;
        if now - self.sent_at > late {
            WorkerStatus::Unresponsive
        } else if self.draining {
            WorkerStatus::Draining
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

/// The cache key of worker `worker_id`'s recent log lines ([`WorkerLogs`]).
/// Not under [`WORKER_HEARTBEAT_PREFIX`], so listing heartbeats never
/// reads them.
pub fn worker_logs_key(worker_id: uuid::Uuid) -> String {
    format!("{WORKER_LOGS_PREFIX}{worker_id}")
}

/// The cache key of a restart command for worker `worker_id`.
pub fn worker_drain_key(worker_id: uuid::Uuid) -> String {
    format!("{WORKER_DRAIN_PREFIX}{worker_id}")
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
            draining: false,
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
        // Draining, busy or not, until it falls silent.
        let draining = |active, at| WorkerHeartbeat {
            draining: true,
            ..beat(active, at)
        };
        assert_eq!(draining(2, at(1)).status(now), WorkerStatus::Draining);
        assert_eq!(draining(0, at(1)).status(now), WorkerStatus::Draining);
        assert_eq!(draining(0, at(16)).status(now), WorkerStatus::Unresponsive);
    }

    #[test]
    fn a_heartbeat_of_before_draining_existed_reads_as_not_draining() {
        let mut json = serde_json::to_value(beat(0, OffsetDateTime::now_utc())).unwrap();
        json.as_object_mut().unwrap().remove("draining");
        let back: WorkerHeartbeat = serde_json::from_value(json).unwrap();
        assert!(!back.draining);
    }

    #[test]
    fn log_levels_filter_at_least_the_asked_one() {
        use LogLevel::*;
        assert!(Error.at_least(Warn));
        assert!(Warn.at_least(Warn));
        assert!(!Info.at_least(Warn));
        assert!(Debug.at_least(Debug));
        assert!(!Debug.at_least(Info));
        assert!(Error.at_least(Debug));
        assert_eq!("warn".parse::<LogLevel>().unwrap(), Warn);
        assert!("trace".parse::<LogLevel>().is_err());
        assert_eq!(serde_json::to_value(Error).unwrap(), "error");
    }

    #[test]
    fn logs_and_restart_commands_are_not_heartbeats() {
        let id = uuid::Uuid::nil();
        assert!(!worker_logs_key(id).starts_with(WORKER_HEARTBEAT_PREFIX));
        assert!(!worker_drain_key(id).starts_with(WORKER_HEARTBEAT_PREFIX));
        assert_eq!(
            worker_drain_key(id),
            "tickets-worker-drain:00000000-0000-0000-0000-000000000000"
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
        for l in LogLevel::ALL {
            assert_eq!(l.as_str().parse::<LogLevel>().unwrap(), *l);
        }
    }
}
