-- Reverts 0014_enhancement_search.up.sql.
ALTER TABLE enhancement_history DROP COLUMN description_lower;
