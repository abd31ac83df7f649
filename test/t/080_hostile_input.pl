# Hostile input, no crash: a seeded generator feeds every function and procedure of schema
# virtuoso (read from pg_proc, so later ones are covered too) malformed and adversarial
# arguments in hostile contexts. Every call must end in a result or an ERROR with a proper
# SQLSTATE; the postmaster never restarts; the log has no PANIC, TRAP or signal deaths;
# backends run under an address-space limit so a runaway allocation cannot bring the OOM
# killer. The generator and the classes are described in HostileInput.pm.
#   VIRTUOSO_FUZZ_SEED   seed (default 20261130; printed)
#   VIRTUOSO_FUZZ_CALLS  number of calls (default 3000; the bench runs many more)
#   VIRTUOSO_FUZZ_TIMEOUT  statement_timeout of each call in seconds (default 20)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;
use HostileInput;
use Encode qw(encode_utf8);

my $seed = $ENV{VIRTUOSO_FUZZ_SEED} // 20261130;
my $calls = $ENV{VIRTUOSO_FUZZ_CALLS} // 3000;
my $timeout = $ENV{VIRTUOSO_FUZZ_TIMEOUT} // 20;    # per call, seconds

my $node = new_virtuoso_node('hostile', q{
restart_after_crash = on
log_min_messages = warning
});
$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');

my $work = PostgreSQL::Test::Utils::tempdir;
my $fuzz = HostileInput->new(
    seed => $seed, calls => $calls, timeout => $timeout, work_dir => $work,
    psql => [ 'psql', '-d', $node->connstr('postgres') ],
    log_file => $node->logfile,
    say => sub { note(encode_utf8($_[0])) });
diag("hostile input: seed $seed, $calls calls (VIRTUOSO_FUZZ_SEED, VIRTUOSO_FUZZ_CALLS)");

my $limit = $fuzz->limit_memory;
like($limit, qr/^\d+$/, "backends run under an address-space limit ($limit bytes)");
$node->safe_psql('postgres', HostileInput::fixture_sql());

# The same seed gives the same calls.
my @catalog = $fuzz->load_catalog;
cmp_ok(scalar @catalog, '>=', 10, 'the catalogue of schema virtuoso drives the generator ('
      . scalar(@catalog) . ' functions and procedures)');
{
    my @a = map { HostileInput->new(seed => $seed, work_dir => $work) } 1 .. 2;
    my @scripts;
    for my $g (@a)
    {
        $g->{catalog} = \@catalog;
        $g->{batch_no} = 1;
        push @scripts, $g->batch_script(map { $g->generate_call("c$_", $catalog[ $g->rnd(scalar @catalog) ]) } 1 .. 200);
    }
    is($scripts[0], $scripts[1], 'the generator is reproducible: the same seed gives the same calls');
}

my $summary = $fuzz->run;
my $report = $fuzz->report($summary);
diag(encode_utf8($report));

is($summary->{calls}, $calls + 6 * int(($calls + 99) / 100), 'every generated call was run');
is($summary->{restarts}, 0, 'the postmaster never restarted');
for my $class (qw(CRASH HANG XX000 00000 SILENT TIMEOUT OOM INVARIANT LOG))
{
    is($summary->{classes}{$class} // 0, 0, "no call in class $class");
}
my %reached = map { $_ => 1 } keys %{ $summary->{per_fn} };
my @missed = grep { !$reached{ $_->{name} } } @catalog;
is(join(', ', map { $_->{name} } @missed), '', 'every function and procedure was called');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server answers after the campaign');

done_testing();
