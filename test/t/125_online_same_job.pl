# One session at a time runs a batched job: a second call of the same job, single-process or
# parallel, is refused at once with 55006 (it used to run batches beside the first, and a
# parallel loser marked the job FAILED and stopped the winner's workers); the first call
# finishes with exactly the source rows, and the job can be called again afterwards.
# Different jobs never block each other, also when their names collide under hashtext (the
# job's lock was keyed on a hash of its name; it is keyed on its job_id now).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;
use CrashTest;

my $node = new_virtuoso_node('same_job', q{
autovacuum = off
});
sub sq { return $node->safe_psql('postgres', $_[0]); }

sq(q{
CREATE TABLE src (id bigint PRIMARY KEY, payload text);
INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
CREATE TABLE dst1 (id bigint, payload text);
CREATE TABLE dst2 (id bigint, payload text);
CREATE TABLE dst3 (id bigint, payload text);
CREATE TABLE dst4 (id bigint, payload text);
ANALYZE src;
ALTER DATABASE postgres SET virtuoso.batch_pause = '100ms';
});
my $checksum = q{SELECT count(*) || '/' || count(DISTINCT id) || '/' ||
    sum(hashtextextended(id || ':' || payload, 0)::numeric) FROM %s};
my $expected = sq(sprintf($checksum, 'src'));

for my $case ([ 'single', 'dst1', 1 ], [ 'parallel', 'dst2', 2 ])
{
    my ($label, $target, $workers) = @$case;
    my $sql = qq{CALL virtuoso.migrate_data_batched('SELECT * FROM src', '$target', 250,
        parallel_workers => $workers, job_name => '$label')};
    my $first = start_call($node, $sql, "first_$label");
    ok(wait_until($node, qq{SELECT coalesce((SELECT sum(rows_done) FROM virtuoso.batch_job_ranges
            WHERE job_name = '$label'), 0) + coalesce((SELECT rows_done FROM virtuoso.batch_jobs
            WHERE job_name = '$label'), 0) > 0}),
        "$label: the first call is copying");
    my ($rc, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 1,
        extra_params => [ '-v', 'VERBOSITY=verbose' ]);
    isnt($rc, 0, "$label: a second call of the same job fails");
    like($err, qr/55006: job "$label" is being run by another session/,
        "$label: with 55006, naming the job");
    my ($rc1, $out1, $err1) = finish_call($first);
    is($rc1, 0, "$label: the first call finishes") or diag($err1);
    is(sq(qq{SELECT status FROM virtuoso.batch_jobs WHERE job_name = '$label'}), 'SUCCESS',
        "$label: the job succeeded");
    is(sq(sprintf($checksum, $target)), $expected, "$label: the target holds exactly the source rows");
    ($rc, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 1);
    is($rc, 0, "$label: the job can be called again once the first call ended");
    like($err, qr/finished earlier/, "$label: and says it finished earlier");
}

# Two different jobs whose names have the same hashtext run at the same time; both finish.
my ($a, $b) = ('job_10752', 'job_319384');
is(sq(qq{SELECT hashtext('$a') = hashtext('$b')}), 't', 'the two job names collide under hashtext');
my %calls;
for my $case ([ $a, 'dst3' ], [ $b, 'dst4' ])
{
    my ($name, $target) = @$case;
    $calls{$name} = start_call($node, qq{CALL virtuoso.migrate_data_batched('SELECT * FROM src',
        '$target', 250, job_name => '$name')}, "collide_$target");
    ok(wait_until($node, qq{SELECT coalesce((SELECT rows_done FROM virtuoso.batch_jobs
            WHERE job_name = '$name'), 0) > 0 OR NOT EXISTS (SELECT FROM pg_stat_activity
            WHERE application_name = 'collide_$target')}),
        "$name: the call is copying (or has ended)");
}
is(sq(qq{SELECT count(*) FROM virtuoso.batch_jobs WHERE job_name IN ('$a', '$b')
    AND status = 'RUNNING'}), '2', 'both colliding jobs run at the same time');
for my $case ([ $a, 'dst3' ], [ $b, 'dst4' ])
{
    my ($name, $target) = @$case;
    my ($rc, $out, $err) = finish_call($calls{$name});
    is($rc, 0, "$name: the call finishes") or diag($err);
    is(sq(qq{SELECT status FROM virtuoso.batch_jobs WHERE job_name = '$name'}), 'SUCCESS',
        "$name: the job succeeded");
    is(sq(sprintf($checksum, $target)), $expected, "$name: the target holds exactly the source rows");
}

done_testing();
