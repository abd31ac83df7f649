-- Index advisor: golden cases on a 100k-row table, errors, privileges, views.
-- Statistics are taken from every row (statistics target 1000) and autovacuum is off, so
-- that the planner's estimates, and with them the recommendations, are the same each run.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SET default_statistics_target = 1000;
CREATE TABLE adv_customers (id int PRIMARY KEY, email text UNIQUE, country text)
    WITH (autovacuum_enabled = off);
INSERT INTO adv_customers SELECT g, 'c' || g || '@example.com', (ARRAY['de','fr','it'])[g % 3 + 1]
FROM generate_series(1, 20000) g;
CREATE TABLE adv_orders (
    id int PRIMARY KEY, customer_id int REFERENCES adv_customers, region int, status text,
    created_at timestamptz, amount int, ref_code text, shipped_at timestamptz)
    WITH (autovacuum_enabled = off);
INSERT INTO adv_orders
SELECT g, g % 20000 + 1, (g / 7) % 10, (ARRAY['new','paid','shipped','done'])[g % 4 + 1],
       '2024-01-01'::timestamptz + g * interval '1 minute', (g * 7919) % 100000,
       md5(g::text), CASE WHEN g % 50 <> 0 THEN '2024-01-01'::timestamptz + g * interval '2 minutes' END
FROM generate_series(1, 100000) g;
CREATE TABLE adv_tiny (id int, code text) WITH (autovacuum_enabled = off);
INSERT INTO adv_tiny SELECT g, 'code' || g FROM generate_series(1, 10) g;
-- VACUUM: the visibility map lets index-only scans (covering indexes) pay.
VACUUM (ANALYZE) adv_customers, adv_orders, adv_tiny;
-- The bulk load is not a write-heavy workload: start the counters afresh.
SELECT pg_stat_force_next_flush();
SELECT pg_stat_reset_single_table_counters(t) FROM unnest(ARRAY['adv_customers', 'adv_orders', 'adv_tiny']::regclass[]) t;

-- The columns that are stable run to run.
CREATE FUNCTION adv_show(q text)
RETURNS TABLE(table_name text, columns text[], index_definition text, queries_improved int,
              total_calls bigint, improved boolean, size_mb numeric)
LANGUAGE sql AS $$
    SELECT table_name, columns, index_definition, queries_improved, total_calls,
           improvement_pct >= 10 AND cost_after < cost_before, round(estimated_size_bytes / 1048576.0, 1)
    FROM virtuoso.recommend_indexes_for_query(q)
$$;

-- 1. Equality on two columns: customer_id alone (5 rows per customer, region then filters
--    them); (customer_id, region) is nearly unique, twice the size built (2.2 MB against 1.1),
--    for a few cost units more: the single column wins on benefit per byte.
SELECT * FROM adv_show('SELECT * FROM adv_orders WHERE region = 3 AND customer_id = 42');
-- 2. Equality plus range: the equality column first.
SELECT * FROM adv_show('SELECT * FROM adv_orders WHERE created_at >= ''2024-02-01'' AND created_at < ''2024-03-01'' AND status = ''paid''');
-- 3. Equality plus ORDER BY ... LIMIT: (equality, sort column).
SELECT * FROM adv_show('SELECT id, amount FROM adv_orders WHERE region = 3 ORDER BY amount DESC LIMIT 10');
-- 4. A join on an unindexed foreign key (the customer side is found through its unique email).
SELECT * FROM adv_show('SELECT o.* FROM adv_customers c JOIN adv_orders o ON o.customer_id = c.id WHERE c.email = $1');
-- 5. $n parameters as pg_stat_statements stores them: types inferred, generic plan.
SELECT * FROM adv_show('SELECT * FROM adv_orders WHERE ref_code = $1');
-- 6. Already well indexed: nothing.
SELECT * FROM adv_show('SELECT * FROM adv_orders WHERE id = $1');
SELECT * FROM adv_show('SELECT * FROM adv_customers WHERE email = $1');
-- 7. A tiny table: nothing.
SELECT * FROM adv_show('SELECT * FROM adv_tiny WHERE code = $1');
-- 8. UPDATE and DELETE with a WHERE clause (the DELETE as case 1).
SELECT * FROM adv_show('UPDATE adv_orders SET amount = amount + 1 WHERE ref_code = $1');
SELECT * FROM adv_show('DELETE FROM adv_orders WHERE customer_id = $1 AND region = $2');
-- Statements are planned, never executed.
SELECT count(*) FROM virtuoso.recommend_indexes_for_query('DELETE FROM adv_tiny WHERE code = $1');
SELECT count(*) AS still_there FROM adv_tiny;
-- Partial index for a rare IS NULL, with the sort column as key.
SELECT * FROM adv_show('SELECT id FROM adv_orders WHERE shipped_at IS NULL ORDER BY created_at LIMIT 20');
-- Covering index when it pays: an index-only scan over a range.
SELECT * FROM adv_show('SELECT customer_id, amount FROM adv_orders WHERE customer_id BETWEEN 100 AND 6000');
-- A predicate no B-tree serves (LIKE '%x%') gives nothing.
SELECT * FROM adv_show('SELECT * FROM adv_orders WHERE ref_code LIKE ''%abc%''');

-- Other shapes: subqueries, correlated EXISTS, a view, a self join, no table at all.
SELECT table_name, columns FROM virtuoso.recommend_indexes_for_query(
    'SELECT * FROM adv_orders WHERE customer_id IN (SELECT id FROM adv_customers WHERE email = $1)');
SELECT table_name, columns FROM virtuoso.recommend_indexes_for_query(
    'SELECT c.* FROM adv_customers c WHERE c.email = $1
     AND EXISTS (SELECT 1 FROM adv_orders o WHERE o.customer_id = c.id)');
CREATE VIEW adv_paid AS SELECT * FROM adv_orders WHERE status = 'paid';
SELECT table_name, columns FROM virtuoso.recommend_indexes_for_query(
    'SELECT * FROM adv_paid WHERE ref_code = $1');
SELECT table_name, columns FROM virtuoso.recommend_indexes_for_query(
    'SELECT a.id FROM adv_orders a JOIN adv_orders b ON b.id = a.customer_id WHERE a.ref_code = $1');
SELECT count(*) FROM virtuoso.recommend_indexes_for_query('SELECT 1');
SELECT count(*) FROM virtuoso.recommend_indexes_for_query('SELECT * FROM generate_series(1, 10) g WHERE g = 3');

-- 9. From pg_stat_statements: a statement that cannot be analysed any more (its table was
-- dropped) is reported with a NOTICE, the others are still recommended.
CREATE TABLE adv_gone (a int);
SELECT pg_stat_statements_reset();
SELECT count(*) FROM adv_orders WHERE ref_code = 'c4ca4238a0b923820dcc509a6f75849b';
SELECT count(*) FROM adv_orders WHERE ref_code = 'c81e728d9d4c2f636f067f89cc14862c';
SELECT count(*) FROM adv_orders WHERE status = 'paid' AND created_at < '2024-01-02';
SELECT * FROM adv_gone WHERE a = 1;
DROP TABLE adv_gone;
SELECT query FROM pg_stat_statements WHERE query LIKE '%ref_code =%' AND query NOT LIKE '%pg_stat_statements%';
SELECT table_name, columns, queries_improved, total_calls, improvement_pct >= 10 AS improved
FROM virtuoso.recommend_indexes() ORDER BY table_name, columns;
-- min_calls: the statements called once drop out.
SELECT table_name, columns, queries_improved, total_calls
FROM virtuoso.recommend_indexes(min_calls => 2) ORDER BY table_name, columns;
-- min_improvement_pct 100 can never be met.
SELECT count(*) FROM virtuoso.recommend_indexes(1, 100);
-- weighted by total time, the same set.
SELECT table_name, columns FROM virtuoso.recommend_indexes(1, 10, 'total_time') ORDER BY 1, 2;

-- Nothing stays behind: no lock on the tables, no index.
BEGIN;
SELECT count(*) > 0 FROM virtuoso.recommend_indexes_for_query('SELECT * FROM adv_orders WHERE ref_code = $1');
SELECT count(*) AS locks_held FROM pg_locks
WHERE pid = pg_backend_pid() AND relation IN ('adv_orders'::regclass, 'adv_customers'::regclass);
COMMIT;
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'adv_orders'::regclass;

-- optimize_table_indexes: report, then apply.
SELECT table_name, columns, queries_improved, applied FROM virtuoso.optimize_table_indexes('adv_orders');
-- From a function call the concurrent build would wait for the call's own snapshot: each
-- is refused (25001), reported as a WARNING, and applied = false; nothing is left behind.
SELECT table_name, columns, queries_improved, applied FROM virtuoso.optimize_table_indexes('adv_orders', apply => true);
SELECT indexrelid::regclass, indisvalid FROM pg_index WHERE indrelid = 'adv_orders'::regclass ORDER BY 1::text;
-- The recommended definitions build through the procedure form.
CALL virtuoso.build_index_concurrently('CREATE INDEX ON public.adv_orders USING btree (ref_code)');
CALL virtuoso.build_index_concurrently('CREATE INDEX ON public.adv_orders USING btree (status, created_at)');
SELECT indexrelid::regclass, indisvalid FROM pg_index WHERE indrelid = 'adv_orders'::regclass ORDER BY 1::text;
-- applied: nothing left to recommend for those statements.
SELECT count(*) FROM virtuoso.optimize_table_indexes('adv_orders');
-- a table no statement uses: nothing.
SELECT count(*) FROM virtuoso.optimize_table_indexes('adv_tiny');

-- Errors.
SELECT try($$SELECT * FROM virtuoso.recommend_indexes_for_query(NULL)$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes_for_query('  ; ')$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes_for_query('VACUUM adv_orders')$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes_for_query('SELECT * FROM adv_missing')$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes_for_query('SELECT nope FROM adv_orders')$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes_for_query('SELECT 1; SELECT 2')$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes_for_query('SELECT * FROM adv_orders WHERE')$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes(-1)$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes(NULL)$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes(1, 'NaN')$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes(1, 101)$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes(1, 10, 'rows')$$);
SELECT try($$SELECT * FROM virtuoso.optimize_table_indexes(NULL)$$);
SELECT try($$SELECT * FROM virtuoso.optimize_table_indexes('adv_missing')$$);
CREATE VIEW adv_view AS SELECT * FROM adv_tiny;
SELECT try($$SELECT * FROM virtuoso.optimize_table_indexes('adv_view')$$);
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost('SELECT 1', 'adv_orders', '{nope}')$$);
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost('SELECT 1', 'adv_orders', '{}')$$);
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost('SELECT 1', 'adv_orders', ARRAY[NULL])$$);
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost('SELECT 1', 'adv_orders', '{id}', '{}', 0)$$);
SELECT try($$SELECT * FROM virtuoso.advisor_benchmark(1, 40)$$);
SELECT try($$SELECT * FROM virtuoso.advisor_benchmark(1, 8, -1)$$);
SELECT try($$SELECT * FROM virtuoso.advisor_benchmark(1, 8, 1000000, 1001)$$);
CREATE TABLE adv_geo (id int, p point);
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost('SELECT 1', 'adv_geo', '{p}')$$);
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost('SELECT 1', 'adv_view', '{id}')$$);

-- Privileges: nothing for PUBLIC; a granted role still needs to be able to read the table.
SET ROLE regress_virtuoso_nobody;
SELECT try($$SELECT * FROM virtuoso.recommend_indexes_for_query('SELECT 1')$$);
RESET ROLE;
SET ROLE regress_virtuoso_user;
SELECT try($$SELECT * FROM virtuoso.recommend_indexes_for_query('SELECT * FROM adv_orders WHERE amount = 5')$$);
RESET ROLE;

-- apply by a role that may read but not index the table: the build fails, a WARNING says
-- why, applied is false, and nothing is left behind.  (Its own statements are its workload.)
CREATE TABLE adv_owned (id int PRIMARY KEY, k int) WITH (autovacuum_enabled = off);
INSERT INTO adv_owned SELECT g, g % 5000 FROM generate_series(1, 50000) g;
VACUUM ANALYZE adv_owned;
SELECT pg_stat_force_next_flush();
SELECT pg_stat_reset_single_table_counters('adv_owned'::regclass);
GRANT SELECT ON adv_owned TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
SELECT count(*) FROM adv_owned WHERE k = 5;
SELECT columns, applied FROM virtuoso.optimize_table_indexes('adv_owned', apply => true);
RESET ROLE;
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'adv_owned'::regclass;

-- unused_indexes and redundant_indexes on prepared cases.
CREATE TABLE adv_idx (a int, b int, c int, d text) WITH (autovacuum_enabled = off);
INSERT INTO adv_idx SELECT g, g % 10, g % 100, 'x' FROM generate_series(1, 1000) g;
CREATE INDEX adv_idx_a ON adv_idx (a);
CREATE INDEX adv_idx_a_b ON adv_idx (a, b);
CREATE INDEX adv_idx_a_b_dup ON adv_idx (a, b);
CREATE INDEX adv_idx_b_a ON adv_idx (b, a);
CREATE INDEX adv_idx_c_partial ON adv_idx (c) WHERE b = 1;
CREATE INDEX adv_idx_c ON adv_idx (c);
CREATE UNIQUE INDEX adv_idx_a_unique ON adv_idx (a);
CREATE INDEX adv_idx_d_desc ON adv_idx (a DESC);
SELECT redundant_index, covering_index, reason FROM virtuoso.redundant_indexes
WHERE tablename = 'adv_idx' ORDER BY 1, 2;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM adv_idx WHERE c = 5;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT indexname, idx_scan FROM virtuoso.unused_indexes WHERE tablename = 'adv_idx' ORDER BY 1;
-- The tables of an extension (this one's logs among them) are its own: their indexes are
-- never advised dropped (not scanned yet is not unneeded: the extension's next query may
-- need them) and no index is advised on them (a dump would lose it).
SELECT count(*) AS extension_indexes_listed FROM (
    SELECT indexname FROM virtuoso.unused_indexes WHERE schemaname = 'virtuoso'
    UNION ALL SELECT redundant_index FROM virtuoso.redundant_indexes WHERE schemaname = 'virtuoso') x;
SELECT count(*) AS advised FROM virtuoso.recommend_indexes_for_query(
    'SELECT * FROM virtuoso.migration_log WHERE error_message = ''x'' AND executed_by = ''y''');

-- Statements that read only the system catalogs (a monitoring query, a function call) can
-- gain nothing from an index: they are left out before the planner sees them (no what-if
-- plan), and the extension's own bookkeeping (the log rows a statement-by-statement
-- migration writes through its worker) never enters the workload.
SELECT pg_stat_statements_reset();
SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'adv_orders';
SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = 1;
SELECT count(*) FROM pg_catalog.pg_locks WHERE NOT granted;
SELECT status FROM virtuoso.execute_migration_with_monitoring('adv_nontx',
    'CREATE TABLE adv_nontx (a int); DROP TABLE adv_nontx', NULL, '{"transactional": false}');
SELECT count(*) AS bookkeeping_in_workload FROM pg_stat_statements
WHERE query ~ 'virtuoso\.(migration_log|migration_stats|alert_log)';
SELECT measure, value FROM virtuoso.advisor_benchmark()
WHERE measure IN ('statements_with_tables', 'whatif_plans') ORDER BY 1;

-- An INSERT of VALUES or of generated rows needs no analysis (no index serves it): it is not
-- parsed against the catalogs, so one whose column has gone since is not "not analysed";
-- the rows it wrote still weigh on the table's indexes (advisor_budget, write cost).  An
-- INSERT that reads a table is analysed as before.
CREATE TABLE adv_ins (a int, gone int);
SELECT pg_stat_statements_reset();
INSERT INTO adv_ins (a, gone) VALUES (1, 2);
INSERT INTO adv_ins (a, gone) VALUES (1, 2), (3, 4);
INSERT INTO adv_ins (a, gone) SELECT g, g FROM generate_series(1, 3) g;
INSERT INTO adv_ins (a, gone) SELECT a, gone FROM adv_ins WHERE a = 1;
ALTER TABLE adv_ins DROP COLUMN gone;
SELECT measure, value FROM virtuoso.advisor_benchmark()
WHERE measure IN ('statements_not_analysed', 'statements_with_tables') ORDER BY 1;
DROP TABLE adv_ins;

-- A cancel (here statement_timeout) while the workload's statements are analysed ends the
-- call: it is not one statement's failure, to report with a NOTICE and skip.  Planning this
-- eleven-way join exhaustively takes far longer than the timeout.
DO $$ BEGIN FOR i IN 1..11 LOOP EXECUTE format('CREATE TABLE adv_j%s (a int, b int)', i); END LOOP; END $$;
SELECT pg_stat_statements_reset();
SELECT count(*) FROM adv_j1 JOIN adv_j2 USING (a) JOIN adv_j3 USING (a) JOIN adv_j4 USING (a)
  JOIN adv_j5 USING (a) JOIN adv_j6 USING (a) JOIN adv_j7 USING (a) JOIN adv_j8 USING (a)
  JOIN adv_j9 USING (a) JOIN adv_j10 USING (a) JOIN adv_j11 USING (a) WHERE adv_j1.b = 1;
SET join_collapse_limit = 12;
SET from_collapse_limit = 12;
SET geqo = off;
SET statement_timeout = '20ms';
SELECT count(*) FROM virtuoso.recommend_indexes();
RESET statement_timeout;
RESET geqo;
RESET from_collapse_limit;
RESET join_collapse_limit;
DO $$ BEGIN FOR i IN 1..11 LOOP EXECUTE format('DROP TABLE adv_j%s', i); END LOOP; END $$;

-- Without pg_stat_statements in the database there is no workload: a clear error.
DROP EXTENSION pg_stat_statements;
SELECT try($$SELECT * FROM virtuoso.recommend_indexes()$$);
SELECT try($$SELECT * FROM virtuoso.optimize_table_indexes('adv_orders')$$);
-- recommend_indexes_for_query needs no workload.
SELECT count(*) FROM virtuoso.recommend_indexes_for_query('SELECT * FROM adv_orders WHERE amount = $1');
CREATE EXTENSION pg_stat_statements;
