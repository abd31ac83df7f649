# Issue 18, log cost: a migration's log row keeps the statistics summary a DBA reads (database
# counters, WAL, each relation's size, the size and row changes); each relation's detail goes
# to virtuoso.migration_stats, written with its row on every path (transactional, failed and
# kept past the caller's rollback, statement by statement, dry run) and deleted with it by the
# scheduler's log retention.  Prints the bytes per migration of both tables for the report.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('lean_log', q{
virtuoso.enable_maintenance_worker = on
virtuoso.maintenance_naptime = 1
});

$node->safe_psql('postgres', q{
CREATE SCHEMA lean;
CREATE TABLE lean.base (id int PRIMARY KEY, v text);
INSERT INTO lean.base SELECT g, g::text FROM generate_series(1, 1000) g;
ANALYZE lean.base;
});

# Every path that writes a log row, each touching lean.base (and creating an index).
sub run_sql
{
    my ($sql) = @_;
    my ($rc, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 1);
    return ($rc, $err);
}
my ($rc, $err) = run_sql(q{SELECT status FROM virtuoso.execute_migration_with_monitoring('tx_ok',
    'ALTER TABLE lean.base ADD COLUMN note text; CREATE INDEX base_v ON lean.base (v)', NULL, '{"lint": "off"}')});
is($rc, 0, 'a transactional migration') or diag($err);
($rc, $err) = run_sql(q{BEGIN;
SELECT virtuoso.execute_migration_with_monitoring('tx_failed',
    'ALTER TABLE lean.base ADD COLUMN half int; UPDATE lean.base SET id = id / 0', NULL, '{"lint": "off"}');
COMMIT});
isnt($rc, 0, 'a failing migration fails');
like($err, qr/division by zero/, 'with its error');
($rc, $err) = run_sql(q{SELECT status FROM virtuoso.execute_migration_with_monitoring('nontx_ok',
    'ALTER TABLE lean.base ADD COLUMN other text; VACUUM (ANALYZE) lean.base', NULL, '{"transactional": false, "lint": "off"}')});
is($rc, 0, 'a statement-by-statement migration') or diag($err);
($rc, $err) = run_sql(q{SELECT status FROM virtuoso.execute_migration_with_monitoring('dry',
    'ALTER TABLE lean.base ADD COLUMN tried text', NULL, '{"dry_run": true, "lint": "off"}')});
is($rc, 0, 'a dry run') or diag($err);

is($node->safe_psql('postgres', q{
SELECT string_agg(m.name || ':' || m.status || ':' || s.phase || ':'
                  || (SELECT string_agg(k, '+' ORDER BY k) FROM jsonb_object_keys(s.relations) k),
                  ' ' ORDER BY m.name, s.phase DESC)
FROM virtuoso.migration_log m JOIN virtuoso.migration_stats s ON s.migration_id = m.id}),
    join(' ', 'dry:DRY_RUN:initial:lean.base', 'dry:DRY_RUN:final:lean.base',
        'nontx_ok:SUCCESS:initial:lean.base', 'nontx_ok:SUCCESS:final:lean.base',
        'tx_failed:FAILED:initial:lean.base', 'tx_failed:FAILED:final:lean.base',
        'tx_ok:SUCCESS:initial:lean.base', 'tx_ok:SUCCESS:final:lean.base+lean.base_v'),
    'each run has the detail of each relation before and after it, whatever its path');

# The log row keeps the summary: sizes per relation (the same as the detail), the changes.
is($node->safe_psql('postgres', q{
SELECT bool_and((m.final_stats->'relations'->>r.key)::bigint = (r.value->>'size_bytes')::bigint)
       AND bool_and(jsonb_typeof(m.final_stats->'relations'->r.key) = 'number')
       AND bool_and(NOT m.final_stats ? 'captured_at')
FROM virtuoso.migration_log m JOIN virtuoso.migration_stats s ON s.migration_id = m.id AND s.phase = 'final',
     jsonb_each(s.relations) r}), 't', 'the summary holds each relation\'s size, as the detail does');
is($node->safe_psql('postgres', q{
SELECT (final_stats->>'size_delta_bytes')::bigint
       = (final_stats->'relations'->>'lean.base')::bigint + (final_stats->'relations'->>'lean.base_v')::bigint
         - (initial_stats->'relations'->>'lean.base')::bigint
FROM virtuoso.migration_log WHERE name = 'tx_ok'}), 't', 'and the size change of the relations');

# Bytes per migration: 200 migrations creating a table of 100 rows (as the load benchmark's).
$node->safe_psql('postgres', q{
DO $$ BEGIN FOR i IN 1..200 LOOP
    PERFORM virtuoso.execute_migration_with_monitoring('bulk_' || i,
        format('CREATE TABLE lean.%I (id int PRIMARY KEY, v text); '
               'INSERT INTO lean.%I SELECT g, g::text FROM generate_series(1, 100) g', 't' || i, 't' || i),
        format('DROP TABLE lean.%I', 't' || i));
END LOOP; END $$});
my $bytes = $node->safe_psql('postgres', q{
SELECT pg_total_relation_size('virtuoso.migration_log') / count(*) || ' '
       || pg_total_relation_size('virtuoso.migration_stats') / count(*) || ' '
       || avg(pg_column_size(m.*))::int || ' '
       || avg(pg_column_size(m.initial_stats) + pg_column_size(m.final_stats))::int
FROM virtuoso.migration_log m WHERE name LIKE 'bulk\_%'});
my ($log_bytes, $stats_bytes, $row_bytes, $summary_bytes) = split / /, $bytes;
diag("bytes per migration: migration_log $log_bytes, migration_stats $stats_bytes; "
     . "log row $row_bytes, of it initial_stats + final_stats $summary_bytes");
# Before the summary, initial_stats + final_stats of these runs took about 660 bytes.
cmp_ok($summary_bytes, '<', 600, 'the statistics summary of a log row stays small');

# Retention deletes old runs, and with them their detail.
$node->safe_psql('postgres', q{
UPDATE virtuoso.migration_log SET started_at = started_at - interval '2 days' WHERE name = 'tx_failed';
SELECT virtuoso.execute_migration_with_monitoring('tx_failed', 'SELECT 1');  -- its latest run now
});
my $old_id = $node->safe_psql('postgres', q{
SELECT id FROM virtuoso.migration_log WHERE name = 'tx_failed' AND status = 'FAILED'});
is($node->safe_psql('postgres', "SELECT count(*) FROM virtuoso.migration_stats WHERE migration_id = '$old_id'"),
    '2', 'the old run has its detail');
$node->append_conf('postgresql.conf', "virtuoso.log_retention = '1 day'\n");
$node->reload;
ok(wait_until($node, "SELECT count(*) = 0 FROM virtuoso.migration_log WHERE id = '$old_id'"),
    'retention deletes the old run');
is($node->safe_psql('postgres', "SELECT count(*) FROM virtuoso.migration_stats WHERE migration_id = '$old_id'"),
    '0', 'and its detail');
is($node->safe_psql('postgres', q{SELECT count(*) FROM virtuoso.migration_stats s
    JOIN virtuoso.migration_log m ON m.id = s.migration_id WHERE m.name = 'tx_ok'}),
    '2', 'recent runs keep theirs');

$node->stop;
done_testing();
