-- The dashboard's figures of the last 24 hours (crates/store/src/stats.rs):
-- the jobs that ended since a moment, counted by status, and the 95th
-- percentile of their processing time. Status first: both statements ask
-- for `status IN ('completed', 'failed') AND completed_at >= $1`, which is
-- two range reads of this index (on SQLite too, whose planner would
-- otherwise take the status index and visit most of the table). Covering,
-- so neither reads the wide rows of the history (100k rows and more).
CREATE INDEX enhancement_history_completed
    ON enhancement_history (status, completed_at, processing_time_ms);
