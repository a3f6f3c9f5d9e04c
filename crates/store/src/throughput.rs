//! A tickets worker's throughput for the Workers page: the jobs it ended
//! (completed or failed) per step of a period, from the `worker_id` the
//! worker records on a job's row when it ends it (migration 0013).
//!
//! Bounded whatever the history holds: one statement joins the period's
//! steps (a `VALUES` list of their bounds, written the same for both
//! databases) with the covering index on `(worker_id, completed_at,
//! status)`, one range read per step, and the database counts, so at most
//! one row per step comes back.

use crate::dialect::Dialect;
use crate::error::Error;
use crate::sql::SqlStore;
use async_trait::async_trait;
use sqlx::QueryBuilder;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// At most this many steps per call (each binds two instants).
pub const MAX_THROUGHPUT_STEPS: u32 = 1_000;

/// The jobs one worker ended in one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThroughputStep {
    /// The step is `[start, start + step)`.
    pub start: OffsetDateTime,
    pub completed: u64,
    pub failed: u64,
}

#[async_trait]
pub trait ThroughputStore: Send + Sync {
    /// The jobs `worker_id` ended in each of `steps` steps of `step` from
    /// `from` (by `completed_at`), oldest first, zeros included.
    /// [`Error::InvalidInput`] for a step under a second or more than
    /// [`MAX_THROUGHPUT_STEPS`] steps.
    async fn worker_throughput(
        &self,
        worker_id: Uuid,
        from: OffsetDateTime,
        step: Duration,
        steps: u32,
    ) -> Result<Vec<ThroughputStep>, Error>;
}

#[async_trait]
impl<DB: Dialect> ThroughputStore for SqlStore<DB> {
    async fn worker_throughput(
        &self,
        worker_id: Uuid,
        from: OffsetDateTime,
        step: Duration,
        steps: u32,
    ) -> Result<Vec<ThroughputStep>, Error> {
        if step < Duration::from_secs(1) || steps > MAX_THROUGHPUT_STEPS {
            return Err(Error::InvalidInput(format!(
                "a throughput is at most {MAX_THROUGHPUT_STEPS} steps of a second or more, \
                 not {steps} of {step:?}"
            )));
        }
        let mut out: Vec<ThroughputStep> = (0..steps)
            .map(|k| ThroughputStep {
                start: from + step * k,
                completed: 0,
                failed: 0,
            })
            .collect();
        if steps == 0 {
            return Ok(out);
        }
        // Step k is the row (k, start, end); both databases name a VALUES
        // list's columns column1, column2, … The index is pushed as a
        // literal: it is ours, a number.
        let mut query = QueryBuilder::<DB>::new(
            "SELECT CAST(s.column1 AS BIGINT) AS step, \
             count(CASE WHEN h.status = 'completed' THEN 1 END) AS completed, \
             count(CASE WHEN h.status = 'failed' THEN 1 END) AS failed \
             FROM (VALUES ",
        );
        for (k, s) in out.iter().enumerate() {
            if k > 0 {
                query.push(", ");
            }
            query.push(format!("({k}, "));
            DB::push_bind(&mut query, DB::time(s.start));
            query.push(", ");
            DB::push_bind(&mut query, DB::time(s.start + step));
            query.push(")");
        }
        query.push(") AS s JOIN enhancement_history h ON h.worker_id = ");
        DB::push_bind(&mut query, DB::id(worker_id));
        query.push(
            " AND h.completed_at >= s.column2 AND h.completed_at < s.column3 \
             AND h.status IN ('completed', 'failed') GROUP BY s.column1",
        );
        let db = &self.db;
        for row in db.fetch_built(query).await? {
            let row = db.columns(&row);
            let k: i64 = row.get("step")?;
            let Some(slot) = usize::try_from(k).ok().and_then(|k| out.get_mut(k)) else {
                return Err(Error::Corrupt(format!("throughput step {k} out of range")));
            };
            slot.completed = row.count("completed")?;
            slot.failed = row.count("failed")?;
        }
        Ok(out)
    }
}
