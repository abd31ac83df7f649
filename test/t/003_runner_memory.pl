# The runner's memory does not grow with the number of statements of a script: under an
# address-space limit of the server's processes, execute_autonomous runs a script of
# 100,000 statements (SPI keeps the plans of every statement of one string until the call
# ends; the runner runs them one at a time).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;

my $node = new_virtuoso_node('memory');
$node->safe_psql('postgres', 'CREATE TABLE counted (n int)');

# 512 MB of address space for every process the postmaster forks from now on.
my $ppid = $node->safe_psql('postgres', q{SELECT split_part(pg_read_file('postmaster.pid'), E'\n', 1)});
my $bytes = 512 * 1024 * 1024;
my @cmd = ('prlimit', "--pid=$ppid", "--as=$bytes:$bytes");
my $owner = getpwuid((stat "/proc/$ppid")[4]);
@cmd = ('runuser', '-u', $owner, '--', @cmd) if $> == 0 && $owner ne 'root';
is(system(@cmd), 0, 'address space of the server processes limited to 512 MB');

my ($rc, $out, $err) = $node->psql('postgres',
    q{SELECT virtuoso.execute_autonomous(repeat('INSERT INTO counted VALUES (1);', 100000))},
    on_error_stop => 1);
is($rc, 0, 'a script of 100,000 statements runs') or diag($err);
is($out, 'INSERT 0 1', 'the command tag is that of the last statement');
is($node->safe_psql('postgres', 'SELECT count(*) FROM counted'), '100000', 'every statement ran');

# Earlier results do not pile up: 2,000 statements of 1,000 rows each, then one row.
is($node->safe_psql('postgres',
    q{SELECT virtuoso.execute_autonomous(repeat('SELECT g FROM generate_series(1, 1000) g;', 2000) || 'SELECT 42')}),
    'SELECT 1', 'the tag is that of the last statement');

done_testing();
