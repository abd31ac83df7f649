-- check_database_health and the monitoring views tell a role only about relations it may
-- see: those it owns (or whose owner it is a member of) or may SELECT from; a member of
-- pg_read_all_stats (pg_monitor) sees all.  Typed rules run as the caller: a table it may
-- not read is an ERROR (42501) for the rule, not a count; with only the rule's column
-- readable the rule is judged, without the sample of whole rows.
CREATE SCHEMA vis;
GRANT USAGE ON SCHEMA vis TO regress_virtuoso_user;
CREATE ROLE regress_virtuoso_monitor IN ROLE pg_monitor;
GRANT USAGE ON SCHEMA virtuoso TO regress_virtuoso_monitor;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA virtuoso TO regress_virtuoso_monitor;
GRANT SELECT ON virtuoso.migration_performance_dashboard, virtuoso.slow_queries_analysis
    TO regress_virtuoso_user, regress_virtuoso_monitor;
-- no primary key and an unused index on each (findings that carry row estimates and sizes)
CREATE TABLE vis.secret (v int);
CREATE TABLE vis.granted (v int);
CREATE TABLE vis.mine (v int);
CREATE TABLE vis.one_column (v int, hidden int);
ALTER TABLE vis.mine OWNER TO regress_virtuoso_user;
GRANT SELECT ON vis.granted TO regress_virtuoso_user;
GRANT SELECT (v) ON vis.one_column TO regress_virtuoso_user;
INSERT INTO vis.secret SELECT g FROM generate_series(1, 1000) g;
INSERT INTO vis.one_column VALUES (NULL, 42), (1, 7);
CREATE INDEX secret_v ON vis.secret (v);
CREATE INDEX granted_v ON vis.granted (v);
ANALYZE vis.secret;

SET ROLE regress_virtuoso_user;
SELECT check_name, object FROM virtuoso.check_database_health()
WHERE object LIKE 'vis.%' ORDER BY 1, 2;
SELECT schemaname, tablename FROM virtuoso.migration_performance_dashboard
WHERE schemaname = 'vis' ORDER BY 2;
SELECT rule_name, status, validation_message FROM virtuoso.validate_data_integrity($$[
  {"name": "secret_rows", "type": "row_count", "table": "vis.secret", "min": 1},
  {"name": "granted_rows", "type": "row_count", "table": "vis.granted", "max": 0},
  {"name": "secret_query", "query": "SELECT count(*) FROM vis.secret"},
  {"name": "readable_column", "type": "not_null", "table": "vis.one_column", "column": "v"},
  {"name": "hidden_column", "type": "not_null", "table": "vis.one_column", "column": "hidden"}
]$$) ORDER BY rule_name;
RESET ROLE;

SET ROLE regress_virtuoso_monitor;
SELECT check_name, object FROM virtuoso.check_database_health()
WHERE object LIKE 'vis.%' ORDER BY 1, 2;
SELECT schemaname, tablename FROM virtuoso.migration_performance_dashboard
WHERE schemaname = 'vis' ORDER BY 2;
RESET ROLE;

-- slow_queries_analysis: statements of the caller's own roles; all with pg_read_all_stats
CREATE EXTENSION pg_stat_statements;
SELECT pg_stat_statements_reset();
SELECT count(*) AS vis_marker FROM vis.secret;
SET ROLE regress_virtuoso_user;
SELECT count(*) AS own_marker FROM vis.granted;
SELECT count(*) FILTER (WHERE userid = 'regress_virtuoso_user'::regrole) > 0 AS sees_own,
       count(*) FILTER (WHERE userid <> 'regress_virtuoso_user'::regrole) AS of_others
FROM virtuoso.slow_queries_analysis;
RESET ROLE;
SET ROLE regress_virtuoso_monitor;
SELECT count(*) FILTER (WHERE query LIKE '%vis_marker%') AS sees_all
FROM virtuoso.slow_queries_analysis;
RESET ROLE;
DROP EXTENSION pg_stat_statements;

REVOKE SELECT ON virtuoso.migration_performance_dashboard, virtuoso.slow_queries_analysis
    FROM regress_virtuoso_user, regress_virtuoso_monitor;
DROP SCHEMA vis CASCADE;
REVOKE ALL ON SCHEMA virtuoso FROM regress_virtuoso_monitor;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA virtuoso FROM regress_virtuoso_monitor;
DROP ROLE regress_virtuoso_monitor;
