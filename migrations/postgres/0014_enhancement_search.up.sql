-- The History page's search at index speed (issue 16: p99 under 200 ms at
-- 100k jobs). `q` matches the ticket id exactly or a substring of the
-- description case-insensitively (crates/store/src/enhancements.rs,
-- `push_filters`); before this, both the count and the page read every
-- row and lower-cased every description. Reversible:
-- 0014_enhancement_search.down.sql drops all of it.
--
-- 1. description_lower: the description lower-cased once, when the row is
--    written, instead of lower(description) on every row of every search.
--    The search's count must still read every match of a common word (a
--    word in most descriptions); lower() was three quarters of that read.
--    Adding it rewrites the table (about 2.5 s at 100k jobs).
-- 2. A trigram index on it (pg_trgm, a trusted extension since Postgres
--    13, so a database owner without superuser can create it): a substring
--    of three characters or more is a bitmap index scan, not a scan of the
--    table. About 5 s to build at 100k jobs.
-- 3. A B-tree on ticket_id, so `ticket_id = q OR description_lower LIKE …`
--    is a BitmapOr of the two indexes.
--
-- Under row-level security (a tenant's page) LIKE is not leakproof, so the
-- trigram index is not used before the policy's filter; that page reads
-- the tenant's rows from enhancement_history_tenant_created instead.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE enhancement_history
    ADD COLUMN description_lower TEXT GENERATED ALWAYS AS (lower(description)) STORED;

CREATE INDEX enhancement_history_description_trgm
    ON enhancement_history USING GIN (description_lower gin_trgm_ops);
CREATE INDEX enhancement_history_ticket ON enhancement_history (ticket_id);
