# Index advisor against other sessions: a table locked by someone else is reported, not
# waited for, and the hypothetical indexes are never seen by another session's planner.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VirtuosoTest;

my $node = new_virtuoso_node('advisor', "pg_stat_statements.track = top\n");
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_stat_statements;
CREATE TABLE free_t (id int PRIMARY KEY, a int, b text);
INSERT INTO free_t SELECT g, g % 5000, md5(g::text) FROM generate_series(1, 50000) g;
CREATE TABLE locked_t (id int PRIMARY KEY, a int);
INSERT INTO locked_t SELECT g, g % 5000 FROM generate_series(1, 50000) g;
ANALYZE free_t, locked_t;
SELECT pg_stat_force_next_flush();
});
$node->safe_psql('postgres', q{
SELECT pg_stat_reset_single_table_counters('free_t'::regclass);
SELECT pg_stat_reset_single_table_counters('locked_t'::regclass);
SELECT pg_stat_statements_reset();
});
$node->safe_psql('postgres', q{
SELECT count(*) FROM free_t WHERE a = 7;
SELECT count(*) FROM free_t WHERE a = 8;
SELECT count(*) FROM locked_t WHERE a = 9;
});

# Another session holds an ACCESS EXCLUSIVE lock on locked_t.
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE locked_t IN ACCESS EXCLUSIVE MODE;');

my $start = time();
my ($rc, $stdout, $stderr) = $node->psql('postgres',
    q{SET virtuoso.lock_timeout = '300ms';
      SELECT table_name || ' ' || array_to_string(columns, ',') FROM virtuoso.recommend_indexes()});
my $elapsed = time() - $start;
is($rc, 0, 'recommend_indexes succeeds while a table is locked');
like($stderr, qr/statement not analysed \(55P03: .*\): SELECT count\(\*\) FROM locked_t/,
    'the statement on the locked table is reported with 55P03');
is($stdout, 'public.free_t a', 'the other statements are still recommended');
ok($elapsed < 20, "it did not wait for the lock ($elapsed s)");
$locker->query_safe('COMMIT');
$locker->quit;

# Once the lock is gone, the statement is analysed again.
$stdout = $node->safe_psql('postgres',
    q{SELECT string_agg(table_name, ' ' ORDER BY table_name) FROM virtuoso.recommend_indexes()});
is($stdout, 'public.free_t public.locked_t', 'both tables get a recommendation without the lock');

# While one session costs hypothetical indexes over and over, another session's plans never
# see them.
my $adviser = $node->background_psql('postgres');
$adviser->query_until(qr/started/, q{
\echo started
SELECT count(*) FROM generate_series(1, 20000) g,
    LATERAL virtuoso.recommend_indexes_for_query('SELECT * FROM free_t WHERE a = ' || g);
});
my ($seen, $overlapped) = (0, 0);
for (1 .. 100)
{
    my $out = $node->safe_psql('postgres', q{
        SELECT count(*) FROM pg_stat_activity WHERE state = 'active'
           AND query LIKE '%recommend_indexes_for_query(''SELECT%' AND pid <> pg_backend_pid();
        EXPLAIN SELECT * FROM free_t WHERE a = 42;});
    $overlapped++ if $out =~ /^1\n/;
    $seen++ if $out =~ /Index/;
}
ok($overlapped > 0, "the other session was costing meanwhile ($overlapped of 100 plans)");
is($seen, 0, 'no other session plans with a hypothetical index');
# query() returns the pending output of the long query too: one recommendation per call.
my $count = $adviser->query('SELECT 1');
is($count, "20000\n1", 'the advising session finished normally, one recommendation per call');
$adviser->quit;
is($node->safe_psql('postgres',
    q{SELECT count(*) FROM pg_index WHERE indrelid IN ('free_t'::regclass, 'locked_t'::regclass)}),
    '2', 'no index was created (the primary keys only)');

# A role plants IMMUTABLE functions (SQL and PL/pgSQL) that the planner folds, and runs one
# query with each.  They do superuser-only things when a superuser evaluates them: run a
# program, make the role superuser through the runner.  A superuser who then asks for
# recommendations from plain psql gets them, and nothing of that happens: each statement is
# planned as the role that ran it, inside a security-restricted operation.
my $marker = $node->basedir . '/advisor_pwned';
$node->safe_psql('postgres', qq{
CREATE ROLE mallory LOGIN;
CREATE SCHEMA mallory AUTHORIZATION mallory;
GRANT USAGE ON SCHEMA virtuoso TO mallory;
GRANT EXECUTE ON FUNCTION virtuoso.execute_autonomous(text) TO mallory;
CREATE TABLE shared_t (id int, k int);
INSERT INTO shared_t SELECT g, g % 3000 FROM generate_series(1, 60000) g;
ANALYZE shared_t;
GRANT SELECT ON shared_t TO mallory;
SET ROLE mallory;
CREATE FUNCTION mallory.payload() RETURNS int LANGUAGE plpgsql VOLATILE AS \$\$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        COPY (SELECT 1) TO PROGRAM 'touch $marker';
        PERFORM virtuoso.execute_autonomous('ALTER ROLE mallory SUPERUSER');
    END IF;
    RETURN 11;
END \$\$;
CREATE FUNCTION mallory.sql_trap() RETURNS int LANGUAGE sql IMMUTABLE
    AS 'SELECT mallory.payload()';
CREATE FUNCTION mallory.plpgsql_trap() RETURNS int LANGUAGE plpgsql IMMUTABLE
    AS \$\$ BEGIN RETURN mallory.payload(); END \$\$;
RESET ROLE;
SELECT pg_stat_statements_reset();
});
$node->safe_psql('postgres', q{
SELECT count(*) FROM shared_t WHERE k = mallory.sql_trap();
SELECT count(*) FROM shared_t WHERE id = mallory.plpgsql_trap();
}, extra_params => ['-U', 'mallory']);

($rc, $stdout, $stderr) = $node->psql('postgres',
    q{SELECT string_agg(array_to_string(columns, ','), ' ' ORDER BY columns)
      FROM virtuoso.recommend_indexes() WHERE table_name = 'public.shared_t'},
    extra_params => ['-v', 'ON_ERROR_STOP=1']);
is($rc, 0, 'recommend_indexes as superuser succeeds over the trapped statements');
unlike($stderr, qr/ERROR|not analysed/, 'no error, every statement analysed');
is($stdout, 'id k', 'both trapped statements get their index (planned as mallory)');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}),
    'f', 'mallory is not superuser');
ok(!-e $marker, 'no program ran');

$node->stop;
done_testing();
