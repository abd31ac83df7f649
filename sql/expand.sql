-- virtuoso.expand_column_change, contract_column_change, abort_column_change (issue 14)
\set SHOW_CONTEXT never
CREATE TABLE ec (id int PRIMARY KEY, v int NOT NULL DEFAULT 7, s text, r int);
INSERT INTO ec SELECT g, g, 's' || g, g % 10 FROM generate_series(1, 3000) g;
CREATE VIEW ec_attrs AS
SELECT attnum, attname, format_type(atttypid, atttypmod) AS type, attnotnull,
       pg_get_expr(d.adbin, d.adrelid) AS default_expr
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE attrelid = 'ec'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;

-- Bad input: refused with its SQLSTATE before anything changes.
CALL virtuoso.expand_column_change('ec', 'nope', 'bigint');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ec', 'v', 'date');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ec', 'v', 'no_such_type');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ec', 'v', 'bigint', up_expression => 'v +');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ec', 'v', 'bigint', up_expression => 'v) FROM pg_class WHERE (true');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ec', 'v', 'bigint', up_expression => '(SELECT 1)');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ec', 'v', 'bigint', up_expression => 'v + r');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ec', 'v', 'bigint', down_expression => 'v::date');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ec', 'v', 'integer');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ec', 'v', 'bigint', new_column_name => 'r');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ec', 'v', 'bigint', batch_size => 0);
\echo :LAST_ERROR_SQLSTATE
-- What expand cannot carry over is refused before anything changes (0A000, naming it):
-- a foreign key of the column itself,
CREATE TABLE ec_child (pid int REFERENCES ec (id), note text);
CALL virtuoso.expand_column_change('ec_child', 'pid', 'bigint');
\echo :LAST_ERROR_SQLSTATE
-- a foreign key that could not reference the new type,
CALL virtuoso.expand_column_change('ec', 'id', 'text');
\echo :LAST_ERROR_SQLSTATE
-- a CHECK constraint that does not type-check with the new type,
ALTER TABLE ec ADD CONSTRAINT ec_s_len CHECK (length(s) > 0);
CALL virtuoso.expand_column_change('ec', 's', 'integer', up_expression => 'length(s)');
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE ec DROP CONSTRAINT ec_s_len;
-- A cancel (here statement_timeout) while a CHECK is type-checked for the new type ends the
-- call as a cancel: it is not the constraint's failure to refuse the change for (0A000).
CREATE FUNCTION ec_slow_check(bigint) RETURNS boolean IMMUTABLE LANGUAGE plpgsql
AS $f$ BEGIN PERFORM pg_sleep(30); RETURN true; END $f$;
ALTER TABLE ec ADD CONSTRAINT ec_r_slow CHECK (ec_slow_check(r)) NOT VALID;
SET statement_timeout = '1s';
CALL virtuoso.expand_column_change('ec', 'r', 'bigint');
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
ALTER TABLE ec DROP CONSTRAINT ec_r_slow;
DROP FUNCTION ec_slow_check(bigint);
-- an exclusion constraint, a view, a generated column, an identity column to a type that
-- cannot be an identity (to bigint it is carried over: see the end).
CREATE TABLE ecx (a int, b int GENERATED ALWAYS AS (a * 2) STORED, c int GENERATED ALWAYS AS IDENTITY,
                  d int, e int, EXCLUDE USING btree (d WITH =));
CREATE VIEW ecx_e AS SELECT e FROM ecx;
CALL virtuoso.expand_column_change('ecx', 'a', 'bigint');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ecx', 'b', 'bigint');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ecx', 'c', 'text');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ecx', 'd', 'bigint');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.expand_column_change('ecx', 'e', 'bigint');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM pg_attribute WHERE attrelid = 'ecx'::regclass AND attnum > 0;
DROP TABLE ecx CASCADE;
DROP TABLE ec_child;  -- its RI triggers on ec would count below
-- So is an index with a sort option.
CREATE INDEX ec_r_desc ON ec (r DESC);
CALL virtuoso.expand_column_change('ec', 'r', 'bigint');
\echo :LAST_ERROR_SQLSTATE
DROP INDEX ec_r_desc;
BEGIN;
CALL virtuoso.expand_column_change('ec', 'v', 'bigint');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SET ROLE regress_virtuoso_user;
CALL virtuoso.expand_column_change('ec', 'v', 'bigint');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM ec_attrs;
SELECT count(*) FROM virtuoso.column_changes;
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'ec'::regclass;

-- int -> bigint: expand (column, trigger, backfill in batches, parity), READY.
-- Plain indexes of the column are copied concurrently for the new one.
CREATE INDEX ec_v_idx ON ec (v);
CREATE UNIQUE INDEX ec_id_v ON ec (id, v) INCLUDE (r);
CREATE VIEW ec_indexes AS
SELECT indexrelid::regclass::text AS index, pg_get_indexdef(indexrelid) AS def, indisvalid
FROM pg_index WHERE indrelid = 'ec'::regclass ORDER BY 1;
SELECT sum(v) AS sum_before FROM ec \gset
CALL virtuoso.expand_column_change('ec', 'v', 'bigint', batch_size => 500);
SELECT change_id, table_name, old_column, new_column, working_column, new_type, phase,
       rows_backfilled, rows_differing, message
FROM virtuoso.column_changes WHERE change_id = 'cc1';
SELECT count(*) FROM ec WHERE v_cc1 IS DISTINCT FROM v;
-- Writers of either column are kept in agreement.
INSERT INTO ec (id, v) VALUES (3001, 42);
INSERT INTO ec (id, v_cc1) VALUES (3002, 43);
INSERT INTO ec (id) VALUES (3003);
UPDATE ec SET v = v + 1 WHERE id = 1;
UPDATE ec SET v_cc1 = 100 WHERE id = 2;
UPDATE ec SET s = 'x' WHERE id = 3;
SELECT id, v, v_cc1 FROM ec WHERE id IN (1, 2, 3, 3001, 3002, 3003) ORDER BY id;
-- Contract: the new column takes the name, the default and NOT NULL; the old one is gone.
SELECT sum(v) AS sum_mid FROM ec \gset
CALL virtuoso.contract_column_change('cc1');
SELECT * FROM ec_attrs;
SELECT * FROM ec_indexes;
SELECT sum(v) = :sum_mid AS same_sum, :sum_mid - :sum_before AS added FROM ec;
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'ec'::regclass;
SELECT phase, finished_at IS NOT NULL AS finished FROM virtuoso.column_changes WHERE change_id = 'cc1';
INSERT INTO ec (id) VALUES (3004);
SELECT v FROM ec WHERE id = 3004;
CALL virtuoso.contract_column_change('cc1');
\echo :LAST_ERROR_SQLSTATE
SELECT virtuoso.abort_column_change('cc1');
\echo :LAST_ERROR_SQLSTATE
CALL virtuoso.contract_column_change('cc999');
\echo :LAST_ERROR_SQLSTATE
SELECT virtuoso.abort_column_change('cc99999999999');
\echo :LAST_ERROR_SQLSTATE
SELECT virtuoso.abort_column_change('x');
\echo :LAST_ERROR_SQLSTATE

-- A rename with mappings both ways: s -> label.
CALL virtuoso.expand_column_change('ec', 's', 'text', up_expression => 'upper(s)',
    down_expression => 'lower(label)', new_column_name => 'label');
INSERT INTO ec (id, v, label) VALUES (3005, 1, 'NEW');
SELECT id, s, label FROM ec WHERE id IN (1, 3005) ORDER BY id;
SELECT phase, rows_differing FROM virtuoso.column_changes WHERE change_id = 'cc2';
-- (the statements above name column s: forget them, so that what pg_stat_statements saw in
-- earlier tests of the schedule does not decide the output below)
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS has_pss \gset
\if :has_pss
SELECT count(*) >= 0 AS pss_reset FROM pg_stat_statements_reset() r \gset
\endif
-- Contract refuses while the sync trigger is disabled: rows may have drifted.
ALTER TABLE ec DISABLE TRIGGER virtuoso_cc2_sync;
CALL virtuoso.contract_column_change('cc2');
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE ec ENABLE TRIGGER virtuoso_cc2_sync;
CALL virtuoso.contract_column_change('cc2');
SELECT * FROM ec_attrs;

-- Abort: the table is as before (columns, triggers, constraints).
CREATE TEMP TABLE before_abort AS SELECT * FROM ec_attrs;
CREATE TEMP TABLE indexes_before_abort AS SELECT * FROM ec_indexes;
CALL virtuoso.expand_column_change('ec', 'r', 'numeric(12,2)');
SELECT count(*) FROM ec_indexes;
SELECT phase FROM virtuoso.column_changes WHERE change_id = 'cc3';
SELECT virtuoso.abort_column_change('cc3');
SELECT (SELECT count(*) FROM (SELECT * FROM ec_attrs EXCEPT SELECT * FROM before_abort) x) AS added,
       (SELECT count(*) FROM (SELECT * FROM before_abort EXCEPT SELECT * FROM ec_attrs) x) AS removed;
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'ec'::regclass;
SELECT count(*) FROM pg_constraint WHERE conrelid = 'ec'::regclass;
SELECT (SELECT count(*) FROM (SELECT * FROM ec_indexes EXCEPT SELECT * FROM indexes_before_abort) x) AS added,
       (SELECT count(*) FROM (SELECT * FROM indexes_before_abort EXCEPT SELECT * FROM ec_indexes) x) AS removed;
SELECT phase FROM virtuoso.column_changes WHERE change_id = 'cc3';

-- An up mapping that fails on some rows: FAILED with the failing blocks and the message;
-- contract refused; after the rows are fixed, calling expand again resumes to READY.
CREATE TABLE ef (id int PRIMARY KEY, t text);
INSERT INTO ef SELECT g, g::text FROM generate_series(1, 100) g;
UPDATE ef SET t = 'x' WHERE id = 50;
CALL virtuoso.expand_column_change('ef', 't', 'integer');
\echo :LAST_ERROR_SQLSTATE
SELECT phase, message FROM virtuoso.column_changes WHERE change_id = 'cc4';
CALL virtuoso.contract_column_change('cc4');
\echo :LAST_ERROR_SQLSTATE
UPDATE ef SET t = '50' WHERE id = 50;
CALL virtuoso.expand_column_change('ef', 't', 'integer');
SELECT phase, rows_differing, message FROM virtuoso.column_changes WHERE change_id = 'cc4';
CALL virtuoso.contract_column_change('cc4');
SELECT sum(t) FROM ef;

-- A rename keeps the column's collation; inheritance is refused.
CREATE TABLE ecoll (id int, name text COLLATE "C");
INSERT INTO ecoll VALUES (1, 'b'), (2, 'a');
-- (and contract warns of statements seen lately that still name the old column)
SELECT NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS create_pss \gset
\if :create_pss
CREATE EXTENSION pg_stat_statements;
\endif
SELECT count(*) >= 0 AS reset FROM pg_stat_statements_reset() r;
SELECT name FROM ecoll ORDER BY 1;
CALL virtuoso.expand_column_change('ecoll', 'name', 'text', new_column_name => 'title');
SELECT change_id AS ecoll_change FROM virtuoso.column_changes WHERE table_name = 'public.ecoll' \gset
CALL virtuoso.contract_column_change(:'ecoll_change');
\if :create_pss
DROP EXTENSION pg_stat_statements;
\endif
SELECT attname, attcollation::regcollation FROM pg_attribute WHERE attrelid = 'ecoll'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
CREATE TABLE ecoll_child () INHERITS (ecoll);
CALL virtuoso.expand_column_change('ecoll', 'title', 'varchar(10)');
\echo :LAST_ERROR_SQLSTATE

-- A primary key referenced by foreign keys, int -> bigint (the real case): the key, a unique
-- constraint over it and a CHECK move to the new column; the foreign keys are dropped and
-- added again against it in the contract's one transaction, then validated.
CREATE TABLE eo (id int PRIMARY KEY, code int, n int NOT NULL DEFAULT 0,
                 CONSTRAINT eo_id_positive CHECK (id > 0 AND n >= 0),
                 CONSTRAINT eo_code_id UNIQUE (code, id));
CREATE TABLE eol (line int PRIMARY KEY, order_id int NOT NULL REFERENCES eo (id) ON DELETE CASCADE);
CREATE TABLE eol2 (order_id int, code int,
                   CONSTRAINT eol2_fk FOREIGN KEY (code, order_id) REFERENCES eo (code, id) DEFERRABLE);
INSERT INTO eo SELECT g, g, g FROM generate_series(1, 2000) g;
INSERT INTO eol SELECT g, g % 2000 + 1 FROM generate_series(1, 4000) g;
INSERT INTO eol2 SELECT g, g FROM generate_series(1, 100) g;
CREATE VIEW eo_shape AS
SELECT 'attribute' AS kind, attname::text AS name, format_type(atttypid, atttypmod) AS def,
       attnotnull::text AS extra
FROM pg_attribute WHERE attrelid = 'eo'::regclass AND attnum > 0 AND NOT attisdropped
UNION ALL
SELECT 'index', c.relname::text, pg_get_indexdef(i.indexrelid), i.indisvalid::text
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'eo'::regclass
UNION ALL
SELECT 'constraint', conrelid::regclass || '.' || conname, pg_get_constraintdef(oid), convalidated::text
FROM pg_constraint WHERE conrelid IN ('eo'::regclass, 'eol'::regclass, 'eol2'::regclass)
UNION ALL
SELECT 'trigger', tgname::text, tgrelid::regclass::text, tgenabled::text
FROM pg_trigger WHERE tgrelid IN ('eo'::regclass, 'eol'::regclass, 'eol2'::regclass) AND NOT tgisinternal;
CREATE TEMP TABLE eo_before AS SELECT * FROM eo_shape;
-- Abort after expand: the table and the referencing ones are exactly as before.
CALL virtuoso.expand_column_change('eo', 'id', 'bigint', batch_size => 500);
SELECT kind, count(*) FROM (SELECT * FROM eo_shape EXCEPT SELECT * FROM eo_before) x GROUP BY 1 ORDER BY 1;
SELECT virtuoso.abort_column_change('cc6');
SELECT count(*) AS added FROM (SELECT * FROM eo_shape EXCEPT SELECT * FROM eo_before) x;
SELECT count(*) AS removed FROM (SELECT * FROM eo_before EXCEPT SELECT * FROM eo_shape) x;
-- Again, then contract keeping the old column for a later drop.
CALL virtuoso.expand_column_change('eo', 'id', 'bigint', batch_size => 500);
INSERT INTO eo (id, code) VALUES (2001, 2001);
INSERT INTO eol VALUES (4001, 2001);
BEGIN;
CALL virtuoso.contract_column_change('cc7', drop_old_column => false);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
CALL virtuoso.contract_column_change('cc7', drop_old_column => false);
SELECT * FROM eo_shape ORDER BY 1, 2;
SELECT count(*) AS differing FROM eo WHERE id IS DISTINCT FROM id_cc7_old;
-- The foreign keys hold against the new key, and still cascade.
INSERT INTO eol VALUES (5000, 99999);
\echo :LAST_ERROR_SQLSTATE
DELETE FROM eo WHERE id = 2001;
SELECT count(*) FROM eol WHERE order_id = 2001;
-- Writers no longer maintain the kept column; it is dropped later with ALTER TABLE.
INSERT INTO eo (id, code) VALUES (3000, 3000);
SELECT id, id_cc7_old FROM eo WHERE id = 3000;
ALTER TABLE eo DROP COLUMN id_cc7_old;
-- Every phase is in the migration log; contract's row holds how long it held the lock.
SELECT name, status, final_stats ? 'lock_held_ms' AS lock_time,
       final_stats->'old_column_kept' AS kept, final_stats->'foreign_keys' AS foreign_keys
FROM virtuoso.migration_log WHERE name ~ '^expand:cc[67]:' ORDER BY started_at;

-- Contract drops and adds the foreign keys referencing the key: a caller who does not own
-- their tables is refused before anything changes.
CREATE ROLE regress_expand_owner;
GRANT USAGE ON SCHEMA virtuoso TO regress_expand_owner;
GRANT EXECUTE ON PROCEDURE virtuoso.expand_column_change(regclass, text, text, text, text, text, integer, text) TO regress_expand_owner;
CREATE TABLE eown (id int PRIMARY KEY);
ALTER TABLE eown OWNER TO regress_expand_owner;
CREATE TABLE eown_child (pid int REFERENCES eown (id));
SET ROLE regress_expand_owner;
CALL virtuoso.expand_column_change('eown', 'id', 'bigint');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) AS columns FROM pg_attribute WHERE attrelid = 'eown'::regclass AND attnum > 0;
SELECT count(*) AS changes FROM virtuoso.column_changes WHERE table_name = 'public.eown';
DROP TABLE eown_child, eown;
REVOKE ALL ON PROCEDURE virtuoso.expand_column_change(regclass, text, text, text, text, text, integer, text) FROM regress_expand_owner;
REVOKE ALL ON SCHEMA virtuoso FROM regress_expand_owner;
DROP ROLE regress_expand_owner;

-- Identity columns: contract moves the identity to the new column (ALWAYS or BY DEFAULT as
-- it was, the sequence's name, options and position), so inserts after it get the next ids.
CREATE TABLE eid_a (id int GENERATED ALWAYS AS IDENTITY (START WITH 10 INCREMENT BY 5 CACHE 3) PRIMARY KEY, v text);
CREATE TABLE eid_d (id smallint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text);
INSERT INTO eid_a (v) SELECT 'before' FROM generate_series(1, 100);
INSERT INTO eid_d (v) SELECT 'before' FROM generate_series(1, 100);
CALL virtuoso.expand_column_change('eid_a', 'id', 'bigint', batch_size => 30);
CALL virtuoso.expand_column_change('eid_d', 'id', 'integer', batch_size => 30);
INSERT INTO eid_a (v) VALUES ('during');
INSERT INTO eid_d (v) VALUES ('during');
SELECT change_id AS eid_a_change FROM virtuoso.column_changes WHERE table_name = 'public.eid_a' \gset
SELECT change_id AS eid_d_change FROM virtuoso.column_changes WHERE table_name = 'public.eid_d' \gset
CALL virtuoso.contract_column_change(:'eid_a_change');
CALL virtuoso.contract_column_change(:'eid_d_change', drop_old_column => false);
SELECT attrelid::regclass, attname, format_type(atttypid, atttypmod), attnotnull, attidentity
FROM pg_attribute WHERE attrelid IN ('eid_a'::regclass, 'eid_d'::regclass) AND attnum > 0
  AND NOT attisdropped ORDER BY 1, attnum;
SELECT pg_get_serial_sequence(t, 'id') AS seq, s.seqtypid::regtype, s.seqstart, s.seqincrement,
       s.seqmax, s.seqcache, s.seqcycle
FROM unnest(ARRAY['eid_a', 'eid_d']) t
JOIN pg_sequence s ON s.seqrelid = pg_get_serial_sequence(t, 'id')::regclass ORDER BY 1;
INSERT INTO eid_a (v) VALUES ('after') RETURNING id;
INSERT INTO eid_a (id, v) VALUES (1, 'given');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO eid_d (v) VALUES ('after') RETURNING id;
INSERT INTO eid_d (id, v) VALUES (1000, 'given') RETURNING id;
SELECT 'eid_a' AS t, count(*), count(DISTINCT id), min(id), max(id) FROM eid_a
UNION ALL SELECT 'eid_d', count(*), count(DISTINCT id), min(id), max(id) FROM eid_d;
DROP TABLE eid_a, eid_d;

-- A cancel (here statement_timeout) during the backfill is no failing row: the call ends with
-- 57014, the change is not marked FAILED with a hint to fix rows (it used to be, after a
-- probe of the batch for its first failing row), and it stays where it was, to resume or abort.
CREATE TABLE ec_cancel (id int PRIMARY KEY, v int);
INSERT INTO ec_cancel SELECT g, g FROM generate_series(1, 40) g;
CREATE FUNCTION ec_slow_up(int) RETURNS bigint IMMUTABLE LANGUAGE plpgsql
AS $f$ BEGIN PERFORM pg_sleep(0.1); RETURN $1; END $f$;
SET statement_timeout = '1s';
CALL virtuoso.expand_column_change('ec_cancel', 'v', 'bigint', up_expression => 'public.ec_slow_up(v)');
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT phase, message FROM virtuoso.column_changes WHERE table_name = 'public.ec_cancel';
SELECT virtuoso.abort_column_change(change_id) IS NOT NULL AS aborted
FROM virtuoso.column_changes WHERE table_name = 'public.ec_cancel';
DROP TABLE ec_cancel;
DROP FUNCTION ec_slow_up(int);
