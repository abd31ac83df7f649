# Issue 18, CPU under load: with virtuoso.runner_idle_timeout, a runner worker whose job is
# done waits (holding its runner slot) for the next job of the same database and user, from
# any session, instead of exiting: a worker start (fork, backend start, caches, page faults,
# exit) costs the busy server more than most jobs.  Checked from the outside: jobs of two
# sessions in a row start one worker; the worker runs each job with that caller's identity and
# settings; another user gets a worker of its own; a job that changes session state or fails
# does not go back to the pool; an idle worker gives its slot to a caller in line and its
# database to DROP DATABASE; the idle timeout ends it; terminating or cancelling the caller of
# a reused worker stops it.  Workers are counted from the postmaster's DEBUG1 lines, as 099 does.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('runner_pool', q{
autovacuum = off
log_min_messages = debug1
virtuoso.runner_idle_timeout = 30s
});
sub sq { return $node->safe_psql('postgres', $_[0]); }

my $runners = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner'};
my $slots = q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = 0
              AND classid = 1447645780 AND granted};

# Sends every worker of the pool away (they exit on SIGTERM like any backend) and waits until
# they and their slots are gone: each part below starts from an empty pool, whatever the
# machine's speed.
sub clear_pool
{
    sq(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner'});
    return wait_until($node, "SELECT ($runners) + ($slots)", '0');
}

# Runner workers started while `$sql` runs in a new session (as `$user`), its exit code,
# output and errors.
sub workers_for
{
    my ($sql, $user, $db) = @_;
    my $offset = -s $node->logfile;
    my ($rc, $out, $err) = $node->psql($db // 'postgres', "\\set VERBOSITY verbose\n$sql",
                                       on_error_stop => 1,
                                       extra_params => [ '-U', $user // 'postgres' ]);
    my $log = slurp_file($node->logfile, $offset);
    my $n = () = $log =~ /starting background worker process "db_virtuoso runner/g;
    return ($n, $rc, $out, $err);
}
sub migrate
{
    my ($name, $sql, $user, $prefix) = @_;
    $sql =~ s/'/''/g;
    return workers_for(($prefix // '') . qq{SELECT status FROM virtuoso.execute_migration_with_monitoring('$name',
        '$sql', NULL, '{"transactional": false, "lint": "off"}')}, $user);
}

# ---- two sessions in a row: one worker ------------------------------------------------------
my ($n, $rc, $out, $err) = migrate('first', 'CREATE TABLE first (id int); VACUUM first');
is($rc, 0, 'a statement-by-statement migration succeeds') or diag($err);
is($n, 1, 'in one new worker');
is(sq($runners) . ' ' . sq($slots), '1 1', 'the worker waits in the pool, holding one runner slot');
is(sq(q{SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner'}), 'Extension',
   'idle, on its latch');
($n, $rc, $out, $err) = migrate('second', 'CREATE TABLE second (id int); VACUUM second',
                                undef, "SET statement_timeout = '1h';\nSET search_path = public, pg_catalog;\n");
is($rc, 0, 'the next session\'s migration succeeds') or diag($err);
is($n, 0, 'in the pooled worker: no worker started');
is(sq(q{SELECT count(*) FROM pg_tables WHERE tablename IN ('first', 'second')}), '2', 'both tables exist');

# Each job runs with its own caller's settings: the previous caller's search_path and
# statement_timeout are not left in the worker.
($n, $rc, $out, $err) = migrate('settings',
    q{CREATE TABLE settings AS SELECT current_setting('search_path') AS path,
                                      current_setting('statement_timeout') AS timeout});
is($n, 0, 'a third session reuses it too');
is(sq(q{SELECT path || ' | ' || timeout FROM settings}), '"$user", public | 0',
   'with that session\'s settings, not the previous caller\'s');

# ---- another user: a worker of its own, with its own identity --------------------------------
sq(q{CREATE ROLE pool_user LOGIN; GRANT CREATE ON SCHEMA public TO pool_user;
     GRANT USAGE ON SCHEMA virtuoso TO pool_user;
     GRANT EXECUTE ON FUNCTION virtuoso.execute_migration_with_monitoring(text, text, text, jsonb) TO pool_user;
     GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA virtuoso TO pool_user;
     GRANT USAGE ON ALL SEQUENCES IN SCHEMA virtuoso TO pool_user});
($n, $rc, $out, $err) = migrate('by_user', 'CREATE TABLE by_user (id int); VACUUM by_user', 'pool_user');
is($rc, 0, 'another user\'s migration succeeds') or diag($err);
is($n, 1, 'in a worker of its own (pooled workers serve one database and user)');
is(sq(q{SELECT tableowner FROM pg_tables WHERE tablename = 'by_user'}), 'pool_user', 'as that user');
($n, $rc, $out, $err) = migrate('by_postgres', 'CREATE TABLE by_postgres (id int); VACUUM by_postgres');
is($n, 0, 'the first user\'s pooled worker is still there for it');
is(sq(q{SELECT tableowner FROM pg_tables WHERE tablename = 'by_postgres'}), 'postgres', 'and works as that user');
is(sq($runners) . ' ' . sq($slots), '2 2', 'two pooled workers, two slots');

# ---- a job that may leave session state, or that failed, does not go back --------------------
# The PID of the one worker in the pool, once there is one; whether a PID is gone.
sub pooled_worker
{
    wait_until($node, "SELECT ($runners) = 1", 't');
    return sq(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'db_virtuoso runner'});
}
sub gone { return wait_until($node, "SELECT count(*) FROM pg_stat_activity WHERE pid = $_[0]", '0'); }

ok(clear_pool(), 'pool emptied');
migrate('before_set', 'CREATE TABLE before_set (id int); VACUUM before_set');
my $pooled = pooled_worker();
($n, $rc, $out, $err) = migrate('sets', q{CREATE TABLE sets (id int); SET work_mem = '77MB'});
is($rc, 0, 'a migration ending with SET succeeds, in the pooled worker') or diag($err);
ok(gone($pooled), 'the worker that ran the SET exits instead of going back to the pool');
is(sq("SELECT ($runners) = ($slots)"), 't', 'every worker left holds its slot');

ok(clear_pool(), 'pool emptied');
migrate('before_unlock', 'CREATE TABLE before_unlock (id int); VACUUM before_unlock');
$pooled = pooled_worker();
($n, $rc, $out, $err) = migrate('unlocks', q{CREATE TABLE unlocks (id int); SELECT pg_advisory_unlock_all()});
is($rc, 0, 'a migration calling pg_advisory_unlock_all succeeds') or diag($err);
ok(gone($pooled), 'the worker that ran it exits (the unlock dropped its runner slot)');
is(sq("SELECT ($runners) = ($slots)"), 't', 'every worker left holds its slot');

ok(clear_pool(), 'pool emptied');
migrate('before_fail', 'CREATE TABLE before_fail (id int); VACUUM before_fail');
$pooled = pooled_worker();
($n, $rc, $out, $err) = migrate('fails', 'CREATE TABLE fails (id int); SELECT 1 / 0');
like($err, qr/ERROR:  22012: division by zero/, 'a failing migration fails with its error');
ok(gone($pooled), 'the worker whose statement failed exits');
($n, $rc, $out, $err) = migrate('fresh', q{CREATE TABLE fresh AS SELECT current_setting('work_mem') AS w});
is(sq(q{SELECT w FROM fresh}), '4MB', 'no later job sees the SET');

# ---- the idle timeout ends it ----------------------------------------------------------------
sq(q{ALTER SYSTEM SET virtuoso.runner_idle_timeout = '1s'; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT current_setting('virtuoso.runner_idle_timeout') = '1s'}), 'idle timeout 1 s');
ok(clear_pool(), 'pool emptied');
($n, $rc, $out, $err) = migrate('short_wait', 'CREATE TABLE short_wait (id int); VACUUM short_wait');
is($rc, 0, 'a migration after the reload') or diag($err);
ok(wait_until($node, "SELECT ($runners) + ($slots)", '0'),
   'its worker is gone after the new virtuoso.runner_idle_timeout, with its slot');
sq(q{ALTER SYSTEM RESET virtuoso.runner_idle_timeout; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT current_setting('virtuoso.runner_idle_timeout') = '30s'}), 'idle timeout 30 s again');

# ---- an idle worker gives its slot to a caller in line ---------------------------------------
ok(clear_pool(), 'pool emptied');
sq(q{ALTER SYSTEM SET virtuoso.max_runner_workers = 1; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT current_setting('virtuoso.max_runner_workers') = '1'}), 'budget of one slot');
($n, $rc, $out, $err) = migrate('slot_a', 'CREATE TABLE slot_a (id int); VACUUM slot_a');
is(sq($slots), '1', 'the pooled worker holds the only slot');
($n, $rc, $out, $err) = migrate('slot_b', 'CREATE TABLE slot_b (id int); VACUUM slot_b', 'pool_user');
is($rc, 0, 'another user\'s migration still gets a worker (no 53400)') or diag($err);
is($n, 1, 'a new one, once the idle worker gave the slot back');
sq(q{ALTER SYSTEM RESET virtuoso.max_runner_workers; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT current_setting('virtuoso.max_runner_workers') = '4'}), 'budget back to 4');

# ---- DROP DATABASE is not refused because of idle workers -------------------------------------
ok(clear_pool(), 'pool emptied');
sq(q{CREATE DATABASE pooled_db});
$node->safe_psql('pooled_db', 'CREATE EXTENSION db_virtuoso');
($n, $rc, $out, $err) = workers_for(q{SELECT status FROM virtuoso.execute_migration_with_monitoring('in_db',
    'CREATE TABLE in_db (id int); VACUUM in_db', NULL, '{"transactional": false, "lint": "off"}')},
    undef, 'pooled_db');
is($out, 'SUCCESS', 'a migration in a second database') or diag($err);
is(sq(q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'pooled_db'}), '1',
   'leaves its pooled worker connected to it');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE pooled_db', extra_params => [ '-U', 'pool_user' ]);
like($err, qr/must be owner of database pooled_db/, 'another user cannot drop it');
is(sq(q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'pooled_db'}), '1',
   'nor send its pooled worker away by trying');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE pooled_db');
is($rc, 0, 'DROP DATABASE succeeds: the idle worker is asked to exit first') or diag($err);

# ---- terminating or cancelling the caller of a reused worker stops it ------------------------
# A caller whose statement-by-statement migration `name` sleeps in a worker reused from the
# pool: its psql session, its backend's PID and the worker's PID.
sub sleeping_in_pooled_worker
{
    my ($name) = @_;
    ok(clear_pool(), 'pool emptied');
    migrate("warm_$name", "CREATE TABLE warm_$name (id int); VACUUM warm_$name");
    my $pooled_pid = pooled_worker();
    ok($pooled_pid, 'a worker waits in the pool');
    my $caller = $node->background_psql('postgres', on_error_stop => 0);
    $caller->query_until(qr/started/, qq{
\\echo started
SELECT virtuoso.execute_migration_with_monitoring('$name',
    'CREATE TABLE $name (id int); SELECT pg_sleep(60)', NULL, '{"transactional": false, "lint": "off"}');
});
    ok(wait_until($node, qq{SELECT count(*) = 1 FROM pg_stat_activity
                            WHERE pid = $pooled_pid AND query LIKE '%pg_sleep(60)%'}),
       "$name: the pooled worker runs the sleeping statement");
    my $caller_pid = sq(qq{SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'
                           AND query LIKE '%execute_migration_with_monitoring(''$name''%'});
    return ($caller, $caller_pid, $pooled_pid);
}

my ($caller, $caller_pid, $pooled_pid) = sleeping_in_pooled_worker('killed');
sq("SELECT pg_terminate_backend($caller_pid)");
ok(wait_until($node, $runners, '0'), 'terminating its caller stops it');
ok(wait_until($node, $slots, '0'), 'and its slot is free');
eval { $caller->quit };

($caller, $caller_pid, $pooled_pid) = sleeping_in_pooled_worker('cancelled');
sq("SELECT pg_cancel_backend($caller_pid)");
ok(gone($pooled_pid), 'cancelling its caller stops it');
$out = sq(q{SELECT status FROM virtuoso.migration_log WHERE name = 'cancelled'});
is($out, 'FAILED', 'the cancelled migration is recorded as FAILED');
is(sq(q{SELECT count(*) FROM pg_tables WHERE tablename = 'cancelled'}), '1',
   'its first statement stays done (statement by statement)');
$caller->quit;

$node->stop;
done_testing();
