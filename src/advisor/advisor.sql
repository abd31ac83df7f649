-- Index advisor (API.md §5).
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

CREATE FUNCTION virtuoso.recommend_indexes_for_query(query text)
RETURNS TABLE(table_name text, columns text[], index_definition text, queries_improved int,
              total_calls bigint, cost_before float8, cost_after float8,
              improvement_pct float8, estimated_size_bytes bigint)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_recommend_indexes_for_query';
COMMENT ON FUNCTION virtuoso.recommend_indexes_for_query(text) IS
'Recommends B-tree indexes for one SELECT/INSERT/UPDATE/DELETE statement ($n parameters allowed: their types are inferred and the plan is generic), costed by the real planner with hypothetical indexes; only improvements of at least 10% are proposed. The statement is planned as the caller inside a security-restricted operation; every table it reads must be readable by the caller (42501).';

CREATE FUNCTION virtuoso.optimize_table_indexes(table_name regclass, apply boolean DEFAULT false)
RETURNS TABLE(table_name text, columns text[], index_definition text, queries_improved int,
              total_calls bigint, cost_before float8, cost_after float8,
              improvement_pct float8, estimated_size_bytes bigint, applied boolean)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_optimize_table_indexes';
COMMENT ON FUNCTION virtuoso.optimize_table_indexes(regclass, boolean) IS
'Recommends indexes on one table from the pg_stat_statements workload, as recommend_indexes does; with apply, builds each with CREATE INDEX CONCURRENTLY through the statement runner (indisvalid checked, an invalid build dropped and retried) and sets applied. A build that fails gives a WARNING and applied = false. The caller must be able to read table_name (42501).';

CREATE FUNCTION virtuoso.hypothetical_index_cost(
    query text, table_name regclass, key_columns text[],
    include_columns text[] DEFAULT '{}', index_pages bigint DEFAULT NULL,
    tree_height int DEFAULT NULL)
RETURNS TABLE(cost_without float8, cost_with float8, index_used boolean,
              estimated_pages bigint, estimated_size_bytes bigint, estimated_tree_height int)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_hypothetical_index_cost';
COMMENT ON FUNCTION virtuoso.hypothetical_index_cost(text, regclass, text[], text[], bigint, int) IS
'What-if costing of one statement with one hypothetical B-tree index (key_columns, optional INCLUDE columns): the generic plan''s total cost without and with it, whether the plan uses it, and the estimated index size. index_pages (1 to 4294967294) and tree_height (-1 for the planner''s own estimate from the pages, 0 to 32) override the estimate (to compare with other tools at the same size). The caller must be able to read table_name (42501).';

CREATE FUNCTION virtuoso.advisor_benchmark(min_calls bigint DEFAULT 1,
                                           candidates_per_group int DEFAULT 12,
                                           max_index_bytes bigint DEFAULT NULL,
                                           max_indexes int DEFAULT NULL)
RETURNS TABLE(measure text, value float8)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_advisor_benchmark';
COMMENT ON FUNCTION virtuoso.advisor_benchmark(bigint, integer, bigint, integer) IS
'Benchmark of the index advisor over the pg_stat_statements workload: the greedy selection against an exhaustive search over the same candidates (the best candidates_per_group of each group of joined tables), and the time per what-if plan; then the default (lean) recommendation over every candidate against the reference Extend algorithm (Schlosser et al.) costed through the same what-if planner, at the same estimated storage and unbounded, and ours within the storage of unbounded Extend: workload cost relative to no index, index count, estimated bytes, seconds. With max_index_bytes (not negative), also the answer of recommend_indexes(max_index_bytes => max_index_bytes, max_indexes => max_indexes) (figures ours_at_budget_*; max_indexes 0 to 1000, default the advisor''s own bound). NOTICEs name the indexes of Extend''s set at our storage and of the budgeted answer with their estimated bytes, so that they can be built.';

-- Indexes that no scan has used since the statistics were reset, and that enforce nothing.
CREATE VIEW virtuoso.unused_indexes AS
SELECT s.schemaname,
       s.relname AS tablename,
       s.indexrelname AS indexname,
       pg_relation_size(s.indexrelid) AS index_size_bytes,
       s.idx_scan,
       pg_get_indexdef(s.indexrelid) AS index_definition,
       -- qualified and quoted: right whatever the search_path of whoever runs it
       pg_catalog.format('DROP INDEX CONCURRENTLY %I.%I', s.schemaname, s.indexrelname)
           AS drop_statement
FROM pg_catalog.pg_stat_user_indexes s
JOIN pg_catalog.pg_index i ON i.indexrelid = s.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = s.relid
WHERE s.idx_scan = 0
  -- only tables the caller may see, as virtuoso.health_may_see decides (defined later)
  AND (pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
       OR pg_catalog.pg_has_role(t.relowner, 'USAGE')
       OR pg_catalog.has_any_column_privilege(t.oid, 'SELECT'))
  AND NOT i.indisunique
  AND NOT i.indisprimary
  AND NOT i.indisexclusion
  AND i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = s.indexrelid)
  -- an extension's tables keep the indexes it made (rarely scanned is not unneeded)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND d.objid OPERATOR(pg_catalog.=) s.relid
                    AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                    AND d.deptype OPERATOR(pg_catalog.=) 'e');
COMMENT ON VIEW virtuoso.unused_indexes IS
'Valid, non-unique indexes that back no constraint and have not been scanned (idx_scan = 0) since the statistics were last reset, with their size and a DROP INDEX CONCURRENTLY statement (schema-qualified and quoted). Only indexes of tables the caller owns or may read (all with pg_read_all_stats); not those of an extension''s own tables.';

-- An index whose key columns (same operator classes, collations and sort orders) are a leading prefix of
-- another index's on the same table, with the same predicate and access method, serves no
-- query the other cannot.  Of two identical indexes, the newer is the redundant one.
CREATE VIEW virtuoso.redundant_indexes AS
WITH idx AS (
    SELECT i.indexrelid, i.indrelid, i.indisunique, i.indisprimary, c.relam,
           i.indnkeyatts,
           (string_to_array(i.indkey::text, ' ')::int2[])[1:i.indnkeyatts] AS keys,
           string_to_array(i.indkey::text, ' ')::int2[] AS all_columns,
           (string_to_array(i.indclass::text, ' ')::oid[])[1:i.indnkeyatts] AS opclasses,
           (string_to_array(i.indcollation::text, ' ')::oid[])[1:i.indnkeyatts] AS collations,
           (string_to_array(i.indoption::text, ' ')::int2[])[1:i.indnkeyatts] AS options,
           pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS predicate,
           pg_catalog.pg_get_expr(i.indexprs, i.indrelid) AS expressions
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
    JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE i.indisvalid
      -- only tables the caller may see, as virtuoso.health_may_see decides (defined later)
      AND (pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
           OR pg_catalog.pg_has_role(tc.relowner, 'USAGE')
           OR pg_catalog.has_any_column_privilege(tc.oid, 'SELECT'))
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast'
      -- an extension's tables keep the indexes it made
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                        AND d.objid OPERATOR(pg_catalog.=) i.indrelid
                        AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                        AND d.deptype OPERATOR(pg_catalog.=) 'e')
)
SELECT n.nspname AS schemaname,
       t.relname AS tablename,
       r.indexrelid::regclass::text AS redundant_index,
       k.indexrelid::regclass::text AS covering_index,
       pg_relation_size(r.indexrelid) AS redundant_size_bytes,
       CASE WHEN r.keys = k.keys THEN 'duplicate'
            ELSE 'prefix' END AS reason,
       pg_get_indexdef(r.indexrelid) AS redundant_definition,
       pg_get_indexdef(k.indexrelid) AS covering_definition,
       pg_catalog.format('DROP INDEX CONCURRENTLY %I.%I', n.nspname, ri.relname)
           AS drop_statement
FROM idx r
JOIN idx k ON k.indrelid = r.indrelid AND k.indexrelid <> r.indexrelid
          AND k.relam = r.relam
          AND k.indnkeyatts >= r.indnkeyatts
          AND k.keys[1:r.indnkeyatts] = r.keys
          AND k.opclasses[1:r.indnkeyatts] = r.opclasses
          AND k.collations[1:r.indnkeyatts] = r.collations
          AND k.options[1:r.indnkeyatts] = r.options
          AND k.predicate IS NOT DISTINCT FROM r.predicate
          AND k.expressions IS NOT DISTINCT FROM r.expressions
          AND r.all_columns <@ k.all_columns
JOIN pg_catalog.pg_class t ON t.oid = r.indrelid
JOIN pg_catalog.pg_class ri ON ri.oid = r.indexrelid  -- in the table's schema, as every index
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE NOT r.indisprimary
  -- a unique index enforces uniqueness of exactly its keys: keep it unless the other is an
  -- identical unique index
  AND (NOT r.indisunique OR (k.indisunique AND k.keys = r.keys))
  -- of two identical indexes report one: the newer (or the non-unique) one
  AND NOT (k.keys = r.keys AND r.all_columns = k.all_columns AND k.indisunique = r.indisunique
           AND NOT k.indisprimary AND k.indexrelid > r.indexrelid)
  AND NOT (k.keys = r.keys AND r.all_columns = k.all_columns AND NOT k.indisunique
           AND r.indisunique)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = r.indexrelid);
COMMENT ON VIEW virtuoso.redundant_indexes IS
'Indexes whose key columns (with the same operator classes, collations, sort orders, predicate and access method) are a leading prefix of, or identical to, another index of the same table, and that back no constraint: the other index serves every query this one does. Of two identical indexes, the newer is listed. Only indexes of tables the caller owns or may read (all with pg_read_all_stats); not those of an extension''s own tables.';
