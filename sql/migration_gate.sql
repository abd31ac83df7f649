-- The gate of execute_migration_with_monitoring (issue 11): options lint, max_plan_regression
-- and dry_run.  Errors come with their own SQLSTATEs: VR001 (refused by the linter) and
-- VR002 (plan regression).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
RESET client_min_messages;
CREATE TABLE gate_orders (id int PRIMARY KEY, customer_id int NOT NULL, note text)
    WITH (autovacuum_enabled = off);
INSERT INTO gate_orders SELECT g, g % 5000, 'n' || g FROM generate_series(1, 300000) g;
CREATE INDEX gate_orders_customer_idx ON gate_orders (customer_id);
CREATE TABLE gate_side (id int PRIMARY KEY, extra int) WITH (autovacuum_enabled = off);
INSERT INTO gate_side SELECT g, g FROM generate_series(1, 100) g;
VACUUM ANALYZE gate_orders, gate_side;
-- The columns of a migration's row that the gate fills.
CREATE FUNCTION gate_row(migration text)
RETURNS TABLE(status text, sqlstate text, attempts int, statements_done int, lint_rules text,
              plan_gate boolean)
LANGUAGE sql AS $$
    SELECT status, sqlstate, attempts, statements_done,
           (SELECT string_agg(f->>'severity' || ':' || (f->>'rule'), ', ' ORDER BY f->>'rule')
            FROM jsonb_array_elements(lint) f),
           plan_changes IS NOT NULL
    FROM virtuoso.migration_log WHERE name = migration ORDER BY started_at DESC LIMIT 1
$$;

-- 1. lint "error" is the default: a migration with an error finding is refused before
-- anything runs (VR001); the FAILED row, with the findings, survives the caller's rollback.
BEGIN;
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_rewrite',
    'ALTER TABLE gate_orders ALTER COLUMN customer_id TYPE bigint')$$);
ROLLBACK;
SELECT * FROM gate_row('gate_rewrite');
SELECT error_detail LIKE 'statement 1, column_type_change_rewrites: %Safer: %' AS detail_names_rule,
       error_hint LIKE 'Nothing was run.%{"lint": "warn"}%' AS hint_says_how
FROM virtuoso.migration_log WHERE name = 'gate_rewrite';
SELECT format_type(atttypid, atttypmod) AS customer_id_type
FROM pg_attribute WHERE attrelid = 'gate_orders'::regclass AND attname = 'customer_id';
-- the executor sets lock_timeout itself: no missing_lock_timeout finding from the gate
SELECT count(*) AS findings_outside_gate FROM virtuoso.lint_migration(
    'ALTER TABLE gate_orders ALTER COLUMN customer_id TYPE bigint');
-- explicitly "error": the same
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_rewrite',
    'ALTER TABLE gate_orders ALTER COLUMN customer_id TYPE bigint', NULL, '{"lint": "error"}')$$);
SELECT count(*) AS failed_runs FROM virtuoso.migration_log WHERE name = 'gate_rewrite';
-- the procedure form has the same gate (terse: the error's detail names the row's id)
\set VERBOSITY terse
CALL virtuoso.run_migration('gate_rewrite_proc',
    'ALTER TABLE gate_orders ALTER COLUMN customer_id TYPE bigint');
\set VERBOSITY default
SELECT * FROM gate_row('gate_rewrite_proc');
-- statement by statement too: refused before the first statement runs
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_one_by_one',
    'CREATE INDEX gate_orders_note2_idx ON gate_orders (note)', NULL, '{"transactional": false}')$$);
SELECT *, to_regclass('gate_orders_note2_idx') IS NULL AS not_built FROM gate_row('gate_one_by_one');
-- a warning alone does not refuse: the migration runs, its findings are recorded
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_warning_only',
    'DROP INDEX gate_orders_customer_idx', NULL, '{"dry_run": true}');
SELECT * FROM gate_row('gate_warning_only');

-- 2. "warn" records the findings and runs; "off" does not lint.
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_side_bigint',
    'ALTER TABLE gate_side ALTER COLUMN extra TYPE bigint', NULL, '{"lint": "warn"}');
SELECT * FROM gate_row('gate_side_bigint');
-- the log keeps each finding's statement number, not the statement's text again (it is in
-- migration_sql); lint_migration's own rows carry the text
SELECT f->'details' ? 'statement' AS has_statement, f->'details' ? 'sql' AS repeats_sql
FROM virtuoso.migration_log, jsonb_array_elements(lint) f WHERE name = 'gate_side_bigint';
SELECT details->>'sql' AS sql FROM virtuoso.lint_migration(
    'ALTER TABLE gate_side ALTER COLUMN extra TYPE bigint');
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_note_idx',
    'CREATE INDEX gate_orders_note_idx ON gate_orders (note)', NULL, '{"lint": "off"}');
SELECT * FROM gate_row('gate_note_idx');
SELECT to_regclass('gate_orders_note_idx') IS NOT NULL AS index_built;
-- an applied migration re-run is not linted again: it returns its row
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_note_idx',
    'CREATE INDEX gate_orders_note_idx ON gate_orders (note)');

-- 3. Bad values: 22023, nothing recorded.
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_bad', 'SELECT 1', NULL, '{"lint": "strict"}')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_bad', 'SELECT 1', NULL, '{"lint": null}')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_bad', 'SELECT 1', NULL, '{"max_plan_regression": 0}')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_bad', 'SELECT 1', NULL, '{"max_plan_regression": -1}')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_bad', 'SELECT 1', NULL, '{"max_plan_regression": "2x"}')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_bad', 'SELECT 1', NULL, '{"max_plan_regression": true}')$$);
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_bad', 'SELECT 1', NULL, '{"max_plan_regression": 2, "transactional": false}')$$);
SELECT count(*) AS bad_runs FROM virtuoso.migration_log WHERE name = 'gate_bad';

-- 4. max_plan_regression: the hot statements of pg_stat_statements, costed before and after.
SELECT pg_stat_statements_reset() IS NOT NULL AS reset;
SELECT count(*) FROM gate_orders WHERE customer_id = 42;
SELECT count(*) FROM gate_orders WHERE customer_id = 43;
SELECT id FROM gate_orders WHERE id = 7;
SELECT extra FROM gate_side WHERE id = 3;
-- a statement that no longer plans (its table is gone): reported, not fatal
CREATE TABLE gate_gone (a int);
SELECT a FROM gate_gone WHERE a = 1;
DROP TABLE gate_gone;
-- The statements compared, without the costs (they depend on the machine's settings).
CREATE FUNCTION gate_plans(migration text)
RETURNS TABLE(query text, regressed boolean, ratio_over_2 boolean, plan_before text,
              plan_after text, error_before text, error_after text)
LANGUAGE sql AS $$
    SELECT s->>'query', (s->>'regressed')::boolean, (s->>'cost_ratio')::float8 > 2,
           s->>'plan_before', s->>'plan_after', s->>'error_before', s->>'error_after'
    FROM virtuoso.migration_log l, jsonb_array_elements(l.plan_changes->'statements') s
    WHERE l.name = migration AND s->>'query' ~ 'gate_(orders|side|gone)'
      AND s->>'query' !~ 'virtuoso|gate_row|gate_plans|pg_stat_statements'
    ORDER BY 1
$$;

-- Dropping the index the hot query needs trips the gate: VR002, nothing applied, the FAILED
-- row (surviving the caller's rollback) shows before and after.
BEGIN;
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_drop_idx',
    'DROP INDEX gate_orders_customer_idx', NULL, '{"max_plan_regression": 2}')$$);
ROLLBACK;
SELECT to_regclass('gate_orders_customer_idx') IS NOT NULL AS index_kept;
SELECT * FROM gate_row('gate_drop_idx');
SELECT * FROM gate_plans('gate_drop_idx');
SELECT plan_changes->'max_plan_regression' AS factor, (plan_changes->>'regressed')::int AS regressed,
       (plan_changes->>'not_planned')::int >= 1 AS some_not_planned,
       error_detail LIKE 'estimated cost % of SELECT count(*) FROM gate_orders WHERE customer_id = $1 %plan before: %gate_orders_customer_idx%plan after: %Seq Scan on public.gate_orders%' AS detail_shows_plans
FROM virtuoso.migration_log WHERE name = 'gate_drop_idx';
-- a factor high enough lets it through (and dry_run rolls it back)
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_drop_idx',
    'DROP INDEX gate_orders_customer_idx', NULL, '{"max_plan_regression": 1000000, "dry_run": true}');
SELECT to_regclass('gate_orders_customer_idx') IS NOT NULL AS index_kept;

-- Adding an index does not trip it; a statement that stops planning after the migration (a
-- column it reads was dropped) is reported, not fatal.
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_add_idx',
    'CREATE INDEX gate_orders_id_note_idx ON gate_orders (id, note);
     ALTER TABLE gate_side DROP COLUMN extra',
    NULL, '{"max_plan_regression": 1, "lint": "warn"}');
SELECT * FROM gate_row('gate_add_idx');
SELECT * FROM gate_plans('gate_add_idx');

-- The GUC bounds how many statements are compared.
SET virtuoso.plan_regression_statements = 1;
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_one_statement',
    'CREATE TABLE gate_new (a int)', NULL, '{"max_plan_regression": 2}');
SELECT jsonb_array_length(plan_changes->'statements') AS compared
FROM virtuoso.migration_log WHERE name = 'gate_one_statement';
RESET virtuoso.plan_regression_statements;
SELECT try('SET virtuoso.plan_regression_statements = 0');

-- 5. Another role's statements are planned as that role, inside a security-restricted
-- operation: an IMMUTABLE function the planner folds gets that role's rights only.
CREATE ROLE regress_gate_mallory;
CREATE SCHEMA gate_mallory AUTHORIZATION regress_gate_mallory;
GRANT SELECT ON gate_orders TO regress_gate_mallory;
SET ROLE regress_gate_mallory;
CREATE FUNCTION gate_mallory.payload() RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        PERFORM virtuoso.execute_autonomous('ALTER ROLE regress_gate_mallory SUPERUSER');
    END IF;
    RETURN 7;
END $$;
CREATE FUNCTION gate_mallory.trap() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN gate_mallory.payload();
END $$;
GRANT USAGE ON SCHEMA gate_mallory TO PUBLIC;
SELECT count(*) FROM gate_orders WHERE customer_id = gate_mallory.trap();
RESET ROLE;
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_as_superuser',
    'CREATE TABLE gate_new2 (a int)', NULL, '{"max_plan_regression": 2}');
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'regress_gate_mallory';
SELECT s->>'role' AS planned_as, s->>'plan_before' IS NOT NULL AS planned
FROM virtuoso.migration_log l, jsonb_array_elements(l.plan_changes->'statements') s
WHERE l.name = 'gate_as_superuser' AND s->>'query' LIKE '%gate_mallory.trap()%';
-- A caller who may read the statistics but lacks mallory's privileges does not plan
-- mallory's statements at all: they are counted as skipped.
CREATE ROLE regress_gate_monitor IN ROLE pg_read_all_stats, regress_virtuoso_user;
SET ROLE regress_gate_monitor;
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_as_monitor',
    'SELECT 1', NULL, '{"max_plan_regression": 2}');
RESET ROLE;
SELECT (plan_changes->>'skipped_other_roles')::int > 0 AS skipped_others,
       NOT EXISTS (SELECT FROM jsonb_array_elements(plan_changes->'statements') s
                   WHERE s->>'role' <> 'regress_gate_monitor') AS only_own_statements
FROM virtuoso.migration_log WHERE name = 'gate_as_monitor';

-- Running out of a resource or past a limit while a statement is costed ends the migration
-- with that error: it is not that statement's failure to plan, reported and gone on from.
-- (Here an IMMUTABLE function the planner folds builds a string past the 1 GB limit.)
CREATE FUNCTION gate_grows() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN length(repeat('xx', current_setting('regress_gate.repeat')::int));
END $$;
SET regress_gate.repeat = 1;
SELECT gate_grows() FROM pg_sleep(0.3);
SET regress_gate.repeat = 600000000;
\set VERBOSITY terse
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_limit',
    'CREATE TABLE gate_new4 (a int)', NULL, '{"max_plan_regression": 2}');
\set VERBOSITY default
RESET regress_gate.repeat;
SELECT to_regclass('gate_new4') AS not_created;
DROP FUNCTION gate_grows();

-- Without pg_stat_statements the plan gate cannot work: a clear error, nothing recorded.
DROP EXTENSION pg_stat_statements;
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_no_pgss',
    'CREATE TABLE gate_new3 (a int)', NULL, '{"max_plan_regression": 2}')$$);
SELECT count(*) AS runs FROM virtuoso.migration_log WHERE name = 'gate_no_pgss';
CREATE EXTENSION pg_stat_statements;

-- 6. dry_run runs everything including the gate, then rolls back: DRY_RUN, the row survives
-- the caller's rollback, nothing is applied, and a later real run is not "already applied".
BEGIN;
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_dry',
    'ALTER TABLE gate_side ADD COLUMN flag boolean', NULL, '{"dry_run": true}');
ROLLBACK;
SELECT * FROM gate_row('gate_dry');
SELECT count(*) AS flag_columns FROM pg_attribute WHERE attrelid = 'gate_side'::regclass AND attname = 'flag';
SELECT status FROM virtuoso.execute_migration_with_monitoring('gate_dry',
    'ALTER TABLE gate_side ADD COLUMN flag boolean');
SELECT count(*) AS flag_columns FROM pg_attribute WHERE attrelid = 'gate_side'::regclass AND attname = 'flag';
SELECT array_agg(status ORDER BY started_at) AS runs FROM virtuoso.migration_log WHERE name = 'gate_dry';
-- a dry run that the linter refuses is FAILED, as the real run would be
SELECT try($$SELECT virtuoso.execute_migration_with_monitoring('gate_dry_refused',
    'ALTER TABLE gate_orders ALTER COLUMN customer_id TYPE bigint', NULL, '{"dry_run": true}')$$);
SELECT * FROM gate_row('gate_dry_refused');

DROP ROLE regress_gate_monitor;
DROP SCHEMA gate_mallory CASCADE;
REVOKE ALL ON gate_orders FROM regress_gate_mallory;
DROP ROLE regress_gate_mallory;
