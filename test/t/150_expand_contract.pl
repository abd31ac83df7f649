# Expand/contract of a column (issue 14) under writers and a crash: int -> bigint of a NOT
# NULL column with a default while pgbench updates and inserts through the old column name
# the whole time; kill -9 of the expand mid-backfill, restart, called again it resumes after
# the committed batches; contract swaps the columns while pgbench goes on; pgbench sees no
# failed transaction and every row equals its shadow copy (written in the same transactions);
# the index of the column is rebuilt concurrently for the new one under the writers.
#
# EXPAND_ROWS sets the table size (100k by default, 30k under CI=true).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VirtuosoTest;
use CrashTest;

my $rows = $ENV{EXPAND_ROWS} // ($ENV{CI} ? 30_000 : 100_000);
my $node = new_virtuoso_node('expand', q{
autovacuum = off
});
sub sq { return $node->safe_psql('postgres', $_[0]); }

sq(qq{
CREATE TABLE ev (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0, note text);
INSERT INTO ev SELECT g, g % 100000, 'n' || g FROM generate_series(1, $rows) g;
CREATE TABLE ev_shadow (id bigint PRIMARY KEY, v bigint NOT NULL);
INSERT INTO ev_shadow SELECT id, v FROM ev;
CREATE SEQUENCE ev_ids START 10000000;
CREATE INDEX ev_v ON ev (v);
ANALYZE ev;
});

# 1. Expand, slowed down, killed with kill -9 in the middle of the backfill.
sq(q{ALTER DATABASE postgres SET virtuoso.batch_pause = '30ms'});
my $call = start_call($node,
    q{CALL virtuoso.expand_column_change('ev', 'v', 'bigint', batch_size => 2000)}, 'expand_call');
ok(wait_until($node, q{SELECT rows_backfilled > 0 FROM virtuoso.column_changes WHERE change_id = 'cc1'}),
    'expand: backfilling');
# Meanwhile no other session works on the same change.
my ($brc, $bout, $berr) = $node->psql('postgres',
    q{CALL virtuoso.expand_column_change('ev', 'v', 'bigint')}, extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
like($berr, qr/55006: column change cc1 is being worked on by another session/, 'busy: a second expand is refused at once');
($brc, $bout, $berr) = $node->psql('postgres',
    q{SELECT virtuoso.abort_column_change('cc1')}, extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
like($berr, qr/55006: column change cc1 is being worked on by another session/, 'busy: abort is refused while expand runs');
ok(kill9(backend_pid($node, 'expand_call', 'client backend')), 'expand: backend killed with kill -9');
my ($rc, $out, $err) = finish_call($call);
isnt($rc, 0, 'expand: the killed call reports a failure');
ok(restart_after_crash($node), 'expand: server back after crash recovery');
my ($phase, $done) = split /\|/, sq(q{SELECT phase, rows_backfilled FROM virtuoso.column_changes WHERE change_id = 'cc1'});
is($phase, 'BACKFILLING', 'expand: left BACKFILLING');
cmp_ok($done, '>', 0, "expand: $done rows backfilled before the kill");
cmp_ok($done, '<', $rows, 'expand: the kill came before the end');
is(sq(q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'ev'::regclass}), '1', 'expand: the sync trigger survived');
is(change_phases($node, 'cc1'),
    'expand=SUCCESS backfill=RUNNING', 'log: the killed backfill phase is visible (RUNNING)');

# 2. pgbench writes through the old column name from now on, with a shadow of every change.
my $writers = start_writers($node, <<"SQL");
\\set id random(1, $rows)
BEGIN;
UPDATE ev SET v = v + 1 WHERE id = :id;
UPDATE ev_shadow SET v = v + 1 WHERE id = :id;
WITH n AS (SELECT nextval('ev_ids') AS id)
INSERT INTO ev (id, v) SELECT id, :id FROM n;
INSERT INTO ev_shadow (id, v) SELECT currval('ev_ids'), :id;
END;
SQL

# 3. Called again, the expand resumes after the committed batches and ends READY.
sq(q{ALTER DATABASE postgres RESET virtuoso.batch_pause});
($rc, $out, $err) = $node->psql('postgres',
    q{CALL virtuoso.expand_column_change('ev', 'v', 'bigint', batch_size => 2000)},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
is($rc, 0, 'resume: called again') or diag($err);
like($err, qr/resuming column change cc1 \(BACKFILLING\)/, 'resume: it continues the same change');
is(sq(q{SELECT phase || ':' || rows_differing FROM virtuoso.column_changes WHERE change_id = 'cc1'}),
    'READY:0', 'resume: READY, parity holds');
is(change_phases($node, 'cc1'),
    'expand=SUCCESS backfill=FAILED backfill=SUCCESS build=SUCCESS parity=SUCCESS',
    'log: the resume settled the killed phase FAILED and logged its own');
like(sq(q{SELECT error_message FROM virtuoso.migration_log WHERE name = 'expand:cc1:backfill' AND status = 'FAILED'}),
    qr/ended before it finished/, 'log: the killed phase says why');

# 4. Contract while pgbench goes on.
($rc, $out, $err) = $node->psql('postgres', q{CALL virtuoso.contract_column_change('cc1')},
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
is($rc, 0, 'contract: done under writers') or diag($err);
like($out, qr/is now v bigint; default moved; NOT NULL; index ev_v rebuilt/, 'contract: result');

my $w = stop_writers($writers);
is(join(',', grep { $_ != 0 } @{ $w->{runs} }), '', 'pgbench: no failed transaction')
    or diag($w->{out} . $w->{err});
ok($w->{ok} && @{ $w->{runs} }, 'pgbench: every run ended well') or diag($w->{err});
like($w->{out}, qr/number of transactions actually processed: [1-9]/, 'pgbench: wrote meanwhile');
is(sq(q{SELECT format_type(atttypid, atttypmod) || ':' || attnotnull FROM pg_attribute
        WHERE attrelid = 'ev'::regclass AND attname = 'v'}), 'bigint:true', 'after: v is bigint NOT NULL');
is(sq(q{SELECT count(*) FROM ev FULL JOIN ev_shadow s USING (id) WHERE ev.v IS DISTINCT FROM s.v}),
    '0', 'after: every row equals its shadow (no write lost during expand or contract)');
is(sq(q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'ev'::regclass}), '0', 'after: trigger gone');
is(sq(q{SELECT pg_get_indexdef(indexrelid) || ':' || indisvalid FROM pg_index WHERE indexrelid = 'ev_v'::regclass}),
    'CREATE INDEX ev_v ON public.ev USING btree (v):true', 'after: the index of v was rebuilt for the new column');
is(sq(q{SET enable_seqscan = off; SELECT count(*) FROM ev WHERE v >= 0}), sq(q{SELECT count(*) FROM ev}),
    'after: the rebuilt index holds every row');
is(sq(q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'ev'::regclass AND attnum > 0 AND NOT attisdropped}),
    '3', 'after: the old column is dropped');

$node->stop;
done_testing();
