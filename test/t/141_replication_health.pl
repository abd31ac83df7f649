# Replication and HA rows of check_database_health on a primary with a streaming standby: an
# inactive slot with the WAL it retains, standby lag that appears and clears (on the primary
# from pg_stat_replication, on the standby from its replay position), paused replay, failing
# WAL archiving, a recovery conflict that cancels a standby query when a migration's lock is
# replayed, the standby's risky conflict settings; and on the standby the functions that
# write fail with 25006 while the read-only ones work.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VirtuosoTest;
use Time::HiRes qw(usleep);

my $conf = q{
shared_preload_libraries = 'db_virtuoso,pg_stat_statements'
max_worker_processes = 32
virtuoso.enable_maintenance_worker = off
archive_mode = on
archive_command = 'exit 1'
wal_receiver_status_interval = 1s
};
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION db_virtuoso;
CREATE TABLE public.items (id int PRIMARY KEY, v text);
INSERT INTO public.items SELECT g, 'v' || g FROM generate_series(1, 1000) g;
CREATE ROLE monitor LOGIN IN ROLE pg_monitor;
CREATE ROLE plain LOGIN;
GRANT USAGE ON SCHEMA virtuoso TO monitor, plain;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA virtuoso TO monitor, plain;
});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', q{
archive_mode = off
max_standby_streaming_delay = 1s
hot_standby_feedback = off
});
$standby->start;
$primary->wait_for_catchup($standby);

# Rows of one check as "object|severity" lines, from a node.
sub findings
{
    my ($node, $check, $args, $user) = @_;
    $args //= '';
    my ($rc, $out, $err) = $node->psql('postgres', qq{SELECT object, severity, value, message
        FROM virtuoso.check_database_health($args) WHERE check_name = '$check' ORDER BY object},
        extra_params => [ '-U', $user // 'postgres' ]);
    die "check_database_health failed: $err" if $rc;
    return $out;
}
sub wait_for
{
    my ($what, $cond) = @_;
    for (1 .. 300)
    {
        return 1 if $cond->();
        usleep(100_000);
    }
    diag("timed out waiting for $what");
    return 0;
}

# ---- slots --------------------------------------------------------------------------------
$primary->safe_psql('postgres', q{SELECT pg_create_physical_replication_slot('stale', true)});
$primary->safe_psql('postgres', q{INSERT INTO public.items SELECT g, repeat('x', 200) FROM generate_series(1001, 30000) g});
my $retained = $primary->safe_psql('postgres',
    q{SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) FROM pg_replication_slots WHERE slot_name = 'stale'});
cmp_ok($retained, '>', 4_000_000, "the inactive slot holds WAL ($retained bytes)");
my $slot = findings($primary, 'replication_slot_inactive');
like($slot, qr/^slot stale\|WARN\|(\d+)\|inactive physical slot stale retains .* of WAL \(restart_lsn [0-9A-F\/]+, wal_status reserved\)$/,
    'an inactive slot is reported with the WAL it retains');
my ($bytes) = $slot =~ /^slot stale\|WARN\|(\d+)\|/;
cmp_ok($bytes // 0, '>=', $retained, "with its retained bytes ($bytes)");
my $half = int($retained / 2);
like(findings($primary, 'replication_slot_inactive', "slot_retained_bytes => $half"),
    qr/^slot stale\|WARN\|\d+\|.*more than the bound of/, 'over the bound, the message says so');
like(findings($primary, 'replication_slot_inactive', 'slot_retained_bytes => 1000'), qr/^slot stale\|CRITICAL\|/,
    'four times over the bound is CRITICAL');
is(findings($primary, 'replication_slot_inactive', '', 'plain'), '', 'a role without pg_read_all_stats sees no slot');
like($primary->safe_psql('postgres', q{SELECT string_agg(check_name, ',') FROM virtuoso.check_database_health()},
    extra_params => [ '-U', 'plain' ]), qr/replication_checks_skipped/, 'and is told why');
like(findings($primary, 'replication_slot_inactive', '', 'monitor'), qr/^slot stale\|/, 'pg_monitor sees it');
$primary->safe_psql('postgres', q{SELECT pg_drop_replication_slot('stale')});
is(findings($primary, 'replication_slot_inactive'), '', 'a dropped slot is gone from the findings');

# ---- archiving ----------------------------------------------------------------------------
$primary->safe_psql('postgres', q{SELECT pg_switch_wal()});
ok(wait_for('the archiver to fail', sub { findings($primary, 'wal_archiving_failing') =~ /^archiver\|CRITICAL\|\d+\|archive_command failed/ }),
    'failing WAL archiving is reported');
$primary->append_conf('postgresql.conf', "archive_command = 'exit 0'");
$primary->reload;
ok(wait_for('archiving to succeed', sub { findings($primary, 'wal_archiving_failing') eq '' }),
    'and clears once archiving succeeds');

# ---- lag ----------------------------------------------------------------------------------
$standby->append_conf('postgresql.conf', "recovery_min_apply_delay = '3s'");
$standby->reload;
my $n = 0;
my $write = sub { $n++; $primary->safe_psql('postgres', "UPDATE public.items SET v = 'lag$n' WHERE id = 1"); };
ok(wait_for('lag on the primary', sub { $write->(); findings($primary, 'replication_lag', "replication_lag => '1s'") =~ /^standby standby \(local\)\|WARN\|[\d.]+\|standby standby is behind: write lag .* replay lag 00:00:0[2-9]/ }),
    'replay lag of the standby appears on the primary');
ok(wait_for('lag on the standby', sub { $write->(); findings($standby, 'standby_replay_lag', "replication_lag => '1s'") =~ /^recovery\|WARN\|[\d.]+\|this standby has received .* of WAL it has not replayed/ }),
    'and on the standby, from its replay position');
$standby->append_conf('postgresql.conf', "recovery_min_apply_delay = 0");
$standby->reload;
ok(wait_for('the lag to clear', sub { $write->(); findings($primary, 'replication_lag', "replication_lag => '1s'") eq '' }),
    'the lag clears on the primary');
$primary->wait_for_catchup($standby);
is(findings($standby, 'standby_replay_lag', "replication_lag => '1s'"), '', 'and on the standby');

# ---- paused replay ------------------------------------------------------------------------
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
ok(wait_for('replay to pause', sub { findings($standby, 'replay_paused') =~ /^recovery\|WARN\|\|WAL replay is (pause requested|paused)/ }),
    'paused replay is reported');
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
is(findings($standby, 'replay_paused'), '', 'and clears when resumed');

# ---- a migration's lock cancels a standby query -------------------------------------------
like(findings($standby, 'standby_conflict_settings'),
    qr/^settings\|INFO\|\|hot_standby_feedback = off, max_standby_streaming_delay = 1s.*cancels standby queries on its table after 1s/,
    'the standby says its conflict settings let a migration cancel its queries');
my $reader = $standby->background_psql('postgres', on_error_stop => 0);
$reader->query_safe('BEGIN; SELECT count(*) FROM public.items;');
$primary->safe_psql('postgres', q{SELECT status FROM virtuoso.execute_migration_with_monitoring('add_note',
    'ALTER TABLE public.items ADD COLUMN note text', 'ALTER TABLE public.items DROP COLUMN note')});
ok(wait_for('the conflict', sub { findings($standby, 'recovery_conflicts') =~ /^database postgres\|WARN\|[1-9]\d*\|.*cancelled by recovery conflicts .*lock [1-9]/ }),
    'the standby query cancelled by the replayed migration is a recovery conflict');
$reader->quit;
$primary->wait_for_catchup($standby);

# ---- on the standby: writes refused, reads work -------------------------------------------
for my $call (
    [ 'execute_migration_with_monitoring', q{SELECT virtuoso.execute_migration_with_monitoring('on_standby', 'CREATE TABLE public.x (id int)')},
      qr/migrations cannot run on a hot standby/ ],
    [ 'run_migration', q{CALL virtuoso.run_migration('on_standby', 'CREATE TABLE public.x (id int)')},
      qr/migrations cannot run on a hot standby/ ],
    [ 'execute_rollback_with_backup', q{SELECT virtuoso.execute_rollback_with_backup('add_note')},
      qr/rollbacks cannot run on a hot standby/ ],
    [ 'execute_top_level', q{SELECT virtuoso.execute_top_level('CREATE TABLE public.x (id int)')},
      qr/cannot execute CREATE TABLE in a read-only transaction/ ],
    [ 'perform_maintenance_if_needed', q{SELECT * FROM virtuoso.perform_maintenance_if_needed()},
      qr/maintenance cannot run on a hot standby/ ])
{
    my ($name, $sql, $message) = @$call;
    my ($rc, $out, $err) = $standby->psql('postgres', $sql,
        extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
    is($rc, 3, "$name on a standby fails from psql");
    like($err, qr/ERROR:\s+25006:/, "$name on a standby: 25006") or diag($err);
    like($err, $message, "$name on a standby says why");
    note("$name on a standby: $err");
}
for my $call (
    [ 'check_database_health', q{SELECT count(*) >= 0 FROM virtuoso.check_database_health()} ],
    [ 'report_html', q{SELECT strpos(virtuoso.report_html(), 'on a standby (in recovery)') > 0} ],
    [ 'validate_data_integrity', q{SELECT status FROM virtuoso.validate_data_integrity('[{"name": "ids", "type": "unique", "table": "public.items", "column": "id"}]')} ],
    [ 'lint_migration', q{SELECT count(*) > 0 FROM virtuoso.lint_migration('ALTER TABLE public.items ADD COLUMN z int NOT NULL DEFAULT 1')} ],
    [ 'verify_migration_integrity', q{SELECT bool_and(status = 'PASS') FROM virtuoso.verify_migration_integrity('add_note')} ],
    [ 'perform_maintenance_if_needed (dry run)', q{SELECT count(*) >= 0 FROM virtuoso.perform_maintenance_if_needed(dry_run => true)} ])
{
    my ($name, $sql) = @$call;
    my ($rc, $out, $err) = $standby->psql('postgres', $sql, extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
    is($rc, 0, "$name works on a standby") or diag($err);
    like($out, qr/^(t|PASS)$/, "$name on a standby: $out");
}

$standby->stop;
$primary->stop;
done_testing();
