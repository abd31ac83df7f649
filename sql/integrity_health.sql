-- check_database_health: each check with an object that triggers it and one that does not.
-- Only the rows of this test's objects are shown (schema health), so that objects of other
-- tests do not matter.
CREATE SCHEMA health;
CREATE VIEW health_findings AS
SELECT check_name, severity, object, message, remedy
FROM virtuoso.check_database_health()
WHERE object LIKE '%health.%';

-- invalid index: a failed concurrent unique build leaves one; a good index does not show
CREATE TABLE health.dups (id int PRIMARY KEY, v int);
INSERT INTO health.dups VALUES (1, 1), (2, 1);
CREATE UNIQUE INDEX CONCURRENTLY dups_v_unique ON health.dups (v);
CREATE INDEX dups_v_ok ON health.dups (v);
SELECT check_name, severity, object, message, remedy FROM health_findings WHERE check_name = 'invalid_index';
DROP INDEX health.dups_v_unique;

-- NOT VALID constraints: one never validated, one validated
CREATE TABLE health.checked (id int PRIMARY KEY, n int);
ALTER TABLE health.checked ADD CONSTRAINT n_positive CHECK (n > 0) NOT VALID;
ALTER TABLE health.checked ADD CONSTRAINT n_small CHECK (n < 100) NOT VALID;
ALTER TABLE health.checked VALIDATE CONSTRAINT n_small;
SELECT check_name, severity, object, message, remedy FROM health_findings WHERE check_name = 'not_valid_constraint';

-- sequences: a smallint sequence at 91%, an int column fed by a bigint sequence at 80%,
-- and a fresh serial that is fine
CREATE SEQUENCE health.small_seq AS smallint;
SELECT setval('health.small_seq', 30000);
CREATE TABLE health.counter (id int, other serial);
CREATE SEQUENCE health.counter_id_seq AS bigint OWNED BY health.counter.id;
SELECT setval('health.counter_id_seq', 1717986918);
SELECT nextval('health.counter_other_seq');
SELECT check_name, severity, object, message, remedy FROM health_findings WHERE check_name = 'sequence_exhaustion';

-- duplicate and prefix indexes
CREATE TABLE health.indexed (id int PRIMARY KEY, a int, b int, c int);
CREATE INDEX indexed_a ON health.indexed (a);
CREATE INDEX indexed_a_again ON health.indexed (a);
CREATE INDEX indexed_a_b ON health.indexed (a, b);
CREATE INDEX indexed_a_partial ON health.indexed (a) WHERE c > 0;
CREATE INDEX indexed_c_hash ON health.indexed USING hash (c);
CREATE INDEX indexed_c ON health.indexed (c);
CREATE UNIQUE INDEX indexed_id_unique ON health.indexed (id);
SELECT check_name, severity, object, message FROM health_findings
WHERE check_name IN ('duplicate_index', 'prefix_index') ORDER BY check_name, object;

-- unused indexes: indexed_c is used by a query, the others are not (unique and primary key
-- indexes are never reported)
SET enable_seqscan = off;
SELECT count(*) FROM health.indexed WHERE c BETWEEN 1 AND 2;  -- a range: the hash index cannot serve it
RESET enable_seqscan;
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT check_name, severity, object FROM health_findings WHERE check_name = 'unused_index' AND object LIKE 'health.indexed%' ORDER BY object;

-- foreign keys with and without an index on the referencing columns
CREATE TABLE health.parent (id int PRIMARY KEY);
CREATE TABLE health.child_plain (id int PRIMARY KEY, parent_id int REFERENCES health.parent);
CREATE TABLE health.child_indexed (id int PRIMARY KEY, parent_id int REFERENCES health.parent);
CREATE INDEX ON health.child_indexed (parent_id, id);
CREATE TABLE health.child_wrong_order (id int PRIMARY KEY, parent_id int REFERENCES health.parent);
CREATE INDEX ON health.child_wrong_order (id, parent_id);
SELECT check_name, severity, object, message, remedy FROM health_findings
WHERE check_name = 'foreign_key_without_index' ORDER BY object;

-- tables without a primary key (counter has none; the others have one)
SELECT check_name, severity, object, remedy FROM health_findings WHERE check_name = 'no_primary_key';

-- bloat: most rows deleted from every page (VACUUM cannot truncate), against a table
-- that is dense; and one whose estimate lacks a column's statistics
CREATE TABLE health.bloated (id int PRIMARY KEY, payload text) WITH (autovacuum_enabled = off);
INSERT INTO health.bloated SELECT g, repeat('x', 100) FROM generate_series(1, 40000) g;
DELETE FROM health.bloated WHERE id % 10 <> 0;
VACUUM ANALYZE health.bloated;
CREATE TABLE health.dense (id int PRIMARY KEY, payload text) WITH (autovacuum_enabled = off);
INSERT INTO health.dense SELECT g, repeat('x', 100) FROM generate_series(1, 40000) g;
VACUUM ANALYZE health.dense;
CREATE TABLE health.bloated_nostats (id int PRIMARY KEY, payload text) WITH (autovacuum_enabled = off);
ALTER TABLE health.bloated_nostats ALTER COLUMN payload SET STATISTICS 0;
INSERT INTO health.bloated_nostats SELECT g, repeat('x', 100) FROM generate_series(1, 40000) g;
DELETE FROM health.bloated_nostats WHERE id % 10 <> 0;
VACUUM ANALYZE health.bloated_nostats;
-- never analyzed (CREATE INDEX sets its row count, but there are no statistics): skipped
CREATE TABLE health.unanalyzed (id int, payload text) WITH (autovacuum_enabled = off);
INSERT INTO health.unanalyzed SELECT g, repeat('x', 100) FROM generate_series(1, 40000) g;
DELETE FROM health.unanalyzed WHERE id % 10 <> 0;
CREATE INDEX ON health.unanalyzed (id);
SELECT check_name, severity, object,
       regexp_replace(message, 'about [0-9.]+% \([^)]*\)', 'about N% (X of Y)') AS message
FROM health_findings WHERE check_name = 'table_bloat' ORDER BY object;
SELECT object, value BETWEEN 70 AND 95 AS about_90_pct FROM virtuoso.check_database_health()
WHERE check_name = 'table_bloat' AND object LIKE 'health.%' ORDER BY object;

-- transaction-id age: a fresh cluster is far from autovacuum_freeze_max_age (the triggering
-- side is in test/t/040_integrity_health.pl, which burns transaction and multixact IDs)
SELECT count(*) AS wraparound_findings FROM virtuoso.check_database_health()
WHERE check_name IN ('xid_wraparound', 'multixact_wraparound');

-- sessions: none other is running or idle in a transaction here (TAP test 040 triggers both)
SELECT count(*) AS session_findings FROM virtuoso.check_database_health()
WHERE check_name IN ('long_running_query', 'idle_in_transaction');

-- amcheck, opt in: not installed gives an INFO row; installed, a sound index passes and an
-- index whose operator class changed its mind after the build is reported broken
DROP EXTENSION IF EXISTS amcheck;
SELECT check_name, severity, message FROM virtuoso.check_database_health(include_amcheck => true)
WHERE check_name = 'btree_structure';
CREATE EXTENSION amcheck;
CREATE FUNCTION health.fickle_cmp(int, int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT btint4cmp($1, $2)';
CREATE OPERATOR CLASS health.fickle_ops FOR TYPE int USING btree AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 health.fickle_cmp(int, int);
CREATE TABLE health.sorted (n int);
INSERT INTO health.sorted SELECT g FROM generate_series(1, 1000) g;
CREATE INDEX sorted_fickle ON health.sorted (n health.fickle_ops);
CREATE INDEX sorted_sound ON health.sorted (n);
SELECT check_name, severity, object FROM virtuoso.check_database_health(include_amcheck => true)
WHERE check_name = 'btree_structure' AND object LIKE 'health.%';
CREATE OR REPLACE FUNCTION health.fickle_cmp(int, int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT btint4cmp($2, $1)';
SELECT check_name, severity, object, regexp_replace(message, ': .*', ': ...') AS message
FROM virtuoso.check_database_health(include_amcheck => true)
WHERE check_name = 'btree_structure' AND object LIKE 'health.%';
DROP INDEX health.sorted_fickle;
DROP EXTENSION amcheck;

-- arguments
SELECT try($$SELECT * FROM virtuoso.check_database_health(NULL)$$);
SET ROLE regress_virtuoso_user;
SELECT count(*) >= 0 AS runs_as_user FROM virtuoso.check_database_health();
RESET ROLE;

DROP VIEW health_findings;
DROP SCHEMA health CASCADE;
