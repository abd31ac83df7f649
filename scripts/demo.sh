#!/usr/bin/env bash
# The main job: a throwaway cluster with db_virtuoso and pg_stat_statements preloaded, and
# a short demonstration of every capability on sample data.  Leaves nothing behind.
set -euo pipefail
source "$(dirname "$0")/common.sh"

"$REPO/scripts/install-deps.sh"
echo "== building db_virtuoso"
build_extension
echo "== starting a throwaway cluster"
trap stop_cluster EXIT
start_cluster "$(make_workdir demo)"
echo "   (socket $PGHOST, port $PGPORT)"
psql -X -v ON_ERROR_STOP=1 -q -c 'CREATE EXTENSION db_virtuoso' -c 'CREATE EXTENSION pg_stat_statements'
# one part per capability, in name order
for part in "$REPO"/scripts/demo/*.sql; do
    psql -X -v ON_ERROR_STOP=1 -v host="$PGHOST" -v port="$PGPORT" -q -f "$part"
done
# The HTML report of the demo's data, and a screenshot of it in headless Chromium, written to
# $VIRTUOSO_DEMO_DIR (default: db_virtuoso-demo/ in the current directory): they outlive the
# throwaway cluster.
out=${VIRTUOSO_DEMO_DIR:-$PWD/db_virtuoso-demo}
mkdir -p "$out"
out=$(cd "$out" && pwd)
echo "== the HTML report: SELECT virtuoso.report_html()"
psql -X -v ON_ERROR_STOP=1 -At -c 'SELECT virtuoso.report_html()' >"$out/report.html"
profile=$(mktemp -d)
if chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$profile" \
        --hide-scrollbars --window-size=1280,2400 --screenshot="$out/report.png" \
        "file://$out/report.html" >/dev/null 2>&1 && [ -s "$out/report.png" ]; then
    echo "   report:     $out/report.html"
    echo "   screenshot: $out/report.png"
else
    echo "   report:     $out/report.html (no screenshot: chromium failed)"
fi
rm -rf "$profile"
echo "== demo finished; the cluster is removed"
