-- Demo part: maintenance that decides for itself (run by scripts/demo.sh).
\pset footer off
\set ECHO queries

\echo
\echo '### Maintenance: a bloated table, a bulk-loaded table, a clean one'
CREATE TABLE demo_sessions (id bigint PRIMARY KEY, user_id int, payload text);
INSERT INTO demo_sessions SELECT g, g % 1000, repeat('x', 200) FROM generate_series(1, 60000) g;
-- (this session's statistics reach the shared counters at once, not up to a second later)
SELECT pg_stat_force_next_flush() \g /dev/null
ANALYZE demo_sessions;
DELETE FROM demo_sessions WHERE id % 3 = 0;
CREATE TABLE demo_events (id bigint, kind text);
INSERT INTO demo_events SELECT g, 'click' FROM generate_series(1, 100000) g;
CREATE TABLE demo_clean (id int);
INSERT INTO demo_clean SELECT generate_series(1, 100);
ANALYZE demo_clean;
SELECT pg_stat_force_next_flush() \g /dev/null

\echo
\echo '### The thresholds (reload settings): VACUUM needs both, ANALYZE the same number of changed rows'
SELECT name, setting, unit FROM pg_settings
WHERE name IN ('virtuoso.dead_tuple_threshold', 'virtuoso.dead_tuple_pct',
               'virtuoso.maintenance_window', 'virtuoso.maintenance_time_budget',
               'virtuoso.maintenance_naptime', 'virtuoso.database_names');

\echo
\echo '### Dry run: what is due and why (freezing first, then VACUUM, then ANALYZE); nothing is done'
SELECT schemaname, tablename, action, reason, dead_tuples, dead_pct, status
FROM virtuoso.perform_maintenance_if_needed(dry_run => true);

\echo
\echo '### The real thing: VACUUM runs as a top-level command (statement runner), as the caller'
SELECT schemaname, tablename, action, status, duration
FROM virtuoso.perform_maintenance_if_needed();

\echo
\echo '### Every action is in virtuoso.maintenance_log, committed whatever the caller does next'
SELECT tablename, command, status, dead_tuples_before, dead_tuples_after, pages_before,
       pages_removed, duration
FROM virtuoso.maintenance_log ORDER BY id;

\echo
\echo '### Nothing is due any more'
SELECT count(*) AS still_due FROM virtuoso.perform_maintenance_if_needed(dry_run => true);

\echo
\echo '### The scheduler runs the same round every virtuoso.maintenance_naptime in each database'
SELECT pid, backend_type, backend_start FROM pg_stat_activity
WHERE backend_type = 'db_virtuoso maintenance scheduler';
