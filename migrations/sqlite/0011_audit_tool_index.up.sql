-- The audit log by action: the Operations page lists the last operations
-- (tickets.pause, tickets.clear_queue, ...) among every tool call ever
-- audited, which without this index is a walk back through the whole log.
-- Reversible: 0011_audit_tool_index.down.sql drops it.
CREATE INDEX audit_log_tool_seq ON audit_log (tool_name, seq);
