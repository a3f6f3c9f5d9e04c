-- Reverts 0008_tenant_grants.up.sql.
DROP TABLE tenant_grants;
ALTER TABLE sessions DROP COLUMN tenant_id;
