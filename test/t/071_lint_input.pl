# lint_migration on bad input, from plain psql -X -v ON_ERROR_STOP=1 (exit status and
# stderr): NULL, empty, unparsable SQL with its position, 10 MB of SQL, and a session that
# holds a conflicting lock while another lints (lock_conflict_now, and the trace's
# lock_timeout).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('lint_input');

sub run_psql
{
    my ($sql) = @_;
    my ($rc, $stdout, $stderr) = $node->psql('postgres', $sql, on_error_stop => 1);
    return ($rc, $stdout, $stderr);
}

my ($rc, $out, $err) = run_psql(q{SELECT * FROM virtuoso.lint_migration(NULL)});
is($rc, 3, 'NULL migration: psql fails');
like($err, qr/ERROR:\s+migration_sql must not be NULL/, 'NULL migration: the message');
($rc, $out, $err) = run_psql(
    q{\set VERBOSITY verbose
SELECT * FROM virtuoso.lint_migration(NULL)});
like($err, qr/ERROR:\s+22004/, 'NULL migration: SQLSTATE 22004');
($rc, $out, $err) = run_psql(q{SELECT * FROM virtuoso.lint_migration('SELECT 1', NULL)});
is($rc, 3, 'NULL trace: psql fails');

($rc, $out, $err) = run_psql(q{SELECT count(*) FROM virtuoso.lint_migration('')});
is($rc, 0, 'empty migration: no error');
is($out, '0', 'empty migration: no rows');
($rc, $out, $err) = run_psql(
    q{SELECT count(*) FROM virtuoso.lint_migration(E'-- only a comment\n  /* and another */ ;;')});
is($out, '0', 'comments and empty statements: no rows');

($rc, $out, $err) = run_psql(
    q{\set VERBOSITY verbose
SELECT * FROM virtuoso.lint_migration(E'CREATE TABLE a (id bigint);\nALTER TABEL a ADD COLUMN b int;')});
is($rc, 3, 'syntax error: psql fails');
like($err, qr/ERROR:\s+42601: syntax error at or near "TABEL"/, 'syntax error: 42601 and the token');
like($err, qr/line 2, column 7 of migration_sql/, 'syntax error: line and column in the migration');
like($err, qr/LINE 2: ALTER TABEL a/, 'syntax error: psql shows the line of the migration');
($rc, $out, $err) = run_psql(q{SELECT * FROM virtuoso.lint_migration('ALTER TABLE')});
like($err, qr/ERROR:\s+syntax error at end of input/, 'truncated statement: syntax error');

# 10 MB of SQL: many statements, then one huge statement.  No crash, a sensible answer.
$node->safe_psql('postgres',
    'CREATE TABLE big (id bigint PRIMARY KEY, v int); INSERT INTO big SELECT g, g FROM generate_series(1, 50000) g; ANALYZE big');
my $many = "UPDATE big SET v = 1 WHERE id = 1;\n" x 300_000;    # 10.2 MB
ok(length($many) > 10_000_000, 'the many-statement migration is over 10 MB');
($rc, $out, $err) = $node->psql('postgres',
    "SELECT count(*), max(statement_no) FROM virtuoso.lint_migration(\$m\$$many\$m\$) WHERE rule = 'lock'",
    on_error_stop => 1);
is($rc, 0, '10 MB of statements: no error') or diag($err);
is($out, '300000|300000', '10 MB of statements: every statement analysed');
my $huge = 'INSERT INTO big VALUES ' . join(',', map { "($_, $_)" } 1 .. 800_000) . ';';
ok(length($huge) > 10_000_000, 'the one-statement migration is over 10 MB');
($rc, $out, $err) = $node->psql('postgres',
    "SELECT rule FROM virtuoso.lint_migration(\$m\$$huge\$m\$)", on_error_stop => 1);
is($rc, 0, 'one 10 MB statement: no error') or diag($err);
is($out, 'lock', 'one 10 MB statement: its lock');
my $bad = ("SELECT 1;\n" x 1_000_000) . 'SELEC 2;';
($rc, $out, $err) = $node->psql('postgres',
    "SELECT * FROM virtuoso.lint_migration(\$m\$$bad\$m\$)", on_error_stop => 1);
is($rc, 3, '10 MB with a syntax error at the end: psql fails');
like($err, qr/line 1000001, column 1 of migration_sql/, '... at the right line');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is still up');

# Another session holds a lock: the linter names it, the trace times out instead of waiting.
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK TABLE big IN ACCESS SHARE MODE');
my $pid = $holder->query_safe('SELECT pg_backend_pid()');
chomp $pid;
($rc, $out, $err) = run_psql(
    q{SELECT rule || ' ' || (details->'lockers'->0->>'pid') FROM virtuoso.lint_migration('SET lock_timeout = ''1s''; ALTER TABLE big ADD COLUMN c int') WHERE rule = 'lock_conflict_now'});
is($out, "lock_conflict_now $pid", 'a conflicting lock held now is reported with its pid');
($rc, $out, $err) = run_psql(
    q{SET virtuoso.lock_timeout = '200ms';
SELECT rule, severity FROM virtuoso.lint_migration('ALTER TABLE big ADD COLUMN c int', true) WHERE rule LIKE 'trace%'});
is($rc, 0, 'trace behind a held lock: no error') or diag($err);
is($out, 'trace_lock_timeout|warning', 'trace behind a held lock: reported as a lock timeout');
($rc, $out, $err) = run_psql(
    q{SELECT count(*) FROM virtuoso.lint_migration('SET lock_timeout = ''1s''; CREATE INDEX CONCURRENTLY ON big (v)') WHERE rule = 'lock_conflict_now'});
is($out, '0', 'ACCESS SHARE does not conflict with SHARE UPDATE EXCLUSIVE');
$holder->query_safe('ROLLBACK');
$holder->quit;

done_testing();
