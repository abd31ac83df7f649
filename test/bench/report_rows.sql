-- Synthetic log rows for the report: :rows migration runs and :rows maintenance actions
-- spread over the last 7 days (psql variable rows, default 10000), with failures, rollbacks,
-- lock waits, skipped and failed maintenance.  Used by test/bench/report.sh and the TAP
-- test of the report (test/t/100_report.pl).  Needs a superuser (it writes the logs).
\if :{?rows}
\else
\set rows 10000
\endif
INSERT INTO virtuoso.migration_log (name, checksum, status, started_at, completed_at, duration,
    migration_sql, sqlstate, error_message, attempts, lock_waits, rollback_at, rollback_reason,
    executed_by)
SELECT 'sample_' || g, md5(g::text), s.status, t.started,
       t.started + t.took, t.took, 'SELECT 1',
       CASE WHEN s.status = 'FAILED' THEN '55P03' END,
       CASE WHEN s.status = 'FAILED' THEN 'canceling statement due to lock timeout <sample ' || g || '>' END,
       1 + (g % 3),
       CASE WHEN g % 7 = 0 THEN jsonb_build_array(jsonb_build_object('attempt', 1, 'statement', 1,
            'command', 'ALTER TABLE', 'waited_ms', 1000 + g % 500, 'blockers', '[]'::jsonb))
            ELSE '[]' END,
       CASE WHEN s.status = 'ROLLED_BACK' THEN t.started + t.took + interval '1 minute' END,
       CASE WHEN s.status = 'ROLLED_BACK' THEN 'sample rollback' END,
       current_user
FROM generate_series(1, :rows) g
CROSS JOIN LATERAL (SELECT (ARRAY['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS', 'FAILED',
                                  'ROLLED_BACK', 'SKIPPED', 'DRY_RUN'])[1 + g % 9] AS status) s
CROSS JOIN LATERAL (SELECT now() - (g * interval '7 days' / :rows) AS started,
                           (power(10, (g % 50) / 10.0) * interval '10 ms') AS took) t;

INSERT INTO virtuoso.maintenance_log (started_at, finished_at, duration, schemaname, tablename,
    action, command, reason, status, dead_tuples_before, dead_tuples_after, executed_by,
    triggered_by, sqlstate, error_message)
SELECT t.started, t.started + interval '2 s', interval '2 s', 'public', 'sample_table_' || (g % 40),
       a.action, a.action || ' public.sample_table_' || (g % 40), 'sample', s.status,
       1000 + g % 9000, CASE WHEN s.status = 'SUCCESS' THEN g % 100 END, current_user, 'scheduler',
       CASE WHEN s.status = 'FAILED' THEN '57014' END,
       CASE WHEN s.status = 'FAILED' THEN 'canceling statement due to statement timeout' END
FROM generate_series(1, :rows) g
CROSS JOIN LATERAL (SELECT (ARRAY['VACUUM', 'ANALYZE', 'VACUUM', 'VACUUM (FREEZE)'])[1 + g % 4] AS action) a
CROSS JOIN LATERAL (SELECT CASE WHEN g % 23 = 0 THEN 'FAILED' WHEN g % 11 = 0 THEN 'SKIPPED'
                                ELSE 'SUCCESS' END AS status) s
CROSS JOIN LATERAL (SELECT now() - (g * interval '7 days' / :rows) AS started) t;
ANALYZE virtuoso.migration_log, virtuoso.maintenance_log;
