-- Demo part: zero-downtime data changes (run by scripts/demo.sh).
\pset footer off
\set ECHO queries

\echo
\echo '### A batched, resumable copy: key ranges (never OFFSET), one commit per batch'
CREATE TABLE orders_archive (id bigint, customer_id int, status text, total numeric(10,2),
                             created_at timestamptz);
CALL virtuoso.migrate_data_batched(
    'SELECT id, customer_id, status, total, created_at FROM orders WHERE status = ''shipped''',
    'orders_archive', batch_size => 5000, job_name => 'archive_shipped');
SELECT (SELECT count(*) FROM orders WHERE status = 'shipped') AS source_rows,
       (SELECT count(*) FROM orders_archive) AS copied_rows;
SELECT job_name, status, rows_done, batches FROM virtuoso.batch_jobs
WHERE job_name = 'archive_shipped';

\echo
\echo '### Called again, the same job has nothing left to do (after a crash it would resume)'
CALL virtuoso.migrate_data_batched(
    'SELECT id, customer_id, status, total, created_at FROM orders WHERE status = ''shipped''',
    'orders_archive', batch_size => 5000, job_name => 'archive_shipped');
SELECT count(*) AS copied_rows FROM orders_archive;

\echo
\echo '### Bad input is refused before any row moves (the error is expected)'
\set ON_ERROR_STOP 0
CALL virtuoso.migrate_data_batched('SELECT 1 AS nope', 'orders_archive');
\set ON_ERROR_STOP 1
SELECT count(*) AS copied_rows FROM orders_archive;

\echo
\echo '### Add a column with a constant default: catalog only, the table is not rewritten'
SELECT pg_relation_filenode('orders') AS filenode_before \gset
CALL virtuoso.add_column_zero_downtime('orders', 'channel', 'text', '''web''');
SELECT pg_relation_filenode('orders') = :filenode_before AS same_filenode,
       count(*) FILTER (WHERE channel = 'web') AS rows_with_default FROM orders;

\echo
\echo '### A volatile default: nullable column, batched backfill, then NOT NULL without a scan'
CALL virtuoso.add_column_zero_downtime('orders', 'token', 'uuid', 'gen_random_uuid()',
                                       batch_size => 20000, not_null => true);
SELECT count(*) FILTER (WHERE token IS NULL) AS rows_without_token,
       (SELECT attnotnull FROM pg_attribute WHERE attrelid = 'orders'::regclass
        AND attname = 'token') AS not_null
FROM orders;

\echo
\echo '### Running long jobs show in virtuoso.progress from any session (empty now: all done)'
SELECT job, phase, done, total, pct FROM virtuoso.progress;
