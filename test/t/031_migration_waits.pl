# Migrations never wait without a timeout, and never stay RUNNING after their session
# stopped running them (issue 9 §5).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VirtuosoTest;

my $node = new_virtuoso_node('migration_waits');
$node->safe_psql('postgres',
    'CREATE TABLE acct (id int PRIMARY KEY, balance int); INSERT INTO acct SELECT g, g FROM generate_series(1, 1000) g');

# Another session holds ACCESS EXCLUSIVE on acct for 3 s.  Every lock the migration takes on
# acct, statistics included, is under its 200 ms lock_timeout: it retries, and says so.
my $holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_until(qr/locked/, q{
BEGIN;
LOCK TABLE acct IN ACCESS EXCLUSIVE MODE;
\echo locked
SELECT pg_sleep(3);
COMMIT;
});
my $started = time;
my ($rc, $out, $err) = $node->psql('postgres',
    q{SELECT attempts > 1, jsonb_array_length(lock_waits) > 0, lock_waits->0->>'lock_timeout_ms'
      FROM virtuoso.execute_migration_with_monitoring('m4', 'ALTER TABLE acct ADD COLUMN z int', NULL,
        '{"lock_timeout": "200ms", "max_retries": 30}')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
my $elapsed = time - $started;
is($rc, 0, 'the migration succeeds once the lock is released') or diag($err);
is($out, 't|t|200', 'it waited in attempts of 200 ms, each recorded in lock_waits');
eval { $holder->quit; };

# A failing attempt is retried but never waits long: with max_retries 0 and the lock held,
# the call fails fast with 55P03 instead of queueing behind the holder.
$holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_until(qr/locked/, q{
BEGIN;
LOCK TABLE acct IN ACCESS EXCLUSIVE MODE;
\echo locked
SELECT pg_sleep(5);
COMMIT;
});
$started = time;
($rc, $out, $err) = $node->psql('postgres',
    q{SELECT virtuoso.execute_migration_with_monitoring('m5', 'ALTER TABLE acct ADD COLUMN y int', NULL,
        '{"lock_timeout": "200ms", "max_retries": 0}')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
$elapsed = time - $started;
isnt($rc, 0, 'with the lock held and no retries the migration fails');
like($err, qr/ERROR:  canceling statement due to lock timeout/, 'with the lock timeout');
cmp_ok($elapsed, '<', 2.5, "fast ($elapsed s), not after the holder's 5 s");
is($node->safe_psql('postgres', q{SELECT status || ' ' || attempts || ' ' || jsonb_array_length(lock_waits) FROM virtuoso.migration_log WHERE name = 'm5'}),
    'FAILED 1 1', 'recorded FAILED after one attempt, with its lock wait');
eval { $holder->quit; };

# A non-transactional migration cancelled by the caller's statement_timeout is FAILED at once,
# in the same session (a pooled connection lives on), and the record survives.
($rc, $out, $err) = $node->psql('postgres',
    q{SET statement_timeout = '1s';
      SELECT virtuoso.execute_migration_with_monitoring('nt_cancel', 'SELECT pg_sleep(30)', NULL, '{"transactional": false}');},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
isnt($rc, 0, 'the cancelled migration fails');
like($err, qr/canceling statement due to statement timeout/, 'with the cancel');
is($node->safe_psql('postgres', q{SELECT status || ' ' || sqlstate FROM virtuoso.migration_log WHERE name = 'nt_cancel'}),
    'FAILED 57014', 'it is recorded FAILED with the cancel SQLSTATE, not left RUNNING');

# The same by pg_cancel_backend from another session.
my $session = $node->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/, q{
\echo started
SELECT virtuoso.execute_migration_with_monitoring('nt_cancel2', 'SELECT pg_sleep(60)', NULL, '{"transactional": false}');
});
ok(wait_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner' AND wait_event = 'PgSleep'}),
    'the statement runs');
$node->safe_psql('postgres',
    q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%nt_cancel2%' AND backend_type = 'client backend' AND pid <> pg_backend_pid()});
ok(wait_until($node, q{SELECT status FROM virtuoso.migration_log WHERE name = 'nt_cancel2'}, 'FAILED'),
    'a migration cancelled by pg_cancel_backend is FAILED');
eval { $session->quit; };

# An orphan whose pid now belongs to another session (pid reuse): pid and backend start
# time identify the session, so the next migration call marks it FAILED.
my $other = $node->background_psql('postgres', on_error_stop => 0);
my $other_pid = $other->query_safe('SELECT pg_backend_pid()');
$node->safe_psql('postgres', qq{
INSERT INTO virtuoso.migration_log (name, checksum, status, migration_sql, transactional, statements_total, statements_done, backend_pid, backend_start)
VALUES ('reused_pid', 'x', 'RUNNING', 'SELECT 1; SELECT 2', false, 2, 1, $other_pid, now() - interval '1 day')});
$node->safe_psql('postgres', q{SELECT virtuoso.execute_migration_with_monitoring('after_reuse', 'SELECT 1')});
like($node->safe_psql('postgres', q{SELECT status || ': ' || error_message FROM virtuoso.migration_log WHERE name = 'reused_pid'}),
    qr/^FAILED: the session running this migration \(PID \d+\) ended before it finished; 1 of 2 statements had completed$/,
    'a RUNNING row whose pid was reused by another session is marked FAILED');
eval { $other->quit; };

# The backup before a rollback copies the table: under the run's lock_timeout too.
$node->safe_psql('postgres', q{CREATE TABLE bk (id int)});
$node->safe_psql('postgres', q{SELECT virtuoso.execute_migration_with_monitoring('bk_m',
    'ALTER TABLE bk ADD COLUMN c int', 'ALTER TABLE bk DROP COLUMN c', '{"lock_timeout": "200ms", "max_retries": 1}')});
$holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_until(qr/locked/, q{
BEGIN;
LOCK TABLE bk IN ACCESS EXCLUSIVE MODE;
\echo locked
SELECT pg_sleep(6);
COMMIT;
});
$started = time;
($rc, $out, $err) = $node->psql('postgres', q{SELECT virtuoso.execute_rollback_with_backup('bk_m')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
$elapsed = time - $started;
isnt($rc, 0, 'a rollback whose backup cannot get its lock fails');
like($err, qr/canceling statement due to lock timeout/, 'with the lock timeout');
cmp_ok($elapsed, '<', 3, "soon ($elapsed s), not after the holder's 6 s");
is($node->safe_psql('postgres', q{SELECT status FROM virtuoso.migration_log WHERE name = 'bk_m'}),
    'SUCCESS', 'nothing was rolled back');
eval { $holder->quit; };

# Validation rules read user tables: under the lock timeout too, in a statement-by-statement
# run (which must then end FAILED, not RUNNING) and in verify_migration_integrity.
$node->safe_psql('postgres', q{CREATE TABLE vr (id int); INSERT INTO vr VALUES (1)});
$node->safe_psql('postgres', q{SELECT virtuoso.execute_migration_with_monitoring('vr_m', 'SELECT 1', NULL,
    '{"validation_rules": [{"name": "one_row", "query": "SELECT count(*) FROM vr", "expected": 1}]}')});
$holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_until(qr/locked/, q{
BEGIN;
LOCK TABLE vr IN ACCESS EXCLUSIVE MODE;
\echo locked
SELECT pg_sleep(8);
COMMIT;
});
$started = time;
($rc, $out, $err) = $node->psql('postgres',
    q{SELECT virtuoso.execute_migration_with_monitoring('vr_nt', 'SELECT 1', NULL,
        '{"transactional": false, "lock_timeout": "200ms", "validation_rules": [{"name": "one_row", "query": "SELECT count(*) FROM vr", "expected": 1}]}')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
$elapsed = time - $started;
isnt($rc, 0, 'rules that cannot get their lock fail the statement-by-statement run');
cmp_ok($elapsed, '<', 3, "soon ($elapsed s), not after the holder's 8 s");
is($node->safe_psql('postgres', q{SELECT status FROM virtuoso.migration_log WHERE name = 'vr_nt'}),
    'FAILED', 'and it is recorded FAILED');
$started = time;
($rc, $out, $err) = $node->psql('postgres',
    q{SET virtuoso.lock_timeout = '200ms'; SELECT status FROM virtuoso.verify_migration_integrity('vr_m') WHERE check_name = 'validation_rule'});
$elapsed = time - $started;
cmp_ok($elapsed, '<', 3, "verify does not queue behind the lock either ($elapsed s)");
eval { $holder->quit; };

done_testing();
