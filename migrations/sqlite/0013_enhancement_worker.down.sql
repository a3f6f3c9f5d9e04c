-- Reverts 0013_enhancement_worker.up.sql (a column cannot be dropped while
-- an index names it).
DROP INDEX enhancement_history_worker;
ALTER TABLE enhancement_history DROP COLUMN worker_id;
