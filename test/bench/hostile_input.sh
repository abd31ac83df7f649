# The long variant of the hostile-input suite (test/t/080_hostile_input.pl): the same
# seeded generator, many more calls, on the bench cluster. Records calls, calls per second
# and the failures found; exits non-zero on any failure, with the report and the SQL that
# reproduces each class.
#   VIRTUOSO_FUZZ_CALLS (default 20000)  VIRTUOSO_FUZZ_SEED (default 20261130)
source "$REPO/test/bench/lib.sh"
calls=${VIRTUOSO_FUZZ_CALLS:-20000}
seed=${VIRTUOSO_FUZZ_SEED:-20261130}
work=$(mktemp -d)
chmod 755 "$work"
datadir=$(psql -X -At -c 'SHOW data_directory')
# its own database, so that its fixtures and thousands of log rows leave the other
# benchmarks' database as it was
psql -X -q -c 'DROP DATABASE IF EXISTS hostile_input' -c 'CREATE DATABASE hostile_input'
export PGDATABASE=hostile_input
psql -X -q -c 'CREATE EXTENSION db_virtuoso' -c 'CREATE EXTENSION pg_stat_statements'
report="$work/report.txt"
rc=0
perl -I "$REPO/test/t" -MHostileInput -e '
    my ($seed, $calls, $work, $log, $report) = @ARGV;
    binmode STDERR, ":utf8";
    my $f = HostileInput->new(seed => $seed, calls => $calls, work_dir => $work,
        psql => ["psql"], log_file => $log);
    $f->psql_run(HostileInput::fixture_sql())
        unless $f->psql_run(q{SELECT to_regnamespace($$virtuoso_fuzz$$) IS NOT NULL}) eq "t";
    print STDERR "backends limited to ", $f->limit_memory, " bytes of address space\n";
    my $s = $f->run;
    open(my $fh, ">:utf8", $report) or die;
    print $fh $f->report($s, 5), "\n";
    close $fh;
    printf "%d %.1f %d %d\n", $s->{calls}, $s->{seconds}, $s->{restarts}, scalar @{ $s->{failures} };
    exit(@{ $s->{failures} } || $s->{restarts} || @{ $s->{log_findings} } ? 1 : 0);
' "$seed" "$calls" "$work" "$datadir/../server.log" "$report" >"$work/figures" || rc=$?
read -r done seconds restarts failures <"$work/figures" || true
cat "$report" >&2
if [ -n "${done:-}" ]; then
    echo "hostile_input|calls run (seed $seed)|$done|-|-|informational" >>"$RESULTS"
    echo "hostile_input|seconds, calls per second|${seconds} s|-|$(perl -e 'printf "%.1f/s", $ARGV[0] / ($ARGV[1] || 1)' "$done" "$seconds")|informational" >>"$RESULTS"
    echo "hostile_input|failures, restarts|$failures|$restarts|-|0 and 0" >>"$RESULTS"
fi
rm -rf "$work"
psql -X -q -d postgres -c 'DROP DATABASE hostile_input WITH (FORCE)' || true
exit "$rc"
