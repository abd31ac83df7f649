# Helpers shared by the TAP tests of db_virtuoso.
package VirtuosoTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use Exporter 'import';
our @EXPORT = qw(new_virtuoso_node wait_until restart_after_crash);

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
} . ($extra_conf // ''));
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

1;
