# The maintenance window and the maintenance role, for the function and the scheduler.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('window', q{
autovacuum = off
virtuoso.enable_maintenance_worker = on
virtuoso.maintenance_naptime = 1s
virtuoso.database_names = 'postgres'
});

sub make_bloated
{
    my ($table, $owner) = @_;
    $node->safe_psql('postgres', qq{
CREATE TABLE $table (id int);
INSERT INTO $table SELECT generate_series(1, 3000);
DELETE FROM $table WHERE id > 500;
} . ($owner ? "ALTER TABLE $table OWNER TO $owner;" : ''));
}

sub set_and_reload
{
    my ($sql) = @_;
    $node->safe_psql('postgres', $sql);
    $node->reload;
    sleep(2);    # the scheduler's round under way ends; new sessions read the new value
}

# A window that is closed now (it opens in two hours, in the server's time zone).
my $closed = $node->safe_psql('postgres', q{
    SELECT to_char(now() + interval '2 hours', 'HH24:MI') || '-' ||
           to_char(now() + interval '3 hours', 'HH24:MI')});
set_and_reload("ALTER SYSTEM SET virtuoso.maintenance_window = '$closed'");
make_bloated('outside');
is($node->safe_psql('postgres', q{
    SELECT status || ' ' || reason FROM virtuoso.perform_maintenance_if_needed()
    WHERE tablename = 'outside'}),
   "SKIPPED outside the maintenance window $closed",
   'outside the window the function does nothing and says why');
is($node->safe_psql('postgres', q{
    SELECT status FROM virtuoso.perform_maintenance_if_needed(dry_run => true)
    WHERE tablename = 'outside'}),
   'SKIPPED', 'and a dry run says the same');
sleep(3);
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM virtuoso.maintenance_log WHERE tablename = 'outside'}),
   '0', 'the scheduler does nothing outside the window');

# A window open now.
my $open = $node->safe_psql('postgres', q{
    SELECT to_char(now() - interval '1 hour', 'HH24:MI') || '-' ||
           to_char(now() + interval '1 hour', 'HH24:MI')});
set_and_reload("ALTER SYSTEM SET virtuoso.maintenance_window = '$open'");
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                       WHERE tablename = 'outside' AND status = 'SUCCESS'
                         AND triggered_by = 'scheduler'}),
   'inside the window the scheduler vacuums');

# The scheduler acts as virtuoso.maintenance_role, a NOLOGIN role here: its tables are
# done, the others are not touched.
$node->safe_psql('postgres', 'CREATE ROLE maint_role NOLOGIN');
set_and_reload(q{ALTER SYSTEM SET virtuoso.maintenance_role = 'maint_role'});
make_bloated('role_owned', 'maint_role');
make_bloated('not_owned');
ok(wait_until($node, q{SELECT count(*) = 1 FROM virtuoso.maintenance_log
                       WHERE tablename = 'role_owned' AND status = 'SUCCESS'
                         AND executed_by = 'maint_role'}),
   'the scheduler works as virtuoso.maintenance_role');
sleep(2);
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM virtuoso.maintenance_log WHERE tablename = 'not_owned'}),
   '0', 'tables the role may not vacuum are left alone');
is($node->safe_psql('postgres', q{
    SELECT n_dead_tup > 0 FROM pg_stat_user_tables WHERE relname = 'not_owned'}),
   't', 'and keep their dead tuples');

# A role that does not exist: logged once, nothing done.
set_and_reload(q{ALTER SYSTEM SET virtuoso.maintenance_role = 'no_such_role'});
make_bloated('no_role');
sleep(4);
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM virtuoso.maintenance_log WHERE tablename = 'no_role'}),
   '0', 'nothing is done as a role that does not exist');
my $log = slurp_file($node->logfile);
my $count = () = $log =~ /role "no_such_role" of virtuoso.maintenance_role does not exist/g;
is($count, 1, 'which is logged once');

$node->stop;
done_testing();
