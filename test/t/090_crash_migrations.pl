# kill -9 in the middle of migrations and rollbacks, then crash recovery: nothing half
# applied, no RUNNING row once the next migration call has run, and that call works.  Also
# the runner worker killed under its caller: the caller gets an error, never a success.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;
use CrashTest;

my $node = new_virtuoso_node('crash_migrations');
slow_functions($node);
$node->safe_psql('postgres', q{
CREATE TABLE k (id int PRIMARY KEY, a int NOT NULL DEFAULT 0);
INSERT INTO k SELECT g, 0 FROM generate_series(1, 400) g;
});

sub sq { return $node->safe_psql('postgres', $_[0]); }
sub statuses
{
    my ($name) = @_;
    return sq("SELECT coalesce(string_agg(status, ',' ORDER BY started_at), '')
               FROM virtuoso.migration_log WHERE name = '$name'");
}
my $sum_a = 'SELECT sum(a) FROM k';

# 1. Transactional migration, killed in the middle of a long UPDATE (0.05 s a row): some
# rows are updated when the kill comes, none stays so.
my $call = start_call($node, q{SELECT status FROM virtuoso.execute_migration_with_monitoring(
    'm1_update', 'UPDATE k SET a = a + 1 WHERE slow_true(0.05)')}, 'crash_m1');
my $pid = backend_pid($node, 'crash_m1', 'client backend', 'PgSleep');
ok(defined $pid, 'transactional: the UPDATE is running');
sleep(1);    # about 20 rows updated
ok(kill9($pid), 'transactional: caller killed');
my ($rc, $out, $err) = finish_call($call);
isnt($rc, 0, 'transactional: the killed call reports a failure') or diag($out);
ok(restart_after_crash($node), 'transactional: server back after crash recovery');
is(sq($sum_a), '0', 'transactional: no row of the half-done UPDATE stays updated');
is(statuses('m1_update'), '', 'transactional: nothing recorded, no RUNNING row');
is(sq(q{SELECT status FROM virtuoso.execute_migration_with_monitoring('m1_update',
    'UPDATE k SET a = a + 1')}), 'SUCCESS', 'transactional: the next call applies it');
is(sq($sum_a), '400', 'transactional: every row updated once');

# 2. Non-transactional migration, killed in its second statement (in the runner worker).
$call = start_call($node, q{SELECT status FROM virtuoso.execute_migration_with_monitoring(
    'm2_steps', 'CREATE INDEX k_a_idx ON k (a); UPDATE k SET a = a + 1 WHERE slow_true(0.05)',
    NULL, '{"transactional": false, "lint": "warn"}')}, 'crash_m2');  # CREATE INDEX: a lint error
ok(defined backend_pid($node, 'crash_m2', 'db_virtuoso runner', 'PgSleep'),
    'non-transactional: the second statement is running');
sleep(1);
ok(kill9(backend_pid($node, 'crash_m2', 'client backend')), 'non-transactional: caller killed');
($rc, $out, $err) = finish_call($call);
isnt($rc, 0, 'non-transactional: the killed call reports a failure') or diag($out);
ok(restart_after_crash($node), 'non-transactional: server back after crash recovery');
is(sq($sum_a), '400', 'non-transactional: the interrupted UPDATE left no row updated');
is(sq(q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'k_a_idx'::regclass}), 't',
    'non-transactional: the completed first statement stays applied');
is(statuses('m2_steps'), 'RUNNING', 'non-transactional: the run is RUNNING until the next call');
is(sq(q{SELECT status FROM virtuoso.execute_migration_with_monitoring('m2_next', 'SELECT 1')}),
    'SUCCESS', 'non-transactional: the next migration call works');
like(sq(q{SELECT status || ': ' || error_message FROM virtuoso.migration_log WHERE name = 'm2_steps'}),
    qr/^FAILED: the session running this migration \(PID \d+\) ended before it finished; 1 of 2 statements had completed$/,
    'non-transactional: and has marked the interrupted run FAILED');
is(sq(q{SELECT count(*) FROM virtuoso.migration_log WHERE status = 'RUNNING'}), '0',
    'non-transactional: no RUNNING row left');

# 3. execute_rollback_with_backup killed during the backup copy: an event trigger holds the
# caller when the copy of k into virtuoso_backup is written but not committed.
sq(q{SELECT virtuoso.execute_migration_with_monitoring('m3_col',
    'ALTER TABLE k ADD COLUMN c int', 'ALTER TABLE k DROP COLUMN c')});
sq(q{
CREATE FUNCTION hold_backup() RETURNS event_trigger LANGUAGE plpgsql AS
    $$BEGIN PERFORM pg_sleep(300); END$$;
CREATE EVENT TRIGGER hold_backup ON ddl_command_end WHEN TAG IN ('CREATE TABLE AS')
    EXECUTE FUNCTION hold_backup();
});
$call = start_call($node, q{SELECT status FROM virtuoso.execute_rollback_with_backup('m3_col')},
    'crash_m3');
$pid = backend_pid($node, 'crash_m3', 'client backend', 'PgSleep');
ok(defined $pid, 'rollback: the backup copy is written, not yet committed');
is(sq(qq{SELECT count(*) FROM pg_locks WHERE pid = $pid AND relation = 'k'::regclass}), '1',
    'rollback: the caller is copying table k');
ok(kill9($pid), 'rollback: caller killed');
($rc, $out, $err) = finish_call($call);
isnt($rc, 0, 'rollback: the killed call reports a failure') or diag($out);
ok(restart_after_crash($node), 'rollback: server back after crash recovery');
sq('DROP EVENT TRIGGER hold_backup');
is(sq(q{SELECT count(*) FROM pg_class WHERE relnamespace = to_regnamespace('virtuoso_backup')}),
    '0', 'rollback: no backup table left');
is(statuses('m3_col'), 'SUCCESS', 'rollback: the migration is still recorded as applied');
is(sq(q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'k'::regclass AND attname = 'c'
       AND NOT attisdropped}), '1', 'rollback: the rollback SQL did not run');
is(sq(q{SELECT status || ' ' || array_length(backup_tables, 1)
       FROM virtuoso.execute_rollback_with_backup('m3_col')}), 'ROLLED_BACK 1',
    'rollback: the next call rolls back, with one backup');
is(sq(q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'k'::regclass AND attname = 'c'
       AND NOT attisdropped}), '0', 'rollback: the column is gone');
is(sq(q{SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'virtuoso_backup'::regnamespace
       AND relkind = 'r')}), '1', 'rollback: exactly one backup table');

# 4. kill -9 of the runner worker itself, not of its caller, in the middle of a statement:
# the caller must not succeed silently nor hang.
$call = start_call($node, q{SELECT status FROM virtuoso.execute_migration_with_monitoring(
    'm4_worker', 'UPDATE k SET a = a + 1 WHERE slow_true(0.05)', NULL,
    '{"transactional": false}')}, 'crash_m4');
$pid = backend_pid($node, 'crash_m4', 'db_virtuoso runner', 'PgSleep');
ok(defined $pid, 'runner killed: its statement is running');
sleep(1);
ok(kill9($pid), 'runner killed: kill -9 of the worker');
($rc, $out, $err) = finish_call($call);
ok($rc > 0, 'runner killed: the caller ends with an error, not hanging') or diag("rc $rc");
unlike($out, qr/SUCCESS/, 'runner killed: no success reported');
like($err, qr/crash of another server process|server closed the connection unexpectedly|connection to server was lost/,
    'runner killed: the caller is told the server crashed');
ok(restart_after_crash($node), 'runner killed: server back after crash recovery');
is(sq($sum_a), '400', 'runner killed: nothing of the statement applied');
sq(q{SELECT virtuoso.execute_migration_with_monitoring('m4_next', 'SELECT 1')});
is(statuses('m4_worker'), 'FAILED', 'runner killed: the next call marks the run FAILED');

# 5. The runner worker terminated (SIGTERM, no crash): the caller gets a clear error at once
# and the run is FAILED, not RUNNING.
$call = start_call($node, q{SELECT status FROM virtuoso.execute_migration_with_monitoring(
    'm5_worker', 'UPDATE k SET a = a + 1 WHERE slow_true(0.05)', NULL,
    '{"transactional": false}')}, 'crash_m5');
$pid = backend_pid($node, 'crash_m5', 'db_virtuoso runner', 'PgSleep');
ok(defined $pid, 'runner terminated: its statement is running');
sq("SELECT pg_terminate_backend($pid)");
($rc, $out, $err) = finish_call($call);
is($rc, 1, 'runner terminated: the caller gets an ERROR') or diag("rc $rc: $err");
like($err, qr/ERROR:  terminating background worker "db_virtuoso runner" due to administrator command/,
    'runner terminated: with the reason');
like($err, qr/recorded as FAILED/, 'runner terminated: and where it was recorded');
is(statuses('m5_worker'), 'FAILED', 'runner terminated: the run is FAILED at once');
is(sq($sum_a), '400', 'runner terminated: nothing of the statement applied');

# 6. A statement-by-statement rollback killed in its second statement: the first statement
# (which dropped data) stays applied, so the backup made before it must have survived the
# crash, be listed in the row, and the row must say how far the rollback got.
sq(q{CREATE TABLE r6 (id int PRIMARY KEY)});
sq(q{INSERT INTO r6 SELECT generate_series(1, 50)});
is(sq(q{SELECT status FROM virtuoso.execute_migration_with_monitoring('m6_steps',
    'ALTER TABLE r6 ADD COLUMN extra int',
    'ALTER TABLE r6 DROP COLUMN extra; UPDATE k SET a = a + 1 WHERE slow_true(0.05)',
    '{"transactional": false}')}), 'SUCCESS', 'rollback by statements: migration applied');
sq(q{UPDATE r6 SET extra = id});
$call = start_call($node, q{SELECT status FROM virtuoso.execute_rollback_with_backup('m6_steps')},
    'crash_m6');
ok(defined backend_pid($node, 'crash_m6', 'db_virtuoso runner', 'PgSleep'),
    'rollback by statements: the second statement is running');
sleep(1);
ok(kill9(backend_pid($node, 'crash_m6', 'client backend')),
    'rollback by statements: caller killed');
($rc, $out, $err) = finish_call($call);
isnt($rc, 0, 'rollback by statements: the killed call reports a failure') or diag($out);
ok(restart_after_crash($node), 'rollback by statements: server back after crash recovery');
is(sq(q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'r6'::regclass AND attname = 'extra'
       AND NOT attisdropped}), '0', 'rollback by statements: the first statement stays applied');
is(sq($sum_a), '400', 'rollback by statements: the interrupted statement left nothing');
is(sq(q{SELECT status || ': ' || rollback_reason || ', ' || cardinality(backup_tables)
       FROM virtuoso.migration_log WHERE name = 'm6_steps'}),
    'SUCCESS: rolling back: 1 of 2 statements done, 1',
    'rollback by statements: the row lists the backup and says how far the rollback got');
is(sq(q{SELECT sum(extra) FROM virtuoso.migration_log l, unnest(l.backup_tables) b,
       LATERAL (SELECT (xpath('/row/s/text()', query_to_xml(format('SELECT sum(extra) AS s FROM %s', b),
       false, true, '')))[1]::text::int AS extra) x WHERE l.name = 'm6_steps'}), '1275',
    'rollback by statements: the backup holds the dropped data');
is(sq(q{SELECT string_agg(check_name || ' ' || status, ',') FROM
       virtuoso.verify_migration_integrity('m6_steps') WHERE check_name = 'rollback'}),
    'rollback FAIL', 'rollback by statements: verify reports the rollback left half way');

$node->stop;
done_testing();
