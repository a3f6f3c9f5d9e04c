-- Technicians' feedback on posted notes: each note ends with signed "Was
-- this helpful?" links, and a click records its vote on the job (the
-- latest vote stands). Reversible: 0009_enhancement_feedback.down.sql
-- drops both columns and the index.

-- NULL: no vote (every job before this one). A vote comes with its time.
ALTER TABLE enhancement_history
    ADD COLUMN feedback TEXT CHECK (feedback IN ('helpful', 'not_helpful')),
    ADD COLUMN feedback_at TIMESTAMPTZ,
    ADD CONSTRAINT enhancement_history_feedback_with_time
        CHECK ((feedback IS NULL) = (feedback_at IS NULL));

-- The summary: votes per tenant over a period, read from the voted jobs
-- only.
CREATE INDEX enhancement_history_feedback
    ON enhancement_history (feedback_at, tenant_id, feedback)
    WHERE feedback_at IS NOT NULL;
