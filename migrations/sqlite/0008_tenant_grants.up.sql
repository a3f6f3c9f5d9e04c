-- Chat sessions bound to a tenant, and tenants granted to users: a session
-- may work on one tenant's tickets, and a user who is not an admin may bind
-- a session only to a tenant an admin granted them. Reversible:
-- 0008_tenant_grants.down.sql drops all of it.

-- NULL: a session bound to no tenant (every session before this one).
ALTER TABLE sessions ADD COLUMN tenant_id TEXT REFERENCES tenant_configs (tenant_id);

-- A grant outlives a soft delete of its tenant (the store reads it as not
-- granted while the tenant is inactive) and goes with its user.
-- granted_by: the admin who granted it, kept as the id it was (no key).
CREATE TABLE tenant_grants (
    tenant_id  TEXT    NOT NULL REFERENCES tenant_configs (tenant_id),
    user_id    TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    granted_by TEXT,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
) STRICT, WITHOUT ROWID;

-- "The tenants granted to this user".
CREATE INDEX tenant_grants_user ON tenant_grants (user_id);
