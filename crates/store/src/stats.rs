//! Figures over the enhancement history for the operations dashboard: how
//! many jobs ended in a period, how many of them failed, and the 95th
//! percentile of their processing time. Read-only, across tenants (like
//! [`EnhancementStore::enhancement_counts`](crate::EnhancementStore)).
//!
//! Kept fast at 100k history rows and more: both statements read only the
//! jobs that ended in the period, from the covering index on `(status,
//! completed_at, processing_time_ms)` (migration 0010) and never from the
//! table, and the percentile is one row of a sorted read that the database
//! cuts short (top-N), never the period's rows sent over.
//!
//! And the charts' figures of a period in steps
//! ([`StatsStore::enhancement_steps`]): jobs created and ended per step,
//! the queue depth at each step's end and a histogram of the ended jobs'
//! processing times. Bounded whatever the history holds: the database
//! groups (three statements, each over one index: `enhancement_history_completed`,
//! `enhancement_history_created` and `enhancement_history_status`), so at
//! most steps × statuses × [`LATENCY_BOUNDS_MS`] rows come back, never the
//! jobs themselves.

use crate::dialect::Dialect;
use crate::error::Error;
use crate::sql::SqlStore;
use async_trait::async_trait;
use csp_domain::EnhancementStatus;
use time::OffsetDateTime;

/// The jobs that ended (completed or failed) since a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnhancementStats {
    pub completed: u64,
    pub failed: u64,
    /// The 95th percentile (nearest rank) of `processing_time_ms` over the
    /// ended jobs that recorded one; `None` when none did.
    pub p95_processing_ms: Option<u64>,
}

impl EnhancementStats {
    /// completed / (completed + failed); `None` when no job ended.
    pub fn success_rate(&self) -> Option<f64> {
        let ended = self.completed + self.failed;
        (ended > 0).then(|| self.completed as f64 / ended as f64)
    }
}

#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Jobs whose `completed_at` (the moment a job became completed or
    /// failed) is at or after `since`.
    async fn enhancement_stats(&self, since: OffsetDateTime) -> Result<EnhancementStats, Error>;
    /// The history in `steps` steps of `step` from `from` (step `k` is
    /// `[from + k·step, from + (k+1)·step)`), one [`StepFigures`] each:
    /// the jobs created and ended in it (by `created_at` and
    /// `completed_at`), their processing times, and the jobs pending or
    /// processing at its end. [`Error::InvalidInput`] for a step under a
    /// millisecond or more than [`MAX_STEPS`] steps.
    async fn enhancement_steps(
        &self,
        from: OffsetDateTime,
        step: std::time::Duration,
        steps: u32,
    ) -> Result<Vec<StepFigures>, Error>;
}

/// At most this many steps per [`StatsStore::enhancement_steps`].
pub const MAX_STEPS: u32 = 10_000;

/// The upper bounds (inclusive, milliseconds) of the processing-time
/// histogram of [`StepFigures`]; one more bucket holds the times above the
/// last. Dense where enhancement jobs take their time (1 to 120 s), so an
/// estimate from it is within a few percent.
pub const LATENCY_BOUNDS_MS: &[u64] = &[
    100, 250, 500, 750, 1_000, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000,
    9_000, 10_000, 12_000, 14_000, 16_000, 18_000, 20_000, 25_000, 30_000, 35_000, 40_000, 45_000,
    50_000, 55_000, 60_000, 70_000, 80_000, 90_000, 100_000, 110_000, 120_000, 150_000, 180_000,
    240_000, 300_000, 360_000,
];

/// How many jobs ended with a processing time in each bucket of
/// [`LATENCY_BOUNDS_MS`] (and above the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; LATENCY_BOUNDS_MS.len() + 1],
        }
    }
}

impl LatencyHistogram {
    /// The bucket of a processing time.
    pub fn bucket_of(ms: u64) -> usize {
        LATENCY_BOUNDS_MS.partition_point(|bound| *bound < ms)
    }

    pub fn record(&mut self, ms: u64) {
        self.counts[Self::bucket_of(ms)] += 1;
    }

    /// Each bucket's count, the one above the last bound last.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn add(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Takes away what [`add`](Self::add) put in (a sliding window).
    pub fn subtract(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_sub(*b);
        }
    }

    /// The `q` quantile (0 to 1) in milliseconds, estimated as Prometheus'
    /// `histogram_quantile` does: rank `q · total`, linear within its
    /// bucket (the first from 0), the last bound for the bucket above it.
    /// `None` when the histogram is empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let Some(&upper) = LATENCY_BOUNDS_MS.get(i) else {
                    return LATENCY_BOUNDS_MS.last().map(|b| *b as f64);
                };
                let lower = if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] };
                let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                return Some(lower as f64 + (upper - lower) as f64 * within);
            }
            below += n;
        }
        None
    }
}

/// One step of [`StatsStore::enhancement_steps`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepFigures {
    /// Jobs pending or processing at the step's end.
    pub queue_depth: u64,
    pub created: u64,
    pub completed: u64,
    pub failed: u64,
    /// The processing times of the jobs that ended in the step (those that
    /// recorded one).
    pub latency: LatencyHistogram,
}

/// The nearest-rank position of the `pct`th percentile among `n` sorted
/// values, counted from the largest (0: the largest): rank
/// `ceil(pct / 100 · n)` from the smallest.
fn offset_from_top(n: u64, pct: u64) -> u64 {
    let rank = (n * pct).div_ceil(100).max(1);
    n - rank
}

#[async_trait]
impl<DB: Dialect> StatsStore for SqlStore<DB> {
    async fn enhancement_stats(&self, since: OffsetDateTime) -> Result<EnhancementStats, Error> {
        let db = &self.db;
        let rows = db
            .sql(
                "SELECT status, count(*) AS n, count(processing_time_ms) AS timed \
                 FROM enhancement_history \
                 WHERE completed_at >= $1 AND status IN ('completed', 'failed') \
                 GROUP BY status",
            )
            .bind_time(since)
            .fetch_all(db.pool())
            .await?;
        let mut stats = EnhancementStats::default();
        let mut timed = 0;
        for row in &rows {
            let row = db.columns(row);
            let status: String = row.get("status")?;
            let status: EnhancementStatus =
                status.parse().map_err(|e| Error::Corrupt(format!("{e}")))?;
            let n = row.count("n")?;
            match status {
                EnhancementStatus::Completed => stats.completed = n,
                EnhancementStatus::Failed => stats.failed = n,
                _ => continue,
            }
            timed += row.count("timed")?;
        }
        if timed == 0 {
            return Ok(stats);
        }
        // Rows ending between the two statements can shift the rank by a
        // few: a percentile of a moving window, not an exact one. Should
        // the offset overshoot, no row comes back and the next call has it.
        let offset = i64::try_from(offset_from_top(timed, 95)).unwrap_or(i64::MAX);
        let row = db
            .sql(
                "SELECT processing_time_ms FROM enhancement_history \
                 WHERE completed_at >= $1 AND status IN ('completed', 'failed') \
                 AND processing_time_ms IS NOT NULL \
                 ORDER BY processing_time_ms DESC LIMIT 1 OFFSET $2",
            )
            .bind_time(since)
            .bind(offset)
            .fetch_optional(db.pool())
            .await?;
        if let Some(row) = row {
            let ms: i64 = db.columns(&row).get("processing_time_ms")?;
            stats.p95_processing_ms = Some(u64::try_from(ms).unwrap_or(0));
        }
        Ok(stats)
    }

    async fn enhancement_steps(
        &self,
        from: OffsetDateTime,
        step: std::time::Duration,
        steps: u32,
    ) -> Result<Vec<StepFigures>, Error> {
        let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
        if step_ms < 1 || steps > MAX_STEPS {
            return Err(Error::InvalidInput(format!(
                "a step of at least 1 ms and at most {MAX_STEPS} steps"
            )));
        }
        let db = &self.db;
        let from = crate::timestamp::truncate(from);
        let from_ms = crate::timestamp::to_unix_ms(from);
        // Step of an instant: (ms - from) / step, integer division of
        // non-negative numbers. The statements have no upper bound: what
        // happened after the last step (the clock moved on, or stands
        // behind another replica's) still counts in the depths below.
        let latency = latency_case("processing_time_ms");
        let ended = db
            .dialect_sql(format!(
                "SELECT ({} - $1) / $2 AS bucket, status, {latency} AS latency, count(*) AS n \
                 FROM enhancement_history \
                 WHERE status IN ('completed', 'failed') AND completed_at >= $3 \
                 GROUP BY bucket, status, latency",
                DB::epoch_ms("completed_at")
            ))
            .bind(from_ms)
            .bind(step_ms)
            .bind_time(from)
            .fetch_all(db.pool())
            .await?;
        let created = db
            .dialect_sql(format!(
                "SELECT ({} - $1) / $2 AS bucket, count(*) AS n FROM enhancement_history \
                 WHERE created_at >= $3 GROUP BY bucket",
                DB::epoch_ms("created_at")
            ))
            .bind(from_ms)
            .bind(step_ms)
            .bind_time(from)
            .fetch_all(db.pool())
            .await?;
        let open = db
            .sql(
                "SELECT count(*) AS n FROM enhancement_history \
                 WHERE status IN ('pending', 'processing')",
            )
            .fetch_one(db.pool())
            .await?;

        let n = steps as usize;
        let mut figures = vec![StepFigures::default(); n];
        // Ended minus created from the step's end on, the steps after the
        // last included: the depth at a step's end is the depth now minus
        // what arrived since plus what left since.
        let mut later = vec![0i64; n + 1];
        let index = |bucket: i64| usize::try_from(bucket).map_or(n, |b| b.min(n));
        for row in &ended {
            let row = db.columns(row);
            let k = index(row.get("bucket")?);
            let status: String = row.get("status")?;
            let status: EnhancementStatus =
                status.parse().map_err(|e| Error::Corrupt(format!("{e}")))?;
            let count = row.count("n")?;
            later[k] += i64::try_from(count).unwrap_or(i64::MAX);
            let Some(f) = figures.get_mut(k) else {
                continue;
            };
            match status {
                EnhancementStatus::Completed => f.completed += count,
                EnhancementStatus::Failed => f.failed += count,
                _ => continue,
            }
            let bucket: i64 = row.get("latency")?;
            if let Ok(b) = usize::try_from(bucket)
                && let Some(c) = f.latency.counts.get_mut(b)
            {
                *c += count;
            }
        }
        for row in &created {
            let row = db.columns(row);
            let k = index(row.get("bucket")?);
            let count = row.count("n")?;
            later[k] -= i64::try_from(count).unwrap_or(i64::MAX);
            if let Some(f) = figures.get_mut(k) {
                f.created += count;
            }
        }
        let mut depth = i64::try_from(db.columns(&open).count("n")?).unwrap_or(i64::MAX);
        depth += later[n];
        for k in (0..n).rev() {
            // A job retried after it failed has lost its first end: the
            // past can come out below zero, which no queue ever was.
            figures[k].queue_depth = u64::try_from(depth).unwrap_or(0);
            depth += later[k];
        }
        Ok(figures)
    }
}

/// The SQL bucket of [`LATENCY_BOUNDS_MS`] for the column `ms`: 0 for the
/// first bound, one past the last above it, -1 for no time. Only the
/// constants are formatted in.
fn latency_case(ms: &str) -> String {
    // BIGINT: Postgres would type a CASE of small literals INTEGER.
    let mut case = format!("CAST(CASE WHEN {ms} IS NULL THEN -1");
    for (i, bound) in LATENCY_BOUNDS_MS.iter().enumerate() {
        case.push_str(&format!(" WHEN {ms} <= {bound} THEN {i}"));
    }
    case.push_str(&format!(" ELSE {} END AS BIGINT)", LATENCY_BOUNDS_MS.len()));
    case
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_is_the_nearest_rank_from_the_top() {
        // One value: itself.
        assert_eq!(offset_from_top(1, 95), 0);
        // 20 values: rank 19 of 20, the second largest.
        assert_eq!(offset_from_top(20, 95), 1);
        // 100 values: rank 95, five above it.
        assert_eq!(offset_from_top(100, 95), 5);
        assert_eq!(offset_from_top(101, 95), 5);
        assert_eq!(offset_from_top(100_000, 95), 5_000);
    }

    #[test]
    fn latency_buckets_take_their_upper_bound_inclusively() {
        assert_eq!(LatencyHistogram::bucket_of(0), 0);
        assert_eq!(LatencyHistogram::bucket_of(100), 0);
        assert_eq!(LatencyHistogram::bucket_of(101), 1);
        assert_eq!(
            LatencyHistogram::bucket_of(360_001),
            LATENCY_BOUNDS_MS.len()
        );
        assert!(LATENCY_BOUNDS_MS.windows(2).all(|w| w[0] < w[1]));
        let case = latency_case("t");
        assert!(case.starts_with("CAST(CASE WHEN t IS NULL THEN -1 WHEN t <= 100 THEN 0 "));
        assert!(
            case.ends_with(" WHEN t <= 360000 THEN 39 ELSE 40 END AS BIGINT)"),
            "{case}"
        );
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket_as_prometheus_does() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile_ms(0.5), None);
        // Ten jobs of 1.5 to 2 s: all in the (1500, 2000] bucket.
        for _ in 0..10 {
            h.record(1_800);
        }
        // Rank 5 of 10 within the bucket: halfway.
        assert_eq!(h.quantile_ms(0.5), Some(1_750.0));
        assert_eq!(h.quantile_ms(1.0), Some(2_000.0));
        // Ten more under 100 ms: the median is the first bucket's top.
        for _ in 0..10 {
            h.record(50);
        }
        assert_eq!(h.quantile_ms(0.5), Some(100.0));
        assert_eq!(h.quantile_ms(0.25), Some(50.0));
        // Rank 19.8: 9.8 of the 10 in (1500, 2000].
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!((p99 - 1_990.0).abs() < 1e-6, "{p99}");
        // Above the last bound: the last bound.
        let mut slow = LatencyHistogram::default();
        slow.record(10_000_000);
        assert_eq!(slow.quantile_ms(0.5), Some(360_000.0));
        // A window slides: what was added is taken away.
        let mut sum = h.clone();
        sum.add(&slow);
        assert_eq!(sum.total(), 21);
        sum.subtract(&slow);
        assert_eq!(sum, h);
        assert_eq!(h.quantile_ms(1.5), None);
    }

    #[test]
    fn the_success_rate_needs_an_ended_job() {
        assert_eq!(EnhancementStats::default().success_rate(), None);
        let stats = EnhancementStats {
            completed: 19,
            failed: 1,
            p95_processing_ms: None,
        };
        assert_eq!(stats.success_rate(), Some(0.95));
    }
}
