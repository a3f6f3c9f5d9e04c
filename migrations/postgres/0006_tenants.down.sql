-- Reverts 0006_tenants.up.sql. The role csp_tenant stays: roles are
-- cluster-wide and other databases (other csp installations, tests) may use
-- it; dropping its tables drops its grants and the policies with them.
DROP FUNCTION csp_search_kb(text, text, bigint);
DROP FUNCTION csp_similar_tickets(text, text, bigint);
DROP TABLE system_inventory;
DROP TABLE kb_articles;
DROP TABLE ticket_history;
DROP TABLE ticket_processing;
DROP TABLE enhancement_history;
DROP TABLE tenant_spend;
DROP TABLE tenant_configs;
