# The runner's worker budget (virtuoso.max_runner_workers): calls beyond it wait in line
# (bounded by virtuoso.runner_queue_timeout, cancellable) instead of failing at once with
# 53400; slots show in pg_locks and in check_database_health, and never leak.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VirtuosoTest;

my $node = new_virtuoso_node('budget', qq{
virtuoso.max_runner_workers = 2
virtuoso.runner_queue_timeout = '30s'
});
my $runners = q{SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner')};
my $slots = q{SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = 0
              AND classid = 1447645780 AND granted)};
my $health = q{SELECT severity || ' ' || value || ' ' || message FROM virtuoso.check_database_health()
               WHERE check_name = 'runner_workers'};

like($node->safe_psql('postgres', $health), qr/^INFO 0 0 of 2 runner worker slots .* 0 call\(s\) waiting/,
     'idle: the health check reports 0 of 2 slots in use');

# Three calls of 3 s each with a budget of two: the third waits in line and then runs.
my @sessions;
for my $i (1 .. 3)
{
    my $s = $node->background_psql('postgres', on_error_stop => 0);
    $s->query_until(qr/started/, qq{
\\echo started
SELECT virtuoso.execute_top_level('SELECT pg_sleep(3) /* call $i */');
});
    push @sessions, $s;
}
ok(wait_until($node, "$runners = 2"), 'two runners start');
ok(wait_until($node, q{SELECT severity || ' ' || value FROM virtuoso.check_database_health()
                       WHERE check_name = 'runner_workers' AND message LIKE '%1 call(s) waiting%'}, 'WARN 2'),
   'the health check shows the budget full and one call waiting (WARN)');
is($node->safe_psql('postgres', $runners), '2', 'never more runners than the budget');
is($node->safe_psql('postgres', $slots), '2', 'the two slots are advisory locks in pg_locks');
for my $s (@sessions)
{
    my $out = $s->query('SELECT 1');
    is($s->{stderr}, '', 'no call failed');
    $s->quit;
}
ok(wait_until($node, "$slots = 0"), 'every slot is given back');

# A full budget and a short queue timeout: 53400 after the wait, from plain psql.
my $blocker = $node->background_psql('postgres', on_error_stop => 0);
$blocker->query_until(qr/started/, q{
\echo started
SELECT virtuoso.execute_top_level('SELECT pg_sleep(300)');
});
my $blocker2 = $node->background_psql('postgres', on_error_stop => 0);
$blocker2->query_until(qr/started/, q{
\echo started
SELECT virtuoso.execute_top_level('SELECT pg_sleep(300)');
});
ok(wait_until($node, "$slots = 2"), 'the budget is full');
my $t0 = time;
my ($rc, $out, $err) = $node->psql('postgres',
    q{SET virtuoso.runner_queue_timeout = '700ms'; SELECT virtuoso.execute_autonomous('SELECT 1')},
    extra_params => ['-X', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose']);
my $waited = time - $t0;
isnt($rc, 0, 'the call fails once the wait is over');
like($err, qr/53400: could not start a db_virtuoso runner: all 2 runner slots stayed busy for 700 ms/,
     '53400 names the budget and the wait');
ok($waited >= 0.6, "it waited in line first ($waited s)");

# With no wait at all it fails at once.
($rc, $out, $err) = $node->psql('postgres',
    q{SET virtuoso.runner_queue_timeout = 0; SELECT virtuoso.execute_autonomous('SELECT 1')});
like($err, qr/all 2 runner slots stayed busy/, 'runner_queue_timeout = 0 does not wait');

# A waiting call can be cancelled, and leaves no lock behind.
my $waiter = $node->background_psql('postgres', on_error_stop => 0);
$waiter->query_until(qr/started/, q{
\echo started
SELECT virtuoso.execute_autonomous('SELECT 1 /* waiter */');
});
ok(wait_until($node, q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = 0
                       AND classid = 1447645777}, '1'), 'the waiting call is in line');
$node->safe_psql('postgres', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                               WHERE query LIKE '%waiter%' AND pid <> pg_backend_pid()});
$waiter->query('SELECT 1');
like($waiter->{stderr}, qr/canceling statement due to user request/, 'cancel ends the wait');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
                                  AND database = 0 AND classid = 1447645777}), '0',
   'and its place in line is given up');
is($node->safe_psql('postgres', $slots), '2', 'the slots of the running calls stay held');
$waiter->quit;

# The budget is read at each call: raising it (SIGHUP) lets a call through at once.
$node->append_conf('postgresql.conf', 'virtuoso.max_runner_workers = 3');
$node->reload;
ok(wait_until($node, q{SELECT current_setting('virtuoso.max_runner_workers')}, '3'), 'reloaded');
is($node->safe_psql('postgres', q{SET virtuoso.runner_queue_timeout = 0;
                                  SELECT virtuoso.execute_autonomous('SELECT 41 + 1')}), 'SELECT 1',
   'a third slot is free after raising the budget');

# Terminated callers give their slots back (session-level locks die with the session).
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                               WHERE query LIKE '%pg_sleep(300)%' AND backend_type = 'client backend'
                                 AND pid <> pg_backend_pid()});
ok(wait_until($node, "$slots = 0"), 'terminated callers hold no slot');
ok(wait_until($node, "$runners = 0"), 'and their runners are gone');
eval { $blocker->quit; };
eval { $blocker2->quit; };

$node->stop;
done_testing();
