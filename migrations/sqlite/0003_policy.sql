-- What policy needs (RBAC, cost caps, audit): a monthly cost cap per user,
-- each user's spend per budget month with the money set aside for turns in
-- flight, and the tamper-evident audit log.
--
-- Money is integer micro-dollars (1 USD = 1 000 000) so that sums are exact.

-- NULL means no cap; existing users keep none.
ALTER TABLE users ADD COLUMN monthly_cost_cap_micros INTEGER CHECK (monthly_cost_cap_micros >= 0);

CREATE TABLE user_spend (
    user_id      TEXT    NOT NULL REFERENCES users (user_id),
    -- The budget month, "2026-11"; a new month is a new row starting at zero.
    month        TEXT    NOT NULL CHECK (
        month GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]'
        AND CAST(substr(month, 6, 2) AS INTEGER) BETWEEN 1 AND 12
    ),
    spent_micros INTEGER NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    -- The "close to the cap" warning went out; it goes out once per month.
    warned       INTEGER NOT NULL DEFAULT 0 CHECK (warned IN (0, 1)),
    -- Last change of spent_micros (or the row's creation), unix ms.
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, month)
) STRICT, WITHOUT ROWID;

-- Money set aside for a turn before it runs, so that concurrent turns cannot
-- overrun the cap together. Settling a turn deletes its row; a row left
-- behind by a crash stops counting at expires_at (unix ms).
CREATE TABLE budget_reservations (
    id            TEXT    PRIMARY KEY NOT NULL,
    user_id       TEXT    NOT NULL,
    month         TEXT    NOT NULL,
    amount_micros INTEGER NOT NULL CHECK (amount_micros >= 0),
    expires_at    INTEGER NOT NULL,
    FOREIGN KEY (user_id, month) REFERENCES user_spend (user_id, month)
) STRICT;

CREATE INDEX budget_reservations_user_month ON budget_reservations (user_id, month, expires_at);

-- Tool invocations and admin actions, as a hash chain: each row's hash covers
-- the previous row's hash and the row's contents, so an edited, inserted or
-- removed row breaks the chain at that point. No foreign keys: audit rows
-- outlive the users and sessions they name. AUTOINCREMENT: a seq is never
-- handed out twice.
CREATE TABLE audit_log (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The producer's id: a retried append stores the entry once.
    audit_id              TEXT    NOT NULL UNIQUE,
    timestamp             INTEGER NOT NULL,
    user_id               TEXT,
    session_id            TEXT,
    tool_name             TEXT    NOT NULL,
    sanitized_input       TEXT    NOT NULL,
    result_status         TEXT    NOT NULL CHECK (result_status IN ('success', 'error', 'denied')),
    execution_duration_ms INTEGER,
    cost_micros           INTEGER,
    prev_hash             TEXT    NOT NULL,
    hash                  TEXT    NOT NULL
) STRICT;

-- "One user's actions, newest first" and "everything in a time range".
CREATE INDEX audit_log_user_seq ON audit_log (user_id, seq);
CREATE INDEX audit_log_timestamp ON audit_log (timestamp);

-- Append-only for everyone, csp included. Tampering (or a test simulating it)
-- has to drop these triggers first, and leaves the chain broken for
-- verification to find.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
