# What a statement costs when it goes through the statement runner (a background worker
# started per call) instead of running directly, for VACUUM of a small table.
source "$REPO/test/bench/lib.sh"
runs=${RUNS:-40}
sql=$(mktemp)
{
    echo "CREATE TABLE bench_runner (id int PRIMARY KEY, v text);"
    echo "INSERT INTO bench_runner SELECT g, 'x' FROM generate_series(1, 1000) g;"
    echo '\timing on'
    for _ in $(seq "$runs"); do
        # interleaved, so that noise of the shared machine hits both alike
        echo "\\echo timed:direct"
        echo "VACUUM bench_runner;"
        echo "\\echo timed:runner"
        echo "SELECT virtuoso.execute_top_level('VACUUM bench_runner');"
        echo "\\echo timed:select1"
        echo "SELECT virtuoso.execute_top_level('SELECT 1');"
    done
    echo '\timing off'
    echo "DROP TABLE bench_runner;"
} >"$sql"
times=$(time_statements "$sql")
rm -f "$sql"
direct=$(median direct <<<"$times")
runner=$(median runner <<<"$times")
select1=$(median select1 <<<"$times")
record runner_roundtrip "VACUUM 1k rows: runner vs direct (median/$runs)" "$runner" "$direct" "informational"
record runner_roundtrip "runner launch: SELECT 1 vs direct VACUUM" "$select1" "$direct" "informational"
