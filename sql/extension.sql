-- CREATE / DROP / CREATE leaves no residue; privileges; settings.
DROP EXTENSION db_virtuoso;
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'virtuoso';
SELECT count(*) AS functions FROM pg_proc WHERE prosrc LIKE 'virtuoso%' AND probin LIKE '%db_virtuoso%';
CREATE EXTENSION db_virtuoso;
DROP EXTENSION db_virtuoso;
CREATE EXTENSION db_virtuoso;
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace FROM pg_extension WHERE extname = 'db_virtuoso';

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
SHOW virtuoso.dead_tuple_pct;
SELECT try($$SET virtuoso.no_such_setting = 1$$);
SELECT try($$SET virtuoso.max_lock_retries = -1$$);
SELECT try($$SET virtuoso.maintenance_window = '01:00-05:00'$$);
ALTER SYSTEM SET virtuoso.maintenance_window = '25:00-05:00';
ALTER SYSTEM SET virtuoso.maintenance_window = '0100-0500';
ALTER SYSTEM SET virtuoso.database_names = 'a,,b';
ALTER SYSTEM SET virtuoso.maintenance_window = '22:00-04:00';
ALTER SYSTEM RESET virtuoso.maintenance_window;
