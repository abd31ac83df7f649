# Maintenance log rows cost no background worker where the caller's transaction can hold
# them: an ANALYZE starts one runner (the ANALYZE), a table skipped as locked and a call
# with nothing to close start none; a VACUUM keeps its RUNNING row (written by a worker, so
# it is visible while it runs and survives the caller), written by the same worker as the
# VACUUM and its closing: one runner session serves the whole call (099 tests it further).
# Counted from the postmaster's own "starting background worker process" lines (DEBUG1).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

# Workers started are counted, so none may come from the pool (100_runner_pool tests reuse).
my $node = new_virtuoso_node('log_workers', q{
autovacuum = off
log_min_messages = debug1
virtuoso.runner_idle_timeout = 0
});
sub sq { return $node->safe_psql('postgres', $_[0]); }

# Runner workers started while `$sql` runs, and its output.
sub workers_for
{
    my ($sql) = @_;
    my $offset = -s $node->logfile;
    my $out = sq($sql);
    my $log = slurp_file($node->logfile, $offset);
    my $n = () = $log =~ /starting background worker process "db_virtuoso runner/g;
    return ($n, $out);
}

sq(q{CREATE TABLE loaded (id int);
     INSERT INTO loaded SELECT generate_series(1, 20000);});
sq('SELECT pg_stat_force_next_flush()');
my ($n, $out) = workers_for(q{SELECT string_agg(tablename || ' ' || action || ' ' || status, ',')
                              FROM virtuoso.perform_maintenance_if_needed()});
is($out, 'loaded ANALYZE SUCCESS', 'the bulk-loaded table is analysed');
is($n, 1, 'one worker: the ANALYZE itself, none for its log row');
is(sq(q{SELECT status || ' ' || (finished_at >= started_at) || ' ' || (duration > '0')
        FROM virtuoso.maintenance_log WHERE tablename = 'loaded'}), 'SUCCESS true true',
   'its row has the status, times and duration');

# A table locked by another session: skipped, logged, no worker.
sq(q{INSERT INTO loaded SELECT generate_series(1, 20000)});
sq('SELECT pg_stat_force_next_flush()');
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE loaded IN SHARE UPDATE EXCLUSIVE MODE');
($n, $out) = workers_for(q{SET virtuoso.maintenance_min_interval = 0;
                           SELECT string_agg(tablename || ' ' || status, ',')
                           FROM virtuoso.perform_maintenance_if_needed()});
is($out, 'loaded SKIPPED', 'the locked table is skipped');
is($n, 0, 'no worker for the SKIPPED row');
$locker->query_safe('COMMIT');
$locker->quit;
is(sq(q{SELECT count(*) FROM virtuoso.maintenance_log WHERE tablename = 'loaded' AND status = 'SKIPPED'}),
   '1', 'the SKIPPED row is logged');

# A VACUUM: its RUNNING row and its closing are written by a worker (the one running the
# VACUUM, and the ANALYZE after it: one session for the call).
sq(q{CREATE TABLE bloated (id int); INSERT INTO bloated SELECT generate_series(1, 10000);
     ANALYZE bloated; DELETE FROM bloated;});
sq('SELECT pg_stat_force_next_flush()');
($n, $out) = workers_for(q{SET virtuoso.maintenance_min_interval = 0;
                           SELECT string_agg(tablename || ' ' || action || ' ' || status, ',' ORDER BY tablename)
                           FROM virtuoso.perform_maintenance_if_needed()});
is($out, 'bloated VACUUM SUCCESS,loaded ANALYZE SUCCESS', 'the VACUUM and the ANALYZE ran');
is($n, 1, 'one worker: the VACUUM with its RUNNING row and its closing, and the ANALYZE');

$node->stop;
done_testing();
