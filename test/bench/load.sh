# Load (issue 10 item 4, long variant of TAP 095_load; issue 18's benchmark): pgbench TPC-B
# traffic (scale 10, 8 clients, as issue 18 measured it) runs once, continuously, for about
# LOAD_BASE_SECONDS + LOAD_SECONDS (default 20 + 140: LOAD_WINDOW_SECONDS windows, here 5 s, a
# multiple of 4 of them -- 8 blocks of four in 160 s: blocks swing by +-0.07x, and the median
# of 5 moved between 0.87x and 1.00x from run to run), and 8 sessions calling migrations, validation, maintenance and the
# index advisor are switched off and on beside it window by window (off, on, on, off), twice: at a
# realistic rate (LOAD_RATE calls/s per kind, default 2) and flat out. Prints per run the
# traffic's tps (median of the on / off windows) and p50/p99 (over all their transactions)
# with / without the calls, calls/s, errors by SQLSTATE, the longest maintenance action on the
# pgbench tables and the runner worker slots in use at peak (against
# virtuoso.max_runner_workers); then each kind of call alone (LOAD_PROBE_CALLS in a row): the
# cluster's CPU and the runner workers per call ("none": the probe's own cost per call, a psql
# session running SELECT, included in each).  LOAD_BASELINE=direct: the "off" windows run the
# same work done directly (the migrations' SQL, the validation's queries) instead of nothing,
# so the ratios are the extension's own cost (labels say "vs direct").
source "$REPO/test/bench/lib.sh"
export PATH="${CLUSTER_BIN:-$(pg_config --bindir)}:$PATH"
failed_total=0

run_load() {
    local label=$1 rate=$2 out status
    out=$(mktemp)
    LOAD_RATE=$rate LOAD_SESSIONS=${LOAD_SESSIONS:-8} LOAD_CLIENTS=${LOAD_CLIENTS:-8} LOAD_SECONDS=${LOAD_SECONDS:-140} \
        LOAD_BASE_SECONDS=${LOAD_BASE_SECONDS:-20} LOAD_SCALE=${LOAD_SCALE:-10} LOAD_WINDOW_SECONDS=${LOAD_WINDOW_SECONDS:-5} \
        perl "$REPO/test/bench/load_driver.pl" >"$out"
    status=$?
    cat "$out" >&2
    fig() { awk -v k="$1" '$1 == "figure" && $2 == k { print $3 }' "$out"; }
    # (the next run names its migrations the same: their log rows would make them "applied")
    psql -X -q -c 'SET client_min_messages = warning' -c 'DROP SCHEMA IF EXISTS load CASCADE' \
        -c 'DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history' \
        -c "DELETE FROM virtuoso.migration_log WHERE name LIKE 'load\\_%'" >/dev/null
    if [ "$status" -ne 0 ]; then rm -f "$out"; failed_total=$((failed_total + 1)); return; fi

    local sessions p99w p99o tpsw tpso errors failed
    sessions=$(fig sessions)
    p99w=$(fig p99_ms_with); p99o=$(fig p99_ms_without)
    tpsw=$(fig traffic_tps_with); tpso=$(fig traffic_tps_without)
    record load "$label: traffic p50 latency, $sessions sessions calling, $(fig windows) windows of $(fig window_seconds) s" "$(fig p50_ms_with)" "$(fig p50_ms_without)" "report"
    echo "load|$label: traffic tps with / without the calls (median of on / off windows)|$tpsw tps|$tpso tps|$(perl -e 'printf "%.2fx", $ARGV[0] / $ARGV[1]' "$tpsw" "$tpso")|report" >>"$RESULTS"
    echo "load|$label: traffic p99 with / without the calls (all on / off windows)|$p99w ms|$p99o ms|$(perl -e 'printf "%.2fx", $ARGV[0] / $ARGV[1]' "$p99w" "$p99o")|report" >>"$RESULTS"
    echo "load|$label: traffic tps with / without, paired (median of $(fig blocks) blocks off-on-on-off: $(fig traffic_tps_ratio_blocks))|-|-|$(fig traffic_tps_ratio_paired)x|>= 0.95x at 2 calls/s" >>"$RESULTS"
    echo "load|$label: traffic p99 with / without, paired (median of blocks: $(fig p99_ratio_blocks))|-|-|$(fig p99_ratio_paired)x|<= 1.15x at 2 calls/s" >>"$RESULTS"
    errors=$(awk '$1 == "figure" && $2 ~ /^calls_/ {
        n = split($2, p, "_"); if (length(p[n]) == 5 && p[n] != "00000") e[p[n]] += $3 }
        END { for (k in e) { printf "%s%s:%d", sep, k, e[k]; sep = " " } }' "$out")
    echo "load|$label: window tps off/on: $(awk '$1 == "figure" && $2 ~ /^window_tps_/ { printf "%s%s", sep, $4; sep = " " }' "$out")|-|-|-|report" >>"$RESULTS"
    echo "load|$label: calls in $(fig seconds) s ($(fig calls_per_s)/s), errors by SQLSTATE|$(fig calls) calls|-|-|${errors:-none}" >>"$RESULTS"
    echo "load|$label: bytes of migration_log (+ migration_stats) per migration, as left / live rows (VACUUM FULL)|$(fig log_bytes_per_migration) B|$(fig log_live_bytes_per_migration) B|-|report" >>"$RESULTS"
    echo "load|$label: runner worker slots at peak|$(fig peak_runner_slots)|-|-|<= $(fig max_runner_workers) (virtuoso.max_runner_workers)" >>"$RESULTS"
    echo "load|$label: longest maintenance action, small busy pgbench tables|$(fig longest_maintenance_small_pgbench_table_s) s|-|-|<= 0.5 s" >>"$RESULTS"
    echo "load|$label: longest maintenance action, large pgbench tables|$(fig longest_maintenance_large_pgbench_table_s) s|-|-|report" >>"$RESULTS"
    local kind
    for kind in none burn migration migration_nontx validation maintenance advisor; do
        echo "load|$label: $kind alone, cluster CPU per call|$(fig probe_cpu_ms_per_call_$kind) ms|-|-|report" >>"$RESULTS"
        echo "load|$label: $kind alone, runner workers per call|$(fig probe_workers_per_call_$kind)|-|-|report" >>"$RESULTS"
    done
    failed=$(grep -c '^check .* FAIL' "$out")
    echo "load|$label: checks (documented errors only, no lock wait, no RUNNING, log = calls, no restart)|$failed failed|-|-|0 failed" >>"$RESULTS"
    rm -f "$out"
    failed_total=$((failed_total + failed))
}

# LOAD_RUNS="rate" leaves out the flat-out run (LOAD_KINDS picks the kinds of call).
vs=
[ "${LOAD_BASELINE:-}" != direct ] || vs=" vs direct"
case " ${LOAD_RUNS:-rate flat} " in *" rate "*) run_load "${LOAD_RATE:-2} calls/s per kind$vs" "${LOAD_RATE:-2}" ;; esac
case " ${LOAD_RUNS:-rate flat} " in *" flat "*) run_load "flat out$vs" 0 ;; esac
[ "$failed_total" -eq 0 ]
