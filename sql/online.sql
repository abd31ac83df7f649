-- virtuoso.migrate_data_batched, virtuoso.add_column_zero_downtime, virtuoso.progress
\set SHOW_CONTEXT never
CREATE TABLE ob_src (id int PRIMARY KEY, a text, b numeric);
INSERT INTO ob_src SELECT g, 'a' || g, g * 1.5 FROM generate_series(1, 2500) g;
CREATE TABLE ob_dst (id int, a text, b numeric, extra text DEFAULT 'x');

-- Copies every row once, in key-range batches, one commit per batch.
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'ob_dst', 1000, job_name => 'ob1');
SELECT count(*), count(DISTINCT id), sum(id), min(extra) FROM ob_dst;
SELECT job_name, target_table, key_column, key_type, upper_key, last_key, rows_total, rows_done,
       batches, status, owner_role::regrole
FROM virtuoso.batch_jobs WHERE job_name = 'ob1';
-- Called again: the job is done, nothing is copied twice.
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'ob_dst', 1000, job_name => 'ob1');
SELECT count(*) FROM ob_dst;

-- Interrupted (statement timeout between batches), then called again: it resumes after the
-- last committed batch, no row lost or duplicated.  The job is bounded to the keys present
-- at its start: rows added later are not copied.
TRUNCATE ob_dst;
SET virtuoso.batch_pause = '100ms';
SET statement_timeout = '450ms';
CALL virtuoso.migrate_data_batched('SELECT id, a, b FROM ob_src WHERE id % 7 <> 0', 'ob_dst', 200, job_name => 'ob2');
RESET statement_timeout;
RESET virtuoso.batch_pause;
SELECT count(*) BETWEEN 1 AND 2142 AS partly_copied FROM ob_dst;
INSERT INTO ob_src VALUES (3000, 'late', 1);
SET client_min_messages = warning;  -- the resume NOTICE names a row count that varies
CALL virtuoso.migrate_data_batched('SELECT id, a, b FROM ob_src WHERE id % 7 <> 0', 'ob_dst', 200, job_name => 'ob2');
RESET client_min_messages;
SELECT count(*), count(DISTINCT id), sum(id) = (SELECT sum(id) FROM ob_src WHERE id % 7 <> 0 AND id <= 2500) AS same_sum
FROM ob_dst;
SELECT status, rows_done, rows_total FROM virtuoso.batch_jobs WHERE job_name = 'ob2';

-- A key with duplicates: batches never split one key's rows, whatever the batch size.
CREATE TABLE ob_dup (k text, n int);
INSERT INTO ob_dup SELECT 'k' || (g % 13), g FROM generate_series(1, 500) g;
CREATE TABLE ob_dup_copy (k text, n int);
CALL virtuoso.migrate_data_batched('SELECT k, n FROM ob_dup', 'ob_dup_copy', 7, key_column => 'k');
SELECT count(*), count(DISTINCT n), sum(n) FROM ob_dup_copy;

-- Timestamp keys read back exactly whatever the session's DateStyle.
CREATE TABLE ob_ts (t timestamptz, n int);
INSERT INTO ob_ts SELECT timestamptz '2026-01-01 00:00:00.123456+00' + g * interval '1 hour 0.000001 s', g FROM generate_series(1, 300) g;
CREATE TABLE ob_ts_copy (t timestamptz, n int);
SET DateStyle = 'SQL, DMY';
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_ts', 'ob_ts_copy', 40, key_column => 't', job_name => 'ob_ts');
RESET DateStyle;
SELECT count(*), count(DISTINCT t) FROM ob_ts_copy;

-- Errors before any row moves: each with its SQLSTATE, nothing copied, no job recorded.
TRUNCATE ob_dst;
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'no_such_table');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM no_such_source', 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT id, a, b, 1 AS nope FROM ob_src', 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT id, a AS b FROM ob_src', 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT id, a, a FROM ob_src', 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'ob_dst', key_column => 'zz');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT point(1, 2) AS id', 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT NULLIF(id, 5) AS id FROM ob_src', 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT 1 AS id; DROP TABLE ob_src', 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('DELETE FROM ob_src RETURNING id', 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT 1 AS id) s; DROP TABLE ob_src; --', 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'ob_dst; DROP TABLE ob_src');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'virtuoso.progress');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'ob_dst', 0);
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'ob_dst', parallel_workers => 0);
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched(NULL, 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'ob_dst', job_name => '');
\echo :LAST_ERROR_SQLSTATE
-- A job resumes only with its own arguments.
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src WHERE id < 10', 'ob_dst', job_name => 'ob1');
\echo :LAST_ERROR_SQLSTATE
-- Commits its caller: refused inside a transaction block.
BEGIN;
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT count(*) AS rows_moved FROM ob_dst;
SELECT count(*) AS jobs FROM virtuoso.batch_jobs;
SELECT to_regclass('ob_src') IS NOT NULL AS ob_src_still_there;

-- The source query runs as the caller; another role cannot resume a job it did not start.
GRANT USAGE ON SCHEMA virtuoso TO regress_virtuoso_user;
GRANT EXECUTE ON PROCEDURE virtuoso.migrate_data_batched(text, text, integer, integer, text, text) TO regress_virtuoso_user;
CREATE TABLE ob_secret (id int, a text, b numeric);
GRANT SELECT ON ob_src TO regress_virtuoso_user;
GRANT INSERT ON ob_dst TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'ob_dst', job_name => 'ob1');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_secret', 'ob_dst', job_name => 'mine');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM ob_src', 'ob_secret', job_name => 'mine');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM virtuoso.batch_jobs;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Nothing runs, nothing shows.
SELECT count(*) FROM virtuoso.progress;

-- add_column_zero_downtime
CREATE TABLE oc (id int PRIMARY KEY, v text);
INSERT INTO oc SELECT g, 'v' || g FROM generate_series(1, 3000) g;
ANALYZE oc;
SELECT pg_relation_filenode('oc') AS oc_filenode \gset
-- Constant and stable defaults: catalog only, the table is not rewritten.
CALL virtuoso.add_column_zero_downtime('oc', 'c_const', 'integer', '42');
CALL virtuoso.add_column_zero_downtime('oc', 'c_stable', 'timestamptz', 'now()');
CALL virtuoso.add_column_zero_downtime('oc', 'c_none', 'text');
SELECT pg_relation_filenode('oc') = :oc_filenode AS same_filenode,
       count(*) FILTER (WHERE c_const = 42) AS const_set,
       count(DISTINCT c_stable) AS stable_values, count(c_none) AS none_set FROM oc;
-- Volatile default: nullable column, default for new rows, backfill in batches, NOT NULL.
CALL virtuoso.add_column_zero_downtime('oc', 'c_rand', 'double precision', 'random()', 500, true);
SELECT count(*) FILTER (WHERE c_rand IS NULL) AS nulls, count(DISTINCT c_rand) > 2900 AS varied FROM oc;
SELECT attname, attnotnull, pg_get_expr(adbin, adrelid) AS default
FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
WHERE attrelid = 'oc'::regclass AND attnum > 0 ORDER BY attnum;
SELECT count(*) AS leftover_checks FROM pg_constraint WHERE conrelid = 'oc'::regclass AND contype = 'c';
INSERT INTO oc (id, v) VALUES (0, 'new') RETURNING c_const, c_rand IS NOT NULL AS rand_set;
-- Rerunnable: the same call again finds the column and has nothing left to do.
CALL virtuoso.add_column_zero_downtime('oc', 'c_rand', 'double precision', 'random()', 500, true);
-- An interrupted backfill: the column exists, some rows still NULL; the rerun fills them.
ALTER TABLE oc ADD COLUMN c_half uuid;
UPDATE oc SET c_half = gen_random_uuid() WHERE id % 2 = 0;
CALL virtuoso.add_column_zero_downtime('oc', 'c_half', 'uuid', 'gen_random_uuid()', 300);
SELECT count(*) FILTER (WHERE c_half IS NULL) AS nulls FROM oc;
-- Bad type or default: clear errors, nothing changed.
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'no_such_type');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'int; DROP TABLE oc');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'anyelement');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'integer', '1) FROM oc WHERE (true');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'integer', '1, 2');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'integer', 'id + 1');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'integer', '(SELECT 1)');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'integer', 'now()');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'integer', '''abc''');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', 'c_const', 'text');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'integer', NULL, 10, true);
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'integer', '0', 0);
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('oc', '', 'integer');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.add_column_zero_downtime('virtuoso.progress', 'x1', 'integer');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'integer');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- Another role's table: ALTER TABLE refuses it (not the owner), nothing changed.
GRANT EXECUTE ON PROCEDURE virtuoso.add_column_zero_downtime(regclass, text, text, text, integer, boolean) TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'integer', 'random()::int');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) AS x1_columns FROM pg_attribute WHERE attrelid = 'oc'::regclass AND attname = 'x1';
SELECT pg_relation_filenode('oc') = :oc_filenode AS same_filenode;
-- Syntax errors name the argument (the parser's position would point into the CALL).
CALL virtuoso.add_column_zero_downtime('oc', 'x1', 'integer', '1 +');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT FROM WHERE', 'ob_dst');
\echo :LAST_ERROR_SQLSTATE
