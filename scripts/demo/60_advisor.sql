-- Demo part: index recommendations from the real workload, costed by the real planner
-- (run by scripts/demo.sh).  Resets pg_stat_statements so that the workload is this part's.
\pset footer off
\set ECHO queries

\echo
\echo '### Index advisor: a shop with customers and orders, no index but the primary keys'
CREATE TABLE advisor_customers (id int PRIMARY KEY, email text, country text);
INSERT INTO advisor_customers
SELECT g, 'c' || g || '@example.com', (ARRAY['de','fr','it'])[1 + g % 3] FROM generate_series(1, 20000) g;
CREATE TABLE advisor_orders (id int PRIMARY KEY, customer_id int REFERENCES advisor_customers,
                             status text, total int, created_at timestamptz);
INSERT INTO advisor_orders
SELECT g, 1 + g % 20000, (ARRAY['new','paid','shipped','done'])[1 + g % 4], (g * 7919) % 10000,
       '2024-01-01'::timestamptz + g * interval '1 minute'
FROM generate_series(1, 200000) g;
VACUUM ANALYZE advisor_customers, advisor_orders;

\echo
\echo '### One statement ($n parameters are fine): which index, and what it buys'
SELECT table_name, index_definition, round(cost_before) AS cost_before,
       round(cost_after) AS cost_after, round(improvement_pct) AS pct,
       pg_size_pretty(estimated_size_bytes) AS size
FROM virtuoso.recommend_indexes_for_query(
    'SELECT * FROM advisor_orders WHERE status = $1 ORDER BY created_at DESC LIMIT 10');

\echo
\echo '### A workload: pg_stat_statements records these (normalised, with $n)'
SELECT pg_stat_statements_reset();
SELECT count(*) FROM advisor_orders WHERE customer_id = 17 AND status = 'paid';
SELECT count(*) FROM advisor_orders WHERE customer_id = 4711 AND status = 'new';
SELECT id, total FROM advisor_orders WHERE customer_id = 99 ORDER BY created_at DESC LIMIT 5;
SELECT * FROM advisor_customers WHERE email = 'c42@example.com';
SELECT o.id FROM advisor_orders o JOIN advisor_customers c ON c.id = o.customer_id
WHERE c.email = 'c7@example.com';
SELECT sum(total) FROM advisor_orders WHERE created_at >= '2024-03-01' AND created_at < '2024-03-02';
UPDATE advisor_orders SET status = 'done' WHERE customer_id = 123 AND status = 'shipped';
-- this one cannot be analysed later: its table is gone (reported, the others still advised)
CREATE TABLE advisor_scratch (a int);
SELECT * FROM advisor_scratch WHERE a = 1;
DROP TABLE advisor_scratch;

\echo
\echo '### The whole workload: a small set of indexes chosen together, greedy by benefit per byte'
SELECT table_name, columns, queries_improved, total_calls, round(improvement_pct) AS pct,
       pg_size_pretty(estimated_size_bytes) AS size, index_definition
FROM virtuoso.recommend_indexes()
ORDER BY cost_before - cost_after DESC;

\echo
\echo '### Apply on one table: CREATE INDEX CONCURRENTLY through the procedure form, validity checked'
SELECT index_definition FROM virtuoso.optimize_table_indexes('advisor_orders') LIMIT 1 \gset
CALL virtuoso.build_index_concurrently(:'index_definition');
SELECT indexrelid::regclass AS index, indisvalid FROM pg_index
WHERE indrelid = 'advisor_orders'::regclass ORDER BY 1::text;
\echo 'Nothing left to recommend for that table:'
SELECT count(*) AS recommendations FROM virtuoso.optimize_table_indexes('advisor_orders');

\echo
\echo '### What-if costing of any index you have in mind (no index is created)'
SELECT round(cost_without) AS cost_without, round(cost_with) AS cost_with, index_used,
       pg_size_pretty(estimated_size_bytes) AS estimated_size
FROM virtuoso.hypothetical_index_cost(
    'SELECT id FROM advisor_orders WHERE total BETWEEN 10 AND 20', 'advisor_orders', '{total}');

\echo
\echo '### Redundant and unused indexes'
CREATE INDEX advisor_orders_customer_only ON advisor_orders (customer_id);
SELECT redundant_index, covering_index, reason, pg_size_pretty(redundant_size_bytes) AS size
FROM virtuoso.redundant_indexes WHERE tablename LIKE 'advisor%';
SELECT indexname, pg_size_pretty(index_size_bytes) AS size, drop_statement
FROM virtuoso.unused_indexes WHERE tablename LIKE 'advisor%' ORDER BY 1;
DROP TABLE advisor_orders, advisor_customers;
