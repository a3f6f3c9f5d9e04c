//! The worker's heartbeat: every [`csp_domain::HEARTBEAT_EVERY`] (5 s) this
//! process writes a [`WorkerHeartbeat`] into the shared cache under
//! `tickets-worker:<worker_id>`, kept for [`csp_domain::HEARTBEAT_TTL`]
//! (1 hour), which the tickets service lists for the dashboard and the
//! Workers page. A worker that stops gracefully deletes its key once its
//! last job has settled, so it leaves the list at once; one that dies stops
//! writing and is shown unresponsive until the key expires.
//!
//! The figures are the process's own, read from Linux's `/proc`: CPU time
//! (`/proc/self/stat`, in clock ticks of `USER_HZ`, 100 a second on every
//! architecture Linux exports them for) over the last interval as a share
//! of every core, resident memory (`/proc/self/status`) as a share of the
//! machine's (`/proc/meminfo`). Elsewhere, or when a file cannot be read,
//! they are 0. A heartbeat that cannot be written is retried at the next
//! tick: the cache failing never stops a worker.
//!
//! Beside it, each tick: the process's last log lines ([`csp_telemetry::LogRing`],
//! 100 lines of at most 1 KiB, redacted and escaped as the text log writes
//! them) under `tickets-worker-logs:<worker_id>`, written when new lines
//! came (and every 15 minutes, so they outlive no heartbeat); and the
//! admin's restart command, `tickets-worker-drain:<worker_id>`: once read,
//! the heartbeat says `draining` and [`Heartbeat::drain_token`] is
//! cancelled, which stops the worker taking jobs (`Worker::run`). In
//! `csp dev` the worker runs inside the one `csp` process, whose lines (all
//! services') they are, as its CPU and memory figures are.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use csp_cache::Cache;
use csp_domain::{HEARTBEAT_TTL, LogLevel, WorkerHeartbeat, WorkerLogLine, WorkerLogs};
use csp_telemetry::LogRing;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// `USER_HZ`: the unit of `utime` and `stime` in `/proc/<pid>/stat`.
const TICKS_PER_SECOND: f64 = 100.0;
/// Jobs per minute counts the completions of this long.
const MINUTE: Duration = Duration::from_secs(60);
/// Unchanged log lines are written again this often, well within their
/// time to live ([`HEARTBEAT_TTL`]).
const LOGS_REFRESH: Duration = Duration::from_secs(15 * 60);

/// Who this worker process is (its id, drawn at its start) and what its
/// jobs have done, counted by the job handler.
pub(crate) struct Tally {
    worker_id: uuid::Uuid,
    active: AtomicU32,
    completed: AtomicU64,
    failed: AtomicU64,
    /// When the jobs of the last minute completed, oldest first.
    recent: Mutex<VecDeque<Instant>>,
}

/// Counts one job as active for as long as it lives.
pub(crate) struct Busy<'a>(&'a Tally);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A moment's figures of a [`Tally`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Counts {
    pub(crate) active: u32,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) per_minute: f64,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            worker_id: uuid::Uuid::new_v4(),
            active: AtomicU32::default(),
            completed: AtomicU64::default(),
            failed: AtomicU64::default(),
            recent: Mutex::default(),
        }
    }
}

impl Tally {
    /// The worker's id: its heartbeat's, and the one on the jobs it ends.
    pub(crate) fn worker_id(&self) -> uuid::Uuid {
        self.worker_id
    }

    pub(crate) fn busy(&self) -> Busy<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        Busy(self)
    }

    pub(crate) fn completed(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        forget_before(&mut recent, now);
        recent.push_back(now);
    }

    pub(crate) fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn counts(&self) -> Counts {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        forget_before(&mut recent, Instant::now());
        Counts {
            active: self.active.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            per_minute: recent.len() as f64,
        }
    }
}

fn forget_before(recent: &mut VecDeque<Instant>, now: Instant) {
    while recent
        .front()
        .is_some_and(|at| now.duration_since(*at) > MINUTE)
    {
        recent.pop_front();
    }
}

/// Writes this process's heartbeats.
pub(crate) struct Heartbeat {
    cache: Arc<dyn Cache>,
    tally: Arc<Tally>,
    every: Duration,
    worker_id: uuid::Uuid,
    hostname: String,
    started_at: OffsetDateTime,
    cpu: CpuSampler,
    /// The process's recent log lines, published beside the heartbeat.
    logs: Option<LogRing>,
    /// The ring's count when its lines were last written, and when.
    logs_written: Option<(u64, Instant)>,
    /// Cancelled once a restart command was read.
    drain: CancellationToken,
}

impl Heartbeat {
    /// The counts its heartbeats report, for the job handler to keep.
    pub(crate) fn tally(&self) -> Arc<Tally> {
        self.tally.clone()
    }

    pub(crate) fn new(cache: Arc<dyn Cache>, tally: Arc<Tally>, every: Duration) -> Self {
        Self {
            cache,
            worker_id: tally.worker_id(),
            tally,
            every,
            hostname: hostname(),
            started_at: OffsetDateTime::now_utc(),
            cpu: CpuSampler::start(),
            logs: None,
            logs_written: None,
            drain: CancellationToken::new(),
        }
    }

    /// Publishes `ring`'s lines beside the heartbeat.
    pub(crate) fn with_logs(mut self, ring: Option<LogRing>) -> Self {
        self.logs = ring;
        self
    }

    /// Cancelled when an admin's restart command for this worker was read:
    /// the worker then takes no new job and exits once its jobs settled.
    pub(crate) fn drain_token(&self) -> CancellationToken {
        self.drain.clone()
    }

    /// This moment's heartbeat (CPU: since the previous one).
    pub(crate) fn beat(&mut self) -> WorkerHeartbeat {
        let counts = self.tally.counts();
        WorkerHeartbeat {
            worker_id: self.worker_id,
            hostname: self.hostname.clone(),
            started_at: self.started_at,
            sent_at: OffsetDateTime::now_utc(),
            interval_ms: u64::try_from(self.every.as_millis()).unwrap_or(u64::MAX),
            active_jobs: counts.active,
            completed_jobs: counts.completed,
            failed_jobs: counts.failed,
            cpu_percent: round2(self.cpu.percent()),
            memory_percent: round2(memory_percent().unwrap_or(0.0)),
            jobs_per_minute: counts.per_minute,
            draining: self.drain.is_cancelled(),
        }
    }

    /// Cancels [`Heartbeat::drain_token`] once this worker's restart
    /// command is in the cache. A cache that does not answer is asked
    /// again at the next tick (the heartbeat's own write says it fails).
    async fn read_drain(&self, key: &str) {
        if self.drain.is_cancelled() {
            return;
        }
        if let Ok(Some(_)) = self.cache.get(key).await {
            tracing::warn!(worker_id = %self.worker_id, operation = "restart", status = "draining",
                "restart requested: taking no new job; exiting once the jobs in flight have settled");
            self.drain.cancel();
        }
    }

    /// Writes the ring's lines when new ones came or they were last
    /// written [`LOGS_REFRESH`] ago.
    async fn publish_logs(&mut self, key: &str) {
        let Some(ring) = &self.logs else { return };
        let written = ring.written();
        if self
            .logs_written
            .is_some_and(|(n, at)| n == written && at.elapsed() < LOGS_REFRESH)
        {
            return;
        }
        let logs = WorkerLogs {
            worker_id: self.worker_id,
            lines: ring
                .lines()
                .into_iter()
                .filter_map(|line| {
                    Some(WorkerLogLine {
                        level: log_level(line.level)?,
                        text: line.text,
                    })
                })
                .collect(),
        };
        let Ok(json) = serde_json::to_string(&logs) else {
            return;
        };
        // A failure is the heartbeat's too, and said there.
        if self.cache.put(key, &json, HEARTBEAT_TTL).await.is_ok() {
            self.logs_written = Some((written, Instant::now()));
        }
    }

    /// Writes a heartbeat now and every interval until `stop`, then deletes
    /// this worker's key (call it once the jobs have settled).
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let key = csp_domain::heartbeat_key(self.worker_id);
        let logs_key = csp_domain::worker_logs_key(self.worker_id);
        let drain_key = csp_domain::worker_drain_key(self.worker_id);
        tracing::info!(worker_id = %self.worker_id, hostname = %self.hostname,
            "tickets worker heartbeats every {} ms", self.every.as_millis());
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.read_drain(&drain_key).await;
            let beat = self.beat();
            let written = match serde_json::to_string(&beat) {
                Ok(json) => self
                    .cache
                    .put(&key, &json, HEARTBEAT_TTL)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match written {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(
                        operation = "heartbeat",
                        status = "ok",
                        "heartbeats written again"
                    );
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(operation = "heartbeat", status = "error", error = %e,
                        "cannot write the worker's heartbeat; retrying every interval");
                }
                Err(_) => {}
            }
            self.publish_logs(&logs_key).await;
        }
        if let Err(e) = self.cache.delete(&key).await {
            tracing::warn!(operation = "heartbeat", status = "error", error = %e,
                "cannot delete the worker's heartbeat; it shows unresponsive until it expires");
        }
        // Its lines and a restart command leave with it (both expire too).
        for key in [logs_key, drain_key] {
            let _ = self.cache.delete(&key).await;
        }
    }
}

/// A line's level as the Workers page filters it; trace lines are not kept.
fn log_level(level: tracing::Level) -> Option<LogLevel> {
    Some(match level {
        tracing::Level::ERROR => LogLevel::Error,
        tracing::Level::WARN => LogLevel::Warn,
        tracing::Level::INFO => LogLevel::Info,
        tracing::Level::DEBUG => LogLevel::Debug,
        _ => return None,
    })
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The machine's name as the kernel knows it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// CPU use of this process between two readings.
struct CpuSampler {
    last: Option<(f64, Instant)>,
    cores: f64,
}

impl CpuSampler {
    fn start() -> Self {
        Self {
            last: cpu_seconds().map(|s| (s, Instant::now())),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
        }
    }

    /// Percent of every core used since the previous call (or the start).
    fn percent(&mut self) -> f64 {
        let Some(now_s) = cpu_seconds() else {
            return 0.0;
        };
        let now = Instant::now();
        let percent = match self.last {
            Some((then_s, then)) => {
                let wall = now.duration_since(then).as_secs_f64();
                if wall > 0.0 {
                    ((now_s - then_s) / wall / self.cores * 100.0).clamp(0.0, 100.0)
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now_s, now));
        percent
    }
}

/// User plus system CPU time of this process, in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    stat_cpu_ticks(&stat).map(|ticks| ticks as f64 / TICKS_PER_SECOND)
}

/// `utime + stime` of a `/proc/<pid>/stat` line (fields 14 and 15; the
/// command in field 2 may hold spaces and parentheses, so fields are
/// counted after its last `)`).
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of this process as a share of the machine's.
fn memory_percent() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let rss = kib_field(&status, "VmRSS:")?;
    let total = kib_field(&meminfo, "MemTotal:")?;
    (total > 0).then(|| rss as f64 / total as f64 * 100.0)
}

/// The value of a `Name:   1234 kB` line.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_cache::MemoryCache;
    use csp_domain::{WORKER_HEARTBEAT_PREFIX, WorkerStatus};

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "4242 (csp (tickets) worker) S 1 4242 4242 0 -1 4194560 2583 0 0 0 \
                    1500 250 0 0 20 0 12 0 100 123456 789 18446744073709551615";
        assert_eq!(stat_cpu_ticks(stat), Some(1750));
        assert_eq!(stat_cpu_ticks("garbage"), None);
        assert_eq!(stat_cpu_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn kib_fields_are_read_by_name() {
        let meminfo = "MemTotal:       16303884 kB\nMemFree:         1234 kB\n";
        assert_eq!(kib_field(meminfo, "MemTotal:"), Some(16_303_884));
        assert_eq!(kib_field(meminfo, "VmRSS:"), None);
        assert_eq!(kib_field("VmRSS:\t  2048 kB", "VmRSS:"), Some(2048));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_memory_share_and_a_cpu_time() {
        let memory = memory_percent().unwrap();
        assert!(memory > 0.0 && memory < 100.0, "{memory}");
        assert!(cpu_seconds().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_tally_counts_jobs_and_completions_of_the_last_minute() {
        let tally = Tally::default();
        let one = tally.busy();
        let two = tally.busy();
        assert_eq!(tally.counts().active, 2);
        tally.completed();
        drop(one);
        tokio::time::advance(Duration::from_secs(30)).await;
        tally.completed();
        tally.failed();
        drop(two);
        assert_eq!(
            tally.counts(),
            Counts {
                active: 0,
                completed: 2,
                failed: 1,
                per_minute: 2.0
            }
        );
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(tally.counts().per_minute, 1.0, "the first left the minute");
        assert_eq!(tally.counts().completed, 2, "but still counts as done");
    }

    async fn heartbeats(cache: &MemoryCache) -> Vec<WorkerHeartbeat> {
        cache
            .values_by_prefix(WORKER_HEARTBEAT_PREFIX)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, json)| serde_json::from_str(&json).unwrap())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_heartbeats_every_interval_and_leaves_when_stopped() {
        let cache = Arc::new(MemoryCache::new());
        let tally = Arc::new(Tally::default());
        let every = Duration::from_secs(5);
        let heartbeat = Heartbeat::new(cache.clone(), tally.clone(), every);
        let worker_id = heartbeat.worker_id;
        let stop = CancellationToken::new();
        let running = tokio::spawn(heartbeat.run(stop.clone()));

        // The first one at once.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let first = heartbeats(&cache).await;
        assert_eq!(first.len(), 1, "{first:?}");
        let beat = &first[0];
        assert_eq!(beat.worker_id, worker_id);
        assert!(!beat.hostname.is_empty());
        assert_eq!(beat.interval_ms, 5000);
        assert_eq!((beat.active_jobs, beat.completed_jobs), (0, 0));
        assert_eq!(beat.status(OffsetDateTime::now_utc()), WorkerStatus::Idle);

        // A job runs and another completes: the next heartbeat says so.
        let busy = tally.busy();
        tally.completed();
        tokio::time::sleep(every).await;
        let beat = heartbeats(&cache).await.remove(0);
        assert_eq!(
            (beat.active_jobs, beat.completed_jobs, beat.jobs_per_minute),
            (1, 1, 1.0)
        );
        assert!(beat.sent_at >= first[0].sent_at);
        assert_eq!(beat.status(OffsetDateTime::now_utc()), WorkerStatus::Active);
        drop(busy);

        let key = csp_domain::heartbeat_key(worker_id);
        stop.cancel();
        running.await.unwrap();
        assert_eq!(
            cache.get(&key).await.unwrap(),
            None,
            "a stopped worker leaves"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_command_drains_the_worker_and_its_heartbeat_says_so() {
        let cache = Arc::new(MemoryCache::new());
        let every = Duration::from_secs(5);
        let heartbeat = Heartbeat::new(cache.clone(), Arc::default(), every);
        let (worker_id, drain) = (heartbeat.worker_id, heartbeat.drain_token());
        let stop = CancellationToken::new();
        let running = tokio::spawn(heartbeat.run(stop.clone()));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!drain.is_cancelled());
        assert!(!heartbeats(&cache).await[0].draining);
        // Another worker's command is not this one's.
        let other = csp_domain::worker_drain_key(uuid::Uuid::new_v4());
        cache
            .put(&other, "{}", Duration::from_secs(60))
            .await
            .unwrap();
        tokio::time::sleep(every).await;
        assert!(!drain.is_cancelled());
        // Its own: read at the next tick, said in the same heartbeat.
        let key = csp_domain::worker_drain_key(worker_id);
        cache
            .put(&key, "{}", Duration::from_secs(60))
            .await
            .unwrap();
        tokio::time::sleep(every).await;
        assert!(drain.is_cancelled());
        let beat = heartbeats(&cache).await.remove(0);
        assert!(beat.draining);
        assert_eq!(
            beat.status(OffsetDateTime::now_utc()),
            WorkerStatus::Draining
        );
        stop.cancel();
        running.await.unwrap();
        assert!(heartbeats(&cache).await.is_empty());
        assert_eq!(cache.get(&key).await.unwrap(), None, "the command went too");
    }

    async fn logs(cache: &MemoryCache, worker_id: uuid::Uuid) -> Option<WorkerLogs> {
        let json = cache
            .get(&csp_domain::worker_logs_key(worker_id))
            .await
            .unwrap()?;
        Some(serde_json::from_str(&json).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_log_lines_are_published_beside_the_heartbeat_when_new_ones_came() {
        let cache = Arc::new(MemoryCache::new());
        let every = Duration::from_secs(5);
        let ring = LogRing::new(3, 1024);
        ring.push(tracing::Level::INFO, "1 INFO started");
        ring.push(tracing::Level::WARN, "2 WARN slow source");
        let heartbeat =
            Heartbeat::new(cache.clone(), Arc::default(), every).with_logs(Some(ring.clone()));
        let worker_id = heartbeat.worker_id;
        let stop = CancellationToken::new();
        let running = tokio::spawn(heartbeat.run(stop.clone()));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let first = logs(&cache, worker_id).await.unwrap();
        assert_eq!(first.worker_id, worker_id);
        assert_eq!(
            first.lines,
            [
                WorkerLogLine {
                    level: LogLevel::Info,
                    text: "1 INFO started".into()
                },
                WorkerLogLine {
                    level: LogLevel::Warn,
                    text: "2 WARN slow source".into()
                },
            ]
        );
        // Nothing new: not written again (gone from the cache, it stays gone).
        cache
            .delete(&csp_domain::worker_logs_key(worker_id))
            .await
            .unwrap();
        tokio::time::sleep(every).await;
        assert_eq!(logs(&cache, worker_id).await, None);
        // New lines: the ring's last three at the next heartbeat.
        ring.push(tracing::Level::ERROR, "3 ERROR boom");
        ring.push(tracing::Level::DEBUG, "4 DEBUG detail");
        tokio::time::sleep(every).await;
        let texts: Vec<String> = logs(&cache, worker_id)
            .await
            .unwrap()
            .lines
            .into_iter()
            .map(|l| l.text)
            .collect();
        assert_eq!(
            texts,
            ["2 WARN slow source", "3 ERROR boom", "4 DEBUG detail"]
        );
        stop.cancel();
        running.await.unwrap();
        assert_eq!(logs(&cache, worker_id).await, None, "they leave with it");
    }

    #[test]
    fn trace_lines_have_no_level_on_the_page() {
        assert_eq!(log_level(tracing::Level::ERROR), Some(LogLevel::Error));
        assert_eq!(log_level(tracing::Level::DEBUG), Some(LogLevel::Debug));
        assert_eq!(log_level(tracing::Level::TRACE), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_is_kept_for_an_hour() {
        let cache = Arc::new(MemoryCache::new());
        let mut heartbeat = Heartbeat::new(cache.clone(), Arc::default(), Duration::from_secs(5));
        let beat = heartbeat.beat();
        // What `run` writes, without the loop (a dead worker writes no more).
        cache
            .put(
                &beat.key(),
                &serde_json::to_string(&beat).unwrap(),
                HEARTBEAT_TTL,
            )
            .await
            .unwrap();
        tokio::time::advance(HEARTBEAT_TTL - Duration::from_secs(1)).await;
        assert_eq!(heartbeats(&cache).await.len(), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(heartbeats(&cache).await.is_empty());
    }
}
