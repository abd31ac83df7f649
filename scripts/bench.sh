#!/usr/bin/env bash
# Runs the benchmarks of test/bench on a throwaway cluster and prints one table of
# medians and ratios measured side by side in this run.
#   scripts/bench.sh                 all benchmarks
#   BENCH="runner" scripts/bench.sh  those whose file name contains a word
#   BENCH="load.sh" scripts/bench.sh that file alone, when a file has exactly this name
#   BENCH_SETTINGS="virtuoso.runner_idle_timeout = 0" ...  extra postgresql.conf lines for the cluster
set -euo pipefail
source "$(dirname "$0")/common.sh"

"$REPO/scripts/install-deps.sh"
build_extension
trap stop_cluster EXIT
start_cluster "$(make_workdir bench)" "fsync = on
synchronous_commit = on
${BENCH_SETTINGS:-}"
psql -X -q -c 'CREATE EXTENSION db_virtuoso' -c 'CREATE EXTENSION pg_stat_statements'

RESULTS=$(mktemp)
export RESULTS REPO
failed=()
for b in "$REPO"/test/bench/*.sh; do
    case "$(basename "$b")" in *"${BENCH:-}"*) ;; *) continue ;; esac  # not the path: a worktree named like a bench would match them all
    # an exact file name runs that one alone ("load.sh" is also the end of "advisor_workload.sh")
    [ ! -f "$REPO/test/bench/${BENCH:-}" ] || [ "$(basename "$b")" = "$BENCH" ] || continue
    echo "== $(basename "$b" .sh)" >&2
    bash "$b" || failed+=("$(basename "$b" .sh)")  # the others still run and report
done
echo
printf '%-28s %-44s %12s %12s %9s %-12s\n' benchmark measure subject baseline ratio target
printf '%.0s-' {1..122}; echo
while IFS='|' read -r bench measure subject baseline ratio target; do
    printf '%-28s %-44s %12s %12s %9s %-12s\n' "$bench" "$measure" "$subject" "$baseline" "$ratio" "$target"
done <"$RESULTS"
rm -f "$RESULTS"
[ ${#failed[@]} -eq 0 ] || { echo "failed benchmarks: ${failed[*]}" >&2; exit 1; }
