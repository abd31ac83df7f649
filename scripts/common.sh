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
# staged bin directory.  With SANITIZE=1 the module comes from the sanitizer build
# (build_sanitized_extension) and the staged postgres runs with the ASan runtime.
stage_install() {
    local stage=$1 libdir sharedir src=$REPO
    [ -z "${SANITIZE:-}" ] || src=$SANITIZE_BUILD
    libdir=$(dirname "$PG_BINDIR")                 # /usr/lib/postgresql/15
    sharedir=$("$PG_CONFIG" --sharedir)            # /usr/share/postgresql/15
    mkdir -p "$stage$(dirname "$libdir")" "$stage$(dirname "$sharedir")"
    cp -a "$libdir" "$stage$libdir"
    cp -a "$sharedir" "$stage$sharedir"
    # Only this tree's files: a db_virtuoso installed into the system (another version, a
    # secondary control file, an upgrade script) must not change what the tests run.
    rm -f "$stage$sharedir"/extension/db_virtuoso[.-]* "$stage$("$PG_CONFIG" --pkglibdir)"/db_virtuoso.so
    make -C "$src" -s install DESTDIR="$stage" PG_CONFIG="$PG_CONFIG" ${SANITIZE:+SANITIZE=1} >/dev/null
    [ -z "${SANITIZE:-}" ] || wrap_postgres_for_sanitizers "$stage$PG_BINDIR" "$stage/sanitizer" || return 1
    chmod -R a+rX "$stage"
    echo "$stage$PG_BINDIR"
}

build_extension() {
    make -C "$REPO" -s -j"$JOBS" PG_CONFIG="$PG_CONFIG" 2>&1 | grep -v '^ *$' || true
    test -f "$REPO/db_virtuoso.so" || { echo "build failed" >&2; return 1; }
}

# ---- Sanitizer runs (SANITIZE=1, scripts/sanitize.sh) ----
# The module is built with ASan and UBSan in a copy of the tree (.build/sanitize), so the
# normal build's objects are never mixed with instrumented ones.  The server binaries are
# Debian's, uninstrumented: only the staged `postgres` is replaced by a wrapper that preloads
# the ASan runtime, so psql, pg_regress and perl run as usual.  libc goes first in
# LD_PRELOAD: libasan alone hangs the postmaster in bindtextdomain on Debian 12 (see
# ARCHITECTURE.md).  With an uninstrumented server, malloc and palloc memory is not checked
# from PostgreSQL's own code; the module's code, its new/delete, stack and UB are.
SANITIZE_BUILD=$REPO/.build/sanitize
LIBASAN=$(readlink -f "$(gcc -print-file-name=libasan.so)")
LIBUBSAN=$(readlink -f "$(gcc -print-file-name=libubsan.so)")

# Copies the files the module is built from into $SANITIZE_BUILD; unchanged files keep
# their time stamps so make rebuilds only what changed, and files gone from the tree go.
sync_sanitize_tree() {
    local f
    mkdir -p "$SANITIZE_BUILD"
    (cd "$REPO" && find Makefile ./*.control include src test/schedule -type f \
        \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.sql' -o -name '*.control' \
           -o -name Makefile -o -name schedule \)) | while read -r f; do
        cmp -s "$REPO/$f" "$SANITIZE_BUILD/$f" && continue
        mkdir -p "$(dirname "$SANITIZE_BUILD/$f")"
        cp "$REPO/$f" "$SANITIZE_BUILD/$f"
    done
    (cd "$SANITIZE_BUILD" && find include src -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.sql' \)) |
        while read -r f; do
            [ -e "$REPO/$f" ] || rm -f "$SANITIZE_BUILD/$f" "$SANITIZE_BUILD/${f%.cpp}.o"
        done
    # Released install scripts, update scripts and their control files (not the generated
    # install script, which make writes; it goes too so that make writes it afresh).
    rm -f "$SANITIZE_BUILD"/db_virtuoso--*
    cp -p "$REPO"/db_virtuoso--*.control "$SANITIZE_BUILD/" 2>/dev/null || true
    for f in "$REPO"/db_virtuoso--*.sql; do
        [ -e "$f" ] || continue
        git -C "$REPO" check-ignore -q "$f" 2>/dev/null || cp -p "$f" "$SANITIZE_BUILD/"
    done
}

# The sanitizer flags of the Makefile (SANITIZE_FLAGS), for what is built beside the module.
sanitize_flags() {
    # shellcheck disable=SC2016  # $(SANITIZE_FLAGS) is make's
    make -s -C "$REPO" SANITIZE=1 --eval 'print-sanitize-flags: ; @echo $(SANITIZE_FLAGS)' print-sanitize-flags
}

build_sanitized_extension() {
    test -f "$LIBASAN" && test -f "$LIBUBSAN" || { echo "libasan/libubsan not found (g++ installs them)" >&2; return 1; }
    sync_sanitize_tree
    make -C "$SANITIZE_BUILD" -s -j"$JOBS" PG_CONFIG="$PG_CONFIG" SANITIZE=1 2>&1 | grep -v '^ *$' || true
    test -f "$SANITIZE_BUILD/db_virtuoso.so" &&
        nm -D "$SANITIZE_BUILD/db_virtuoso.so" | grep __asan_report >/dev/null ||
        { echo "sanitizer build failed" >&2; return 1; }
}

# Replaces the staged postgres ($1/postgres) by a wrapper that runs the real binary with the
# sanitizer runtimes preloaded and ASan reports written to files in $2 (asan.PID).  Every
# server process (postmaster, backends, workers, initdb's bootstrap) is a child of it; each
# start is noted in $2.starts, so a run can check its servers really went through it.
wrap_postgres_for_sanitizers() {
    local bin=$1 reports=$2
    local options=$bin/../lib/sanitizer_ubsan_options.so
    mkdir -p "$reports" && chmod 1777 "$reports"
    touch "$reports.starts" && chmod 666 "$reports.starts"
    gcc -O2 -fPIC -shared -o "$options" "$REPO/test/sanitize/ubsan_options.c" || return 1
    [ -f "$bin/postgres.uninstrumented" ] || mv "$bin/postgres" "$bin/postgres.uninstrumented"
    cat >"$bin/postgres" <<WRAPPER
#!/bin/bash
# Generated by scripts/common.sh (SANITIZE=1): the uninstrumented server with the ASan and
# UBSan runtimes preloaded.  Findings abort the process; ASan reports go to $reports,
# UBSan reports to the server's stderr (its log).
export LD_PRELOAD="libc.so.6 $(readlink -f "$options") $LIBASAN $LIBUBSAN\${LD_PRELOAD:+ \$LD_PRELOAD}"
export ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=0:abort_on_error=1:disable_coredump=1:detect_stack_use_after_return=1:log_path=$reports/asan\${ASAN_OPTIONS:+:\$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1\${UBSAN_OPTIONS:+:\$UBSAN_OPTIONS}"
echo "\$\$ \$*" >>"$reports.starts" 2>/dev/null
exec -a "\$0" "$bin/postgres.uninstrumented" "\$@"
WRAPPER
    chmod 755 "$bin/postgres"
}

# Prints every sanitizer finding: report files in $1 and sanitizer lines or aborted processes
# in the server logs under $2...  Returns 1 when there is any.
scan_sanitizer_reports() {
    local reports=$1 found=0 f
    shift
    for f in "$reports"/*; do
        [ -s "$f" ] || continue
        found=1
        echo "--- sanitizer report $f"
        head -n 60 "$f"
    done
    while read -r f; do
        found=1
        echo "--- sanitizer finding in server log $f"
        grep -n -B2 -A30 -E 'AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|runtime error:|terminated by signal 6' "$f" | head -n 80
    done < <(find "$@" -name '*.log' -type f -exec grep -l -E 'AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|runtime error:|terminated by signal 6' {} + 2>/dev/null)
    return $found
}

# Proves that a sanitizer run can fail: a throwaway cluster from the sanitizer stage must
# map the runtimes and the instrumented module, and two deliberate defects of a canary
# module (test/sanitize/canary.cpp) must each abort a backend with a report that
# scan_sanitizer_reports finds.  Prints what failed; returns 1 then.  Runs in a subshell:
# the cluster's PGHOST and friends must not leak into the caller.
sanitizer_self_check() (
    local ok=0 pid flags pkglib dir
    dir=$(make_workdir sanitize-check)
    SANITIZE=1 start_cluster "$dir" || { rm -rf "$dir"; return 1; }
    pid=$(head -n 1 "$CLUSTER_DIR/data/postmaster.pid")
    grep -q libasan "/proc/$pid/maps" && grep -q libubsan "/proc/$pid/maps" ||
        { echo "self-check: the postmaster does not map libasan and libubsan"; ok=1; }
    grep -q "$CLUSTER_DIR/stage.*/db_virtuoso.so" "/proc/$pid/maps" ||
        { echo "self-check: the postmaster did not load the staged db_virtuoso.so"; ok=1; }
    flags=$(sanitize_flags)
    pkglib=$CLUSTER_DIR/stage$("$PG_CONFIG" --pkglibdir)
    # shellcheck disable=SC2086
    g++ -std=c++17 -O1 -g -fPIC -shared $flags -I"$("$PG_CONFIG" --includedir-server)" \
        -o "$pkglib/sanitizer_canary.so" "$REPO/test/sanitize/canary.cpp" && chmod a+r "$pkglib/sanitizer_canary.so" ||
        { echo "self-check: the canary does not build"; ok=1; }
    psql -X -q -v ON_ERROR_STOP=1 \
        -c "CREATE FUNCTION canary_heap(int) RETURNS int AS '\$libdir/sanitizer_canary', 'sanitizer_canary_heap_overflow' LANGUAGE C STRICT" \
        -c "CREATE FUNCTION canary_shift(int) RETURNS int AS '\$libdir/sanitizer_canary', 'sanitizer_canary_shift' LANGUAGE C STRICT" \
        -c "SELECT canary_heap(5), canary_shift(3)" >/dev/null || { echo "self-check: the canary does not load"; ok=1; }
    psql -X -q -c "SELECT canary_heap(4)" >/dev/null 2>&1 && { echo "self-check: a heap overflow did not abort the backend"; ok=1; }
    grep -qs "ERROR: AddressSanitizer: heap-buffer-overflow" "$CLUSTER_DIR/stage/sanitizer"/asan.* ||
        { echo "self-check: no ASan report of the heap overflow in $CLUSTER_DIR/stage/sanitizer"; ok=1; }
    for _ in $(seq 1 100); do psql -X -q -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
    psql -X -q -c "SELECT canary_shift(40)" >/dev/null 2>&1 && { echo "self-check: undefined behaviour did not abort the backend"; ok=1; }
    sleep 0.5
    grep -q "runtime error: shift exponent 40" "$CLUSTER_DIR/server.log" && grep -q "in sanitizer_canary_shift" "$CLUSTER_DIR/server.log" ||
        { echo "self-check: no UBSan report with a stack in the server log"; ok=1; }
    scan_sanitizer_reports "$CLUSTER_DIR/stage/sanitizer" "$CLUSTER_DIR" >/dev/null &&
        { echo "self-check: scan_sanitizer_reports missed the canary's reports"; ok=1; }
    [ $ok -eq 0 ] || { echo "self-check: server log and reports kept in $dir.failed"; cp -r "$CLUSTER_DIR" "$dir.failed"; }
    stop_cluster
    return $ok
)

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
