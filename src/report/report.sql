-- The HTML report (API.md §10).
CREATE FUNCTION virtuoso.report_html(since interval DEFAULT '7 days',
                                     index_advice boolean DEFAULT false)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_report_html';
COMMENT ON FUNCTION virtuoso.report_html(interval, boolean) IS
'One self-contained HTML page (inline SVG charts, no scripts, nothing loaded from elsewhere) of the period since now() - since: migrations (runs per status over time, durations, failures with their errors, lock waits, rollbacks), maintenance (actions per day, dead tuples removed, tables most often due, skipped and failed actions), health findings by severity with remedies, table sizes and estimated bloat, unused and redundant indexes, slow queries, and open alerts and long jobs where those views exist. Everything is read as the calling role through the extension''s own tables, views and functions, so it shows only what the caller may see there; a section the caller may not read says why. index_advice also runs recommend_indexes() (it plans the whole pg_stat_statements workload, which can take seconds). Save it with psql -At -c "SELECT virtuoso.report_html()" > report.html.';
