-- Reverts 0009_enhancement_feedback.up.sql (dropping the columns drops
-- their constraints).
DROP INDEX enhancement_history_feedback;
ALTER TABLE enhancement_history DROP COLUMN feedback_at, DROP COLUMN feedback;
