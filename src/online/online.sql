-- Zero-downtime helpers.
CREATE FUNCTION virtuoso.create_index_concurrently(index_definition text, max_attempts integer DEFAULT 3)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_create_index_concurrently';
COMMENT ON FUNCTION virtuoso.create_index_concurrently(text, integer) IS
'Builds an index with CREATE INDEX CONCURRENTLY (added where missing) through the statement runner, checks pg_index.indisvalid, drops and retries an invalid or transiently failed build up to max_attempts times, and says what it did. Refuses anything that is not one CREATE INDEX statement. As a function it runs inside the calling statement, whose snapshot the build would wait for: it refuses with 25001; use the procedure build_index_concurrently.';

CREATE PROCEDURE virtuoso.build_index_concurrently(index_definition text, INOUT index_name text DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_build_index_concurrently';
COMMENT ON PROCEDURE virtuoso.build_index_concurrently(text, text) IS
'Procedure form of create_index_concurrently: commits the calling transaction, then builds the index with CREATE INDEX CONCURRENTLY while this session holds no snapshot, checks pg_index.indisvalid, drops and retries an invalid or transiently failed build up to 3 times, and returns the index name (NULL when IF NOT EXISTS found one). Must be called outside a transaction block.';
