-- virtuoso.report_html: a self-contained page, user text escaped, only what the caller may
-- see, sensible on an empty period.
CREATE TABLE public."<script>alert(1)</script>" (id int);
INSERT INTO public."<script>alert(1)</script>" SELECT g FROM generate_series(1, 10) g;
-- a failed migration whose error message is markup (terse: the context names its run id)
\set VERBOSITY terse
SELECT status FROM virtuoso.execute_migration_with_monitoring('report <b>bold</b>',
    $m$DO $d$BEGIN RAISE EXCEPTION '<img src=x onerror=alert(1)>'; END$d$$m$);
\set VERBOSITY default
CREATE TEMP TABLE r AS SELECT virtuoso.report_html() AS html;

-- a document, with every section, charts with title and desc, and no script anywhere
SELECT left(html, 15) AS doctype, right(html, 8) AS ending FROM r;
SELECT s AS section, strpos(html, format('<section id="%s"', s)) > 0 AS present
FROM r, unnest(ARRAY['migrations', 'maintenance', 'health', 'sizes', 'indexes', 'slow_queries']) s;
SELECT (length(html) - length(replace(html, '<svg ', ''))) / length('<svg ') >= 6 AS charts,
       (length(html) - length(replace(html, '<svg ', ''))) = (length(html) - length(replace(html, '<title id=', '')))
           * length('<svg ') / length('<title id=') AS every_chart_titled,
       strpos(html, '<desc id=') > 0 AS described
FROM r;
SELECT strpos(lower(html), '<script') AS script_tags, strpos(lower(html), '<img') AS img_tags,
       strpos(html, 'src="http') + strpos(html, 'href="http') AS external,
       strpos(html, '&lt;script&gt;alert(1)&lt;/script&gt;') > 0 AS table_name_as_text,
       strpos(html, '&lt;img src=x onerror=alert(1)&gt;') > 0 AS error_as_text,
       strpos(html, 'report &lt;b&gt;bold&lt;/b&gt;') > 0 AS migration_name_as_text
FROM r;
-- the migration counts are those of the log in the period
SELECT strpos(html, format('%s runs since', (SELECT count(*) FROM virtuoso.migration_log
                                            WHERE started_at >= now() - interval '7 days'))) > 0 AS counted
FROM r;

-- an empty period: no runs, charts that say so
SELECT strpos(html, '0 runs since') > 0 AS no_runs,
       strpos(html, 'No data in this period') > 0 AS empty_charts,
       strpos(html, '0 maintenance actions') > 0 AS no_actions
FROM (SELECT virtuoso.report_html('0 seconds') AS html) e;

-- arguments
SELECT virtuoso.report_html(NULL);
SELECT virtuoso.report_html('-1 day');
SELECT strpos(virtuoso.report_html('1 hour', index_advice => NULL), 'index_advice =&gt; true') > 0 AS advice_on_request;

-- a role with EXECUTE but no SELECT on the logs, and no right on the table: the log
-- sections say why they are empty, and the table it may not read is not named anywhere
SET ROLE regress_virtuoso_user;
SELECT strpos(html, 'Not shown: permission denied for table migration_log (SQLSTATE 42501)') > 0 AS migrations_withheld,
       strpos(html, 'Not shown: permission denied for table maintenance_log (SQLSTATE 42501)') > 0 AS maintenance_withheld,
       strpos(html, 'alert(1)') AS names_the_table,
       strpos(html, 'as role regress_virtuoso_user') > 0 AS says_whose_view
FROM (SELECT virtuoso.report_html() AS html) u;
RESET ROLE;
-- without EXECUTE on the function
SET ROLE regress_virtuoso_nobody;
SELECT virtuoso.report_html();
RESET ROLE;
DROP TABLE public."<script>alert(1)</script>";
