-- Index advisor under a storage budget (issue 17): budget and count bounds, the lean default,
-- merging of covering variants and growing of chosen indexes, normalised statements that do
-- not analyse as written, drop advice, explained gains, and the same answer run after run.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
RESET client_min_messages;
SET default_statistics_target = 1000;
CREATE TABLE bud_items (id int PRIMARY KEY, cat int, price int, qty int, note text, made date,
                        flag int) WITH (autovacuum_enabled = off);
INSERT INTO bud_items
SELECT g, g % 1000, (g * 7919) % 100000, g % 50, md5(g::text), '2020-01-01'::date + (g % 2000),
       g % 10
FROM generate_series(1, 200000) g;
CREATE INDEX bud_qty ON bud_items (qty);               -- superseded by (qty, flag) below
CREATE INDEX bud_price_a ON bud_items (price);         -- redundant: bud_price_b covers it
CREATE INDEX bud_price_b ON bud_items (price, qty);    -- never scanned
VACUUM (ANALYZE) bud_items;
SELECT pg_stat_force_next_flush();
SELECT pg_stat_reset_single_table_counters(i) FROM unnest(ARRAY['bud_items', 'bud_qty',
    'bud_price_a', 'bud_price_b', 'bud_items_pkey']::regclass[]) i;
SELECT pg_stat_statements_reset();

-- The workload.  Three statements on the same key read different columns (three covering
-- variants); one filters on two columns; three are normalised by pg_stat_statements into
-- text that does not analyse as written: extract($1 FROM ...), date $1, and
-- CASE ... THEN $2 ELSE $3 END inside sum (the parameters resolve to text).
\o /dev/null
SELECT cat, price FROM bud_items WHERE cat = 5;
SELECT cat, price FROM bud_items WHERE cat = 6;
SELECT cat, qty FROM bud_items WHERE cat = 7;
SELECT cat, qty FROM bud_items WHERE cat = 8;
SELECT cat, flag FROM bud_items WHERE cat = 9;
SELECT cat, flag FROM bud_items WHERE cat = 10;
\o
SELECT count(*) FROM bud_items WHERE flag = 3 AND qty = 7;
SELECT count(*) FROM bud_items WHERE made >= date '2020-03-01' AND made < date '2020-03-03';
SELECT sum(CASE WHEN flag = 1 THEN 1 ELSE 0 END) FROM bud_items WHERE qty = 3;
SELECT count(*) FROM bud_items WHERE extract(year FROM made) = 2021 AND note = 'abc';
SELECT pg_stat_force_next_flush();
SELECT query FROM pg_stat_statements
WHERE query LIKE '%bud_items WHERE%' AND query NOT LIKE '%pg_stat_statements%' ORDER BY query;

-- Every statement is understood (no "not analysed" NOTICE); each recommended index with the
-- statements it serves; one index for the three covering variants of cat.
CREATE TABLE bud_default AS SELECT * FROM virtuoso.recommend_indexes();
SELECT index_definition, queries_improved, total_calls,
       cost_after < cost_before AS improved,
       jsonb_array_length(details -> 'statements') = queries_improved AS explained,
       (SELECT bool_and((s ->> 'cost_after')::float8 < (s ->> 'cost_before')::float8)
        FROM jsonb_array_elements(details -> 'statements') s) AS each_statement_gains
FROM bud_default WHERE details ->> 'action' = 'create' ORDER BY index_definition;
SELECT index_definition, s ->> 'query' AS statement, (s ->> 'calls')::int AS calls
FROM bud_default, jsonb_array_elements(details -> 'statements') s
WHERE details ->> 'action' = 'create' ORDER BY 1, 2;
SELECT count(*) AS indexes_on_cat FROM bud_default
WHERE details ->> 'action' = 'create' AND columns[1] = 'cat';

-- Drop advice: clearly marked rows after the indexes to create; the PRIMARY KEY stays.
SELECT index_definition, columns, cost_before IS NULL AS no_costs,
       estimated_size_bytes = -pg_relation_size((details ->> 'index')::regclass) AS frees,
       details ->> 'reason' AS reason, details ->> 'covered_by' AS covered_by
FROM bud_default WHERE details ->> 'action' = 'drop' ORDER BY index_definition;

-- No two recommended indexes of which one makes the other redundant, by the extension's own
-- view: build them and ask it.
SELECT format('CALL virtuoso.build_index_concurrently(%L)', replace(index_definition, 'CONCURRENTLY ', ''))
FROM bud_default WHERE details ->> 'action' = 'create' ORDER BY index_definition \gexec
SELECT count(*) AS redundant_among_recommended FROM virtuoso.redundant_indexes r
WHERE r.tablename = 'bud_items'
  AND r.redundant_index NOT IN ('bud_qty', 'bud_price_a', 'bud_price_b')
  AND r.covering_index NOT IN ('bud_qty', 'bud_price_a', 'bud_price_b');
SELECT format('DROP INDEX %s', indexrelid::regclass) FROM pg_index
WHERE indrelid = 'bud_items'::regclass
  AND indexrelid::regclass::text NOT IN ('bud_items_pkey', 'bud_qty', 'bud_price_a', 'bud_price_b')
ORDER BY 1 \gexec

-- The budget: the summed estimated size stays within max_index_bytes; max_indexes bounds the
-- count; a zero budget gives no index to create (the drop advice stays).
SELECT count(*) > 1 AS several, sum(estimated_size_bytes) AS default_bytes FROM bud_default
WHERE details ->> 'action' = 'create' \gset
SELECT :'several' AS several;
SELECT count(*) >= 1 AS some, sum(estimated_size_bytes) <= :default_bytes / 2 AS within_budget
FROM virtuoso.recommend_indexes(max_index_bytes => :default_bytes / 2)
WHERE details ->> 'action' = 'create';
SELECT count(*) AS indexes FROM virtuoso.recommend_indexes(max_indexes => 1)
WHERE details ->> 'action' = 'create';
SELECT count(*) FILTER (WHERE details ->> 'action' = 'create') AS to_create,
       count(*) FILTER (WHERE details ->> 'action' = 'drop') AS to_drop
FROM virtuoso.recommend_indexes(max_index_bytes => 0);
-- A budget lets through what the lean default leaves out: never fewer indexes.
SELECT count(*) >= (SELECT count(*) FROM bud_default WHERE details ->> 'action' = 'create') AS not_fewer
FROM virtuoso.recommend_indexes(max_index_bytes => 1000000000)
WHERE details ->> 'action' = 'create';
-- The 0.2.0 call forms still work.
SELECT count(*) > 0 FROM virtuoso.recommend_indexes(1, 10, 'calls');
SELECT count(*) > 0 FROM virtuoso.recommend_indexes(min_calls => 1);

-- Stable: three runs, each after ANALYZE with a small sample (sampling noise), same answer.
SET default_statistics_target = 100;
CREATE TABLE bud_runs (run int, definitions text);
ANALYZE bud_items;
INSERT INTO bud_runs SELECT 1, string_agg(index_definition, '; ' ORDER BY index_definition)
FROM virtuoso.recommend_indexes() WHERE details ->> 'action' = 'create';
ANALYZE bud_items;
INSERT INTO bud_runs SELECT 2, string_agg(index_definition, '; ' ORDER BY index_definition)
FROM virtuoso.recommend_indexes() WHERE details ->> 'action' = 'create';
ANALYZE bud_items;
INSERT INTO bud_runs SELECT 3, string_agg(index_definition, '; ' ORDER BY index_definition)
FROM virtuoso.recommend_indexes() WHERE details ->> 'action' = 'create';
SELECT count(DISTINCT definitions) AS distinct_answers, count(*) AS runs,
       bool_and(definitions = (SELECT string_agg(index_definition, '; ' ORDER BY index_definition)
                               FROM bud_default WHERE details ->> 'action' = 'create')) AS as_with_full_statistics
FROM bud_runs;
RESET default_statistics_target;

-- A statement that no workaround makes analysable is still listed, with the reason.
CREATE TABLE bud_gone (a int);
SELECT * FROM bud_gone WHERE a = 1;
DROP TABLE bud_gone;
SELECT pg_stat_force_next_flush();
SELECT count(*) > 0 FROM virtuoso.recommend_indexes();

-- Write cost: the same lookups on a table that is written a lot get no index, as the rows
-- the workload's writing statements wrote (pg_stat_statements) each maintain it.
CREATE TABLE bud_w (id int, k int, v int) WITH (autovacuum_enabled = off);
INSERT INTO bud_w SELECT g, g % 5000, g FROM generate_series(1, 100000) g;
VACUUM ANALYZE bud_w;
SELECT pg_stat_force_next_flush();
SELECT pg_stat_reset_single_table_counters('bud_w'::regclass);
SELECT pg_stat_statements_reset();
\o /dev/null
SELECT v FROM bud_w WHERE k = 42;
SELECT v FROM bud_w WHERE k = 43;
SELECT v FROM bud_w WHERE k = 44;
\o
SELECT pg_stat_force_next_flush();
SELECT columns, details ->> 'action' AS action FROM virtuoso.recommend_indexes() ORDER BY 1;
INSERT INTO bud_w SELECT g, g % 5000, g FROM generate_series(100001, 300000) g;
DELETE FROM bud_w WHERE id > 100000;
SELECT pg_stat_force_next_flush();
SELECT n_tup_ins + n_tup_upd - n_tup_hot_upd + n_tup_del AS rows_written
FROM pg_stat_user_tables WHERE relid = 'bud_w'::regclass;
SELECT columns, details ->> 'action' AS action FROM virtuoso.recommend_indexes() ORDER BY 1;
DROP TABLE bud_w;

-- Bounds.
SELECT try($$SELECT * FROM virtuoso.recommend_indexes(max_index_bytes => -1)$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes(max_indexes => -1)$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes(max_indexes => 1001)$$);
DROP TABLE bud_items, bud_default, bud_runs;

-- Drop advice and the view virtuoso.redundant_indexes agree: a prefix duplicate and an
-- INCLUDE variant whose columns the covering index has are advised as redundant, an INCLUDE
-- variant with a column it lacks is not.
CREATE TABLE bud_rr (a int, b int, c int, d text) WITH (autovacuum_enabled = off);
INSERT INTO bud_rr SELECT g, g % 100, g % 7, md5(g::text) FROM generate_series(1, 20000) g;
CREATE INDEX bud_rr_ab_c ON bud_rr (a, b) INCLUDE (c);  -- covers the next two
CREATE INDEX bud_rr_a ON bud_rr (a);                    -- prefix duplicate
CREATE INDEX bud_rr_a_c ON bud_rr (a) INCLUDE (c);      -- INCLUDE variant, c covered
CREATE INDEX bud_rr_a_d ON bud_rr (a) INCLUDE (d);      -- INCLUDE variant, d not covered
VACUUM ANALYZE bud_rr;
SELECT count(*) FROM bud_rr WHERE a = 5;
SELECT pg_stat_force_next_flush();
SET client_min_messages = warning;  -- the statements on bud_w above no longer analyse
CREATE TABLE bud_rr_advice AS
SELECT details ->> 'index' AS index, details ->> 'reason' AS reason,
       details ->> 'covered_by' AS covered_by
FROM virtuoso.recommend_indexes() WHERE details ->> 'action' = 'drop'
  AND details ->> 'index' LIKE 'public.bud\_rr\_%';
RESET client_min_messages;
SELECT redundant_index, covering_index, reason FROM virtuoso.redundant_indexes
WHERE tablename = 'bud_rr' ORDER BY 1, 2;
SELECT * FROM bud_rr_advice WHERE reason = 'redundant' ORDER BY 1;
SELECT count(*) AS disagreements FROM (
    (SELECT 'public.' || redundant_index FROM virtuoso.redundant_indexes WHERE tablename = 'bud_rr'
     EXCEPT SELECT index FROM bud_rr_advice WHERE reason = 'redundant')
    UNION ALL
    (SELECT index FROM bud_rr_advice WHERE reason = 'redundant'
     EXCEPT SELECT 'public.' || redundant_index FROM virtuoso.redundant_indexes
     WHERE tablename = 'bud_rr')) d;
DROP TABLE bud_rr, bud_rr_advice;
