# kill -9 in the middle of the online operations, then crash recovery: a concurrent index
# build (PostgreSQL leaves its invalid index: the next build of the same name drops it), a
# statement of run_top_level, and the index advisor's analysis.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;
use CrashTest;

my $node = new_virtuoso_node('crash_online');
slow_functions($node);
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_stat_statements;
CREATE TABLE k (id int PRIMARY KEY, a int NOT NULL DEFAULT 0, b int);
INSERT INTO k SELECT g, 0, g FROM generate_series(1, 400) g;
});

sub sq { return $node->safe_psql('postgres', $_[0]); }
my $sum_a = 'SELECT sum(a) FROM k';

# 1. CALL build_index_concurrently, killed while CREATE INDEX CONCURRENTLY waits for an old
# snapshot (the index is built, not yet valid).
# CREATE INDEX CONCURRENTLY's last wait, when the index is built but not yet valid.
my $old_snapshots = q{SELECT count(*) = 1 FROM pg_stat_progress_create_index p
    JOIN pg_stat_activity a USING (pid) WHERE a.backend_type = 'db_virtuoso runner'
    AND p.phase = 'waiting for old snapshots'};
my $holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$holder->query_safe('SELECT 1');
my $call = start_call($node, q{CALL virtuoso.build_index_concurrently('CREATE INDEX k_b_idx ON k (b)')},
    'crash_o1');
ok(wait_until($node, $old_snapshots), 'index build: waiting for the old snapshot');
is(sq(q{SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('k_b_idx')}), 'f',
    'index build: the index exists, still invalid');
ok(kill9(backend_pid($node, 'crash_o1', 'client backend')), 'index build: caller killed');
my ($rc, $out, $err) = finish_call($call);
isnt($rc, 0, 'index build: the killed call reports a failure') or diag($out);
eval { $holder->quit };
ok(restart_after_crash($node), 'index build: server back after crash recovery');
# What the user sees: PostgreSQL's invalid index, reported by the health check.
is(sq(q{SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('k_b_idx')}), 'f',
    'index build: PostgreSQL left the invalid index');
is(sq(q{SELECT count(*) FROM virtuoso.check_database_health() WHERE object LIKE '%k_b_idx%'
        AND check_name ILIKE '%invalid%'}), '1', 'index build: the health check reports it');
($rc, $out, $err) = $node->psql('postgres',
    q{CALL virtuoso.build_index_concurrently('CREATE INDEX k_b_idx ON k (b)')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
is($rc, 0, 'index build: the next build of the same name works') or diag($err);
like($err, qr/dropping invalid index public\.k_b_idx left by an earlier build/,
    'index build: and says it dropped the leftover');
is(sq(q{SELECT string_agg(c.relname || ':' || i.indisvalid, ',') FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'k'::regclass
        AND c.relname LIKE 'k_b_idx%'}), 'k_b_idx:true', 'index build: one valid index remains');

# 1b. The same with an unnamed index: PostgreSQL chose the name k_a_idx; the next identical
# unnamed build must not leave that invalid index beside its own.
$holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$holder->query_safe('SELECT 1');
$call = start_call($node, q{CALL virtuoso.build_index_concurrently('CREATE INDEX ON k (a)')},
    'crash_o1b');
ok(wait_until($node, $old_snapshots), 'unnamed index build: waiting for the old snapshot');
ok(kill9(backend_pid($node, 'crash_o1b', 'client backend')), 'unnamed index build: caller killed');
finish_call($call);
eval { $holder->quit };
ok(restart_after_crash($node), 'unnamed index build: server back after crash recovery');
is(sq(q{SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('k_a_idx')}), 'f',
    'unnamed index build: PostgreSQL left the invalid index k_a_idx');
($rc, $out, $err) = $node->psql('postgres',
    q{CALL virtuoso.build_index_concurrently('CREATE INDEX ON k (a)')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
is($rc, 0, 'unnamed index build: the next identical build works') or diag($err);
like($err, qr/dropping invalid index public\.k_a_idx left by an earlier build/,
    'unnamed index build: and says it dropped the leftover');
is(sq(q{SELECT string_agg(i.indisvalid::text, ',') FROM pg_index i
        WHERE i.indrelid = 'k'::regclass AND pg_get_indexdef(i.indexrelid) LIKE '% USING btree (a)'}),
    'true', 'unnamed index build: one valid index on (a) remains');

# 1c. No crash: a build still running in another session is invalid too.  A second build of
# the same name must leave it alone (then its own CREATE INDEX waits for the table and fails:
# the name is taken), not wait for the first build to end and drop the index that build has
# just made valid.
$holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$holder->query_safe('SELECT 1');
my $first = start_call($node,
    q{CALL virtuoso.build_index_concurrently('CREATE INDEX k_c_idx ON k (b, a)')}, 'crash_o1c');
ok(wait_until($node, $old_snapshots), 'build in progress: waiting for the old snapshot');
my $building = sq(q{SELECT to_regclass('k_c_idx')::oid});
my $second = start_call($node,
    q{CALL virtuoso.build_index_concurrently('CREATE INDEX k_c_idx ON k (b, a)')}, 'crash_o1d');
ok(wait_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'crash_o1d'
                       AND backend_type = 'db_virtuoso runner' AND query LIKE 'CREATE INDEX%'
                       AND wait_event = 'relation'}),
    'build in progress: the second build went past the leftover check');
$holder->query_safe('COMMIT');
($rc, $out, $err) = finish_call($first);
is($rc, 0, 'build in progress: the first build completes') or diag($err);
($rc, $out, $err) = finish_call($second);
is($rc, 1, 'build in progress: the second build fails') or diag($err);
like($err, qr/left alone.*\n.*relation "k_c_idx" already exists/s,
    'build in progress: it left the running build alone');
is(sq(q{SELECT to_regclass('k_c_idx')::oid || ' ' || indisvalid FROM pg_index
        WHERE indexrelid = to_regclass('k_c_idx')}), "$building true",
    'build in progress: the first build\'s index is valid and was not dropped');
eval { $holder->quit };

# 2. CALL run_top_level, killed in the middle of its statement (in the runner worker).
$call = start_call($node,
    q{CALL virtuoso.run_top_level('UPDATE k SET a = a + 1 WHERE slow_true(0.05)')}, 'crash_o2');
ok(defined backend_pid($node, 'crash_o2', 'db_virtuoso runner', 'PgSleep'),
    'run_top_level: the statement is running');
sleep(1);
ok(kill9(backend_pid($node, 'crash_o2', 'client backend')), 'run_top_level: caller killed');
($rc, $out, $err) = finish_call($call);
isnt($rc, 0, 'run_top_level: the killed call reports a failure') or diag($out);
ok(restart_after_crash($node), 'run_top_level: server back after crash recovery');
is(sq($sum_a), '0', 'run_top_level: no row of the interrupted UPDATE stays updated');
is(sq(q{CALL virtuoso.run_top_level('UPDATE k SET a = a + 1')}), 'UPDATE 400',
    'run_top_level: the next call works');

# 3. optimize_table_indexes killed during its analysis: planning the workload query folds
# slow_const(), which sleeps while table advisor_slow has a row.
sq(q{
CREATE TABLE w (id int PRIMARY KEY, c int);
INSERT INTO w SELECT g, g FROM generate_series(1, 20000) g;
ANALYZE w;
CREATE TABLE advisor_slow (x int);
CREATE FUNCTION slow_const() RETURNS int LANGUAGE plpgsql IMMUTABLE AS
    $$BEGIN IF EXISTS (SELECT FROM advisor_slow) THEN PERFORM pg_sleep(300); END IF; RETURN 7; END$$;
});
sub workload { sq('SELECT count(*) FROM w WHERE c = slow_const()') for 1 .. 5; }
workload();
sq('INSERT INTO advisor_slow VALUES (1)');
my $indexes = q{SELECT count(*) FROM pg_index WHERE indrelid = 'w'::regclass};
$call = start_call($node, q{SELECT count(*) FROM virtuoso.optimize_table_indexes('w')}, 'crash_o3');
my $pid = backend_pid($node, 'crash_o3', 'client backend', 'PgSleep');
ok(defined $pid, 'advisor: the analysis is planning the workload');
ok(kill9($pid), 'advisor: caller killed');
($rc, $out, $err) = finish_call($call);
isnt($rc, 0, 'advisor: the killed call reports a failure') or diag($out);
ok(restart_after_crash($node), 'advisor: server back after crash recovery');
is(sq($indexes), '1', 'advisor: no index added');
sq('DELETE FROM advisor_slow');
workload();
is(sq(q{SELECT string_agg(array_to_string(columns, ','), ';')
        FROM virtuoso.optimize_table_indexes('w')}), 'c', 'advisor: the next call recommends');

$node->stop;
done_testing();
