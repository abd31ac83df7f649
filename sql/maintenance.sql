-- perform_maintenance_if_needed: decisions on prepared tables, dry run, the log, locks held
-- by the caller, permissions, bad settings.  (Another session's lock: isolation test
-- maintenance_locked; the scheduler: TAP tests 05x.)  Only schema maint is shown: tables of
-- other tests are maintained too, but their state is theirs.
CREATE SCHEMA maint;
-- Tables are analysed just before they are maintained here: no minimum interval
-- (maintenance_churn tests it).
SET virtuoso.maintenance_min_interval = 0;
-- Statistics of this session reach the shared counters at once (not up to 1 s later), so that
-- each ANALYZE sees the counts of the load before it.
CREATE PROCEDURE maint.flush() LANGUAGE sql AS 'SELECT pg_catalog.pg_stat_force_next_flush()';
-- "old": its relfrozenxid falls behind the freeze limit set below.
CREATE TABLE maint.old (id int);
INSERT INTO maint.old VALUES (1);
DO $$ BEGIN FOR i IN 1..2000 LOOP PERFORM pg_catalog.txid_current(); COMMIT; END LOOP; END $$;
-- "bloated": 5000 dead of 10000 rows, and as many changes since the last ANALYZE.
CREATE TABLE maint.bloated (id int PRIMARY KEY, v text);
INSERT INTO maint.bloated SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g;
CALL maint.flush();
ANALYZE maint.bloated;
DELETE FROM maint.bloated WHERE id > 5000;
-- "loaded": a bulk load never analyzed.
CREATE TABLE maint.loaded (id int);
INSERT INTO maint.loaded SELECT generate_series(1, 20000);
CALL maint.flush();
ANALYZE maint.loaded;
INSERT INTO maint.loaded SELECT generate_series(1, 20000);
-- "fresh": nothing due.
CREATE TABLE maint.fresh (id int);
INSERT INTO maint.fresh SELECT generate_series(1, 100);
CALL maint.flush();
ANALYZE maint.fresh;
-- "few_dead": 900 dead tuples are under virtuoso.dead_tuple_threshold (1000).
CREATE TABLE maint.few_dead (id int);
INSERT INTO maint.few_dead SELECT generate_series(1, 1000);
CALL maint.flush();
ANALYZE maint.few_dead;
DELETE FROM maint.few_dead WHERE id <= 900;
-- "big_few_dead": 2000 dead are only 2% of the live rows.
CREATE TABLE maint.big_few_dead (id int);
INSERT INTO maint.big_few_dead SELECT generate_series(1, 100000);
CALL maint.flush();
ANALYZE maint.big_few_dead;
DELETE FROM maint.big_few_dead WHERE id % 50 = 0;  -- spread: ANALYZE samples see them
CALL maint.flush();
ANALYZE maint.big_few_dead;
CALL maint.flush();
SET vacuum_freeze_table_age = 1000;

-- The thresholds in force (SIGHUP settings: defaults here).
SHOW virtuoso.dead_tuple_threshold;
SHOW virtuoso.dead_tuple_pct;

-- Dry run: what would be done, freezing first; nothing is done or logged.
SELECT tablename, action, regexp_replace(reason, 'age \d+', 'age N') AS reason, dead_tuples,
       dead_pct, status, duration
FROM virtuoso.perform_maintenance_if_needed(dry_run => true)
WHERE schemaname = 'maint';
SELECT count(*) AS log_rows FROM virtuoso.maintenance_log;
SELECT pg_stat_clear_snapshot();
SELECT relname, n_dead_tup > 0 AS has_dead FROM pg_stat_user_tables WHERE schemaname = 'maint' ORDER BY relname;

-- A table this transaction has locked is skipped ("locked") and logged as such; the rest runs.
BEGIN;
LOCK TABLE maint.bloated IN SHARE MODE;
SELECT tablename, action, regexp_replace(reason, 'age \d+', 'age N') AS reason, status,
       duration IS NOT NULL AS timed
FROM virtuoso.perform_maintenance_if_needed()
WHERE schemaname = 'maint';
COMMIT;
SELECT tablename, action, status, error_message, duration = '0'::interval AS zero
FROM virtuoso.maintenance_log WHERE schemaname = 'maint' AND status = 'SKIPPED';

-- The old table is frozen now: its age is far below the limit again.
SELECT age(relfrozenxid) < 1000 AS young FROM pg_class WHERE oid = 'maint.old'::regclass;

-- Now the bloated table is vacuumed (and analyzed); the others are done.
SELECT tablename, action, status FROM virtuoso.perform_maintenance_if_needed()
WHERE schemaname = 'maint';
SELECT pg_stat_clear_snapshot();
SELECT relname, n_dead_tup = 0 AS no_dead, last_vacuum IS NOT NULL AS vacuumed,
       last_analyze IS NOT NULL AS analyzed
FROM pg_stat_user_tables WHERE schemaname = 'maint' ORDER BY relname;

-- The log: one row per action with times, counts before and after, pages removed.
SELECT tablename, action, command, status, triggered_by, executed_by = current_user AS by_me,
       dead_tuples_before, dead_tuples_after, pages_removed >= 0 AS pages_known,
       finished_at >= started_at AS ordered, duration >= '0'::interval AS has_duration,
       pid = pg_backend_pid() AS my_pid, sqlstate, error_message
FROM virtuoso.maintenance_log WHERE schemaname = 'maint' AND status <> 'SKIPPED'
ORDER BY id;
SELECT count(*) FILTER (WHERE status = 'RUNNING') AS running FROM virtuoso.maintenance_log;

-- Nothing is due any more.
SELECT count(*) FROM virtuoso.perform_maintenance_if_needed() WHERE schemaname = 'maint';

-- The log survives a rollback of the calling transaction (the VACUUM did happen).
DELETE FROM maint.bloated WHERE id > 2000;
CALL maint.flush();
BEGIN;
SELECT tablename, action, status FROM virtuoso.perform_maintenance_if_needed()
WHERE schemaname = 'maint';
ROLLBACK;
SELECT tablename, status FROM virtuoso.maintenance_log
WHERE schemaname = 'maint' ORDER BY id DESC LIMIT 1;

-- Runs as the caller: tables it may not vacuum are skipped with that reason, its own are done.
GRANT USAGE, CREATE ON SCHEMA maint TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
CREATE TABLE maint.users_table (id int);
INSERT INTO maint.users_table SELECT generate_series(1, 3000);
DELETE FROM maint.users_table;
CALL maint.flush();
RESET ROLE;
-- (2000 dead of 1000 live: due at 1000 + 10% of the live rows)
DELETE FROM maint.bloated WHERE id > 1000;
UPDATE maint.bloated SET v = v;
CALL maint.flush();
SET ROLE regress_virtuoso_user;
SELECT tablename, action, reason, status FROM virtuoso.perform_maintenance_if_needed()
WHERE schemaname = 'maint' ORDER BY tablename;
SELECT try('SELECT * FROM virtuoso.maintenance_log');
RESET ROLE;
SELECT tablename, executed_by, status FROM virtuoso.maintenance_log
WHERE tablename = 'users_table';
SET ROLE regress_virtuoso_nobody;
SELECT try('SELECT * FROM virtuoso.perform_maintenance_if_needed(true)');
RESET ROLE;

-- Names are quoted, never pasted into the statements.
CREATE TABLE maint."Odd ""name""; DROP TABLE maint.fresh" (id int);
INSERT INTO maint."Odd ""name""; DROP TABLE maint.fresh" SELECT generate_series(1, 2000);
DELETE FROM maint."Odd ""name""; DROP TABLE maint.fresh";
CALL maint.flush();
SELECT tablename, action, status FROM virtuoso.perform_maintenance_if_needed()
WHERE schemaname = 'maint' ORDER BY tablename;
SELECT command FROM virtuoso.maintenance_log WHERE tablename LIKE 'Odd%';
SELECT count(*) AS fresh_still_there FROM pg_class WHERE oid = 'maint.fresh'::regclass;

-- A failing action is FAILED with its SQLSTATE and message, in the result and in the log.
-- (An expression index whose function fails once maint.boom is set: the
-- caller's settings travel with the statement.)
CREATE FUNCTION maint.boom(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('maint.boom', true) = 'on' THEN
        RAISE EXCEPTION 'boom on %', $1 USING HINT = 'unset maint.boom';
    END IF;
    RETURN $1;
END $$;
CREATE TABLE maint.fragile (id int);
CREATE INDEX ON maint.fragile (maint.boom(id));
INSERT INTO maint.fragile SELECT generate_series(1, 2000);
CALL maint.flush();
SET maint.boom = on;
SELECT tablename, action, regexp_replace(reason, 'on \d+', 'on N') AS reason, status
FROM virtuoso.perform_maintenance_if_needed() WHERE schemaname = 'maint' ORDER BY tablename;
RESET maint.boom;
SELECT action, status, sqlstate, regexp_replace(error_message, 'on \d+', 'on N') AS error_message,
       finished_at IS NOT NULL AS finished
FROM virtuoso.maintenance_log WHERE tablename = 'fragile';

-- Bad input and bad settings are rejected with clear errors.
SELECT try('SELECT * FROM virtuoso.perform_maintenance_if_needed(NULL)');
SELECT try('SET virtuoso.dead_tuple_threshold = 5');
ALTER SYSTEM SET virtuoso.maintenance_window = '25:00-26:00';
ALTER SYSTEM SET virtuoso.maintenance_window = 'always';
ALTER SYSTEM SET virtuoso.maintenance_naptime = 0;
ALTER SYSTEM SET virtuoso.dead_tuple_threshold = -1;
ALTER SYSTEM SET virtuoso.dead_tuple_pct = -5;
ALTER SYSTEM SET virtuoso.maintenance_time_budget = '-1s';
ALTER SYSTEM SET virtuoso.database_names = '"unterminated';
ALTER SYSTEM SET virtuoso.maintenance_nap = '1s';

RESET vacuum_freeze_table_age;
DROP SCHEMA maint CASCADE;
DELETE FROM virtuoso.maintenance_log;
