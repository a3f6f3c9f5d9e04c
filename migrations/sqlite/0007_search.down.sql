-- Reverts 0007_search.up.sql.
DROP TABLE kb_articles_vocab;
DROP TABLE ticket_history_vocab;
