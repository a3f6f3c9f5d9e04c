-- Reverts 0010_enhancement_completed_index.up.sql.
DROP INDEX enhancement_history_completed;
