-- The statement runner: top-level statements from inside a function call.
CREATE EXTENSION pgstattuple;
CREATE TABLE runner_t (id int PRIMARY KEY, v text);
INSERT INTO runner_t SELECT g, 'value ' || g FROM generate_series(1, 10000) g;
DELETE FROM runner_t WHERE id % 2 = 0;
SELECT dead_tuple_count FROM pgstattuple('runner_t');

-- Without the runner, VACUUM cannot run inside a function.
SELECT try($$DO 'BEGIN EXECUTE ''VACUUM runner_t''; END'$$);

-- Through the runner it runs, and takes effect.
SELECT virtuoso.execute_top_level('VACUUM runner_t');
SELECT dead_tuple_count FROM pgstattuple('runner_t');
SELECT pg_stat_clear_snapshot();
SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'runner_t';
SELECT virtuoso.execute_top_level('VACUUM (ANALYZE) runner_t');

-- Statements that wait for every older snapshot cannot run inside a function call: the
-- calling statement holds a snapshot until it ends.  They are refused (25001) before any
-- worker starts, and nothing is left behind.
SELECT try($$SELECT virtuoso.execute_top_level('CREATE INDEX CONCURRENTLY runner_t_v_idx ON runner_t (v)')$$);
SELECT try($$SELECT virtuoso.execute_top_level('create /* c */ unique index concurrently on runner_t (id)')$$);
SELECT try($$SELECT virtuoso.execute_top_level('REINDEX (CONCURRENTLY) TABLE runner_t')$$);
SELECT try($$SELECT virtuoso.execute_top_level('REINDEX TABLE CONCURRENTLY runner_t')$$);
CREATE TABLE runner_parted (k int) PARTITION BY RANGE (k);
CREATE TABLE runner_part1 PARTITION OF runner_parted FOR VALUES FROM (0) TO (10);
SELECT try($$SELECT virtuoso.execute_top_level('ALTER TABLE runner_parted DETACH PARTITION runner_part1 CONCURRENTLY')$$);
SELECT count(*) AS indexes_left FROM pg_index WHERE indrelid = 'runner_t'::regclass AND indexrelid <> 'runner_t_pkey'::regclass;
SELECT inhrelid::regclass AS still_attached FROM pg_inherits WHERE inhparent = 'runner_parted'::regclass;
-- Not waiting for snapshots: REINDEX without CONCURRENTLY, and CONCURRENTLY only in a string.
SELECT virtuoso.execute_top_level('REINDEX (CONCURRENTLY false) TABLE runner_part1');
SELECT virtuoso.execute_top_level($$SELECT 'create index concurrently'$$);

-- The procedure form commits the calling transaction first and holds no snapshot.
CALL virtuoso.run_top_level('CREATE INDEX CONCURRENTLY runner_t_v_idx ON runner_t (v)');
SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = 'runner_t_v_idx'::regclass;
CALL virtuoso.run_top_level('REINDEX INDEX CONCURRENTLY runner_t_v_idx');
CALL virtuoso.run_top_level('ALTER TABLE runner_parted DETACH PARTITION runner_part1 CONCURRENTLY');
SELECT count(*) AS still_attached FROM pg_inherits WHERE inhparent = 'runner_parted'::regclass;
DROP TABLE runner_parted, runner_part1;
-- DROP INDEX CONCURRENTLY waits for lockers only: the function form runs it.
SELECT virtuoso.execute_top_level('DROP INDEX CONCURRENTLY runner_t_v_idx');
SELECT to_regclass('runner_t_v_idx');
-- Errors of the statement and of the arguments come back with their SQLSTATE.
\set VERBOSITY terse
CALL virtuoso.run_top_level('SELECT 1/0');
CALL virtuoso.run_top_level(NULL);
CALL virtuoso.run_top_level(' ; ');
CALL virtuoso.run_top_level('SELECT 1');
-- CALL commits: it refuses to run inside a transaction block, a function or a DO block.
BEGIN;
SELECT try($$CALL virtuoso.run_top_level('VACUUM runner_t')$$);
ROLLBACK;
SELECT try($$DO 'DECLARE tag text; BEGIN CALL virtuoso.run_top_level(''VACUUM runner_t'', tag); END'$$);
\set VERBOSITY default
-- Ordinary statements report their command tag.
SELECT virtuoso.execute_top_level('UPDATE runner_t SET v = v WHERE id < 10');
SELECT virtuoso.execute_top_level('INSERT INTO runner_t VALUES (20002, ''x'')');

-- Errors come back with their SQLSTATE and message.
SELECT try($$SELECT virtuoso.execute_top_level('VACUUM no_such_table')$$);
SELECT try($$SELECT virtuoso.execute_top_level('SELEC 1')$$);
SELECT try($$SELECT virtuoso.execute_top_level('INSERT INTO runner_t VALUES (1, ''dup'')')$$);
SELECT try($$SELECT virtuoso.execute_top_level('SELECT 1/0')$$);
-- One statement only, no transaction control, no empty input.
SELECT try($$SELECT virtuoso.execute_top_level('SELECT 1; SELECT 2')$$);
SELECT try($$SELECT virtuoso.execute_top_level('COMMIT')$$);
SELECT try($$SELECT virtuoso.execute_top_level('  ;  ')$$);
SELECT virtuoso.execute_top_level(NULL) IS NULL AS null_in_null_out;
-- Notices and warnings of the statement reach the caller.
SELECT virtuoso.execute_top_level($$DO 'BEGIN RAISE NOTICE ''hello from the runner''; END'$$);

-- The caller's settings travel: search_path decides where an unqualified table goes.
CREATE SCHEMA runner_schema;
SET search_path = runner_schema, public;
SELECT virtuoso.execute_top_level('CREATE TABLE in_search_path (x int)');
RESET search_path;
SELECT to_regclass('runner_schema.in_search_path') IS NOT NULL AS created_in_caller_search_path;

-- A statement that needs a lock the caller holds fails at once instead of hanging.
BEGIN;
LOCK TABLE runner_t IN ACCESS EXCLUSIVE MODE;
SELECT try($$SELECT virtuoso.execute_top_level('VACUUM runner_t')$$);
ROLLBACK;
CREATE INDEX runner_t_v2_idx ON runner_t (v);
BEGIN;
INSERT INTO runner_t VALUES (30000, 'uncommitted');
SELECT try($$SELECT virtuoso.execute_top_level('DROP INDEX CONCURRENTLY runner_t_v2_idx')$$);
ROLLBACK;
DROP INDEX runner_t_v2_idx;
-- Concurrent builds are refused up front, whatever the isolation level.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) > 0 AS snapshot_taken FROM runner_t;
SELECT try($$SELECT virtuoso.execute_top_level('CREATE INDEX CONCURRENTLY ON runner_t (v)')$$);
ROLLBACK;
-- Refused before any worker started: no invalid index is left behind.
SELECT count(*) AS leftover_indexes FROM pg_index WHERE indrelid = 'runner_t'::regclass AND NOT indisvalid;

-- Autonomous mode: the write survives the caller's rollback.
CREATE TABLE runner_audit (note text, who name);
GRANT INSERT, SELECT ON runner_audit TO regress_virtuoso_user;
BEGIN;
SELECT virtuoso.execute_autonomous($$INSERT INTO runner_audit VALUES ('kept', current_user)$$);
INSERT INTO runner_audit VALUES ('rolled back', current_user);
ROLLBACK;
SELECT note, who = session_user AS as_session_user FROM runner_audit;

-- The runner acts as the calling role, never with more rights.
GRANT EXECUTE ON PROCEDURE virtuoso.run_top_level(text, text) TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
SELECT virtuoso.execute_autonomous($$INSERT INTO runner_audit VALUES ('as user', current_user)$$);
CALL virtuoso.run_top_level('CREATE INDEX CONCURRENTLY ON runner_t (v)');
SELECT try($$SELECT virtuoso.execute_top_level('DROP TABLE runner_t')$$);
SELECT virtuoso.execute_top_level('VACUUM runner_t');
SELECT try($$SELECT virtuoso.execute_autonomous('DELETE FROM runner_t')$$);
RESET ROLE;
REVOKE EXECUTE ON PROCEDURE virtuoso.run_top_level(text, text) FROM regress_virtuoso_user;
SELECT note, CASE WHEN who = session_user THEN 'session user' ELSE who::text END AS who
FROM runner_audit ORDER BY note;
SELECT count(*) AS rows_left FROM runner_t;
