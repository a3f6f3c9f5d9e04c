-- Ticket enhancement: tenants (MSPs) and their monthly model spend, the
-- enhancement jobs, the workers' pause flag, and the context the workers
-- search per tenant (resolved tickets, knowledge-base articles, systems by
-- IP address). Reversible: 0006_tenants.down.sql drops all of it.
--
-- Isolation: every table with a tenant_id has row-level security, forced
-- for its owner too. Tenant-scoped work (the store's ContextStore and the
-- tenant-filtered history page) runs as role csp_tenant, which has no
-- BYPASSRLS, after SET LOCAL csp.tenant_id: a statement that forgets its
-- tenant filter still sees only that tenant's rows. The owner (the role
-- that runs this migration, csp's login) keeps platform-wide access for
-- tenant administration, the history across tenants and the sweeper.

-- csp_tenant is cluster-wide while this migration runs per database, and
-- concurrent databases (one per test) may race to create it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'csp_tenant') THEN
        CREATE ROLE csp_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
EXCEPTION
    -- Created meanwhile by another database's migration.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- So that a non-superuser owner may SET ROLE csp_tenant (a superuser may
-- anyway, and pg_has_role says so). The owner needs CREATEROLE for this and
-- for creating the role on a new cluster; where it has not, a DBA runs
-- `CREATE ROLE csp_tenant NOLOGIN; GRANT csp_tenant TO <owner>` first and
-- both blocks do nothing.
DO $$
BEGIN
    IF NOT pg_catalog.pg_has_role(current_user, 'csp_tenant', 'MEMBER') THEN
        EXECUTE format('GRANT csp_tenant TO %I', current_user);
    END IF;
END
$$;

-- Money is integer micro-dollars (1 USD = 1 000 000), as in 0003.
CREATE TABLE tenant_configs (
    tenant_id                 TEXT        PRIMARY KEY CHECK (tenant_id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name                      TEXT        NOT NULL,
    tool_type                 TEXT        NOT NULL DEFAULT 'servicedesk_plus',
    -- The tool's non-secret settings (servicedesk_url, …); its credentials
    -- are sealed_secrets of owner_kind 'tenant'.
    settings                  JSONB       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    -- enhancement_preferences.
    preferences               JSONB       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(preferences) = 'object'),
    -- NULL: no cap.
    monthly_budget_micros     BIGINT      CHECK (monthly_budget_micros >= 0),
    -- FALSE: deleted (soft); its rows elsewhere stay.
    is_active                 BOOLEAN     NOT NULL DEFAULT TRUE,
    webhook_secret_rotated_at TIMESTAMPTZ,
    created_at                TIMESTAMPTZ NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL
);

CREATE INDEX tenant_configs_tool_type ON tenant_configs (tool_type);

CREATE TABLE tenant_spend (
    tenant_id    TEXT   NOT NULL REFERENCES tenant_configs (tenant_id),
    month        TEXT   NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    spent_micros BIGINT NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    PRIMARY KEY (tenant_id, month)
);

-- One row per accepted new-ticket webhook; the queue only carries job_id.
CREATE TABLE enhancement_history (
    job_id             UUID        PRIMARY KEY,
    tenant_id          TEXT        NOT NULL REFERENCES tenant_configs (tenant_id),
    ticket_id          TEXT        NOT NULL,
    -- Identifies the delivery: a repeated delivery finds the first job.
    delivery_key       TEXT        NOT NULL,
    subject            TEXT        NOT NULL,
    description        TEXT        NOT NULL,
    priority           TEXT        NOT NULL,
    status             TEXT        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    -- Attempts started.
    attempts           BIGINT      NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    context_gathered   JSONB,
    llm_output         TEXT,
    error_message      TEXT,
    processing_time_ms BIGINT,
    cost_micros        BIGINT      NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    input_tokens       BIGINT      NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens      BIGINT      NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    note_id            TEXT,
    correlation_id     TEXT        NOT NULL,
    -- Last put on the queue; NULL until then (the sweeper's outbox).
    queued_at          TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    started_at         TIMESTAMPTZ,
    completed_at       TIMESTAMPTZ,
    UNIQUE (tenant_id, delivery_key)
);

-- The history page: per tenant and across tenants, newest first, job_id
-- breaking ties so that pages are stable.
CREATE INDEX enhancement_history_tenant_created ON enhancement_history (tenant_id, created_at DESC, job_id);
CREATE INDEX enhancement_history_status ON enhancement_history (status);
CREATE INDEX enhancement_history_created ON enhancement_history (created_at DESC, job_id);

-- The workers' pause flag: at most one row; none means not paused.
CREATE TABLE ticket_processing (
    id         INTEGER     PRIMARY KEY CHECK (id = 1),
    paused     BOOLEAN     NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Resolved tickets, searched for similar ones by full text.
CREATE TABLE ticket_history (
    tenant_id     TEXT        NOT NULL REFERENCES tenant_configs (tenant_id),
    ticket_id     TEXT        NOT NULL,
    description   TEXT        NOT NULL,
    resolution    TEXT        NOT NULL,
    resolved_date TIMESTAMPTZ NOT NULL,
    tags          JSONB       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tags) = 'array'),
    source        TEXT        NOT NULL CHECK (source IN ('bulk_import', 'webhook_resolved')),
    ingested_at   TIMESTAMPTZ NOT NULL,
    search        TSVECTOR    GENERATED ALWAYS AS
        (to_tsvector('english', description || ' ' || resolution)) STORED,
    UNIQUE (tenant_id, ticket_id)
);

CREATE INDEX ticket_history_search ON ticket_history USING GIN (search);

CREATE TABLE kb_articles (
    tenant_id  TEXT        NOT NULL REFERENCES tenant_configs (tenant_id),
    url        TEXT        NOT NULL CHECK (url <> ''),
    title      TEXT        NOT NULL,
    summary    TEXT        NOT NULL,
    body       TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- A word in the title ranks above one in the summary, above the body.
    search     TSVECTOR    GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('english', summary), 'B')
        || setweight(to_tsvector('english', body), 'C')
    ) STORED,
    UNIQUE (tenant_id, url)
);

CREATE INDEX kb_articles_search ON kb_articles USING GIN (search);

CREATE TABLE system_inventory (
    tenant_id  TEXT        NOT NULL REFERENCES tenant_configs (tenant_id),
    -- Canonical text (Rust's IpAddr display: IPv6 compressed, lower case).
    ip         TEXT        NOT NULL,
    hostname   TEXT        NOT NULL,
    role       TEXT        NOT NULL,
    client     TEXT        NOT NULL,
    location   TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, ip)
);

-- What tenant-scoped work may touch: it reads every tenant table (its rows
-- only) and writes the context tables.
GRANT SELECT ON tenant_configs, tenant_spend, enhancement_history, ticket_history,
    kb_articles, system_inventory TO csp_tenant;
GRANT INSERT, UPDATE ON ticket_history, kb_articles, system_inventory TO csp_tenant;

-- Row-level security on every tenant table, forced so the owner is subject
-- to it too: csp_tenant sees the scoped tenant's rows, the owner every row.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_configs', 'tenant_spend', 'enhancement_history',
                             'ticket_history', 'kb_articles', 'system_inventory'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I TO csp_tenant '
            'USING (tenant_id = current_setting(''csp.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''csp.tenant_id'', true))', t);
        EXECUTE format(
            'CREATE POLICY platform ON %I TO %I USING (true) WITH CHECK (true)', t, current_user);
    END LOOP;
END
$$;

-- Full-text search at index speed. Under row-level security the planner
-- may not evaluate `@@` (not leakproof) before the policy's filter, so the
-- GIN index goes unused (about 15x slower). These functions run as their
-- owner, whose policy passes every row, and filter by tenant explicitly;
-- they answer only for the tenant the calling transaction is scoped to, so
-- csp_tenant cannot read another tenant through them. The query is an OR of
-- words the store has already reduced to letters and digits ("disk | full").
CREATE FUNCTION csp_similar_tickets(p_tenant text, p_query text, p_limit bigint)
RETURNS TABLE (ticket_id text, description text, resolution text,
               resolved_date timestamptz, tags jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
AS $$
    SELECT h.ticket_id, h.description, h.resolution, h.resolved_date, h.tags
    FROM ticket_history h, to_tsquery('english', p_query) q
    WHERE p_tenant = current_setting('csp.tenant_id', true)
      AND h.tenant_id = p_tenant
      AND h.search @@ q
    ORDER BY ts_rank(h.search, q) DESC, h.ticket_id
    LIMIT p_limit
$$;

CREATE FUNCTION csp_search_kb(p_tenant text, p_query text, p_limit bigint)
RETURNS TABLE (title text, summary text, url text, body text)
LANGUAGE sql STABLE SECURITY DEFINER
AS $$
    SELECT a.title, a.summary, a.url, a.body
    FROM kb_articles a, to_tsquery('english', p_query) q
    WHERE p_tenant = current_setting('csp.tenant_id', true)
      AND a.tenant_id = p_tenant
      AND a.search @@ q
    ORDER BY ts_rank(a.search, q) DESC, a.url
    LIMIT p_limit
$$;

-- A security-definer function must not resolve names through the caller's
-- search_path: pinned to the schema the tables are in (public in csp's
-- databases), with pg_temp last so no temporary object can shadow them.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION csp_similar_tickets(text, text, bigint) '
                   'SET search_path = pg_catalog, %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION csp_search_kb(text, text, bigint) '
                   'SET search_path = pg_catalog, %I, pg_temp', current_schema());
END
$$;

REVOKE ALL ON FUNCTION csp_similar_tickets(text, text, bigint), csp_search_kb(text, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION csp_similar_tickets(text, text, bigint), csp_search_kb(text, text, bigint) TO csp_tenant;
