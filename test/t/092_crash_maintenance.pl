# Maintenance across crashes: perform_maintenance_if_needed killed during a VACUUM (the next
# call closes its row as FAILED, even with no scheduler), the scheduler across `pg_ctl
# restart -m immediate`, and a standby promoted in the middle of the primary's round.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;
use CrashTest;

# A slow VACUUM: maintenance uses autovacuum's cost-based delay, made long here.
my $conf = q{
autovacuum = off
autovacuum_vacuum_cost_delay = 100ms
virtuoso.database_names = 'postgres'
virtuoso.maintenance_naptime = 1s
# big is vacuumed again seconds after its last VACUUM, on purpose
virtuoso.maintenance_min_interval = 0
};
my $node = new_virtuoso_node('crash_maintenance', $conf);

sub sq { return $node->safe_psql('postgres', $_[0]); }

# Dead tuples in table big (statistics are lost in a crash: made again after each).
sub make_dead
{
    my ($on) = @_;
    $on->safe_psql('postgres', q{
CREATE TABLE IF NOT EXISTS big (id int, v text);
INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g;
DELETE FROM big;
});
}

sub set_cost_delay
{
    my ($on, $delay) = @_;
    $on->safe_psql('postgres', "ALTER SYSTEM SET autovacuum_vacuum_cost_delay = '$delay'");
    $on->reload;
}

my $vacuuming = q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner'
                  AND query LIKE 'VACUUM%big%'};
my $running = q{SELECT count(*) FROM virtuoso.maintenance_log WHERE status = 'RUNNING'};

# 1. The function's caller killed during the VACUUM, no scheduler running.
make_dead($node);
my $call = start_call($node, 'SELECT count(*) FROM virtuoso.perform_maintenance_if_needed()',
    'crash_v1');
ok(wait_until($node, $vacuuming), 'function: the VACUUM of big is running');
is(sq($running), '1', 'function: logged as RUNNING');
ok(kill9(backend_pid($node, 'crash_v1', 'client backend')), 'function: caller killed');
my ($rc, $out, $err) = finish_call($call);
isnt($rc, 0, 'function: the killed call reports a failure') or diag($out);
ok(restart_after_crash($node), 'function: server back after crash recovery');
is(sq($running), '1', 'function: the row is RUNNING until the next call');
set_cost_delay($node, '0');
make_dead($node);
is(sq(q{SELECT string_agg(action || ' ' || status, ',') FROM virtuoso.perform_maintenance_if_needed()
        WHERE tablename = 'big'}), 'VACUUM SUCCESS', 'function: the next call vacuums big');
is(sq(q{SELECT string_agg(status || ' ' || coalesce(error_message LIKE 'interrupted:%', false), ','
                                  ORDER BY id)
        FROM virtuoso.maintenance_log WHERE tablename = 'big'}),
    'FAILED true,SUCCESS false', 'function: and has closed the interrupted row as FAILED');

# 2. The scheduler across pg_ctl restart -m immediate in the middle of its VACUUM: it comes
# back, marks its interrupted row FAILED, and its rounds go on.
sq('DELETE FROM virtuoso.maintenance_log');
set_cost_delay($node, '100ms');
make_dead($node);
sq('ALTER SYSTEM SET virtuoso.enable_maintenance_worker = on');
$node->reload;
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.maintenance_log WHERE status = 'RUNNING'
                       AND triggered_by = 'scheduler' AND tablename = 'big'}),
    'scheduler: its VACUUM of big is running');
sq(q{ALTER SYSTEM SET autovacuum_vacuum_cost_delay = '0'});    # for after the restart
my $before = sq('SELECT now()');
immediate_restart($node);
ok(wait_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity
                       WHERE backend_type = 'db_virtuoso maintenance scheduler'}),
    'scheduler: running again after the immediate restart');
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.maintenance_log WHERE tablename = 'big'
                       AND status = 'FAILED' AND error_message LIKE 'interrupted:%'}),
    'scheduler: the interrupted row is marked FAILED');
make_dead($node);
ok(wait_until($node, qq{SELECT count(*) = 1 FROM virtuoso.maintenance_log WHERE tablename = 'big'
                        AND status = 'SUCCESS' AND triggered_by = 'scheduler'
                        AND started_at > '$before'}), 'scheduler: its rounds go on');
is(sq($running), '0', 'scheduler: no RUNNING row left');
$node->stop;

# 3. A standby promoted while the primary's scheduler is in the middle of a VACUUM (its
# RUNNING row replicated): after promotion the new primary's scheduler closes that row and
# serves maintenance.
my $primary = PostgreSQL::Test::Cluster->new('crash_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', q{
shared_preload_libraries = 'db_virtuoso,pg_stat_statements'
max_worker_processes = 32
virtuoso.enable_maintenance_worker = on
} . $conf);
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION db_virtuoso');
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('crash_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
make_dead($primary);
ok(wait_until($primary, q{SELECT count(*) = 1 FROM virtuoso.maintenance_log WHERE status = 'RUNNING'
                          AND tablename = 'big'}), 'promotion: the primary is vacuuming big');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', $running), '1', 'promotion: the standby sees the RUNNING row');
$primary->stop('immediate');
$standby->promote;
$standby->safe_psql('postgres', q{ALTER SYSTEM SET autovacuum_vacuum_cost_delay = '0'});
$standby->reload;
ok(wait_until($standby, q{SELECT count(*) = 1 FROM virtuoso.maintenance_log WHERE tablename = 'big'
                          AND status = 'FAILED' AND error_message LIKE 'interrupted:%'}),
    'promotion: the new primary marks the interrupted row FAILED');
make_dead($standby);
ok(wait_until($standby, q{SELECT count(*) = 1 FROM virtuoso.maintenance_log WHERE tablename = 'big'
                          AND status = 'SUCCESS'}), 'promotion: and vacuums big itself');
is($standby->safe_psql('postgres', $running), '0', 'promotion: no RUNNING row left');

$standby->stop;
done_testing();
