# Issue 18, CPU under load: one runner worker serves all the requests of one job (a runner
# session) instead of one worker per request.  A statement-by-statement migration (RUNNING
# row, statements, per-statement rows, final row) and a maintenance call start ONE worker;
# a failed statement still reaches the client with its SQLSTATE and a FAILED row; a statement
# that changes session state (SET, set_config, SET ROLE) ends the session, so the next
# statement runs in a fresh worker with the caller's settings; max_runner_workers = 1 is
# enough for a migration that raises an alert; terminating the caller leaves no worker.
# Workers are counted from the postmaster's own "starting background worker process" lines
# (DEBUG1), as 097 does.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

# Without the pool (100_runner_pool): here a new session's worker is always a new process.
my $node = new_virtuoso_node('runner_session', q{
autovacuum = off
log_min_messages = debug1
virtuoso.runner_idle_timeout = 0
});
sub sq { return $node->safe_psql('postgres', $_[0]); }

# Runner workers started while `$sql` runs (psql, verbose errors), its exit code, output
# and errors.
sub workers_for
{
    my ($sql) = @_;
    my $offset = -s $node->logfile;
    my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
                                       on_error_stop => 1);
    my $log = slurp_file($node->logfile, $offset);
    my $n = () = $log =~ /starting background worker process "db_virtuoso runner/g;
    return ($n, $rc, $out, $err);
}
sub migrate
{
    my ($name, $sql) = @_;
    $sql =~ s/'/''/g;
    return workers_for(qq{SELECT status FROM virtuoso.execute_migration_with_monitoring('$name',
        '$sql', NULL, '{"transactional": false, "lint": "off"}')});
}

# ---- a statement-by-statement migration of 3 statements: one worker -----------------------
my ($n, $rc, $out, $err) = migrate('three',
    'CREATE TABLE three (id int); INSERT INTO three SELECT generate_series(1, 100); VACUUM (ANALYZE) three');
is($rc, 0, 'the migration of 3 statements succeeds') or diag($err);
is($out, 'SUCCESS', 'and says so');
is($n, 1, 'one runner worker for the RUNNING row, the 3 statements, their rows and the final row');
is(sq(q{SELECT status || ' ' || statements_done || '/' || statements_total || ' ' || (SELECT count(*) FROM three)
        FROM virtuoso.migration_log WHERE name = 'three'}), 'SUCCESS 3/3 100', 'its log row is complete');

# Its statement-by-statement rollback (backups committed first, its progress rows, the
# statements, the final row): one worker too.
($n, $rc, $out, $err) = workers_for(q{SELECT status FROM virtuoso.execute_migration_with_monitoring('undone',
    'CREATE TABLE undone (id int); INSERT INTO undone VALUES (1), (2)', 'DROP TABLE undone; SELECT 1',
    '{"transactional": false, "lint": "off"}')});
is($out, 'SUCCESS', 'a statement-by-statement migration with rollback SQL') or diag($err);
($n, $rc, $out, $err) = workers_for(q{SELECT status || ' ' || cardinality(backup_tables)
                                      FROM virtuoso.execute_rollback_with_backup('undone')});
is($rc, 0, 'its rollback succeeds') or diag($err);
is($out, 'ROLLED_BACK 1', 'rolled back, with the backup of its table');
is($n, 1, 'one runner worker for the backup, the rollback statements and their rows');
is(sq(q{SELECT to_regclass('undone') IS NULL}), 't', 'the table is gone');
is(sq(q{SELECT (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %s', backup_tables[1]),
                                                    false, true, '')))[1]::text
        FROM virtuoso.migration_log WHERE name = 'undone'}), '2', 'its rows are in the backup');

# A caller without rights on the log: its rows are written as the extension's owner with a
# pinned search_path, its statements as the caller with its own search_path, in one worker.
sq(q{CREATE ROLE app LOGIN; CREATE SCHEMA app_schema AUTHORIZATION app;
     GRANT USAGE ON SCHEMA virtuoso TO app;
     GRANT EXECUTE ON FUNCTION virtuoso.execute_migration_with_monitoring(text, text, text, jsonb) TO app;
     ALTER ROLE app SET search_path = app_schema});
{
    my $offset = -s $node->logfile;
    my ($rc2, $out2, $err2) = $node->psql('postgres', q{SELECT status FROM virtuoso.execute_migration_with_monitoring('as_app',
        'CREATE TABLE owned (id int); INSERT INTO owned VALUES (1); VACUUM owned', NULL,
        '{"transactional": false, "lint": "off"}')}, extra_params => [ '-U', 'app' ]);
    my $log = slurp_file($node->logfile, $offset);
    my $started = () = $log =~ /starting background worker process "db_virtuoso runner/g;
    is($rc2, 0, 'a role without rights on the log runs a statement-by-statement migration') or diag($err2);
    is($out2, 'SUCCESS', 'successfully');
    is($started, 1, 'in one worker');
    is(sq(q{SELECT pg_get_userbyid(relowner) || ' ' || relnamespace::regnamespace FROM pg_class WHERE relname = 'owned'}),
       'app app_schema', 'its table belongs to the caller, in the caller\'s search_path');
    is(sq(q{SELECT executed_by || ' ' || status FROM virtuoso.migration_log WHERE name = 'as_app'}), 'app SUCCESS',
       'its log row records the caller');
}

# ---- a maintenance call over several tables: one worker ------------------------------------
sq(q{CREATE TABLE m1 (id int); INSERT INTO m1 SELECT generate_series(1, 10000); ANALYZE m1; DELETE FROM m1;
     CREATE TABLE m2 (id int); INSERT INTO m2 SELECT generate_series(1, 10000); ANALYZE m2; DELETE FROM m2;
     CREATE TABLE m3 (id int); INSERT INTO m3 SELECT generate_series(1, 20000);});
sq('SELECT pg_stat_force_next_flush()');
($n, $rc, $out, $err) = workers_for(q{SET virtuoso.maintenance_min_interval = 0;
    SELECT string_agg(tablename || ' ' || action || ' ' || status, ',' ORDER BY tablename)
    FROM virtuoso.perform_maintenance_if_needed() WHERE tablename IN ('m1', 'm2', 'm3')});
is($rc, 0, 'the maintenance call succeeds') or diag($err);
is($out, 'm1 VACUUM SUCCESS,m2 VACUUM SUCCESS,m3 ANALYZE SUCCESS', 'two VACUUMs and an ANALYZE');
is($n, 1, 'one runner worker for the whole maintenance call (statements and log rows)');
is(sq(q{SELECT string_agg(tablename || ' ' || status || ' ' || (finished_at IS NOT NULL), ',' ORDER BY tablename)
        FROM virtuoso.maintenance_log WHERE tablename IN ('m1', 'm2', 'm3')}),
   'm1 SUCCESS true,m2 SUCCESS true,m3 SUCCESS true', 'each action has its closed log row');

# ---- a failing statement mid-job -----------------------------------------------------------
($n, $rc, $out, $err) = migrate('fails',
    'CREATE TABLE fails (id int); SELECT 1 / 0; CREATE TABLE never (id int)');
isnt($rc, 0, 'a migration failing at statement 2 fails');
like($err, qr/ERROR:  22012: division by zero/, 'the client gets the error with its SQLSTATE');
like($err, qr/failed at statement 2 after 1 attempt; recorded as FAILED/, 'and where it was recorded');
is(sq(q{SELECT status || ' ' || sqlstate || ' ' || statements_done || ' ' || error_message
        FROM virtuoso.migration_log WHERE name = 'fails'}), 'FAILED 22012 1 division by zero',
   'the FAILED row has the SQLSTATE, the error and the statements done');
is(sq(q{SELECT to_regclass('fails') IS NOT NULL AND to_regclass('never') IS NULL}), 't',
   'statement 1 stays applied, statement 3 never ran');
is($n, 2, 'the failed statement ends the session: a fresh worker writes the final row');

# A transactional migration starts no worker when it succeeds (its row commits with it); when
# it fails, its FAILED row (kept past the caller's rollback) and its alert share one.
($n, $rc, $out, $err) = workers_for(q{SELECT status FROM virtuoso.execute_migration_with_monitoring('tx_ok',
    'CREATE TABLE tx_ok (id int)', NULL, '{"lint": "off"}')});
is($out, 'SUCCESS', 'a transactional migration succeeds') or diag($err);
is($n, 0, 'without a worker');
($n, $rc, $out, $err) = workers_for(q{SELECT status FROM virtuoso.execute_migration_with_monitoring('tx_fails',
    'CREATE TABLE tx_fails (id int); SELECT 1 / 0', NULL, '{"lint": "off"}')});
like($err, qr/ERROR:  22012: division by zero/, 'a failing transactional migration reports its error');
is(sq(q{SELECT l.status || ' ' || (SELECT count(*) FROM virtuoso.alert_log a WHERE a.object = 'tx_fails')
        FROM virtuoso.migration_log l WHERE l.name = 'tx_fails'}), 'FAILED 1', 'its FAILED row and alert are kept');
is($n, 1, 'one worker for the FAILED row and its alert');

# ---- statements that change session state do not leak into the next statement ------------
sq(q{CREATE ROLE session_other});
for my $case (
    [ 'set',        q{SET work_mem = '77kB'} ],
    [ 'set_config', q{SELECT set_config('work_mem', '77kB', false)} ],
    [ 'set_role',   q{SET ROLE session_other} ],
    [ 'reset_all',  q{SET work_mem = '77kB'; RESET ALL} ])
{
    my ($name, $statement) = @$case;
    ($n, $rc, $out, $err) = migrate("leak_$name",
        "$statement; CREATE TABLE leak_$name AS SELECT current_setting('work_mem') AS w, current_user AS u");
    is($rc, 0, "$name: the migration succeeds") or diag($err);
    is(sq(qq{SELECT w || ' ' || u || ' ' || pg_get_userbyid(c.relowner) FROM leak_$name, pg_class c
             WHERE c.oid = 'leak_$name'::regclass}), '4MB postgres postgres',
       "$name: the next statement runs with the caller's settings and role");
    cmp_ok($n, '>=', 2, "$name: the session ended after it (a new worker)");
}

# ---- max_runner_workers = 1: a failing migration with its alert ----------------------------
sq(q{ALTER SYSTEM SET virtuoso.max_runner_workers = 1; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT current_setting('virtuoso.max_runner_workers') = '1'}), 'budget of one slot');
($n, $rc, $out, $err) = migrate('one_slot', 'CREATE TABLE one_slot (id int); SELECT 1 / 0');
isnt($rc, 0, 'with one slot, the failing migration fails');
like($err, qr/ERROR:  22012: division by zero/, 'with its own error, not 53400');
is(sq(q{SELECT count(*) FROM virtuoso.alert_log WHERE kind = 'migration_failed' AND object = 'one_slot'}), '1',
   'its alert is written');
($n, $rc, $out, $err) = migrate('one_slot_ok', 'CREATE TABLE one_slot_ok (id int); VACUUM one_slot_ok');
is($rc, 0, 'with one slot, a statement-by-statement migration succeeds') or diag($err);
is($n, 1, 'in one worker');
sq(q{ALTER SYSTEM RESET virtuoso.max_runner_workers; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT current_setting('virtuoso.max_runner_workers') = '4'}), 'budget back to 4');

# ---- terminating the caller leaves no worker behind ----------------------------------------
my $caller = $node->background_psql('postgres', on_error_stop => 0);
$caller->query_until(qr/started/, q{
\echo started
SELECT virtuoso.execute_migration_with_monitoring('killed',
    'CREATE TABLE killed (id int); SELECT pg_sleep(60)', NULL, '{"transactional": false, "lint": "off"}');
});
ok(wait_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity
                        WHERE backend_type = 'db_virtuoso runner' AND query LIKE '%pg_sleep(60)%'}),
   'the session worker runs the second statement');
my $caller_pid = sq(q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%execute_migration_with_monitoring(''killed''%'
                      AND backend_type = 'client backend'});
sq("SELECT pg_terminate_backend($caller_pid)");
ok(wait_until($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner'}, '0'),
   'terminating the caller stops its worker');
ok(wait_until($node, q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = 0
                        AND classid = 1447645780}, '0'), 'and its slot is free');
eval { $caller->quit };  # its backend is gone

$node->stop;
done_testing();
