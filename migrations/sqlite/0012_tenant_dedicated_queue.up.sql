-- A tenant with a queue of its own (story 3.6, tenant namespaces): its
-- enhancement jobs go to the topic `tickets.enhance.tenant.<tenant_id>`,
-- which only its own workers (`csp serve tickets-worker --tenant <id>`)
-- consume; the shared workers never take them.
-- Reversible: 0012_tenant_dedicated_queue.down.sql drops the column.

-- 0: the shared queue, as every tenant before this one.
ALTER TABLE tenant_configs
    ADD COLUMN dedicated_queue INTEGER NOT NULL DEFAULT 0 CHECK (dedicated_queue IN (0, 1));
