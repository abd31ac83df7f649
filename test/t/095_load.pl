# Load (issue 10 item 4, short variant; the bench's load.sh runs 60 s): 16 pgbench sessions
# calling migrations (transactional and not, unique names), validation rules, maintenance and
# the index advisor beside pgbench TPC-B traffic. Only documented errors, no lock wait left,
# no RUNNING row, migration_log matches the calls, the postmaster never restarts, every
# window of the run counted traffic; the traffic's tps and p99 latency with and without the
# extension's calls (alternating windows of 10 s, the driver's) are printed.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('load', q{
max_connections = 60
max_worker_processes = 64
virtuoso.enable_maintenance_worker = on
virtuoso.database_names = 'postgres'
virtuoso.maintenance_naptime = 5s
});

my $driver = File::Spec->catfile(dirname(__FILE__), '..', 'bench', 'load_driver.pl');
my ($out, $err) = ('', '');
{
    local $ENV{PGHOST} = $node->host;
    local $ENV{PGPORT} = $node->port;
    local $ENV{PGDATABASE} = 'postgres';
    local $ENV{LOAD_SESSIONS} = $ENV{LOAD_SESSIONS} // 16;
    local $ENV{LOAD_SECONDS} = $ENV{LOAD_SECONDS} // 30;
    local $ENV{LOAD_BASE_SECONDS} = $ENV{LOAD_BASE_SECONDS} // 10;
    local $ENV{LOAD_SCALE} = 2;
    local $ENV{LOAD_PROBE_CALLS} = $ENV{LOAD_PROBE_CALLS} // 3;
    local $ENV{LOAD_SERVER_LOG} = $node->logfile;
    IPC::Run::run([ $^X, $driver ], '>', \$out, '2>', \$err);
}
is($?, 0, 'the load driver ran') or diag($err);
my $checks = 0;
for my $line (split /\n/, $out)
{
    if ($line =~ /^figure (\S+) (.*)$/) { note("$1 = $2"); }
    elsif ($line =~ /^check (\S+) (ok|FAIL) ?(.*)$/)
    {
        $checks++;
        ok($2 eq 'ok', "$1 ($3)");
    }
}
is($checks, 10, 'every check of the driver ran');
ok(!grep({ /PANIC|TRAP:|terminated by signal/ } slurp_file($node->logfile)),
   'no PANIC, TRAP or crash in the server log');
$node->stop;
done_testing();
