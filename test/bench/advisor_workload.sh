# Index advisor on a generated workload (pg_stat_statements of this database):
#  1. >= 200 distinct statements over 5 tables: the greedy set's workload cost reduction
#     against an exhaustive search over the same candidates (virtuoso.advisor_benchmark),
#     and the time per what-if plan;
#  2. 1,000 distinct statements: the time of a whole recommend_indexes() call.
source "$REPO/test/bench/lib.sh"
STATEMENTS=${STATEMENTS:-240}
BIG=${BIG:-1000}
PER_GROUP=${PER_GROUP:-12}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS b_users, b_items, b_orders, b_events, b_logs CASCADE;
CREATE TABLE b_users (id int PRIMARY KEY, org_id int, country text, status text,
                      created_at timestamptz, score int, email text);
INSERT INTO b_users SELECT g, g % 2000, (ARRAY['de','fr','it','es','nl','pl'])[g % 6 + 1],
       (ARRAY['active','blocked','new'])[g % 3 + 1], '2024-01-01'::timestamptz + g * interval '5 min',
       (g * 37) % 1000, 'u' || g || '@example.com' FROM generate_series(1, 50000) g;
CREATE TABLE b_items (id int PRIMARY KEY, category int, price int, stock int, name text,
                      updated_at timestamptz);
INSERT INTO b_items SELECT g, g % 300, (g * 13) % 10000, g % 50, 'item' || g,
       '2024-01-01'::timestamptz + g * interval '7 min' FROM generate_series(1, 30000) g;
CREATE TABLE b_orders (id int PRIMARY KEY, user_id int, item_id int, qty int, status text,
                       created_at timestamptz, total int);
INSERT INTO b_orders SELECT g, g % 50000 + 1, g % 30000 + 1, g % 9 + 1,
       (ARRAY['new','paid','shipped','done','void'])[g % 5 + 1],
       '2024-01-01'::timestamptz + g * interval '1 min', (g * 7919) % 100000
FROM generate_series(1, 80000) g;
CREATE TABLE b_events (id int PRIMARY KEY, user_id int, kind int, created_at timestamptz,
                       value int, session text);
INSERT INTO b_events SELECT g, g % 50000 + 1, g % 40, '2024-01-01'::timestamptz + g * interval '30 s',
       (g * 31) % 5000, md5((g / 10)::text) FROM generate_series(1, 80000) g;
CREATE TABLE b_logs (id int PRIMARY KEY, level int, source int, created_at timestamptz, code int);
INSERT INTO b_logs SELECT g, g % 5, g % 200, '2024-01-01'::timestamptz + g * interval '10 s',
       (g * 17) % 3000 FROM generate_series(1, 50000) g;
VACUUM ANALYZE b_users, b_items, b_orders, b_events, b_logs;
SELECT pg_stat_force_next_flush() \g /dev/null
SQL
psql -X -q -c "SELECT pg_stat_reset_single_table_counters(t) FROM unnest(ARRAY['b_users','b_items','b_orders','b_events','b_logs']::regclass[]) t" >/dev/null

# generate N SEED: N distinct statements (distinct after pg_stat_statements normalises
# constants), each run 1-3 times with different constants.
generate() {
    perl -e '
        use strict; srand($ARGV[1]); my $want = $ARGV[0];
        my %t = (
          b_users  => { eq => [qw(org_id country status score)], range => [qw(created_at score)],
                        sort => [qw(created_at score id)], cols => [qw(id org_id country status created_at score email)] },
          b_items  => { eq => [qw(category stock name)], range => [qw(price updated_at)],
                        sort => [qw(price updated_at)], cols => [qw(id category price stock name updated_at)] },
          b_orders => { eq => [qw(user_id item_id status qty)], range => [qw(created_at total)],
                        sort => [qw(created_at total)], cols => [qw(id user_id item_id qty status created_at total)] },
          b_events => { eq => [qw(user_id kind session)], range => [qw(created_at value)],
                        sort => [qw(created_at value)], cols => [qw(id user_id kind created_at value session)] },
          b_logs   => { eq => [qw(level source code)], range => [qw(created_at code)],
                        sort => [qw(created_at id)], cols => [qw(id level source created_at code)] },
        );
        my %val = (org_id => sub { int(rand(2000)) }, country => sub { "\x27" . (qw(de fr it es nl pl))[int(rand(6))] . "\x27" },
          status => sub { "\x27" . (qw(active blocked new paid shipped))[int(rand(5))] . "\x27" },
          score => sub { int(rand(1000)) }, category => sub { int(rand(300)) }, stock => sub { int(rand(50)) },
          name => sub { "\x27item" . int(rand(30000)) . "\x27" }, user_id => sub { 1 + int(rand(50000)) },
          item_id => sub { 1 + int(rand(30000)) }, qty => sub { 1 + int(rand(9)) }, kind => sub { int(rand(40)) },
          session => sub { "md5(\x27" . int(rand(8000)) . "\x27)" }, level => sub { int(rand(5)) },
          source => sub { int(rand(200)) }, code => sub { int(rand(3000)) }, total => sub { int(rand(100000)) },
          price => sub { int(rand(10000)) }, value => sub { int(rand(5000)) },
          created_at => sub { "\x272024-01-" . sprintf("%02d", 1 + int(rand(28))) . "\x27" },
          updated_at => sub { "\x272024-02-" . sprintf("%02d", 1 + int(rand(28))) . "\x27" });
        my @tables = sort keys %t; my %seen; my $n = 0;
        while ($n < $want) {
            my $tab = $tables[int(rand(@tables))]; my $d = $t{$tab};
            my @cols = @{$d->{cols}}; my $k = 1 + int(rand(3));
            my %pick; $pick{$cols[int(rand(@cols))]} = 1 for 1 .. $k;
            my $select = int(rand(8)) == 0 ? "count(*)" : join(", ", sort keys %pick);
            my @eq = @{$d->{eq}}; my $e1 = $eq[int(rand(@eq))]; my $e2 = $eq[int(rand(@eq))];
            my $shape = int(rand(5));
            my $where = "$e1 = %s"; my @args = ($e1);
            if ($shape == 1 && $e2 ne $e1) { $where .= " AND $e2 = %s"; push @args, $e2 }
            my $r = $d->{range}[int(rand(@{$d->{range}}))];
            if ($shape == 2 && $r ne $e1) { $where .= " AND $r > %s"; push @args, $r }
            if ($shape == 3) { $where = "$r BETWEEN %s AND %s"; @args = ($r, $r) }
            my $order = "";
            if ($shape == 4 && $select ne "count(*)") { my $s = $d->{sort}[int(rand(@{$d->{sort}}))];
                $order = " ORDER BY $s" . (rand() < 0.5 ? " DESC" : "") . " LIMIT " . (5 + int(rand(20))) }
            my $shapekey = "$tab|$select|$where|$order"; $shapekey =~ s/LIMIT \d+/LIMIT n/;
            next if $seen{$shapekey}++;
            $n++;
            my $calls = 1 + int(rand(3));
            for (1 .. $calls) {
                my @v = map { $val{$_}->() } @args;
                my $w = sprintf($where, @v);
                print "SELECT $select FROM $tab WHERE $w$order;\n";
            }
        }
        # a few joins on foreign keys
        for my $j (1 .. 6) {
            printf "SELECT o.id, u.email FROM b_orders o JOIN b_users u ON u.id = o.user_id WHERE u.org_id = %d AND o.status = \x27paid\x27%s;\n", int(rand(2000)), " " x $j;
            printf "SELECT e.value FROM b_events e JOIN b_users u ON u.id = e.user_id WHERE u.email = \x27u%d\@example.com\x27 AND e.kind = %d%s;\n", int(rand(50000)), $j, " " x $j;
        }' "$1" "$2"
}

run_workload() {  # N SEED
    generate "$1" "$2" >"$work/workload.sql"
    psql -X -q -c "SELECT pg_stat_statements_reset()" >/dev/null
    psql -X -q -o /dev/null -f "$work/workload.sql"
    psql -X -qAt -c "SELECT count(*) FROM pg_stat_statements WHERE query LIKE 'SELECT % FROM b_%'"
}

echo "-- workload 1: $STATEMENTS generated statements + joins, greedy vs exhaustive (best $PER_GROUP candidates per group)"
distinct=$(run_workload "$STATEMENTS" 42)
echo "distinct statements in pg_stat_statements: $distinct"
psql -X -qAt -F ' ' -c "SELECT measure, CASE WHEN value = round(value) THEN round(value)::text
    ELSE round(value::numeric, 4)::text END FROM virtuoso.advisor_benchmark(1, $PER_GROUP)" >"$work/figures"
cat "$work/figures"
fig() { awk -v m="$1" '$1 == m { print $2 }' "$work/figures"; }
share=$(fig greedy_share_of_exhaustive_pct)
gi=$(fig greedy_indexes); ei=$(fig exhaustive_indexes)
ms_plan=$(fig ms_per_whatif_plan)
verdict=$(perl -e 'print(($ARGV[0] >= 95 && $ARGV[1] <= $ARGV[2]) ? "PASS" : "FAIL")' "$share" "$gi" "$ei")
echo "greedy: $(fig greedy_reduction_pct)% reduction with $gi indexes; exhaustive: $(fig exhaustive_reduction_pct)% with $ei; greedy reaches $share% of it: $verdict"
echo "advisor_workload|greedy vs exhaustive cost reduction ($distinct stmts)|$(fig greedy_reduction_pct)% ($gi idx)|$(fig exhaustive_reduction_pct)% ($ei idx)|${share}%|>=95%, idx<=: $verdict" >>"$RESULTS"
verdict=$(perl -e 'print(($ARGV[0] <= 0.2) ? "PASS" : "FAIL")' "$ms_plan")
echo "advisor_workload|what-if plan, mean of $(fig whatif_plans) plans|$ms_plan ms|0.2 ms|$(perl -e 'printf "%.2fx", $ARGV[0] / 0.2' "$ms_plan")|<=1x: $verdict" >>"$RESULTS"

echo "-- workload 2: $BIG generated statements, one recommend_indexes() call"
distinct=$(run_workload "$BIG" 7)
echo "distinct statements in pg_stat_statements: $distinct"
rec=$(recommend_indexes_median_ms "$work")
psql -X -c "SELECT table_name, columns, queries_improved, total_calls, round(improvement_pct::numeric, 1) AS improvement_pct, pg_size_pretty(estimated_size_bytes) AS size FROM virtuoso.recommend_indexes() ORDER BY cost_before - cost_after DESC"
verdict=$(perl -e 'print(($ARGV[0] <= 10000) ? "PASS" : "FAIL")' "$rec")
echo "recommend_indexes() over $distinct statements: $rec ms (median of 3): $verdict"
record advisor_workload "recommend_indexes() over $distinct stmts (median/3)" "$rec" 10000 "<=1x: $verdict"
