#!/usr/bin/env bash
# Runs every test suite of db_virtuoso and ends with one line "N passed, N failed".
#   scripts/test.sh                 all suites
#   SUITES="regress tap" scripts/test.sh    some of them (unit regress isolation tap)
#   REGRESS_TESTS="setup runner" scripts/test.sh  some regression tests only (setup first)
#   ISOLATION_TESTS="runner_waits_for_others" scripts/test.sh  some isolation specs only
#   TAP_TESTS="001_runner" scripts/test.sh   some TAP scripts only
#   KEEP=1 scripts/test.sh          keep the work directory (servers' logs, diffs)
set -uo pipefail
source "$(dirname "$0")/common.sh"

SUITES=${SUITES:-"unit regress isolation tap"}
"$REPO/scripts/install-deps.sh" || exit 1

total_passed=0
total_failed=0
failed_suites=()
count() {  # suite passed failed
    echo "== $1: $2 passed, $3 failed"
    total_passed=$((total_passed + $2))
    total_failed=$((total_failed + $3))
    [ "$3" -eq 0 ] || failed_suites+=("$1")
}

echo "== building"
build_extension || { echo "0 passed, 1 failed"; exit 1; }
WORK=$(make_workdir test)
BIN=$(stage_install "$WORK/stage") || { echo "0 passed, 1 failed"; exit 1; }
cp -r "$REPO/sql" "$REPO/expected" "$REPO/test" "$WORK/"
[ "$(id -u)" -eq 0 ] && chown -R "$RUN_USER" "$WORK"
PGXS_STAGED="$WORK/stage$PGXS_DIR"

run_unit() {
    echo "== unit (GoogleTest via ctest)"
    local build="$REPO/.build/cmake" out
    cmake -S "$REPO" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build "$build" -j"$JOBS" >/dev/null || { count unit 0 1; return; }
    out=$(cd "$build" && ctest --output-on-failure 2>&1)
    echo "$out" | tail -n 3
    local passed failed
    failed=$(echo "$out" | sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p')
    total=$(echo "$out" | sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p')
    [ -n "$total" ] || { echo "$out"; count unit 0 1; return; }
    passed=$((total - failed))
    [ "$failed" -eq 0 ] || echo "$out" | grep -E "Failed|FAILED" | head -20
    count unit "$passed" "$failed"
}

# Output of pg_regress / pg_isolation_regress: "test name ... ok" or "... FAILED".
count_regress() {  # suite logfile outdir
    local passed failed
    passed=$(grep -cE '^(test| ) .* \.\.\. ok|^ok [0-9]+ ' "$2" || true)
    failed=$(grep -cE '\.\.\. FAILED|^not ok [0-9]+ |\.\.\. failed \(ignored\)' "$2" || true)
    if ! grep -qE 'tests passed|tests failed|test passed|test failed' "$2"; then
        failed=$((failed + 1))  # the run itself broke (server did not start, ...)
        tail -n 30 "$2"
    fi
    if [ "$failed" -gt 0 ] && [ -f "$3/regression.diffs" ]; then
        head -n 200 "$3/regression.diffs"
    fi
    count "$1" "$passed" "$failed"
}

run_regress() {
    echo "== regress (pg_regress)"
    local out="$WORK/regress" tests=()
    mkdir -p "$out" && [ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$out"
    if [ -n "${REGRESS_TESTS:-}" ]; then read -ra tests <<<"$REGRESS_TESTS"; else tests=(--schedule="$WORK/test/schedule"); fi
    (cd "$out" && as_runner "$PGXS_STAGED/test/regress/pg_regress" \
        --bindir="$BIN" --inputdir="$WORK" --outputdir="$out" \
        --temp-instance="$out/tmp_check" --temp-config="$WORK/test/regress.conf" \
        --port="$(free_port 54410)" --dbname=contrib_regression "${tests[@]}") >"$out/run.log" 2>&1
    grep -E '^(test| ) |tests|^ok|^not ok' "$out/run.log" | tail -n 60
    count_regress regress "$out/run.log" "$out"
}

run_isolation() {
    echo "== isolation (pg_isolation_regress)"
    local out="$WORK/isolation" specs=()
    if [ -n "${ISOLATION_TESTS:-}" ]; then read -ra specs <<<"$ISOLATION_TESTS"; else specs=(--schedule="$WORK/test/isolation/schedule"); fi
    mkdir -p "$out" && [ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$out"
    (cd "$out" && as_runner "$PGXS_STAGED/test/isolation/pg_isolation_regress" \
        --bindir="$BIN" --inputdir="$WORK/test/isolation" --outputdir="$out" \
        --temp-instance="$out/tmp_check" --temp-config="$WORK/test/regress.conf" \
        --port="$(free_port 54430)" --dbname=isolation_regression \
        "${specs[@]}") >"$out/run.log" 2>&1
    grep -E '^(test| ) |tests|^ok|^not ok' "$out/run.log" | tail -n 40
    count_regress isolation "$out/run.log" "$out"
}

run_tap() {
    echo "== tap (prove, PostgreSQL::Test::Cluster)"
    local out="$WORK/tap" log passed=0 failed=0 tests_total=0 scripts=() name
    if [ -n "${TAP_TESTS:-}" ]; then
        for name in $TAP_TESTS; do scripts+=("$WORK/test/t/$name.pl"); done
    else
        scripts=("$WORK"/test/t/*.pl)
    fi
    mkdir -p "$out" && [ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$out"
    log="$out/run.log"
    (cd "$out" && as_runner env PATH="$BIN:$PATH" PG_REGRESS="$PGXS_STAGED/test/regress/pg_regress" \
        TESTDIR="$out" PGPORT="$(free_port 54450)" VIRTUOSO_REPO="$WORK" \
        prove -I "$PGXS_STAGED/test/perl" -I "$WORK/test/t" ${PROVE_FLAGS:-} "${scripts[@]}") >"$log" 2>&1
    local rc=$?
    grep -vE '^\s*$' "$log" | tail -n 40
    tests_total=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$log")
    failed=$(grep -oE 'Failed [0-9]+/[0-9]+ subtests' "$log" | awk '{split($2,a,"/"); s+=a[1]} END {print s+0}')
    tests_total=${tests_total:-0}
    passed=$((tests_total - failed))
    if [ $rc -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # a script died without counting
    if [ $rc -ne 0 ]; then
        for f in "$out"/tmp_check/log/regress_log_*; do [ -f "$f" ] && { echo "--- $f"; tail -n 60 "$f"; }; done
    fi
    count tap "$passed" "$failed"
}

for suite in $SUITES; do
    "run_$suite"
done

if [ -n "${KEEP:-}" ] || [ ${#failed_suites[@]} -gt 0 ]; then
    echo "work directory kept: $WORK"
else
    rm -rf "$WORK"
fi
[ ${#failed_suites[@]} -eq 0 ] || echo "failed suites: ${failed_suites[*]}"
echo "${total_passed} passed, ${total_failed} failed"
[ "$total_failed" -eq 0 ]
