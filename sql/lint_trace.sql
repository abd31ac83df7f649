-- lint_migration(..., trace => true): the statements run in a subtransaction that is rolled
-- back; the locks really taken, rewrites (relfilenode changed) and errors are reported, and
-- traced facts override static guesses.  Nothing is left behind.
CREATE SCHEMA lint_tr;
SET search_path = lint_tr, public;
CREATE TABLE parent (id bigint PRIMARY KEY, v int);
INSERT INTO parent SELECT g, g FROM generate_series(1, 5000) g;
CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint, code varchar(10));
INSERT INTO child SELECT g, g, 'c' FROM generate_series(1, 5000) g;
CREATE INDEX child_parent_idx ON child (parent_id);
CREATE FUNCTION lint_tr.vol_sql() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1';
ANALYZE parent, child;
SELECT relfilenode AS parent_node FROM pg_class WHERE oid = 'lint_tr.parent'::regclass \gset

-- Locks and rewrites as traced, per statement (toast relations left out).
CREATE FUNCTION lint_tr.traced(sql text)
RETURNS TABLE(n int, rule text, severity text, lock_mode text, source text, ran boolean,
              skipped boolean, rewritten jsonb, locks text, error text)
LANGUAGE sql AS $$
    SELECT statement_no, rule, severity, lock_mode, details->>'source',
           (details->'trace'->>'ran')::boolean, details->'trace' ? 'skipped',
           details->'trace'->'rewritten',
           (SELECT string_agg(l->>'object' || ' ' || (l->>'mode'), ', ' ORDER BY l->>'object', l->>'mode')
            FROM jsonb_array_elements(details->'trace'->'locks') l
            WHERE l->>'object' NOT LIKE 'pg_toast.%'),
           details->'trace'->>'sqlstate'
    FROM virtuoso.lint_migration(sql, true)
$$;

-- A volatile default: the rewrite is seen (relfilenode changed).
SELECT * FROM lint_tr.traced('SET lock_timeout = ''1s''; ALTER TABLE parent ADD COLUMN r float8 DEFAULT random()');
-- A VOLATILE SQL function inlined to a constant: no rewrite, as the static analysis said.
SELECT * FROM lint_tr.traced('SET lock_timeout = ''1s''; ALTER TABLE parent ADD COLUMN c int DEFAULT lint_tr.vol_sql()');
-- A binary-coercible type change: no rewrite; a narrowing one: rewrite.
SELECT * FROM lint_tr.traced('SET lock_timeout = ''1s''; ALTER TABLE child ALTER COLUMN code TYPE varchar(20)');
SELECT * FROM lint_tr.traced('SET lock_timeout = ''1s''; ALTER TABLE child ALTER COLUMN code TYPE varchar(5)');
-- A foreign key: the lock on the referenced table is seen too.
SELECT * FROM lint_tr.traced('SET lock_timeout = ''1s''; ALTER TABLE child ADD CONSTRAINT child_fk FOREIGN KEY (parent_id) REFERENCES parent (id)');
-- Statements that build on earlier ones run in order; a failing one is reported, not fatal.
SELECT * FROM lint_tr.traced('SET lock_timeout = ''1s''; CREATE TABLE fresh (id bigint PRIMARY KEY); INSERT INTO fresh VALUES (1); ALTER TABLE fresh ADD COLUMN n int NOT NULL; CREATE INDEX ON fresh (id)');
-- CONCURRENTLY cannot run in the trace's subtransaction: reported, not run.
SELECT * FROM lint_tr.traced('CREATE INDEX CONCURRENTLY ON parent (v)');
-- A DO block cannot be analysed statically; the trace shows what it locked.
SELECT * FROM lint_tr.traced('SET lock_timeout = ''1s''; DO $d$ BEGIN EXECUTE ''LOCK TABLE lint_tr.parent IN EXCLUSIVE MODE''; END $d$');

-- Nothing is left behind: no new column, table, constraint, lock or rewritten file.
SELECT attname FROM pg_attribute WHERE attrelid = 'lint_tr.parent'::regclass AND attnum > 0 ORDER BY attnum;
SELECT to_regclass('lint_tr.fresh') AS fresh;
SELECT count(*) AS constraints FROM pg_constraint WHERE conrelid = 'lint_tr.child'::regclass AND contype = 'f';
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'lint_tr.child'::regclass AND attname = 'code';
SELECT relfilenode = :parent_node AS same_file FROM pg_class WHERE oid = 'lint_tr.parent'::regclass;
SELECT count(*) AS locks_left FROM pg_locks
WHERE pid = pg_backend_pid() AND locktype = 'relation'
  AND relation IN ('lint_tr.parent'::regclass, 'lint_tr.child'::regclass);

-- The trace runs the migration: a read-only transaction refuses it (static lint works).
BEGIN READ ONLY;
SELECT count(*) > 0 AS static_ok FROM virtuoso.lint_migration('ALTER TABLE lint_tr.parent ADD COLUMN z int');
SELECT * FROM virtuoso.lint_migration('ALTER TABLE lint_tr.parent ADD COLUMN z int', true);
ROLLBACK;

-- No plan cache growth per call: the linter's own SQL is fixed text, prepared once.
SELECT count(*) FROM virtuoso.lint_migration('ALTER TABLE lint_tr.child ADD CONSTRAINT f FOREIGN KEY (parent_id) REFERENCES lint_tr.parent (id) NOT VALID');
SELECT count(*) AS plans FROM pg_backend_memory_contexts WHERE name IN ('CachedPlan', 'CachedPlanSource') \gset
SELECT count(*) FROM generate_series(1, 20), virtuoso.lint_migration('ALTER TABLE lint_tr.child ADD CONSTRAINT f FOREIGN KEY (parent_id) REFERENCES lint_tr.parent (id) NOT VALID');
SELECT count(*) - :plans AS plans_added FROM pg_backend_memory_contexts WHERE name IN ('CachedPlan', 'CachedPlanSource');
-- The statement's text is in the details, cut at a character boundary.
SELECT details->>'sql' AS sql, octet_length(details->>'sql') AS bytes
FROM virtuoso.lint_migration('UPDATE lint_tr.parent SET v = 1 WHERE v::text = ''' || repeat('é', 150) || '''')
WHERE rule = 'lock';

-- A cancel (here statement_timeout) ends the lint and reaches the caller: it is not one
-- statement's trace error or one statement's failed description to report and go on from.
\set VERBOSITY terse
SET statement_timeout = '1s';
SELECT statement_no, rule FROM virtuoso.lint_migration('SELECT pg_sleep(30); SELECT 1', true);
RESET statement_timeout;
-- A default that is folded while the statement is described runs the function.
CREATE FUNCTION lint_tr.slow_default() RETURNS int IMMUTABLE LANGUAGE plpgsql
AS $f$ BEGIN PERFORM pg_sleep(30); RETURN 1; END $f$;
SET statement_timeout = '1s';
SELECT statement_no, rule FROM virtuoso.lint_migration('ALTER TABLE lint_tr.parent ADD COLUMN slow int DEFAULT lint_tr.slow_default()');
RESET statement_timeout;
\set VERBOSITY default
DROP FUNCTION lint_tr.slow_default();
