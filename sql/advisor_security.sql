-- Index advisor security (issue 9 §3, §6): another role's statements are planned as that
-- role inside a security-restricted operation, only for a caller who has that role's
-- privileges; nothing reveals sizes of tables the caller cannot read; hypothetical OIDs,
-- generated DROP statements and numeric arguments.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
RESET client_min_messages;
CREATE ROLE regress_adv_mallory;
CREATE ROLE regress_adv_monitor IN ROLE pg_read_all_stats, regress_virtuoso_user;
CREATE SCHEMA adv_mallory AUTHORIZATION regress_adv_mallory;
CREATE TABLE adv_sec_t (id int, k int) WITH (autovacuum_enabled = off);
INSERT INTO adv_sec_t SELECT g, g % 2000 FROM generate_series(1, 40000) g;
ANALYZE adv_sec_t;
GRANT SELECT ON adv_sec_t TO regress_adv_mallory, regress_adv_monitor;
CREATE TABLE adv_sec_secret (id int, k int) WITH (autovacuum_enabled = off);
INSERT INTO adv_sec_secret SELECT g, g FROM generate_series(1, 1000) g;
ANALYZE adv_sec_secret;

-- Mallory's trap: an IMMUTABLE function the planner folds.  Harmless when mallory runs it;
-- when a superuser plans it, it runs a program and makes mallory superuser through the
-- runner (whose transaction commits on its own).
SET ROLE regress_adv_mallory;
CREATE FUNCTION adv_mallory.payload() RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        COPY (SELECT 1) TO PROGRAM 'touch adv_sec_pwned';
        PERFORM virtuoso.execute_autonomous('ALTER ROLE regress_adv_mallory SUPERUSER');
    END IF;
    RETURN 7;
END $$;
CREATE FUNCTION adv_mallory.trap() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN adv_mallory.payload();
END $$;
-- USAGE for everyone: other roles may call the trap themselves.
GRANT USAGE ON SCHEMA adv_mallory TO PUBLIC;
RESET ROLE;
SELECT pg_stat_statements_reset();
SET ROLE regress_adv_mallory;
SELECT count(*) FROM adv_sec_t WHERE k = adv_mallory.trap();
RESET ROLE;

-- A superuser asks for recommendations: mallory's statement is planned as mallory, so the
-- trap does nothing, and the statement still gets its index.
SELECT table_name, columns FROM virtuoso.recommend_indexes() WHERE table_name = 'public.adv_sec_t';
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'regress_adv_mallory';
SELECT pg_stat_file('adv_sec_pwned', true) IS NULL AS no_program_ran;
SET client_min_messages = warning;
SELECT count(*) > 0 AS benchmarked FROM virtuoso.advisor_benchmark();
RESET client_min_messages;
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'regress_adv_mallory';
SELECT pg_stat_file('adv_sec_pwned', true) IS NULL AS no_program_ran;

-- A caller with pg_read_all_stats, but without mallory's privileges, does not analyse
-- mallory's statements at all (it could otherwise make them resolve other functions
-- through its own search_path, as mallory).
SET ROLE regress_adv_monitor;
SET client_min_messages = warning;
SELECT count(*) AS recommendations_from_mallory
FROM virtuoso.recommend_indexes() WHERE table_name = 'public.adv_sec_t';
RESET client_min_messages;
RESET ROLE;

-- The caller's own statement is planned inside a security-restricted operation too.
CREATE FUNCTION adv_sec_tmp() RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    CREATE TEMP TABLE adv_sec_scratch (a int);
    RETURN 1;
END $$;
CREATE FUNCTION adv_sec_folded() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN adv_sec_tmp();
END $$;
SELECT try($$SELECT * FROM virtuoso.recommend_indexes_for_query(
    'SELECT * FROM adv_sec_t WHERE k = adv_sec_folded()')$$);
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost(
    'SELECT * FROM adv_sec_t WHERE k = adv_sec_folded()', 'adv_sec_t', '{k}')$$);
SELECT count(*) AS scratch_tables FROM pg_class WHERE relname = 'adv_sec_scratch';
-- ... and its settings do not leak out of planning.
CREATE FUNCTION adv_sec_set() RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('work_mem', '77kB', false);
    RETURN 1;
END $$;
CREATE FUNCTION adv_sec_folded_set() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN adv_sec_set();
END $$;
SET work_mem = '4MB';
SELECT count(*) >= 0 FROM virtuoso.recommend_indexes_for_query(
    'SELECT * FROM adv_sec_t WHERE k = adv_sec_folded_set()');
SHOW work_mem;
RESET work_mem;

-- Sizes of a table the caller cannot read are not revealed.
SET ROLE regress_virtuoso_user;
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost('SELECT 1', 'adv_sec_secret', '{k}')$$);
SELECT try($$SELECT * FROM virtuoso.recommend_indexes_for_query('SELECT * FROM adv_sec_secret WHERE k = 5')$$);
SELECT try($$SELECT * FROM virtuoso.optimize_table_indexes('adv_sec_secret')$$);
RESET ROLE;

-- Numeric arguments: out of range is 22023, and costs stay finite and positive.
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost('SELECT * FROM adv_sec_t WHERE k = 5', 'adv_sec_t', '{k}', '{}', NULL, 2147483647)$$);
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost('SELECT * FROM adv_sec_t WHERE k = 5', 'adv_sec_t', '{k}', '{}', NULL, -2)$$);
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost('SELECT * FROM adv_sec_t WHERE k = 5', 'adv_sec_t', '{k}', '{}', NULL, 33)$$);
SELECT try($$SELECT * FROM virtuoso.hypothetical_index_cost('SELECT * FROM adv_sec_t WHERE k = 5', 'adv_sec_t', '{k}', '{}', 9223372036854775807)$$);
SELECT cost_with > 0 AS positive, cost_with < 1e300 AS finite
FROM virtuoso.hypothetical_index_cost('SELECT * FROM adv_sec_t WHERE k = 5', 'adv_sec_t', '{k}', '{}', 4294967294, 32);
SELECT cost_with > 0 AND cost_with < cost_without AS cheaper, index_used
FROM virtuoso.hypothetical_index_cost('SELECT * FROM adv_sec_t WHERE k = 5', 'adv_sec_t', '{k}', '{}', NULL, 32);
SELECT try($$SELECT * FROM virtuoso.advisor_benchmark(1, -1)$$);

-- Generated DROP statements are schema-qualified and quoted, whatever the search_path.
CREATE SCHEMA "Adv Sec";
CREATE TABLE "Adv Sec"."T t" (a int, b int);
CREATE INDEX "I a" ON "Adv Sec"."T t" (a);
CREATE INDEX "I a b" ON "Adv Sec"."T t" (a, b);
SELECT drop_statement FROM virtuoso.unused_indexes WHERE schemaname = 'Adv Sec' ORDER BY 1;
SELECT drop_statement FROM virtuoso.redundant_indexes WHERE schemaname = 'Adv Sec';
SET search_path = "Adv Sec", public;
SELECT drop_statement FROM virtuoso.unused_indexes WHERE schemaname = 'Adv Sec' ORDER BY 1;
SELECT redundant_index, covering_index, drop_statement FROM virtuoso.redundant_indexes WHERE schemaname = 'Adv Sec';
RESET search_path;
DROP SCHEMA "Adv Sec" CASCADE;

DROP SCHEMA adv_mallory CASCADE;
DROP TABLE adv_sec_t, adv_sec_secret;
DROP FUNCTION adv_sec_folded(), adv_sec_tmp(), adv_sec_folded_set(), adv_sec_set();
DROP ROLE regress_adv_mallory, regress_adv_monitor;
