-- validate_data_integrity: query rules, every typed rule with passing and failing data,
-- read-only enforcement, one snapshot, timeouts and malformed input.
CREATE TABLE players (id int PRIMARY KEY, name text, team text);
CREATE TABLE player_stats (id int PRIMARY KEY, player_id int, season int, points int,
                           status text, updated_at timestamptz);
INSERT INTO players SELECT g, 'player ' || g, CASE WHEN g <= 5 THEN 'red' ELSE 'blue' END
FROM generate_series(1, 10) g;
INSERT INTO player_stats SELECT g, 1 + g % 10, 2000 + g, g * 10, 'active', now() - interval '1 hour'
FROM generate_series(1, 20) g;
CREATE TABLE broken_stats (LIKE player_stats);
INSERT INTO broken_stats SELECT * FROM player_stats;
INSERT INTO broken_stats VALUES (21, 42, 2001, -5, 'retired', '2020-01-01 00:00:00+00'),
                                (22, 43, 2002, 999, 'gone', NULL),
                                (23, NULL, 2002, 10, NULL, NULL),
                                (24, 42, 2003, 20, 'gone', NULL);

-- The basic rule exactly as users write it today.
SELECT * FROM virtuoso.validate_data_integrity($$[
  {"name": "fk_orphans", "query": "SELECT COUNT(*) AS count FROM player_stats ps LEFT JOIN players p ON ps.player_id = p.id WHERE p.id IS NULL", "expected": 0},
  {"name": "fk_orphans_broken", "query": "SELECT COUNT(*) AS count FROM broken_stats ps LEFT JOIN players p ON ps.player_id = p.id WHERE p.id IS NULL", "expected": 0},
  {"name": "single_column", "query": "SELECT count(*) FROM players", "expected": 10},
  {"name": "count_column_wins", "query": "SELECT 1 AS other, 7 AS count", "expected": 7},
  {"name": "at_most", "query": "SELECT count(*) FROM players", "expected": 10, "operator": "<="},
  {"name": "at_least", "query": "SELECT count(*) FROM players", "expected": 11, "operator": ">="},
  {"name": "less", "query": "SELECT count(*) FROM players", "expected": 11, "operator": "<"},
  {"name": "greater", "query": "SELECT count(*) FROM players", "expected": 10, "operator": ">"},
  {"name": "only_a_warning", "query": "SELECT count(*) FROM players", "expected": 0, "severity": "warn"}
]$$);

-- Query rules that cannot be judged: ERROR with the reason, the others still run.
SELECT * FROM virtuoso.validate_data_integrity($$[
  {"name": "no_row", "query": "SELECT 1 AS count WHERE false"},
  {"name": "two_rows", "query": "SELECT 1 AS count UNION ALL SELECT 2"},
  {"name": "two_columns", "query": "SELECT 1 AS a, 2 AS b"},
  {"name": "null_count", "query": "SELECT NULL::int AS count"},
  {"name": "fraction", "query": "SELECT 1.5 AS count"},
  {"name": "syntax", "query": "SELEC 1"},
  {"name": "division", "query": "SELECT 1/0 AS count"},
  {"name": "still_runs", "query": "SELECT 0 AS count"}
]$$);

-- Every typed rule on data that passes.
SELECT * FROM virtuoso.validate_data_integrity($$[
  {"name": "nn", "type": "not_null", "table": "player_stats", "column": "player_id"},
  {"name": "uq", "type": "unique", "table": "player_stats", "column": "season"},
  {"name": "uq2", "type": "unique", "table": "player_stats", "columns": ["player_id", "season"]},
  {"name": "fk", "type": "foreign_key", "table": "player_stats", "column": "player_id", "references": "players", "referenced_column": "id"},
  {"name": "av", "type": "accepted_values", "table": "player_stats", "column": "status", "values": ["active", "retired"]},
  {"name": "rc", "type": "row_count", "table": "player_stats", "min": 1, "max": 20},
  {"name": "rg", "type": "range", "table": "player_stats", "column": "points", "min": 0, "max": 200},
  {"name": "ex", "type": "expression", "table": "player_stats", "expression": "points = (season - 2000) * 10"},
  {"name": "fr", "type": "freshness", "table": "player_stats", "column": "updated_at", "max_age": "1 day"}
]$$) WHERE rule_name <> 'fr';
-- freshness: result_count is the age in seconds (it varies), expected_count max_age
SELECT rule_name, status, result_count BETWEEN 3590 AND 3700 AS about_an_hour, expected_count,
       regexp_replace(validation_message, 'is .* \(\d+ s old\)', 'is <newest> (<age> s old)') AS message
FROM virtuoso.validate_data_integrity($$[
  {"name": "fr", "type": "freshness", "table": "player_stats", "column": "updated_at", "max_age": "1 day"},
  {"name": "fr_stale", "type": "freshness", "table": "player_stats", "column": "updated_at", "max_age": "10 minutes"}
]$$);

-- The same rules on data that fails, with samples of what offends.
SELECT rule_name, status, CASE WHEN rule_name = 'fr' THEN result_count > 86400 * 365 ELSE NULL END AS very_old,
       CASE WHEN rule_name = 'fr' THEN NULL ELSE result_count END AS result_count, expected_count,
       regexp_replace(validation_message, '\(\d+ s old\)', '(<age> s old)') AS validation_message
FROM virtuoso.validate_data_integrity($$[
  {"name": "nn", "type": "not_null", "table": "broken_stats", "column": "player_id"},
  {"name": "uq", "type": "unique", "table": "broken_stats", "column": "season"},
  {"name": "uq2", "type": "unique", "table": "broken_stats", "columns": ["player_id", "season"]},
  {"name": "fk", "type": "foreign_key", "table": "broken_stats", "column": "player_id", "references": "players", "referenced_column": "id"},
  {"name": "av", "type": "accepted_values", "table": "broken_stats", "column": "status", "values": ["active", "retired"]},
  {"name": "rc_max", "type": "row_count", "table": "broken_stats", "max": 20},
  {"name": "rc_min", "type": "row_count", "table": "broken_stats", "min": 100},
  {"name": "rg", "type": "range", "table": "broken_stats", "column": "points", "min": 0, "max": 200},
  {"name": "rg_min", "type": "range", "table": "broken_stats", "column": "points", "min": 0},
  {"name": "ex", "type": "expression", "table": "broken_stats", "expression": "points >= 0"},
  {"name": "fr", "type": "freshness", "table": "broken_stats", "column": "updated_at", "max_age": "1 day", "where": "id > 20"},
  {"name": "fr_empty", "type": "freshness", "table": "broken_stats", "column": "updated_at", "max_age": "1 day", "where": "id > 22"},
  {"name": "warn_only", "type": "not_null", "table": "broken_stats", "column": "status", "severity": "warn"}
]$$);

-- where filters rows; multi-column foreign keys; a composite key with a NULL is not checked.
CREATE TABLE parent2 (a int, b int, PRIMARY KEY (a, b));
CREATE TABLE child2 (id int, a int, b int);
INSERT INTO parent2 VALUES (1, 1), (1, 2);
INSERT INTO child2 VALUES (1, 1, 1), (2, 1, 2), (3, 2, 1), (4, NULL, 9), (5, 2, 1);
SELECT rule_name, status, result_count, validation_message FROM virtuoso.validate_data_integrity($$[
  {"name": "fk2", "type": "foreign_key", "table": "child2", "columns": ["a", "b"], "references": "parent2", "referenced_columns": ["a", "b"]},
  {"name": "fk2_filtered", "type": "foreign_key", "table": "child2", "columns": ["a", "b"], "references": "public.parent2", "referenced_columns": ["a", "b"], "where": "child2.id < 3"},
  {"name": "nn_filtered", "type": "not_null", "table": "child2", "column": "a", "where": "id <> 4"},
  {"name": "self_fk", "type": "foreign_key", "table": "child2", "column": "a", "references": "child2", "referenced_column": "id"}
]$$);

-- Types other than text: dates, numerics, booleans in accepted_values and range.
CREATE TABLE typed (d date, n numeric(6,2), flag boolean);
INSERT INTO typed VALUES ('2024-01-01', 1.50, true), ('2024-06-01', 2.25, false), ('2025-01-01', 9.99, NULL);
SELECT rule_name, status, CASE WHEN rule_name = 'date_freshness' THEN result_count > 86400 ELSE NULL END AS old,
       regexp_replace(validation_message, '\(\d+ s old\)', '(<age> s old)') AS validation_message
FROM virtuoso.validate_data_integrity($$[
  {"name": "dates", "type": "range", "table": "typed", "column": "d", "min": "2024-01-01", "max": "2024-12-31"},
  {"name": "numbers", "type": "range", "table": "typed", "column": "n", "max": 5.5},
  {"name": "flags", "type": "accepted_values", "table": "typed", "column": "flag", "values": [true]},
  {"name": "numeric_values", "type": "accepted_values", "table": "typed", "column": "n", "values": [1.5, 2.25, 9.99]},
  {"name": "bad_bound", "type": "range", "table": "typed", "column": "d", "min": "not a date"},
  {"name": "date_freshness", "type": "freshness", "table": "typed", "column": "d", "max_age": "1 day"}
]$$);

-- Identifiers are resolved, never pasted.
CREATE TABLE "Odd Table" ("Odd Column" int);
INSERT INTO "Odd Table" VALUES (1), (NULL);
SELECT rule_name, status, validation_message FROM virtuoso.validate_data_integrity($$[
  {"name": "hostile_table", "type": "not_null", "table": "x\"; DROP TABLE players; --", "column": "id"},
  {"name": "hostile_column", "type": "not_null", "table": "players", "column": "id IS NULL OR true; DROP TABLE players; --"},
  {"name": "hostile_parent", "type": "foreign_key", "table": "player_stats", "column": "player_id", "references": "players; DROP TABLE players", "referenced_column": "id"},
  {"name": "quoted_name", "type": "not_null", "table": "\"Odd Table\"", "column": "Odd Column"},
  {"name": "missing_column", "type": "not_null", "table": "players", "column": "nope"},
  {"name": "case_matters", "type": "not_null", "table": "players", "column": "ID"},
  {"name": "other_database", "type": "row_count", "table": "otherdb.public.players", "min": 1}
]$$);
SELECT count(*) AS players_still_there FROM players;

-- Expressions and filters cannot leave their parentheses.
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "expression", "table": "players", "expression": "true) OR (true"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "expression", "table": "players", "expression": "true; DROP TABLE players"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "not_null", "table": "players", "column": "id", "where": "(true"}]')$$);
SELECT rule_name, status, validation_message FROM virtuoso.validate_data_integrity($$[
  {"name": "comment_in_filter", "type": "row_count", "table": "players", "min": 1, "where": "id > 5 -- only the second half"},
  {"name": "semicolon_in_string", "type": "row_count", "table": "players", "min": 1, "where": "name <> 'a;b)'"}
]$$);

-- Rules are read-only: a rule that writes gets ERROR and nothing it did remains.
CREATE FUNCTION public.sneaky_delete() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN DELETE FROM players; RETURN 0; END $$;
CREATE TEMP TABLE scratch (a int);
CREATE SEQUENCE some_sequence;
CREATE FUNCTION public.sneaky_temp_insert() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN INSERT INTO scratch VALUES (1); RETURN 0; END $$;
SELECT rule_name, status, validation_message FROM virtuoso.validate_data_integrity($$[
  {"name": "writable_cte", "query": "WITH d AS (DELETE FROM players RETURNING 1) SELECT count(*) FROM d"},
  {"name": "writing_function", "query": "SELECT public.sneaky_delete()"},
  {"name": "temp_write", "query": "SELECT public.sneaky_temp_insert()"},
  {"name": "sequence", "query": "SELECT nextval('public.some_sequence')"},
  {"name": "ddl", "query": "DROP TABLE players"}
]$$);
SELECT (SELECT count(*) FROM players) AS players, (SELECT count(*) FROM scratch) AS scratch_rows,
       current_setting('transaction_read_only') AS read_only_after;

-- Inside a transaction: rules see its uncommitted changes, the function commits nothing,
-- and the transaction can still write afterwards.
BEGIN;
INSERT INTO player_stats VALUES (100, 999, 2100, 5, 'active', now());
SELECT rule_name, status, result_count FROM virtuoso.validate_data_integrity($$[
  {"name": "sees_uncommitted", "type": "foreign_key", "table": "player_stats", "column": "player_id", "references": "players", "referenced_column": "id"}
]$$);
INSERT INTO players VALUES (999, 'late', 'red');
SELECT rule_name, status, result_count FROM virtuoso.validate_data_integrity($$[
  {"name": "sees_uncommitted", "type": "foreign_key", "table": "player_stats", "column": "player_id", "references": "players", "referenced_column": "id"}
]$$);
ROLLBACK;
SELECT count(*) AS rolled_back FROM player_stats WHERE id = 100;

-- As a migration calls it: from inside another function, after that function's writes,
-- through SPI, before anything is committed; a failing rule lets the caller roll back.
CREATE FUNCTION public.migrate_and_validate(fix boolean) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    INSERT INTO player_stats VALUES (200, 777, 2200, 5, 'active', now());
    IF fix THEN
        INSERT INTO players VALUES (777, 'new player', 'red');
    END IF;
    SELECT count(*) INTO bad FROM virtuoso.validate_data_integrity($r$[
      {"name": "fk", "type": "foreign_key", "table": "player_stats", "column": "player_id", "references": "players", "referenced_column": "id"}
    ]$r$) WHERE status IN ('FAIL', 'ERROR');
    IF bad > 0 THEN
        RAISE EXCEPTION 'validation failed: % rule(s)', bad;
    END IF;
    RETURN 'validated';
END $$;
SELECT try('SELECT public.migrate_and_validate(false)');
SELECT count(*) AS nothing_left FROM player_stats WHERE id = 200;
BEGIN;
SELECT public.migrate_and_validate(true);
ROLLBACK;
DROP FUNCTION public.migrate_and_validate(boolean);

-- Per-rule timeout, its default from virtuoso.rule_timeout, and the user's own limits.
SELECT rule_name, status, validation_message FROM virtuoso.validate_data_integrity($$[
  {"name": "slow", "query": "SELECT count(*) FROM pg_sleep(5)", "timeout": "100ms"},
  {"name": "fast", "query": "SELECT count(*) FROM pg_sleep(0.01)", "timeout": "5s"}
]$$);
SET virtuoso.rule_timeout = '100ms';
SELECT rule_name, status, validation_message FROM virtuoso.validate_data_integrity($$[
  {"name": "slow_by_default", "query": "SELECT count(*) FROM pg_sleep(5)"},
  {"name": "own_timeout_wins", "query": "SELECT count(*) FROM pg_sleep(0.3)", "timeout": "10s"}
]$$);
RESET virtuoso.rule_timeout;
SHOW virtuoso.rule_timeout;
-- statement_timeout (like a user's cancel) still cancels the whole call
SET statement_timeout = '200ms';
SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "query": "SELECT count(*) FROM pg_sleep(5)"}]');
RESET statement_timeout;
SELECT pg_sleep(0.3);  -- a rule's timer left behind would cancel this
-- ... and so do running out of a resource and a limit: they are no rule's ERROR row, and the
-- rules after them do not run.
SELECT * FROM virtuoso.validate_data_integrity('[{"name": "limit", "query": "SELECT length(repeat(''xx'', 600000000)) AS count"}, {"name": "after", "query": "SELECT 0"}]');
SET temp_file_limit = '64kB';
SET work_mem = '64kB';
SELECT * FROM virtuoso.validate_data_integrity('[{"name": "temp_files", "query": "SELECT count(*) FROM (SELECT g FROM generate_series(1, 100000) g ORDER BY g DESC) s"}, {"name": "after", "query": "SELECT 0"}]');
RESET temp_file_limit;
RESET work_mem;

-- Malformed input: 22023 naming the rule and the field; nothing runs.
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity(NULL)$$);
SELECT * FROM virtuoso.validate_data_integrity('[]');
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('{"name": "x"}')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[1]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"query": "SELECT 0"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "", "query": "SELECT 0"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": 7, "query": "SELECT 0"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "a", "query": "SELECT 0"}, {"name": "a", "query": "SELECT 0"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "nope", "table": "t"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "not_null", "table": "players", "column": "id", "query": "SELECT 1"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "not_null", "table": "players"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "not_null", "table": "players", "column": ["id"]}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "not_null", "table": "players", "colum": "id"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "unique", "table": "players", "columns": []}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "foreign_key", "table": "a", "columns": ["a", "b"], "references": "p", "referenced_column": "id"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "accepted_values", "table": "a", "column": "c", "values": [null]}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "accepted_values", "table": "a", "column": "c", "values": "abc"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "row_count", "table": "a"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "row_count", "table": "a", "min": 1.5}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "row_count", "table": "a", "min": 5, "max": 1}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "range", "table": "a", "column": "c", "min": {}}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "query": "SELECT 0", "expected": "0"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "query": "SELECT 0", "expected": 99999999999999999999}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "query": "SELECT 0", "operator": "!="}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "query": "SELECT 0", "severity": "fatal"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "query": "SELECT 0", "timeout": "soon"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "query": "SELECT 0", "timeout": "-1s"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "query": "SELECT 0", "where": "true"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "type": "freshness", "table": "a", "column": "c", "max_age": "a while"}]')$$);
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "x", "query": "SELECT 0", "operator": 1}]')$$);
-- a malformed rule after a good one: nothing runs
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[{"name": "ok", "query": "SELECT public.sneaky_delete()"}, {"name": "bad"}]')$$);
-- hostile sizes
SELECT count(*) FROM virtuoso.validate_data_integrity(
  (SELECT jsonb_agg(jsonb_build_object('name', 'r' || g, 'query', 'SELECT 0')) FROM generate_series(1, 200) g));
SELECT try(format($$SELECT * FROM virtuoso.validate_data_integrity(%L)$$,
  jsonb_build_array(jsonb_build_object('name', repeat('n', 100000), 'type', 'not_null', 'table', repeat('t', 100000), 'column', 'c'))));
SELECT try(format($$SELECT * FROM virtuoso.validate_data_integrity(%L)$$, repeat('[', 5000) || repeat(']', 5000)));

-- Rules run as the calling role.
CREATE TABLE secret (id int);
GRANT SELECT ON players TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
SELECT rule_name, status, validation_message FROM virtuoso.validate_data_integrity($$[
  {"name": "allowed", "type": "row_count", "table": "players", "min": 1},
  {"name": "denied", "type": "row_count", "table": "secret", "min": 0}
]$$);
RESET ROLE;
SET ROLE regress_virtuoso_nobody;
SELECT try($$SELECT * FROM virtuoso.validate_data_integrity('[]')$$);
RESET ROLE;

DROP TABLE players, player_stats, broken_stats, parent2, child2, typed, "Odd Table", secret;
DROP FUNCTION public.sneaky_delete(), public.sneaky_temp_insert();
DROP SEQUENCE some_sequence;
