-- Reverts 0011_audit_tool_index.up.sql.
DROP INDEX audit_log_tool_seq;
