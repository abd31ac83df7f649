-- The migration linter.
CREATE FUNCTION virtuoso.lint_migration(migration_sql text, trace boolean DEFAULT false)
RETURNS TABLE(statement_no int, rule text, severity text, object text, lock_mode text,
              message text, safe_alternative text, details jsonb)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_lint_migration';
COMMENT ON FUNCTION virtuoso.lint_migration(text, boolean) IS
'Safety analysis of a migration with PostgreSQL''s own parser and the live catalog: one row per hazard per statement (severity error, warning or info) with the lock the statement takes (PostgreSQL''s rules, AlterTableGetLockLevel for ALTER TABLE), the table''s size and row estimate now, whether it rewrites or scans, who holds or waits for a conflicting lock, and the safe alternative; details (jsonb) holds the facts. Statements it cannot analyse (DO, CALL, calls of user functions) get an info row. The migration is taken to run in one transaction (as execute_migration_with_monitoring runs it) unless it contains statements that cannot (CREATE INDEX CONCURRENTLY, VACUUM...) or its own BEGIN/COMMIT: then it is taken to run as psql runs it. trace => true runs the statements as the caller in a subtransaction that is always rolled back, under the short virtuoso.lock_timeout, and reports the locks really taken, rewrites (relfilenode changed) and durations. NULL arguments raise 22004; unparsable SQL raises 42601 with the position; an empty migration returns no rows.';
