# Online data changes under crashes and concurrent sessions: migrate_data_batched killed with
# kill -9 mid-job resumes after a restart with exactly the source rows; virtuoso.progress
# advances as seen from a second session and shows only to the right roles;
# add_column_zero_downtime keeps the relfilenode with a constant default and lets writers go
# on while it backfills a volatile one.
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
my $node = new_virtuoso_node('online', q{
autovacuum = off
});
sub sq { return $node->safe_psql('postgres', $_[0]); }

sq(qq{
CREATE TABLE src (id bigint PRIMARY KEY, n int, payload text);
INSERT INTO src SELECT g, g % 1000, repeat(md5(g::text), 3) FROM generate_series(1, $rows) g;
CREATE TABLE dst (id bigint, n int, payload text);   -- no unique key: duplicates would stay
ANALYZE src;
CREATE ROLE watcher LOGIN;
CREATE ROLE stats LOGIN IN ROLE pg_read_all_stats;
GRANT USAGE ON SCHEMA virtuoso TO watcher, stats;
GRANT SELECT ON virtuoso.progress TO watcher, stats;
GRANT EXECUTE ON FUNCTION virtuoso.progress_jobs() TO watcher, stats;
});
my $checksum = q{SELECT count(*) || '/' || count(DISTINCT id) || '/' ||
    sum(hashtextextended(id || ':' || n || ':' || payload, 0)::numeric) FROM %s};
my $expected = sq(sprintf($checksum, 'src'));

# 1. The copy runs slowly (a pause between batches); a second session sees it advance.
# (one psql -c string is one transaction: the pause comes from the database's settings)
sq(q{ALTER DATABASE postgres SET virtuoso.batch_pause = '50ms'});
my $call = start_call($node,
    q{CALL virtuoso.migrate_data_batched('SELECT * FROM src', 'dst', 5000, job_name => 'crash_copy')},
    'online_copy');
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.progress WHERE job = 'crash_copy' AND done > 0}),
    'progress: the job shows in a second session');
my $first = sq(q{SELECT done FROM virtuoso.progress WHERE job = 'crash_copy'});
usleep(600_000);
my $second = sq(q{SELECT done FROM virtuoso.progress WHERE job = 'crash_copy'});
cmp_ok($second, '>', $first, "progress: done advances ($first, then $second)");
is(sq(q{SELECT total = } . $rows . q{ AND pct > 0 AND rows_per_s > 0 AND eta IS NOT NULL
        AND phase = 'copying' FROM virtuoso.progress WHERE job = 'crash_copy'}), 't',
    'progress: total, percent, rate and ETA');
is($node->safe_psql('postgres', 'SELECT count(*) FROM virtuoso.progress', extra_params => [ '-U', 'watcher' ]),
    '0', 'progress: hidden from a role that is not a member of the job\'s role');
is($node->safe_psql('postgres', 'SELECT count(*) FROM virtuoso.progress', extra_params => [ '-U', 'stats' ]),
    '1', 'progress: shown to pg_read_all_stats');

# 2. kill -9 of the backend mid-job: after crash recovery the target holds exactly the rows
# of the committed batches, and the next call finishes the job without loss or duplicate.
ok(kill9(backend_pid($node, 'online_copy', 'client backend')), 'copy: backend killed with kill -9');
my ($rc, $out, $err) = finish_call($call);
isnt($rc, 0, 'copy: the killed call reports a failure');
ok(restart_after_crash($node), 'copy: server back after crash recovery');
my ($done, $status) = split /\|/, sq(q{SELECT rows_done, status FROM virtuoso.batch_jobs WHERE job_name = 'crash_copy'});
is($status, 'RUNNING', 'copy: the job is left running');
cmp_ok($done, '>', 0, "copy: $done rows were committed before the kill");
cmp_ok($done, '<', $rows, 'copy: the kill came before the end');
is(sq('SELECT count(*) FROM dst'), $done, 'copy: the target holds exactly the committed batches');
is(sq('SELECT count(*) FROM virtuoso.progress'), '0', 'progress: no row survives the crash');

sq(q{ALTER DATABASE postgres RESET virtuoso.batch_pause});
my $t0 = time;
($rc, $out, $err) = $node->psql('postgres',
    q{CALL virtuoso.migrate_data_batched('SELECT * FROM src', 'dst', 5000, job_name => 'crash_copy')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
is($rc, 0, 'copy: called again after the crash') or diag($err);
like($err, qr/resuming job "crash_copy" after $done rows/, 'copy: it resumes after the last committed batch');
is(sq(sprintf($checksum, 'dst')), $expected, 'copy: target = source (count, distinct keys, checksum of all rows)');
is(sq(q{SELECT status || ':' || rows_done FROM virtuoso.batch_jobs WHERE job_name = 'crash_copy'}),
    "SUCCESS:$rows", 'copy: the job is recorded as done');
diag(sprintf('resumed copy of %d rows: %.1f s', $rows - $done, time - $t0));

# 3. A cancel (not a crash) in the middle: the same guarantee.
sq('TRUNCATE dst');
($rc, $out, $err) = $node->psql('postgres',
    q{SET virtuoso.batch_pause = '50ms'; SET statement_timeout = '700ms';
      CALL virtuoso.migrate_data_batched('SELECT * FROM src', 'dst', 5000, job_name => 'cancelled_copy')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
like($err, qr/canceling statement due to statement timeout/, 'cancel: the copy was cancelled');
is(sq('SELECT count(*) FROM dst'),
    sq(q{SELECT rows_done FROM virtuoso.batch_jobs WHERE job_name = 'cancelled_copy'}),
    'cancel: the target holds exactly the committed batches');
($rc, $out, $err) = $node->psql('postgres',
    q{CALL virtuoso.migrate_data_batched('SELECT * FROM src', 'dst', 5000, job_name => 'cancelled_copy')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
is($rc, 0, 'cancel: called again') or diag($err);
is(sq(sprintf($checksum, 'dst')), $expected, 'cancel: target = source');

# 4. add_column_zero_downtime with a constant default on the large table: no rewrite.
my $filenode = sq(q{SELECT pg_relation_filenode('src')});
$t0 = time;
($rc, $out, $err) = $node->psql('postgres',
    q{CALL virtuoso.add_column_zero_downtime('src', 'flag', 'integer', '7')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
my $elapsed = time - $t0;
is($rc, 0, 'add column: constant default') or diag($err);
is(sq(q{SELECT pg_relation_filenode('src')}), $filenode, 'add column: same relfilenode (no rewrite)');
cmp_ok($elapsed, '<', 2, sprintf('add column: constant default on %d rows took %.3f s', $rows, $elapsed));
is(sq('SELECT count(*) FROM src WHERE flag = 7'), $rows, 'add column: every row has the default');

# 5. A volatile default: backfilled in batches while another session keeps writing, each of
# its writes waiting at most briefly (no long ACCESS EXCLUSIVE lock).
sq(q{ALTER DATABASE postgres SET virtuoso.batch_pause = '20ms'});
$call = start_call($node,
    q{CALL virtuoso.add_column_zero_downtime('src', 'r', 'double precision', 'random()', 20000)},
    'online_backfill', 600);
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.progress WHERE phase = 'backfilling' AND done > 0}),
    'backfill: running, seen in progress');
my ($writes, $slowest) = (0, 0);
while (1)
{
    my $s = time;
    my ($wrc, $wout, $werr) = $node->psql('postgres',
        qq{SET lock_timeout = '2s'; INSERT INTO src (id, n, payload) VALUES (} . ($rows + 1 + $writes) . q{, 0, 'w') RETURNING r IS NOT NULL},
        extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
    last unless $wrc == 0 && $wout eq 't';
    $writes++;
    my $took = time - $s;
    $slowest = $took if $took > $slowest;
    last if $writes >= 20 || !sq(q{SELECT count(*) FROM virtuoso.progress WHERE phase = 'backfilling'});
    usleep(100_000);
}
cmp_ok($writes, '>=', 3, "backfill: $writes writes went through meanwhile, each with the default");
cmp_ok($slowest, '<', 1.5, sprintf('backfill: slowest write %.3f s', $slowest));
($rc, $out, $err) = finish_call($call);
is($rc, 0, 'backfill: finished') or diag($err);
is(sq('SELECT count(*) FROM src WHERE r IS NULL'), '0', 'backfill: no row left without a value');
is(sq(q{SELECT pg_relation_filenode('src')}), $filenode, 'backfill: in place, no rewrite');

# 6. Lock waits: a batch that cannot get its lock within virtuoso.lock_timeout is rolled back
# and retried after a back-off, the reason shown in progress; once the lock is free the copy
# goes on and ends exact.
sq(q{ALTER DATABASE postgres RESET virtuoso.batch_pause});
sq(q{CREATE TABLE lk_src AS SELECT g AS id, 'p' || g AS p FROM generate_series(1, 5000) g;
     CREATE TABLE lk_dst (id int, p text)});
sq(q{ALTER DATABASE postgres SET virtuoso.lock_timeout = '100ms'});
sq(q{ALTER DATABASE postgres SET virtuoso.batch_pause = '300ms'});
$call = start_call($node,
    q{CALL virtuoso.migrate_data_batched('SELECT * FROM lk_src', 'lk_dst', 500, job_name => 'locked')},
    'online_locked');
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.progress WHERE job = 'locked' AND done > 0}),
    'lock wait: the copy runs');
my $locker = $node->background_psql('postgres', on_error_stop => 1);
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE lk_dst IN SHARE MODE');
my $before = sq('SELECT count(*) FROM lk_dst');
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.progress WHERE job = 'locked'
    AND paused_because LIKE 'lock wait: batch timed out after 100 ms%'}),
    'lock wait: the copy backs off, and says why');
is(sq('SELECT count(*) FROM lk_dst'), $before, 'lock wait: nothing copied meanwhile');
$locker->query_safe('COMMIT');
$locker->quit;
($rc, $out, $err) = finish_call($call);
is($rc, 0, 'lock wait: the copy finishes once the lock is free') or diag($err);
is(sq('SELECT count(*) || \'/\' || count(DISTINCT id) FROM lk_dst'), '5000/5000', 'lock wait: exact rows');
sq(q{ALTER DATABASE postgres RESET virtuoso.lock_timeout});
sq(q{ALTER DATABASE postgres RESET virtuoso.batch_pause});

# 7. A lock held before the copy starts: preparation waits only lock_timeout per attempt,
# backs off and retries (it says so), and goes on once the lock is free.
sq(q{CREATE TABLE lk_dst2 (id int, p text)});
$locker = $node->background_psql('postgres', on_error_stop => 1);
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE lk_dst2 IN SHARE MODE');
sq(q{ALTER DATABASE postgres SET virtuoso.lock_timeout = '100ms'});
$call = start_call($node,
    q{CALL virtuoso.migrate_data_batched('SELECT * FROM lk_src', 'lk_dst2', 1000, job_name => 'locked2')},
    'online_locked2');
ok(wait_until($node, q{SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'online_locked2'
    AND wait_event = 'PgSleep' OR (application_name = 'online_locked2' AND wait_event_type = 'Extension')}),
    'prepare: the copy backs off instead of queueing behind the lock');
$locker->query_safe('COMMIT');
$locker->quit;
($rc, $out, $err) = finish_call($call);
is($rc, 0, 'prepare: the copy finishes once the lock is free') or diag($err);
like($err, qr/lock not available while preparing the copy \(attempt 1 of \d+\)/, 'prepare: it said why it waited');
is(sq('SELECT count(*) FROM lk_dst2'), '5000', 'prepare: exact rows');
sq(q{ALTER DATABASE postgres RESET virtuoso.lock_timeout});

$node->stop;
done_testing();
