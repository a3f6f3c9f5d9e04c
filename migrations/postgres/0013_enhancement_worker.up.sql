-- Which tickets worker ended a job (issue 16, the Workers page's 7-day
-- throughput): the worker's id (drawn when its process starts, the id of
-- its heartbeat) on the job's row when it completes or fails. NULL for jobs
-- ended before this migration, by the dead letters' consumer or by an
-- operation (clearing the queue). Reversible:
-- 0013_enhancement_worker.down.sql drops the column.
ALTER TABLE enhancement_history ADD COLUMN worker_id UUID;

-- A worker's jobs ended per hour (crates/store/src/throughput.rs): one range
-- read per hour of this index, covering (the status splits completed from
-- failed), over the rows a worker ended only.
CREATE INDEX enhancement_history_worker
    ON enhancement_history (worker_id, completed_at, status)
    WHERE worker_id IS NOT NULL;
