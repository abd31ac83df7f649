# Errors of statements run by the runner (or recorded by a migration) reach the client: psql
# with ON_ERROR_STOP exits non-zero with the message on stderr, and a deployment tool (sqitch)
# does not record a failed change as deployed.
use strict;
use warnings;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('errors');

# Runs one command as plain psql -X -v ON_ERROR_STOP=1 would and returns (exit code, stderr).
sub run_psql
{
    my ($sql) = @_;
    my ($rc, $stdout, $stderr) = $node->psql('postgres', $sql, on_error_stop => 1);
    return ($rc, $stderr);
}

my ($rc, $stderr) = run_psql(q{SELECT virtuoso.execute_top_level('SELECT 1/0')});
is($rc, 3, 'execute_top_level: psql fails');
like($stderr, qr/ERROR:\s+division by zero/, 'execute_top_level: the message reaches stderr');

($rc, $stderr) = run_psql(q{SELECT virtuoso.execute_autonomous('SELECT 1/0')});
is($rc, 3, 'execute_autonomous: psql fails');
like($stderr, qr/ERROR:\s+division by zero/, 'execute_autonomous: the message reaches stderr');

($rc, $stderr) = run_psql(q{SELECT virtuoso.execute_autonomous('SELECT * FROM no_such_table')});
is($rc, 3, 'execute_autonomous on a missing table: psql fails');
like($stderr, qr/ERROR:\s+relation "no_such_table" does not exist/,
    'execute_autonomous on a missing table: the message reaches stderr');

# A unique index on duplicate data.
$node->safe_psql('postgres', 'CREATE TABLE dup (k int); INSERT INTO dup VALUES (1), (1)');
($rc, $stderr) = run_psql(
    q{SELECT virtuoso.create_index_concurrently('CREATE UNIQUE INDEX dup_k ON dup (k)')});
isnt($rc, 0, 'create_index_concurrently on duplicates: psql fails');
like($stderr, qr/ERROR:/, 'create_index_concurrently on duplicates: an ERROR line on stderr');

# A non-transactional migration that fails: psql fails and the log says FAILED.
($rc, $stderr) = run_psql(
    q{SELECT status FROM virtuoso.execute_migration_with_monitoring('x',
      'CREATE INDEX CONCURRENTLY i ON no_such_table (x)', NULL, '{"transactional": false}')});
isnt($rc, 0, 'failing non-transactional migration: psql fails');
like($stderr, qr/ERROR:/, 'failing non-transactional migration: an ERROR line on stderr');
is($node->safe_psql('postgres',
        q{SELECT string_agg(status, ',') FROM virtuoso.migration_log WHERE name = 'x'}),
    'FAILED', 'failing non-transactional migration: the log says FAILED');

# A transactional migration that fails.
($rc, $stderr) = run_psql(
    q{SELECT status FROM virtuoso.execute_migration_with_monitoring('y',
      'CREATE TABLE y1 (a int); SELECT 1/0')});
is($rc, 3, 'failing transactional migration: psql fails');
like($stderr, qr/ERROR:\s+division by zero/, 'failing transactional migration: the message');
is($node->safe_psql('postgres',
        q{SELECT string_agg(status, ',') FROM virtuoso.migration_log WHERE name = 'y'}),
    'FAILED', 'failing transactional migration: the log says FAILED');
is($node->safe_psql('postgres', q{SELECT to_regclass('y1') IS NULL}), 't',
    'failing transactional migration: nothing of it remains');

# The same from a script run with psql -f, as deployment tools do: the script stops there.
($rc, $stderr) = run_psql(qq{SELECT virtuoso.execute_top_level('SELECT 1/0');\nCREATE TABLE after_error (a int);});
is($rc, 3, 'a script stops at the failing call');
is($node->safe_psql('postgres', q{SELECT to_regclass('after_error') IS NULL}), 't',
    'the statement after the failing call did not run');

# sqitch: a change whose deploy script calls a failing virtuoso function is not deployed.
SKIP:
{
    my $sqitch = `command -v sqitch 2>/dev/null`;
    chomp $sqitch;
    skip 'sqitch is not installed', 3 unless $sqitch;
    my $dir = tempdir(CLEANUP => 1);
    local $ENV{HOME} = $dir;
    local $ENV{SQITCH_FULLNAME} = 'Test';
    local $ENV{SQITCH_EMAIL} = 'test@example.com';
    local $ENV{PGHOST} = $node->host;
    local $ENV{PGPORT} = $node->port;
    local $ENV{PGDATABASE} = 'postgres';
    my $psql_client = $node->installed_command('psql');
    my ($out, $err);
    IPC::Run::run([ $sqitch, '--chdir', $dir, 'init', 'failing', '--engine', 'pg',
            '--target', 'db:pg:postgres', '--client', $psql_client ],
        '>', \$out, '2>', \$err)
      or BAIL_OUT("sqitch init failed: $out $err");
    IPC::Run::run([ $sqitch, '--chdir', $dir, 'add', 'bad_change', '-n', 'fails' ],
        '>', \$out, '2>', \$err)
      or BAIL_OUT("sqitch add failed: $out $err");
    open(my $fh, '>', "$dir/deploy/bad_change.sql") or die $!;
    print $fh "BEGIN;\nSELECT virtuoso.execute_autonomous('SELECT 1/0');\nCOMMIT;\n";
    close $fh;
    my $ok = IPC::Run::run([ $sqitch, '--chdir', $dir, 'deploy' ], '>', \$out, '2>', \$err);
    ok(!$ok, 'sqitch deploy exits non-zero');
    like("$out$err", qr/division by zero/, 'sqitch shows the error');
    is($node->safe_psql('postgres',
            q{SELECT count(*) FROM sqitch.changes WHERE change = 'bad_change'}),
        '0', 'sqitch did not record the change as deployed');
}

# The procedure forms: a failing CALL fails psql too, and a failed migration is recorded.
($rc, $stderr) = run_psql(q{CALL virtuoso.build_index_concurrently('CREATE UNIQUE INDEX dup_k2 ON dup (k)')});
is($rc, 3, 'CALL build_index_concurrently on duplicates: psql fails');
like($stderr, qr/ERROR:\s+could not create unique index "dup_k2"/,
    'CALL build_index_concurrently on duplicates: the message reaches stderr');
($rc, $stderr) = run_psql(q{CALL virtuoso.run_top_level('SELECT 1/0')});
is($rc, 3, 'CALL run_top_level: psql fails');
like($stderr, qr/ERROR:\s+division by zero/, 'CALL run_top_level: the message reaches stderr');
($rc, $stderr) = run_psql(q{CALL virtuoso.run_migration('proc_cic_missing',
    'CREATE INDEX CONCURRENTLY i ON no_such_table (x)', NULL, '{"transactional": false}')});
is($rc, 3, 'CALL run_migration with a failing concurrent build: psql fails');
like($stderr, qr/ERROR:\s+relation "no_such_table" does not exist/,
    'CALL run_migration: the message reaches stderr');
is($node->safe_psql('postgres',
    q{SELECT status || ' ' || sqlstate FROM virtuoso.migration_log WHERE name = 'proc_cic_missing'}),
    'FAILED 42P01', 'CALL run_migration: the run is recorded FAILED');

$node->stop;

done_testing();
