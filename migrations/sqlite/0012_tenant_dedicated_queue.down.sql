-- Reverts 0012_tenant_dedicated_queue.up.sql. Jobs already queued on a
-- tenant's own topic stay pending until the sweeper queues them again on the
-- shared one.
ALTER TABLE tenant_configs DROP COLUMN dedicated_queue;
