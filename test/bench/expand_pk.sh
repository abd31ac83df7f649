# orders.id int -> bigint (primary key, referenced by order_lines.order_id) with pgbench
# writing the whole time (updates and inserts through the column, 2 clients): expand +
# contract against a plain ALTER TABLE ... ALTER COLUMN id TYPE bigint on an identical pair
# of tables, in the same run.  Printed for each: the longest single lock held on orders
# (expand/contract: from its own log, contract's lock_held_ms and the longest step of any
# phase under a lock that blocks writers, beside the longest VALIDATE, which holds only SHARE
# UPDATE EXCLUSIVE; ALTER TABLE: its whole duration, all under ACCESS EXCLUSIVE), and
# pgbench's p99 and maximum latency over the transactions that ended during the change.
#   ROWS (default 1000000)
source "$REPO/test/bench/lib.sh"
rows=${ROWS:-1000000}
dir=$(mktemp -d)
chmod 777 "$dir"
trap 'rm -rf "$dir"' EXIT

psql -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_lines_e, bench_orders_e, bench_lines_a, bench_orders_a;
DROP SEQUENCE IF EXISTS bench_order_ids;
CREATE SEQUENCE bench_order_ids START 100000000;
CREATE TABLE bench_orders_e (id int PRIMARY KEY, total int NOT NULL DEFAULT 0, note text);
CREATE TABLE bench_orders_a (LIKE bench_orders_e INCLUDING ALL);
INSERT INTO bench_orders_e SELECT g, g % 1000, md5(g::text) FROM generate_series(1, $rows) g;
INSERT INTO bench_orders_a SELECT * FROM bench_orders_e;
CREATE TABLE bench_lines_e (line bigserial PRIMARY KEY, order_id int NOT NULL REFERENCES bench_orders_e (id), qty int);
CREATE TABLE bench_lines_a (line bigserial PRIMARY KEY, order_id int NOT NULL REFERENCES bench_orders_a (id), qty int);
INSERT INTO bench_lines_e (order_id, qty) SELECT g, 1 FROM generate_series(1, $rows) g;
INSERT INTO bench_lines_a (order_id, qty) SELECT g, 1 FROM generate_series(1, $rows) g;
VACUUM ANALYZE bench_orders_e, bench_orders_a, bench_lines_e, bench_lines_a;
CHECKPOINT;
SQL

# run_with_writers SUFFIX SQL: pgbench on bench_orders_SUFFIX while SQL runs; prints
# "ms p99_ms max_ms" (the change's time, latencies of transactions that ended meanwhile).
run_with_writers() {
    local t=$1 sql=$2
    cat >"$dir/w_$t.sql" <<SQL
\set id random(1, $rows)
BEGIN;
UPDATE bench_orders_$t SET total = total + 1 WHERE id = :id;
INSERT INTO bench_orders_$t (id, total) VALUES (nextval('bench_order_ids')::int, 1);
INSERT INTO bench_lines_$t (order_id, qty) VALUES (:id, 1);
END;
SQL
    rm -f "$dir/done"
    (cd "$dir" && while [ ! -f "$dir/done" ]; do
        pgbench -n -c 2 -T 5 -f "$dir/w_$t.sql" -l --log-prefix "$dir/tx_$t" >>"$dir/pgbench_$t.out" 2>&1 || exit 1
    done) &
    local bench=$!
    sleep 3
    local t0 t1
    t0=$(date +%s.%N)
    printf 'SET client_min_messages = warning;\n%s\n' "$sql" >"$dir/change_$t.sql"
    psql -X -q -v ON_ERROR_STOP=1 -f "$dir/change_$t.sql" >/dev/null
    t1=$(date +%s.%N)
    sleep 1
    touch "$dir/done"
    wait "$bench" || { echo "expand_pk: pgbench failed" >&2; tail -5 "$dir/pgbench_$t.out" >&2; exit 1; }
    if grep -E 'number of failed transactions: [1-9]' "$dir/pgbench_$t.out" >&2; then
        echo "expand_pk: pgbench saw failed transactions" >&2; exit 1
    fi
    cat "$dir"/tx_"$t"* | perl -e '
        my ($t0, $t1) = @ARGV; my @l;
        while (<STDIN>) { my @c = split; my $end = $c[4] + $c[5] / 1e6;
                          push @l, $c[2] / 1000 if $end >= $t0 && $end <= $t1 }
        @l = sort { $a <=> $b } @l;
        die "no transactions during the change\n" unless @l;
        printf "%.1f %.1f %.1f %d\n", ($t1 - $t0) * 1000, $l[int(0.99 * $#l)], $l[-1], scalar @l;' "$t0" "$t1"
}

read -r e_ms e_p99 e_max e_n < <(run_with_writers e "CALL virtuoso.expand_column_change('bench_orders_e', 'id', 'bigint');
SELECT change_id AS cid FROM virtuoso.column_changes WHERE table_name = 'public.bench_orders_e' AND phase = 'READY' \\gset
CALL virtuoso.contract_column_change(:'cid');")
read -r a_ms a_p99 a_max a_n < <(run_with_writers a "ALTER TABLE bench_orders_a ALTER COLUMN id TYPE bigint;")

held=$(psql -X -qAt -c "SELECT max((final_stats->>'lock_held_ms')::numeric) FROM virtuoso.migration_log
    WHERE name LIKE 'expand:%:contract' AND status = 'SUCCESS' AND options->>'column' = 'id'
      AND affected_objects ? 'public.bench_orders_e'")
step=$(psql -X -qAt -c "SELECT max((final_stats->>'longest_locked_step_ms')::numeric) FROM virtuoso.migration_log
    WHERE name LIKE 'expand:%' AND status = 'SUCCESS' AND affected_objects ? 'public.bench_orders_e'")
validate=$(psql -X -qAt -c "SELECT max((final_stats->>'longest_validate_ms')::numeric) FROM virtuoso.migration_log
    WHERE name LIKE 'expand:%' AND status = 'SUCCESS' AND affected_objects ? 'public.bench_orders_e'")
check=$(psql -X -qAt -c "SELECT format_type(a.atttypid, a.atttypmod) || '/' || format_type(b.atttypid, b.atttypmod)
    FROM pg_attribute a, pg_attribute b WHERE a.attrelid = 'bench_orders_e'::regclass AND a.attname = 'id'
      AND b.attrelid = 'bench_orders_a'::regclass AND b.attname = 'id'")
[ "$check" = "bigint/bigint" ] || { echo "expand_pk: the change did not happen ($check)" >&2; exit 1; }

echo "expand_pk ($rows rows, pgbench -c 2 writing throughout):" >&2
echo "  expand+contract: ${e_ms} ms in all; contract held the lock ${held} ms; longest step under a lock blocking writers ${step} ms (longest VALIDATE, writers not blocked: ${validate} ms); pgbench p99 ${e_p99} ms, max ${e_max} ms over ${e_n} transactions" >&2
echo "  ALTER TABLE:     ${a_ms} ms, all under ACCESS EXCLUSIVE; pgbench p99 ${a_p99} ms, max ${a_max} ms over ${a_n} transactions" >&2
# Contract's lock_held_ms runs to the end of its commit (locks go at commit); the other
# steps' times stop before theirs: the longest lock held is contract's unless a step beat it.
longest=$(perl -e 'print $ARGV[0] > $ARGV[1] ? $ARGV[0] : $ARGV[1]' "$held" "$step")
record expand_pk "$rows rows: longest lock held, expand vs ALTER" "$longest" "$a_ms" "(info)"
record expand_pk "$rows rows: pgbench p99 during, expand vs ALTER" "$e_p99" "$a_p99" "(info)"
record expand_pk "$rows rows: pgbench max during, expand vs ALTER" "$e_max" "$a_max" "(info)"
record expand_pk "$rows rows: total time, expand vs ALTER" "$e_ms" "$a_ms" "(info)"
