-- The monitoring views.
CREATE TABLE dash_t (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off);
INSERT INTO dash_t SELECT g, 'x' FROM generate_series(1, 100) g;
UPDATE dash_t SET v = 'y' WHERE id <= 10;
DELETE FROM dash_t WHERE id > 80;
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT schemaname, tablename, inserts, updates, deletes, live_tuples, dead_tuples, dead_tuple_pct,
       total_bytes >= table_bytes + index_bytes AS sizes_add_up, table_bytes > 0 AS has_pages,
       last_vacuum IS NULL AS never_vacuumed
FROM virtuoso.migration_performance_dashboard WHERE tablename = 'dash_t';
VACUUM dash_t;
SELECT pg_stat_clear_snapshot();
SELECT dead_tuples, dead_tuple_pct, last_vacuum IS NOT NULL AS vacuumed, vacuum_count
FROM virtuoso.migration_performance_dashboard WHERE tablename = 'dash_t';
DROP TABLE dash_t;

-- slow_queries_analysis without pg_stat_statements: a clear message, not a broken install
DROP EXTENSION IF EXISTS pg_stat_statements;
SELECT try('SELECT * FROM virtuoso.slow_queries_analysis');
SELECT count(*) FROM virtuoso.slow_queries_analysis;
-- with it
CREATE EXTENSION pg_stat_statements;
SELECT pg_stat_statements_reset();
SELECT count(*) AS slow_marker FROM pg_sleep(0.05);
SELECT count(*) AS slow_marker FROM pg_sleep(0.05);
SELECT query, calls, total_exec_time >= 100 AS took_100ms, mean_exec_time >= 50 AS mean_50ms,
       stddev_exec_time >= 0 AS has_stddev, rows, hit_percent IS NULL OR hit_percent BETWEEN 0 AND 100 AS pct_ok
FROM virtuoso.slow_queries_analysis WHERE query LIKE '%slow_marker%';
-- slowest first
SELECT bool_and(ordered) AS slowest_first FROM (
    SELECT total_exec_time >= lead(total_exec_time) OVER () OR lead(total_exec_time) OVER () IS NULL AS ordered
    FROM virtuoso.slow_queries_analysis) s;
DROP EXTENSION pg_stat_statements;
