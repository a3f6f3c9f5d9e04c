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
