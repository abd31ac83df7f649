-- Audit trail and updated_at: the C trigger functions enabled by virtuoso.enable_audit and
-- virtuoso.enable_updated_at, on a table with an awkward name in an awkward schema.
CREATE SCHEMA "Aud it";
GRANT USAGE ON SCHEMA "Aud it" TO regress_virtuoso_user;
CREATE TABLE "Aud it"."Odd ""Table""" (
    id int PRIMARY KEY, n numeric, b boolean, j jsonb, arr int[], t text, f float8,
    "Mixed Col" text);
SELECT virtuoso.enable_audit('"Aud it"."Odd ""Table"""');
INSERT INTO "Aud it"."Odd ""Table""" VALUES
    (1, 1.50, true, '{"a": [1, 2]}', '{1,2}', 'x "q"', 'NaN', 'm'),
    (2, 2, false, NULL, NULL, 'y', 2.5, NULL);
UPDATE "Aud it"."Odd ""Table""" SET n = 1.5, t = 'changed', "Mixed Col" = NULL WHERE id = 1;
-- a no-op update records nothing; a value written differently (1.5 -> 1.50) is a change
UPDATE "Aud it"."Odd ""Table""" SET t = t, j = j WHERE id = 1;
UPDATE "Aud it"."Odd ""Table""" SET n = 1.50 WHERE id = 1;
DELETE FROM "Aud it"."Odd ""Table""" WHERE id = 2;
-- the key follows a changed primary key
UPDATE "Aud it"."Odd ""Table""" SET id = 10 WHERE id = 1;
SELECT table_name, operation, key, old_values, new_values, changed_columns,
       changed_by, txid IS NOT NULL AS txid
FROM virtuoso.audit_log ORDER BY id;
-- values keep their JSON types
SELECT jsonb_typeof(new_values -> 'n') AS n, jsonb_typeof(new_values -> 'b') AS b,
       jsonb_typeof(new_values -> 'j') AS j, jsonb_typeof(new_values -> 'arr') AS arr,
       jsonb_typeof(new_values -> 'f') AS f
FROM virtuoso.audit_log WHERE operation = 'INSERT' AND key = '{"id": 1}';

-- ALTER TABLE: added and dropped columns
ALTER TABLE "Aud it"."Odd ""Table""" ADD COLUMN added int, DROP COLUMN f;
UPDATE "Aud it"."Odd ""Table""" SET added = 7, b = false WHERE id = 10;
SELECT operation, key, old_values, new_values, changed_columns
FROM virtuoso.audit_log ORDER BY id DESC LIMIT 1;

-- audit_history: by key, oldest first; NULL key: the whole table
SELECT operation, changed_columns FROM virtuoso.audit_history('"Aud it"."Odd ""Table"""', '{"id": 10}');
SELECT count(*) FROM virtuoso.audit_history('"Aud it"."Odd ""Table"""', NULL);

-- TRUNCATE: one row
TRUNCATE "Aud it"."Odd ""Table""";
SELECT operation, key, old_values, new_values FROM virtuoso.audit_log ORDER BY id DESC LIMIT 1;

-- columns restrict what is recorded (the key always is); include_old false
SELECT virtuoso.enable_audit('"Aud it"."Odd ""Table"""', ARRAY['t', 'Mixed Col'], false);
INSERT INTO "Aud it"."Odd ""Table""" (id, n, t, "Mixed Col") VALUES (3, 3, 'c', 'M');
UPDATE "Aud it"."Odd ""Table""" SET n = 4 WHERE id = 3;          -- not recorded
UPDATE "Aud it"."Odd ""Table""" SET n = 5, t = 'd' WHERE id = 3;
SELECT operation, key, old_values, new_values, changed_columns
FROM virtuoso.audit_history('"Aud it"."Odd ""Table"""', '{"id": 3}');
-- a rolled back change leaves no audit row
BEGIN;
UPDATE "Aud it"."Odd ""Table""" SET t = 'gone' WHERE id = 3;
ROLLBACK;
SELECT count(*) FROM virtuoso.audit_history('"Aud it"."Odd ""Table"""', '{"id": 3}');

-- a subtransaction rolled back takes its rows with it; a released one keeps them; the
-- writing transaction's history includes its own rows
BEGIN;
UPDATE "Aud it"."Odd ""Table""" SET t = 's1' WHERE id = 3;
SAVEPOINT a;
UPDATE "Aud it"."Odd ""Table""" SET t = 's2' WHERE id = 3;
SAVEPOINT b;
UPDATE "Aud it"."Odd ""Table""" SET t = 's3' WHERE id = 3;
RELEASE SAVEPOINT b;
ROLLBACK TO SAVEPOINT a;
SAVEPOINT c;
UPDATE "Aud it"."Odd ""Table""" SET t = 's4' WHERE id = 3;
RELEASE SAVEPOINT c;
SELECT new_values FROM virtuoso.audit_history('"Aud it"."Odd ""Table"""', '{"id": 3}');
UPDATE "Aud it"."Odd ""Table""" SET t = 's5' WHERE id = 3;
COMMIT;
SELECT new_values FROM virtuoso.audit_history('"Aud it"."Odd ""Table"""', '{"id": 3}');
-- more rows than one batch, in one statement and across statements
INSERT INTO "Aud it"."Odd ""Table""" (id, t) SELECT g, 'bulk' FROM generate_series(100, 2600) g;
UPDATE "Aud it"."Odd ""Table""" SET t = 'bulk2' WHERE id >= 100;
SELECT operation, count(*), count(DISTINCT key) AS keys
FROM virtuoso.audit_log WHERE (key ->> 'id')::int >= 100
GROUP BY operation ORDER BY operation;
DELETE FROM "Aud it"."Odd ""Table""" WHERE id >= 100;
DELETE FROM virtuoso.audit_log WHERE (key ->> 'id')::int >= 100;

-- disable_audit: no more rows, the old ones stay; twice is a NOTICE
SELECT virtuoso.disable_audit('"Aud it"."Odd ""Table"""');
UPDATE "Aud it"."Odd ""Table""" SET t = 'e' WHERE id = 3;
SELECT count(*) FROM virtuoso.audit_history('"Aud it"."Odd ""Table"""', '{"id": 3}');
SELECT virtuoso.disable_audit('"Aud it"."Odd ""Table"""');
SELECT tgname FROM pg_trigger WHERE tgrelid = '"Aud it"."Odd ""Table"""'::regclass;

-- partitions: enabled on the partitioned table, rows written through a partition directly
-- are audited (under the partition's name) and in the table's history
CREATE TABLE "Aud it".parted (id int, region text, v int, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE "Aud it".parted_eu PARTITION OF "Aud it".parted FOR VALUES IN ('eu');
SELECT virtuoso.enable_audit('"Aud it".parted');
CREATE TABLE "Aud it".parted_us PARTITION OF "Aud it".parted FOR VALUES IN ('us');
INSERT INTO "Aud it".parted VALUES (1, 'eu', 1), (2, 'us', 2);
UPDATE "Aud it".parted_us SET v = 20;
SELECT table_name, operation, key, new_values
FROM virtuoso.audit_history('"Aud it".parted', NULL);
-- a partition of an audited table is set up through that table
SELECT virtuoso.enable_audit('"Aud it".parted_eu');
-- TRUNCATE of one partition is audited under its name, also of partitions created or
-- attached after enable_audit and of the leaves of a partitioned partition
CREATE TABLE "Aud it".parted_asia (id int, region text, v int, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE "Aud it".parted_jp PARTITION OF "Aud it".parted_asia FOR VALUES IN ('jp');
ALTER TABLE "Aud it".parted ATTACH PARTITION "Aud it".parted_asia FOR VALUES IN ('jp');
CREATE TABLE "Aud it"."parted ""late""" PARTITION OF "Aud it".parted FOR VALUES IN ('late');
INSERT INTO "Aud it".parted VALUES (3, 'jp', 3), (4, 'late', 4);
TRUNCATE "Aud it".parted_us;
TRUNCATE "Aud it".parted_jp;
TRUNCATE "Aud it"."parted ""late""";
SELECT table_name, operation, key FROM virtuoso.audit_history('"Aud it".parted', NULL)
WHERE operation = 'TRUNCATE';
-- TRUNCATE of the partitioned table: one row for it and one for each of its partitions
SELECT max(id) AS before_truncate FROM virtuoso.audit_log \gset
TRUNCATE "Aud it".parted;
SELECT table_name FROM virtuoso.audit_log WHERE id > :before_truncate ORDER BY table_name;
-- a detached partition is no longer audited
ALTER TABLE "Aud it".parted DETACH PARTITION "Aud it"."parted ""late""";
SELECT max(id) AS before_detached FROM virtuoso.audit_log \gset
INSERT INTO "Aud it"."parted ""late""" VALUES (5, 'late', 5);
TRUNCATE "Aud it"."parted ""late""";
SELECT count(*) FROM virtuoso.audit_log WHERE id > :before_detached;
-- disable_audit on the table stops all of it; enable_audit sets every partition up again
SELECT virtuoso.disable_audit('"Aud it".parted');
SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = '"Aud it"'::regnamespace AND c.relname LIKE 'parted%' ORDER BY 1, 2;
SELECT virtuoso.enable_audit('"Aud it".parted');
SELECT c.relname, t.tgname, t.tgparentid <> 0 AS cloned
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = '"Aud it"'::regnamespace AND c.relname LIKE 'parted%' ORDER BY 1, 2;

-- replica identity: a unique index instead of a primary key; FULL: every column is the key
CREATE TABLE "Aud it".ri (a int NOT NULL, b int, c text);
CREATE UNIQUE INDEX ri_a ON "Aud it".ri (a);
ALTER TABLE "Aud it".ri REPLICA IDENTITY USING INDEX ri_a;
SELECT virtuoso.enable_audit('"Aud it".ri');
INSERT INTO "Aud it".ri VALUES (1, 2, 'x');
ALTER TABLE "Aud it".ri REPLICA IDENTITY FULL;
DROP INDEX "Aud it".ri_a;
SELECT virtuoso.enable_audit('"Aud it".ri');
DELETE FROM "Aud it".ri;
SELECT operation, key FROM virtuoso.audit_history('"Aud it".ri', NULL);

-- bad input, from plain statements (psql shows the SQLSTATE)
\set VERBOSITY sqlstate
CREATE TABLE "Aud it".nokey (a int);
SELECT virtuoso.enable_audit('"Aud it".nokey');
CREATE VIEW "Aud it".v AS SELECT 1 AS x;
SELECT virtuoso.enable_audit('"Aud it".v');
SELECT virtuoso.enable_updated_at('"Aud it".v');
CREATE FOREIGN DATA WRAPPER audit_dummy_fdw;
CREATE SERVER audit_dummy FOREIGN DATA WRAPPER audit_dummy_fdw;
CREATE FOREIGN TABLE "Aud it".ft (a int) SERVER audit_dummy;
SELECT virtuoso.enable_audit('"Aud it".ft');
SELECT virtuoso.enable_audit(NULL);
SELECT virtuoso.enable_audit('virtuoso.audit_log');
SELECT virtuoso.enable_audit('"Aud it".ri', ARRAY['nope']);
SELECT virtuoso.enable_audit('"Aud it".ri', ARRAY[NULL]);
SELECT virtuoso.enable_audit('"Aud it".ri', '{}');
SELECT virtuoso.disable_audit(0);
SELECT * FROM virtuoso.audit_history(0, NULL);
-- a trigger of that name that is not ours is not replaced
CREATE FUNCTION "Aud it".noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TABLE "Aud it".clash (id int PRIMARY KEY);
CREATE TRIGGER virtuoso_audit AFTER INSERT ON "Aud it".clash FOR EACH ROW EXECUTE FUNCTION "Aud it".noop();
SELECT virtuoso.enable_audit('"Aud it".clash');
-- the trigger function is for triggers only
CREATE TRIGGER wrong BEFORE INSERT ON "Aud it".clash FOR EACH ROW EXECUTE FUNCTION virtuoso.audit_trigger();
INSERT INTO "Aud it".clash VALUES (1);
DROP TRIGGER wrong ON "Aud it".clash;
\set VERBOSITY default

-- privileges: a role writing the table (DML rights only) is recorded as the writer; it may
-- neither enable audit on, nor read the history of, a table it does not own, nor read or
-- write the log itself
CREATE TABLE "Aud it".shared (id int PRIMARY KEY, v text);
CREATE SCHEMA audit_user AUTHORIZATION regress_virtuoso_user;
SELECT virtuoso.enable_audit('"Aud it".shared');
GRANT SELECT, INSERT, UPDATE ON "Aud it".shared TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
INSERT INTO "Aud it".shared VALUES (1, 'a');
UPDATE "Aud it".shared SET v = 'b';
\set VERBOSITY sqlstate
SELECT virtuoso.enable_audit('"Aud it".shared');
SELECT virtuoso.disable_audit('"Aud it".shared');
SELECT virtuoso.enable_updated_at('"Aud it".shared');
SELECT * FROM virtuoso.audit_history('"Aud it".shared', NULL);
SELECT count(*) FROM virtuoso.audit_log;
INSERT INTO virtuoso.audit_log (table_name, operation, changed_by, txid, relid)
    VALUES ('x', 'INSERT', 'x', 1, 1);
\set VERBOSITY default
-- its own table: audited, and only its rows are visible to it through row security
CREATE TABLE audit_user.mine (id int PRIMARY KEY, v text);
SELECT virtuoso.enable_audit('audit_user.mine');
INSERT INTO audit_user.mine VALUES (5, 'mine');
SELECT operation, key, new_values, changed_by FROM virtuoso.audit_history('audit_user.mine', NULL);
RESET ROLE;
SELECT operation, new_values, changed_by FROM virtuoso.audit_history('"Aud it".shared', '{"id": 1}');
GRANT SELECT ON virtuoso.audit_log TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
SELECT DISTINCT table_name FROM virtuoso.audit_log;
RESET ROLE;
REVOKE SELECT ON virtuoso.audit_log FROM regress_virtuoso_user;
DROP SCHEMA audit_user CASCADE;

-- updated_at: set on UPDATE, and on INSERT when NULL
CREATE TABLE "Aud it".stamped (id int PRIMARY KEY, v text, updated_at timestamptz, "when" timestamp);
SELECT virtuoso.enable_updated_at('"Aud it".stamped');
BEGIN;
INSERT INTO "Aud it".stamped VALUES (1, 'a', NULL), (2, 'b', '2001-01-01');
SELECT id, updated_at = now() AS now, updated_at < '2002-01-01' AS given FROM "Aud it".stamped WHERE id = 2 OR updated_at = now() ORDER BY id;
COMMIT;
UPDATE "Aud it".stamped SET v = 'c' WHERE id = 2;
SELECT id, updated_at > '2001-01-02' AS moved FROM "Aud it".stamped ORDER BY id;
-- the new time reaches the indexes as well as the row, also after another trigger (whose
-- WHEN clause read the row) and for a row whose time is NULL
CREATE INDEX stamped_at ON "Aud it".stamped (updated_at);
CREATE FUNCTION "Aud it".same() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER a_first BEFORE UPDATE ON "Aud it".stamped FOR EACH ROW
    WHEN (NEW.updated_at IS NOT NULL) EXECUTE FUNCTION "Aud it".same();
INSERT INTO "Aud it".stamped VALUES (3, 'n', '2001-01-01'), (4, 'n', '2001-01-01');
ALTER TABLE "Aud it".stamped DISABLE TRIGGER virtuoso_updated_at;
UPDATE "Aud it".stamped SET updated_at = NULL WHERE id = 4;
ALTER TABLE "Aud it".stamped ENABLE TRIGGER virtuoso_updated_at;
BEGIN;
UPDATE "Aud it".stamped SET v = 'x' WHERE id >= 2;
SET LOCAL enable_seqscan = off;
SELECT id FROM "Aud it".stamped WHERE updated_at = now() ORDER BY id;
SELECT id FROM "Aud it".stamped WHERE updated_at < now() ORDER BY id;
COMMIT;
DROP TRIGGER a_first ON "Aud it".stamped;
DROP INDEX "Aud it".stamped_at;
DELETE FROM "Aud it".stamped WHERE id > 2;
-- a timestamp column, clock_timestamp(): differs from the transaction time
SELECT virtuoso.enable_updated_at('"Aud it".stamped', 'when', true);
BEGIN;
SELECT pg_sleep(0.01);
UPDATE "Aud it".stamped SET v = 'd' WHERE id = 1;
SELECT "when" > now()::timestamp AS clock FROM "Aud it".stamped WHERE id = 1;
COMMIT;
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = '"Aud it".stamped'::regclass;
\set VERBOSITY sqlstate
SELECT virtuoso.enable_updated_at('"Aud it".stamped', 'v');
SELECT virtuoso.enable_updated_at('"Aud it".stamped', 'nope');
SELECT virtuoso.enable_updated_at('"Aud it".stamped', NULL);
-- a renamed column: the writer gets a clear error
ALTER TABLE "Aud it".stamped RENAME COLUMN "when" TO at;
UPDATE "Aud it".stamped SET v = 'e';
\set VERBOSITY default
SELECT virtuoso.enable_updated_at('"Aud it".stamped', 'at');
UPDATE "Aud it".stamped SET v = 'e';

DROP SCHEMA "Aud it" CASCADE;
DROP SERVER audit_dummy;
DROP FOREIGN DATA WRAPPER audit_dummy_fdw;
TRUNCATE virtuoso.audit_log;
