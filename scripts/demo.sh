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
psql -X -v ON_ERROR_STOP=1 -q -f "$REPO/scripts/demo.sql"
echo "== demo finished; the cluster is removed"
