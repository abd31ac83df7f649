#!/usr/bin/env bash
# The full sanitizer run: every suite (unit, regress, isolation, every TAP script) with
# db_virtuoso built with -fsanitize=address,undefined, findings fatal, and the servers
# started with the ASan runtime preloaded.  Fails on any test failure, on any sanitizer
# report (report files and server logs are scanned) and when the canary self-check shows
# that a defect would go unseen.  Ends with "N passed, N failed" like scripts/test.sh,
# whose asan suite (run by default) is the short variant of this.
#   scripts/sanitize.sh                  everything
#   ASAN_SUITES="regress" scripts/sanitize.sh    some suites; REGRESS_TESTS etc. work too
#   KEEP=1 scripts/sanitize.sh           keep the work directory (reports, servers' logs)
set -uo pipefail
export SUITES=asan
export ASAN_SUITES=${ASAN_SUITES:-"unit regress isolation tap"}
export ASAN_TAP_TESTS=${ASAN_TAP_TESTS-}
exec "$(dirname "$0")/test.sh"
