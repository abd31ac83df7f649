# Hypothetical index OIDs never collide with a real relation's: with the OID counter set so
# that a real index gets the OID a hypothetical one would have used, the advisor still tells
# which index a plan uses.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('advisor_oids');
$node->safe_psql('postgres', q{
CREATE TABLE t (id int, k int, v int);
INSERT INTO t SELECT g, g % 5000, g % 7 FROM generate_series(1, 100000) g;
ANALYZE t;
});

# The next index created gets exactly `oid`: set the counter with pg_resetwal.
sub index_with_oid
{
    my ($name, $oid) = @_;
    $node->stop;
    command_ok([ 'pg_resetwal', '-o', $oid, $node->data_dir ], "OID counter set to $oid");
    $node->start;
    $node->safe_psql('postgres', "CREATE INDEX $name ON t (k)");
    return $node->safe_psql('postgres', "SELECT '$name'::regclass::oid");
}

# A plan that uses the real index on k, costed with a hypothetical index on v that it does
# not use: index_used must be false, whatever OID the real index has.
my $query = q{SELECT index_used FROM virtuoso.hypothetical_index_cost(
    'SELECT * FROM t WHERE k = 5', 't', '{v}')};
my $plan = q{EXPLAIN (COSTS OFF) SELECT * FROM t WHERE k = 5};

# The first OID of the former fixed range (0xFFF00000 + i).
my $oid = index_with_oid('t_k_low', 4293918720);
is($oid, '4293918720', 'the real index has the OID chosen');
like($node->safe_psql('postgres', $plan), qr/t_k_low/, 'the plan uses the real index');
is($node->safe_psql('postgres', $query), 'f', 'the hypothetical index is not reported as used');
$node->safe_psql('postgres', 'DROP INDEX t_k_low');

# The top of the OID space, where hypothetical OIDs are now taken from.
$oid = index_with_oid('t_k_top', 4294967294);
is($oid, '4294967294', 'the real index has the highest OID');
is($node->safe_psql('postgres', $query), 'f',
    'the hypothetical index is not reported as used at the top either');
# And a hypothetical index the plan does use is still found.
is($node->safe_psql('postgres', q{SELECT index_used FROM virtuoso.hypothetical_index_cost(
    'SELECT * FROM t WHERE v = 3 AND id = 5', 't', '{id}')}), 't',
    'a used hypothetical index is reported');

$node->stop;
done_testing();
