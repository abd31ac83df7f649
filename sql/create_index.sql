-- virtuoso.create_index_concurrently
CREATE TABLE ci (id int, a int, b text);
INSERT INTO ci SELECT g, g % 100, 'b' || g FROM generate_series(1, 20000) g;

-- The procedure form commits the caller first: the build waits for no snapshot of ours.
CALL virtuoso.build_index_concurrently('CREATE INDEX ci_a_idx ON ci (a)');
CALL virtuoso.build_index_concurrently('create unique index concurrently ci_id_idx on ci using btree (id)');
-- no name: the server picks one, we find it
CALL virtuoso.build_index_concurrently('/* a comment */ CREATE INDEX ON ci (b) WHERE a > 50');
CALL virtuoso.build_index_concurrently('CREATE INDEX IF NOT EXISTS ci_a_idx ON ci (a)');
SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'ci'::regclass ORDER BY 1;

-- anything but one index definition is refused
SELECT try($$SELECT virtuoso.create_index_concurrently('DROP TABLE ci')$$);
SELECT try($$SELECT virtuoso.create_index_concurrently('CREATE INDEX x1 ON ci (a); DROP TABLE ci')$$);
SELECT try($$SELECT virtuoso.create_index_concurrently('CREATE TABLE x (a int)')$$);
SELECT try($$SELECT virtuoso.create_index_concurrently('CREATE INDEX x2 ON no_such_table (a)')$$);
SELECT try($$SELECT virtuoso.create_index_concurrently('CREATE INDEX x3 ON ci (no_such_column)')$$);
SELECT try($$SELECT virtuoso.create_index_concurrently(NULL)$$);
SELECT try($$SELECT virtuoso.create_index_concurrently('   ')$$);
SELECT try($$SELECT virtuoso.create_index_concurrently('CREATE INDEX x4 ON ci (a)', 0)$$);
CALL virtuoso.build_index_concurrently('DROP TABLE ci');
CALL virtuoso.build_index_concurrently('CREATE INDEX x3 ON ci (no_such_column)');
CALL virtuoso.build_index_concurrently(NULL);
SELECT to_regclass('ci') IS NOT NULL AS ci_still_there;

-- A build that fails for good leaves no invalid index behind.
CALL virtuoso.build_index_concurrently('CREATE UNIQUE INDEX ci_dup ON ci (a)');
SELECT count(*) AS leftovers FROM pg_class WHERE relname = 'ci_dup';
SELECT count(*) AS invalid_indexes FROM pg_index WHERE indrelid = 'ci'::regclass AND NOT indisvalid;

-- The function form runs inside the calling statement, whose snapshot the build would wait
-- for: it is refused before anything is created, in any isolation level, even in a
-- transaction block that only read.
SELECT try($$SELECT virtuoso.create_index_concurrently('CREATE INDEX ci_b_idx2 ON ci (b)')$$);
BEGIN;
DELETE FROM ci WHERE id = 2;
SELECT try($$SELECT virtuoso.create_index_concurrently('CREATE INDEX ci_b_idx2 ON ci (b)')$$);
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT try($$SELECT virtuoso.create_index_concurrently('CREATE INDEX ci_b_idx2 ON ci (b)')$$);
ROLLBACK;
BEGIN;
SELECT count(*) FROM ci;
SELECT try($$SELECT virtuoso.create_index_concurrently('CREATE INDEX ci_b_idx2 ON ci (b)')$$);
-- The procedure commits its caller: inside a transaction block it refuses.
SELECT try($$CALL virtuoso.build_index_concurrently('CREATE INDEX ci_b_idx2 ON ci (b)')$$);
COMMIT;
SELECT to_regclass('ci_b_idx2') AS not_created;
SELECT count(*) AS invalid_indexes FROM pg_index WHERE indrelid = 'ci'::regclass AND NOT indisvalid;
-- In REPEATABLE READ the procedure still builds: it commits before every build.
SET default_transaction_isolation = 'repeatable read';
CALL virtuoso.build_index_concurrently('CREATE INDEX ci_b_idx2 ON ci (b)');
RESET default_transaction_isolation;

-- An invalid index left by an earlier failed build of the same name is dropped and rebuilt.
CALL virtuoso.run_top_level('CREATE UNIQUE INDEX CONCURRENTLY ci_left ON ci (a)');
SELECT indisvalid FROM pg_index WHERE indexrelid = 'ci_left'::regclass;
CALL virtuoso.build_index_concurrently('CREATE INDEX ci_left ON ci (id, a)');
SELECT indisvalid, pg_get_indexdef(indexrelid) FROM pg_index WHERE indexrelid = 'ci_left'::regclass;

-- A role without rights on the table gets the server's own refusal.
GRANT EXECUTE ON PROCEDURE virtuoso.build_index_concurrently(text, text) TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
CALL virtuoso.build_index_concurrently('CREATE INDEX ci_not_mine ON ci (b)');
RESET ROLE;
REVOKE EXECUTE ON PROCEDURE virtuoso.build_index_concurrently(text, text) FROM regress_virtuoso_user;
