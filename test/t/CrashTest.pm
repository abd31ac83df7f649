# Helpers of the crash tests (09x_*.pl): a call run by a psql in the background, whose
# process is then killed with SIGKILL, and what its client saw.
package CrashTest;

use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use VirtuosoTest;

use Exporter 'import';
our @EXPORT = qw(start_call finish_call backend_pid kill9 slow_functions immediate_restart);

# Starts `psql -c $sql` under application_name $app; returns a handle for finish_call, which
# waits for it up to $timeout seconds (default 120).
sub start_call
{
    my ($node, $sql, $app, $timeout) = @_;
    my %call = (out => '', err => '');
    my $connstr = $node->connstr('postgres') . " application_name=$app";
    $call{timer} = IPC::Run::timeout($timeout // 120);
    $call{h} = IPC::Run::start(
        [ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $connstr, '-c', $sql ],
        '<', \undef, '>', \$call{out}, '2>', \$call{err}, $call{timer});
    return \%call;
}

# Waits (bounded) for the psql of start_call to end; returns (exit code, stdout, stderr).
# An exit code of -1 means it did not end in time: the call hung.
sub finish_call
{
    my ($call) = @_;
    my $rc = eval { $call->{h}->finish; $call->{h}->result(0) };
    if (!defined $rc)
    {
        eval { $call->{h}->kill_kill };
        $rc = -1;
    }
    return ($rc, $call->{out}, $call->{err});
}

# The PID of the process of the given backend_type running under application_name $app,
# once it waits on `$wait_event` (bounded wait); undef when it never did.
sub backend_pid
{
    my ($node, $app, $backend_type, $wait_event) = @_;
    my $query = qq{SELECT pid FROM pg_stat_activity WHERE application_name = '$app'
                   AND backend_type = '$backend_type' AND pid <> pg_backend_pid()}
      . (defined $wait_event ? " AND wait_event = '$wait_event'" : '');
    for (1 .. 600)
    {
        my $pid = $node->safe_psql('postgres', $query);
        return $pid if $pid =~ /^\d+$/;
        usleep(100_000);
    }
    return undef;
}

# kill -9 of one server process; the postmaster then ends every session (crash).
sub kill9
{
    my ($pid) = @_;
    return defined $pid && kill('KILL', $pid) == 1;
}

# Functions the tests use to make a statement last: slow_true(s) sleeps s seconds per call.
sub slow_functions
{
    my ($node) = @_;
    $node->safe_psql('postgres', q{
CREATE FUNCTION slow_true(float8) RETURNS boolean LANGUAGE sql VOLATILE
    AS 'SELECT true FROM pg_sleep($1)';
});
}

# pg_ctl restart -m immediate: no shutdown checkpoint, crash recovery at start.
sub immediate_restart
{
    my ($node) = @_;
    PostgreSQL::Test::Utils::system_or_bail('pg_ctl', '-w', '-D', $node->data_dir,
        '-l', $node->logfile, '-m', 'immediate', 'restart');
    $node->_update_pid(1);
}

1;
