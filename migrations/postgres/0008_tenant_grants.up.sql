-- Chat sessions bound to a tenant, and tenants granted to users: a session
-- may work on one tenant's tickets, and a user who is not an admin may bind
-- a session only to a tenant an admin granted them. Reversible:
-- 0008_tenant_grants.down.sql drops all of it.

-- NULL: a session bound to no tenant (every session before this one). The
-- sessions stay the user's rows, not a tenant table: tenant-scoped work
-- never reads them.
ALTER TABLE sessions ADD COLUMN tenant_id TEXT REFERENCES tenant_configs (tenant_id);

-- A grant outlives a soft delete of its tenant (the store reads it as not
-- granted while the tenant is inactive) and goes with its user.
-- granted_by: the admin who granted it, kept as the id it was (no key).
CREATE TABLE tenant_grants (
    tenant_id  TEXT        NOT NULL REFERENCES tenant_configs (tenant_id),
    user_id    UUID        NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    granted_by UUID,
    granted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- "The tenants granted to this user".
CREATE INDEX tenant_grants_user ON tenant_grants (user_id);

-- A tenant table like those of 0006: tenant-scoped work may read its own
-- tenant's grants, and row-level security is forced with the same two
-- policies.
GRANT SELECT ON tenant_grants TO csp_tenant;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_grants'] LOOP
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
