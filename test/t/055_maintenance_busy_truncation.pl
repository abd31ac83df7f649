# Issue 18: maintenance must not stall on VACUUM's end-of-table truncation of a busy table.
# VACUUM retries the ACCESS EXCLUSIVE lock of its truncation for up to 5 s, outside
# lock_timeout; with pgbench updating a small table all the time that was a 5 s VACUUM.
# Now a table in use is vacuumed with TRUNCATE false (said in the log), and a quiet one is
# still truncated.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use VirtuosoTest;

my $node = new_virtuoso_node('busy_truncation', q{
autovacuum = off
virtuoso.dead_tuple_threshold = 100
virtuoso.dead_tuple_pct = 10
});

# A small table whose end is empty (rows inserted, then deleted: truncatable tail) and whose
# first rows pgbench keeps updating.
sub make_hot
{
    $node->safe_psql('postgres', q{
DROP TABLE IF EXISTS hot;
CREATE TABLE hot (id int PRIMARY KEY, v int NOT NULL DEFAULT 0, pad text);
INSERT INTO hot SELECT g, 0, repeat('x', 200) FROM generate_series(1, 3000) g;
DELETE FROM hot WHERE id > 10;
SELECT pg_stat_force_next_flush();
});
}

my $script = "$PostgreSQL::Test::Utils::tmp_check/hot.sql";
open my $fh, '>', $script or die "$script: $!";
# Each transaction keeps its lock a little while, as an OLTP transaction does.
print $fh q{\set id random(1, 10)
BEGIN;
UPDATE hot SET v = v + 1 WHERE id = :id;
SELECT pg_sleep(0.02);
COMMIT;
};
close $fh;

make_hot();
my ($out, $err) = ('', '');
my $pgbench = IPC::Run::start(
    [ 'pgbench', '-n', '-h', $node->host, '-p', $node->port, '-c', '8', '-T', '10', '-f',
      $script, 'postgres' ],
    '>', \$out, '2>', \$err);

# Let pgbench run, then one maintenance round while it goes on.
usleep(3_000_000);
my $t0 = [ Time::HiRes::gettimeofday() ];
my $rows = $node->safe_psql('postgres', q{
SELECT action || '|' || status FROM virtuoso.perform_maintenance_if_needed()
WHERE tablename = 'hot'});
my $elapsed = Time::HiRes::tv_interval($t0);
is($rows, 'VACUUM|SUCCESS', 'the busy table is vacuumed');
my ($command, $reason, $seconds) = split /\|/, $node->safe_psql('postgres', q{
SELECT command, reason, extract(epoch FROM duration) FROM virtuoso.maintenance_log
WHERE tablename = 'hot' ORDER BY id DESC LIMIT 1});
note("busy table: $command in $seconds s (call $elapsed s); $reason");
like($command, qr/^VACUUM \((ANALYZE, )?TRUNCATE false\) public\.hot$/,
     'without truncation (the command in the log says so)');
like($reason, qr/without truncation: the table is in use \(\d+ lock\(s\) held and \d+ awaited/,
     'and the reason says why');
cmp_ok($seconds, '<', 1, 'the VACUUM of the busy table takes less than a second');
cmp_ok($elapsed, '<', 2, 'and so does the whole call');

$pgbench->finish;
is($pgbench->result(0), 0, 'pgbench ran without error') or diag($err);

# A quiet table is still truncated.
make_hot();
my $pages_before = $node->safe_psql('postgres', q{SELECT pg_relation_size('hot') / 8192});
$node->safe_psql('postgres', 'SELECT * FROM virtuoso.perform_maintenance_if_needed()');
($command, $reason) = split /\|/, $node->safe_psql('postgres', q{
SELECT command, reason FROM virtuoso.maintenance_log
WHERE tablename = 'hot' ORDER BY id DESC LIMIT 1});
my $pages_after = $node->safe_psql('postgres', q{SELECT pg_relation_size('hot') / 8192});
unlike($command, qr/TRUNCATE/, "a quiet table is vacuumed with truncation ($command)");
unlike($reason, qr/without truncation/, 'and the reason does not mention it');
cmp_ok($pages_after, '<', $pages_before, "its empty end is returned ($pages_before -> $pages_after pages)");

# A lock held by the caller's own transaction counts as use too: the VACUUM's worker would
# wait for it.
make_hot();
my $own = $node->safe_psql('postgres', q{
BEGIN;
SELECT count(*) FROM hot;
SELECT status FROM virtuoso.perform_maintenance_if_needed() WHERE tablename = 'hot';
COMMIT;
SELECT command FROM virtuoso.maintenance_log WHERE tablename = 'hot' ORDER BY id DESC LIMIT 1;
});
like($own, qr/SUCCESS\nVACUUM \((ANALYZE, )?TRUNCATE false\) public\.hot$/,
     "the caller's own lock keeps the truncation off");

is($node->safe_psql('postgres', q{SELECT count(*) FROM virtuoso.maintenance_log
                                  WHERE status = 'RUNNING'}), '0', 'no RUNNING row left');
$node->stop;
done_testing();
