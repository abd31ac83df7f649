-- Data integrity rules, database health checks and monitoring views.
CREATE FUNCTION virtuoso.validate_data_integrity(validation_rules jsonb)
RETURNS TABLE(rule_name text, status text, result_count bigint, expected_count bigint,
              validation_message text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_validate_data_integrity';
COMMENT ON FUNCTION virtuoso.validate_data_integrity(jsonb) IS
'Runs a JSON array of data-integrity rules (query rules and typed rules: not_null, unique, foreign_key, accepted_values, row_count, range, expression, freshness), each read-only in its own subtransaction on one snapshot, and returns one row per rule: PASS, FAIL, WARN or ERROR with counts and a message that samples offending rows.';
