-- The History page's search names description_lower, the description
-- lower-cased (crates/store/src/enhancements.rs, `push_filters`; on
-- Postgres a stored column with a trigram index, see
-- migrations/postgres/0014_enhancement_search.up.sql). Here it is virtual:
-- computed when read, as lower(description) was, so the search costs and
-- matches what it did (lower() folds ASCII only on SQLite). SQLite has no
-- index for a substring, and a ticket-id index would not help either: an
-- OR is served by indexes only when each of its terms is. Reversible:
-- 0014_enhancement_search.down.sql drops the column.
ALTER TABLE enhancement_history
    ADD COLUMN description_lower TEXT GENERATED ALWAYS AS (lower(description)) VIRTUAL;
