# The scheduler serves databases independently: a long VACUUM in one database does not hold
# up the rounds of another; a database whose previous round still runs is skipped (not waited
# for, not served twice); SIGTERM ends the scheduler and its database workers promptly; runs
# the termination left RUNNING become FAILED in the next round.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VirtuosoTest;

# Every page VACUUM touches costs more than the limit of 1, so each one sleeps 4 x 20ms:
# a table of ~1000 pages takes well over a minute, one of a few pages a second or so.
my $node = new_virtuoso_node('databases', q{
autovacuum = off
virtuoso.maintenance_naptime = 1s
virtuoso.database_names = 'db1, db2'
# the same table is vacuumed again within seconds on purpose
virtuoso.maintenance_min_interval = 0
autovacuum_vacuum_cost_delay = 20ms
autovacuum_vacuum_cost_limit = 1
});

sub wait_in
{
    my ($db, $query, $seconds) = @_;
    $seconds //= 30;
    for (1 .. $seconds * 10)
    {
        return 1 if $node->safe_psql($db, $query) eq 't';
        usleep(100_000);
    }
    return 0;
}

for my $db ('db1', 'db2')
{
    $node->safe_psql('postgres', "CREATE DATABASE $db");
    $node->safe_psql($db, 'CREATE EXTENSION db_virtuoso');
}
$node->safe_psql('db1', q{
CREATE TABLE big (id int);
INSERT INTO big SELECT generate_series(1, 226000);
DELETE FROM big WHERE id % 2 = 0;
});
$node->safe_psql('db2', q{
CREATE TABLE small (id int);
INSERT INTO small SELECT generate_series(1, 3000);
DELETE FROM small;
});
# Statistics reach the shared counters when a session ends.
ok(wait_in('db1', q{SELECT n_dead_tup > 0 FROM pg_stat_user_tables WHERE relname = 'big'}),
   'db1 has dead tuples');
ok(wait_in('db2', q{SELECT n_dead_tup > 0 FROM pg_stat_user_tables WHERE relname = 'small'}),
   'db2 has dead tuples');

# Switched on now, so that db1 (first in the list) is busy from the first round on.
$node->safe_psql('postgres', 'ALTER SYSTEM SET virtuoso.enable_maintenance_worker = on');
$node->reload;

ok(wait_in('db1', q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                    WHERE tablename = 'big' AND status = 'RUNNING'}),
   "db1's long VACUUM is running");
ok(wait_in('db2', q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                    WHERE tablename = 'small' AND status = 'SUCCESS'}),
   "db2's round is done while db1's is still running");
is($node->safe_psql('db1', q{SELECT status FROM virtuoso.maintenance_log
                            WHERE tablename = 'big'}),
   'RUNNING', "db1's VACUUM was still running then");

# Later rounds go on for db2; db1 is skipped while its worker runs, never served twice.
$node->safe_psql('db2', q{
CREATE TABLE later (id int);
INSERT INTO later SELECT generate_series(1, 3000);
DELETE FROM later;
});
ok(wait_in('db2', q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                    WHERE tablename = 'later' AND status = 'SUCCESS'}),
   'a later round of db2 runs while db1 is still busy');
is($node->safe_psql('db1', q{SELECT string_agg(status, ',') FROM virtuoso.maintenance_log}),
   'RUNNING', 'db1 has its one running VACUUM and nothing else');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
                                  WHERE backend_type = 'db_virtuoso maintenance'
                                    AND datname = 'db1'}),
   '1', 'one worker for db1');
like(slurp_file($node->logfile),
     qr/maintenance of database "db1" started in an earlier round is still running; skipped/,
     'the skipped database is logged');

# SIGTERM ends the scheduler at once, and the worker it started with it.
my $scheduler = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity
    WHERE backend_type = 'db_virtuoso maintenance scheduler'});
my $t0 = time;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($scheduler)");
ok(wait_in('postgres', qq{SELECT count(*) = 0 FROM pg_stat_activity
                          WHERE pid = $scheduler
                             OR backend_type = 'db_virtuoso maintenance'}, 10),
   'SIGTERM ends the scheduler and its database worker');
ok(time - $t0 < 5, 'promptly');

# The restarted scheduler's next round of db1 marks the interrupted run FAILED and (VACUUM
# no longer throttled) vacuums the table.
$node->safe_psql('postgres', 'ALTER SYSTEM SET autovacuum_vacuum_cost_delay = 0');
$node->reload;
ok(wait_in('db1', q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                    WHERE tablename = 'big' AND status = 'FAILED'
                      AND error_message LIKE 'interrupted:%'}, 60),
   'the run the termination left RUNNING is marked FAILED');
ok(wait_in('db1', q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                    WHERE tablename = 'big' AND status = 'SUCCESS'}),
   'and the table is vacuumed in a later round');

# virtuoso.max_maintenance_workers bounds the databases served at once: with 1, db2 waits
# while db1 runs; raised by SIGHUP to 2, db2 is served at once.
$node->safe_psql('postgres', q{ALTER SYSTEM SET virtuoso.max_maintenance_workers = 1});
$node->safe_psql('postgres', q{ALTER SYSTEM SET autovacuum_vacuum_cost_delay = '20ms'});
$node->reload;
$node->safe_psql('db1', 'DELETE FROM big WHERE id % 4 = 1');
ok(wait_in('db1', q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                    WHERE tablename = 'big' AND status = 'RUNNING'}),
   'db1 is busy again');
$node->safe_psql('db2', q{
CREATE TABLE bounded (id int);
INSERT INTO bounded SELECT generate_series(1, 3000);
DELETE FROM bounded;
});
ok(wait_in('db2', q{SELECT n_dead_tup > 0 FROM pg_stat_user_tables WHERE relname = 'bounded'}),
   'db2 has work');
sleep(3);    # three naptimes
is($node->safe_psql('db2', q{SELECT count(*) FROM virtuoso.maintenance_log
                            WHERE tablename = 'bounded'}),
   '0', 'with max_maintenance_workers = 1 db2 waits while db1 is served');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
                                  WHERE backend_type = 'db_virtuoso maintenance'}),
   '1', 'one database worker');
$node->safe_psql('postgres', q{ALTER SYSTEM SET virtuoso.max_maintenance_workers = 2});
$node->reload;
ok(wait_in('db2', q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                    WHERE tablename = 'bounded' AND status = 'SUCCESS'}, 10),
   'raised to 2 by SIGHUP, db2 is served');
is($node->safe_psql('db1', q{SELECT count(*) FROM virtuoso.maintenance_log
                            WHERE tablename = 'big' AND status = 'RUNNING'}),
   '1', 'while db1 is still running');

# A fast shutdown is not held up by a running database worker.
my $t1 = time;
$node->stop('fast');
ok(time - $t1 < 10, 'the server stops promptly');
done_testing();
