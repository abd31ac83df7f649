-- Zero-downtime helpers.
CREATE FUNCTION virtuoso.create_index_concurrently(index_definition text, max_attempts integer DEFAULT 3)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_create_index_concurrently';
COMMENT ON FUNCTION virtuoso.create_index_concurrently(text, integer) IS
'Builds an index with CREATE INDEX CONCURRENTLY (added where missing) through the statement runner, checks pg_index.indisvalid, drops and retries an invalid or transiently failed build up to max_attempts times, and says what it did. Refuses anything that is not one CREATE INDEX statement.';
