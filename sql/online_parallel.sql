-- virtuoso.migrate_data_batched with parallel_workers > 1: the keys split into ranges by
-- quantiles, each range copied by a runner background worker.
\set SHOW_CONTEXT never
CREATE TABLE op_src (id int PRIMARY KEY, a text);
INSERT INTO op_src SELECT g, 'a' || g FROM generate_series(1, 3000) g;
CREATE TABLE op_dst (id int, a text);

-- Bad parallel_workers: 22023 before anything runs (no job recorded).
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_dst', parallel_workers => 0);
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_dst', parallel_workers => -3);
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_dst', parallel_workers => 65);
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_dst', parallel_workers => 2147483647);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS jobs FROM virtuoso.batch_jobs WHERE target_oid = 'op_dst'::regclass;

-- Two workers: every row once; the ranges follow one another without gap or overlap.
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_dst', 250, 2, job_name => 'op1');
SELECT count(*), count(DISTINCT id), sum(id) FROM op_dst;
SELECT range_no, lower_key, upper_key, last_key, rows_done, batches, status, error_sqlstate
FROM virtuoso.batch_job_ranges WHERE job_name = 'op1' ORDER BY range_no;
SELECT status, rows_done, rows_total, last_key = upper_key AS at_bound
FROM virtuoso.batch_jobs WHERE job_name = 'op1';
-- Called again: done, nothing copied twice.
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_dst', 250, 2, job_name => 'op1');
SELECT count(*) FROM op_dst;

-- A key with duplicates and more workers than distinct boundaries: one key's rows are
-- never split between ranges (nor between batches).
CREATE TABLE op_dup (k text, n int);
INSERT INTO op_dup SELECT 'k' || (g % 5), g FROM generate_series(1, 1000) g;
INSERT INTO op_dup SELECT 'k0', g FROM generate_series(1001, 3000) g;
CREATE TABLE op_dup_copy (k text, n int);
CALL virtuoso.migrate_data_batched('SELECT k, n FROM op_dup', 'op_dup_copy', 7, 4, key_column => 'k', job_name => 'op_dup');
SELECT count(*), count(DISTINCT n), sum(n) FROM op_dup_copy;
SELECT count(*) AS ranges, bool_and(status = 'DONE') AS all_done, sum(rows_done) AS rows
FROM virtuoso.batch_job_ranges WHERE job_name = 'op_dup';
-- Each key lies in exactly one range.
SELECT d.k, count(*) AS ranges_holding_it
FROM (SELECT DISTINCT k FROM op_dup) d
JOIN virtuoso.batch_job_ranges r ON r.job_name = 'op_dup'
 AND (r.lower_key IS NULL OR d.k > r.lower_key) AND d.k <= r.upper_key
GROUP BY d.k ORDER BY d.k;

-- An empty source: nothing to split, nothing to copy.
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src WHERE false', 'op_dst', 100, 3, job_name => 'op_empty');
SELECT status, rows_done FROM virtuoso.batch_jobs WHERE job_name = 'op_empty';

-- A failing worker stops the others: its error (SQLSTATE, message) reaches the caller, its
-- range is FAILED with the error, the others STOPPED where they were, the job FAILED.
CREATE TABLE op_checked (id int CHECK (id <= 2900), a text);
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_checked', 100, 3, job_name => 'op_fail');
\echo :LAST_ERROR_SQLSTATE
-- (The other ranges may have finished before the failure: DONE, or else STOPPED.)
SELECT range_no, lower_key, upper_key, status IN ('DONE', 'STOPPED') AS done_or_stopped,
       status = 'FAILED' AS failed, error_sqlstate, error_message
FROM virtuoso.batch_job_ranges WHERE job_name = 'op_fail' ORDER BY range_no;
SELECT status FROM virtuoso.batch_jobs WHERE job_name = 'op_fail';
-- What was committed matches the recorded positions.
SELECT (SELECT count(*) FROM op_checked) = (SELECT sum(rows_done) FROM virtuoso.batch_job_ranges WHERE job_name = 'op_fail') AS positions_match;
-- The cause fixed, called again: every range resumes where it stopped.
ALTER TABLE op_checked DROP CONSTRAINT op_checked_id_check;
SET client_min_messages = warning;  -- the resume NOTICE names a row count that varies
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_checked', 100, 3, job_name => 'op_fail');
RESET client_min_messages;
SELECT count(*), count(DISTINCT id), sum(id) FROM op_checked;
SELECT status, rows_done FROM virtuoso.batch_jobs WHERE job_name = 'op_fail';
SELECT range_no, status, error_sqlstate FROM virtuoso.batch_job_ranges WHERE job_name = 'op_fail' ORDER BY range_no;

-- More workers than the runner budget (virtuoso.max_runner_workers, 4): those that start
-- within virtuoso.runner_queue_timeout copy every range.
CREATE TABLE op_many (id int, a text);
SET virtuoso.runner_queue_timeout = '300ms';
SET client_min_messages = warning;  -- how many workers start depends on what else runs
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_many', 100, 7, job_name => 'op_many');
RESET client_min_messages;
RESET virtuoso.runner_queue_timeout;
SELECT count(*), count(DISTINCT id), sum(id) FROM op_many;
SELECT count(*) AS ranges, bool_and(status = 'DONE') AS all_done FROM virtuoso.batch_job_ranges WHERE job_name = 'op_many';

-- A job started as one process continues as one.
CREATE TABLE op_single (id int, a text);
SET statement_timeout = '300ms';
SET virtuoso.batch_pause = '100ms';
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_single', 100, 1, job_name => 'op_single');
RESET statement_timeout;
RESET virtuoso.batch_pause;
SET client_min_messages = warning;
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_single', 100, 2, job_name => 'op_single');
RESET client_min_messages;
SELECT count(*), count(DISTINCT id), sum(id) FROM op_single;
SELECT count(*) AS ranges FROM virtuoso.batch_job_ranges WHERE job_name = 'op_single';

-- The workers run as the caller: its privileges, its current_user.
GRANT EXECUTE ON PROCEDURE virtuoso.migrate_data_batched(text, text, integer, integer, text, text) TO regress_virtuoso_user;
CREATE TABLE op_user_dst (id int, who text);
CREATE TABLE op_secret (id int, who text);
INSERT INTO op_secret SELECT g, 'secret' FROM generate_series(1, 100) g;
GRANT SELECT ON op_src TO regress_virtuoso_user;
GRANT INSERT ON op_user_dst TO regress_virtuoso_user;
CREATE TABLE op_user_dst2 (id int, a text);
GRANT INSERT ON op_user_dst2 TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
CALL virtuoso.migrate_data_batched('SELECT id, current_user::text AS who FROM op_src', 'op_user_dst', 500, 2, job_name => 'op_user');
CALL virtuoso.migrate_data_batched('SELECT * FROM op_secret', 'op_user_dst', 500, 2, job_name => 'op_user2');
\echo :LAST_ERROR_SQLSTATE
-- Another role cannot resume a parallel job it did not start.
CALL virtuoso.migrate_data_batched('SELECT * FROM op_src', 'op_user_dst2', 250, 2, job_name => 'op1');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM virtuoso.batch_job_ranges;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT who, count(*), sum(id) FROM op_user_dst GROUP BY who;
SELECT count(*) AS progress_rows_left FROM virtuoso.progress;
