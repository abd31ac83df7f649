# migrate_data_batched pauses while other sessions' statements on its target run slower
# than before the job (virtuoso.batch_max_slowdown): pgbench runs a statement on the target
# whose speed the test controls (a function that sleeps as long as a table says); when it
# turns 100 times slower the copy pauses, says why in virtuoso.progress and in a NOTICE, and
# goes on once the statement is fast again; the target ends with exactly the source rows.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IPC::Run;
use VirtuosoTest;
use CrashTest;

my $node = new_virtuoso_node('slowdown', "autovacuum = off\n");
sub sq { return $node->safe_psql('postgres', $_[0]); }
sq(q{
CREATE EXTENSION pg_stat_statements;
CREATE TABLE src (id int PRIMARY KEY, payload text);
INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
CREATE TABLE dst (id int, payload text);
INSERT INTO dst VALUES (0, 'probe');
CREATE TABLE delay (seconds float8 NOT NULL);
INSERT INTO delay VALUES (0.001);
CREATE FUNCTION probe(int) RETURNS int LANGUAGE sql VOLATILE
    AS $$ SELECT $1 FROM pg_sleep((SELECT seconds FROM delay)) $$;
});

# Without pg_stat_statements' numbers for the target the setting does nothing, and says so.
sq(q{SELECT pg_stat_statements_reset()});
my ($rc, $out, $err) = $node->psql('postgres',
    q{SET virtuoso.batch_max_slowdown = 5;
      CALL virtuoso.migrate_data_batched('SELECT * FROM src WHERE id <= 10', 'dst', 5, job_name => 'quiet')});
is($rc, 0, 'a copy with no watched statement runs');
like($err, qr/no statement on public\.dst in pg_stat_statements; the job is not throttled/,
    'and says it is not throttled on slowdown');
sq(q{DELETE FROM dst WHERE id > 0});

# A bad factor is refused.
($rc, $out, $err) = $node->psql('postgres', q{SET virtuoso.batch_max_slowdown = 0.5});
isnt($rc, 0, 'a factor below 1 is refused');
like($err, qr/invalid value for parameter "virtuoso.batch_max_slowdown".*\n.*0 \(off\) or a factor of at least 1/,
    'with the reason');

# The baseline: the statement, fast, before the job.
sq(q{SELECT pg_stat_statements_reset()});
my $script = PostgreSQL::Test::Utils::tempdir() . '/probe.sql';
open(my $fh, '>', $script) or die;
print $fh "SELECT probe(id) FROM dst WHERE id = 0;\n";
close($fh);
my $connstr = $node->connstr('postgres');
($rc) = IPC::Run::run([ 'pgbench', '-n', '-f', $script, '-t', '100', $connstr ],
    '>', \my $bench_out, '2>', \my $bench_err);
ok($rc, 'baseline workload ran') or diag($bench_err);

# The workload goes on during the copy, in the background.
my $bench = IPC::Run::start([ 'pgbench', '-n', '-f', $script, '-T', '120', $connstr ],
    '>', \my $bg_out, '2>', \my $bg_err, IPC::Run::timeout(180));

sq(q{ALTER DATABASE postgres SET virtuoso.batch_max_slowdown = 5});
sq(q{ALTER DATABASE postgres SET virtuoso.batch_pause = '50ms'});
my $call = start_call($node,
    q{CALL virtuoso.migrate_data_batched('SELECT * FROM src', 'dst', 100, job_name => 'slowed')},
    'slowdown_copy');
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.progress WHERE job = 'slowed' AND done > 0}),
    'the copy runs while the statement is fast');
is(sq(q{SELECT coalesce(paused_because, '') NOT LIKE 'queries on%' FROM virtuoso.progress WHERE job = 'slowed'}), 't',
    'not paused while the statement is as fast as before');

sq(q{UPDATE delay SET seconds = 0.1});  # 100 times slower
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.progress WHERE job = 'slowed'
    AND paused_because ~ '^queries on public\.dst [0-9.]+x slower than before the job \(> 5x\)$'}),
    'the copy pauses when the statement on the target slows down, and says why');
my $done = sq(q{SELECT done FROM virtuoso.progress WHERE job = 'slowed'});
cmp_ok($done, '<', 20000, "paused after $done of 20000 rows");
sleep(3);
is(sq(q{SELECT done FROM virtuoso.progress WHERE job = 'slowed'}), $done,
    'no batch while the statement is slow');

sq(q{UPDATE delay SET seconds = 0.001});
ok(wait_until($node, q{SELECT count(*) = 0 OR bool_and(coalesce(paused_because, '') NOT LIKE 'queries on%' AND done > } . $done
    . q{) FROM virtuoso.progress WHERE job = 'slowed'}),
    'the copy goes on once the statement is fast again');
($rc, $out, $err) = finish_call($call);
is($rc, 0, 'the copy finishes') or diag($err);
like($err, qr/NOTICE:  virtuoso.batch_max_slowdown: watching 1 statement on public\.dst/,
    'NOTICE: which statements it watches');
like($err, qr/NOTICE:  pausing: queries on public\.dst [0-9.]+x slower than before the job \(> 5x\)/,
    'NOTICE: the pause and its reason');
like($err, qr/NOTICE:  resuming after [0-9.]+ s: queries on public\.dst/, 'NOTICE: the resumption');
$bench->kill_kill;
is(sq(q{SELECT count(*) || '/' || count(DISTINCT id) || '/' || sum(hashtext(payload)::bigint) FROM dst WHERE id > 0}),
    sq(q{SELECT count(*) || '/' || count(DISTINCT id) || '/' || sum(hashtext(payload)::bigint) FROM src}),
    'the target holds exactly the source rows');

$node->stop;
done_testing();
