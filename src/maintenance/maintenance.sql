-- Maintenance: perform_maintenance_if_needed and its log (the scheduler runs the same logic).
CREATE TABLE virtuoso.maintenance_log (
    id                 bigserial PRIMARY KEY,
    started_at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at        timestamptz,
    duration           interval,
    relid              oid,
    schemaname         name NOT NULL,
    tablename          name NOT NULL,
    action             text NOT NULL,
    command            text,
    reason             text,
    status             text NOT NULL
        CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED', 'SKIPPED')),
    dead_tuples_before bigint,
    dead_tuples_after  bigint,
    dead_pct           numeric,
    pages_before       bigint,
    pages_after        bigint,
    pages_removed      bigint,
    sqlstate           text,
    error_message      text,
    executed_by        name NOT NULL,
    triggered_by       text NOT NULL CHECK (triggered_by IN ('function', 'scheduler')),
    pid                int,
    backend_start      timestamptz
);
CREATE INDEX maintenance_log_running ON virtuoso.maintenance_log (id) WHERE status = 'RUNNING';
CREATE INDEX maintenance_log_table ON virtuoso.maintenance_log (relid, started_at);
COMMENT ON TABLE virtuoso.maintenance_log IS
'One row per maintenance action (VACUUM, VACUUM (FREEZE), ANALYZE) run by perform_maintenance_if_needed or the scheduler, and per table skipped because it was locked: times, dead tuples and pages before and after, status and error. Rows left RUNNING by a crash or a terminated call are marked FAILED by the next scheduler round or perform_maintenance_if_needed call (not a dry run). From perform_maintenance_if_needed, a VACUUM''s row (RUNNING, then closed) and every FAILED row are written in transactions of their own and survive a rollback of the caller; ANALYZE and SKIPPED rows, and the closing of abandoned rows, are written in the caller''s transaction (no background worker; they commit with it) unless it is read-only.';
SELECT pg_catalog.pg_extension_config_dump('virtuoso.maintenance_log', '');
SELECT pg_catalog.pg_extension_config_dump('virtuoso.maintenance_log_id_seq', '');

CREATE FUNCTION virtuoso.perform_maintenance_if_needed(dry_run boolean DEFAULT false)
RETURNS TABLE(schemaname name, tablename name, action text, reason text,
              dead_tuples bigint, dead_pct numeric, status text, duration interval)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_perform_maintenance_if_needed';
COMMENT ON FUNCTION virtuoso.perform_maintenance_if_needed(boolean) IS
'Decides per table whether VACUUM (FREEZE) (table age near the freeze limit; first, oldest first), VACUUM (dead tuples reach virtuoso.dead_tuple_threshold plus virtuoso.dead_tuple_pct percent of the live rows, as autovacuum''s base threshold plus scale factor) or ANALYZE (as many changed rows since the last analyze); a VACUUM or ANALYZE is not due again within virtuoso.maintenance_min_interval of the table''s last one (by anyone, autovacuum included; freezing excepted) is due, runs it as a top-level command as the calling role with autovacuum''s cost delay, and logs it in virtuoso.maintenance_log. Tables locked by another session are SKIPPED with reason locked; a table in use (locks on it held or awaited by any session, sampled five times over 40 ms) is vacuumed with TRUNCATE false, since VACUUM''s end-of-table truncation would retry its exclusive lock for up to 5 s, and the log''s command and reason say so; nothing runs outside virtuoso.maintenance_window or after virtuoso.maintenance_time_budget. First marks FAILED the RUNNING rows of calls whose process is gone (crash, termination). dry_run only says what would be done. One row per table for which an action is due.';
