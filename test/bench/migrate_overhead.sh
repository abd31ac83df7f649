# Overhead of execute_migration_with_monitoring over running the same SQL directly, each
# timed by psql including its commit (fsync on), interleaved run by run.  The gate's linter
# runs too (the UPDATE of every row of a big table is a lint error: it passes lint "warn").
source "$REPO/test/bench/lib.sh"
ddl_runs=${DDL_RUNS:-60}
update_runs=${UPDATE_RUNS:-12}
sql=$(mktemp)
{
    echo "CREATE TABLE bench_big (id int PRIMARY KEY, v int NOT NULL);"
    echo "INSERT INTO bench_big SELECT g, g FROM generate_series(1, 1000000) g;"
    echo "VACUUM ANALYZE bench_big;"
    echo "CHECKPOINT;"
    echo '\timing on'
    # Pairs alternate their order (ABBA), so drift in the machine's state hits both alike.
    for i in $(seq "$ddl_runs"); do
        direct="\\echo timed:ddl_direct
CREATE TABLE bench_direct_$i (id int PRIMARY KEY, note text);"
        monitored="\\echo timed:ddl_monitored
SELECT status FROM virtuoso.execute_migration_with_monitoring('bench_ddl_$i', 'CREATE TABLE bench_monitored_$i (id int PRIMARY KEY, note text)');"
        if [ $((i % 2)) -eq 0 ]; then echo "$direct"; echo "$monitored"; else echo "$monitored"; echo "$direct"; fi
    done
    for i in $(seq "$update_runs"); do
        # each UPDATE starts from the same table: vacuumed, not timed
        direct="VACUUM bench_big;
\\echo timed:update_direct
UPDATE bench_big SET v = v + 1;"
        monitored="VACUUM bench_big;
\\echo timed:update_monitored
SELECT status FROM virtuoso.execute_migration_with_monitoring('bench_update_$i', 'UPDATE bench_big SET v = v + 1', NULL, '{\"lint\": \"warn\"}');"
        if [ $((i % 2)) -eq 0 ]; then echo "$direct"; echo "$monitored"; else echo "$monitored"; echo "$direct"; fi
    done
    echo '\timing off'
} >"$sql"
times=$(time_statements "$sql")
rm -f "$sql"
record migrate_overhead "trivial DDL (CREATE TABLE), median of $ddl_runs" \
    "$(median ddl_monitored <<<"$times")" "$(median ddl_direct <<<"$times")" "<= 1.50x"
record migrate_overhead "UPDATE of 1M rows, median of $update_runs" \
    "$(median update_monitored <<<"$times")" "$(median update_direct <<<"$times")" "<= 1.02x"
