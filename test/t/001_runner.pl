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

# Statements that wait for older snapshots: refused from a function call (the calling
# statement's snapshot would block them), run by the procedure form, which refuses to run
# inside a transaction block.  Plain psql with ON_ERROR_STOP: exit status and message.
$node->safe_psql('postgres', 'CREATE TABLE snap (k int); INSERT INTO snap SELECT generate_series(1, 100)');
($rc, $stdout, $stderr) = $node->psql('postgres',
    qq{\\set VERBOSITY verbose\nSELECT virtuoso.execute_top_level('CREATE INDEX CONCURRENTLY snap_k ON snap (k)')});
isnt($rc, 0, 'a concurrent build from a function call fails with a non-zero exit status');
like($stderr, qr/ERROR:  25001: CREATE INDEX CONCURRENTLY cannot run while the calling statement holds a snapshot/,
    'with 25001 and the reason');
like($stderr, qr/HINT:  Use CALL virtuoso.build_index_concurrently/, 'and a hint naming the procedure form');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname = 'snap_k'}), '0',
    'nothing is left behind');
($rc, $stdout, $stderr) = $node->psql('postgres',
    qq{\\set VERBOSITY verbose\nBEGIN;\nCALL virtuoso.run_top_level('CREATE INDEX CONCURRENTLY snap_k ON snap (k)');\nCOMMIT;});
isnt($rc, 0, 'CALL inside BEGIN fails with a non-zero exit status');
like($stderr, qr/ERROR:  25001: virtuoso.run_top_level must be called outside a transaction block/,
    'with 25001 and the reason');
($rc, $stdout, $stderr) = $node->psql('postgres',
    qq{\\set VERBOSITY verbose\nBEGIN;\nCALL virtuoso.build_index_concurrently('CREATE INDEX snap_k ON snap (k)');\nCOMMIT;});
like($stderr, qr/ERROR:  25001: virtuoso.build_index_concurrently must be called outside a transaction block/,
    'build_index_concurrently too');
($rc, $stdout, $stderr) = $node->psql('postgres',
    q{CALL virtuoso.run_top_level('CREATE INDEX CONCURRENTLY snap_k ON snap (k)')});
is($rc, 0, 'CALL outside a transaction block builds concurrently');
is($stdout, 'CREATE INDEX', 'and returns the command tag');
($rc, $stdout, $stderr) = $node->psql('postgres',
    q{CALL virtuoso.build_index_concurrently('CREATE INDEX snap_k2 ON snap (k)')});
is($rc, 0, 'build_index_concurrently builds');
is($stdout, 'public.snap_k2', 'and returns the index name');
is($node->safe_psql('postgres',
    q{SELECT string_agg(indexrelid::regclass || ':' || indisvalid, ',' ORDER BY 1) FROM pg_index WHERE indrelid = 'snap'::regclass}),
    'snap_k:true,snap_k2:true', 'both indexes are valid');
($rc, $stdout, $stderr) = $node->psql('postgres',
    q{CALL virtuoso.build_index_concurrently('CREATE UNIQUE INDEX snap_u ON (SELECT 1)')});
isnt($rc, 0, 'a bad definition fails with a non-zero exit status');

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
