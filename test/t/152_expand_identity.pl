# Expand/contract of an identity column: items.id int GENERATED ALWAYS AS IDENTITY -> bigint
# while pgbench inserts rows that take their id from the identity (and updates others) the
# whole time.  Expand used to refuse identity columns; contract now moves the identity to
# the new column (ALWAYS as it was, the sequence under its name with its options and its
# position), so that every insert, during and after the change, gets a new id: no failed
# transaction, no duplicate, every row equal to its shadow (written in the same transaction
# with the id the insert got), and the next insert continues after the last id.
#
# EXPAND_ID_ROWS sets the table size (200k by default, 30k under CI=true).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $rows = $ENV{EXPAND_ID_ROWS} // ($ENV{CI} ? 30_000 : 200_000);
my $node = new_virtuoso_node('expand_identity', q{
autovacuum = off
virtuoso.lock_timeout = 300ms
});
sub sq { return $node->safe_psql('postgres', $_[0]); }

sq(qq{
CREATE TABLE items (id int GENERATED ALWAYS AS IDENTITY (INCREMENT BY 2 CACHE 10) PRIMARY KEY,
                    v int NOT NULL);
INSERT INTO items (v) SELECT g % 1000 FROM generate_series(1, $rows) g;
CREATE TABLE items_shadow (id bigint PRIMARY KEY, v int NOT NULL);
INSERT INTO items_shadow SELECT id, v FROM items;
ANALYZE items;
});
my $max_before = sq(q{SELECT max(id) FROM items});

# Writers through the identity: every insert's id comes from it, recorded in the shadow.
my $writers = start_writers($node, <<"SQL");
\\set id random(1, $rows)
BEGIN;
UPDATE items SET v = v + 1 WHERE id = :id * 2 - 1;
UPDATE items_shadow SET v = v + 1 WHERE id = :id * 2 - 1;
WITH i AS (INSERT INTO items (v) VALUES (:id % 1000) RETURNING id, v)
INSERT INTO items_shadow SELECT id, v FROM i;
END;
SQL

sub call
{
    my ($sql) = @_;
    return $node->psql('postgres', $sql,
        extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
}

my ($rc, $out, $err) = call(q{CALL virtuoso.expand_column_change('items', 'id', 'bigint', batch_size => 5000)});
is($rc, 0, 'expand: READY under writers') or diag($err);
is(sq(q{SELECT phase || ':' || rows_differing FROM virtuoso.column_changes WHERE change_id = 'cc1'}),
    'READY:0', 'expand: parity holds');
($rc, $out, $err) = call(q{CALL virtuoso.contract_column_change('cc1')});
is($rc, 0, 'contract: done under writers') or diag($err);
like($out, qr/id of public\.items is now id bigint; NOT NULL; identity \(GENERATED ALWAYS\) moved, sequence public\.items_id_seq at \d+; primary key items_pkey moved/,
    'contract: result names the identity moved') or diag($out);
sleep(1);  # the writers go on after the contract

my $w = stop_writers($writers);
cmp_ok(scalar(@{ $w->{runs} }), '>', 0, 'pgbench: ' . scalar(@{ $w->{runs} }) . ' runs during the change');
is(join(',', grep { $_ != 0 } @{ $w->{runs} }), '', 'pgbench: no failed transaction in any run')
    or diag($w->{out} . $w->{err});
ok($w->{ok}, 'pgbench: every run ended well') or diag($w->{err});
cmp_ok((grep { $_ > 0 } @{ $w->{processed} }) + 0, '>', 0, 'pgbench: wrote meanwhile');

is(sq(q{SELECT format_type(atttypid, atttypmod) || ':' || attnotnull || ':' || attidentity::text
        FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'id'}),
    'bigint:true:a', 'after: id is bigint NOT NULL GENERATED ALWAYS AS IDENTITY');
is(sq(q{SELECT pg_get_serial_sequence('items', 'id') || ':' || seqtypid::regtype || ':' || seqincrement
        || ':' || seqcache || ':' || seqmax FROM pg_sequence
        WHERE seqrelid = pg_get_serial_sequence('items', 'id')::regclass}),
    'public.items_id_seq:bigint:2:10:9223372036854775807',
    'after: the sequence keeps its name and options, with the range of bigint');
is(sq(q{SELECT count(*) = count(DISTINCT id) FROM items}), 't', 'after: no duplicate id');
cmp_ok(sq(q{SELECT count(*) FROM items WHERE id > } . $max_before), '>', 0,
    'after: inserts got new ids during the change');
is(sq(q{SELECT count(*) FROM items i FULL JOIN items_shadow s USING (id) WHERE i.v IS DISTINCT FROM s.v}),
    '0', 'after: every row equals its shadow (no insert or update lost, none doubled)');
my $max = sq(q{SELECT max(id) FROM items});
my $next = sq(q{INSERT INTO items (v) VALUES (0) RETURNING id});
cmp_ok($next, '>', $max, "after: the next insert gets a new id ($next > $max)");
($rc, $out, $err) = call(q{INSERT INTO items (id, v) VALUES (1, 0)});
like($err, qr/428C9/, 'after: the identity is still GENERATED ALWAYS');
is(sq(q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 AND NOT attisdropped}),
    '2', 'after: the old column is dropped');
is(change_phases($node, 'cc1'),
    'expand=SUCCESS backfill=SUCCESS build=SUCCESS parity=SUCCESS contract=SUCCESS',
    'log: every phase recorded');

$node->stop;
done_testing();
