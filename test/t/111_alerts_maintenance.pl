# A maintenance action that really fails reaches a LISTENing client as one maintenance_failed
# alert (kind, severity, object, the SQLSTATE), stays one alert while the scheduler's rounds
# keep failing on the table, and is resolved (an INFO "resolved:" alert) once the table's
# maintenance succeeds again.  Both ways an action fails: a VACUUM (ANALYZE) and a plain
# ANALYZE, whose index expression raises an error while a switch is on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(usleep);
use VirtuosoTest;

# The scheduler starts only once the tables are set up (new_virtuoso_node leaves it off).
my $node = new_virtuoso_node('alerts_maintenance', q{
virtuoso.maintenance_naptime = 1
virtuoso.maintenance_min_interval = 0
autovacuum = off
});

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN virtuoso_alerts');
my @received;    # decoded payloads, in order
sub drain
{
    my $out = $listener->query_safe('SELECT 1');
    for my $line (split /\n/, $out)
    {
        next unless $line =~ /^Asynchronous notification "virtuoso_alerts" with payload "(.*)" received/;
        push @received, decode_json($1);
    }
}
sub poll_alert
{
    my ($match, $what) = @_;
    for (1 .. 300)
    {
        drain();
        my @hit = grep { $match->($_) } @received;
        return $hit[0] if @hit;
        usleep(100_000);
    }
    fail("no alert received: $what");
    return undef;
}

# ANALYZE evaluates index expressions over its sample: with the switch on, it fails (P0001).
# t_vacuum has dead rows (a VACUUM (ANALYZE) is due), t_analyze only new ones (an ANALYZE).
$node->safe_psql('postgres', q{
CREATE TABLE fail_switch (failing boolean NOT NULL);
INSERT INTO fail_switch VALUES (false);
CREATE FUNCTION touchy(int) RETURNS int LANGUAGE plpgsql IMMUTABLE SET search_path = public AS $$
BEGIN
    IF (SELECT failing FROM fail_switch) THEN
        RAISE EXCEPTION 'touchy refuses %', $1;
    END IF;
    RETURN $1;
END $$;
CREATE TABLE t_vacuum (a int);
CREATE INDEX ON t_vacuum (touchy(a));
INSERT INTO t_vacuum SELECT g FROM generate_series(1, 5000) g;
DELETE FROM t_vacuum WHERE a <= 3000;
CREATE TABLE t_analyze (a int);
CREATE INDEX ON t_analyze (touchy(a));
INSERT INTO t_analyze SELECT g FROM generate_series(1, 5000) g;
UPDATE fail_switch SET failing = true;
});
ok(wait_until($node, q{SELECT count(*) = 2 FROM pg_stat_user_tables
    WHERE relname IN ('t_vacuum', 't_analyze') AND n_mod_since_analyze >= 5000}),
    'the statistics show the changes');
is($node->safe_psql('postgres', q{SELECT string_agg(tablename || ':' || action, ',' ORDER BY tablename)
    FROM virtuoso.perform_maintenance_if_needed(true) WHERE tablename IN ('t_vacuum', 't_analyze')}),
    't_analyze:ANALYZE,t_vacuum:VACUUM', 'an ANALYZE and a VACUUM are due');

$node->safe_psql('postgres', 'ALTER SYSTEM SET virtuoso.enable_maintenance_worker = on');
$node->reload;

for my $table (qw(t_vacuum t_analyze))
{
    my $alert = poll_alert(sub { $_[0]{kind} eq 'maintenance_failed' && $_[0]{object} eq "public.$table" },
        "maintenance_failed of $table");
    next unless $alert;
    is($alert->{severity}, 'WARN', "$table: maintenance_failed is WARN");
    is($alert->{database}, 'postgres', "$table: the payload names the database");
    is($alert->{details}{sqlstate}, 'P0001', "$table: details carry the SQLSTATE");
    like($alert->{details}{command}, qr/\b(VACUUM|ANALYZE)\b.*public\.$table/, "$table: and the command");
    like($alert->{message}, qr/touchy refuses/, "$table: the message carries the error");
    is($node->safe_psql('postgres', qq{SELECT count(*) FROM virtuoso.alert_log
        WHERE id = $alert->{id} AND kind = 'maintenance_failed' AND object = 'public.$table'}),
        '1', "$table: the alert_log row exists");
}

# More rounds fail on the same tables: no second alert while the first is unresolved.
ok(wait_until($node, q{SELECT count(*) >= 3 FROM virtuoso.maintenance_log
    WHERE tablename = 't_analyze' AND status = 'FAILED'}),
    'the rounds go on failing on t_analyze');
ok(wait_until($node, q{SELECT count(*) >= 2 FROM virtuoso.maintenance_log
    WHERE tablename = 't_vacuum' AND status = 'FAILED'}),
    'and on t_vacuum');
drain();
is(scalar(grep { $_->{kind} eq 'maintenance_failed' } @received), 2,
    'one notification per failing table, not one per round');
is($node->safe_psql('postgres', q{SELECT string_agg(object, ',' ORDER BY object) FROM virtuoso.alert_log
    WHERE kind = 'maintenance_failed'}),
    'public.t_analyze,public.t_vacuum', 'one alert_log row per failing table');
is($node->safe_psql('postgres', q{SELECT count(*) FROM virtuoso.alerts WHERE kind = 'maintenance_failed'}),
    '2', 'both open');

# Fixed: the next successful action resolves the alert, once.
$node->safe_psql('postgres', 'UPDATE fail_switch SET failing = false');
for my $table (qw(t_vacuum t_analyze))
{
    my $alert = poll_alert(sub { $_[0]{kind} eq 'maintenance_failed' && $_[0]{severity} eq 'INFO'
            && $_[0]{object} eq "public.$table" }, "resolution of $table");
    next unless $alert;
    like($alert->{message}, qr/^resolved: maintenance of public\.$table failed/, "$table: the resolution says so");
}
ok(wait_until($node, q{SELECT count(*) = 0 FROM virtuoso.alerts WHERE kind = 'maintenance_failed'}),
    'nothing open about them any more');
is($node->safe_psql('postgres', q{SELECT count(*) FROM virtuoso.maintenance_log
    WHERE tablename IN ('t_vacuum', 't_analyze') AND status = 'SUCCESS'}) >= 2 ? 'yes' : 'no',
    'yes', 'their maintenance succeeded');
sleep 3;    # more rounds
drain();
is(scalar(grep { $_->{kind} eq 'maintenance_failed' } @received), 4,
    'two alerts and two resolutions in all');
is($node->safe_psql('postgres', q{SELECT count(*) FROM virtuoso.alert_log WHERE kind = 'maintenance_failed'}),
    '4', 'and as many alert_log rows');

# A health round leaves maintenance alerts alone (they are resolved by maintenance only).
my $last = $node->safe_psql('postgres', 'SELECT max(id) FROM virtuoso.alert_log');
# (one transaction: no round may analyze the new rows before the switch is on)
$node->safe_psql('postgres', 'BEGIN; INSERT INTO t_analyze SELECT g FROM generate_series(1, 5000) g;
    UPDATE fail_switch SET failing = true; COMMIT');
poll_alert(sub { $_[0]{kind} eq 'maintenance_failed' && $_[0]{severity} eq 'WARN'
        && $_[0]{object} eq 'public.t_analyze' && $_[0]{id} > $last }, 'a new failure after the resolution');
$node->append_conf('postgresql.conf', "virtuoso.health_check_interval = 1\n");
$node->reload;
sleep 3;
is($node->safe_psql('postgres', q{SELECT count(*) FROM virtuoso.alerts WHERE kind = 'maintenance_failed'}),
    '1', 'the new failure stays open through health rounds');

$listener->quit;
$node->stop;
done_testing();
