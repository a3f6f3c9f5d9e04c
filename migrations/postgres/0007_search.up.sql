-- Similar-ticket search at index speed for large histories.
--
-- 1. One GIN index over (tenant_id, search) instead of one over search
--    alone: the tenant's rows and the words are intersected inside the
--    index, where the old plan read a bitmap of every row of the tenant
--    from the unique index (100k entries at 100k tickets) and ANDed it
--    with the words' matches of every tenant. btree_gin gives text a GIN
--    operator class; it is a trusted extension (Postgres 13+), so a
--    database owner without superuser can create it.
-- 2. csp_word_frequencies: how common each search word is, from the
--    planner's statistics (ANALYZE's most common lexemes of the search
--    column), so the store can search with the rare words of a ticket
--    instead of all of them (docs/ticket-enhancement.md, "Search").
CREATE EXTENSION IF NOT EXISTS btree_gin;

DROP INDEX ticket_history_search;
CREATE INDEX ticket_history_tenant_search ON ticket_history USING GIN (tenant_id, search);
DROP INDEX kb_articles_search;
CREATE INDEX kb_articles_tenant_search ON kb_articles USING GIN (tenant_id, search);

-- For each word (in the order given): the share of the table's rows whose
-- search column holds its lexeme per the statistics, 0 when the statistics
-- list the table's common lexemes and this is not one of them (it is
-- rarer than all of them), NULL when there are no statistics (never
-- analysed, or too few rows for a list) or the word has no lexeme; and the
-- table's estimated row count (0 when never analysed). The statistics are
-- of the whole table, every tenant together: they say which words are
-- common in help-desk text, nothing of any tenant's rows. SECURITY
-- DEFINER because pg_stats shows a column's statistics only to roles that
-- may read all of it.
CREATE FUNCTION csp_word_frequencies(p_table text, p_words text[])
RETURNS TABLE (word text, frequency real, table_rows real)
LANGUAGE sql STABLE SECURITY DEFINER
AS $$
    -- The table as the function's pinned search_path resolves it (the
    -- schema of csp's tables; current_schema() here would be pg_catalog).
    WITH tbl AS (
        SELECT n.nspname, c.relname, greatest(c.reltuples, 0) AS reltuples
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE p_table IN ('ticket_history', 'kb_articles') AND c.oid = to_regclass(p_table)
    ),
    stats AS (
        SELECT s.most_common_elems::text::text[] AS elems, s.most_common_elem_freqs AS freqs
        FROM pg_stats s, tbl
        WHERE s.schemaname = tbl.nspname AND s.tablename = tbl.relname AND s.attname = 'search'
    ),
    common AS (
        SELECT e.lexeme, e.freq
        FROM stats, unnest(stats.elems, stats.freqs[1:cardinality(stats.elems)]) AS e(lexeme, freq)
    ),
    asked AS (
        SELECT w.word, w.n,
               (SELECT t.lexeme FROM unnest(to_tsvector('english', w.word)) AS t LIMIT 1) AS lexeme
        FROM unnest(p_words) WITH ORDINALITY AS w(word, n)
    )
    SELECT a.word,
           CASE WHEN a.lexeme IS NULL OR NOT EXISTS (SELECT 1 FROM stats WHERE elems IS NOT NULL)
                THEN NULL
                ELSE coalesce((SELECT c.freq FROM common c WHERE c.lexeme = a.lexeme), 0)
           END,
           coalesce((SELECT tbl.reltuples FROM tbl), 0)::real
    FROM asked a
    ORDER BY a.n
$$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION csp_word_frequencies(text, text[]) '
                   'SET search_path = pg_catalog, %I, pg_temp', current_schema());
END
$$;

REVOKE ALL ON FUNCTION csp_word_frequencies(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION csp_word_frequencies(text, text[]) TO csp_tenant;
