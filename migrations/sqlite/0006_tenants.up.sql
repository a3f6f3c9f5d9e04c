-- Ticket enhancement: tenants (MSPs) and their monthly model spend, the
-- enhancement jobs, the workers' pause flag, and the context the workers
-- search per tenant (resolved tickets, knowledge-base articles, systems by
-- IP address). Reversible: 0006_tenants.down.sql drops all of it.
--
-- SQLite has no row-level security: every statement of the store filters by
-- tenant_id explicitly (the shared suite checks that no tenant reads
-- another's rows). Timestamps are unix ms; money integer micro-dollars.

CREATE TABLE tenant_configs (
    tenant_id                 TEXT    PRIMARY KEY NOT NULL CHECK (
        length(tenant_id) BETWEEN 2 AND 63
        AND tenant_id NOT GLOB '*[^a-z0-9-]*'
        AND substr(tenant_id, 1, 1) <> '-'
    ),
    name                      TEXT    NOT NULL,
    tool_type                 TEXT    NOT NULL DEFAULT 'servicedesk_plus',
    -- The tool's non-secret settings (servicedesk_url, …); its credentials
    -- are sealed_secrets of owner_kind 'tenant'.
    settings                  TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(settings) AND json_type(settings) = 'object'),
    -- enhancement_preferences.
    preferences               TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(preferences) AND json_type(preferences) = 'object'),
    -- NULL: no cap.
    monthly_budget_micros     INTEGER CHECK (monthly_budget_micros >= 0),
    -- 0: deleted (soft); its rows elsewhere stay.
    is_active                 INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    webhook_secret_rotated_at INTEGER,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
) STRICT;

CREATE INDEX tenant_configs_tool_type ON tenant_configs (tool_type);

CREATE TABLE tenant_spend (
    tenant_id    TEXT    NOT NULL REFERENCES tenant_configs (tenant_id),
    month        TEXT    NOT NULL CHECK (
        month GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]'
        AND CAST(substr(month, 6, 2) AS INTEGER) BETWEEN 1 AND 12
    ),
    spent_micros INTEGER NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    PRIMARY KEY (tenant_id, month)
) STRICT, WITHOUT ROWID;

-- One row per accepted new-ticket webhook; the queue only carries job_id.
CREATE TABLE enhancement_history (
    job_id             TEXT    PRIMARY KEY NOT NULL,
    tenant_id          TEXT    NOT NULL REFERENCES tenant_configs (tenant_id),
    ticket_id          TEXT    NOT NULL,
    -- Identifies the delivery: a repeated delivery finds the first job.
    delivery_key       TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    description        TEXT    NOT NULL,
    priority           TEXT    NOT NULL,
    status             TEXT    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    -- Attempts started.
    attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    context_gathered   TEXT    CHECK (context_gathered IS NULL OR json_valid(context_gathered)),
    llm_output         TEXT,
    error_message      TEXT,
    processing_time_ms INTEGER,
    cost_micros        INTEGER NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    input_tokens       INTEGER NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens      INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    note_id            TEXT,
    correlation_id     TEXT    NOT NULL,
    -- Last put on the queue; NULL until then (the sweeper's outbox).
    queued_at          INTEGER,
    created_at         INTEGER NOT NULL,
    started_at         INTEGER,
    completed_at       INTEGER,
    UNIQUE (tenant_id, delivery_key)
) STRICT;

-- The history page: per tenant and across tenants, newest first, job_id
-- breaking ties so that pages are stable.
CREATE INDEX enhancement_history_tenant_created ON enhancement_history (tenant_id, created_at DESC, job_id);
CREATE INDEX enhancement_history_status ON enhancement_history (status);
CREATE INDEX enhancement_history_created ON enhancement_history (created_at DESC, job_id);

-- The workers' pause flag: at most one row; none means not paused.
CREATE TABLE ticket_processing (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    paused     INTEGER NOT NULL CHECK (paused IN (0, 1)),
    updated_at INTEGER NOT NULL
) STRICT;

-- Resolved tickets, searched for similar ones by full text. `id` is the
-- rowid the full-text index refers to; declared so that it never changes
-- (VACUUM may renumber an implicit rowid).
CREATE TABLE ticket_history (
    id            INTEGER PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenant_configs (tenant_id),
    ticket_id     TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    resolution    TEXT    NOT NULL,
    resolved_date INTEGER NOT NULL,
    tags          TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array'),
    source        TEXT    NOT NULL CHECK (source IN ('bulk_import', 'webhook_resolved')),
    ingested_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, ticket_id)
) STRICT;

CREATE TABLE kb_articles (
    id         INTEGER PRIMARY KEY,
    tenant_id  TEXT    NOT NULL REFERENCES tenant_configs (tenant_id),
    url        TEXT    NOT NULL CHECK (url <> ''),
    title      TEXT    NOT NULL,
    summary    TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, url)
) STRICT;

CREATE TABLE system_inventory (
    tenant_id  TEXT    NOT NULL REFERENCES tenant_configs (tenant_id),
    -- Canonical text (Rust's IpAddr display: IPv6 compressed, lower case).
    ip         TEXT    NOT NULL,
    hostname   TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    client     TEXT    NOT NULL,
    location   TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, ip)
) STRICT, WITHOUT ROWID;

-- Full text: FTS5 indexes over the tables' own columns (external content,
-- nothing stored twice), kept in step by triggers. Porter stemming, as
-- Postgres' 'english' configuration stems; the store drops stop words
-- itself, as FTS5 has none.
CREATE VIRTUAL TABLE ticket_history_fts USING fts5(
    description, resolution,
    content = 'ticket_history', content_rowid = 'id', tokenize = 'porter unicode61'
);

CREATE TRIGGER ticket_history_fts_insert AFTER INSERT ON ticket_history BEGIN
    INSERT INTO ticket_history_fts (rowid, description, resolution)
    VALUES (new.id, new.description, new.resolution);
END;

CREATE TRIGGER ticket_history_fts_delete AFTER DELETE ON ticket_history BEGIN
    INSERT INTO ticket_history_fts (ticket_history_fts, rowid, description, resolution)
    VALUES ('delete', old.id, old.description, old.resolution);
END;

CREATE TRIGGER ticket_history_fts_update AFTER UPDATE ON ticket_history BEGIN
    INSERT INTO ticket_history_fts (ticket_history_fts, rowid, description, resolution)
    VALUES ('delete', old.id, old.description, old.resolution);
    INSERT INTO ticket_history_fts (rowid, description, resolution)
    VALUES (new.id, new.description, new.resolution);
END;

CREATE VIRTUAL TABLE kb_articles_fts USING fts5(
    title, summary, body,
    content = 'kb_articles', content_rowid = 'id', tokenize = 'porter unicode61'
);

CREATE TRIGGER kb_articles_fts_insert AFTER INSERT ON kb_articles BEGIN
    INSERT INTO kb_articles_fts (rowid, title, summary, body)
    VALUES (new.id, new.title, new.summary, new.body);
END;

CREATE TRIGGER kb_articles_fts_delete AFTER DELETE ON kb_articles BEGIN
    INSERT INTO kb_articles_fts (kb_articles_fts, rowid, title, summary, body)
    VALUES ('delete', old.id, old.title, old.summary, old.body);
END;

CREATE TRIGGER kb_articles_fts_update AFTER UPDATE ON kb_articles BEGIN
    INSERT INTO kb_articles_fts (kb_articles_fts, rowid, title, summary, body)
    VALUES ('delete', old.id, old.title, old.summary, old.body);
    INSERT INTO kb_articles_fts (rowid, title, summary, body)
    VALUES (new.id, new.title, new.summary, new.body);
END;
