-- CREATE / DROP / CREATE leaves no residue; privileges; settings.
-- A rollback that preserves new data leaves user data in schema virtuoso_backup: that schema
-- is not part of the extension, so it survives DROP EXTENSION.
CREATE TABLE ext_keep (id int);
SELECT status FROM virtuoso.execute_migration_with_monitoring('ext_keep_add', 'ALTER TABLE ext_keep ADD COLUMN note text', 'ALTER TABLE ext_keep DROP COLUMN note');
INSERT INTO ext_keep VALUES (1, 'kept');
SELECT status, cardinality(backup_tables) AS backups FROM virtuoso.execute_rollback_with_backup('ext_keep_add', true, 'extension test');
DROP EXTENSION db_virtuoso;
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'virtuoso';
SELECT count(*) AS functions FROM pg_proc WHERE prosrc LIKE 'virtuoso%' AND probin LIKE '%db_virtuoso%';
SELECT count(*) AS event_triggers FROM pg_event_trigger WHERE evtname LIKE 'virtuoso%';
SELECT count(*) AS backup_tables_kept FROM pg_class
WHERE relnamespace = 'virtuoso_backup'::regnamespace AND relname LIKE 'ext\_keep\_%';
DO $$DECLARE t text; n bigint;
BEGIN
    SELECT quote_ident(relname) INTO t FROM pg_class WHERE relnamespace = 'virtuoso_backup'::regnamespace;
    EXECUTE 'SELECT count(*) FROM virtuoso_backup.' || t || ' WHERE note = ''kept''' INTO n;
    RAISE NOTICE 'backed-up rows: %', n;
END $$;
SET client_min_messages = warning;  -- the backup's name holds a timestamp
DROP SCHEMA virtuoso_backup CASCADE;
RESET client_min_messages;
DROP TABLE ext_keep;
CREATE EXTENSION db_virtuoso;
DROP EXTENSION db_virtuoso;
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'virtuoso';
-- A schema virtuoso that is not the extension's is not taken over.
CREATE SCHEMA virtuoso;
CREATE EXTENSION db_virtuoso;
-- The objects' schema is fixed: SCHEMA cannot move them.
DROP SCHEMA virtuoso;
CREATE EXTENSION db_virtuoso SCHEMA public;
CREATE EXTENSION db_virtuoso;
-- The install script's search_path does not leak into the session.
SHOW search_path;
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace FROM pg_extension WHERE extname = 'db_virtuoso';
-- The schema belongs to the extension.
SELECT count(*) AS schema_is_member FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
WHERE d.classid = 'pg_namespace'::regclass AND d.objid = 'virtuoso'::regnamespace
  AND d.refclassid = 'pg_extension'::regclass AND e.extname = 'db_virtuoso' AND d.deptype = 'e';

-- Every object of the extension is documented.
SELECT p.oid::regprocedure AS undocumented
FROM pg_proc p WHERE p.pronamespace = 'virtuoso'::regnamespace
  AND obj_description(p.oid, 'pg_proc') IS NULL;

-- Nothing is granted to PUBLIC.
SELECT p.oid::regprocedure AS public_function
FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
WHERE p.pronamespace = 'virtuoso'::regnamespace AND a.grantee = 0;
SELECT has_schema_privilege('regress_virtuoso_nobody', 'virtuoso', 'USAGE') AS nobody_usage;
SET ROLE regress_virtuoso_nobody;
SELECT try($$SELECT virtuoso.execute_top_level('SELECT 1')$$);
SELECT try($$SELECT virtuoso.create_index_concurrently('CREATE INDEX ON t (a)')$$);
RESET ROLE;
-- re-grant for the following tests (dropping the extension dropped the grants)
GRANT USAGE ON SCHEMA virtuoso TO regress_virtuoso_user;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA virtuoso TO regress_virtuoso_user;

-- Settings: the prefix is reserved, values are checked.
SHOW virtuoso.lock_timeout;
SET virtuoso.lock_timeout = '250ms';
SHOW virtuoso.lock_timeout;
RESET virtuoso.lock_timeout;
SHOW virtuoso.max_lock_retries;
SHOW virtuoso.maintenance_naptime;
SHOW virtuoso.max_maintenance_workers;
SELECT try($$SET virtuoso.max_maintenance_workers = 2$$);
SHOW virtuoso.dead_tuple_pct;
SELECT try($$SET virtuoso.no_such_setting = 1$$);
SELECT try($$SET virtuoso.max_lock_retries = -1$$);
SELECT try($$SET virtuoso.maintenance_window = '01:00-05:00'$$);
ALTER SYSTEM SET virtuoso.maintenance_window = '25:00-05:00';
ALTER SYSTEM SET virtuoso.maintenance_window = '0100-0500';
ALTER SYSTEM SET virtuoso.database_names = 'a,,b';
ALTER SYSTEM SET virtuoso.maintenance_window = '22:00-04:00';
ALTER SYSTEM RESET virtuoso.maintenance_window;
