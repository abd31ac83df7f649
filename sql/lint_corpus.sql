-- lint_migration: a corpus of dangerous statements (each must be flagged with its rule,
-- as error or warning, with the lock PostgreSQL takes) and of safe counterparts (no error
-- and no warning), over tables of realistic size, a partitioned table, user-defined
-- volatile functions and a domain with a constraint.
SET timezone = 'America/New_York';
CREATE SCHEMA lint_t;
SET search_path = lint_t, public;
CREATE FUNCTION lint_t.vol() RETURNS int LANGUAGE plpgsql VOLATILE AS 'BEGIN RETURN 1; END';
-- A VOLATILE SQL function whose body is a constant is inlined by the planner: PostgreSQL
-- stores a missing value and does not rewrite (safe case 67, checked by trace in lint_trace).
CREATE FUNCTION lint_t.vol_sql() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1';
CREATE FUNCTION lint_t.imm() RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT 7::bigint';
CREATE DOMAIN lint_t.positive_int AS int CHECK (VALUE > 0);
CREATE TYPE lint_t.mood AS ENUM ('happy');
CREATE TABLE accounts (id bigint PRIMARY KEY, email text, balance int, created timestamptz,
                       note text, status text,
                       CONSTRAINT status_present CHECK (status IS NOT NULL),
                       CONSTRAINT note_short CHECK (length(note) < 100));
INSERT INTO accounts SELECT g, 'user' || g || '@example.com', g % 1000, now(), 'n' || g, 'ok'
FROM generate_series(1, 20000) g;
CREATE INDEX accounts_created_idx ON accounts (created);
CREATE UNIQUE INDEX accounts_email_uidx ON accounts (email);
ALTER TABLE accounts ADD CONSTRAINT balance_sane CHECK (balance < 1000000) NOT VALID;
CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint, amount numeric(10,2),
                     code varchar(20), placed timestamptz);
INSERT INTO orders SELECT g, 1 + g % 20000, g / 100.0, 'c' || g, now() FROM generate_series(1, 20000) g;
CREATE INDEX orders_account_id_idx ON orders (account_id);
ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id)
    REFERENCES accounts (id) NOT VALID;
CREATE TABLE payments (id bigint PRIMARY KEY, account_id bigint, amount numeric);
INSERT INTO payments SELECT g, 1 + g % 20000, g FROM generate_series(1, 20000) g;
CREATE TABLE events (id bigint, ts timestamptz NOT NULL, payload text) PARTITION BY RANGE (ts);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO events SELECT g, '2024-01-01'::timestamptz + g * interval '30 minutes', 'p' || g
FROM generate_series(1, 30000) g;
CREATE TABLE events_stage (id bigint, ts timestamptz NOT NULL, payload text,
    CONSTRAINT in_2026 CHECK (ts >= '2026-01-01' AND ts < '2027-01-01'));
CREATE TABLE empty_t (x int);
CREATE TABLE tiny_t (x int);
INSERT INTO tiny_t SELECT generate_series(1, 10);
CREATE MATERIALIZED VIEW mv AS SELECT status, count(*) AS n FROM accounts GROUP BY status;
CREATE UNIQUE INDEX mv_status ON mv (status);
ANALYZE;

-- Each corpus statement is linted on its own, after SET lock_timeout (the statements about
-- lock_timeout itself start with "--raw").
CREATE TABLE lint_t.dangerous (id int PRIMARY KEY, sql text, rule text, lock text);
INSERT INTO lint_t.dangerous VALUES
 (1, 'CREATE INDEX ON accounts (balance)', 'create_index_not_concurrent', 'SHARE'),
 (2, 'CREATE UNIQUE INDEX ON accounts (id, balance)', 'create_index_not_concurrent', 'SHARE'),
 (3, 'CREATE INDEX ON events (ts)', 'create_index_not_concurrent', 'SHARE'),
 (4, 'CREATE INDEX CONCURRENTLY ON events (payload)', 'concurrently_on_partitioned_table', 'SHARE UPDATE EXCLUSIVE'),
 (5, 'DROP INDEX accounts_created_idx', 'drop_index_not_concurrent', 'ACCESS EXCLUSIVE'),
 (6, 'REINDEX TABLE accounts', 'reindex_not_concurrent', 'SHARE'),
 (7, 'REINDEX INDEX accounts_pkey', 'reindex_not_concurrent', 'SHARE'),
 (8, 'ALTER TABLE accounts ADD CONSTRAINT positive CHECK (balance >= 0)', 'constraint_without_not_valid', 'ACCESS EXCLUSIVE'),
 (9, 'ALTER TABLE payments ADD CONSTRAINT p_fk FOREIGN KEY (account_id) REFERENCES accounts (id)', 'foreign_key_without_not_valid', 'SHARE ROW EXCLUSIVE'),
 (10, 'ALTER TABLE payments ADD CONSTRAINT p_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID', 'foreign_key_without_index', NULL),
 (11, 'ALTER TABLE accounts ADD CONSTRAINT email_unique UNIQUE (email)', 'constraint_builds_index', 'ACCESS EXCLUSIVE'),
 (12, 'ALTER TABLE payments ADD CONSTRAINT one_amount EXCLUDE USING btree (amount WITH =)', 'constraint_builds_index', 'ACCESS EXCLUSIVE'),
 (13, 'ALTER TABLE accounts ADD COLUMN seen timestamptz DEFAULT clock_timestamp()', 'add_column_volatile_default', 'ACCESS EXCLUSIVE'),
 (14, 'ALTER TABLE accounts ADD COLUMN token uuid DEFAULT gen_random_uuid()', 'add_column_volatile_default', 'ACCESS EXCLUSIVE'),
 (15, 'ALTER TABLE accounts ADD COLUMN r float8 DEFAULT random()', 'add_column_volatile_default', 'ACCESS EXCLUSIVE'),
 (16, 'ALTER TABLE accounts ADD COLUMN v int DEFAULT lint_t.vol()', 'add_column_volatile_default', 'ACCESS EXCLUSIVE'),
 (17, 'ALTER TABLE accounts ADD COLUMN s serial', 'add_column_rewrites_table', 'ACCESS EXCLUSIVE'),
 (18, 'ALTER TABLE accounts ADD COLUMN s bigserial', 'add_column_rewrites_table', 'ACCESS EXCLUSIVE'),
 (19, 'ALTER TABLE accounts ADD COLUMN i bigint GENERATED ALWAYS AS IDENTITY', 'add_column_rewrites_table', 'ACCESS EXCLUSIVE'),
 (20, 'ALTER TABLE accounts ADD COLUMN g int GENERATED ALWAYS AS (balance * 2) STORED', 'add_column_rewrites_table', 'ACCESS EXCLUSIVE'),
 (21, 'ALTER TABLE accounts ADD COLUMN d lint_t.positive_int DEFAULT 1', 'add_column_rewrites_table', 'ACCESS EXCLUSIVE'),
 (22, 'ALTER TABLE accounts ADD COLUMN n int NOT NULL', 'add_column_not_null_without_default', 'ACCESS EXCLUSIVE'),
 (23, 'ALTER TABLE accounts ALTER COLUMN balance TYPE bigint', 'column_type_change_rewrites', 'ACCESS EXCLUSIVE'),
 (24, 'ALTER TABLE orders ALTER COLUMN code TYPE varchar(10)', 'column_type_change_rewrites', 'ACCESS EXCLUSIVE'),
 (25, 'ALTER TABLE accounts ALTER COLUMN email TYPE varchar(100)', 'column_type_change_rewrites', 'ACCESS EXCLUSIVE'),
 (26, 'ALTER TABLE orders ALTER COLUMN amount TYPE numeric(8,2)', 'column_type_change_rewrites', 'ACCESS EXCLUSIVE'),
 (27, 'ALTER TABLE accounts ALTER COLUMN created TYPE timestamp', 'column_type_change_rewrites', 'ACCESS EXCLUSIVE'),
 (28, 'ALTER TABLE accounts ALTER COLUMN balance TYPE text', 'column_type_change_rewrites', 'ACCESS EXCLUSIVE'),
 (29, 'ALTER TABLE accounts ALTER COLUMN note TYPE int USING length(note)', 'column_type_change_rewrites', 'ACCESS EXCLUSIVE'),
 (30, 'ALTER TABLE accounts ALTER COLUMN balance SET NOT NULL', 'set_not_null_scans', 'ACCESS EXCLUSIVE'),
 (31, 'ALTER TABLE accounts SET UNLOGGED', 'set_unlogged', 'ACCESS EXCLUSIVE'),
 (32, 'VACUUM FULL accounts', 'vacuum_full', 'ACCESS EXCLUSIVE'),
 (33, 'CLUSTER accounts USING accounts_pkey', 'cluster', 'ACCESS EXCLUSIVE'),
 (34, 'LOCK TABLE accounts', 'lock_table', 'ACCESS EXCLUSIVE'),
 (35, 'LOCK TABLE accounts IN SHARE MODE', 'lock_table', 'SHARE'),
 (36, 'TRUNCATE accounts CASCADE', 'truncate_cascade', 'ACCESS EXCLUSIVE'),
 (37, 'TRUNCATE orders', 'truncate', 'ACCESS EXCLUSIVE'),
 (38, 'UPDATE accounts SET balance = 0', 'unbounded_update', 'ROW EXCLUSIVE'),
 (39, 'DELETE FROM orders', 'unbounded_delete', 'ROW EXCLUSIVE'),
 (40, 'ALTER TABLE events DETACH PARTITION events_2024', 'detach_partition_not_concurrent', 'ACCESS EXCLUSIVE'),
 (41, 'CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM (''2026-01-01'') TO (''2027-01-01'')', 'create_partition_locks_parent', 'ACCESS EXCLUSIVE'),
 (42, 'ALTER TABLE accounts RENAME TO customers', 'rename_table', 'ACCESS EXCLUSIVE'),
 (43, 'ALTER TABLE accounts RENAME COLUMN email TO mail', 'rename_column', 'ACCESS EXCLUSIVE'),
 (44, 'ALTER TABLE accounts DROP COLUMN note', 'drop_column', 'ACCESS EXCLUSIVE'),
 (45, 'DROP TABLE payments', 'drop_table', 'ACCESS EXCLUSIVE'),
 (46, 'REFRESH MATERIALIZED VIEW mv', 'refresh_materialized_view', 'ACCESS EXCLUSIVE'),
 (47, 'CREATE TABLE t1 (id int PRIMARY KEY, name text)', 'prefer_bigint_key', NULL),
 (48, 'CREATE TABLE t1 (id serial PRIMARY KEY)', 'prefer_bigint_key', NULL),
 (49, 'CREATE TABLE t1 (id bigint PRIMARY KEY, doc json)', 'prefer_jsonb', NULL),
 (50, 'CREATE TABLE t1 (id bigint PRIMARY KEY, code char(3))', 'prefer_text_over_char', NULL),
 (51, 'CREATE TABLE t1 (id bigint PRIMARY KEY, at timestamp)', 'prefer_timestamptz', NULL),
 (52, 'CREATE TABLE t1 (id bigserial PRIMARY KEY)', 'prefer_identity', NULL),
 (53, 'ALTER TABLE accounts ADD COLUMN meta json', 'prefer_jsonb', NULL),
 (54, 'CREATE TABLE t1 (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts)', 'foreign_key_without_index', NULL),
 (55, 'ALTER TABLE accounts ALTER COLUMN status TYPE char(5)', 'column_type_change_rewrites', 'ACCESS EXCLUSIVE'),
 (56, 'ALTER TABLE accounts ADD COLUMN a int; UPDATE accounts SET balance = 1 WHERE id = 1', 'statements_after_access_exclusive', 'ACCESS EXCLUSIVE'),
 (57, 'ALTER TABLE accounts ADD CONSTRAINT c CHECK (balance > 0) NOT VALID; ALTER TABLE accounts VALIDATE CONSTRAINT c', 'validate_in_same_transaction', 'SHARE UPDATE EXCLUSIVE'),
 (58, 'BEGIN; CREATE INDEX CONCURRENTLY ON accounts (status); COMMIT', 'concurrently_in_transaction', 'SHARE UPDATE EXCLUSIVE'),
 (59, 'BEGIN; VACUUM accounts; COMMIT', 'vacuum_in_transaction', 'SHARE UPDATE EXCLUSIVE'),
 (60, 'BEGIN; BEGIN; COMMIT', 'transaction_nesting', NULL),
 (61, '--raw
ALTER TABLE accounts ADD COLUMN x int', 'missing_lock_timeout', 'ACCESS EXCLUSIVE'),
 (62, 'DROP SCHEMA lint_gone CASCADE', 'drop_schema_cascade', NULL),
 (63, 'ALTER DOMAIN lint_t.positive_int ADD CONSTRAINT small CHECK (VALUE < 1000000)', 'alter_domain_add_constraint', NULL),
 (64, 'ALTER TABLE events ADD COLUMN r float8 DEFAULT random()', 'add_column_volatile_default', 'ACCESS EXCLUSIVE'),
 (65, 'ALTER TABLE events ALTER COLUMN payload TYPE int USING 0', 'column_type_change_rewrites', 'ACCESS EXCLUSIVE'),
 (66, 'ALTER TABLE orders ADD COLUMN account2 bigint REFERENCES accounts (id)', 'foreign_key_without_not_valid', 'ACCESS EXCLUSIVE'),
 (67, 'ALTER TABLE accounts ADD PRIMARY KEY USING INDEX accounts_email_uidx, ADD CONSTRAINT b CHECK (balance > -1)', 'constraint_without_not_valid', 'ACCESS EXCLUSIVE'),
 (68, 'ALTER TABLE accounts ALTER COLUMN created TYPE timestamptz, ALTER COLUMN balance TYPE numeric', 'column_type_change_rewrites', 'ACCESS EXCLUSIVE'),
 (69, 'UPDATE events SET payload = ''x''', 'unbounded_update', 'ROW EXCLUSIVE'),
 (70, 'ALTER TABLE accounts SET LOGGED', 'set_logged', 'ACCESS EXCLUSIVE'),
 (71, 'EXPLAIN (ANALYZE, COSTS OFF) DELETE FROM orders', 'unbounded_delete', 'ROW EXCLUSIVE'),
 (72, 'REINDEX SCHEMA lint_t', 'reindex_not_concurrent', 'SHARE');

-- Every dangerous statement gets its rule, as error or warning, with the lock.
SELECT d.id, d.rule, f.severity, f.lock_mode
FROM lint_t.dangerous d
LEFT JOIN LATERAL (
    SELECT * FROM virtuoso.lint_migration(
        CASE WHEN d.sql LIKE '--raw%' THEN d.sql ELSE 'SET lock_timeout = ''2s''; ' || d.sql END) l
    WHERE l.rule = d.rule ORDER BY l.statement_no LIMIT 1) f ON true
ORDER BY d.id;
-- None is missed, none has the wrong lock or a severity below warning.
SELECT count(*) AS dangerous_statements,
       count(*) FILTER (WHERE f.rule IS NULL OR f.severity NOT IN ('error', 'warning')
                              OR f.lock_mode IS DISTINCT FROM d.lock) AS missed
FROM lint_t.dangerous d
LEFT JOIN LATERAL (
    SELECT * FROM virtuoso.lint_migration(
        CASE WHEN d.sql LIKE '--raw%' THEN d.sql ELSE 'SET lock_timeout = ''2s''; ' || d.sql END) l
    WHERE l.rule = d.rule ORDER BY l.statement_no LIMIT 1) f ON true;

CREATE TABLE lint_t.safe (id int PRIMARY KEY, sql text);
INSERT INTO lint_t.safe VALUES
 (1, 'CREATE INDEX CONCURRENTLY accounts_balance_idx ON accounts (balance)'),
 (2, 'CREATE UNIQUE INDEX CONCURRENTLY ON accounts (id, balance)'),
 (3, 'DROP INDEX CONCURRENTLY accounts_created_idx'),
 (4, 'REINDEX INDEX CONCURRENTLY accounts_pkey'),
 (5, 'REINDEX TABLE CONCURRENTLY accounts'),
 (6, 'ALTER TABLE accounts ADD CONSTRAINT positive CHECK (balance >= 0) NOT VALID'),
 (7, 'ALTER TABLE accounts VALIDATE CONSTRAINT balance_sane'),
 (8, 'ALTER TABLE orders ADD CONSTRAINT o_fk2 FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID'),
 (9, 'ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk'),
 (10, 'ALTER TABLE accounts ADD CONSTRAINT email_unique UNIQUE USING INDEX accounts_email_uidx'),
 (11, 'ALTER TABLE accounts ADD COLUMN c1 text'),
 (12, 'ALTER TABLE accounts ADD COLUMN c2 int DEFAULT 0'),
 (13, 'ALTER TABLE accounts ADD COLUMN c3 timestamptz DEFAULT now()'),
 (14, 'ALTER TABLE accounts ADD COLUMN c4 text NOT NULL DEFAULT ''x'''),
 (15, 'ALTER TABLE accounts ADD COLUMN c5 bigint DEFAULT lint_t.imm()'),
 (16, 'ALTER TABLE accounts ADD COLUMN c6 boolean DEFAULT (1 < 2)'),
 (17, 'ALTER TABLE accounts ADD COLUMN c7 timestamptz DEFAULT CASE WHEN 1 = 1 THEN now() ELSE clock_timestamp() END'),
 (18, 'ALTER TABLE accounts ADD COLUMN c8 jsonb DEFAULT ''{}'''),
 (19, 'ALTER TABLE accounts ADD COLUMN c9 text[] DEFAULT ''{}'''),
 (20, 'ALTER TABLE orders ALTER COLUMN code TYPE varchar(40)'),
 (21, 'ALTER TABLE orders ALTER COLUMN code TYPE text'),
 (22, 'ALTER TABLE accounts ALTER COLUMN email TYPE text'),
 (23, 'ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12,2)'),
 (24, 'ALTER TABLE orders ALTER COLUMN amount TYPE numeric'),
 (25, 'ALTER TABLE accounts ALTER COLUMN status SET NOT NULL'),
 (26, 'ALTER TABLE accounts ALTER COLUMN note SET NOT NULL'),
 (27, 'ALTER TABLE accounts ALTER COLUMN id SET NOT NULL'),
 (28, 'ALTER TABLE accounts ALTER COLUMN note DROP NOT NULL'),
 (29, 'ALTER TABLE accounts ALTER COLUMN status SET DEFAULT ''new'''),
 (30, 'ALTER TABLE accounts ALTER COLUMN status DROP DEFAULT'),
 (31, 'ALTER TABLE accounts DROP CONSTRAINT balance_sane'),
 (32, 'ALTER TABLE events DETACH PARTITION events_2024 CONCURRENTLY'),
 (33, 'ALTER TABLE events ATTACH PARTITION events_stage FOR VALUES FROM (''2026-01-01'') TO (''2027-01-01'')'),
 (34, 'CREATE TABLE t2 (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text, at timestamptz, doc jsonb)'),
 (35, 'CREATE TABLE t2 (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id)); CREATE INDEX ON t2 (account_id)'),
 (36, 'CREATE TABLE t2 (LIKE accounts INCLUDING ALL)'),
 (37, 'INSERT INTO accounts (id, email) VALUES (100001, ''a@b.c'')'),
 (38, 'UPDATE accounts SET balance = 1 WHERE id = 5'),
 (39, 'DELETE FROM orders WHERE id < 100'),
 (40, 'UPDATE tiny_t SET x = 1'),
 (41, 'DELETE FROM empty_t'),
 (42, 'CREATE INDEX ON empty_t (x)'),
 (43, 'VACUUM accounts'),
 (44, 'ANALYZE accounts'),
 (45, 'REFRESH MATERIALIZED VIEW CONCURRENTLY mv'),
 (46, 'CREATE VIEW rich AS SELECT id FROM accounts WHERE balance > 900'),
 (47, 'CREATE FUNCTION lint_t.f2() RETURNS int LANGUAGE sql AS ''SELECT 2'''),
 (48, 'COMMENT ON TABLE accounts IS ''customers'''),
 (49, 'GRANT SELECT ON accounts TO PUBLIC'),
 (50, 'CREATE SEQUENCE s2'),
 (51, 'CREATE TYPE mood2 AS ENUM (''a'', ''b'')'),
 (52, 'ALTER TYPE lint_t.mood ADD VALUE ''sad'''),
 (53, 'CREATE SCHEMA lint_new'),
 (54, 'SET statement_timeout = ''5s'''),
 (55, 'CREATE TABLE p2 (id bigint, ts timestamptz) PARTITION BY RANGE (ts); CREATE TABLE p2_a PARTITION OF p2 FOR VALUES FROM (''2020-01-01'') TO (''2021-01-01'')'),
 (56, 'ALTER TABLE accounts ALTER COLUMN note SET STATISTICS 500'),
 (57, 'ALTER TABLE accounts SET (autovacuum_vacuum_scale_factor = 0.01)'),
 (58, 'CREATE TRIGGER t BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()'),
 (59, 'ALTER TABLE accounts ADD COLUMN c10 varchar(20)'),
 (60, 'ALTER TABLE accounts RENAME CONSTRAINT balance_sane TO balance_ok'),
 (61, 'ALTER INDEX accounts_created_idx RENAME TO accounts_created_at_idx'),
 (62, 'CREATE STATISTICS s_ab ON balance, status FROM accounts'),
 (63, 'BEGIN; ALTER TABLE accounts ADD CONSTRAINT nn CHECK (balance IS NOT NULL) NOT VALID; COMMIT; ALTER TABLE accounts VALIDATE CONSTRAINT nn; ALTER TABLE accounts ALTER COLUMN balance SET NOT NULL'),
 (64, 'ALTER TABLE empty_t ADD COLUMN y float8 DEFAULT random()'),
 (65, 'CREATE TABLE t3 (id bigint PRIMARY KEY); ALTER TABLE t3 ADD COLUMN n int NOT NULL; CREATE INDEX ON t3 (n)'),
 (66, 'ALTER TABLE empty_t ALTER COLUMN x TYPE text'),
 (67, 'ALTER TABLE accounts ADD COLUMN c11 int DEFAULT lint_t.vol_sql()');

-- No error and no warning for any of them.
SELECT s.id, l.rule, l.severity, l.message
FROM lint_t.safe s,
     LATERAL virtuoso.lint_migration('SET lock_timeout = ''2s''; ' || s.sql) l
WHERE l.severity IN ('error', 'warning')
ORDER BY s.id, l.statement_no;
SELECT count(*) AS safe_statements FROM lint_t.safe;
-- What the linter says about some of them (info rows: locks, proofs, lowered severities).
SELECT s.id, l.rule, l.severity, l.lock_mode, l.message
FROM lint_t.safe s,
     LATERAL virtuoso.lint_migration('SET lock_timeout = ''2s''; ' || s.sql) l
WHERE s.id IN (12, 17, 20, 23, 25, 26, 33, 40, 41, 63, 64, 67)
ORDER BY s.id, l.statement_no, l.rule;
-- A tiny table lowers the severity one level and says why.
SELECT rule, severity, message
FROM virtuoso.lint_migration('SET lock_timeout = ''2s''; ALTER TABLE tiny_t ADD COLUMN y float8 DEFAULT random()')
WHERE rule <> 'lock';

-- The static lock modes are PostgreSQL's: running each dangerous statement (trace, rolled
-- back) takes exactly that lock on its table.  Listed: the statements where they differ,
-- leaving out those the trace cannot run and those whose table is gone or renamed after.
CREATE TEMP TABLE lock_modes (n int, name text);
INSERT INTO lock_modes VALUES (1, 'ACCESS SHARE'), (2, 'ROW SHARE'), (3, 'ROW EXCLUSIVE'),
    (4, 'SHARE UPDATE EXCLUSIVE'), (5, 'SHARE'), (6, 'SHARE ROW EXCLUSIVE'), (7, 'EXCLUSIVE'),
    (8, 'ACCESS EXCLUSIVE');
WITH traced AS (
    SELECT d.id, d.rule, d.lock AS static_lock, l.object, l.details->'trace'->>'ran' AS ran,
           (SELECT m.name FROM jsonb_array_elements(l.details->'trace'->'locks') t
            JOIN lock_modes m ON m.name = t->>'mode'
            WHERE t->>'object' = l.object ORDER BY m.n DESC LIMIT 1) AS traced_lock
    FROM lint_t.dangerous d,
         LATERAL virtuoso.lint_migration(
             CASE WHEN d.sql LIKE '--raw%' THEN d.sql ELSE 'SET lock_timeout = ''2s''; ' || d.sql END,
             true) l
    WHERE l.rule = d.rule AND d.lock IS NOT NULL
      AND d.rule NOT IN ('rename_table', 'drop_table', 'statements_after_access_exclusive'))
SELECT count(*) FILTER (WHERE ran = 'true') AS traced_statements,
       count(*) FILTER (WHERE ran = 'true' AND traced_lock IS DISTINCT FROM static_lock) AS differ
FROM traced;

-- Statements the linter cannot analyse, or whose relation is missing, get an info row:
-- never silence.
SELECT l.statement_no, l.rule, l.severity
FROM virtuoso.lint_migration($m$
SET lock_timeout = '2s';
DO $d$ BEGIN EXECUTE 'DROP TABLE lint_t.accounts'; END $d$;
SELECT lint_t.vol();
CALL no_such_procedure();
UPDATE accounts SET balance = lint_t.vol() WHERE id = 1;
CREATE INDEX ON no_such_table (a);
ALTER TABLE other_db.s.t ADD COLUMN x int;
EXPLAIN SELECT 1;
$m$) l
ORDER BY 1, 2;
