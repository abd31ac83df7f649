# Long jobs in virtuoso.progress and the job_stalled alert: a migration shows while it runs
# (statement k of n, or one transaction), so does a maintenance round; a migration run in one
# transaction (which has no RUNNING row in migration_log) that makes no progress for longer
# than virtuoso.alert_stalled_after raises one job_stalled alert, resolved once it ended.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;
use CrashTest;

my $node = new_virtuoso_node('stalled', q{
virtuoso.enable_maintenance_worker = on
virtuoso.maintenance_naptime = 1
virtuoso.health_check_interval = 1
virtuoso.alert_stalled_after = 2
autovacuum = off
});
sub sq { return $node->safe_psql('postgres', $_[0]); }

# 1. Statement by statement: the statement running shows.
my $call = start_call($node, q{SELECT status FROM virtuoso.execute_migration_with_monitoring('slow_steps',
    'CREATE TABLE st1 (id int); SELECT pg_sleep(3); CREATE TABLE st2 (id int)', NULL,
    '{"transactional": false, "lint": "off"}')}, 'steps');
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.progress
    WHERE job = 'migration slow_steps' AND phase = 'statement 2 of 3' AND done = 1 AND total = 3}),
    'progress: a statement-by-statement migration shows the statement it runs');
my ($rc, $out, $err) = finish_call($call);
is($rc, 0, 'the statement-by-statement migration ends') or diag($err);
is(sq(q{SELECT count(*) FROM virtuoso.progress WHERE job = 'migration slow_steps'}), '0',
    'progress: and leaves the view');

# 2. One transaction, stalled past alert_stalled_after: one job_stalled alert, then resolved.
$call = start_call($node, q{SELECT status FROM virtuoso.execute_migration_with_monitoring('slow_tx',
    'SELECT pg_sleep(6)', NULL, '{"lint": "off"}')}, 'tx');
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.progress
    WHERE job = 'migration slow_tx' AND phase = 'running in one transaction' AND total = 1}),
    'progress: a migration in one transaction shows');
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.alert_log
    WHERE kind = 'job_stalled' AND object = 'migration slow_tx' AND resolved_at IS NULL}),
    'job_stalled: raised while the migration makes no progress');
like(sq(q{SELECT message FROM virtuoso.alert_log WHERE kind = 'job_stalled' AND object = 'migration slow_tx'}),
    qr/has made no progress for longer than 2 s/, 'job_stalled: the message says for how long');
($rc, $out, $err) = finish_call($call);
is($rc, 0, 'the migration ends') or diag($err);
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.alert_log
    WHERE kind = 'job_stalled' AND object = 'migration slow_tx' AND severity = 'WARN'
      AND resolved_at IS NOT NULL}),
    'job_stalled: resolved once the job ended');
like(sq(q{SELECT message FROM virtuoso.alert_log WHERE kind = 'job_stalled' AND severity = 'INFO'
    AND object = 'migration slow_tx'}),
    qr/^resolved: migration slow_tx has made no progress/, 'job_stalled: with an INFO alert that says so');
is(sq(q{SELECT count(*) FROM virtuoso.alert_log WHERE kind = 'job_stalled' AND object = 'migration slow_tx' AND severity <> 'INFO'}),
    '1', 'job_stalled: one alert for the stalled job over several rounds');

# 3. A maintenance round that acts shows its action (the scheduler stopped first, so that
# it does not take the table; its VACUUM slowed down by the autovacuum cost delay it uses).
sq(q{ALTER SYSTEM SET virtuoso.enable_maintenance_worker = off;
     ALTER SYSTEM SET autovacuum_vacuum_cost_delay = '20ms';
     ALTER SYSTEM SET autovacuum_vacuum_cost_limit = 10; SELECT pg_reload_conf()});
sleep 2;
sq(q{CREATE TABLE busy (id int, pad text) WITH (autovacuum_enabled = off);
     INSERT INTO busy SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
     DELETE FROM busy WHERE id % 2 = 0;});
$call = start_call($node, q{SET virtuoso.maintenance_min_interval = 0;
    SELECT count(*) FROM virtuoso.perform_maintenance_if_needed()}, 'round');
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.progress
    WHERE job = 'maintenance round' AND total >= 1 AND phase LIKE 'VACUUM%busy%'}),
    'progress: a maintenance round shows the action it runs, of those due');
($rc, $out, $err) = finish_call($call);
is($rc, 0, 'the maintenance round ends') or diag($err);

done_testing();
