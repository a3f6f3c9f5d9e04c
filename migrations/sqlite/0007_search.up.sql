-- How many rows hold each (stemmed) term of the full-text indexes, so the
-- store can search with the rare words of a ticket instead of all of them
-- (docs/ticket-enhancement.md, "Search"). fts5vocab reads the index itself:
-- nothing is stored, and the counts are exact.
CREATE VIRTUAL TABLE ticket_history_vocab USING fts5vocab(ticket_history_fts, row);
CREATE VIRTUAL TABLE kb_articles_vocab USING fts5vocab(kb_articles_fts, row);
