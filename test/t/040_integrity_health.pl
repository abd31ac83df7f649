# validate_data_integrity under a user's cancel, and the health checks that need other
# sessions or many transaction IDs: long-running and idle-in-transaction sessions,
# transaction-id and multixact age.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

# Small freeze ages so that a test can reach half of them; autovacuum off so that nothing
# freezes behind the test's back (the ages stay below the forced anti-wraparound limit).
my $node = new_virtuoso_node('integrity', q{
autovacuum = off
autovacuum_freeze_max_age = 100000
autovacuum_multixact_freeze_max_age = 10000
});

# ---- a user's cancel ends the whole validate_data_integrity call ----------------------
my $session = $node->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/, q{
\echo started
SELECT * FROM virtuoso.validate_data_integrity('[{"name": "slow", "query": "SELECT count(*) FROM pg_sleep(300)"}, {"name": "next", "query": "SELECT 0"}]');
});
my $caller_query = q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%validate_data_integrity%pg_sleep(300)%'
                     AND state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()};
ok(wait_until($node, "SELECT count(*) = 1 FROM ($caller_query) c"), 'the validation is running');
my $caller = $node->safe_psql('postgres', $caller_query);
$node->safe_psql('postgres', "SELECT pg_cancel_backend($caller)");
ok(wait_until($node, "SELECT count(*) = 0 FROM ($caller_query) c"), 'pg_cancel_backend ends the call');
my $after = $session->query('SELECT current_setting(\'transaction_read_only\')');
is($after, 'off', 'the cancelled session is usable and not left read-only');
$after = $session->query(q{SELECT count(*) FROM pg_sleep(0.5)});
is($after, '1', 'and no rule timer fires later');
$session->quit;

# ---- sessions -----------------------------------------------------------------------------
my $idle = $node->background_psql('postgres');
$idle->query_safe('BEGIN');
$idle->query_safe('SELECT txid_current()');
my $busy = $node->background_psql('postgres', on_error_stop => 0);
$busy->query_until(qr/started/, q{
\echo started
SELECT pg_sleep(300) AS long_sleeper;
});
ok(wait_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%long_sleeper%' AND state = 'active' AND pid <> pg_backend_pid()}),
   'a long statement is running');
sleep 2;
my $findings = $node->safe_psql('postgres', q{
SELECT check_name || ' ' || severity || ' ' || (message LIKE '%long_sleeper%' OR message LIKE '%txid_current%')
FROM virtuoso.check_database_health(long_running => '1s', idle_in_transaction => '1s')
WHERE check_name IN ('long_running_query', 'idle_in_transaction') ORDER BY 1});
is($findings, "idle_in_transaction WARN true\nlong_running_query WARN true",
   'a statement running and a session idle in its transaction longer than the limits are reported');
$findings = $node->safe_psql('postgres', q{
SELECT count(*) FROM virtuoso.check_database_health()
WHERE check_name IN ('long_running_query', 'idle_in_transaction')});
is($findings, '0', 'below the default limits (5 min, 1 min) they are not');
my $remedy = $node->safe_psql('postgres', q{
SELECT remedy FROM virtuoso.check_database_health(long_running => '1s', idle_in_transaction => '1s')
WHERE check_name = 'idle_in_transaction'});
like($remedy, qr/^SELECT pg_terminate_backend\(\d+\);/, 'the remedy names the session');
$idle->query_safe('COMMIT');
$idle->quit;
$node->safe_psql('postgres', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%long_sleeper%' AND pid <> pg_backend_pid()});
$busy->quit;

# ---- transaction-id and multixact age -------------------------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE aging (id int PRIMARY KEY, v int);
CREATE TABLE frozen (id int PRIMARY KEY);
INSERT INTO aging SELECT g, 0 FROM generate_series(1, 10) g;
INSERT INTO frozen VALUES (1);
-- Each iteration commits: one transaction ID each.
CREATE PROCEDURE burn_xids(n int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. n LOOP
        PERFORM txid_current();
        COMMIT;
    END LOOP;
END $$;
-- A row locked FOR SHARE by the transaction and then updated in a subtransaction gets a
-- multixact (the lock must survive a rollback of the subtransaction).
CREATE PROCEDURE burn_multixacts(n int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. n LOOP
        PERFORM 1 FROM aging WHERE id = 1 FOR SHARE;
        BEGIN
            UPDATE aging SET v = v + 1 WHERE id = 1;
        EXCEPTION WHEN OTHERS THEN RAISE;
        END;
        COMMIT;
    END LOOP;
END $$;
});
my $wrap = q{SELECT check_name || ' ' || severity || ' ' || object FROM virtuoso.check_database_health()
             WHERE check_name LIKE '%wraparound' AND (object LIKE 'table %' OR object = 'database postgres') ORDER BY 1};
is($node->safe_psql('postgres', $wrap), '', 'a young cluster has no wraparound findings');

$node->safe_psql('postgres', 'CALL burn_multixacts(6000)');
$node->safe_psql('postgres', 'CALL burn_xids(55000)');
$node->safe_psql('postgres', 'VACUUM (FREEZE) frozen');
# The database's ages follow its oldest table, so they stay old; the frozen table is young.
is($node->safe_psql('postgres', $wrap),
   "multixact_wraparound WARN database postgres\nmultixact_wraparound WARN table public.aging\n"
   . "xid_wraparound WARN database postgres\nxid_wraparound WARN table public.aging",
   'past half of the freeze ages, the database and the old table are reported, the frozen table is not');
my $message = $node->safe_psql('postgres', q{SELECT message || ' | ' || remedy FROM virtuoso.check_database_health()
    WHERE check_name = 'xid_wraparound' AND object = 'table public.aging'});
like($message, qr/transaction ID age of \d+, [5-9]\d\.\d% of autovacuum_freeze_max_age \(100000\).*VACUUM \(FREEZE, VERBOSE\) public\.aging;/,
     'the message gives the age against autovacuum_freeze_max_age and the remedy');

$node->stop;
done_testing();
