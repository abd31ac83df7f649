# The gate of execute_migration_with_monitoring seen from a plain psql client: the error and
# its SQLSTATE reach the client (exit status), and the FAILED / DRY_RUN rows survive the
# caller's rollback, whether the client rolls back or just goes away.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('migration_gate');
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_stat_statements;
CREATE TABLE big (id int PRIMARY KEY, k int NOT NULL, v text);
INSERT INTO big SELECT g, g % 2000, md5(g::text) FROM generate_series(1, 100000) g;
CREATE INDEX big_k_idx ON big (k);
VACUUM ANALYZE big;
});

sub sq
{
    my ($sql) = @_;
    return $node->safe_psql('postgres', $sql);
}

# Runs a script as a client would: psql -v ON_ERROR_STOP=1, verbose errors (with SQLSTATE).
sub client
{
    my ($script) = @_;
    my ($rc, $out, $err) = $node->psql('postgres', $script,
        extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
    return ($rc, $out, $err);
}

# 1. lint "error" (the default): refused before anything runs; the client's transaction is
# rolled back (psql stops at the error and disconnects), the FAILED row stays.
my ($rc, $out, $err) = client(q{
BEGIN;
SELECT status FROM virtuoso.execute_migration_with_monitoring('rewrite_k',
    'ALTER TABLE big ALTER COLUMN k TYPE bigint');
COMMIT;
});
isnt($rc, 0, 'lint refusal: psql exits with an error');
like($err, qr/ERROR:  VR001: migration refused by the linter/, 'lint refusal: SQLSTATE VR001 reaches the client');
like($err, qr/column_type_change_rewrites/, 'lint refusal: the detail names the rule');
is(sq(q{SELECT status || ' ' || sqlstate || ' ' || attempts || ' '
        || (SELECT string_agg(f->>'rule', ',') FROM jsonb_array_elements(lint) f WHERE f->>'severity' = 'error')
        FROM virtuoso.migration_log WHERE name = 'rewrite_k'}),
    'FAILED VR001 0 column_type_change_rewrites', 'lint refusal: the FAILED row with its findings survives');
is(sq(q{SELECT format_type(atttypid, atttypmod) FROM pg_attribute
        WHERE attrelid = 'big'::regclass AND attname = 'k'}), 'integer', 'lint refusal: nothing ran');

# An explicit ROLLBACK by the caller keeps the row too (ON_ERROR_STOP off: the script goes on).
($rc, $out, $err) = $node->psql('postgres', q{
BEGIN;
SELECT status FROM virtuoso.execute_migration_with_monitoring('rewrite_k2',
    'ALTER TABLE big ALTER COLUMN k TYPE bigint');
ROLLBACK;
});
like($err, qr/migration refused by the linter/, 'lint refusal in a rolled-back transaction: the error');
is(sq(q{SELECT status FROM virtuoso.migration_log WHERE name = 'rewrite_k2'}), 'FAILED',
    'lint refusal in a rolled-back transaction: the FAILED row survives');

# The procedure form: the same gate, the same error.
($rc, $out, $err) = client(q{
CALL virtuoso.run_migration('rewrite_k3', 'ALTER TABLE big ALTER COLUMN k TYPE bigint');
});
isnt($rc, 0, 'run_migration: lint refusal fails the CALL');
like($err, qr/VR001/, 'run_migration: SQLSTATE VR001');

# "warn" runs it and exits 0.
($rc, $out, $err) = client(q{
SELECT status FROM virtuoso.execute_migration_with_monitoring('big_v_idx',
    'CREATE INDEX big_v_idx ON big (v)', NULL, '{"lint": "warn"}');
});
is($rc, 0, 'lint warn: the migration runs');
is($out, 'SUCCESS', 'lint warn: SUCCESS');

# 2. max_plan_regression: dropping the index of the hottest query fails the migration.
sq(q{SELECT pg_stat_statements_reset()});
sq(q{SELECT count(*) FROM big WHERE k = 17}) for 1 .. 3;
($rc, $out, $err) = client(q{
BEGIN;
SELECT status FROM virtuoso.execute_migration_with_monitoring('drop_big_k_idx',
    'DROP INDEX big_k_idx', NULL, '{"max_plan_regression": 2}');
COMMIT;
});
isnt($rc, 0, 'plan regression: psql exits with an error');
like($err, qr/ERROR:  VR002: migration would make 1 of the top \d+ statements/,
    'plan regression: SQLSTATE VR002 reaches the client');
like($err, qr/plan before: .*big_k_idx.*\n.*plan after: .*Seq Scan on public\.big/,
    'plan regression: the detail shows both plans');
is(sq(q{SELECT to_regclass('big_k_idx') IS NOT NULL}), 't', 'plan regression: the index is still there');
is(sq(q{SELECT status || ' ' || sqlstate || ' ' || (plan_changes->>'regressed')
        FROM virtuoso.migration_log WHERE name = 'drop_big_k_idx'}),
    'FAILED VR002 1', 'plan regression: the FAILED row with plan_changes survives');
like(sq(q{SELECT s->>'plan_before' || ' -> ' || (s->>'plan_after')
        FROM virtuoso.migration_log, jsonb_array_elements(plan_changes->'statements') s
        WHERE name = 'drop_big_k_idx' AND (s->>'regressed')::boolean}),
    qr/^Aggregate\(.*using public\.big_k_idx on public\.big.*\) -> Aggregate\(.*Seq Scan on public\.big.*\)$/,
    'plan regression: the plans before and after are recorded');

# 3. dry_run: DRY_RUN, nothing applied, the row kept although the caller rolls back; then the
# real run is not "already applied".
($rc, $out, $err) = client(q{
BEGIN;
SELECT status FROM virtuoso.execute_migration_with_monitoring('add_flag',
    'ALTER TABLE big ADD COLUMN flag boolean', NULL, '{"dry_run": true, "max_plan_regression": 2}');
ROLLBACK;
});
is($rc, 0, 'dry run: psql succeeds');
is($out, 'DRY_RUN', 'dry run: status DRY_RUN');
is(sq(q{SELECT status || ' ' || (plan_changes->>'regressed') FROM virtuoso.migration_log WHERE name = 'add_flag'}),
    'DRY_RUN 0', 'dry run: the row, with the gate, survives the rollback');
is(sq(q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'flag'}), '0',
    'dry run: nothing applied');
is(sq(q{SELECT status FROM virtuoso.execute_migration_with_monitoring('add_flag',
        'ALTER TABLE big ADD COLUMN flag boolean')}), 'SUCCESS', 'dry run: the real run follows');
is(sq(q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'flag'}), '1',
    'dry run: the real run applied it');

# Bad option values: 22023 to the client, nothing recorded.
for my $bad ('{"lint": "maybe"}', '{"max_plan_regression": 0}', '{"max_plan_regression": "x"}')
{
    ($rc, $out, $err) = client(qq{
SELECT virtuoso.execute_migration_with_monitoring('bad_option', 'SELECT 1', NULL, '$bad');
});
    isnt($rc, 0, "bad option $bad: an error");
    like($err, qr/ERROR:  22023:/, "bad option $bad: SQLSTATE 22023");
}
is(sq(q{SELECT count(*) FROM virtuoso.migration_log WHERE name = 'bad_option'}), '0',
    'bad options: nothing recorded');

$node->stop;
done_testing();
