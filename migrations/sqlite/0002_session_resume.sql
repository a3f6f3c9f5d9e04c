-- What resuming a session needs (US-006): which Claude Code CLI session to
-- resume, how often it was resumed, and whether it still can be.
--
-- Every column has a default, so sessions created before this migration read
-- as never resumed, resumable, and resuming their own id. SQLite adds one
-- column per statement.

-- The CLI's own session id (hyphenated UUID text) when it differs from
-- session_id: a resume that fails starts a fresh CLI session under the same
-- csp session. NULL means the CLI session id is session_id.
ALTER TABLE sessions ADD COLUMN agent_session_id TEXT;
ALTER TABLE sessions ADD COLUMN resume_count INTEGER NOT NULL DEFAULT 0 CHECK (resume_count >= 0);
ALTER TABLE sessions ADD COLUMN is_resumable INTEGER NOT NULL DEFAULT 1 CHECK (is_resumable IN (0, 1));
-- Why the session last ended (idle timeout, process exit, ...); NULL while it
-- runs.
ALTER TABLE sessions ADD COLUMN ended_reason TEXT;
