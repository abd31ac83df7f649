-- The statement runner: statements in a background worker, as the calling role.
CREATE FUNCTION virtuoso.execute_top_level(statement text)
RETURNS text
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_top_level';
COMMENT ON FUNCTION virtuoso.execute_top_level(text) IS
'Runs one statement as a top-level command in a background worker, in this database, as the calling role and with its settings, and returns its command tag. VACUUM, CREATE/DROP INDEX CONCURRENTLY and REINDEX CONCURRENTLY work through it. Errors come back with their SQLSTATE; a statement that needs a lock the calling transaction holds fails with 40P01.';

CREATE FUNCTION virtuoso.execute_autonomous(statement text)
RETURNS text
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_autonomous';
COMMENT ON FUNCTION virtuoso.execute_autonomous(text) IS
'Runs SQL in a background worker in a transaction of its own, as the calling role, and returns its command tag: what it writes stays committed even if the calling transaction rolls back.';
