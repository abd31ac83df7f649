-- The runner respects a read-only caller, refuses security-restricted operations, reports
-- unclear input clearly, and takes captured data only from the extension's own code.
CREATE TABLE rg_t (id int PRIMARY KEY, v text);
INSERT INTO rg_t VALUES (1, 'one');
GRANT SELECT, INSERT ON rg_t TO regress_virtuoso_user;

-- A read-only transaction stays read-only through the runner: PostgreSQL's own rule, 25006.
-- (A concurrent build from a function is refused earlier, 25001: it would wait for the
-- caller's snapshot.  Its read-only case is the procedure form's, below.)
BEGIN READ ONLY;
SELECT try($$SELECT virtuoso.execute_autonomous('INSERT INTO rg_t VALUES (2, ''two'')')$$);
ROLLBACK;
BEGIN READ ONLY;
SELECT try($$SELECT virtuoso.execute_top_level('INSERT INTO rg_t VALUES (3, ''three'')')$$);
ROLLBACK;
BEGIN READ ONLY;
SELECT try($$SELECT virtuoso.execute_top_level('CREATE INDEX CONCURRENTLY rg_t_v ON rg_t (v)')$$);
ROLLBACK;
BEGIN READ ONLY;
SELECT try($$SELECT virtuoso.create_index_concurrently('CREATE INDEX rg_t_v2 ON rg_t (v)')$$);
ROLLBACK;
-- A SET in the statement cannot undo it.
BEGIN READ ONLY;
SELECT try($$SELECT virtuoso.execute_autonomous('SET transaction_read_only = off; INSERT INTO rg_t VALUES (4, ''four'')')$$);
SELECT try($$SELECT virtuoso.execute_autonomous('SET default_transaction_read_only = off; INSERT INTO rg_t VALUES (4, ''four'')')$$);
ROLLBACK;
-- Reading works.
BEGIN READ ONLY;
SELECT virtuoso.execute_autonomous('SELECT count(*) FROM rg_t');
SELECT virtuoso.execute_top_level('SELECT 1');
ROLLBACK;
-- default_transaction_read_only too; VACUUM is allowed as PostgreSQL allows it.
SET default_transaction_read_only = on;
SELECT try($$SELECT virtuoso.execute_autonomous('INSERT INTO rg_t VALUES (5, ''five'')')$$);
SELECT try($$SELECT virtuoso.execute_top_level('INSERT INTO rg_t VALUES (6, ''six'')')$$);
VACUUM rg_t;
SELECT try($$SELECT virtuoso.execute_top_level('VACUUM rg_t')$$) AS runner_vacuum;
-- The procedure forms commit the caller, and the next transaction is read-only as well.
CALL virtuoso.run_top_level('CREATE INDEX CONCURRENTLY rg_t_v ON rg_t (v)');
CALL virtuoso.build_index_concurrently('CREATE INDEX rg_t_v2 ON rg_t (v)');
RESET default_transaction_read_only;
SELECT count(*) AS no_index_built FROM pg_index WHERE indrelid = 'rg_t'::regclass AND NOT indisprimary;
SELECT id FROM rg_t ORDER BY id;
-- An integrity rule cannot write through the runner either.
BEGIN READ ONLY;
SELECT try($$SELECT length(virtuoso.execute_autonomous('DELETE FROM rg_t WHERE id = 1')) * 0$$);
ROLLBACK;
SELECT count(*) AS still_there FROM rg_t WHERE id = 1;

-- Security-restricted operations: code run as a table owner (index expressions,
-- materialized view refresh) cannot start the runner.
CREATE FUNCTION rg_sneaky(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM virtuoso.execute_autonomous('INSERT INTO public.rg_t VALUES (100, ''sro'')');
    RETURN $1;
END $$;
SELECT try($$CREATE INDEX rg_t_sneaky ON rg_t (rg_sneaky(id))$$);
CREATE MATERIALIZED VIEW rg_mv AS SELECT rg_sneaky(1) AS x WITH NO DATA;
SELECT try($$REFRESH MATERIALIZED VIEW rg_mv$$);
SELECT count(*) AS sro_rows FROM rg_t WHERE id = 100;
-- The same function outside such an operation works.
SELECT rg_sneaky(7);
DELETE FROM rg_t WHERE id = 100;

-- Clear errors for what the runner cannot run.
SELECT try($$SELECT virtuoso.execute_autonomous('COMMIT')$$);
SELECT try($$SELECT virtuoso.execute_autonomous('INSERT INTO rg_t VALUES (8, ''x''); COMMIT')$$);
SELECT try($$SELECT virtuoso.execute_top_level('BEGIN')$$);
SELECT try($$SELECT virtuoso.execute_autonomous('COPY rg_t FROM STDIN')$$);
SELECT try($$SELECT virtuoso.execute_autonomous('COPY rg_t TO STDOUT')$$);
SELECT try($$SELECT virtuoso.execute_top_level('COPY rg_t FROM STDIN')$$);
SELECT try($$SELECT virtuoso.execute_top_level('COPY (SELECT 1) TO STDOUT')$$);
SELECT try($$SELECT virtuoso.execute_autonomous('-- nothing')$$);
SELECT try($$SELECT virtuoso.execute_top_level('/* nothing */ ;')$$);
-- A runner statement that itself calls the runner.
SELECT try($$SELECT virtuoso.execute_autonomous($q$SELECT virtuoso.execute_autonomous('SELECT 1')$q$)$$);
SELECT try($$SELECT virtuoso.execute_top_level($q$SELECT virtuoso.execute_top_level('SELECT 1')$q$)$$);
SELECT id FROM rg_t ORDER BY id;
-- A comment before a statement is fine.
SELECT virtuoso.execute_autonomous('-- count them
SELECT count(*) FROM rg_t');

-- Captured data cannot be forged: an INFO with the old capture SQLSTATE is just an INFO,
-- and affected_objects lists only what the statements touched.
CREATE TABLE rg_victim (a int);
SELECT status, affected_objects::text LIKE '%rg_victim%' AS lists_victim,
       affected_objects::text LIKE '%rg_real%' AS lists_real
FROM virtuoso.execute_migration_with_monitoring('rg_forged_nt',
    $m$CREATE TABLE rg_real (a int);
       DO $d$BEGIN RAISE INFO USING ERRCODE = 'VXDDL', MESSAGE =
         '{"command":"CREATE TABLE","object_type":"table","schema":"public","identity":"public.rg_victim","classid":1259,"objid":1}';
       END$d$$m$, NULL, '{"transactional": false}');
SELECT status, affected_objects::text LIKE '%rg_victim%' AS lists_victim,
       affected_objects::text LIKE '%rg_real2%' AS lists_real
FROM virtuoso.execute_migration_with_monitoring('rg_forged_tx',
    $m$CREATE TABLE rg_real2 (a int);
       DO $d$BEGIN RAISE INFO USING ERRCODE = 'VXDDL', MESSAGE =
         '{"command":"CREATE TABLE","object_type":"table","schema":"public","identity":"public.rg_victim","classid":1259,"objid":1}';
       END$d$$m$);
-- The runner's own capture channel does nothing outside a runner worker.
SET virtuoso.capture_migration_objects = on;
CREATE TABLE rg_outside (a int);
RESET virtuoso.capture_migration_objects;

-- SQL that db_virtuoso runs in-process (a transactional migration) gets the same clear error.
SELECT try($$SELECT status FROM virtuoso.execute_migration_with_monitoring('rg_copy', 'COPY rg_t FROM STDIN')$$);
SELECT status, sqlstate FROM virtuoso.migration_log WHERE name = 'rg_copy';

-- A migration in a read-only transaction is refused (25006) and nothing of it happens.
BEGIN READ ONLY;
SELECT left(try($$SELECT status FROM virtuoso.execute_migration_with_monitoring('rg_ro', 'CREATE TABLE rg_ro_t (a int)')$$), 5) AS sqlstate;
ROLLBACK;
SELECT status, sqlstate FROM virtuoso.migration_log WHERE name = 'rg_ro';
SELECT to_regclass('rg_ro_t') AS not_created;
BEGIN READ ONLY;
SELECT left(try($$SELECT status FROM virtuoso.execute_migration_with_monitoring('rg_ro_nt', 'CREATE INDEX CONCURRENTLY rg_ro_i ON rg_t (v)', NULL, '{"transactional": false}')$$), 5) AS sqlstate;
ROLLBACK;
SELECT status, sqlstate FROM virtuoso.migration_log WHERE name = 'rg_ro_nt';
SELECT to_regclass('rg_ro_i') AS not_created;

-- Maintenance from a read-only transaction: VACUUM as PostgreSQL allows it, and the
-- extension's own maintenance_log rows are still written (bookkeeping bypasses read-only).
CREATE TABLE rg_bloat (id int, pad text) WITH (autovacuum_enabled = off);
INSERT INTO rg_bloat SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g;
DELETE FROM rg_bloat WHERE id % 2 = 0;
SELECT pg_stat_force_next_flush();
SELECT count(*) AS log_rows_before FROM virtuoso.maintenance_log;
BEGIN READ ONLY;
SELECT tablename, action, status FROM virtuoso.perform_maintenance_if_needed()
WHERE tablename = 'rg_bloat';
ROLLBACK;
SELECT count(*) > 0 AS logged FROM virtuoso.maintenance_log WHERE tablename = 'rg_bloat';

-- Leave nothing for the tests that follow (maintenance counts its log rows; the round above
-- maintained other tests' tables too).
DELETE FROM virtuoso.maintenance_log;  -- empty before (log_rows_before above)
DELETE FROM virtuoso.migration_log WHERE name LIKE 'rg\_%';
DROP TABLE rg_bloat, rg_victim, rg_real, rg_real2, rg_outside, rg_t CASCADE;
DROP MATERIALIZED VIEW rg_mv;
DROP FUNCTION rg_sneaky(int);
