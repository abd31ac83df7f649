# Load (issue 10 item 4, long variant of TAP 095_load; issue 18's benchmark): pgbench TPC-B
# traffic alone, then beside 16 sessions calling migrations, validation, maintenance and the
# index advisor for 60 s. Prints calls, errors by SQLSTATE, the longest maintenance action on
# the pgbench tables, and the traffic's tps and p99 latency with and without the calls.
source "$REPO/test/bench/lib.sh"
export PATH="${CLUSTER_BIN:-$(pg_config --bindir)}:$PATH"
out=$(mktemp)
LOAD_SESSIONS=${LOAD_SESSIONS:-16} LOAD_SECONDS=${LOAD_SECONDS:-60} \
    LOAD_BASE_SECONDS=${LOAD_BASE_SECONDS:-30} LOAD_SCALE=${LOAD_SCALE:-10} \
    perl "$REPO/test/bench/load_driver.pl" >"$out"
status=$?
cat "$out" >&2
fig() { awk -v k="$1" '$1 == "figure" && $2 == k { print $3 }' "$out"; }
psql -X -q -c 'SET client_min_messages = warning' -c 'DROP SCHEMA IF EXISTS load CASCADE' \
    -c 'DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history' >/dev/null
[ "$status" -eq 0 ] || { rm -f "$out"; exit 1; }

sessions=$(fig sessions)
record load "traffic p99 latency, $sessions sessions calling" "$(fig p99_ms_with)" "$(fig p99_ms_without)" "report"
record load "traffic p50 latency, $sessions sessions calling" "$(fig p50_ms_with)" "$(fig p50_ms_without)" "report"
tps_with=$(fig traffic_tps_with)
tps_without=$(fig traffic_tps_without)
echo "load|traffic tps with / without the calls|$tps_with tps|$tps_without tps|$(perl -e 'printf "%.2fx", $ARGV[0] / $ARGV[1]' "$tps_with" "$tps_without")|report" >>"$RESULTS"
errors=$(awk '$1 == "figure" && $2 ~ /^calls_/ {
    n = split($2, p, "_"); if (length(p[n]) == 5 && p[n] != "00000") e[p[n]] += $3 }
    END { for (k in e) { printf "%s%s:%d", sep, k, e[k]; sep = " " } }' "$out")
echo "load|calls in $(fig seconds) s ($(fig calls_per_s)/s), errors by SQLSTATE|$(fig calls) calls|-|-|${errors:-none}" >>"$RESULTS"
echo "load|longest maintenance action, small busy pgbench tables|$(fig longest_maintenance_small_pgbench_table_s) s|-|-|<= 0.5 s" >>"$RESULTS"
echo "load|longest maintenance action, large pgbench tables|$(fig longest_maintenance_large_pgbench_table_s) s|-|-|report" >>"$RESULTS"
failed=$(grep -c '^check .* FAIL' "$out")
echo "load|checks (documented errors only, no lock wait, no RUNNING, log = calls, no restart)|$failed failed|-|-|0 failed" >>"$RESULTS"
rm -f "$out"
[ "$failed" -eq 0 ]
