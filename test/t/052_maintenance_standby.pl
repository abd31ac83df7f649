# On a hot standby the scheduler does not run and maintenance refuses to act; after promotion
# the scheduler starts.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $conf = q{
shared_preload_libraries = 'db_virtuoso,pg_stat_statements'
max_worker_processes = 32
autovacuum = off
virtuoso.enable_maintenance_worker = on
virtuoso.maintenance_naptime = 1s
virtuoso.database_names = 'postgres'
};
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION db_virtuoso');
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'standby in recovery');

my $schedulers = q{SELECT (SELECT count(*) FROM pg_stat_activity
                   WHERE backend_type = 'db_virtuoso maintenance scheduler')};
sleep(2);
is($standby->safe_psql('postgres', $schedulers), '0', 'no scheduler on a hot standby');

my ($rc, $stdout, $stderr) = $standby->psql('postgres',
    'SELECT * FROM virtuoso.perform_maintenance_if_needed()');
like($stderr, qr/maintenance cannot run on a hot standby/, 'the function refuses to act');
($rc, $stdout, $stderr) = $standby->psql('postgres',
    'SELECT count(*) >= 0 FROM virtuoso.perform_maintenance_if_needed(dry_run => true)');
is($rc, 0, 'a dry run works on a standby') or diag($stderr);

$standby->promote;
ok(wait_until($standby, "$schedulers = 1"), 'after promotion the scheduler starts');

$standby->stop;
$primary->stop;
done_testing();
