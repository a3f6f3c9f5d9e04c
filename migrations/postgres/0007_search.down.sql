-- Reverts 0007_search.up.sql.
DROP FUNCTION csp_word_frequencies(text, text[]);
DROP INDEX kb_articles_tenant_search;
CREATE INDEX kb_articles_search ON kb_articles USING GIN (search);
DROP INDEX ticket_history_tenant_search;
CREATE INDEX ticket_history_search ON ticket_history USING GIN (search);
DROP EXTENSION IF EXISTS btree_gin;
