-- Demo part: monitored, reversible migrations (run by scripts/demo.sh).
\pset footer off
\set ECHO queries

\echo
\echo '### A monitored migration: runs once, records what it did'
SELECT name, status, attempts, duration, statements_done,
       jsonb_path_query_array(affected_objects, '$[*].identity') AS touched,
       (final_stats->>'wal_bytes')::bigint AS wal_bytes
FROM virtuoso.execute_migration_with_monitoring(
    'orders_add_note',
    'ALTER TABLE orders ADD COLUMN note text; UPDATE orders SET note = ''vip'' WHERE total > 300',
    'ALTER TABLE orders DROP COLUMN note');

\echo
\echo '### Run again: same name and SQL, nothing runs (safe to re-run a script)'
SELECT status FROM virtuoso.execute_migration_with_monitoring(
    'orders_add_note',
    'ALTER TABLE orders ADD COLUMN note text; UPDATE orders SET note = ''vip'' WHERE total > 300',
    'ALTER TABLE orders DROP COLUMN note');

\echo
\echo '### A failing migration: nothing applied, FAILED recorded even though the caller rolls back'
BEGIN;
SELECT public.demo_try($$SELECT virtuoso.execute_migration_with_monitoring('orders_bad',
    'ALTER TABLE orders ADD COLUMN tmp int; ALTER TABLE orders ALTER COLUMN status TYPE int USING status::int')$$);
ROLLBACK;
SELECT name, status, sqlstate, error_message FROM virtuoso.migration_log WHERE name = 'orders_bad';

\echo
\echo '### Lock-safe: another session holds a lock for 0.6 s; each attempt gives up after 100 ms,'
\echo '### rolls back (holding nothing while it waits), and retries with backoff'
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('holder', format('host=%s port=%s dbname=%s user=%s', :'host', :'port', current_database(), current_user));
SELECT dblink_send_query('holder', 'BEGIN; LOCK TABLE orders IN SHARE MODE; SELECT pg_sleep(0.6); COMMIT;');
SELECT pg_sleep(0.1);
SELECT name, status, attempts, jsonb_array_length(lock_waits) AS lock_waits,
       lock_waits->0->'blockers'->0->>'mode' AS blocked_by, lock_waits->0->'blockers'->0->>'query' AS blocker_query
FROM virtuoso.execute_migration_with_monitoring('orders_priority',
    'ALTER TABLE orders ADD COLUMN priority int', 'ALTER TABLE orders DROP COLUMN priority',
    '{"lock_timeout": "100ms"}');
SELECT dblink_disconnect('holder');

\echo
\echo '### Statement by statement (transactional: false), so VACUUM and DROP INDEX CONCURRENTLY work'
\echo '(concurrent builds wait for this call''s own snapshot: use CALL virtuoso.build_index_concurrently)'
SELECT name, status, transactional, statements_done
FROM virtuoso.execute_migration_with_monitoring('orders_status_idx',
    'CREATE INDEX orders_status_idx ON orders (status); VACUUM (ANALYZE) orders',
    'DROP INDEX CONCURRENTLY orders_status_idx', '{"transactional": false}');

\echo
\echo '### Verify, then roll back keeping a copy of the data'
SELECT * FROM virtuoso.verify_migration_integrity('orders_add_note');
SELECT name, status, rollback_reason, backup_tables
FROM virtuoso.execute_rollback_with_backup('orders_add_note', true, 'notes move to their own table');
