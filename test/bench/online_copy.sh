# migrate_data_batched against one INSERT ... SELECT of the same rows (~100-byte rows, batch
# 10,000), against the seed document's OFFSET procedure (../shared/reference/
# seed_procedures.sql, fixed only to compile), and its time per row at 4x the rows (with
# INSERT ... SELECT's own growth beside it); the
# same copy split among parallel_workers => 2 (PARALLEL, default 2) against INSERT ... SELECT.
#   ROWS (default 1000000), LARGE_ROWS (default 4 x ROWS), RUNS (default 3), SEED_RUNS (1)
source "$REPO/test/bench/lib.sh"
rows=${ROWS:-1000000}
large=${LARGE_ROWS:-$((rows * 4))}
runs=${RUNS:-3}
seed_runs=${SEED_RUNS:-1}
parallel=${PARALLEL:-2}
seed_sql=${SEED_SQL:-$REPO/../../shared/reference/seed_procedures.sql}
[ -f "$seed_sql" ] || seed_sql=/work/shared/reference/seed_procedures.sql
psql -X -q -v ON_ERROR_STOP=1 -c 'SET client_min_messages = warning' -f "$seed_sql" >/dev/null

sql=$(mktemp)
{
    echo "SET client_min_messages = warning;"
    echo "DROP TABLE IF EXISTS bench_src, bench_src_large;"
    echo "CREATE TABLE bench_src (id bigint PRIMARY KEY, n int, payload text);"
    echo "INSERT INTO bench_src SELECT g, g % 1000, repeat(md5(g::text), 3) FROM generate_series(1, $rows) g;"
    echo "CREATE TABLE bench_src_large (id bigint PRIMARY KEY, n int, payload text);"
    echo "INSERT INTO bench_src_large SELECT g, g % 1000, repeat(md5(g::text), 3) FROM generate_series(1, $large) g;"
    echo "VACUUM ANALYZE bench_src, bench_src_large;"
    echo "CHECKPOINT;"
    for i in $(seq "$runs"); do
        for t in direct batched parallel large direct_large; do echo "CREATE TABLE bench_${t}_$i (id bigint, n int, payload text);"; done
    done
    for i in $(seq "$seed_runs"); do echo "CREATE TABLE bench_seed_$i (id bigint, n int, payload text);"; done
    echo '\timing on'
    # Pairs alternate their order, so drift in the machine's state hits both alike.
    for i in $(seq "$runs"); do
        direct="\\echo timed:direct
INSERT INTO bench_direct_$i SELECT * FROM bench_src;"
        batched="\\echo timed:batched
CALL virtuoso.migrate_data_batched('SELECT * FROM bench_src', 'bench_batched_$i', 10000, job_name => 'bench_$i');"
        if [ $((i % 2)) -eq 0 ]; then echo "$direct"; echo "$batched"; else echo "$batched"; echo "$direct"; fi
        echo "\\echo timed:parallel
CALL virtuoso.migrate_data_batched('SELECT * FROM bench_src', 'bench_parallel_$i', 10000, $parallel, job_name => 'bench_parallel_$i');"
        echo "\\echo timed:large
CALL virtuoso.migrate_data_batched('SELECT * FROM bench_src_large', 'bench_large_$i', 10000, job_name => 'bench_large_$i');"
        echo "CHECKPOINT;"
        echo "\\echo timed:direct_large
INSERT INTO bench_direct_large_$i SELECT * FROM bench_src_large;"
        echo "CHECKPOINT;"
    done
    for i in $(seq "$seed_runs"); do
        echo "\\echo timed:seed
CALL seedfix.migrate_data_batched('SELECT * FROM public.bench_src', 'bench_seed_$i', 10000);"
    done
    echo '\timing off'
    # the copies hold the source's rows exactly (else the timing means nothing)
    echo "SELECT 'check ' || bool_and(ok) FROM (SELECT (SELECT count(*) FROM bench_batched_1) = $rows AS ok
          UNION ALL SELECT (SELECT count(*) FROM bench_large_1) = $large
          UNION ALL SELECT (SELECT count(*) FROM bench_parallel_1) = $rows
          UNION ALL SELECT (SELECT count(*) FROM bench_seed_1) = $rows) c;"
} >"$sql"
out=$(psql -X -q -v ON_ERROR_STOP=1 -f "$sql" 2>&1)
rm -f "$sql"
grep -q 'check t' <<<"$out" || { echo "online_copy: a copy is incomplete" >&2; echo "$out" | tail -5 >&2; exit 1; }
times=$(perl -ne 'if (/^timed:(\S+)/) { $l = $1; next } if (/^Time: ([0-9.]+) ms/ && defined $l) { print "$l $1\n"; undef $l }' <<<"$out")
direct=$(median direct <<<"$times")
batched=$(median batched <<<"$times")
large_ms=$(median large <<<"$times")
direct_large_ms=$(median direct_large <<<"$times")
parallel_ms=$(median parallel <<<"$times")
seed=$(median seed <<<"$times")
# Time ratios: throughput >= 0.8x of INSERT ... SELECT is a time ratio <= 1.25x.
record online_copy "$rows rows: batched vs INSERT..SELECT" "$batched" "$direct" "<= 1.25x"
record online_copy "$rows rows: $parallel workers vs INSERT..SELECT" "$parallel_ms" "$direct" "(info)"
record online_copy "$rows rows: seed OFFSET proc vs batched" "$seed" "$batched" "(info)"
# Linear: the time per row at the larger size, against the smaller size's; the same growth of
# INSERT ... SELECT beside it (past shared_buffers both write out more dirty pages per row).
record online_copy "time/row at $large vs $rows rows: batched" \
    "$(perl -e 'printf "%.3f", $ARGV[0] * $ARGV[2] / $ARGV[1]' "$large_ms" "$large" "$rows")" "$batched" "<= 1.20x"
record online_copy "time/row at $large vs $rows rows: INSERT..SELECT" \
    "$(perl -e 'printf "%.3f", $ARGV[0] * $ARGV[2] / $ARGV[1]' "$direct_large_ms" "$large" "$rows")" "$direct" "(info)"
