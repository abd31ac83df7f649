-- Orchestrated implementation plans: virtuoso.execute_database_implementation.
-- Malformed plans are refused before anything runs, with every problem listed.
SELECT * FROM virtuoso.execute_database_implementation('[1, 2]');
SELECT * FROM virtuoso.execute_database_implementation(NULL);
SELECT * FROM virtuoso.execute_database_implementation('{"name": "bad", "extra": 1, "changes": [
  {"name": "a", "type": "create_tabel", "definition": "CREATE TABLE pl_never (id int)"},
  {"name": "a", "type": "sql"},
  {"name": "c", "type": "sql", "definition": "UPDATE pl_nowhere SET x = 1"},
  {"name": "d", "type": "sql", "definition": "CREATE TABLE pl_never2 (id int); SELEC 1", "rollback": "DROP TABLE pl_never2"},
  {"name": "e", "type": "alter_table", "definition": "ALTER TABLE pl_x ALTER COLUMN id TYPE bigint"},
  {"name": "f", "type": "sql", "definition": "BEGIN", "rollback": "SELECT 1"},
  {"name": "g", "type": "scaffold", "definition": {"table": "pl_elsewhere", "api_schema": "api"}},
  {"name": "h", "type": "create_table", "definition": {"table": "t", "columns": [{"name": "id", "type": "int); DROP TABLE pl_x; --"}]}}
], "options": {"lint": "loud", "undo": true}}');
-- A lint error refuses the plan unless the options accept it.
CREATE TABLE pl_big (id int PRIMARY KEY, v int);
INSERT INTO pl_big SELECT g, g FROM generate_series(1, 200000) g;
ANALYZE pl_big;
SELECT * FROM virtuoso.execute_database_implementation('{"name": "lint", "changes": [
  {"name": "wipe", "type": "sql", "definition": "UPDATE pl_big SET v = 0", "rollback": "SELECT 1"}]}');
-- Steps that cannot run inside a function: refused with the procedure named.
SELECT * FROM virtuoso.execute_database_implementation('{"name": "idx", "changes": [
  {"name": "i", "type": "create_index", "definition": "CREATE INDEX pl_big_v ON pl_big (v)"}]}');
SELECT count(*) AS runs FROM virtuoso.implementation_log;

-- A plan end to end, in the caller's transaction: two related tables from structured
-- definitions, a column, a data step, a validation, the data-access layer.
SELECT step_name, status, details->>'sql' AS sql, details->>'rollback' AS rollback
FROM virtuoso.execute_database_implementation($plan${
  "name": "shop",
  "changes": [
    {"name": "customers", "type": "create_table", "definition": {"schema": "public", "table": "pl_customer",
      "columns": [{"name": "id", "type": "bigint", "not_null": true},
                  {"name": "name", "type": "text", "not_null": true}],
      "primary_key": ["id"]}},
    {"name": "orders", "type": "create_table", "definition": {"schema": "public", "table": "pl_order",
      "columns": [{"name": "id", "type": "bigint", "default": "0", "not_null": true},
                  {"name": "customer_id", "type": "bigint", "not_null": true,
                   "references": {"schema": "public", "table": "pl_customer", "column": "id"}},
                  {"name": "total", "type": "numeric(10,2)"}],
      "primary_key": ["id"]}},
    {"name": "note", "type": "alter_table", "definition": {"schema": "public", "table": "pl_order",
      "add_columns": [{"name": "note", "type": "text"}]}},
    {"name": "seed", "type": "sql", "definition": "INSERT INTO pl_customer SELECT id, 'c' || id FROM pl_big WHERE id <= 3",
     "rollback": "DELETE FROM pl_customer"},
    {"name": "check", "type": "validate", "definition": [{"name": "three customers", "type": "row_count", "table": "public.pl_customer", "min": 3, "max": 3}]},
    {"name": "dal", "type": "scaffold", "definition": {"schema": "public", "table": "pl_order", "api_schema": "pl_api"}}
  ],
  "validation_rules": [{"name": "orders exist as a table", "query": "SELECT count(*) FROM public.pl_order", "expected": 0}],
  "options": {"prechecks": false}
}$plan$);
SELECT step_name, status FROM virtuoso.implementation_log WHERE plan_name = 'shop' ORDER BY ordinal;
SELECT details->'generated_functions' AS generated FROM virtuoso.implementation_log
WHERE plan_name = 'shop' AND step_name = 'dal';
-- The scaffolded functions, typed from the table, keyed by its primary key.
SELECT * FROM pl_api.insert_pl_order(1, 9.50, 'first');
SELECT * FROM pl_api.get_pl_order(0);
SELECT * FROM pl_api.update_pl_order(0, 2, 12.00, 'changed');
SELECT pl_api.delete_pl_order(0) AS deleted, pl_api.delete_pl_order(0) AS again;
-- Granted to nobody but the owner, and commented.
SELECT p.oid::regprocedure AS function, p.proacl IS NOT NULL AND NOT has_function_privilege('regress_virtuoso_nobody', p.oid, 'EXECUTE') AS owner_only,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
FROM pg_proc p WHERE p.pronamespace = 'pl_api'::regnamespace ORDER BY p.proname COLLATE "C";
-- Each step is its own migration.
SELECT name, status FROM virtuoso.migration_log WHERE name LIKE 'shop/%' ORDER BY started_at;
-- Run again: nothing runs.
SELECT step_name, status, details->>'state' AS state FROM virtuoso.execute_database_implementation($plan${
  "name": "shop",
  "changes": [
    {"name": "customers", "type": "create_table", "definition": {"schema": "public", "table": "pl_customer",
      "columns": [{"name": "id", "type": "bigint", "not_null": true},
                  {"name": "name", "type": "text", "not_null": true}],
      "primary_key": ["id"]}},
    {"name": "orders", "type": "create_table", "definition": {"schema": "public", "table": "pl_order",
      "columns": [{"name": "id", "type": "bigint", "default": "0", "not_null": true},
                  {"name": "customer_id", "type": "bigint", "not_null": true,
                   "references": {"schema": "public", "table": "pl_customer", "column": "id"}},
                  {"name": "total", "type": "numeric(10,2)"}],
      "primary_key": ["id"]}},
    {"name": "note", "type": "alter_table", "definition": {"schema": "public", "table": "pl_order",
      "add_columns": [{"name": "note", "type": "text"}]}},
    {"name": "seed", "type": "sql", "definition": "INSERT INTO pl_customer SELECT id, 'c' || id FROM pl_big WHERE id <= 3",
     "rollback": "DELETE FROM pl_customer"},
    {"name": "check", "type": "validate", "definition": [{"name": "three customers", "type": "row_count", "table": "public.pl_customer", "min": 3, "max": 3}]},
    {"name": "dal", "type": "scaffold", "definition": {"schema": "public", "table": "pl_order", "api_schema": "pl_api"}}
  ],
  "options": {"prechecks": false}
}$plan$);

-- A failing middle step: the steps done are rolled back in reverse order.
SELECT step_name, status, details->'error'->>'sqlstate' AS sqlstate, details->>'state' AS state
FROM virtuoso.execute_database_implementation($plan${
  "name": "broken",
  "changes": [
    {"name": "one", "type": "create_table", "definition": "CREATE TABLE pl_one (id int PRIMARY KEY)"},
    {"name": "two", "type": "alter_table", "definition": "ALTER TABLE pl_one ADD COLUMN v int"},
    {"name": "three", "type": "sql", "definition": "INSERT INTO pl_one VALUES (1, 1), (1, 2)", "rollback": "DELETE FROM pl_one"},
    {"name": "four", "type": "create_table", "definition": "CREATE TABLE pl_four (id int)"}
  ],
  "options": {"prechecks": false, "preserve_data_on_undo": false}
}$plan$);
SELECT to_regclass('pl_one') AS pl_one, to_regclass('pl_four') AS pl_four;
SELECT name, status FROM virtuoso.migration_log WHERE name LIKE 'broken/%' ORDER BY started_at;

-- Hostile names are quoted, never run.
SELECT step_name, status FROM virtuoso.execute_database_implementation($plan${
  "name": "hostile\"; DROP TABLE pl_big; --",
  "changes": [
    {"name": "t; DROP TABLE pl_big", "type": "create_table", "definition": {"schema": "public", "table": "pl_x\"); DROP TABLE pl_big; --",
      "columns": [{"name": "id\"; DROP TABLE pl_big; --", "type": "int", "not_null": true}], "primary_key": ["id\"; DROP TABLE pl_big; --"]}},
    {"name": "dal", "type": "scaffold", "definition": {"schema": "public", "table": "pl_x\"); DROP TABLE pl_big; --", "api_schema": "pl api\"; --"}}
  ],
  "options": {"prechecks": false}
}$plan$);
SELECT count(*) AS big_rows FROM pl_big;
SELECT p.oid::regprocedure AS function FROM pg_proc p
WHERE p.pronamespace = to_regnamespace('"pl api""; --"') ORDER BY p.proname COLLATE "C";

-- A migration that grants or revokes (as a scaffold does) records its affected objects
-- (GRANT/REVOKE are captured without an object id): it used to fail with XX000.
SELECT status FROM virtuoso.execute_migration_with_monitoring('pl_grant',
    'CREATE TABLE pl_grant (id int); REVOKE ALL ON pl_grant FROM PUBLIC');
-- ... and verify_migration_integrity does not report the REVOKE as a missing object.
SELECT check_name, status, message FROM virtuoso.verify_migration_integrity('pl_grant')
WHERE check_name LIKE 'object%';

-- Pre-checks are rows of their own.
SELECT step_name FROM virtuoso.execute_database_implementation('{"name": "checked", "changes": [
  {"name": "t", "type": "create_table", "definition": "CREATE TABLE pl_checked (id int)"}]}')
ORDER BY 1;

-- A plan whose step migrations another role recorded is refused before anything runs: only
-- that role's members may replace or roll back its runs.  (Terse: the detail names the
-- recording role, the bootstrap superuser.)
GRANT SELECT ON virtuoso.implementation_log TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
\set VERBOSITY terse
SELECT * FROM virtuoso.execute_database_implementation('{"name": "broken", "changes": [
  {"name": "one", "type": "create_table", "definition": "CREATE TABLE pl_one (id int PRIMARY KEY)"}]}');
\set VERBOSITY default
-- and the log shows it only the runs of roles whose privileges it has
SELECT count(*) AS runs_seen FROM virtuoso.implementation_log;
RESET ROLE;
SELECT count(*) > 0 AS runs_exist FROM virtuoso.implementation_log;
REVOKE SELECT ON virtuoso.implementation_log FROM regress_virtuoso_user;

-- A cancel (here statement_timeout) ends the plan and reaches the caller: it is not a failed
-- step to undo and go on from (the plan used to roll back the steps before it and return as
-- if nothing had happened, with the timeout spent).  The step's FAILED record stays.
\set VERBOSITY terse
SET statement_timeout = '1s';
SELECT step_name, status FROM virtuoso.execute_database_implementation('{"name": "cancelled", "changes": [
  {"name": "first", "type": "sql", "definition": "CREATE TABLE pl_first (id int)", "rollback": "DROP TABLE pl_first"},
  {"name": "slow", "type": "sql", "definition": "SELECT pg_sleep(30)", "rollback": "SELECT 1"}],
  "options": {"prechecks": false}}');
RESET statement_timeout;
\set VERBOSITY default
SELECT to_regclass('pl_first') AS first_table;
SELECT name, status, error_message FROM virtuoso.migration_log WHERE name LIKE 'cancelled/%' ORDER BY started_at;
-- ... and so does a cancel while the plan undoes its steps after a failure.
\set VERBOSITY terse
SET statement_timeout = '1s';
SELECT step_name, status FROM virtuoso.execute_database_implementation('{"name": "cancelled_undo", "changes": [
  {"name": "first", "type": "sql", "definition": "CREATE TABLE pl_first (id int)", "rollback": "SELECT pg_sleep(30); DROP TABLE pl_first"},
  {"name": "broken", "type": "sql", "definition": "SELECT 1/0", "rollback": "SELECT 1"}],
  "options": {"prechecks": false}}');
RESET statement_timeout;
\set VERBOSITY default
SELECT to_regclass('pl_first') AS first_table;
-- As a procedure the steps before the cancel stay committed, and the run's record says where
-- it stopped.
\set VERBOSITY terse
SET statement_timeout = '1s';
CALL virtuoso.run_implementation('{"name": "cancelled_call", "changes": [
  {"name": "first", "type": "sql", "definition": "CREATE TABLE pl_first (id int)", "rollback": "DROP TABLE pl_first"},
  {"name": "slow", "type": "sql", "definition": "SELECT pg_sleep(30)", "rollback": "SELECT 1"}],
  "options": {"prechecks": false}}', NULL, NULL, NULL);
RESET statement_timeout;
\set VERBOSITY default
SELECT to_regclass('pl_first') AS first_table;
SELECT status, state FROM virtuoso.implementation_run WHERE plan_name = 'cancelled_call';
SELECT step_name, status FROM virtuoso.implementation_log WHERE plan_name = 'cancelled_call' ORDER BY ordinal;
DROP TABLE pl_first;
