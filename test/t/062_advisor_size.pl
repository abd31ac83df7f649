# The advisor's B-tree size estimate against the real size of the same indexes built with
# CREATE INDEX (issue 17: the recommended set was 1.9x its estimate): within 15% over
# column types (int4, int8, date, numeric, short, medium and long text, char), NULLs,
# repeated keys (deduplication), several columns (independent, one a function of another, or
# correlated with fewer combinations than their values multiplied, which the advisor finds in
# a sample of the rows) and INCLUDE columns, and for a table never analysed.  The storage
# budget of recommend_indexes() is meant in these real bytes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('advisor_size');
$node->safe_psql('postgres', q{
CREATE TABLE s (
    i4 int4, i8 int8, d date, n numeric(12,2), lc int4, nul int4,
    t_short text, t_mid text, t_long text, c2 char(2), grp int4, region int4, flag bool,
    pk int4, sk int4);
INSERT INTO s
SELECT g,
       g % 1000,
       date '2000-01-01' + g / 100,
       ((g * 7919) % 100000) / 100.0,
       abs(hashint4(g)) % 50,
       CASE WHEN g % 10 < 3 THEN NULL ELSE abs(hashint4(g + 1)) % 20000 END,
       'k' || (abs(hashint4(g + 2)) % 5000),
       md5(g::text),
       repeat('x', 150 + g % 40) || g,
       chr(65 + g % 26) || chr(65 + (g / 26) % 26),
       abs(hashint4(g + 3)) % 5000,
       (abs(hashint4(g + 3)) % 5000) % 20,
       g % 2 = 0,
       1 + ((g / 4) * 13 + (g % 4 + 1) * 7) % 10000,
       1 + (g / 4 + g % 4 + 1) % 500
FROM generate_series(1, 200000) g;
VACUUM ANALYZE s;
-- never analysed nor vacuumed: reltuples unknown, no column statistics
CREATE TABLE fresh (id int4, v text);
INSERT INTO fresh SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
});

my @cases = (
    [ 's', ['i4'] ],             # unique int4
    [ 's', ['i8'] ],             # int8, 200 rows per value: posting lists
    [ 's', ['d'] ],              # date, 100 rows per value
    [ 's', ['n'] ],              # numeric: never deduplicated
    [ 's', ['lc'] ],             # 50 values: long posting lists
    [ 's', ['nul'] ],            # 30% NULL
    [ 's', ['t_short'] ],        # short text, repeated
    [ 's', ['t_mid'] ],          # 33-byte unique text
    [ 's', ['t_long'] ],         # over 127 bytes: 4-byte header, aligned
    [ 's', ['c2'] ],             # char(2)
    [ 's', [ 'i8', 'd' ] ],      # two columns, unique together
    [ 's', [ 'lc', 'd' ] ],      # two columns, about 2 rows per combination
    [ 's', [ 'd', 'i4' ] ],
    [ 's', [ 'nul', 'i8' ] ],    # NULLs in a multi-column key
    [ 's', [ 't_short', 'lc', 'i4' ] ],
    [ 's', [ 'grp', 'region' ] ],        # region a function of grp: 40 rows per pair
    [ 's', [ 'region', 'grp' ] ],
    [ 's', [ 'region', 'grp', 'lc' ] ],  # ... and an independent third column
    [ 's', [ 'flag', 't_mid' ] ],        # two values, then a unique column: unique pairs
    [ 's', [ 'pk', 'sk' ] ],     # correlated, neither a function of the other (each supplier
                                 # delivers some parts): 40,000 pairs, not 200,000
    [ 's', ['d'], [ 'n', 't_mid' ] ],    # INCLUDE: no deduplication
    [ 's', ['i4'], [ 'i8', 'c2' ] ],
    [ 'fresh', ['id'] ],
    [ 'fresh', ['v'] ],
);

my ($estimated_total, $real_total) = (0, 0);
for my $case (@cases)
{
    my ($table, $keys, $include) = @$case;
    $include //= [];
    my $name = "$table(" . join(', ', @$keys) . ')'
      . (@$include ? ' INCLUDE (' . join(', ', @$include) . ')' : '');
    my $estimated = $node->safe_psql('postgres', sprintf(
        q{SELECT estimated_size_bytes FROM virtuoso.hypothetical_index_cost(
            'SELECT 1 FROM %s', '%s', '{%s}', '{%s}')},
        $table, $table, join(',', @$keys), join(',', @$include)));
    $node->safe_psql('postgres', sprintf('CREATE INDEX sized ON %s (%s)%s',
        $table, join(', ', @$keys),
        @$include ? ' INCLUDE (' . join(', ', @$include) . ')' : ''));
    my $real = $node->safe_psql('postgres', q{SELECT pg_relation_size('sized')});
    $node->safe_psql('postgres', 'DROP INDEX sized');
    my $ratio = $estimated / $real;
    ok($ratio >= 0.85 && $ratio <= 1.15,
        sprintf('%s: estimated %d bytes, real %d (%.3f)', $name, $estimated, $real, $ratio));
    $estimated_total += $estimated;
    $real_total += $real;
}
my $ratio = $estimated_total / $real_total;
ok($ratio >= 0.95 && $ratio <= 1.05,
    sprintf('all together: estimated %d bytes, real %d (%.3f)',
        $estimated_total, $real_total, $ratio));

$node->stop;
done_testing();
