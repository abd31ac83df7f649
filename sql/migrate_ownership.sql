-- Who may replace, roll back or verify a migration: only a role with the privileges of the
-- role that recorded its latest run (superusers included).  Stored SQL (rollback_sql,
-- validation rules) runs only after that check, with the rights of the role that recorded it.
CREATE ROLE regress_mig_alice;
CREATE ROLE regress_mig_mallory;
CREATE ROLE regress_mig_bob IN ROLE regress_mig_alice;  -- inherits alice's privileges
GRANT USAGE ON SCHEMA virtuoso TO regress_mig_alice, regress_mig_mallory, regress_mig_bob;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA virtuoso TO regress_mig_alice, regress_mig_mallory, regress_mig_bob;
CREATE SCHEMA alice AUTHORIZATION regress_mig_alice;
CREATE SCHEMA mallory AUTHORIZATION regress_mig_mallory;

-- alice records a migration with a rollback
SET ROLE regress_mig_alice;
SELECT status, executed_by FROM virtuoso.execute_migration_with_monitoring('alice_m',
    'CREATE TABLE alice.t (id int)', 'DROP TABLE alice.t');
RESET ROLE;

-- mallory can neither replace it (force, or the same SQL), nor roll it back, nor verify it;
-- the errors name the owner and show none of its SQL
SET ROLE regress_mig_mallory;
SELECT virtuoso.execute_migration_with_monitoring('alice_m',
    'CREATE TABLE mallory.x (id int)', 'DROP TABLE mallory.x', '{"force": true}');
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('alice_m',
    'CREATE TABLE alice.t (id int)', 'DROP TABLE alice.t')$$);
SELECT try($$SELECT virtuoso.execute_rollback_with_backup('alice_m')$$);
SELECT try($$SELECT * FROM virtuoso.verify_migration_integrity('alice_m')$$);
RESET ROLE;
SELECT name, status, executed_by FROM virtuoso.migration_log WHERE name = 'alice_m' ORDER BY started_at;
-- the same SQL under alice's name does not hand mallory alice's recorded row
SET ROLE regress_mig_alice;
SELECT status FROM virtuoso.execute_migration_with_monitoring('alice_plain', 'SELECT 1', 'SELECT 2');
SET ROLE regress_mig_mallory;
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('alice_plain', 'SELECT 1', 'SELECT 2')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('alice_plain', 'SELECT 1', 'SELECT 2', '{"dry_run": true}')$$);
RESET ROLE;
SELECT count(*) AS alice_plain_runs FROM virtuoso.migration_log WHERE name = 'alice_plain';

-- bob has alice's privileges: he may verify and roll back her run
SET ROLE regress_mig_bob;
SELECT check_name, status FROM virtuoso.verify_migration_integrity('alice_m') WHERE check_name = 'migration_status';
SELECT status FROM virtuoso.execute_rollback_with_backup('alice_m', false);
RESET ROLE;
SELECT to_regclass('alice.t') AS alice_t;

-- a rolled-back (or failed) run still belongs to alice: mallory cannot start a new run
-- under the name either
SET ROLE regress_mig_mallory;
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('alice_m',
    'CREATE TABLE mallory.x (id int)', 'DROP TABLE mallory.x')$$);
RESET ROLE;
SELECT count(*) AS runs FROM virtuoso.migration_log WHERE name = 'alice_m';

-- The superuser victim: mallory tries to put her own rollback_sql under the DBA's name
SELECT status FROM virtuoso.execute_migration_with_monitoring('dba_m',
    'CREATE TABLE dba_t (id int)', 'DROP TABLE dba_t');
SET ROLE regress_mig_mallory;
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('dba_m',
    'CREATE TABLE mallory.y (id int)', 'ALTER ROLE regress_mig_mallory SUPERUSER', '{"force": true}')$$);
RESET ROLE;
SELECT status FROM virtuoso.execute_rollback_with_backup('dba_m', false);
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_mig_mallory';
SELECT to_regclass('dba_t') AS dba_t;

-- mallory's own migration, rolled back or verified by the superuser: her stored SQL runs
-- with her rights, never with the superuser's
SET ROLE regress_mig_mallory;
SELECT status FROM virtuoso.execute_migration_with_monitoring('mallory_m',
    'CREATE TABLE mallory.z (id int)', 'ALTER ROLE regress_mig_mallory SUPERUSER; DROP TABLE mallory.z',
    '{"validation_rules": [{"name": "runs_as_mallory", "query": "SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = current_user AND rolname = ''regress_mig_mallory''", "expected": 1}]}');
RESET ROLE;
SELECT check_name, status, object FROM virtuoso.verify_migration_integrity('mallory_m') WHERE check_name = 'validation_rule';
SELECT try($$SELECT virtuoso.execute_rollback_with_backup('mallory_m', false)$$);
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_mig_mallory';
SELECT to_regclass('mallory.z') AS mallory_z;

-- A run whose role was dropped: superusers only
CREATE ROLE regress_mig_gone;
GRANT USAGE ON SCHEMA virtuoso TO regress_mig_gone;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA virtuoso TO regress_mig_gone;
SET ROLE regress_mig_gone;
SELECT status FROM virtuoso.execute_migration_with_monitoring('gone_m', 'SELECT 1', 'SELECT 2');
RESET ROLE;
REVOKE ALL ON SCHEMA virtuoso FROM regress_mig_gone;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA virtuoso FROM regress_mig_gone;
DROP ROLE regress_mig_gone;
SET ROLE regress_mig_alice;
SELECT try($$SELECT virtuoso.execute_rollback_with_backup('gone_m', false)$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gone_m', 'SELECT 3', NULL, '{"force": true}')$$);
RESET ROLE;
SELECT status FROM virtuoso.execute_rollback_with_backup('gone_m', false);

DROP SCHEMA alice CASCADE;
DROP SCHEMA mallory CASCADE;
DROP TABLE IF EXISTS dba_t;
REVOKE ALL ON SCHEMA virtuoso FROM regress_mig_alice, regress_mig_mallory, regress_mig_bob;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA virtuoso FROM regress_mig_alice, regress_mig_mallory, regress_mig_bob;
DROP ROLE regress_mig_bob;
DROP ROLE regress_mig_alice;
DROP ROLE regress_mig_mallory;
