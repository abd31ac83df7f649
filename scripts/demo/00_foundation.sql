-- Demo part: the statement runner and concurrent index builds (run by scripts/demo.sh).
\pset footer off
\set ECHO queries
-- shows an error's SQLSTATE and message instead of stopping the demo
CREATE FUNCTION public.demo_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE sql; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

\echo
\echo '### Sample data: an orders table with churn'
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, status text, total numeric(10,2),
                     created_at timestamptz DEFAULT now());
INSERT INTO orders SELECT g, g % 5000, (ARRAY['new','paid','shipped'])[1 + g % 3], (g % 997) / 3.0,
       now() - (g % 1000) * interval '1 hour'
FROM generate_series(1, 200000) g;
DELETE FROM orders WHERE id % 4 = 0;

\echo
\echo '### The statement runner: VACUUM from inside a function call'
SELECT n_dead_tup AS dead_before FROM pg_stat_user_tables WHERE relname = 'orders';
SELECT virtuoso.execute_top_level('VACUUM (ANALYZE) orders') AS command;
SELECT pg_stat_clear_snapshot();
SELECT n_dead_tup AS dead_after, vacuum_count FROM pg_stat_user_tables WHERE relname = 'orders';

\echo
\echo '### Zero-downtime index build: CONCURRENTLY added, validity checked, retried if invalid'
\echo '(a procedure: it commits first, so that no snapshot of this session holds the build up)'
CALL virtuoso.build_index_concurrently('CREATE INDEX orders_customer_idx ON orders (customer_id)');
SELECT indexrelid::regclass AS index, indisvalid FROM pg_index WHERE indrelid = 'orders'::regclass;

\echo
\echo '### Autonomous write: committed even though the caller rolls back'
CREATE TABLE audit_note (note text, at timestamptz DEFAULT now());
BEGIN;
SELECT virtuoso.execute_autonomous($$INSERT INTO audit_note (note) VALUES ('kept after rollback')$$);
ROLLBACK;
SELECT note FROM audit_note;
