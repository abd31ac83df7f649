-- Demo part: an implementation plan run end to end (run by scripts/demo.sh).
\pset footer off
\set ECHO queries

\echo
\echo '### A malformed plan is refused before anything runs, every problem listed'
SELECT public.demo_try($$SELECT * FROM virtuoso.execute_database_implementation('{"name": "oops",
  "changes": [{"name": "a", "type": "create_tabel"}, {"name": "a", "type": "sql"}]}')$$);

\echo
\echo '### A plan: two related tables, a concurrent index, a batched data copy, a validation and'
\echo '### a typed data-access layer; CALL commits after every step (concurrent builds need it)'
CALL virtuoso.run_implementation($plan${
  "name": "loyalty",
  "changes": [
    {"name": "members", "type": "create_table", "definition": {"table": "loyalty_member",
      "columns": [{"name": "id", "type": "bigint", "not_null": true},
                  {"name": "customer_id", "type": "int", "not_null": true},
                  {"name": "points", "type": "int", "not_null": true, "default": "0"}],
      "primary_key": ["id"]}},
    {"name": "events", "type": "create_table", "definition": {"table": "loyalty_event",
      "columns": [{"name": "id", "type": "bigint", "not_null": true},
                  {"name": "member_id", "type": "bigint", "not_null": true,
                   "references": {"table": "loyalty_member", "column": "id"}},
                  {"name": "at", "type": "timestamptz", "default": "now()"}],
      "primary_key": ["id"]}},
    {"name": "by_customer", "type": "create_index", "definition": {"table": "loyalty_member",
      "name": "loyalty_member_customer_idx", "columns": ["customer_id"]}},
    {"name": "enrol", "type": "migrate_data", "definition": {
      "source_query": "SELECT id, customer_id, 0 AS points FROM orders WHERE total > 300",
      "target_table": "loyalty_member", "batch_size": 2000},
     "rollback": "DELETE FROM loyalty_member"},
    {"name": "check", "type": "validate", "definition": [
      {"name": "members enrolled", "type": "row_count", "table": "loyalty_member", "min": 1}]},
    {"name": "api", "type": "scaffold", "definition": {"table": "loyalty_member",
      "api_schema": "loyalty_api"}}
  ]}$plan$, NULL, NULL, NULL) \gset
SELECT :'status' AS plan_status;
SELECT step_name, status, duration FROM virtuoso.implementation_log
WHERE plan_name = 'loyalty' ORDER BY ordinal;
SELECT count(*) AS members FROM loyalty_member;
SELECT p.oid::regprocedure AS generated_function FROM pg_proc p
WHERE p.pronamespace = 'loyalty_api'::regnamespace ORDER BY 1::text;

\echo
\echo '### Run again: a finished plan does nothing'
CALL virtuoso.run_implementation($plan${"name": "loyalty", "changes": [
    {"name": "members", "type": "create_table", "definition": {"table": "loyalty_member",
      "columns": [{"name": "id", "type": "bigint", "not_null": true},
                  {"name": "customer_id", "type": "int", "not_null": true},
                  {"name": "points", "type": "int", "not_null": true, "default": "0"}],
      "primary_key": ["id"]}}]}$plan$, NULL, NULL, NULL) \gset
SELECT :'status' AS plan_status, jsonb_path_query_first(:'report'::jsonb, '$[last].details.state') AS state;

\echo
\echo '### A failing step: the steps done are undone in reverse order'
SELECT step_name, status, details->>'state' AS state
FROM virtuoso.execute_database_implementation($plan${"name": "broken", "changes": [
    {"name": "t", "type": "create_table", "definition": "CREATE TABLE broken_t (id int)"},
    {"name": "c", "type": "alter_table", "definition": "ALTER TABLE broken_t ADD COLUMN n int"},
    {"name": "boom", "type": "sql", "definition": "SELECT 1 / 0", "rollback": "SELECT 1"}],
  "options": {"prechecks": false}}$plan$);
SELECT to_regclass('broken_t') AS broken_t_left;
