-- Reverts 0006_tenants.up.sql (dropping a table drops its triggers).
DROP TABLE kb_articles_fts;
DROP TABLE ticket_history_fts;
DROP TABLE system_inventory;
DROP TABLE kb_articles;
DROP TABLE ticket_history;
DROP TABLE ticket_processing;
DROP TABLE enhancement_history;
DROP TABLE tenant_spend;
DROP TABLE tenant_configs;
