-- Cross-checks of the what-if costing.
--  * Against HypoPG: with the same index size (pages; HypoPG leaves the tree height unknown,
--    -1), the plan cost of our in-process costing equals EXPLAIN with HypoPG within 1%.
--  * Against reality: our size estimate is within 25% of the index once built, and the plan
--    cost with the real index within 10% of the hypothetical one.
SET default_statistics_target = 1000;
CREATE TABLE xc (id int PRIMARY KEY, grp int, region int, created_at timestamptz,
                 amount int, label text, ref text)
    WITH (autovacuum_enabled = off);
INSERT INTO xc
SELECT g, g % 5000, (g % 5000) % 20, '2024-01-01'::timestamptz + g * interval '1 minute',
       (g * 7919) % 100000, 'label-' || (g % 300), md5(g::text)
FROM generate_series(1, 100000) g;
CREATE TABLE xc_parent (id int PRIMARY KEY, name text) WITH (autovacuum_enabled = off);
INSERT INTO xc_parent SELECT g, 'p' || g FROM generate_series(1, 5000) g;
ANALYZE xc, xc_parent;

CREATE FUNCTION explain_cost(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO plan;
    RETURN (plan -> 0 -> 'Plan' ->> 'Total Cost')::float8;
END $$;
CREATE FUNCTION explain_uses(q text, index_name text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE plan text;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO plan;
    RETURN strpos(plan, index_name) > 0;
END $$;

CREATE TABLE cases (n int, query text, tab regclass, keys text[], include text[]);
INSERT INTO cases VALUES
 (1, 'SELECT * FROM xc WHERE grp = 42', 'xc', '{grp}', '{}'),
 (2, 'SELECT * FROM xc WHERE grp = 42 AND region = 3', 'xc', '{grp,region}', '{}'),
 (3, 'SELECT * FROM xc WHERE region = 7 AND created_at >= ''2024-01-10'' AND created_at < ''2024-01-12''', 'xc', '{region,created_at}', '{}'),
 (4, 'SELECT id, amount FROM xc WHERE region = 3 ORDER BY amount DESC LIMIT 10', 'xc', '{region,amount}', '{}'),
 (5, 'SELECT p.name, x.amount FROM xc_parent p JOIN xc x ON x.grp = p.id WHERE p.id BETWEEN 10 AND 20', 'xc', '{grp}', '{}'),
 (6, 'SELECT grp, amount FROM xc WHERE grp BETWEEN 100 AND 400', 'xc', '{grp}', '{amount}'),
 (7, 'SELECT * FROM xc WHERE ref = ''c4ca4238a0b923820dcc509a6f75849b''', 'xc', '{ref}', '{}'),
 (8, 'SELECT count(*) FROM xc WHERE label = ''label-7''', 'xc', '{label}', '{}');

-- HypoPG, same size.
CREATE EXTENSION hypopg;
CREATE TABLE hypo_results (n int, hypopg_cost float8, our_cost float8, both_use boolean);
DO $$
DECLARE c record; h record; ours record; hypo float8; def text;
BEGIN
    FOR c IN SELECT * FROM cases ORDER BY n LOOP
        PERFORM hypopg_reset();
        def := format('CREATE INDEX ON %s (%s)%s', c.tab,
                      array_to_string(c.keys, ', '),
                      CASE WHEN c.include = '{}' THEN '' ELSE ' INCLUDE (' || array_to_string(c.include, ', ') || ')' END);
        SELECT * INTO h FROM hypopg_create_index(def);
        hypo := explain_cost(c.query);
        SELECT * INTO ours FROM virtuoso.hypothetical_index_cost(
            c.query, c.tab, c.keys, c.include,
            index_pages => hypopg_relation_size(h.indexrelid) / 8192, tree_height => -1);
        INSERT INTO hypo_results VALUES (c.n, hypo, ours.cost_with,
                                         ours.index_used AND explain_uses(c.query, h.indexname));
    END LOOP;
    PERFORM hypopg_reset();
END $$;
SELECT n, both_use, abs(our_cost - hypopg_cost) <= 0.01 * hypopg_cost AS within_1pct
FROM hypo_results ORDER BY n;
DROP EXTENSION hypopg;

-- Reality: build each index, compare its size and the plan cost with ours.
CREATE TABLE real_results (n int, estimated_bytes bigint, real_bytes bigint,
                           hypothetical_cost float8, real_cost float8, both_use boolean);
DO $$
DECLARE c record; ours record; def text; real_cost float8; real_bytes bigint; used boolean;
BEGIN
    FOR c IN SELECT * FROM cases ORDER BY n LOOP
        SELECT * INTO ours FROM virtuoso.hypothetical_index_cost(c.query, c.tab, c.keys, c.include);
        def := format('CREATE INDEX xc_real ON %s (%s)%s', c.tab,
                      array_to_string(c.keys, ', '),
                      CASE WHEN c.include = '{}' THEN '' ELSE ' INCLUDE (' || array_to_string(c.include, ', ') || ')' END);
        EXECUTE def;
        real_bytes := pg_relation_size('xc_real');
        real_cost := explain_cost(c.query);
        used := explain_uses(c.query, 'xc_real');
        DROP INDEX xc_real;
        INSERT INTO real_results VALUES (c.n, ours.estimated_size_bytes, real_bytes,
                                         ours.cost_with, real_cost, ours.index_used AND used);
    END LOOP;
END $$;
SELECT n, both_use,
       abs(estimated_bytes - real_bytes) <= 0.25 * real_bytes AS size_within_25pct,
       abs(hypothetical_cost - real_cost) <= 0.10 * real_cost AS cost_within_10pct
FROM real_results ORDER BY n;
-- On failure, the figures.
SELECT r.n, estimated_bytes, real_bytes, round(hypothetical_cost::numeric, 2) AS hypothetical_cost,
       round(real_cost::numeric, 2) AS real_cost, round(hypopg_cost::numeric, 2) AS hypopg_cost,
       round(our_cost::numeric, 2) AS our_cost_at_hypopg_size
FROM real_results r JOIN hypo_results h USING (n)
WHERE NOT (abs(estimated_bytes - real_bytes) <= 0.25 * real_bytes
           AND abs(hypothetical_cost - real_cost) <= 0.10 * real_cost
           AND abs(our_cost - hypopg_cost) <= 0.01 * hypopg_cost)
ORDER BY r.n;
