-- Rules run read-only at the transaction level, so no path can write: not the rule's own SQL,
-- not a function it calls, and not the extension's runner (a background worker acting for
-- the rule), which must respect the caller's read-only state.  Each writing rule is ERROR
-- with 25006 and every row is still there afterwards.
CREATE TABLE vt (id int PRIMARY KEY, v text);
INSERT INTO vt VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four');
CREATE FUNCTION public.vt_insert() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN INSERT INTO vt VALUES (5, 'five'); RETURN 0; END $$;
SELECT rule_name, status, split_part(validation_message, ':', 1) AS sqlstate
FROM virtuoso.validate_data_integrity($$[
  {"name": "autonomous_delete", "query": "SELECT length(virtuoso.execute_autonomous('DELETE FROM vt WHERE id=1'))*0"},
  {"name": "top_level_delete", "query": "SELECT length(virtuoso.execute_top_level('DELETE FROM vt WHERE id=2'))*0"},
  {"name": "concurrent_index", "query": "SELECT length(virtuoso.create_index_concurrently('CREATE INDEX vt_v_idx ON vt (v)'))*0"},
  {"name": "writable_cte", "query": "WITH d AS (DELETE FROM vt WHERE id = 3 RETURNING 1) SELECT count(*) FROM d"},
  {"name": "volatile_insert", "query": "SELECT public.vt_insert()"},
  {"name": "typed_rule_filter", "type": "row_count", "table": "vt", "min": 0, "where": "public.vt_insert() = 0"},
  {"name": "read_write_again", "query": "SELECT length(set_config('transaction_read_only', 'off', true))*0"}
]$$) ORDER BY rule_name;
SELECT id, v FROM vt ORDER BY id;
SELECT count(*) AS no_index FROM pg_index WHERE indrelid = 'vt'::regclass AND NOT indisprimary;

-- The caller's own state is what it was: a read-write transaction can still write, a
-- read-only one stays read-only.
BEGIN;
SELECT count(*) AS rules FROM virtuoso.validate_data_integrity('[{"name": "a", "query": "SELECT 0"}]');
SHOW transaction_read_only;
INSERT INTO vt VALUES (6, 'six');
ROLLBACK;
BEGIN READ ONLY;
SELECT count(*) AS rules FROM virtuoso.validate_data_integrity('[{"name": "a", "query": "SELECT 0"}]');
SHOW transaction_read_only;
ROLLBACK;
DROP FUNCTION public.vt_insert();
DROP TABLE vt;
