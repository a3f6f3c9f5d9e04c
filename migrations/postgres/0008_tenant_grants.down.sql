-- Reverts 0008_tenant_grants.up.sql (dropping the table drops its grants
-- and policies).
DROP TABLE tenant_grants;
ALTER TABLE sessions DROP COLUMN tenant_id;
