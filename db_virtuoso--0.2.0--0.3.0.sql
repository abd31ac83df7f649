-- db_virtuoso 0.2.0 -> 0.3.0
\echo Use "ALTER EXTENSION db_virtuoso UPDATE" to load this file. \quit

-- recommend_indexes gains max_index_bytes, max_indexes and a details column: a new
-- signature and result type, so the 0.2.0 function is dropped and made anew.
DROP FUNCTION virtuoso.recommend_indexes(bigint, float8, text);

CREATE FUNCTION virtuoso.recommend_indexes(
    min_calls bigint DEFAULT 1,
    min_improvement_pct float8 DEFAULT 10,
    weight_by text DEFAULT 'calls',
    max_index_bytes bigint DEFAULT NULL,
    max_indexes int DEFAULT NULL)
RETURNS TABLE(table_name text, columns text[], index_definition text, queries_improved int,
              total_calls bigint, cost_before float8, cost_after float8,
              improvement_pct float8, estimated_size_bytes bigint, details jsonb)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_recommend_indexes';

COMMENT ON FUNCTION virtuoso.recommend_indexes(bigint, float8, text, bigint, int) IS
'Recommends a small set of B-tree indexes for the workload in pg_stat_statements (top-level statements of this database with at least min_calls calls, weighted by calls or total_time): candidates from the analysed statements, costed by the real planner with hypothetical indexes, chosen greedily by benefit per byte; a chosen index may grow by a key column its statements use, and covering variants of the same keys merge into one index (never two indexes of which one makes the other redundant by the rule of virtuoso.redundant_indexes). Each step must improve the statements it improves by min_improvement_pct, after the write cost of its index is taken off: every row the workload''s INSERT, UPDATE and DELETE statements wrote to its table (pg_stat_statements rows: the same period as the reads; the counters of pg_stat_user_tables also hold bulk loads from before the workload) costs one index probe as the planner prices it (random_page_cost plus 50 * cpu_operator_cost per tree level), in the workload''s weights. max_index_bytes bounds the summed estimated size, max_indexes the count; without max_index_bytes a step must save at least 1% of the workload''s estimated cost per tenth of the size of the tables the workload reads that its index takes (lean default). Ties within 2% are broken by a stable order (fewer columns, then table, keys). Normalised statements that do not analyse as written are retried with constants in constant-only positions (extract($1 FROM ...), date $1) and with each parameter given numeric, bigint, text, date, timestamptz, float8, boolean or interval; statements that still cannot be analysed are reported with a NOTICE and the reason, and left out. Each statement is analysed and planned as the role that ran it (pg_stat_statements userid) inside a security-restricted operation, so the functions planning evaluates get that role''s rights only; statements of roles whose privileges the caller does not have, or that no longer exist, are not analysed (one NOTICE counts them). details: for an index to create, {"action": "create", "statements": [{query, calls, cost_before, cost_after}]} with the per-call cost of each statement it serves; drop advice rows follow, with index_definition DROP INDEX CONCURRENTLY, NULL costs, estimated_size_bytes the negative of the bytes freed and details {"action": "drop", "reason": superseded | redundant | unused, "index", "frees_bytes", "covered_by"}: existing non-unique indexes of the workload''s tables, backing no constraint, that a recommended index makes redundant, that virtuoso.redundant_indexes lists, or that were not scanned since the statistics were reset.';

COMMENT ON FUNCTION virtuoso.advisor_benchmark(bigint, integer) IS
'Benchmark of the index advisor over the pg_stat_statements workload: the greedy selection against an exhaustive search over the same candidates (the best candidates_per_group of each group of joined tables), and the time per what-if plan; then the default (lean) recommendation over every candidate against the reference Extend algorithm (Schlosser et al.) costed through the same what-if planner, at the same estimated storage and unbounded, and ours within the storage of unbounded Extend: workload cost relative to no index, index count, estimated bytes, seconds.';

REVOKE ALL ON FUNCTION virtuoso.recommend_indexes(bigint, float8, text, bigint, int) FROM PUBLIC;
