-- Users, chat sessions and their message log (embedded mode, `csp dev`).
--
-- Ids are hyphenated UUID text and timestamps are unix milliseconds (UTC), so
-- the file stays readable with the sqlite3 shell and timestamps sort and
-- round-trip exactly. STRICT makes SQLite reject values of the wrong type.

CREATE TABLE users (
    user_id       TEXT    PRIMARY KEY NOT NULL,
    username      TEXT    NOT NULL,
    -- Lowercased by csp, not by COLLATE NOCASE (ASCII only), so uniqueness
    -- means the same thing as on Postgres.
    username_key  TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'user')),
    is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER
) STRICT;

CREATE TABLE sessions (
    session_id     TEXT    PRIMARY KEY NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (user_id),
    status         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    last_active_at INTEGER NOT NULL,
    message_count  INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    total_cost_usd REAL    NOT NULL DEFAULT 0,
    title          TEXT,
    -- Highest message seq stored; 0 before the first message.
    last_seq       INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
) STRICT;

CREATE INDEX sessions_user_last_active ON sessions (user_id, last_active_at DESC);

CREATE TABLE messages (
    session_id TEXT    NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    kind       TEXT    NOT NULL,
    body       TEXT    NOT NULL CHECK (json_valid(body)),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, seq)
) STRICT, WITHOUT ROWID;
