# Shared by the scripts: locations, the unprivileged user that runs servers, staging.
# shellcheck shell=bash
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Servers and expected outputs use C.UTF-8 (built into Debian 12's glibc): sort orders stay
# the same everywhere, and initdb never meets a locale that is not generated.
export LANG=C.UTF-8 LC_ALL=C.UTF-8
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_BINDIR=$("$PG_CONFIG" --bindir)
PGXS_DIR=$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")   # .../lib/pgxs/src
JOBS=$(nproc 2>/dev/null || echo 2)

# initdb and pg_regress refuse to run as root: servers run as this user then.
if [ "$(id -u)" -eq 0 ]; then
    RUN_USER=${VIRTUOSO_TEST_USER:-postgres}
    as_runner() { runuser -u "$RUN_USER" -- "$@"; }
else
    RUN_USER=$(id -un)
    as_runner() { "$@"; }
fi

# A work directory the server user can read and write, outside the checkout (which may
# sit in a directory only root can enter).
make_workdir() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/db_virtuoso-$1.XXXXXX")
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$dir"
    echo "$dir"
}

# Builds the extension and installs it into a private copy of the PostgreSQL installation
# under $1, so tests use exactly this tree's build and never the system's.  Prints the
# staged bin directory.
stage_install() {
    local stage=$1 libdir sharedir
    libdir=$(dirname "$PG_BINDIR")                 # /usr/lib/postgresql/15
    sharedir=$("$PG_CONFIG" --sharedir)            # /usr/share/postgresql/15
    mkdir -p "$stage$(dirname "$libdir")" "$stage$(dirname "$sharedir")"
    cp -a "$libdir" "$stage$libdir"
    cp -a "$sharedir" "$stage$sharedir"
    make -C "$REPO" -s install DESTDIR="$stage" PG_CONFIG="$PG_CONFIG" >/dev/null
    chmod -R a+rX "$stage"
    echo "$stage$PG_BINDIR"
}

build_extension() {
    make -C "$REPO" -s -j"$JOBS" PG_CONFIG="$PG_CONFIG" 2>&1 | grep -v '^ *$' || true
    test -f "$REPO/db_virtuoso.so" || { echo "build failed" >&2; return 1; }
}

# A free TCP port on the loopback interface.
free_port() {
    local port
    for port in $(seq "${1:-54400}" 65000); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# Starts a throwaway cluster with db_virtuoso and pg_stat_statements preloaded, from a
# staged install under $1.  Sets PGHOST, PGPORT, PGUSER, PGDATABASE for psql and
# CLUSTER_DIR, CLUSTER_BIN for stop_cluster.  Extra postgresql.conf lines in $2.
start_cluster() {
    CLUSTER_DIR=$1
    CLUSTER_BIN=$(stage_install "$CLUSTER_DIR/stage") || return 1
    [ "$(id -u)" -eq 0 ] && chown -R "$RUN_USER" "$CLUSTER_DIR"
    as_runner "$CLUSTER_BIN/initdb" -D "$CLUSTER_DIR/data" -A trust -U postgres >/dev/null || return 1
    PGPORT=$(free_port 55432)
    cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$CLUSTER_DIR'
port = $PGPORT
shared_preload_libraries = 'db_virtuoso,pg_stat_statements'
max_worker_processes = 32
pg_stat_statements.track = top
virtuoso.database_names = 'postgres'
${2:-}
CONF
    as_runner "$CLUSTER_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null || {
        tail -n 20 "$CLUSTER_DIR/server.log"
        return 1
    }
    export PGHOST=$CLUSTER_DIR PGPORT PGUSER=postgres PGDATABASE=postgres
}

stop_cluster() {
    [ -n "${CLUSTER_DIR:-}" ] || return 0
    as_runner "$CLUSTER_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$CLUSTER_DIR"
    CLUSTER_DIR=
}
