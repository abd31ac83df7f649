# The maintenance scheduler: works by itself, skips locked tables until they are free, logs
# unservable databases once, lets DROP DATABASE through, reloads its naptime on SIGHUP,
# restarts after termination and marks runs a crash left RUNNING as FAILED.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VirtuosoTest;

my $naptime = 2;
my $node = new_virtuoso_node('scheduler', qq{
autovacuum = off
virtuoso.enable_maintenance_worker = on
virtuoso.maintenance_naptime = ${naptime}s
virtuoso.database_names = 'postgres, served, missing_db, noext'
});

my $scheduler = q{(SELECT pid FROM pg_stat_activity
                   WHERE backend_type = 'db_virtuoso maintenance scheduler')};
ok(wait_until($node, "SELECT count(*) = 1 FROM pg_stat_activity
                      WHERE backend_type = 'db_virtuoso maintenance scheduler'"),
   'the scheduler is visible in pg_stat_activity by its backend_type');

# A bloated table is vacuumed within two naptimes without anyone calling anything.
my $t0 = time;
$node->safe_psql('postgres', q{
CREATE TABLE bloated (id int, v text);
INSERT INTO bloated SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g;
DELETE FROM bloated WHERE id > 1000;
});
my $vacuumed = q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                 WHERE tablename = 'bloated' AND status = 'SUCCESS'
                   AND triggered_by = 'scheduler' AND action = 'VACUUM'};
ok(wait_until($node, $vacuumed), 'the scheduler vacuums a bloated table by itself');
my $elapsed = time - $t0;
# Two naptimes, plus one second for the session's statistics to reach the shared counters.
ok($elapsed <= 2 * $naptime + 1.5, "within two naptimes (took ${elapsed}s)");
is($node->safe_psql('postgres', q{
    SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'bloated'}),
   '0', 'its dead tuples are gone');
is($node->safe_psql('postgres', q{
    SELECT executed_by = (SELECT rolname FROM pg_roles WHERE oid = 10)
           AND dead_tuples_before = 4000 AND dead_tuples_after = 0 AND pages_removed > 0
    FROM virtuoso.maintenance_log WHERE tablename = 'bloated'}),
   't', 'logged as the bootstrap superuser with dead tuples and pages removed');

# A table locked by an open transaction is skipped (never waited for) and done later.
$node->safe_psql('postgres', 'CREATE TABLE locked_t (id int)');
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE locked_t IN SHARE UPDATE EXCLUSIVE MODE');
$node->safe_psql('postgres', q{
INSERT INTO locked_t SELECT generate_series(1, 5000);
DELETE FROM locked_t WHERE id > 1000;
});
ok(wait_until($node, q{SELECT count(*) >= 1 FROM virtuoso.maintenance_log
                       WHERE tablename = 'locked_t' AND status = 'SKIPPED'
                         AND error_message LIKE 'locked:%'}),
   'a table locked by an open transaction is skipped as locked');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'}),
   '0', 'nothing queues behind the lock');
$holder->query_safe('COMMIT');
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                       WHERE tablename = 'locked_t' AND status = 'SUCCESS'}),
   'and vacuumed in a later round once the lock is gone');
$holder->quit;

# Databases it cannot serve are logged once, not every round; a database it serves can be
# dropped at once between rounds.
$node->safe_psql('postgres', 'CREATE DATABASE noext');
$node->safe_psql('postgres', 'CREATE DATABASE served');
$node->safe_psql('served', 'CREATE EXTENSION db_virtuoso');
$node->safe_psql('served', q{
CREATE TABLE t (id int);
INSERT INTO t SELECT generate_series(1, 3000);
DELETE FROM t;
});
ok(wait_until($node, q{SELECT true}, 't'), 'served database created');
my $served_done = 0;
for (1 .. 100)
{
    if ($node->safe_psql('served', q{SELECT count(*) FROM virtuoso.maintenance_log
                                     WHERE tablename = 't' AND status = 'SUCCESS'}) eq '1')
    {
        $served_done = 1;
        last;
    }
    usleep(200_000);
}
ok($served_done, 'the scheduler serves a second database');
sleep(3 * $naptime);    # a few more rounds
my $log = slurp_file($node->logfile);
my $missing = () = $log =~ /database "missing_db" of virtuoso.database_names does not exist/g;
is($missing, 1, 'a missing database is logged once');
my $noext = () = $log =~ /extension db_virtuoso is not installed in database "noext"/g;
is($noext, 1, 'a database without the extension is logged once');

$t0 = time;
my ($rc, $stdout, $stderr) = $node->psql('postgres', 'DROP DATABASE served');
is($rc, 0, 'DROP DATABASE of a served database succeeds') or diag($stderr);
ok(time - $t0 < 5, 'at once (no wait for a connected worker)');

# SIGHUP: a longer naptime takes effect (nothing happens for a while), then a short one.
$node->safe_psql('postgres', q{ALTER SYSTEM SET virtuoso.maintenance_naptime = '1h'});
$node->reload;
sleep($naptime + 1);    # the round under way (if any) ends, the new naptime is in force
$node->safe_psql('postgres', q{
CREATE TABLE after_reload (id int);
INSERT INTO after_reload SELECT generate_series(1, 3000);
DELETE FROM after_reload;
});
sleep(2 * $naptime + 1);
is($node->safe_psql('postgres', q{SELECT count(*) FROM virtuoso.maintenance_log
                                  WHERE tablename = 'after_reload'}),
   '0', 'after SIGHUP with naptime 1h no round runs');
$node->safe_psql('postgres', q{ALTER SYSTEM SET virtuoso.maintenance_naptime = '1s'});
$node->reload;
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                       WHERE tablename = 'after_reload' AND status = 'SUCCESS'}),
   'after SIGHUP with naptime 1s the table is vacuumed');

# Rows a crash left RUNNING (their process is gone) become FAILED in the next round.
$node->safe_psql('postgres', q{
INSERT INTO virtuoso.maintenance_log (schemaname, tablename, action, status, executed_by,
                                      triggered_by, pid, backend_start)
VALUES ('public', 'ghost', 'VACUUM', 'RUNNING', 'nobody', 'function', 999999, now());
});
ok(wait_until($node, q{SELECT status = 'FAILED' AND error_message LIKE 'interrupted:%'
                              AND finished_at IS NOT NULL
                       FROM virtuoso.maintenance_log WHERE tablename = 'ghost'}),
   'a RUNNING row of a vanished process is marked FAILED');

# pg_terminate_backend ends the scheduler promptly; the postmaster restarts it.
my $old_pid = $node->safe_psql('postgres', "SELECT $scheduler");
ok($old_pid =~ /^\d+$/, 'scheduler pid found');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid)");
ok(wait_until($node, "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $old_pid"),
   'SIGTERM ends it');
ok(wait_until($node, "SELECT $scheduler IS NOT NULL AND $scheduler <> $old_pid"),
   'and it is restarted');

# Switched off by reload: it does no rounds.
$node->safe_psql('postgres', q{ALTER SYSTEM SET virtuoso.enable_maintenance_worker = off});
$node->reload;
sleep(2);
$node->safe_psql('postgres', q{
CREATE TABLE while_off (id int);
INSERT INTO while_off SELECT generate_series(1, 3000);
DELETE FROM while_off;
});
sleep(3);
is($node->safe_psql('postgres', q{SELECT count(*) FROM virtuoso.maintenance_log
                                  WHERE tablename = 'while_off'}),
   '0', 'with enable_maintenance_worker = off nothing is done');

# A fast shutdown is not held up by the scheduler.
$t0 = time;
$node->stop('fast');
ok(time - $t0 < 10, 'the server stops promptly');

done_testing();
