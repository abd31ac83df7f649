#!/usr/bin/env perl
# Load run shared by TAP 095_load and the bench's load.sh (issue 10 item 4, issue 18):
# pgbench TPC-B traffic runs once, continuously, and SESSIONS pgbench clients calling the
# extension (migrations transactional and not, validation rules, maintenance, the index
# advisor) are switched off and on beside it in windows of LOAD_WINDOW_SECONDS, in blocks
# off, on, on, off. Each traffic transaction counts in the window in which it ended, the first
# second of each window (the switch-over) left out; tps with / without the calls = median
# over the on / off windows, p50/p99 over all their transactions. Every extension call goes
# through load.call(), which records its SQLSTATE (00000 on success) in load.calls and lets
# the error through as a row: pgbench 15 would stop a client at the first error, and this run
# is about which error classes occur.
# Connection: PGHOST, PGPORT, PGDATABASE, PGUSER of the environment; pgbench and psql in PATH.
# Prints "figure NAME VALUE" and "check NAME ok|FAIL DETAIL" lines; exit status 0.
use strict;
use warnings;
use File::Temp qw(tempdir);
use IPC::Run;
use POSIX ();
use Time::HiRes qw(gettimeofday tv_interval);

my %o = (
    sessions     => $ENV{LOAD_SESSIONS}     // 16,
    seconds      => $ENV{LOAD_SECONDS}      // 60,
    base_seconds => $ENV{LOAD_BASE_SECONDS} // 20,
    clients      => $ENV{LOAD_CLIENTS}      // 4,
    scale        => $ENV{LOAD_SCALE}        // 5,
    think_ms     => $ENV{LOAD_THINK_MS}     // 50,
    # the calls are switched on and off in windows this long (whole seconds: pgbench -T)
    window_seconds => $ENV{LOAD_WINDOW_SECONDS} // 10,
    # calls per second per kind of call (pgbench -R over the five kinds); 0 = flat out
    rate         => $ENV{LOAD_RATE}         // 0,
    # the cost probe after the load: this many calls of each kind, one after the other
    probe_calls  => $ENV{LOAD_PROBE_CALLS}  // 20,
    # the server's log (the probe counts runner worker starts in it); default: the bench
    # cluster's, PGHOST/server.log
    server_log   => $ENV{LOAD_SERVER_LOG}   // (($ENV{PGHOST} // '') . '/server.log'),
);
# Errors the README documents for concurrent calls: a migration waiting for another one
# past its lock timeout (55P03), no free background worker slot (53400).
my %allowed = map { $_ => 1 } qw(00000 55P03 53400);
my $dir = tempdir('load.XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{LOAD_KEEP});  # LOAD_KEEP=1: keep the logs

sub psql
{
    my ($sql) = @_;
    my ($out, $err) = ('', '');
    IPC::Run::run([ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-f', '-' ],
                  '<', \$sql, '>', \$out, '2>', \$err)
      or die "psql failed: $err\n$sql\n";
    chomp $out;
    return $out;
}

sub write_file
{
    my ($name, $text) = @_;
    open my $fh, '>', "$dir/$name" or die "$dir/$name: $!";
    print $fh $text;
    close $fh;
    return "$dir/$name";
}

# The transactions logged by pgbench -l under prefix, as [end time (epoch s), latency (us)].
# A log line: client_id transaction_no time script_no time_epoch time_us; the transaction
# ended at time_epoch + time_us / 1e6 and took `time` us.
sub transactions
{
    my ($prefix) = @_;
    my @t;
    for my $f (glob("$prefix.*"))
    {
        open my $fh, '<', $f or die "$f: $!";
        while (<$fh>)
        {
            my @c = split;
            push @t, [ $c[4] + $c[5] / 1e6, $c[2] ] if @c >= 6 && $c[2] =~ /^\d+$/;
        }
    }
    die "no transactions logged under $prefix\n" unless @t;
    return @t;
}

sub median
{
    my @v = sort { $a <=> $b } @_;
    return 0 unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

# p50 and p99 (ms) of latencies in us.
sub percentiles
{
    my @us = sort { $a <=> $b } @_;
    return (0, 0) unless @us;
    return map { $us[ int($_ * $#us) ] / 1000 } 0.5, 0.99;
}

sub sleep_until
{
    my ($t) = @_;
    my $d = $t - Time::HiRes::time();
    select(undef, undef, undef, $d) if $d > 0;
}

sub traffic
{
    my ($name, $seconds) = @_;
    return IPC::Run::start(
        [ 'pgbench', '-n', '-b', 'tpcb-like', '-c', $o{clients}, '-j', 2, '-T', $seconds,
          '-l', "--log-prefix=$dir/$name" ],
        '>', "$dir/$name.out", '2>&1');
}

print "figure pgbench_scale $o{scale}\n";
IPC::Run::run([ 'pgbench', '-i', '-q', '-s', $o{scale} ], '>', "$dir/init.out", '2>&1')
  or die "pgbench -i failed\n";
psql(q{
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
DROP SCHEMA IF EXISTS load CASCADE;
CREATE SCHEMA load;
CREATE SEQUENCE load.seq;
CREATE TABLE load.calls (kind text NOT NULL, name text, sqlstate text NOT NULL,
                         message text, seconds float8 NOT NULL);
-- The catcher: runs one extension call, records its outcome, never raises.
CREATE FUNCTION load.call(kind text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    n text := format('load_%s_%s', kind, nextval('load.seq'));
    t0 timestamptz := clock_timestamp();
    state text := '00000';
    msg text;
BEGIN
    BEGIN
        CASE kind
        WHEN 'none' THEN  -- the driver's own cost: a call that does nothing
            n := NULL;
        WHEN 'burn' THEN  -- calibration: plain SQL that only spends CPU (about 10 ms here)
            n := NULL;
            PERFORM count(*) FROM pg_catalog.generate_series(1, 50000);
        WHEN 'migration' THEN
            PERFORM virtuoso.execute_migration_with_monitoring(n,
                format('CREATE TABLE load.%I (id int PRIMARY KEY, v text); '
                       'INSERT INTO load.%I SELECT g, g::text FROM generate_series(1, 100) g', n, n),
                format('DROP TABLE load.%I', n));
        WHEN 'migration_nontx' THEN
            PERFORM virtuoso.execute_migration_with_monitoring(n,
                format('CREATE TABLE load.%I (id int, v text); '
                       'INSERT INTO load.%I SELECT g, g::text FROM generate_series(1, 100) g; '
                       'VACUUM (ANALYZE) load.%I', n, n, n),
                format('DROP TABLE load.%I', n), '{"transactional": false}');
        WHEN 'validation' THEN
            n := NULL;
            PERFORM virtuoso.validate_data_integrity(jsonb_build_array(
                jsonb_build_object('name', 'branch_count',
                    'query', 'SELECT count(*) FROM public.pgbench_branches', 'expected',
                    (SELECT count(*) FROM public.pgbench_branches)),
                jsonb_build_object('name', 'teller_orphans',
                    'query', 'SELECT count(*) FROM public.pgbench_tellers t WHERE NOT EXISTS '
                             '(SELECT FROM public.pgbench_branches b WHERE b.bid = t.bid)',
                    'expected', 0)));
        WHEN 'maintenance' THEN
            n := NULL;
            PERFORM virtuoso.perform_maintenance_if_needed();
        WHEN 'advisor' THEN
            n := NULL;
            PERFORM virtuoso.recommend_indexes();
        END CASE;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    END;
    INSERT INTO load.calls VALUES (kind, n, state, msg,
        extract(epoch FROM clock_timestamp() - t0));
    RETURN state;
END
$f$;
-- The samplers' tables (see sampler): what the traffic's backends (pgbench's TPC-B statements)
-- wait for, tagged with the window's kind (on/off); runner worker slots in use.
CREATE TABLE load.waits (tag text NOT NULL, w text NOT NULL);
CREATE TABLE load.slots (n bigint NOT NULL);
SELECT pg_stat_statements_reset();
});
my $started = psql('SELECT pg_postmaster_start_time()');
# LOAD_KINDS: the kinds of call to make (default all five), to see which one costs the traffic most;
# "none" (a call that only records itself: the driver's own cost) and "burn" (plain SQL spending
# about 10 ms of CPU: how much the traffic loses to CPU taken from it, whoever takes it) calibrate.
my @kinds = split ' ', ($ENV{LOAD_KINDS} // 'migration migration_nontx validation maintenance advisor');
# The traffic runs once, continuously; the calls are switched off and on in windows of
# window_seconds, in blocks of four: off, on, on, off (base_seconds + seconds of them, rounded
# to a multiple of 4). The traffic's own tps drifts by more than the calls cost on a shared
# machine: side by side windows see the same drift, and in this order the on and off windows
# lie at the same mean time, so a steady trend weighs on both alike (with plain off/on alternation every "on" window came one window later than its
# "off" one, and a call that does nothing measured 0.90x).
my $w = $o{window_seconds};
my $n_windows = 4 * int(($o{base_seconds} + $o{seconds}) / (4 * $w) + 0.5) || 4;
my $traffic = traffic('traffic', $n_windows * $w + 3);
my $first = Time::HiRes::time() + 1;  # the traffic's clients connected
# The samplers are pgbench runs of one short statement per sample, each its own transaction,
# with pgbench's \sleep between: a sampling loop inside one statement (a PL/pgSQL function
# sleeping between looks) held its snapshot for the whole run, so the traffic's updated rows
# could not be pruned -- pgbench_branches grew from 17 to 362 pages in 80 s with no extension
# call at all, and the traffic slowed down by a third.
sub sampler
{
    my ($name, $statement, $pause_ms, $samples, $delay_s) = @_;
    my $script = write_file("$name.sql", "$statement;\n\\sleep $pause_ms ms\n");
    return IPC::Run::start([ 'sh', '-c', 'sleep "$1" && exec pgbench -n -c 1 -t "$2" -f "$3"',
                             'sampler', $delay_s, $samples, $script ],
                           '>', "$dir/$name.out", '2>&1');
}
# Runner worker slots in use (virtuoso.max_runner_workers), every 0.2 s all along.
my $sampler = sampler('slots', q{INSERT INTO load.slots SELECT count(*) FROM pg_catalog.pg_locks
 WHERE locktype = 'advisory' AND database = 0 AND classid = 1447645780 AND granted}, 200,
                      $n_windows * $w * 5 - 1, 0);
# What the traffic's backends wait for, every 0.1 s after the first second of a window (the
# switch-over): "CPU" when they run, else wait_event_type:wait_event.
sub waits_sampler
{
    my ($k, $tag, $samples) = @_;
    return sampler("waits_$k", qq{INSERT INTO load.waits SELECT '$tag',
  coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_catalog.pg_stat_activity
 WHERE state = 'active' AND backend_type = 'client backend'
   AND query ~ 'pgbench_(accounts|tellers|branches|history)' AND query !~ 'load\\.'},
                   100, $samples, 1);
}
# LOAD_BASELINE=direct: the "off" windows run, at the same rate, what each kind of call does
# done directly instead of nothing -- the migrations' SQL as plain statements, the validation's
# queries, and for maintenance and the advisor (which have no such equivalent: autovacuum and
# the planner do their work) a bare SELECT -- so that the ratios are the extension's own cost,
# apart from the cost of the work it is asked to do.
my $direct = ($ENV{LOAD_BASELINE} // 'none') eq 'direct';
my %direct_sql = (
    migration => "\\set n random(1, 2000000000)\n"
      . "BEGIN;\nCREATE TABLE IF NOT EXISTS load.direct_:n (id int PRIMARY KEY, v text);\n"
      . "INSERT INTO load.direct_:n SELECT g, g::text FROM generate_series(1, 100) g ON CONFLICT DO NOTHING;\nCOMMIT;\n",
    migration_nontx => "\\set n random(1, 2000000000)\n"
      . "CREATE TABLE IF NOT EXISTS load.directn_:n (id int, v text);\n"
      . "INSERT INTO load.directn_:n SELECT g, g::text FROM generate_series(1, 100) g;\n"
      . "VACUUM (ANALYZE) load.directn_:n;\n",
    validation => "SELECT count(*) FROM public.pgbench_branches;\n"
      . "SELECT count(*) FROM public.pgbench_branches;\n"
      . "SELECT count(*) FROM public.pgbench_tellers t WHERE NOT EXISTS "
      . "(SELECT FROM public.pgbench_branches b WHERE b.bid = t.bid);\n",
    maintenance => "SELECT 1;\n",
    advisor => "SELECT 1;\n",
    none => "SELECT 1;\n",
    burn => "SELECT 1;\n");
# The calling sessions stay connected all along, as an application's would (a session's first
# call of a kind costs several times the next ones: the extension's plans and catalog caches are
# built per session; starting new sessions for each window made the driver pay that 8 times per
# window).  Each call first reads the switch (load.switch, flipped by the driver at the window's
# start): the call when on; when off, nothing, or the same work done directly.
psql(q{CREATE TABLE load.switch (calls_on int NOT NULL); INSERT INTO load.switch VALUES (0)});
my @call_files = map {
    ('-f', write_file("$_.sql", "SELECT calls_on FROM load.switch \\gset\n\\if :calls_on\n"
                               . "SELECT load.call('$_');\n"
                               . ($direct ? "\\else\n$direct_sql{$_}" : '') . "\\endif\n"
                               . ($o{rate} > 0 ? '' : "\\sleep $o{think_ms} ms\n")))
} @kinds;
my @rate = $o{rate} > 0 ? ('-R', scalar(@kinds) * $o{rate}) : ();
my $calls_run = IPC::Run::start(
    [ 'pgbench', '-n', '-c', $o{sessions}, '-j', 2, '-T', $n_windows * $w + 1, @rate, @call_files ],
    '>', "$dir/extension.out", '2>&1');
my (@windows, @waits, $calls_seconds);
for my $k (0 .. $n_windows - 1)
{
    my %win = (on => ($k % 4 == 1 || $k % 4 == 2) ? 1 : 0,
               start => $first + $k * $w, end => $first + ($k + 1) * $w);
    sleep_until($win{start});
    push @waits, waits_sampler($k, $win{on} ? 'on' : 'off', ($w - 1) * 10 - 10);  # finished at the end: never holds up the next window
    # Counted from the window's second second on: calls of the window before still running
    # (the switch is read as each call starts) end in it.
    $win{from} = $win{start} + 1;
    psql(sprintf('UPDATE load.switch SET calls_on = %d', $win{on}))
      if !@windows || $windows[-1]{on} != $win{on};
    $calls_seconds += $w if $win{on};
    sleep_until($win{end});
    push @windows, \%win;
}
$calls_run->finish;
$_->finish for $sampler, @waits;
$traffic->finish;
my $peak_slots = psql(q{SELECT coalesce(max(n), 0) FROM load.slots});

# Each transaction of the traffic counts in the window in which it ended, if it ended in the
# window's counted part; tps of a window = its transactions / the counted part's seconds.
my %lat = (0 => [], 1 => []);
for my $t (transactions("$dir/traffic"))
{
    my ($end, $us) = @$t;
    my $k = int(($end - $first) / $w);
    next if $k < 0 || $k >= $n_windows || $end < $windows[$k]{from};
    $windows[$k]{n}++;
    push @{ $windows[$k]{us} }, $us;
    push @{ $lat{ $windows[$k]{on} } }, $us;
}
my %tps = (0 => [], 1 => []);
for my $win (@windows)
{
    $win->{tps} = $win->{end} > $win->{from} ? ($win->{n} // 0) / ($win->{end} - $win->{from}) : 0;
    push @{ $tps{ $win->{on} } }, $win->{tps};
}
# Paired: per block of four windows (off, on, on, off), the on windows' tps over the off
# windows', and their p99 over the off windows' -- a steady trend cancels inside each block,
# and drift between blocks (another job on the machine) does not count. Median over blocks.
my (@tps_ratios, @p99_ratios);
for my $b (0 .. $n_windows / 4 - 1)
{
    my ($off0, $on1, $on2, $off3) = @windows[ 4 * $b .. 4 * $b + 3 ];
    my $off = $off0->{tps} + $off3->{tps};
    push @tps_ratios, $off > 0 ? ($on1->{tps} + $on2->{tps}) / $off : 0;
    my (undef, $p99_on) = percentiles(map { @{ $_->{us} // [] } } $on1, $on2);
    my (undef, $p99_off) = percentiles(map { @{ $_->{us} // [] } } $off0, $off3);
    push @p99_ratios, $p99_off > 0 ? $p99_on / $p99_off : 0;
}
my ($p50_without, $p99_without) = percentiles(@{ $lat{0} });
my ($p50_with, $p99_with) = percentiles(@{ $lat{1} });
my %waits = map { split / /, $_, 2 } split /\n/, psql(q{
SELECT tag || ' ' || string_agg(w || '=' || round(100.0 * n / t)::text, ' ' ORDER BY n DESC)
  FROM (SELECT tag, w, count(*) n, sum(count(*)) OVER (PARTITION BY tag) t
          FROM load.waits GROUP BY tag, w) c
 GROUP BY tag});

sub slurp { local (@ARGV, $/) = @_; return <> // '' }
my %exit = (traffic => $traffic->result(0), extension => $calls_run->result(0));

printf "figure sessions %d\nfigure traffic_clients %d\nfigure seconds %.1f\n",
  $o{sessions}, $o{clients}, $calls_seconds;
printf "figure rate_per_kind %s\n", $o{rate} > 0 ? $o{rate} : 'flat_out';
printf "figure baseline %s\n", $direct ? 'the_same_work_done_directly' : 'no_calls';
printf "figure windows %d\nfigure window_seconds %d\n", $n_windows, $w;
printf "figure window_tps_%d %s %.1f\n", $_, $windows[$_]{on} ? 'on' : 'off', $windows[$_]{tps}
  for 0 .. $#windows;
printf "figure traffic_waits_without %s\nfigure traffic_waits_with %s\n",
  $waits{off} // '', $waits{on} // '';
printf "figure peak_runner_slots %d\nfigure max_runner_workers %s\n", $peak_slots,
  psql(q{SELECT current_setting('virtuoso.max_runner_workers')});
printf "figure traffic_tps_without %.1f\nfigure traffic_tps_with %.1f\n",
  median(@{ $tps{0} }), median(@{ $tps{1} });
printf "figure blocks %d\n", scalar @tps_ratios;
printf "figure traffic_tps_ratio_paired %.3f\nfigure traffic_tps_ratio_blocks %s\n",
  median(@tps_ratios), join(',', map { sprintf '%.3f', $_ } @tps_ratios);
printf "figure p99_ratio_paired %.3f\nfigure p99_ratio_blocks %s\n",
  median(@p99_ratios), join(',', map { sprintf '%.3f', $_ } @p99_ratios);
printf "figure p50_ms_without %.3f\nfigure p50_ms_with %.3f\n", $p50_without, $p50_with;
printf "figure p99_ms_without %.3f\nfigure p99_ms_with %.3f\n", $p99_without, $p99_with;

my $calls = psql(q{SELECT count(*) FROM load.calls});
print "figure calls $calls\n";
print "figure calls_per_s ", sprintf('%.1f', $calls / $calls_seconds), "\n";
for (split /\n/, psql(q{SELECT kind || ' ' || sqlstate || ' ' || count(*)
                       FROM load.calls GROUP BY kind, sqlstate ORDER BY 1}))
{
    my ($kind, $state, $n) = split / /;
    print "figure calls_${kind}_$state $n\n";
}
# Where the calls' time goes: seconds spent in each kind of call, and its p95 (ms).
for (split /\n/, psql(q{SELECT kind || ' ' || round(sum(seconds)::numeric, 1) || ' '
                              || round((1000 * percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds))::numeric, 1)
                       FROM load.calls GROUP BY kind ORDER BY 1}))
{
    my ($kind, $total, $p95) = split / /;
    print "figure call_seconds_$kind $total\nfigure call_p95_ms_$kind $p95\n";
}
# Log cost (issue 18): bytes of the migration log tables per run recorded, as they stand
# (with the versions a statement-by-statement migration's row leaves, one per statement, until
# vacuum reclaims them), then rewritten compactly (what stays: the live rows).
my $log_bytes = q{
SELECT (pg_total_relation_size('virtuoso.migration_log')
        + coalesce(pg_total_relation_size(to_regclass('virtuoso.migration_stats')), 0))
       / greatest(count(*), 1)
FROM virtuoso.migration_log};
print "figure log_bytes_per_migration ", psql($log_bytes), "\n";
psql(q{VACUUM FULL virtuoso.migration_log, virtuoso.migration_stats});
print "figure log_live_bytes_per_migration ", psql($log_bytes), "\n";
# Longest VACUUM/ANALYZE on the pgbench tables, the small hot ones (branches, tellers: under
# 1000 pages) apart: there a long action is a stall (issue 18), not work.
for my $size (['small', '<'], ['large', '>='])
{
    my $longest = psql(qq{SELECT coalesce(max(extract(epoch FROM duration))::numeric(10,3)
                                          || ' ' || (array_agg(tablename || ': ' || command
                                                     ORDER BY duration DESC))[1], '0')
                          FROM virtuoso.maintenance_log WHERE status = 'SUCCESS'
                            AND tablename LIKE 'pgbench%' AND pages_before $size->[1] 1000});
    my ($s, $what) = split / /, $longest, 2;
    print "figure longest_maintenance_$size->[0]_pgbench_table_s $s\n";
    print "figure longest_maintenance_$size->[0]_pgbench_table_action ", $what // 'none', "\n";
}

# ---- Cost of each kind of call, alone (issue 18: the traffic lost to the calls is CPU) ----
# Each kind is called probe_calls times in a row from one session, with nothing else running.
# CPU: user + system time of the whole cluster from /proc -- the postmaster and its live
# children, plus the children that have exited (the postmaster's cutime/cstime: backends and
# background workers once reaped) -- before and after, divided by the calls.  Runner workers:
# the postmaster's DEBUG1 "starting background worker process" lines in the server log
# (log_min_messages is debug1 while the probe runs).  Robust on a shared, noisy machine,
# unlike tps.
my $ticks = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;

sub stat_fields
{
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return;
    my $line = <$fh>;
    close $fh;
    $line =~ s/^.*\)\s+// or return;  # after "pid (comm) "
    return split ' ', $line;          # [0] = state, [1] = ppid, [11..14] = utime stime cutime cstime
}

sub cluster_cpu_seconds
{
    my ($postmaster) = @_;
    my @pm = stat_fields($postmaster) or die "no postmaster $postmaster\n";
    my $t = $pm[11] + $pm[12] + $pm[13] + $pm[14];
    opendir my $d, '/proc' or die "/proc: $!";
    for my $pid (grep { /^\d+$/ } readdir $d)
    {
        next if $pid == $postmaster;
        my @f = stat_fields($pid) or next;
        $t += $f[11] + $f[12] if $f[1] == $postmaster;
    }
    closedir $d;
    return $t / $ticks;
}

sub worker_starts
{
    my ($log) = @_;
    return undef unless -r $log;
    open my $fh, '<', $log or return undef;
    my $n = 0;
    while (<$fh>) { $n++ if /starting background worker process "db_virtuoso runner/ }
    close $fh;
    return $n;
}

if ($o{probe_calls} > 0)
{
    # The postmaster: the parent of a process that lives as long as it does (not psql's
    # backend, which is gone by the time its PID is read).
    my $checkpointer = psql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'});
    my (undef, $postmaster) = stat_fields($checkpointer);
    die "no postmaster found (checkpointer PID '$checkpointer')\n" unless $postmaster;
    psql(q{ALTER SYSTEM SET log_min_messages = 'debug1'; SELECT pg_reload_conf()});
    select(undef, undef, undef, 0.5);
    my $calls = join('', map { "SELECT load.call(:'kind');\n" } 1 .. $o{probe_calls});
    # "none": the probe's own cost (psql, its backend, a trivial call), included in each kind's
    for my $kind (qw(none burn migration migration_nontx validation maintenance advisor))
    {
        select(undef, undef, undef, 0.3);  # the last workers reaped
        my ($cpu0, $w0, $t0) = (cluster_cpu_seconds($postmaster), worker_starts($o{server_log}),
                                [gettimeofday]);
        my ($out, $err) = ('', '');
        my $script = $kind eq 'none' ? "SELECT '00000';\n" x $o{probe_calls} : $calls;
        IPC::Run::run([ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-v', "kind=$kind",
                        '-f', '-' ], '<', \$script, '>', \$out, '2>', \$err)
          or die "psql failed: $err\n";
        my $wall = tv_interval($t0);
        select(undef, undef, undef, 0.3);
        my ($cpu1, $w1) = (cluster_cpu_seconds($postmaster), worker_starts($o{server_log}));
        my @states = split /\n/, $out;
        my $failed = grep { $_ ne '00000' } @states;
        printf "figure probe_cpu_ms_per_call_%s %.1f\n", $kind, 1000 * ($cpu1 - $cpu0) / $o{probe_calls};
        printf "figure probe_wall_ms_per_call_%s %.1f\n", $kind, 1000 * $wall / $o{probe_calls};
        printf "figure probe_workers_per_call_%s %s\n", $kind,
          defined $w0 && defined $w1 ? sprintf('%.1f', ($w1 - $w0) / $o{probe_calls}) : 'unknown';
        print "figure probe_failed_calls_$kind $failed\n";
    }
    psql(q{ALTER SYSTEM RESET log_min_messages; SELECT pg_reload_conf()});
}

sub check
{
    my ($name, $ok, $detail) = @_;
    print "check $name ", ($ok ? 'ok' : 'FAIL'), " ", ($detail // ''), "\n";
}

for my $p (sort keys %exit)
{
    my $out = $exit{$p} == 0 ? '' : slurp("$dir/$p.out");  # each pgbench run's output, named by its key
    $out =~ s/\n/ | /g;
    check("pgbench_$p", $exit{$p} == 0, "exit $exit{$p} $out");
}
my @empty = grep { !$windows[$_]{n} } 0 .. $#windows;
check('windows_measured', !@empty, "$n_windows windows" . (@empty ? ", no traffic counted in @empty" : ''));
check('calls_made', $calls > 0, "$calls calls");
my $allowed_list = join(',', sort keys %allowed);
my $bad = psql(qq{SELECT coalesce(string_agg(DISTINCT sqlstate || ': ' || message, ' | '), '')
                  FROM load.calls WHERE sqlstate <> ALL ('{$allowed_list}')});
check('only_documented_errors', $bad eq '', $bad);
my $pending = psql(q{SELECT count(*) FROM pg_locks WHERE NOT granted});
check('no_lock_waits_left', $pending eq '0', "$pending ungranted locks");
my $running = psql(q{SELECT (SELECT count(*) FROM virtuoso.migration_log WHERE status = 'RUNNING')
                          + (SELECT count(*) FROM virtuoso.maintenance_log WHERE status = 'RUNNING')});
check('no_running_rows', $running eq '0', "$running RUNNING rows");
# The log matches the calls: a migration call that succeeded has exactly one SUCCESS row of
# its name; one that failed has no row or one FAILED row; no row of a name never called.
my $mismatch = psql(q{
WITH c AS (SELECT name, sqlstate FROM load.calls WHERE name IS NOT NULL),
     l AS (SELECT name, count(*) AS n, count(*) FILTER (WHERE status = 'SUCCESS') AS ok,
                  count(*) FILTER (WHERE status = 'FAILED') AS failed
           FROM virtuoso.migration_log WHERE name LIKE 'load\_%' GROUP BY name)
SELECT count(*) FROM c FULL JOIN l USING (name)
WHERE c.name IS NULL
   OR (c.sqlstate = '00000' AND (l.n IS DISTINCT FROM 1 OR l.ok <> 1))
   OR (c.sqlstate <> '00000' AND l.n IS NOT NULL AND (l.n <> 1 OR l.failed <> 1))});
my $logged = psql(q{SELECT count(*) FROM virtuoso.migration_log WHERE name LIKE 'load\_%'});
check('migration_log_matches_calls', $mismatch eq '0', "$mismatch mismatches, $logged rows");
my $tables = psql(q{SELECT count(*) FROM pg_tables WHERE schemaname = 'load' AND tablename LIKE 'load\_%'});
my $ok_migrations = psql(q{SELECT count(*) FROM load.calls WHERE name IS NOT NULL AND sqlstate = '00000'});
check('tables_match_successful_migrations', $tables eq $ok_migrations,
      "$tables tables, $ok_migrations successful migrations");
my $same = psql(qq{SELECT pg_postmaster_start_time() = '$started'});
check('postmaster_not_restarted', $same eq 't', "started $started");
exit 0;
