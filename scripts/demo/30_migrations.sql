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
    'ALTER TABLE orders ADD COLUMN tmp int; UPDATE orders SET total = total / 0 WHERE id = 1')$$);
ROLLBACK;
SELECT name, status, sqlstate, error_message FROM virtuoso.migration_log WHERE name = 'orders_bad';

\echo
\echo '### The gate: a migration that would rewrite the table under ACCESS EXCLUSIVE is refused'
\echo '### by the linter before anything runs (SQLSTATE VR001, the findings in the lint column)'
SELECT public.demo_try($$SELECT virtuoso.execute_migration_with_monitoring('orders_status_int',
    'ALTER TABLE orders ALTER COLUMN status TYPE int USING status::int')$$);
SELECT f->>'rule' AS rule, f->>'severity' AS severity, f->>'lock_mode' AS lock_mode,
       f->>'message' AS message, f->>'safe_alternative' AS safe_alternative
FROM virtuoso.migration_log, jsonb_array_elements(lint) f WHERE name = 'orders_status_int';

\echo
\echo '### The gate: max_plan_regression costs the hottest pg_stat_statements queries before and'
\echo '### after the migration; dropping the index they need fails it (VR002), nothing applied'
SELECT count(*) FROM orders WHERE customer_id = 42;
SELECT count(*) FROM orders WHERE customer_id = 43;
SELECT public.demo_try($$SELECT virtuoso.execute_migration_with_monitoring('orders_drop_customer_idx',
    'DROP INDEX orders_customer_idx', NULL, '{"max_plan_regression": 2}')$$);
SELECT s->>'query' AS query, round((s->>'cost_before')::numeric, 1) AS cost_before,
       round((s->>'cost_after')::numeric, 1) AS cost_after, s->>'plan_before' AS plan_before,
       s->>'plan_after' AS plan_after
FROM virtuoso.migration_log, jsonb_array_elements(plan_changes->'statements') s
WHERE name = 'orders_drop_customer_idx' AND (s->>'regressed')::boolean;
SELECT to_regclass('orders_customer_idx') AS index_still_there;

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
\echo '### Statement by statement (transactional: false), so CREATE INDEX CONCURRENTLY and VACUUM work'
\echo '(the procedure form commits first: no snapshot of this session holds the concurrent build up)'
CALL virtuoso.run_migration('orders_status_idx',
    'CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status); VACUUM (ANALYZE) orders',
    'DROP INDEX CONCURRENTLY orders_status_idx', '{"transactional": false}');
SELECT name, status, transactional, statements_done FROM virtuoso.migration_log
WHERE name = 'orders_status_idx';

\echo
\echo '### Verify, then roll back keeping a copy of the data'
SELECT * FROM virtuoso.verify_migration_integrity('orders_add_note');
SELECT name, status, rollback_reason, backup_tables
FROM virtuoso.execute_rollback_with_backup('orders_add_note', true, 'notes move to their own table');
