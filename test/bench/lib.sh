# Helpers of the benchmark scripts (sourced).
# shellcheck shell=bash

# time_statements FILE: runs the SQL file in one psql session with \timing and prints the
# milliseconds of each statement preceded by a line "\echo timed:LABEL", as "LABEL ms".
time_statements() {
    psql -X -q -v ON_ERROR_STOP=1 -f "$1" 2>&1 | perl -ne '
        if (/^timed:(\S+)/) { $label = $1; next }
        if (/^Time: ([0-9.]+) ms/ && defined $label) { print "$label $1\n"; undef $label }'
}

# median LABEL < "label ms" lines
median() {
    perl -e '
        my $want = shift; my @v;
        while (<STDIN>) { my ($l, $ms) = split; push @v, $ms if $l eq $want }
        @v = sort { $a <=> $b } @v;
        die "no samples for $want\n" unless @v;
        my $m = @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
        printf "%.3f\n", $m;' "$1"
}

# recommend_indexes_median_ms DIR: three recommend_indexes() calls in one session (the SQL
# written to DIR); prints the median of their times in ms.
recommend_indexes_median_ms() {
    {
        echo '\timing on'
        for _ in 1 2 3; do
            echo '\echo timed:recommend'
            echo 'SELECT count(*) FROM virtuoso.recommend_indexes();'
        done
    } >"$1/timed_recommend.sql"
    median recommend <<<"$(time_statements "$1/timed_recommend.sql")"
}

# record BENCH MEASURE SUBJECT_MS BASELINE_MS TARGET: one row of the final table.
record() {
    local ratio
    ratio=$(perl -e 'printf "%.2fx", $ARGV[0] / $ARGV[1]' "$3" "$4")
    echo "$1|$2|$3 ms|$4 ms|$ratio|$5" >>"$RESULTS"
}
