# A maintenance call that is cancelled or terminated in the middle of a VACUUM: the VACUUM
# stops, and its log row does not stay RUNNING (closed as FAILED at once on cancel, by the
# scheduler's next round when the caller's process is gone).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

# A slow VACUUM: maintenance uses autovacuum's cost-based delay, made long here.
my $node = new_virtuoso_node('cancel', q{
autovacuum = off
autovacuum_vacuum_cost_delay = 100ms
virtuoso.database_names = 'postgres'
virtuoso.maintenance_naptime = 1s
});

sub make_big
{
    $node->safe_psql('postgres', q{
DROP TABLE IF EXISTS big;
CREATE TABLE big (id int, v text);
INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g;
DELETE FROM big WHERE id % 2 = 0;
});
}

sub start_call
{
    my $session = $node->background_psql('postgres', on_error_stop => 0);
    $session->query_until(qr/started/, q{
\echo started
SELECT * FROM virtuoso.perform_maintenance_if_needed();
});
    ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                           WHERE tablename = 'big' AND status = 'RUNNING'}),
       'the VACUUM is running and logged as RUNNING');
    return $session;
}

my $caller = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'
               AND query LIKE '%perform_maintenance_if_needed%' AND pid <> pg_backend_pid()};
my $runners = q{SELECT count(*) = 0 FROM pg_stat_activity
                WHERE backend_type = 'db_virtuoso runner'};

make_big();
my $session = start_call();
$node->safe_psql('postgres', "SELECT pg_cancel_backend(pid) FROM ($caller) c");
ok(wait_until($node, q{SELECT status = 'FAILED' AND sqlstate = '57014' AND finished_at IS NOT NULL
                       FROM virtuoso.maintenance_log WHERE tablename = 'big'}),
   'on cancel the row is closed as FAILED with 57014');
ok(wait_until($node, $runners), 'and the VACUUM has stopped');
is($session->query('SELECT 1'), '1', 'the cancelled session is usable again');
$session->quit;

$node->safe_psql('postgres', 'DELETE FROM virtuoso.maintenance_log');
$session = start_call();
$node->safe_psql('postgres', "SELECT pg_terminate_backend(pid) FROM ($caller) c");
ok(wait_until($node, $runners), 'terminating the caller stops the VACUUM');
eval { $session->quit; };
is($node->safe_psql('postgres', q{SELECT status FROM virtuoso.maintenance_log
                                  WHERE tablename = 'big'}),
   'RUNNING', 'the row of the vanished caller is left RUNNING ...');
$node->safe_psql('postgres', 'ALTER SYSTEM SET virtuoso.enable_maintenance_worker = on');
$node->reload;
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                       WHERE tablename = 'big' AND triggered_by = 'function'
                         AND status = 'FAILED' AND error_message LIKE 'interrupted:%'}),
   '... until the scheduler marks it FAILED');

$node->stop;
done_testing();
