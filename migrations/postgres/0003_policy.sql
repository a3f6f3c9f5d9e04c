-- What policy needs (RBAC, cost caps, audit): a monthly cost cap per user,
-- each user's spend per budget month with the money set aside for turns in
-- flight, and the tamper-evident audit log.
--
-- Money is integer micro-dollars (1 USD = 1 000 000) so that sums are exact.

-- NULL means no cap; existing users keep none.
ALTER TABLE users
    ADD COLUMN monthly_cost_cap_micros BIGINT CHECK (monthly_cost_cap_micros >= 0);

CREATE TABLE user_spend (
    user_id      UUID        NOT NULL REFERENCES users (user_id),
    -- The budget month, "2026-11"; a new month is a new row starting at zero.
    month        TEXT        NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    spent_micros BIGINT      NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    -- The "close to the cap" warning went out; it goes out once per month.
    warned       BOOLEAN     NOT NULL DEFAULT FALSE,
    -- Last change of spent_micros (or the row's creation).
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, month)
);

-- Money set aside for a turn before it runs, so that concurrent turns cannot
-- overrun the cap together. Settling a turn deletes its row; a row left
-- behind by a crash stops counting at expires_at.
CREATE TABLE budget_reservations (
    id            UUID        PRIMARY KEY,
    user_id       UUID        NOT NULL,
    month         TEXT        NOT NULL,
    amount_micros BIGINT      NOT NULL CHECK (amount_micros >= 0),
    expires_at    TIMESTAMPTZ NOT NULL,
    -- Reserving creates the month's row first: its lock is what serialises
    -- the admission decisions of one user and month.
    FOREIGN KEY (user_id, month) REFERENCES user_spend (user_id, month)
);

CREATE INDEX budget_reservations_user_month ON budget_reservations (user_id, month, expires_at);

-- Tool invocations and admin actions, as a hash chain: each row's hash covers
-- the previous row's hash and the row's contents, so an edited, inserted or
-- removed row breaks the chain at that point. No foreign keys: audit rows
-- outlive the users and sessions they name.
CREATE TABLE audit_log (
    seq                   BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The producer's id: a retried append stores the entry once.
    audit_id              UUID        NOT NULL UNIQUE,
    timestamp             TIMESTAMPTZ NOT NULL,
    user_id               UUID,
    session_id            UUID,
    tool_name             TEXT        NOT NULL,
    sanitized_input       TEXT        NOT NULL,
    result_status         TEXT        NOT NULL CHECK (result_status IN ('success', 'error', 'denied')),
    execution_duration_ms BIGINT,
    cost_micros           BIGINT,
    prev_hash             TEXT        NOT NULL,
    hash                  TEXT        NOT NULL
);

-- "One user's actions, newest first" and "everything in a time range".
CREATE INDEX audit_log_user_seq ON audit_log (user_id, seq);
CREATE INDEX audit_log_timestamp ON audit_log (timestamp);

-- Append-only for everyone, csp included. Tampering (or a test simulating it)
-- has to disable the trigger first, which takes the table owner and leaves
-- the chain broken for verification to find.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
