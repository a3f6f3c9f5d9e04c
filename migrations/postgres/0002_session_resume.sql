-- What resuming a session needs (US-006): which Claude Code CLI session to
-- resume, how often it was resumed, and whether it still can be.
--
-- Every column has a default, so sessions created before this migration read
-- as never resumed, resumable, and resuming their own id.

ALTER TABLE sessions
    -- The CLI's own session id when it differs from session_id: a resume that
    -- fails starts a fresh CLI session under the same csp session. NULL means
    -- the CLI session id is session_id.
    ADD COLUMN agent_session_id UUID,
    ADD COLUMN resume_count     BIGINT  NOT NULL DEFAULT 0 CHECK (resume_count >= 0),
    ADD COLUMN is_resumable     BOOLEAN NOT NULL DEFAULT TRUE,
    -- Why the session last ended (idle timeout, process exit, ...); NULL
    -- while it runs.
    ADD COLUMN ended_reason     TEXT;
