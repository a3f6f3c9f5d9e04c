-- Reverts 0014_enhancement_search.up.sql (the extension too, as 0007 does
-- with btree_gin; without CASCADE, so this fails rather than drop anything
-- else that came to depend on it).
DROP INDEX enhancement_history_ticket;
DROP INDEX enhancement_history_description_trgm;
ALTER TABLE enhancement_history DROP COLUMN description_lower;
DROP EXTENSION IF EXISTS pg_trgm;
