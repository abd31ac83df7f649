# Migrations under real clients and failures: psql -f, sqitch, kill -9.
use strict;
use warnings;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('migrations');
$node->safe_psql('postgres', 'CREATE TABLE k (id int PRIMARY KEY, a int)');
my $dir = PostgreSQL::Test::Utils::tempdir;

sub write_file
{
    my ($path, $text) = @_;
    open(my $fh, '>', $path) or die "cannot write $path: $!";
    print $fh $text;
    close($fh);
}

sub log_rows
{
    my ($name) = @_;
    return $node->safe_psql('postgres',
        "SELECT string_agg(status, ',' ORDER BY started_at) FROM virtuoso.migration_log WHERE name = '$name'");
}

# A plain psql -f migration file, run twice: applied once, the second run is a no-op.
write_file("$dir/001_add_b.sql", q{
SELECT status FROM virtuoso.execute_migration_with_monitoring('001_add_b',
    $m$ALTER TABLE k ADD COLUMN b text$m$, $r$ALTER TABLE k DROP COLUMN b$r$);
});
for my $run (1 .. 2)
{
    my ($rc, $out, $err) = $node->psql('postgres', undef,
        extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', "$dir/001_add_b.sql" ]);
    is($rc, 0, "psql -f run $run succeeds");
    like($err, qr/already applied/, 'the second run says it was already applied') if $run == 2;
}
is(log_rows('001_add_b'), 'SUCCESS', 'psql -f twice: one SUCCESS row');

# A failing file under --single-transaction (as Flyway and sqitch run scripts): psql stops,
# everything rolls back, and the FAILED row is still there.
write_file("$dir/002_broken.sql", q{
CREATE TABLE before_the_migration (x int);
SELECT virtuoso.execute_migration_with_monitoring('002_broken',
    $m$ALTER TABLE k ADD COLUMN c int; ALTER TABLE k ADD COLUMN c int$m$);
});
my ($rc, $out, $err) = $node->psql('postgres', undef,
    extra_params => [ '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-f', "$dir/002_broken.sql" ]);
isnt($rc, 0, 'a failing migration stops the script');
like($err, qr/column "c" of relation "k" already exists/, 'with the server error');
is(log_rows('002_broken'), 'FAILED', 'the FAILED row survives the rollback');
is($node->safe_psql('postgres', "SELECT to_regclass('before_the_migration') IS NULL"), 't',
    'the caller transaction did roll back');
is($node->safe_psql('postgres',
    "SELECT sqlstate || ' ' || error_message FROM virtuoso.migration_log WHERE name = '002_broken'"),
    '42701 column "c" of relation "k" already exists', 'with SQLSTATE and message');

# kill -9 of the backend in the middle of a transactional migration: nothing applied,
# nothing recorded, the next call proceeds.
my $session = $node->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/, q{
\echo started
SELECT virtuoso.execute_migration_with_monitoring('003_killed',
    $m$ALTER TABLE k ADD COLUMN d int; SELECT pg_sleep(300)$m$);
});
ok(wait_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%003_killed%' AND wait_event = 'PgSleep'}),
    'the migration is running');
my $pid = $node->safe_psql('postgres',
    q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%003_killed%' AND pid <> pg_backend_pid()});
kill 'KILL', $pid;
eval { $session->quit; };
ok(restart_after_crash($node), 'the server is back after kill -9 and a restart');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'k'::regclass AND attname = 'd'}),
    '0', 'after kill -9 nothing of the migration is applied');
is(log_rows('003_killed'), '', 'and nothing is recorded');
is($node->safe_psql('postgres', q{SELECT status FROM virtuoso.execute_migration_with_monitoring('003_killed',
    $m$ALTER TABLE k ADD COLUMN d int$m$)}), 'SUCCESS', 'the next call proceeds');

# kill -9 in the middle of a non-transactional migration: the completed statement stays,
# the RUNNING row is marked FAILED by the next call.
$session = $node->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/, q{
\echo started
SELECT virtuoso.execute_migration_with_monitoring('004_killed_steps',
    $m$CREATE INDEX k_a_idx ON k (a); SELECT pg_sleep(300)$m$, NULL, '{"transactional": false}');
});
ok(wait_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner' AND wait_event = 'PgSleep'}),
    'the second statement is running');
$pid = $node->safe_psql('postgres',
    q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%004_killed_steps%' AND backend_type = 'client backend' AND pid <> pg_backend_pid()});
kill 'KILL', $pid;
eval { $session->quit; };
ok(restart_after_crash($node), 'the server is back after kill -9 and a restart');
is(log_rows('004_killed_steps'), 'RUNNING', 'the interrupted run is left RUNNING');
$node->safe_psql('postgres', q{SELECT virtuoso.execute_migration_with_monitoring('005_next', 'SELECT 1')});
like($node->safe_psql('postgres', q{SELECT status || ': ' || error_message FROM virtuoso.migration_log WHERE name = '004_killed_steps'}),
    qr/^FAILED: the session running this migration \(PID \d+\) ended before it finished; 1 of 2 statements had completed$/,
    'the next call marks it FAILED with the reason');
is($node->safe_psql('postgres', q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'k_a_idx'::regclass}), 't',
    'the statement that completed stays applied');

# A real sqitch project whose deploy, verify and revert scripts call db_virtuoso.
SKIP:
{
    skip 'sqitch is not installed', 6 unless system('sqitch --version >/dev/null 2>&1') == 0;
    my $project = "$dir/sqitch";
    make_path($project);
    local $ENV{SQITCH_FULLNAME} = 'db_virtuoso tests';
    local $ENV{SQITCH_EMAIL} = 'tests@example.com';
    local $ENV{SQITCH_USER_CONFIG} = "$dir/sqitch-user.conf";
    local $ENV{PGHOST} = $node->host;
    local $ENV{PGPORT} = $node->port;
    my $target = 'db:pg:postgres';
    my $sqitch = sub { system('sqitch', '--chdir', $project, '--quiet', @_) == 0 };
    ok($sqitch->('init', 'widgets', '--engine', 'pg'), 'sqitch init');
    ok($sqitch->('add', 'add_widgets', '-n', 'Adds widgets.'), 'sqitch add');
    write_file("$project/deploy/add_widgets.sql", q{
BEGIN;
SELECT status FROM virtuoso.execute_migration_with_monitoring('add_widgets',
    $m$CREATE TABLE widgets (id int PRIMARY KEY, name text)$m$, $r$DROP TABLE widgets$r$);
COMMIT;
});
    write_file("$project/verify/add_widgets.sql", q{
SELECT 1 / count(*) FROM virtuoso.verify_migration_integrity('add_widgets')
WHERE check_name = 'migration_status' AND status = 'PASS';
SELECT id, name FROM widgets WHERE false;
});
    write_file("$project/revert/add_widgets.sql", q{
BEGIN;
SELECT status FROM virtuoso.execute_rollback_with_backup('add_widgets');
COMMIT;
});
    ok($sqitch->('deploy', $target), 'sqitch deploy');
    ok($sqitch->('verify', $target), 'sqitch verify');
    ok($sqitch->('revert', '-y', $target), 'sqitch revert');
    is(log_rows('add_widgets') . ' ' . $node->safe_psql('postgres', "SELECT to_regclass('widgets') IS NULL"),
        'ROLLED_BACK t', 'deployed, verified and reverted through db_virtuoso');
}

done_testing();
