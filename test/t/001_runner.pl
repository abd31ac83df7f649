# The statement runner under cancel, timeout, termination, and without preloading.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('runner');
my $runners = q{SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner')};

# Cancelling the caller stops its worker.
my $session = $node->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/, q{
\echo started
SELECT virtuoso.execute_top_level('SELECT pg_sleep(300)');
});
ok(wait_until($node, "$runners = 1"), 'the runner is running');
my $caller = $node->safe_psql('postgres',
    q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'
      AND query LIKE '%execute_top_level%pg_sleep(300)%' AND pid <> pg_backend_pid()});
ok($caller =~ /^\d+$/, 'the caller is found');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($caller)");
ok(wait_until($node, "$runners = 0"), 'pg_cancel_backend on the caller ends the runner');
my $after = $session->query('SELECT 1');
is($after, '1', 'the cancelled session is usable again');
$session->quit;

# statement_timeout of the caller ends the runner too.
my ($rc, $stdout, $stderr) = $node->psql('postgres',
    q{SET statement_timeout = '500ms'; SELECT virtuoso.execute_top_level('SELECT pg_sleep(300)')});
like($stderr, qr/canceling statement due to statement timeout/, 'statement_timeout cancels the caller');
ok(wait_until($node, "$runners = 0"), 'and its runner is gone');

# Terminating the caller (a FATAL exit, no error handling) ends the runner as well.
$session = $node->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/, q{
\echo started
SELECT virtuoso.execute_top_level('SELECT pg_sleep(300)');
});
ok(wait_until($node, "$runners = 1"), 'a second runner is running');
$node->safe_psql('postgres',
    q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend'
      AND query LIKE '%execute_top_level%pg_sleep(300)%' AND pid <> pg_backend_pid()});
ok(wait_until($node, "$runners = 0"), 'pg_terminate_backend on the caller ends the runner');
eval { $session->quit; };

# No free worker slot: a clear error, not a hang.
$node->append_conf('postgresql.conf', 'max_worker_processes = 1');
$node->restart;
($rc, $stdout, $stderr) = $node->psql('postgres', q{SELECT virtuoso.execute_top_level('SELECT 1')});
like($stderr, qr/no free background worker slot/, 'no free slot is a clear error');
$node->stop;

# Without shared_preload_libraries: a clear message, and the server stays up.
my $plain = PostgreSQL::Test::Cluster->new('not_preloaded');
$plain->init;
$plain->start;
($rc, $stdout, $stderr) = $plain->psql('postgres', 'CREATE EXTENSION db_virtuoso');
isnt($rc, 0, 'CREATE EXTENSION fails without preloading');
like($stderr, qr/db_virtuoso must be loaded via shared_preload_libraries/, 'with a clear message');
($rc, $stdout, $stderr) = $plain->psql('postgres', q{LOAD 'db_virtuoso'});
like($stderr, qr/must be loaded via shared_preload_libraries/, 'LOAD says the same');
is($plain->safe_psql('postgres', 'SELECT 1'), '1', 'the server is still up');
$plain->stop;

done_testing();
