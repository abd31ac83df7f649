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
echo "== demo finished; the cluster is removed"
