# migrate_data_batched waits while a standby lags: with virtuoso.batch_max_replay_lag set, a
# standby whose replay is paused (pg_wal_replay_pause) makes the copy pause before its next
# batch, with the reason in virtuoso.progress; when replay resumes, so does the copy, and
# the target ends with exactly the source rows.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use VirtuosoTest;
use CrashTest;

my $primary = PostgreSQL::Test::Cluster->new('lag_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', q{
shared_preload_libraries = 'db_virtuoso'
max_worker_processes = 32
virtuoso.enable_maintenance_worker = off
autovacuum = off
});
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION db_virtuoso;
CREATE TABLE src (id int PRIMARY KEY, payload text);
INSERT INTO src SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 60000) g;
CREATE TABLE dst (id int, payload text);
});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('lag_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
sub sq { return $primary->safe_psql('postgres', $_[0]); }

$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
ok($standby->poll_query_until('postgres', q{SELECT pg_get_wal_replay_pause_state() = 'paused'}),
    'standby replay paused');

sq(q{ALTER DATABASE postgres SET virtuoso.batch_max_replay_lag = '1s'});
sq(q{ALTER DATABASE postgres SET virtuoso.batch_pause = '100ms'});
my $call = start_call($primary,
    q{CALL virtuoso.migrate_data_batched('SELECT * FROM src', 'dst', 2000, job_name => 'lagging')},
    'lag_copy');
ok(wait_until($primary, q{SELECT count(*) = 1 FROM virtuoso.progress
    WHERE job = 'lagging' AND paused_because LIKE 'standby replay lag % ms > 1000 ms'}),
    'the copy pauses for the standby, and says so');
my $done = sq(q{SELECT done FROM virtuoso.progress WHERE job = 'lagging'});
cmp_ok($done, '<', 60000, "paused after $done of 60000 rows");
sleep(2);
is(sq(q{SELECT done FROM virtuoso.progress WHERE job = 'lagging'}), $done,
    'no batch while the standby lags');

$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
my ($rc, $out, $err) = finish_call($call);
is($rc, 0, 'the copy finishes once replay resumes') or diag($err);
is(sq(q{SELECT count(*) || '/' || count(DISTINCT id) || '/' || sum(hashtext(payload)::bigint) FROM dst}),
    sq(q{SELECT count(*) || '/' || count(DISTINCT id) || '/' || sum(hashtext(payload)::bigint) FROM src}),
    'the target holds exactly the source rows');

$standby->stop;
$primary->stop;
done_testing();
