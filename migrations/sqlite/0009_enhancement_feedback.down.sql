-- Reverts 0009_enhancement_feedback.up.sql (a column cannot be dropped
-- while an index names it).
DROP INDEX enhancement_history_feedback;
ALTER TABLE enhancement_history DROP COLUMN feedback_at;
ALTER TABLE enhancement_history DROP COLUMN feedback;
