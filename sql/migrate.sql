-- virtuoso.execute_migration_with_monitoring, execute_rollback_with_backup,
-- verify_migration_integrity
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 1000) g;

-- A migration runs once and records what it did.
SELECT name, status, attempts, sqlstate, executed_by = current_user AS by_caller,
       duration > '0'::interval AS timed, transactional, statements_total, statements_done
FROM virtuoso.execute_migration_with_monitoring(
    'add_email',
    'ALTER TABLE accounts ADD COLUMN email text;
     UPDATE accounts SET email = ''user'' || id || ''@example.com'' WHERE id <= 10;
     CREATE INDEX accounts_email_idx ON accounts (email)',
    'DROP INDEX accounts_email_idx; ALTER TABLE accounts DROP COLUMN email',
    '{"lint": "warn"}');  -- CREATE INDEX without CONCURRENTLY: the linter's error (migration_gate)
SELECT count(email) AS emails_set FROM accounts;
-- affected objects come from the server's own reports (event trigger, executor), not the text
SELECT o->>'command' AS command, o->>'object_type' AS type, o->>'identity' AS identity
FROM virtuoso.migration_log, jsonb_array_elements(affected_objects) o WHERE name = 'add_email';
-- statistics before and after, in the log row a summary: database counters, WAL, the size
-- of each touched relation, and after the run the changes
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(initial_stats) k) AS initial_keys,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(final_stats) k) AS final_keys
FROM virtuoso.migration_log WHERE name = 'add_email';
SELECT initial_stats->'relations' ? 'public.accounts' AS before_has_table,
       final_stats->'relations' ? 'public.accounts_email_idx' AS after_has_index,
       jsonb_typeof(final_stats->'relations'->'public.accounts') AS size_type,
       (final_stats->>'wal_bytes')::bigint > 0 AS wal_written,
       (final_stats->>'size_delta_bytes')::bigint > 0 AS grew
FROM virtuoso.migration_log WHERE name = 'add_email';
-- and each relation's detail in migration_stats, the same sizes
SELECT s.phase, r.key AS relation, r.value->>'kind' AS kind,
       CASE WHEN s.phase = 'final' AND r.value->>'kind' = 'r' THEN (r.value->>'rows_estimate')::int END AS rows_after,
       (r.value->'size_bytes') = (CASE s.phase WHEN 'initial' THEN m.initial_stats
                                  ELSE m.final_stats END)->'relations'->r.key AS same_size
FROM virtuoso.migration_stats s JOIN virtuoso.migration_log m ON m.id = s.migration_id,
     jsonb_each(s.relations) r
WHERE m.name = 'add_email' ORDER BY 1 DESC, 2;
SELECT length(checksum) AS checksum_length, checksum = encode(sha256(convert_to(migration_sql, 'UTF8')), 'hex') AS sha256_of_sql
FROM virtuoso.migration_log WHERE name = 'add_email';

-- The same name and SQL again: the recorded row, a NOTICE, nothing run.
SELECT status, id = (SELECT id FROM virtuoso.migration_log WHERE name = 'add_email') AS same_row
FROM virtuoso.execute_migration_with_monitoring(
    'add_email',
    'ALTER TABLE accounts ADD COLUMN email text;
     UPDATE accounts SET email = ''user'' || id || ''@example.com'' WHERE id <= 10;
     CREATE INDEX accounts_email_idx ON accounts (email)',
    'DROP INDEX accounts_email_idx; ALTER TABLE accounts DROP COLUMN email');
SELECT count(*) AS runs FROM virtuoso.migration_log WHERE name = 'add_email';
-- The same name with other SQL is drift: an error, unless forced.
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('add_email', 'ALTER TABLE accounts ADD COLUMN email2 text')$$);
SELECT status FROM virtuoso.execute_migration_with_monitoring('add_email', 'ALTER TABLE accounts ADD COLUMN email2 text', NULL, '{"force": true}');
SELECT count(*) AS runs FROM virtuoso.migration_log WHERE name = 'add_email';

-- A failure: nothing of the migration remains, the error comes back with its SQLSTATE,
-- and the FAILED row is recorded even though the caller's transaction rolls back.
BEGIN;
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('half_done',
    'ALTER TABLE accounts ADD COLUMN half int; UPDATE accounts SET balance = balance / 0')$$);
ROLLBACK;
SELECT count(*) AS half_columns FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'half';
SELECT status, sqlstate, error_message, error_context, attempts, statements_done,
       affected_objects = '[]' AS nothing_kept
FROM virtuoso.migration_log WHERE name = 'half_done';
-- its statistics per relation are written with it (and survive the rollback as well)
SELECT s.phase, jsonb_object_keys(s.relations) AS relation FROM virtuoso.migration_stats s
JOIN virtuoso.migration_log m ON m.id = s.migration_id WHERE m.name = 'half_done' ORDER BY 1 DESC, 2;
-- a failed name can be run again (it was never applied)
SELECT status FROM virtuoso.execute_migration_with_monitoring('half_done', 'ALTER TABLE accounts ADD COLUMN half int');
-- detail and hint of the server's error are recorded too
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('dup_key', 'INSERT INTO accounts VALUES (1, 0)')$$);
SELECT sqlstate, error_message, error_detail FROM virtuoso.migration_log WHERE name = 'dup_key';

-- Dry run: everything happens, then is rolled back; the row says DRY_RUN.
SELECT status, affected_objects <> '[]' AS captured
FROM virtuoso.execute_migration_with_monitoring('try_it', 'CREATE TABLE dry (x int)', NULL, '{"dry_run": true}');
SELECT to_regclass('dry') AS dry_table;
-- a dry run does not count as applied
SELECT status FROM virtuoso.execute_migration_with_monitoring('try_it', 'CREATE TABLE dry (x int)');
SELECT to_regclass('dry') AS dry_table;

-- Bad input: clear errors, nothing recorded.
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring(NULL, 'SELECT 1')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('  ', 'SELECT 1')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', NULL)$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', '')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', ';;')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'ALTER TABLE accounts ADD COLUM y int')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'SELECT 1', NULL, '{"lock_timout": "1s"}')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'SELECT 1', NULL, '{"max_retries": "three"}')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'SELECT 1', NULL, '{"lock_timeout": "soon"}')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'SELECT 1', NULL, '[1]')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'SELECT 1', NULL, '{"dry_run": true, "transactional": false}')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'CREATE TABLE t1 (a int); COMMIT')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'ROLLBACK')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'VACUUM accounts')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'CREATE INDEX CONCURRENTLY ON accounts (balance)')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'SELECT 1', 'COMMIT')$$);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('x', 'SELECT 1')$$);
ROLLBACK;
SELECT count(*) AS recorded FROM virtuoso.migration_log WHERE name = 'x';
SELECT to_regclass('t1') AS t1;

-- statement_timeout applies to the migration's statements.
DO $$
BEGIN
    PERFORM virtuoso.execute_migration_with_monitoring('slow', 'SELECT pg_sleep(5)', NULL, '{"statement_timeout": "100ms"}');
EXCEPTION WHEN query_canceled THEN
    RAISE NOTICE '%: %', SQLSTATE, SQLERRM;
END $$;
SELECT status, sqlstate FROM virtuoso.migration_log WHERE name = 'slow';

-- Non-transactional: statement by statement through the runner.  A concurrent build would
-- wait for this function call's own snapshot: it is refused (25001) before it starts, and
-- the migration is FAILED with nothing done.
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('concurrent_refused',
    'CREATE INDEX CONCURRENTLY accounts_balance_idx ON accounts (balance); ANALYZE accounts',
    'DROP INDEX CONCURRENTLY accounts_balance_idx', '{"transactional": false}')$$);
SELECT status, sqlstate, statements_total, statements_done FROM virtuoso.migration_log WHERE name = 'concurrent_refused';
SELECT to_regclass('accounts_balance_idx') AS not_built;
-- Statements that do not wait for snapshots run one by one (DROP INDEX CONCURRENTLY too).
SELECT status, transactional, statements_total, statements_done, attempts
FROM virtuoso.execute_migration_with_monitoring('concurrent_index',
    'CREATE INDEX accounts_balance_idx ON accounts (balance); ANALYZE accounts',
    'DROP INDEX CONCURRENTLY accounts_balance_idx', '{"transactional": false, "lint": "warn"}');
SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_balance_idx'::regclass;
SELECT o->>'command' AS command, o->>'identity' AS identity
FROM virtuoso.migration_log, jsonb_array_elements(affected_objects) o WHERE name = 'concurrent_index';
-- a failing statement leaves the earlier ones applied and says how far it got
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('concurrent_fail',
    'CREATE INDEX accounts_id_balance_idx ON accounts (id, balance);
     CREATE UNIQUE INDEX accounts_balance_mod_idx ON accounts ((balance % 7))',
    NULL, '{"transactional": false, "lint": "warn"}')$$);
SELECT status, sqlstate, statements_total, statements_done FROM virtuoso.migration_log WHERE name = 'concurrent_fail';
SELECT check_name, status, object FROM virtuoso.verify_migration_integrity('concurrent_fail') ORDER BY 1, 3;
SELECT error_hint FROM virtuoso.migration_log WHERE name = 'concurrent_fail';
-- the non-transactional migration rolls back statement by statement too
SELECT status FROM virtuoso.execute_rollback_with_backup('concurrent_index', false);
SELECT to_regclass('accounts_balance_idx') AS balance_idx;

-- Rollback with backup: the touched tables are copied first, then rollback_sql runs.
SELECT status FROM virtuoso.execute_migration_with_monitoring('add_phone',
    'ALTER TABLE accounts ADD COLUMN phone text; CREATE TABLE phone_log (id int, phone text)',
    'DROP TABLE phone_log; ALTER TABLE accounts DROP COLUMN phone');
UPDATE accounts SET phone = '+1 555 0100' WHERE id = 1;
INSERT INTO phone_log VALUES (1, '+1 555 0100');
SELECT status, rollback_at IS NOT NULL AS has_rollback_at, rollback_reason, cardinality(backup_tables) AS backups
FROM virtuoso.execute_rollback_with_backup('add_phone', true, 'phone numbers move to a contacts table');
SELECT count(*) AS phone_columns FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'phone' AND NOT attisdropped;
SELECT to_regclass('phone_log') AS phone_log;
-- the new data is kept in the backups
SELECT regexp_replace(b, '_\d{8}_\d{6}$', '_<timestamp>') AS backup,
       (xpath('/row/n/text()', query_to_xml(format('SELECT count(phone) AS n FROM %s', b), false, true, '')))[1]::text::int AS phones
FROM virtuoso.migration_log, unnest(backup_tables) b WHERE name = 'add_phone' ORDER BY b;
-- nothing to roll back: clear errors, nothing changed
SELECT try($$SELECT virtuoso.execute_rollback_with_backup('add_phone')$$);
SELECT try($$SELECT virtuoso.execute_rollback_with_backup('no_such_migration')$$);
SELECT try($$SELECT virtuoso.execute_rollback_with_backup('add_email')$$);
SELECT try($$SELECT virtuoso.execute_rollback_with_backup(NULL)$$);
-- a rolled-back migration can be applied again
SELECT status FROM virtuoso.execute_migration_with_monitoring('add_phone',
    'ALTER TABLE accounts ADD COLUMN phone text; CREATE TABLE phone_log (id int, phone text)',
    'DROP TABLE phone_log; ALTER TABLE accounts DROP COLUMN phone');
-- rollback without keeping data
SELECT status, backup_tables FROM virtuoso.execute_rollback_with_backup('add_phone', false);

-- Verification of what a migration touched.
SELECT * FROM virtuoso.verify_migration_integrity('concurrent_index') ORDER BY 1, 3;
SELECT status FROM virtuoso.execute_migration_with_monitoring('fk_not_valid',
    'CREATE TABLE orders (id int PRIMARY KEY, account_id int);
     ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID');
SELECT * FROM virtuoso.verify_migration_integrity('fk_not_valid') ORDER BY 1, 3;
DROP TABLE orders;
SELECT check_name, status, object FROM virtuoso.verify_migration_integrity('fk_not_valid') ORDER BY 1, 3;
SELECT try($$SELECT * FROM virtuoso.verify_migration_integrity('nope')$$);

-- A role with EXECUTE only: statements run with its rights, the log is written for it.
CREATE SCHEMA app AUTHORIZATION regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
SELECT status, executed_by FROM virtuoso.execute_migration_with_monitoring('app_table', 'CREATE TABLE app.items (id int)');
SELECT try($$SELECT * FROM virtuoso.migration_log$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('not_mine', 'ALTER TABLE public.accounts ADD COLUMN z int')$$);
RESET ROLE;
SELECT name, status, sqlstate, executed_by FROM virtuoso.migration_log WHERE name IN ('app_table', 'not_mine') ORDER BY name;

-- A hostile search_path cannot capture the extension's own SQL.
CREATE SCHEMA evil;
CREATE FUNCTION evil.pg_current_wal_insert_lsn() RETURNS pg_lsn LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'captured by evil.pg_current_wal_insert_lsn'; END $$;
CREATE FUNCTION evil.pg_stat_clear_snapshot() RETURNS void LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'captured by evil.pg_stat_clear_snapshot'; END $$;
CREATE FUNCTION evil.pg_advisory_xact_lock(int, int) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'captured by evil.pg_advisory_xact_lock'; END $$;
SET search_path = evil, pg_catalog, public;
SELECT status FROM virtuoso.execute_migration_with_monitoring('hostile_path', 'CREATE TABLE public.safe (x int)');
RESET search_path;
SELECT to_regclass('public.safe') IS NOT NULL AS created;
DROP SCHEMA evil CASCADE;

-- Validation rules run after the SQL, before it is kept: a FAIL fails the migration.
SELECT status FROM virtuoso.execute_migration_with_monitoring('with_rules',
    'CREATE TABLE rated (id int PRIMARY KEY, stars int); INSERT INTO rated SELECT g, 1 + g % 5 FROM generate_series(1, 100) g',
    'DROP TABLE rated',
    '{"validation_rules": [{"name": "stars_in_range", "type": "range", "table": "rated", "column": "stars", "min": 1, "max": 5},
                           {"name": "has_rows", "query": "SELECT count(*) FROM rated", "expected": 100}]}');
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('bad_data',
    'CREATE TABLE rated_bad (id int PRIMARY KEY, stars int); INSERT INTO rated_bad VALUES (1, 9)', NULL,
    '{"validation_rules": [{"name": "stars_in_range", "type": "range", "table": "rated_bad", "column": "stars", "min": 1, "max": 5}]}')$$);
SELECT status, sqlstate, error_message, error_detail LIKE 'stars_in_range FAIL:%' AS names_rule
FROM virtuoso.migration_log WHERE name = 'bad_data';
SELECT to_regclass('rated_bad') AS rated_bad;
-- verification re-runs the stored rules against today's data
UPDATE rated SET stars = 7 WHERE id = 1;
SELECT check_name, status, object FROM virtuoso.verify_migration_integrity('with_rules') WHERE check_name = 'validation_rule' ORDER BY object;

-- A migration may call another migration (nested): each records its own objects, the outer
-- one also those of the inner one.
SELECT status FROM virtuoso.execute_migration_with_monitoring('outer_migration',
    $$CREATE TABLE nested_outer (x int);
      SELECT virtuoso.execute_migration_with_monitoring('inner_migration', 'CREATE TABLE nested_inner (x int)');
      ALTER TABLE nested_outer ADD COLUMN y int$$);
SELECT name, status, jsonb_path_query_array(affected_objects, '$[*].identity') AS objects
FROM virtuoso.migration_log WHERE name IN ('outer_migration', 'inner_migration') ORDER BY name;
-- a failing inner migration fails the outer one; both are recorded, nothing is kept
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('outer_failing',
    'CREATE TABLE nested_kept (x int); SELECT virtuoso.execute_migration_with_monitoring(''inner_failing'', ''SELECT 1/0'')')$$);
SELECT name, status, sqlstate FROM virtuoso.migration_log WHERE name IN ('outer_failing', 'inner_failing') ORDER BY name;
SELECT to_regclass('nested_kept') AS nested_kept;

-- Deleting a run (as virtuoso.log_retention does) deletes its statistics per relation.
SELECT id AS gone_id, (SELECT count(*) FROM virtuoso.migration_stats s WHERE s.migration_id = m.id) AS stats_rows
FROM virtuoso.migration_log m WHERE name = 'with_rules' \gset
SELECT :stats_rows > 0 AS had_stats;
DELETE FROM virtuoso.migration_log WHERE name = 'with_rules';
SELECT count(*) AS stats_left FROM virtuoso.migration_stats WHERE migration_id = :'gone_id';
