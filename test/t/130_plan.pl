# Implementation plans end to end (issue 13): the procedure form from psql -f, twice; a
# failing concurrent index build that leaves no invalid index and undoes the steps before it
# in reverse order; a stopped plan resumed after its cause was fixed; refusals from plain psql.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use VirtuosoTest;

my $node = new_virtuoso_node('plan');
my $dir = PostgreSQL::Test::Utils::tempdir;

sub psql_file
{
    my ($name, $sql) = @_;
    my $file = "$dir/$name.sql";
    open my $fh, '>', $file or die $!;
    print $fh $sql;
    close $fh;
    my ($stdout, $stderr) = ('', '');
    my $rc = PostgreSQL::Test::Utils::system_log('psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
        '-d', $node->connstr('postgres'), '-f', $file, '-o', "$dir/$name.out");
    return $rc >> 8;
}

$node->safe_psql('postgres', q{
CREATE TABLE src_customer (id bigint PRIMARY KEY, name text);
INSERT INTO src_customer SELECT g, 'customer ' || g FROM generate_series(1, 500) g;
});

my $plan = q{{
  "name": "shop",
  "changes": [
    {"name": "customers", "type": "create_table", "definition": {"table": "customer",
      "columns": [{"name": "id", "type": "bigint", "not_null": true}, {"name": "name", "type": "text"}],
      "primary_key": ["id"]}},
    {"name": "orders", "type": "create_table", "definition": {"table": "orders",
      "columns": [{"name": "id", "type": "bigint", "not_null": true},
                  {"name": "customer_id", "type": "bigint", "references": {"table": "customer", "column": "id"}},
                  {"name": "total", "type": "numeric"}],
      "primary_key": ["id"]}},
    {"name": "orders_by_customer", "type": "create_index", "definition": {"table": "orders", "name": "orders_customer_idx", "columns": ["customer_id"]}},
    {"name": "copy", "type": "migrate_data", "definition": "INSERT INTO customer SELECT id, name FROM src_customer", "rollback": "DELETE FROM customer"},
    {"name": "check", "type": "validate", "definition": [{"name": "copied", "type": "row_count", "table": "customer", "min": 500, "max": 500}]},
    {"name": "dal", "type": "scaffold", "definition": {"table": "orders", "api_schema": "shop_api"}}
  ],
  "validation_rules": [{"name": "all customers", "query": "SELECT count(*) FROM customer WHERE name IS NULL", "expected": 0}]
}};

my $script = "CALL virtuoso.run_implementation(\$plan\$$plan\$plan\$, NULL, NULL, NULL);\n";
is(psql_file('first', $script), 0, 'the plan runs from psql -f');
is($node->safe_psql('postgres', q{SELECT status FROM virtuoso.implementation_run ORDER BY started_at DESC LIMIT 1}),
    'SUCCESS', 'first run: SUCCESS');
is($node->safe_psql('postgres', q{SELECT string_agg(step_name || '=' || status, ',' ORDER BY ordinal)
    FROM virtuoso.implementation_log WHERE phase = 'step' AND run_id = (SELECT id FROM virtuoso.implementation_run ORDER BY started_at DESC LIMIT 1)}),
    'customers=SUCCESS,orders=SUCCESS,orders_by_customer=SUCCESS,copy=SUCCESS,check=SUCCESS,dal=SUCCESS',
    'one row per step');
is($node->safe_psql('postgres', q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_customer_idx'::regclass}),
    't', 'the index was built concurrently and is valid');
is($node->safe_psql('postgres', q{SELECT (shop_api.insert_orders(1, 7, 10.5)).id, (shop_api.get_orders(1)).customer_id, shop_api.delete_orders(1)}),
    '1|7|t', 'the scaffolded functions work');
is(psql_file('second', $script), 0, 'the same file again');
is($node->safe_psql('postgres', q{SELECT status || ': ' || state FROM virtuoso.implementation_run ORDER BY started_at DESC LIMIT 1}),
    'SKIPPED: already implemented: every step is applied; nothing ran', 'second run does nothing');
is($node->safe_psql('postgres', q{SELECT count(*) FROM customer}), '500', 'no data copied twice');

# Refusals reach plain psql with their SQLSTATE.
my ($rc, $out, $err) = $node->psql('postgres',
    qq{SELECT * FROM virtuoso.execute_database_implementation(\$plan\$$plan\$plan\$)},
    extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
is($rc, 3, 'the function form refuses a plan with concurrent builds');
like($err, qr/25001.*CALL virtuoso.run_implementation/s, '25001 naming the procedure');
($rc, $out, $err) = $node->psql('postgres',
    qq{BEGIN; CALL virtuoso.run_implementation(\$plan\$$plan\$plan\$, NULL, NULL, NULL); COMMIT;},
    extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
is($rc, 3, 'the procedure refuses a transaction block');
like($err, qr/25001/, '25001');
($rc, $out, $err) = $node->psql('postgres',
    q{CALL virtuoso.run_implementation('{"name": "x", "changes": [{"name": "a", "type": "nope", "definition": "SELECT 1"}, {"name": "a", "type": "sql"}]}')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
is($rc, 3, 'a malformed plan is refused');
like($err, qr/22023.*unknown type "nope".*duplicate step name.*missing definition/s, 'every problem listed');

# A failing concurrent build (duplicates under a unique index): no invalid index stays, and the
# steps before it are undone last first.
$node->safe_psql('postgres', q{CREATE TABLE dup_src (v int); INSERT INTO dup_src VALUES (1), (1)});
my $failing = q{{"name": "failing", "changes": [
    {"name": "t", "type": "create_table", "definition": "CREATE TABLE fail_t (v int)"},
    {"name": "fill", "type": "sql", "definition": "INSERT INTO fail_t SELECT v FROM dup_src", "rollback": "DELETE FROM fail_t"},
    {"name": "col", "type": "alter_table", "definition": "ALTER TABLE fail_t ADD COLUMN w int"},
    {"name": "uniq", "type": "create_index", "definition": "CREATE UNIQUE INDEX fail_t_v ON fail_t (v)"},
    {"name": "after", "type": "create_table", "definition": "CREATE TABLE fail_after (id int)"}],
  "options": {"preserve_data_on_undo": false}}};
is(psql_file('failing', "CALL virtuoso.run_implementation(\$plan\$$failing\$plan\$, NULL, NULL, NULL);\n"), 0,
    'a failing plan reports, it does not raise');
is($node->safe_psql('postgres', q{SELECT string_agg(step_name || '=' || status, ',' ORDER BY ordinal)
    FROM virtuoso.implementation_log WHERE plan_name = 'failing' AND phase IN ('step', 'undo', 'plan')}),
    't=SUCCESS,fill=SUCCESS,col=SUCCESS,uniq=FAILED,undo: col=ROLLED_BACK,undo: fill=ROLLED_BACK,undo: t=ROLLED_BACK,plan: failing=ROLLED_BACK',
    'the failing step stops the plan, the steps done are undone in reverse order');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}), '0', 'no invalid index left');
is($node->safe_psql('postgres', q{SELECT to_regclass('fail_t') IS NULL AND to_regclass('fail_after') IS NULL}), 't',
    'the database is as before the plan');
like($node->safe_psql('postgres', q{SELECT plan_state FROM virtuoso.implementation_log WHERE plan_name = 'failing' AND phase = 'plan'}),
    qr/step "uniq" failed; the steps done \(col, fill, t\) were rolled back/, 'the final row says what state the database is in');

# Stopped half-way (undo off), fixed, resumed from the first unfinished step.
my $resumable = q{{"name": "resume", "changes": [
    {"name": "t", "type": "create_table", "definition": "CREATE TABLE res_t (v int)"},
    {"name": "fill", "type": "sql", "definition": "INSERT INTO res_t SELECT v FROM dup_src", "rollback": "DELETE FROM res_t"},
    {"name": "uniq", "type": "create_index", "definition": "CREATE UNIQUE INDEX res_t_v ON res_t (v)"},
    {"name": "col", "type": "alter_table", "definition": "ALTER TABLE res_t ADD COLUMN w int"}],
  "options": {"undo_on_failure": false}}};
my $resume_script = "CALL virtuoso.run_implementation(\$plan\$$resumable\$plan\$, NULL, NULL, NULL);\n";
is(psql_file('resume1', $resume_script), 0, 'first attempt');
is($node->safe_psql('postgres', q{SELECT status FROM virtuoso.implementation_run WHERE plan_name = 'resume' ORDER BY started_at DESC LIMIT 1}),
    'FAILED', 'stopped at the failing build');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}), '0', 'still no invalid index');
$node->safe_psql('postgres', q{DELETE FROM res_t WHERE ctid = (SELECT min(ctid) FROM res_t)});
is(psql_file('resume2', $resume_script), 0, 'second attempt after the fix');
is($node->safe_psql('postgres', q{SELECT string_agg(step_name || '=' || status, ',' ORDER BY ordinal)
    FROM virtuoso.implementation_log WHERE phase = 'step' AND run_id = (SELECT id FROM virtuoso.implementation_run WHERE plan_name = 'resume' ORDER BY started_at DESC LIMIT 1)}),
    't=SKIPPED,fill=SKIPPED,uniq=SUCCESS,col=SUCCESS', 'resumed from the first unfinished step');
is($node->safe_psql('postgres', q{SELECT count(*) FROM res_t}), '1', 'the data step did not run twice');

# migrate_data with a structured definition calls virtuoso.migrate_data_batched from the
# procedure (checked when the plan runs): a clear 0A000 before anything runs while it is
# missing.  Then, when this build has none, a minimal batched copy that commits per batch
# stands in for it, to check the call the step makes (arguments, a non-atomic CALL).
my $batched = q{{"name": "batched", "changes": [
    {"name": "t", "type": "create_table", "definition": "CREATE TABLE batched_t (id bigint PRIMARY KEY, name text)"},
    {"name": "copy", "type": "migrate_data", "definition": {"source_query": "SELECT id, name FROM src_customer",
      "target_table": "batched_t", "batch_size": 100}, "rollback": "DELETE FROM batched_t"}]}};
if ($node->safe_psql('postgres',
        q{SELECT to_regprocedure('virtuoso.migrate_data_batched(text,text,integer,integer,text,text)') IS NULL}) eq 't')
{
    ($rc, $out, $err) = $node->psql('postgres',
        "CALL virtuoso.run_implementation(\$plan\$$batched\$plan\$, NULL, NULL, NULL)",
        extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
    is($rc, 3, 'a batched migrate_data step without migrate_data_batched is refused');
    like($err, qr/0A000.*migrate_data_batched/s, '0A000 naming migrate_data_batched');
    is($node->safe_psql('postgres', q{SELECT to_regclass('batched_t') IS NULL}), 't', 'nothing ran');
    $node->safe_psql('postgres', q{
CREATE PROCEDURE virtuoso.migrate_data_batched(source_query text, target_table text,
    batch_size int DEFAULT 10000, parallel_workers int DEFAULT 1, key_column text DEFAULT 'id',
    job_name text DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE last bigint; n bigint;
BEGIN
    LOOP
        EXECUTE format('INSERT INTO %s SELECT * FROM (%s) s WHERE $1 IS NULL OR %I > $1 ORDER BY %I LIMIT %s',
                       target_table, source_query, key_column, key_column, batch_size) USING last;
        GET DIAGNOSTICS n = ROW_COUNT;
        EXIT WHEN n = 0;
        EXECUTE format('SELECT max(%I) FROM %s', key_column, target_table) INTO last;
        COMMIT;   -- per batch: fails unless the CALL is non-atomic
    END LOOP;
END $$});
}
is(psql_file('batched', "CALL virtuoso.run_implementation(\$plan\$$batched\$plan\$, NULL, NULL, NULL);\n"), 0,
    'a plan with a batched data step');
is($node->safe_psql('postgres', q{SELECT string_agg(step_name || '=' || status, ',' ORDER BY ordinal)
    FROM virtuoso.implementation_log WHERE plan_name = 'batched' AND phase IN ('step', 'plan')}),
    't=SUCCESS,copy=SUCCESS,plan: batched=SUCCESS', 'the data step ran through migrate_data_batched');
is($node->safe_psql('postgres', q{SELECT count(*) FROM batched_t}), '500', 'every row copied');
is($node->safe_psql('postgres', q{SELECT details->>'rows_moved' FROM virtuoso.implementation_log
    WHERE plan_name = 'batched' AND step_name = 'copy'}), '500', 'the step reports the rows it moved');
like($node->safe_psql('postgres', q{SELECT migration_sql FROM virtuoso.migration_log WHERE name = 'batched/copy'}),
    qr/^CALL virtuoso\.migrate_data_batched\('SELECT id, name FROM src_customer', '"batched_t"', 100, 1, 'id', 'batched\/copy'\)$/,
    'the generated call is recorded as the step\'s migration');

# One run of a plan at a time: while a session's run is not committed, another gets 55P03.
my $one = q{{"name": "once", "changes": [{"name": "t", "type": "create_table", "definition": "CREATE TABLE once_t (id int)"}]}};
my $first = $node->background_psql('postgres', on_error_stop => 0);
$first->query_safe("BEGIN; SELECT count(*) FROM virtuoso.execute_database_implementation(\$plan\$$one\$plan\$)");
($rc, $out, $err) = $node->psql('postgres',
    "SELECT * FROM virtuoso.execute_database_implementation(\$plan\$$one\$plan\$)",
    extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
is($rc, 3, 'a second run of the same plan is refused');
like($err, qr/55P03.*plan "once" is being run by another session/s, '55P03 while the first runs');
$first->query_safe('COMMIT');
$first->quit;

# Different plans never refuse each other, also when their names collide under a 32-bit
# hash ('virtuoso.implementation:p144044' and '...:p5050' have the same hashtext): the second
# got 55P03 "is being run by another session" while the first's transaction was open.  Now
# its step waits for the migration lock the first holds, and succeeds once it commits.
is($node->safe_psql('postgres', q{SELECT hashtext('virtuoso.implementation:p144044') = hashtext('virtuoso.implementation:p5050')}),
    't', 'the two plan names collide under hashtext');
my $colliding = $node->background_psql('postgres', on_error_stop => 0);
$colliding->query_safe(q{BEGIN; SELECT count(*) FROM virtuoso.execute_database_implementation('{"name": "p144044", "changes": [{"name": "t", "type": "create_table", "definition": "CREATE TABLE p144044_t (id int)"}]}')});
my $second = $node->background_psql('postgres', on_error_stop => 0);
$second->query_until(qr/started/, q{\echo started
SELECT count(*) FROM virtuoso.execute_database_implementation('{"name": "p5050", "options": {"lock_timeout": "60s"}, "changes": [{"name": "t", "type": "create_table", "definition": "CREATE TABLE p5050_t (id int)"}]}');
});
my $waiting = 0;
for (1 .. 100)
{
    $waiting = $node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%p5050_t%'});
    last if $waiting;
    usleep(100_000);
}
is($waiting, '1', 'the colliding plan waits for the migration lock instead of being refused');
$colliding->query_safe('COMMIT');
$colliding->quit;
$second->quit;
is($node->safe_psql('postgres', q{SELECT string_agg(status, ',') FROM virtuoso.implementation_run WHERE plan_name = 'p5050'}),
    'SUCCESS', 'and succeeds once the first commits');
is($node->safe_psql('postgres', q{SELECT status FROM virtuoso.execute_database_implementation('{"name": "once", "changes": [{"name": "t", "type": "create_table", "definition": "CREATE TABLE once_t (id int)"}]}') WHERE step_name = 'plan: once'}),
    'SKIPPED', 'after it ended, the plan is implemented');

done_testing();
