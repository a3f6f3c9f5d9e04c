-- Users, chat sessions and their message log.
--
-- Timestamps are written by csp truncated to the millisecond so that both
-- backends (this one and SQLite) return exactly the value they were given.

CREATE TABLE users (
    user_id       UUID        PRIMARY KEY,
    username      TEXT        NOT NULL,
    -- Lowercased by csp (Unicode-aware, locale-independent) rather than by
    -- lower() here, so uniqueness means the same thing on Postgres and SQLite
    -- whatever the database's collation.
    username_key  TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,
    role          TEXT        NOT NULL CHECK (role IN ('admin', 'operator', 'user')),
    is_active     BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL,
    last_login_at TIMESTAMPTZ,
    CONSTRAINT users_username_key_unique UNIQUE (username_key)
);

CREATE TABLE sessions (
    session_id     UUID             PRIMARY KEY,
    user_id        UUID             NOT NULL REFERENCES users (user_id),
    status         TEXT             NOT NULL,
    created_at     TIMESTAMPTZ      NOT NULL,
    last_active_at TIMESTAMPTZ      NOT NULL,
    message_count  BIGINT           NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    total_cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    title          TEXT,
    -- Highest message seq stored; 0 before the first message.
    last_seq       BIGINT           NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);

-- "My sessions, most recently active first" is the session list query.
CREATE INDEX sessions_user_last_active ON sessions (user_id, last_active_at DESC);

CREATE TABLE messages (
    session_id UUID        NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    seq        BIGINT      NOT NULL CHECK (seq >= 0),
    kind       TEXT        NOT NULL,
    body       JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- The key is what makes a retried append a no-op.
    PRIMARY KEY (session_id, seq)
);
