-- The SQL that typed rules generate names every operator, function, aggregate and type by
-- schema: a role that can create objects in public cannot put its own "=" (or "<", ">",
-- count, left, now, ...) in front of pg_catalog's and have the superuser who runs the rules
-- run it.  Each hostile object raises, naming the role it runs as, so any use shows up as an
-- ERROR row; the rule's own user-written parts (where, expression) still use search_path.
CREATE ROLE regress_virtuoso_mallory;
GRANT CREATE ON SCHEMA public TO regress_virtuoso_mallory;
SET ROLE regress_virtuoso_mallory;
CREATE FUNCTION public.hostile_vv(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile varchar operator ran as %', current_user; END $$;
CREATE FUNCTION public.hostile_vt(varchar, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile varchar = text ran as %', current_user; END $$;
CREATE FUNCTION public.hostile_ib(integer, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile integer = bigint ran as %', current_user; END $$;
CREATE FUNCTION public.hostile_tt(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile timestamptz >= ran as %', current_user; END $$;
CREATE FUNCTION public.hostile_count(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile count ran as %', current_user; END $$;
CREATE FUNCTION public.hostile_sum(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile sum ran as %', current_user; END $$;
CREATE FUNCTION public.hostile_max(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile max ran as %', current_user; END $$;
CREATE FUNCTION public.hostile_minus(timestamptz, interval) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile minus ran as %', current_user; END $$;
CREATE FUNCTION public.hostile_gt8(bigint, integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile bigint > ran as %', current_user; END $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile now() ran as %', current_user; END $$;
CREATE FUNCTION public.left(text, integer) RETURNS text LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile left() ran as %', current_user; END $$;
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.hostile_vv);
CREATE OPERATOR public.< (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.hostile_vv);
CREATE OPERATOR public.> (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.hostile_vv);
CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = bigint, FUNCTION = public.hostile_ib);
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = text, FUNCTION = public.hostile_vt);
CREATE OPERATOR public.> (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = public.hostile_gt8);
CREATE OPERATOR public.>= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.hostile_tt);
CREATE OPERATOR public.- (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = public.hostile_minus);
CREATE AGGREGATE public.count(*) (SFUNC = public.hostile_count, STYPE = bigint, INITCOND = '0');
CREATE AGGREGATE public.max(timestamptz) (SFUNC = public.hostile_max, STYPE = timestamptz);
CREATE AGGREGATE public.sum(bigint) (SFUNC = public.hostile_sum, STYPE = bigint);
RESET ROLE;

CREATE TABLE ops_parent (code varchar PRIMARY KEY, n integer UNIQUE, label text UNIQUE);
INSERT INTO ops_parent VALUES ('a', 1, 'a'), ('b', 2, 'b'), ('c', 3, 'c');
CREATE TYPE ops_mood AS ENUM ('low', 'mid', 'high');
CREATE DOMAIN ops_tag AS varchar CHECK (VALUE <> '');
CREATE TABLE ops_child (id integer, code varchar, grade varchar, parent_n bigint,
                        label varchar, seen timestamptz, doc json, mood ops_mood, tag ops_tag);
INSERT INTO ops_child VALUES
    (1, 'a', 'b', 1, 'a', now() - interval '1 hour', '{}', 'low', 't1'),
    (2, 'b', 'm', 2, 'b', now() - interval '2 hours', '{}', 'mid', 't2'),
    (3, 'x', 'z', 9, 'x', now() - interval '3 hours', '{}', 'high', 't2'),
    (4, NULL, 'b', NULL, NULL, NULL, NULL, NULL, NULL),
    (5, 'a', 'm', 1, 'a', NULL, '{}', 'low', 't9');

SET search_path = public, pg_catalog;
-- Every typed rule, on varchar columns where the hostile operators match exactly.
SELECT rule_name, status, result_count, expected_count, validation_message
FROM virtuoso.validate_data_integrity($$[
  {"name": "not_null", "type": "not_null", "table": "ops_child", "column": "code"},
  {"name": "unique", "type": "unique", "table": "ops_child", "column": "code"},
  {"name": "unique_pair", "type": "unique", "table": "ops_child", "columns": ["code", "grade"]},
  {"name": "foreign_key", "type": "foreign_key", "table": "ops_child", "column": "code", "references": "ops_parent", "referenced_column": "code"},
  {"name": "foreign_key_cross_type", "type": "foreign_key", "table": "ops_child", "column": "parent_n", "references": "ops_parent", "referenced_column": "n"},
  {"name": "foreign_key_cast", "type": "foreign_key", "table": "ops_child", "column": "label", "references": "ops_parent", "referenced_column": "label"},
  {"name": "accepted_values", "type": "accepted_values", "table": "ops_child", "column": "grade", "values": ["b", "m"]},
  {"name": "range", "type": "range", "table": "ops_child", "column": "grade", "min": "a", "max": "n"},
  {"name": "range_min", "type": "range", "table": "ops_child", "column": "grade", "min": "c"},
  {"name": "row_count", "type": "row_count", "table": "ops_child", "min": 1, "max": 10},
  {"name": "expression", "type": "expression", "table": "ops_child", "expression": "id > 0"},
  {"name": "enum_values", "type": "accepted_values", "table": "ops_child", "column": "mood", "values": ["low", "mid"]},
  {"name": "enum_range", "type": "range", "table": "ops_child", "column": "mood", "min": "mid"},
  {"name": "domain_unique", "type": "unique", "table": "ops_child", "column": "tag"},
  {"name": "domain_range", "type": "range", "table": "ops_child", "column": "tag", "max": "t5"},
  {"name": "filtered", "type": "row_count", "table": "ops_child", "min": 1, "where": "id < 3"}
]$$) ORDER BY rule_name;

SELECT rule_name, status, result_count BETWEEN 3590 AND 3700 AS about_an_hour, expected_count,
       regexp_replace(validation_message, 'is .* \(\d+ s old\)', 'is <newest> (<age> s old)') AS message
FROM virtuoso.validate_data_integrity($$[
  {"name": "freshness", "type": "freshness", "table": "ops_child", "column": "seen", "max_age": "1 day"},
  {"name": "stale", "type": "freshness", "table": "ops_child", "column": "seen", "max_age": "30 min"}
]$$);

-- The user-written parts are the user's SQL: they resolve through the caller's search_path
-- (here they reach the hostile "=", as they would in the caller's own query).
SELECT rule_name, status, validation_message
FROM virtuoso.validate_data_integrity($$[
  {"name": "own_where", "type": "row_count", "table": "ops_child", "min": 0, "where": "code = grade"}
]$$);

-- A type with no default B-tree operator class: a clear 42883 for that rule, not a guess.
SELECT rule_name, status, validation_message
FROM virtuoso.validate_data_integrity($$[
  {"name": "json_values", "type": "accepted_values", "table": "ops_child", "column": "doc", "values": ["{}"]},
  {"name": "json_range", "type": "range", "table": "ops_child", "column": "doc", "min": "{}"},
  {"name": "json_unique", "type": "unique", "table": "ops_child", "column": "doc"},
  {"name": "json_not_null", "type": "not_null", "table": "ops_child", "column": "doc"}
]$$) ORDER BY rule_name;
RESET search_path;

DROP TABLE ops_child, ops_parent;
DROP TYPE ops_mood;
DROP DOMAIN ops_tag;
DROP OWNED BY regress_virtuoso_mallory;
REVOKE CREATE ON SCHEMA public FROM regress_virtuoso_mallory;
DROP ROLE regress_virtuoso_mallory;
