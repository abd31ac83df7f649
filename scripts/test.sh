#!/usr/bin/env bash
# Runs every test suite of db_virtuoso and ends with one line "N passed, N failed".
#   scripts/test.sh                 all suites
#   SUITES="regress tap" scripts/test.sh    some of them (unit regress isolation tap)
#   REGRESS_TESTS="setup runner" scripts/test.sh  some regression tests only (setup first)
#   ISOLATION_TESTS="runner_waits_for_others" scripts/test.sh  some isolation specs only
#   TAP_TESTS="001_runner" scripts/test.sh   some TAP scripts only
#   KEEP=1 scripts/test.sh          keep the work directory (servers' logs, diffs)
# The suite "asan" runs suites again with the module built with ASan and UBSan (servers get
# the runtimes preloaded) and fails on any sanitizer report.  By default it runs regress,
# isolation and the TAP script 001_runner; scripts/sanitize.sh runs every suite that way.
#   ASAN_SUITES="regress isolation tap"   the suites it runs (unit too in scripts/sanitize.sh)
#   ASAN_TAP_TESTS="001_runner"           its TAP scripts (empty: all; TAP_TESTS wins)
#   ASAN_TAP_SKIP="080_hostile_input"     left out of "all": it limits the postmaster's
#       address space with prlimit, and the ASan runtime's shadow memory alone exceeds any
#       such limit (every backend then fails with "out of memory").  TAP scripts see
#       VIRTUOSO_SANITIZE=1 in a sanitizer run, so such a script can adapt instead.
set -uo pipefail
source "$(dirname "$0")/common.sh"

SUITES=${SUITES:-"unit regress isolation tap asan"}
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

WORK=$(make_workdir test)
TAG=        # prefix of suite names and their directories: "asan-" inside the asan suite
BIN=
if [ -n "$(echo " $SUITES " | sed 's/ unit / /g; s/ asan / /g' | tr -d ' ')" ]; then
    echo "== building"
    build_extension || { echo "0 passed, 1 failed"; exit 1; }
    BIN=$(stage_install "$WORK/stage") || { echo "0 passed, 1 failed"; exit 1; }
fi
cp -r "$REPO/sql" "$REPO/expected" "$REPO/test" "$WORK/"
[ "$(id -u)" -eq 0 ] && chown -R "$RUN_USER" "$WORK"
PGXS_STAGED="$WORK/stage$PGXS_DIR"

run_unit() {
    echo "== ${TAG}unit (GoogleTest via ctest)"
    local build="$REPO/.build/cmake" out flags=() env=()
    if [ -n "$TAG" ]; then  # the unit tests are ordinary programs: instrument them whole
        build="$REPO/.build/cmake-sanitize"
        flags=("-DCMAKE_CXX_FLAGS=$SANITIZE_FLAGS" "-DCMAKE_EXE_LINKER_FLAGS=$SANITIZE_FLAGS")
        env=(ASAN_OPTIONS=abort_on_error=1:detect_stack_use_after_return=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
    fi
    cmake -S "$REPO" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null &&
        cmake --build "$build" -j"$JOBS" >/dev/null || { count "${TAG}unit" 0 1; return; }
    out=$(cd "$build" && env "${env[@]}" ctest --output-on-failure 2>&1)
    echo "$out" | tail -n 3
    local passed failed
    failed=$(echo "$out" | sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p')
    total=$(echo "$out" | sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p')
    [ -n "$total" ] || { echo "$out"; count "${TAG}unit" 0 1; return; }
    passed=$((total - failed))
    [ "$failed" -eq 0 ] || echo "$out" | grep -E "Failed|FAILED|Sanitizer|runtime error" | head -40
    count "${TAG}unit" "$passed" "$failed"
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
    echo "== ${TAG}regress (pg_regress)"
    local out="$WORK/${TAG}regress" tests=()
    mkdir -p "$out" && [ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$out"
    if [ -n "${REGRESS_TESTS:-}" ]; then read -ra tests <<<"$REGRESS_TESTS"; else tests=(--schedule="$WORK/test/schedule"); fi
    (cd "$out" && as_runner "$PGXS_STAGED/test/regress/pg_regress" \
        --bindir="$BIN" --inputdir="$WORK" --outputdir="$out" \
        --temp-instance="$out/tmp_check" --temp-config="$WORK/test/regress.conf" \
        --port="$(free_port 54410)" --dbname=contrib_regression "${tests[@]}") >"$out/run.log" 2>&1
    grep -E '^(test| ) |tests|^ok|^not ok' "$out/run.log" | tail -n 60
    count_regress "${TAG}regress" "$out/run.log" "$out"
}

run_isolation() {
    echo "== ${TAG}isolation (pg_isolation_regress)"
    local out="$WORK/${TAG}isolation" specs=()
    if [ -n "${ISOLATION_TESTS:-}" ]; then read -ra specs <<<"$ISOLATION_TESTS"; else specs=(--schedule="$WORK/test/isolation/schedule"); fi
    mkdir -p "$out" && [ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$out"
    (cd "$out" && as_runner "$PGXS_STAGED/test/isolation/pg_isolation_regress" \
        --bindir="$BIN" --inputdir="$WORK/test/isolation" --outputdir="$out" \
        --temp-instance="$out/tmp_check" --temp-config="$WORK/test/regress.conf" \
        --port="$(free_port 54430)" --dbname=isolation_regression \
        "${specs[@]}") >"$out/run.log" 2>&1
    grep -E '^(test| ) |tests|^ok|^not ok' "$out/run.log" | tail -n 40
    count_regress "${TAG}isolation" "$out/run.log" "$out"
}

run_tap() {
    echo "== ${TAG}tap (prove, PostgreSQL::Test::Cluster)"
    local out="$WORK/${TAG}tap" log passed=0 failed=0 tests_total=0 scripts=() name
    if [ -n "${TAP_TESTS:-}" ]; then
        for name in $TAP_TESTS; do scripts+=("$WORK/test/t/$name.pl"); done
    else
        scripts=("$WORK"/test/t/*.pl)
    fi
    mkdir -p "$out" && [ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$out"
    log="$out/run.log"
    (cd "$out" && as_runner env PATH="$BIN:$PATH" PG_REGRESS="$PGXS_STAGED/test/regress/pg_regress" \
        VIRTUOSO_SANITIZE="${TAG:+1}" \
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
    count "${TAG}tap" "$passed" "$failed"
}

# The suites of ASAN_SUITES again, against a stage whose module is built with ASan and
# UBSan and whose servers run with the runtimes preloaded (scripts/common.sh).  Besides
# their own results it counts the canary self-check (a run that cannot see a defect must
# not pass) and the scan for sanitizer reports and aborted server processes.
run_asan() {
    echo "== asan (module built with -fsanitize=address,undefined; servers preload the runtimes)"
    local start=$SECONDS suite saved_bin=$BIN saved_pgxs=$PGXS_STAGED saved_tap=${TAP_TESTS:-}
    build_sanitized_extension || { count asan-build 0 1; return; }
    SANITIZE_FLAGS=$(sanitize_flags)
    if sanitizer_self_check; then count asan-canary 1 0; else count asan-canary 0 1; fi
    BIN=$(SANITIZE=1 stage_install "$WORK/asan-stage") || { count asan-stage 0 1; BIN=$saved_bin; return; }
    PGXS_STAGED="$WORK/asan-stage$PGXS_DIR"
    TAP_TESTS=${TAP_TESTS:-${ASAN_TAP_TESTS-001_runner}}
    if [ -z "$TAP_TESTS" ]; then  # all TAP scripts but those that cannot run under ASan
        local t
        for t in "$WORK"/test/t/*.pl; do
            t=$(basename "$t" .pl)
            case " ${ASAN_TAP_SKIP-080_hostile_input} " in *" $t "*) echo "== asan-tap skips $t" ;; *) TAP_TESTS+=" $t" ;; esac
        done
    fi
    TAG=asan-
    for suite in ${ASAN_SUITES:-regress isolation tap}; do
        "run_$suite"
    done
    TAG=
    echo "== asan-reports (sanitizer reports, aborted server processes)"
    local bad=0
    for suite in ${ASAN_SUITES:-regress isolation tap}; do
        [ "$suite" = unit ] || grep -q -- "-D $WORK/asan-$suite/" "$WORK/asan-stage/sanitizer.starts" || {
            echo "the servers of asan-$suite did not start through the sanitizer wrapper"
            bad=1
        }
    done
    scan_sanitizer_reports "$WORK/asan-stage/sanitizer" "$WORK"/asan-* || bad=1
    if [ $bad -eq 0 ]; then count asan-reports 1 0; else count asan-reports 0 1; fi
    BIN=$saved_bin PGXS_STAGED=$saved_pgxs TAP_TESTS=$saved_tap
    echo "== asan took $((SECONDS - start)) s"
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
