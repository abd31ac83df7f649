# Alerts reach a real LISTENing client: a migration that failed inside a transaction the
# caller rolled back, a migration's long lock waits, a periodic health finding (once while
# unresolved) and its resolution; log retention by the scheduler in small batches.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(usleep);
use VirtuosoTest;

my $node = new_virtuoso_node('alerts', q{
virtuoso.enable_maintenance_worker = on
virtuoso.maintenance_naptime = 1
virtuoso.health_check_interval = 1
virtuoso.alert_lock_wait = 150
});

# The client: psql, LISTENing; every query it runs also prints the notifications received.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN virtuoso_alerts');
my @received;    # decoded payloads, in order
sub poll_alert
{
    my ($match, $what) = @_;
    for (1 .. 300)
    {
        my $out = $listener->query_safe('SELECT 1');
        for my $line (split /\n/, $out)
        {
            next unless $line =~ /^Asynchronous notification "virtuoso_alerts" with payload "(.*)" received/;
            push @received, decode_json($1);
        }
        my @hit = grep { $match->($_) } @received;
        return $hit[0] if @hit;
        usleep(100_000);
    }
    fail("no alert received: $what");
    return undef;
}

# ---- a migration that fails inside a transaction the caller rolls back ---------------------
my ($rc, $out, $err) = $node->psql('postgres', q{
BEGIN;
CREATE TABLE before_migration (a int);
SELECT virtuoso.execute_migration_with_monitoring('alert_fail',
    'CREATE TABLE made_by_migration (a int); SELECT 1 / 0');
ROLLBACK;
}, on_error_stop => 1);
is($rc, 3, 'the failing migration is an error for the caller');
like($err, qr/division by zero/, 'with its message');
my $alert = poll_alert(sub { $_[0]{kind} eq 'migration_failed' }, 'migration_failed');
is_deeply([sort keys %$alert],
    [sort qw(id kind severity database object message details at)], 'payload has the contract keys');
is($alert->{severity}, 'CRITICAL', 'migration_failed is CRITICAL');
is($alert->{database}, 'postgres', 'payload names the database');
is($alert->{object}, 'alert_fail', 'payload names the migration');
is($alert->{details}{sqlstate}, '22012', 'details carry the SQLSTATE');
like($alert->{message}, qr/division by zero/, 'message carries the error');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname IN ('before_migration', 'made_by_migration')}),
    '0', 'the caller rolled back');
is($node->safe_psql('postgres', q{SELECT status FROM virtuoso.migration_log WHERE name = 'alert_fail'}),
    'FAILED', 'the FAILED run stays logged');
is($node->safe_psql('postgres', q{SELECT count(*) FROM virtuoso.alerts WHERE kind = 'migration_failed' AND object = 'alert_fail'}),
    '1', 'and the alert is open');

# ---- lock waits of a migration past virtuoso.alert_lock_wait --------------------------------
$node->safe_psql('postgres', 'CREATE TABLE busy (a int)');
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE busy');
($rc, $out, $err) = $node->psql('postgres', q{
SELECT virtuoso.execute_migration_with_monitoring('alert_locked', 'ALTER TABLE busy ADD COLUMN b int', NULL,
    '{"lock_timeout": "100ms", "max_retries": 2}')});
isnt($rc, 0, 'the migration gives up on the lock');
$alert = poll_alert(sub { $_[0]{kind} eq 'lock_wait' }, 'lock_wait');
is($alert->{object}, 'alert_locked', 'lock_wait names the migration');
cmp_ok($alert->{details}{waited_ms}, '>', 150, 'and the wait past the bound');
$holder->query_safe('ROLLBACK');
$holder->quit;

# ---- a periodic health finding: once while unresolved, then resolved ------------------------
$node->safe_psql('postgres', q{CREATE SEQUENCE nearly_done MAXVALUE 100; SELECT setval('nearly_done', 95)});
$alert = poll_alert(sub { $_[0]{kind} eq 'health' && $_[0]{object} =~ /nearly_done/ && $_[0]{severity} eq 'CRITICAL' },
    'health finding');
is($alert->{details}{check}, 'sequence_exhaustion', 'the health alert names its check');
my $first = $alert->{id};
sleep 4;    # several more rounds
is($node->safe_psql('postgres', q{SELECT count(*) FROM virtuoso.alert_log WHERE kind = 'health' AND object LIKE '%nearly_done%'}),
    '1', 'no duplicate alert for the unresolved finding');
$node->safe_psql('postgres', 'DROP SEQUENCE nearly_done');
$alert = poll_alert(sub { $_[0]{kind} eq 'health' && $_[0]{severity} eq 'INFO' && $_[0]{object} =~ /nearly_done/ },
    'resolution');
like($alert->{message}, qr/^resolved: /, 'the resolution says so');
is($alert->{details}{resolves}, $first, 'and names the alert it resolves');
is($node->safe_psql('postgres', q{SELECT count(*) FROM virtuoso.alerts WHERE object LIKE '%nearly_done%'}),
    '0', 'nothing open about it any more');
$listener->quit;

# ---- retention -----------------------------------------------------------------------------
($rc, $out, $err) = $node->psql('postgres', q{ALTER SYSTEM SET virtuoso.log_retention = 'forever'});
isnt($rc, 0, 'a retention that is no interval is refused');
like($err, qr/invalid value for parameter "virtuoso.log_retention"/, 'by the parameter check');
$node->safe_psql('postgres', q{
SET session_replication_role = replica;
INSERT INTO virtuoso.migration_log (name, checksum, status, migration_sql, started_at) VALUES
    ('old', 'x', 'SUCCESS', 'SELECT 1', now() - interval '3 days'),
    ('old', 'x', 'FAILED', 'SELECT 1', now() - interval '2 days'),
    ('old', 'x', 'FAILED', 'SELECT 1', now() - interval '1 day'),
    ('stuck', 'x', 'RUNNING', 'SELECT 1', now() - interval '3 days'),
    ('stuck', 'x', 'FAILED', 'SELECT 1', now() - interval '2 days'),
    ('stuck', 'x', 'FAILED', 'SELECT 1', now() - interval '1 day');
INSERT INTO virtuoso.maintenance_log (started_at, schemaname, tablename, action, status, executed_by, triggered_by)
SELECT now() - interval '2 days', 'public', 't' || g, 'VACUUM', 'SUCCESS', 'postgres', 'function'
FROM generate_series(1, 2500) g;
INSERT INTO virtuoso.alert_log (kind, severity, message, at, acknowledged_at) VALUES
    ('test', 'WARN', 'old acknowledged', now() - interval '2 days', now()),
    ('test', 'WARN', 'old open', now() - interval '2 days', NULL);
});
$node->append_conf('postgresql.conf', "virtuoso.log_retention = '12h'\n");
$node->reload;
ok(wait_until($node, q{SELECT count(*) = 0 FROM virtuoso.maintenance_log WHERE started_at < now() - interval '1 day'}),
    'old maintenance_log rows are deleted (in batches of 1000)');
is($node->safe_psql('postgres', q{SELECT string_agg(status, ',' ORDER BY started_at) FROM virtuoso.migration_log WHERE name = 'old'}),
    'SUCCESS,FAILED', 'the latest run of a name and its latest SUCCESS stay');
is($node->safe_psql('postgres', q{SELECT string_agg(status, ',' ORDER BY started_at) FROM virtuoso.migration_log WHERE name = 'stuck'}),
    'RUNNING,FAILED', 'a RUNNING run stays');
is($node->safe_psql('postgres', q{SELECT string_agg(message, ',') FROM virtuoso.alert_log WHERE kind = 'test'}),
    'old open', 'an open alert stays');

$node->stop;
done_testing();
