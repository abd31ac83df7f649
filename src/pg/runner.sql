-- The statement runner: statements in a background worker, as the calling role.
CREATE FUNCTION virtuoso.execute_top_level(statement text)
RETURNS text
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_top_level';
COMMENT ON FUNCTION virtuoso.execute_top_level(text) IS
'Runs one statement as a top-level command in a background worker, in this database, as the calling role and with its settings, and returns its command tag. VACUUM and DROP INDEX CONCURRENTLY work through it; statements that wait for older snapshots (CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY, DETACH PARTITION CONCURRENTLY) are refused with 25001, since the calling statement holds one: use the procedure run_top_level. Errors come back with their SQLSTATE; a statement that waits for a lock the calling transaction holds, directly or behind other sessions, fails with 40P01.';

CREATE FUNCTION virtuoso.execute_autonomous(statement text)
RETURNS text
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_autonomous';
COMMENT ON FUNCTION virtuoso.execute_autonomous(text) IS
'Runs SQL in a background worker in a transaction of its own, as the calling role, and returns its command tag: what it writes stays committed even if the calling transaction rolls back.';

CREATE PROCEDURE virtuoso.run_top_level(statement text, INOUT command_tag text DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_run_top_level';
COMMENT ON PROCEDURE virtuoso.run_top_level(text, text) IS
'Procedure form of execute_top_level, for statements that wait for every older snapshot (CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY, DETACH PARTITION CONCURRENTLY): commits the calling transaction first, then runs the statement in a background worker while this session holds no snapshot, and returns its command tag. Must be called outside a transaction block.';
