-- Monitored, reversible migrations.
CREATE TABLE virtuoso.migration_log (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text NOT NULL,
    checksum         text NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED', 'SKIPPED', 'ROLLED_BACK', 'DRY_RUN')),
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at     timestamptz,
    duration         interval,
    initial_stats    jsonb,
    final_stats      jsonb,
    sqlstate         text,
    error_message    text,
    error_detail     text,
    error_hint       text,
    error_context    text,
    migration_sql    text NOT NULL,
    rollback_sql     text,
    rollback_at      timestamptz,
    rollback_reason  text,
    affected_objects jsonb NOT NULL DEFAULT '[]',
    attempts         int NOT NULL DEFAULT 0,
    lock_waits       jsonb NOT NULL DEFAULT '[]',
    lint             jsonb,
    plan_changes     jsonb,
    backup_tables    text[],
    executed_by      name NOT NULL DEFAULT current_user,
    -- beyond the contract: what verify_migration_integrity and operators need
    options          jsonb NOT NULL DEFAULT '{}',
    transactional    boolean NOT NULL DEFAULT true,
    statements_total int,
    statements_done  int,
    backend_pid      int,
    -- the role that recorded the run (executed_by is its name at the time): only roles with
    -- its privileges may replace, roll back or verify the run
    executed_by_role oid,
    -- with backend_pid, identifies the session of a RUNNING run (pids are reused)
    backend_start    timestamptz
);
CREATE INDEX migration_log_name_idx ON virtuoso.migration_log (name, started_at DESC);
CREATE INDEX migration_log_running_idx ON virtuoso.migration_log (status) WHERE status = 'RUNNING';
COMMENT ON TABLE virtuoso.migration_log IS
'One row per migration run of virtuoso.execute_migration_with_monitoring: status, timing, statistics before and after (initial_stats, final_stats: connections, commits, rollbacks, WAL position, database size, the size of each relation touched, and in final_stats wal_bytes, size_delta_bytes and rows_estimate_delta; each relation''s kind and row estimate are in virtuoso.migration_stats), the error (SQLSTATE, message, detail, hint, context), lock waits, affected objects and rollback state.';
SELECT pg_catalog.pg_extension_config_dump('virtuoso.migration_log', '');

-- The per-relation detail of a run's statistics, apart from the log row (which keeps the
-- summary a DBA reads), one row per phase (one tuple, not one per relation: the detail is
-- small, a row's overhead is not): deleted with its run, by retention or by hand.
CREATE TABLE virtuoso.migration_stats (
    migration_id uuid NOT NULL REFERENCES virtuoso.migration_log (id) ON DELETE CASCADE,
    phase        text NOT NULL CHECK (phase IN ('initial', 'final')),
    relations    jsonb NOT NULL,
    PRIMARY KEY (migration_id, phase)
);
COMMENT ON TABLE virtuoso.migration_stats IS
'Statistics of each relation a migration run touched, before (phase initial) and after (phase final) it ran: relations maps each relation''s name to its kind, size_bytes, rows_estimate, and not_measured when the relation was locked by another session at that moment. The run''s row in virtuoso.migration_log keeps the summary (initial_stats, final_stats: database counters, WAL, database size, the size of each relation, and after the run the size and row changes). Deleted with its migration_log row (virtuoso.log_retention); like migration_log, readable only by the roles granted SELECT on it.';
SELECT pg_catalog.pg_extension_config_dump('virtuoso.migration_stats', '');

CREATE FUNCTION virtuoso.execute_migration_with_monitoring(
    migration_name text,
    migration_sql  text,
    rollback_sql   text  DEFAULT NULL,
    options        jsonb DEFAULT '{}')
RETURNS virtuoso.migration_log
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_migration';
COMMENT ON FUNCTION virtuoso.execute_migration_with_monitoring(text, text, text, jsonb) IS
'Runs migration_sql once per name, serialised per database, each attempt with a short lock_timeout and retried with backoff on 55P03, atomically, and returns the virtuoso.migration_log row it recorded. Same name and SQL again returns the recorded row with a NOTICE; other SQL under an applied name is an error unless options.force. A failure is recorded as FAILED (surviving the caller''s rollback) and its error raised. Options: lock_timeout, max_retries, statement_timeout, validation_rules, lint ("error" (default): a migration with an error finding of virtuoso.lint_migration is refused before anything runs, SQLSTATE VR001; "warn": findings recorded in the lint column; "off"), max_plan_regression (a factor: the top statements of pg_stat_statements, virtuoso.plan_regression_statements of them by total time, are costed with generic plans before and after the migration SQL, each as the role that ran it; one more expensive by more than the factor fails the migration, SQLSTATE VR002; plan_changes holds both costs and plan shapes), transactional, dry_run (everything including the gate, then rolled back: status DRY_RUN, the row kept even when the caller rolls back), force. A name whose latest run another role recorded can be used only by a role with that role''s privileges (or a superuser).';

CREATE PROCEDURE virtuoso.run_migration(
    migration_name text,
    migration_sql  text,
    rollback_sql   text  DEFAULT NULL,
    options        jsonb DEFAULT '{}',
    INOUT status       text DEFAULT NULL,
    INOUT migration_id uuid DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_run_migration';
COMMENT ON PROCEDURE virtuoso.run_migration(text, text, text, jsonb, text, uuid) IS
'Procedure form of execute_migration_with_monitoring, with the same arguments, checks, log and errors: commits the calling transaction first, so that no snapshot of this session is held while the migration runs (needed by CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY in a {"transactional": false} migration), and returns the status and id of the virtuoso.migration_log row. Must be called outside a transaction block.';

CREATE FUNCTION virtuoso.execute_rollback_with_backup(
    migration_name    text,
    preserve_new_data boolean DEFAULT true,
    reason            text DEFAULT NULL)
RETURNS virtuoso.migration_log
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_rollback';
COMMENT ON FUNCTION virtuoso.execute_rollback_with_backup(text, boolean, text) IS
'Runs the stored rollback_sql of the latest SUCCESS run of a migration, lock-safe; with preserve_new_data first copies every table the migration touched into schema virtuoso_backup (names in backup_tables). The row becomes ROLLED_BACK. A transactional migration rolls back atomically: on failure nothing changes and no backup is kept. A {"transactional": false} migration rolls back statement by statement, each committing on its own: its backups are committed and listed in backup_tables before the first statement runs, and rollback_reason/rollback_at record the progress (''rolling back: k of n statements done'') and, on failure, ''rollback failed at statement k of n: SQLSTATE message''; the row stays SUCCESS until every statement is done (the migration is still applied, at least in part) and verify_migration_integrity reports it as a FAIL. Only a role with the privileges of the role that recorded the run (or a superuser) may roll it back; rollback_sql runs with the recording role''s rights.';

CREATE FUNCTION virtuoso.verify_migration_integrity(migration_name text)
RETURNS TABLE (check_name text, status text, object text, message text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_verify_migration';
COMMENT ON FUNCTION virtuoso.verify_migration_integrity(text) IS
'Checks what the latest run of a migration touched: objects that no longer exist, invalid indexes, NOT VALID constraints left behind, statements of a non-transactional run that did not complete, a statement-by-statement rollback left half way, and its stored validation rules (run with the rights of the role that recorded them). One row per check: PASS, FAIL, WARN or ERROR. Only a role with the privileges of the recording role (or a superuser) may verify a run.';

-- Captures the objects DDL touches while a migration runs (does nothing otherwise).
CREATE FUNCTION virtuoso.capture_migration_ddl()
RETURNS event_trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_capture_migration_ddl';
COMMENT ON FUNCTION virtuoso.capture_migration_ddl() IS
'Event trigger function: records the objects created, altered or dropped by a running migration into its affected_objects. Returns at once when no migration runs.';
CREATE EVENT TRIGGER virtuoso_capture_ddl ON ddl_command_end
    EXECUTE FUNCTION virtuoso.capture_migration_ddl();
CREATE EVENT TRIGGER virtuoso_capture_drops ON sql_drop
    EXECUTE FUNCTION virtuoso.capture_migration_ddl();
