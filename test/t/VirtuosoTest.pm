# Helpers shared by the TAP tests of db_virtuoso.
package VirtuosoTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

use Exporter 'import';
our @EXPORT = qw(new_virtuoso_node wait_until restart_after_crash start_writers stop_writers
  change_phases);

# A started node with db_virtuoso preloaded and created in database postgres.
# Extra postgresql.conf lines may be passed.
sub new_virtuoso_node
{
    my ($name, $extra_conf) = @_;
    my $node = PostgreSQL::Test::Cluster->new($name);
    $node->init;
    $node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'db_virtuoso,pg_stat_statements'
max_worker_processes = 32
virtuoso.enable_maintenance_worker = off
} . ($extra_conf // '') . "\n" . ($ENV{VIRTUOSO_TEST_SETTINGS} // '') . "\n");
    $node->start;
    $node->safe_psql('postgres', 'CREATE EXTENSION db_virtuoso');
    return $node;
}

# Polls a query until it returns the expected value (default 't'), for up to 30 s.
sub wait_until
{
    my ($node, $query, $expected) = @_;
    $expected //= 't';
    for (1 .. 300)
    {
        my $got = $node->safe_psql('postgres', $query);
        return 1 if $got eq $expected;
        usleep(100_000);
    }
    return 0;
}

# After kill -9 of a backend the postmaster stops (the test clusters run with
# restart_after_crash = off): wait for it to go, start it again (crash recovery), and wait
# until it answers.
sub restart_after_crash
{
    my ($node) = @_;
    my $pidfile = $node->data_dir . '/postmaster.pid';
    for (1 .. 600)
    {
        last unless -e $pidfile;
        usleep(100_000);
    }
    $node->_update_pid(0);  # the cluster object still remembers the old postmaster
    $node->start;
    for (1 .. 600)
    {
        my $up = eval { $node->safe_psql('postgres', 'SELECT 1') };
        return 1 if defined $up && $up eq '1';
        usleep(100_000);
    }
    return 0;
}

# Starts writers: back-to-back pgbench runs of 5 s (each prints its summary) of the script
# $sql with 2 clients until stop_writers; with log => 1 each transaction's latency is logged
# (the files' paths come back from stop_writers).  Returns a handle for stop_writers.
sub start_writers
{
    my ($node, $sql, %opt) = @_;
    my %w = (out => '', err => '', dir => PostgreSQL::Test::Utils::tempdir());
    my $script = "$w{dir}/writers.sql";
    open my $fh, '>', $script or die "$script: $!";
    print $fh $sql;
    close $fh;
    my $log = $opt{log} ? qq{-l --log-prefix "$w{dir}/tx"} : '';
    my ($host, $port) = ($node->host, $node->port);
    $w{h} = IPC::Run::start(
        [ 'sh', '-c', qq{while [ ! -f "$w{dir}/done" ]; do pgbench -n -c 2 -T 5 -f "$script" $log -h "$host" -p $port postgres || exit 1; done} ],
        '<', \undef, '>', \$w{out}, '2>', \$w{err}, IPC::Run::timeout($opt{timeout} // 1200));
    usleep(500_000);
    return \%w;
}

# Stops the writers of start_writers after their current run.  Returns a hash: ok (every
# run ended well), out and err (pgbench's output), runs (failed transactions of each run),
# processed (transactions of each run), logs (the latency log files).
sub stop_writers
{
    my ($w) = @_;
    open my $done, '>', "$w->{dir}/done" or die;
    close $done;
    my $ok = $w->{h}->finish;
    return {
        ok        => $ok,
        out       => $w->{out},
        err       => $w->{err},
        runs      => [ $w->{out} =~ /number of failed transactions: (\d+) /g ],
        processed => [ $w->{out} =~ /number of transactions actually processed: (\d+)/g ],
        logs      => [ glob("$w->{dir}/tx*") ],
    };
}

# The phases of column change $id in the migration log, in order: "expand=SUCCESS backfill=...".
sub change_phases
{
    my ($node, $id) = @_;
    return $node->safe_psql('postgres', qq{SELECT string_agg(split_part(name, ':', 3) || '=' || status, ' '
        ORDER BY started_at) FROM virtuoso.migration_log WHERE name LIKE 'expand:$id:%'});
}

1;
