# Overhead of the migration gate of execute_migration_with_monitoring on a trivial migration
# (CREATE TABLE), against the issue's target of 0.5 s per migration for max_plan_regression
# with 50 top statements: the same migration timed with {"lint": "off"}, with the default
# (lint "error") and with {"max_plan_regression": 2} over 60 distinct joins in
# pg_stat_statements (50 of them compared, before and after), interleaved run by run.
source "$REPO/test/bench/lib.sh"
runs=${RUNS:-21}
hot=${HOT_STATEMENTS:-60}
sql=$(mktemp)
{
    cat <<'SQL'
CREATE SCHEMA bench_gate;
CREATE TABLE bench_gate.a (id int PRIMARY KEY, k int NOT NULL, v text);
INSERT INTO bench_gate.a SELECT g, g % 1000, md5(g::text) FROM generate_series(1, 100000) g;
CREATE INDEX ON bench_gate.a (k);
CREATE TABLE bench_gate.b (id int PRIMARY KEY, a_id int NOT NULL, v int);
INSERT INTO bench_gate.b SELECT g, g % 100000 + 1, g % 777 FROM generate_series(1, 200000) g;
CREATE INDEX ON bench_gate.b (a_id);
VACUUM ANALYZE bench_gate.a;
VACUUM ANALYZE bench_gate.b;
SELECT pg_stat_statements_reset();
SQL
    # distinct statements for pg_stat_statements (IN lists of different lengths)
    for i in $(seq "$hot"); do
        echo "SELECT a.id, b.v FROM bench_gate.a a JOIN bench_gate.b b ON b.a_id = a.id WHERE a.k IN ($(seq -s, "$i")) ORDER BY b.v LIMIT 10;"
    done
    echo '\timing on'
    for i in $(seq "$runs"); do
        off="\\echo timed:lint_off
SELECT status FROM virtuoso.execute_migration_with_monitoring('bench_gate_off_$i', 'CREATE TABLE bench_gate.off_$i (id int)', NULL, '{\"lint\": \"off\"}');"
        lint="\\echo timed:lint_default
SELECT status FROM virtuoso.execute_migration_with_monitoring('bench_gate_lint_$i', 'CREATE TABLE bench_gate.lint_$i (id int)');"
        plans="\\echo timed:plan_gate
SELECT status FROM virtuoso.execute_migration_with_monitoring('bench_gate_plans_$i', 'CREATE TABLE bench_gate.plans_$i (id int)', NULL, '{\"max_plan_regression\": 2}');"
        if [ $((i % 2)) -eq 0 ]; then printf '%s\n' "$off" "$lint" "$plans"; else printf '%s\n' "$plans" "$lint" "$off"; fi
    done
    echo '\timing off'
} >"$sql"
times=$(time_statements "$sql")
rm -f "$sql"
compared=$(psql -X -At -c "SELECT max((plan_changes->>'statements_compared')::int) FROM virtuoso.migration_log WHERE name LIKE 'bench_gate_plans_%'")
psql -X -q -c "SET client_min_messages = warning" -c "DROP SCHEMA bench_gate CASCADE" -c "DELETE FROM virtuoso.migration_log WHERE name LIKE 'bench_gate_%'"
off=$(median lint_off <<<"$times")
lint=$(median lint_default <<<"$times")
plans=$(median plan_gate <<<"$times")
plan_overhead=$(perl -e 'printf "%.3f", $ARGV[0] - $ARGV[1]' "$plans" "$lint")
record gate_overhead "lint gate, trivial DDL (median/$runs)" "$lint" "$off" "(info)"
record gate_overhead "plan gate, $compared statements: overhead (median/$runs)" "$plan_overhead" 500 "<= 1.00x"
