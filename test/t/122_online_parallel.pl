# migrate_data_batched with parallel_workers => 2 under crashes, cancels and failures: kill -9
# of a worker or of the caller mid-copy, restart, call again: the target holds exactly the
# source rows; a cancel or a terminate of the caller stops the workers; a failing worker stops the other one and the job
# records where each range stopped.
#
# ONLINE_ROWS sets the table size (the issue's figure is 1M rows; 200k under CI=true).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VirtuosoTest;
use CrashTest;

my $rows = $ENV{ONLINE_ROWS} // ($ENV{CI} ? 200_000 : 1_000_000);
my $node = new_virtuoso_node('online_parallel', q{
autovacuum = off
});
sub sq { return $node->safe_psql('postgres', $_[0]); }

sq(qq{
CREATE TABLE src (id bigint PRIMARY KEY, n int, payload text);
INSERT INTO src SELECT g, g % 1000, repeat(md5(g::text), 3) FROM generate_series(1, $rows) g;
CREATE TABLE dst (id bigint, n int, payload text);   -- no unique key: duplicates would stay
ANALYZE src;
});
my $checksum = q{SELECT count(*) || '/' || count(DISTINCT id) || '/' ||
    sum(hashtextextended(id || ':' || n || ':' || payload, 0)::numeric) FROM %s};
my $expected = sq(sprintf($checksum, 'src'));
my $runners = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner'};

sub copy_sql
{
    my ($job, $target) = @_;
    $target //= 'dst';
    return qq{CALL virtuoso.migrate_data_batched('SELECT * FROM src', '$target', 5000, 2, 'id', '$job')};
}

# The copy runs slowly (a pause between batches, from the database's settings, which the
# workers inherit from their caller).
sq(q{ALTER DATABASE postgres SET virtuoso.batch_pause = '50ms'});

# Kills one process of the job (a worker or the caller) with kill -9 mid-copy, restarts, and
# calls again: target = source.
sub crash_and_resume
{
    my ($job, $victim) = @_;
    sq('TRUNCATE dst');
    my $call = start_call($node, copy_sql($job), "par_$job");
    ok(wait_until($node, qq{SELECT done > 20000 FROM virtuoso.progress WHERE job = '$job'}),
        "$job: the copy advances");
    is(sq(qq{SELECT count(*) FROM virtuoso.progress WHERE job LIKE '$job [range %'}), '2',
        "$job: one progress row per worker");
    is(sq($runners), '2', "$job: two runner workers copy");
    # (a runner worker shows no application_name: it is the only job running)
    my $pid = $victim eq 'worker'
        ? sq(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner' LIMIT 1})
        : backend_pid($node, "par_$job", 'client backend');
    ok(kill9($pid), "$job: $victim killed with kill -9");
    my ($rc, $out, $err) = finish_call($call);
    isnt($rc, 0, "$job: the call reports a failure");
    ok(restart_after_crash($node), "$job: server back after crash recovery");
    my ($done, $ranges, $status) = split /\|/, sq(qq{SELECT sum(rows_done), count(*),
        string_agg(DISTINCT status, ',') FROM virtuoso.batch_job_ranges WHERE job_name = '$job'});
    is($ranges, '2', "$job: two ranges recorded");
    is($status, 'RUNNING', "$job: the ranges are left running");
    cmp_ok($done, '>', 0, "$job: $done rows were committed before the kill");
    cmp_ok($done, '<', $rows, "$job: the kill came before the end");
    is(sq('SELECT count(*) FROM dst'), $done, "$job: the target holds exactly the committed batches");
    is(sq($runners), '0', "$job: no worker left");

    my $t0 = time;
    ($rc, $out, $err) = $node->psql('postgres',
        'SET virtuoso.batch_pause = 0; ' . copy_sql($job), extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
    is($rc, 0, "$job: called again after the crash") or diag($err);
    like($err, qr/resuming job "$job" after $done rows: 2 of 2 key ranges to copy, 2 workers/,
        "$job: both ranges resume after their last committed batch");
    is(sq(sprintf($checksum, 'dst')), $expected,
        "$job: target = source (count, distinct keys, checksum of all rows)");
    is(sq(qq{SELECT status || ':' || rows_done FROM virtuoso.batch_jobs WHERE job_name = '$job'}),
        "SUCCESS:$rows", "$job: the job is recorded as done");
    is(sq(qq{SELECT string_agg(status, ',') FROM virtuoso.batch_job_ranges WHERE job_name = '$job'}),
        'DONE,DONE', "$job: both ranges done");
    diag(sprintf('%s: resumed copy of %d rows: %.1f s', $job, $rows - $done, time - $t0));
}

crash_and_resume('kill_worker', 'worker');
crash_and_resume('kill_caller', 'caller');

# A cancel of the caller stops its workers; what they committed matches their positions.
# (pauses long enough that the copy outlasts the timeout also at CI's smaller row count)
sq('TRUNCATE dst');
my ($rc, $out, $err) = $node->psql('postgres',
    q{SET virtuoso.batch_pause = '200ms'; SET statement_timeout = '1500ms'; } . copy_sql('cancelled'),
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
like($err, qr/canceling statement due to statement timeout/, 'cancel: the copy was cancelled');
is(sq($runners), '0', 'cancel: the workers were stopped with their caller');
my $committed = sq(q{SELECT sum(rows_done) FROM virtuoso.batch_job_ranges WHERE job_name = 'cancelled'});
cmp_ok($committed, '>', 0, "cancel: $committed rows committed");
is(sq('SELECT count(*) FROM dst'), $committed, 'cancel: the target holds exactly the committed batches');
($rc, $out, $err) = $node->psql('postgres',
    'SET virtuoso.batch_pause = 0; ' . copy_sql('cancelled'), extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
is($rc, 0, 'cancel: called again') or diag($err);
is(sq(sprintf($checksum, 'dst')), $expected, 'cancel: target = source');

# Terminating the caller (a FATAL exit, no error handling) ends its workers too.
sq('TRUNCATE dst');
my $call = start_call($node, copy_sql('terminated'), 'par_terminated');
ok(wait_until($node, q{SELECT done > 20000 FROM virtuoso.progress WHERE job = 'terminated'}),
    'terminate: the copy advances');
is(sq(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name = 'par_terminated' AND backend_type = 'client backend'}), 't',
    'terminate: the caller is terminated');
finish_call($call);
ok(wait_until($node, $runners, '0'), 'terminate: the workers end with their caller');
is(sq('SELECT count(*) FROM dst'),
    sq(q{SELECT sum(rows_done) FROM virtuoso.batch_job_ranges WHERE job_name = 'terminated'}),
    'terminate: the target holds exactly the committed batches');

# A worker fails (its range meets a CHECK the other range never violates): the other worker
# is stopped, the caller gets the worker's error, each range records where it stopped.
my $limit = int($rows * 3 / 4);
sq(qq{CREATE TABLE checked (id bigint CHECK (id <= $limit), n int, payload text)});
($rc, $out, $err) = $node->psql('postgres', copy_sql('failing', 'checked'),
    extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
is($rc, 3, 'failure: the call fails');
like($err, qr/ERROR:  23514: new row for relation "checked" violates check constraint/,
    'failure: the worker\'s SQLSTATE and message reach the caller');
like($err, qr/range 2 of 2 of job "failing" failed; the other workers were stopped/,
    'failure: the error says which range failed');
is(sq($runners), '0', 'failure: no worker left running');
my @ranges = split /\n/, sq(q{SELECT range_no, status, last_key::bigint, upper_key::bigint,
    coalesce(error_sqlstate, '') FROM virtuoso.batch_job_ranges WHERE job_name = 'failing'
    ORDER BY range_no});
my ($r0, $s0, $last0, $upper0) = split /\|/, $ranges[0];
my ($r1, $s1, $last1, $upper1, $state1) = split /\|/, $ranges[1];
is($s0, 'STOPPED', 'failure: the other range is stopped');
cmp_ok($last0, '<', $upper0, "failure: ... mid-way (at key $last0 of $upper0)");
is("$s1:$state1", 'FAILED:23514', 'failure: the failing range records its error');
cmp_ok($last1, '<=', $limit, "failure: ... and stops below the violating key (at $last1)");
is(sq(q{SELECT status FROM virtuoso.batch_jobs WHERE job_name = 'failing'}), 'FAILED',
    'failure: the job is FAILED');
is(sq('SELECT count(*) FROM checked'),
    sq(q{SELECT sum(rows_done) FROM virtuoso.batch_job_ranges WHERE job_name = 'failing'}),
    'failure: the target holds exactly the committed batches');
# Fixed, called again: the job resumes and completes.
sq('ALTER TABLE checked DROP CONSTRAINT checked_id_check');
($rc, $out, $err) = $node->psql('postgres',
    'SET virtuoso.batch_pause = 0; ' . copy_sql('failing', 'checked'),
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
is($rc, 0, 'failure: called again once fixed') or diag($err);
is(sq(sprintf($checksum, 'checked')), $expected, 'failure: target = source after the resume');

# No runner slot within virtuoso.runner_queue_timeout: with no worker started, a clear 53400
# and no row copied; with one started, the call goes on with it (a NOTICE says so) and the
# other range waits for it.
sq(q{ALTER DATABASE postgres RESET virtuoso.batch_pause});
$node->append_conf('postgresql.conf', 'virtuoso.max_runner_workers = 1');
$node->reload;
ok(wait_until($node, q{SELECT current_setting('virtuoso.max_runner_workers')}, '1'), 'budget: one runner slot');
sq('CREATE TABLE budget_dst (id bigint, n int, payload text)');
my $holder = start_call($node, q{SELECT virtuoso.execute_autonomous('SELECT pg_sleep(4)')}, 'par_holder');
ok(wait_until($node, "SELECT ($runners) = 1"), 'budget: another session holds the slot');
($rc, $out, $err) = $node->psql('postgres',
    q{SET virtuoso.runner_queue_timeout = '300ms'; } . copy_sql('no_slot', 'budget_dst'),
    extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
is($rc, 3, 'budget: the call fails');
like($err, qr/ERROR:  53400: could not start a db_virtuoso runner: all 1 runner slots stayed busy/,
    'budget: 53400, the slot stayed busy');
is(sq('SELECT count(*) FROM budget_dst'), '0', 'budget: no row copied');
finish_call($holder);
($rc, $out, $err) = $node->psql('postgres',
    q{SET virtuoso.runner_queue_timeout = '500ms'; } . copy_sql('no_slot', 'budget_dst'),
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
is($rc, 0, 'budget: once the slot is free, the call copies') or diag($err);
like($err, qr/only 1 of 2 workers could start .*the other ranges are copied as these finish/,
    'budget: a NOTICE says it goes on with fewer workers');
is(sq(sprintf($checksum, 'budget_dst')), $expected, 'budget: target = source with one worker');

$node->stop;
done_testing();
