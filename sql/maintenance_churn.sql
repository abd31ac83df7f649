-- A tiny hot table: due like autovacuum (base + scale: 1001 changes for 10 rows), and not
-- maintained again within virtuoso.maintenance_min_interval of its last VACUUM / ANALYZE.
CREATE SCHEMA churn;
CREATE PROCEDURE churn.flush() LANGUAGE sql AS 'SELECT pg_catalog.pg_stat_force_next_flush()';
CREATE PROCEDURE churn.touch(n int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP UPDATE churn.hot SET v = v + 1; END LOOP;
END $$;
CREATE TABLE churn.hot (id int PRIMARY KEY, v int);
INSERT INTO churn.hot SELECT g, 0 FROM generate_series(1, 10) g;
CALL churn.flush();
SHOW virtuoso.maintenance_min_interval;

-- 910 changes (10 rows inserted, 900 updates) of a 10-row table are below 1000 + 10% of 10: nothing is due.
CALL churn.touch(90);
CALL churn.flush();
SELECT count(*) AS actions FROM virtuoso.perform_maintenance_if_needed() WHERE schemaname = 'churn';

-- 1200 more: analysed (and vacuumed if its dead tuples are due) once...
CALL churn.touch(120);
CALL churn.flush();
SELECT count(*) FILTER (WHERE reason LIKE '%rows changed since the last analyze%') AS analyzed
FROM virtuoso.perform_maintenance_if_needed() WHERE schemaname = 'churn';
-- ... and not again after another 1200 changes within the minimum interval (twice)
CALL churn.touch(120);
CALL churn.flush();
SELECT count(*) AS actions FROM virtuoso.perform_maintenance_if_needed() WHERE schemaname = 'churn';
CALL churn.touch(120);
CALL churn.flush();
SELECT count(*) AS actions FROM virtuoso.perform_maintenance_if_needed() WHERE schemaname = 'churn';
SELECT action, status FROM virtuoso.maintenance_log WHERE schemaname = 'churn';

-- Without a minimum interval the same state is analysed again: the interval is what held it.
SET virtuoso.maintenance_min_interval = 0;
SELECT count(*) FILTER (WHERE reason LIKE '%rows changed since the last analyze%') AS analyzed
FROM virtuoso.perform_maintenance_if_needed() WHERE schemaname = 'churn';
RESET virtuoso.maintenance_min_interval;

-- Bad values are refused.
SET virtuoso.maintenance_min_interval = -1;
DROP SCHEMA churn CASCADE;
