# A seeded generator of hostile calls to every function and procedure of schema virtuoso,
# and the driver that runs them through psql and classifies what came back.
#
# The catalogue drives it (pg_proc: argument types, names, defaults, kind), so functions
# added later are fed without editing this file. Each call runs in a context (autocommit,
# READ ONLY, SERIALIZABLE, after a rolled-back subtransaction, from a trigger, through a
# cursor, as a role without superuser, CALL inside and outside a block) and must end in a
# result or an ERROR with a proper SQLSTATE. Failure classes:
#   CRASH    the server lost the connection, or the postmaster restarted
#   XX000    an internal error for user input
#   00000    an ERROR whose SQLSTATE says success
#   SILENT   a scalar call that returned neither a row nor an error
#   TIMEOUT  the per-call statement_timeout fired (a loop or a wait without an end)
#   OOM      out of memory under the address-space limit (a runaway allocation)
#   HANG     no progress past the outer time limit (a loop that ignores interrupts)
#   INVARIANT a result row breaks an invariant: command tag ???, negative or NaN cost,
#            size or count, a status outside the documented words
#   LOG      PANIC, TRAP or "terminated by signal" in the server log
# Used by test/t/080_hostile_input.pl (short) and test/bench/hostile_input.sh (long).
package HostileInput;

use strict;
use warnings;
use utf8;
use Encode qw(encode_utf8);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time usleep);

# ---------------------------------------------------------------------------------------
# Deterministic random numbers (Park-Miller, 31 bits): the same seed gives the same calls
# on every Perl and platform, unlike Perl's own rand.
sub _next
{
    my ($self) = @_;
    $self->{state} = ($self->{state} * 48271) % 2147483647;
    return $self->{state};
}
sub rnd { my ($self, $n) = @_; return $self->_next % $n; }
sub chance { my ($self, $pct) = @_; return $self->rnd(100) < $pct; }
sub pick { my ($self, @list) = @_; return $list[ $self->rnd(scalar @list) ]; }

sub new
{
    my ($class, %o) = @_;
    my $self = bless {
        seed       => $o{seed} // 20261130,
        calls      => $o{calls} // 1200,
        batch      => $o{batch} // 100,
        timeout    => $o{timeout} // 20,          # per-call statement_timeout, seconds
        stall      => $o{stall},                  # outer limit without progress, seconds
        memory_mb  => $o{memory_mb} // 1024,      # address-space limit of the backends
        psql       => $o{psql},                   # [ psql, connection options... ]
        log_file   => $o{log_file},
        work_dir   => $o{work_dir},
        say        => $o{say} // sub { print STDERR "$_[0]\n" },
        results    => [],
    }, $class;
    # a call that ignores statement_timeout is ended from outside, well after it
    $self->{stall} //= 3 * $self->{timeout} + 30;
    $self->{state} = ($self->{seed} % 2147483646) + 1;
    return $self;
}

# ---------------------------------------------------------------------------------------
# SQL helpers

sub lit
{
    my ($s) = @_;
    return 'NULL' unless defined $s;
    if ($s =~ /[\x01-\x08\x0b-\x1f\x7f]/)
    {
        # control characters as escapes: the script and the printed reproduction stay readable
        $s =~ s/\\/\\\\/g;
        $s =~ s/'/\\'/g;
        $s =~ s/([\x01-\x1f\x7f])/sprintf('\\x%02X', ord $1)/ge;
        return "E'$s'";
    }
    $s =~ s/'/''/g;
    return "'$s'";
}

sub qident
{
    my ($s) = @_;
    $s =~ s/"/""/g;
    return "\"$s\"";
}

# Runs SQL through psql, returns stdout (dies on error unless $ok_to_fail).
sub psql_run
{
    my ($self, $sql, $ok_to_fail) = @_;
    my $file = "$self->{work_dir}/one.sql";
    open(my $fh, '>:raw', $file) or die "cannot write $file: $!";
    print $fh encode_utf8($sql);
    close $fh;
    my @cmd = (@{ $self->{psql} }, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-f', $file);
    my $out = qx{@{[ join ' ', map { _shell_quote($_) } @cmd ]} 2>&1};
    if ($?)
    {
        die "psql failed ($?): $out\nSQL: $sql\n" unless $ok_to_fail;
        return undef;
    }
    chomp $out;
    return $out;
}

sub _shell_quote
{
    my ($s) = @_;
    $s =~ s/'/'\\''/g;
    return "'$s'";
}

# ---------------------------------------------------------------------------------------
# Fixtures: tables with hostile names, rows, an index, a dropped table, a trigger that runs
# SQL it is given, a role without superuser, pg_stat_statements entries.

our @TABLES = (
    'fuzz "quoted" table',
    '😀' x 15,                  # 60 bytes: a backup name truncates inside the emoji
    '€' x 21,                   # exactly 63 bytes of three-byte characters
    'semi;colon -- table',
    'Ünïcödé spaces',
    'plain_fuzz',
);
our @COLUMNS = ('id', 'k', 'v', 'Col "Q"', 'ts');

sub table_names { return @TABLES; }

sub fixture_sql
{
    my @sql = (
        'CREATE EXTENSION IF NOT EXISTS pg_stat_statements',
        'CREATE SCHEMA virtuoso_fuzz',
        'CREATE TABLE virtuoso_fuzz.fire (n bigserial, q text)',
        q{CREATE FUNCTION virtuoso_fuzz.fire_trigger() RETURNS trigger LANGUAGE plpgsql AS
          $f$BEGIN EXECUTE NEW.q; RETURN NEW; END$f$},
        'CREATE TRIGGER fire BEFORE INSERT ON virtuoso_fuzz.fire FOR EACH ROW EXECUTE FUNCTION virtuoso_fuzz.fire_trigger()',
        # Invariants of every result row (one jsonb per row): a command tag is never '???',
        # costs, sizes, pages, heights, calls and durations are never negative or NaN, a
        # status is one of the documented words. A broken one raises VZ001 (class INVARIANT).
        q{CREATE FUNCTION virtuoso_fuzz.check(r jsonb) RETURNS boolean LANGUAGE plpgsql AS $f$
DECLARE k text; v jsonb;
BEGIN
    FOR k, v IN SELECT '', r WHERE jsonb_typeof(r) <> 'object'
                UNION ALL SELECT * FROM jsonb_each(CASE WHEN jsonb_typeof(r) = 'object' THEN r ELSE '{}' END)
    LOOP
        IF jsonb_typeof(v) = 'string' AND v #>> '{}' = '???' THEN
            RAISE EXCEPTION USING ERRCODE = 'VZ001', MESSAGE = format('invariant: %s is ??? (no command tag)', coalesce(nullif(k, ''), 'the result'));
        END IF;
        IF k ~ '(cost|size|bytes|pages|height|calls|attempts|dead_tuples)' AND
           (v #>> '{}' = 'NaN' OR (jsonb_typeof(v) = 'number' AND (v #>> '{}')::numeric < 0)) THEN
            RAISE EXCEPTION USING ERRCODE = 'VZ001', MESSAGE = format('invariant: %s is %s', k, v);
        END IF;
        IF k = 'status' AND jsonb_typeof(v) = 'string' AND v #>> '{}' NOT IN
           ('RUNNING', 'SUCCESS', 'FAILED', 'SKIPPED', 'ROLLED_BACK', 'DRY_RUN', 'PASS', 'FAIL', 'WARN', 'ERROR') THEN
            RAISE EXCEPTION USING ERRCODE = 'VZ001', MESSAGE = format('invariant: status %s is not a documented word', v);
        END IF;
    END LOOP;
    RETURN true;
END$f$},
        'GRANT USAGE ON SCHEMA virtuoso_fuzz TO PUBLIC',
        'CREATE TABLE virtuoso_fuzz.dropped_holder (oid oid)',
        'CREATE TABLE fuzz_dropped (id int)',
        q{INSERT INTO virtuoso_fuzz.dropped_holder SELECT 'fuzz_dropped'::regclass::oid},
        'DROP TABLE fuzz_dropped',
        'CREATE VIEW fuzz_view AS SELECT 1 AS id',
        'CREATE SEQUENCE fuzz_seq',
        'CREATE TABLE fuzz_parted (id int, k int) PARTITION BY RANGE (id)',
        'CREATE TABLE fuzz_parted_1 PARTITION OF fuzz_parted FOR VALUES FROM (0) TO (1000)',
        q{DO $r$BEGIN CREATE ROLE virtuoso_fuzz_user LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$r$},
        'GRANT USAGE ON SCHEMA virtuoso TO virtuoso_fuzz_user',
        'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA virtuoso TO virtuoso_fuzz_user',
        'GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA virtuoso TO virtuoso_fuzz_user',
        'GRANT USAGE ON SCHEMA virtuoso_fuzz TO virtuoso_fuzz_user',
        'GRANT INSERT, SELECT ON virtuoso_fuzz.fire TO virtuoso_fuzz_user',
        'GRANT USAGE ON SEQUENCE virtuoso_fuzz.fire_n_seq TO virtuoso_fuzz_user',
    );
    for my $t (@TABLES)
    {
        my $q = qident($t);
        push @sql,
          "CREATE TABLE $q (id int PRIMARY KEY, k int, v text, \"Col \"\"Q\"\"\" text, ts timestamptz DEFAULT now())",
          "INSERT INTO $q (id, k, v, \"Col \"\"Q\"\"\") SELECT g, g % 10, 'v' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE '😀' || g END FROM generate_series(1, 200) g",
          "CREATE INDEX ON $q (k)",
          "ANALYZE $q",
          "GRANT SELECT ON $q TO virtuoso_fuzz_user";
        # a workload for the advisor
        push @sql, "SELECT count(*) FROM $q WHERE v = 'v5'", "SELECT * FROM $q WHERE \"Col \"\"Q\"\"\" = '😀1'";
    }
    return join(";\n", @sql) . ";\n";
}

# Migrations that touched the hostile tables, recorded afresh in each batch with rollback
# SQL, so that execute_rollback_with_backup (and its backup naming) is reached every batch.
sub batch_migration_names
{
    my ($self, $batch) = @_;
    return map { "fuzz/b$batch/t$_" } 0 .. $#TABLES;
}

sub batch_fixture_calls
{
    my ($self, $batch) = @_;
    my @calls;
    my @names = $self->batch_migration_names($batch);
    for my $i (0 .. $#TABLES)
    {
        my $q = qident($TABLES[$i]);
        my $col = "fuzz_b$batch";
        push @calls, $self->_call_record(
            "fixture",
            'execute_migration_with_monitoring',
            'plain',
            'SELECT status FROM virtuoso.execute_migration_with_monitoring('
              . join(', ', lit($names[$i]), lit("ALTER TABLE $q ADD COLUMN $col int"),
                lit("ALTER TABLE $q DROP COLUMN IF EXISTS $col")) . ')',
            1);
    }
    return @calls;
}

# ---------------------------------------------------------------------------------------
# The catalogue

sub load_catalog
{
    my ($self) = @_;
    my $out = $self->psql_run(q{
SELECT p.proname, p.prokind, p.proretset, p.pronargdefaults,
       coalesce((SELECT string_agg(format_type(t, NULL), ',' ORDER BY o)
                 FROM unnest(p.proargtypes) WITH ORDINALITY AS a(t, o)), ''),
       coalesce(array_to_string(p.proargnames, ',', ''), ''),
       coalesce(array_to_string(p.proargmodes, ',', ''), ''),
       format_type(p.prorettype, NULL)
FROM pg_proc p WHERE p.pronamespace = 'virtuoso'::regnamespace
ORDER BY p.proname, p.oid});
    my @fns;
    for my $line (split /\n/, $out)
    {
        my ($name, $kind, $set, $ndef, $types, $names, $modes, $ret) = split /\|/, $line, -1;
        my @types = length $types ? split(/,/, $types) : ();
        my @allnames = split /,/, $names, -1;
        my @modes = split /,/, $modes, -1;
        my @in_names;
        for my $i (0 .. $#allnames)
        {
            my $m = $modes[$i] // 'i';
            push @in_names, $allnames[$i] if $m eq 'i' || $m eq 'b' || $m eq 'v';
        }
        push @fns, {
            name => $name, kind => $kind, retset => $set eq 't', ndefaults => $ndef,
            types => \@types, argnames => \@in_names, rettype => $ret,
        };
    }
    $self->{catalog} = \@fns;
    return @fns;
}

# ---------------------------------------------------------------------------------------
# Generators. Each returns an SQL expression.

sub hostile_sql_pool
{
    my ($self) = @_;
    # mostly the call's focus table, so that arguments agree often enough to get deep
    my $t = qident($self->chance(70) && $self->{focus} ? $self->{focus} : $self->pick(@TABLES));
    my $u = qident($self->pick(@TABLES));
    my $b = $self->{batch_no} // 0;
    return (
        'SELECT 1/0', 'SELECT 1', 'COMMIT', 'ROLLBACK', 'BEGIN', 'SAVEPOINT s', 'RELEASE s',
        'PREPARE TRANSACTION \'fuzz\'', "COPY $t FROM STDIN", "COPY $t TO STDOUT",
        q{COPY (SELECT 1) TO PROGRAM 'cat >/dev/null'}, q{COPY (SELECT 1) TO '/tmp/virtuoso_fuzz_copy'},
        q{DO $$BEGIN RAISE EXCEPTION 'fuzz boom'; END$$},
        q{DO $$BEGIN RAISE EXCEPTION 'fuzz' USING ERRCODE = '22023'; END$$},
        q{DO $$BEGIN RAISE INFO 'fuzz info' USING ERRCODE = 'VX001'; END$$},
        q{DO $$BEGIN COMMIT; END$$}, "VACUUM $t", "VACUUM FULL $t", "ANALYZE $t",
        "VACUUM (FREEZE, VERBOSE) $t", 'VACUUM', 'CHECKPOINT',
        q{SELECT virtuoso.execute_top_level('SELECT 1')},
        q{SELECT virtuoso.execute_autonomous('SELECT 1/0')},
        q{SELECT virtuoso.execute_top_level('VACUUM')},
        "SELECT virtuoso.create_index_concurrently('CREATE INDEX ON $t (k)')",
        'SELECT 1; SELECT 2', 'SELECT 1; COMMIT; SELECT 2', "SELECT 1; VACUUM $t",
        '-- only a comment', '/* only a comment */', '', ' ', "\n\t ", ';', ';;', "SELECT 1;\n-- trailing",
        "CREATE INDEX CONCURRENTLY ON $t (k)", "CREATE INDEX CONCURRENTLY fuzz_ci_$b ON $t (v)",
        "CREATE UNIQUE INDEX CONCURRENTLY fuzz_dup_$b ON $t (k)",
        "CREATE INDEX fuzz_i_$b ON $t (k, v)", "DROP INDEX CONCURRENTLY IF EXISTS fuzz_ci_$b",
        "REINDEX TABLE CONCURRENTLY $t", "REINDEX TABLE $t", 'CREATE INDEX ON no_such_table (x)',
        "ALTER TABLE $t ADD COLUMN IF NOT EXISTS fuzz_z int", "ALTER TABLE $t DROP COLUMN IF EXISTS fuzz_z",
        "ALTER TABLE $t ADD CONSTRAINT fuzz_ck CHECK (k >= 0) NOT VALID",
        "ALTER TABLE $t ALTER COLUMN v TYPE varchar(3)", "ALTER TABLE $t ALTER COLUMN k SET NOT NULL",
        "SELECT * FROM $t WHERE k = \$1", "SELECT * FROM $t WHERE k = 5 AND v = 'v5'", "SELECT count(*) FROM $t a JOIN $u b ON a.k = b.k WHERE a.v = 'v1'",
        "UPDATE $t SET v = v WHERE id = 1", "DELETE FROM $t WHERE id < 0",
        "INSERT INTO $t (id) VALUES (1)", "INSERT INTO $t (id, k) VALUES (100000 + $b, 1) ON CONFLICT DO NOTHING",
        "LOCK TABLE $t IN ACCESS EXCLUSIVE MODE", "SELECT * FROM $t FOR UPDATE",
        'SET ROLE virtuoso_fuzz_user', 'RESET ALL', 'SET search_path = evil, pg_catalog',
        'SET statement_timeout = 1', 'SET default_transaction_read_only = on',
        'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'LISTEN fuzz', 'NOTIFY fuzz',
        'PREPARE p AS SELECT 1', 'EXECUTE p', 'DEALLOCATE ALL', 'DISCARD ALL',
        'SELECT pg_cancel_backend(pg_backend_pid())', 'EXPLAIN ANALYZE SELECT 1',
        "CREATE TABLE IF NOT EXISTS fuzz_new_$b (id int)", "DROP TABLE IF EXISTS fuzz_new_$b",
        'CREATE DATABASE fuzz_db', 'CREATE TEMP TABLE fuzz_tmp (x int)',
        "SELECT repeat('x', 1000000)", 'SELECT g FROM generate_series(1, 20000) g',
        q{SELECT E'\\xff'}, q{SELECT '😀' || chr(1)}, 'SELECT "😀"', "SELECT 'unterminated",
        'SELEC 1', '$$', 'SELECT $1', 'BEGIN; SELECT 1; COMMIT', 'SHOW ALL', 'TABLE pg_class',
        "SELECT 1 FROM $t WHERE " . join(' OR ', map { "k = $_" } 1 .. 300),
        'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000) SELECT count(*) FROM r',
        'SELECT ' . ('(' x 200) . '1' . (')' x 200),
        "CREATE FUNCTION fuzz_f_$b() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        'SELECT pg_advisory_lock(42)', 'SELECT pg_advisory_unlock_all()',
        'SELECT txid_current()', "SELECT set_config('virtuoso.lock_timeout', '1ms', false)",
        'CALL no_such_procedure()', 'SELECT * FROM virtuoso.migration_log',
        "TRUNCATE $t",
    );
}

sub identifier_pool
{
    my ($self) = @_;
    return (
        @TABLES, (map { qident($_) } @TABLES), (map { 'public.' . qident($_) } @TABLES),
        'a"b', 'a""b', '"', '""', "x; DROP TABLE plain_fuzz; --", "it's", '😀' x 20,
        ('é' x 31) . 'a', 'é' x 32, '€' x 22, 'a' x 63, 'a' x 64, 'A' x 1000, '', ' ', '.',
        'public.', 'pg_catalog.pg_class', 'virtuoso.migration_log', 'no_such_table',
        'fuzz_view', 'fuzz_seq', 'fuzz_parted', 'fuzz_parted_1', 'virtuoso_fuzz.fire',
        "tab\tname", "new\nline", '\\', '$1', '%s', '%n', "\x{202e}rtl", "\x{feff}bom",
    );
}

sub gen_text
{
    my ($self, $argname) = @_;
    $argname //= '';
    my $roll = $self->rnd(100);
    my $sqlish = $argname =~ /sql|statement|query|definition|expression/;
    my $nameish = $argname =~ /name|reason|weight|by/;
    if ($roll < 12) { return $self->gen_huge_text; }
    if ($roll < 20) { return lit($self->gen_junk); }
    if ($sqlish ? $roll < 85 : $roll < 35) { return lit($self->pick($self->hostile_sql_pool)); }
    if ($nameish && $roll < 70 && $self->{batch_no})
    {
        my @names = ($self->batch_migration_names($self->{batch_no}),
            $self->batch_migration_names($self->{batch_no} - 1));
        return lit($self->pick(@names));
    }
    return lit($self->pick($self->identifier_pool, 'calls', 'total_time', 'mean_time', 'rows'));
}

sub gen_huge_text
{
    my ($self) = @_;
    # Long runs of plain characters; structure (statements, brackets) only up to 100 000
    # units, since PostgreSQL's own parser needs memory in proportion to it: an
    # out-of-memory error then would be PostgreSQL's, not a runaway of the extension.
    my $unit = $self->pick('x', '😀', 'é', "'", '"', ';', 'SELECT 1;', '[', '{', '\\', 'a"b;');
    my @sizes = (64, 1000, 100_000);
    push @sizes, 1_000_000, 4_000_000 if $unit =~ /^[x😀é"\\]$/;
    my $n = $self->pick(@sizes);
    return "repeat(" . lit($unit) . ", $n)";
}

# Random valid UTF-8 without NUL: control characters, quotes, backslashes, emoji, CJK,
# combining marks, right-to-left and noncharacters.
sub gen_junk
{
    my ($self) = @_;
    my $len = $self->pick(1, 2, 5, 20, 100, 500);
    my $s = '';
    for (1 .. $len)
    {
        my $r = $self->rnd(8);
        my $cp = $r == 0 ? 1 + $self->rnd(31)
          : $r == 1 ? 0x1F600 + $self->rnd(80)
          : $r == 2 ? 0x4E00 + $self->rnd(500)
          : $r == 3 ? 0x300 + $self->rnd(100)
          : $r == 4 ? $self->pick(0x22, 0x27, 0x5C, 0x3B, 0x24, 0x25, 0x3A, 0x7B, 0x5B, 0x202E, 0xFFFF, 0xFFFE, 0x10FFFF)
          : 0x20 + $self->rnd(95);
        $s .= chr($cp);
    }
    return $s;
}

our @JSON_FIELDS = qw(name query type table column columns references referenced_column
  referenced_columns expected operator min max values where severity timeout max_age expression
  lock_timeout max_retries statement_timeout validation_rules lint transactional dry_run force
  max_plan_regression changes definition rollback options);
our @RULE_TYPES = qw(not_null unique foreign_key accepted_values row_count range expression
  freshness query sql scaffold create_table);

sub json_str
{
    my ($s) = @_;
    $s =~ s/\\/\\\\/g;
    $s =~ s/"/\\"/g;
    $s =~ s/([\x00-\x1f])/sprintf('\\u%04x', ord $1)/ge;
    return "\"$s\"";
}

sub gen_json_value
{
    my ($self, $depth, $field) = @_;
    $field //= '';
    my $r = $self->rnd(100);
    if ($r < 10) { return $self->pick('null', 'true', 'false', '[]', '{}', '""'); }
    if ($r < 25)
    {
        return $self->pick('-1', '0', '1', '2147483647', '2147483648', '-2147483649',
            '9223372036854775808', '1e400', '-1e400', '1.5', '0.0000001', '1e-400', '100000000000000000000000000000');
    }
    if ($r < 45)
    {
        return json_str($self->pick('500ms', '-1s', '0', '1ms', '1000000 years', 'abc', 'error',
            'warn', 'off', '=', '<=', '>=', '<', '>', '!=', '; DROP TABLE plain_fuzz', '', 'k > 0',
            '1/0 = 1', "true; DELETE FROM plain_fuzz", 'id', 'k', 'v', 'Col "Q"', 'no_such_column',
            'calls', 'ts', '1 day', 'infinity', 'NaN', '-infinity'));
    }
    if ($r < 55) { return json_str($self->pick($self->hostile_sql_pool)); }
    if ($r < 65) { return json_str($self->pick($self->identifier_pool)); }
    if ($r < 68) { return json_str($self->gen_junk); }
    if ($depth > 3) { return '0'; }
    if ($r < 82) { return $self->gen_json_object($depth + 1); }
    return '[' . join(',', map { $self->gen_json_value($depth + 1) } 1 .. $self->rnd(4)) . ']';
}

sub gen_json_object
{
    my ($self, $depth) = @_;
    my @pairs;
    my $n = $self->rnd(6);
    if ($self->chance(60))
    {
        push @pairs, '"type": ' . json_str($self->pick(@RULE_TYPES));
        push @pairs, '"table": ' . json_str($self->pick(@TABLES, map { qident($_) } @TABLES));
    }
    for (1 .. $n)
    {
        my $f = $self->pick(@JSON_FIELDS, 'x', '', '😀');
        push @pairs, json_str($f) . ': ' . $self->gen_json_value($depth, $f);
    }
    return '{' . join(', ', @pairs) . '}';
}

sub gen_jsonb
{
    my ($self, $argname) = @_;
    my $r = $self->rnd(100);
    my $text;
    if ($r < 5)
    {
        $text = $self->pick('{', '[1,', '{"a":}', 'nul', "{'a': 1}", '{"a": 1}}', '', ' ', '😀');
    }
    elsif ($r < 12)
    {
        my $d = $self->pick(100, 1000, 5000);
        my ($o, $c) = $self->chance(50) ? ('[', ']') : ('{"a":', '}');
        return "(repeat(" . lit($o) . ", $d) || '1' || repeat(" . lit($c) . ", $d))::jsonb";
    }
    elsif ($r < 16)
    {
        return "('[' || repeat('{\"name\": \"r\", \"query\": \"SELECT 1\"},', 3000) || '1]')::jsonb";
    }
    elsif ($r < 50 || ($argname // '') =~ /rules/)
    {
        $text = '[' . join(', ', map { $self->gen_json_object(0) } 0 .. $self->rnd(4)) . ']';
    }
    elsif ($r < 85) { $text = $self->gen_json_object(0); }
    else { $text = $self->gen_json_value(0); }
    return lit($text) . '::jsonb';
}

# A plausible value: what a careful user would pass, about the call's focus table. In a
# plausible call most arguments come from here and one or two stay hostile, so the calls
# get past argument checks into the deep paths (mutation of valid input).
sub gen_plausible
{
    my ($self, $type, $argname) = @_;
    $argname //= '';
    my $t = qident($self->{focus});
    if ($type eq 'text')
    {
        return lit($self->pick("CREATE INDEX ON $t (k)", "CREATE INDEX CONCURRENTLY ON $t (v, k)",
            "CREATE UNIQUE INDEX ON $t (id)")) if $argname =~ /definition/;
        return lit("ALTER TABLE $t DROP COLUMN IF EXISTS fuzz_p") if $argname =~ /rollback/;
        return lit($self->pick("ALTER TABLE $t ADD COLUMN IF NOT EXISTS fuzz_p int",
            "UPDATE $t SET v = v WHERE id = 1", "ALTER TABLE $t ADD CONSTRAINT fuzz_pk CHECK (k >= 0)",
            "CREATE INDEX CONCURRENTLY ON $t (ts)", "VACUUM $t", "ANALYZE $t", '-- only a comment',
            'SELECT 1/0', "SELECT count(*) FROM $t", "COPY $t FROM STDIN", "COPY $t TO STDOUT",
            "SELECT virtuoso.create_index_concurrently('CREATE INDEX ON $t (k)')",
            q{SELECT virtuoso.execute_autonomous('SELECT 1/0')}))
          if $argname =~ /sql|statement/;
        return lit($self->pick("SELECT * FROM $t WHERE k = 5", "SELECT * FROM $t WHERE k = \$1",
            "SELECT v FROM $t WHERE \"Col \"\"Q\"\"\" = 'x' ORDER BY k", "SELECT count(*) FROM $t WHERE v = 'v5'",
            "UPDATE $t SET v = 'x' WHERE k = 3", "DELETE FROM $t WHERE id = -1"))
          if $argname =~ /query|expression/;
        return lit($self->pick('calls', 'total_time', 'mean_time', 'rows')) if $argname =~ /weight/;
        if ($argname =~ /name|reason/ && $self->{batch_no})
        {
            return lit($self->pick($self->batch_migration_names($self->{batch_no}),
                $self->batch_migration_names($self->{batch_no} - 1)));
        }
        return lit($self->pick(@COLUMNS));
    }
    return lit(qident($self->{focus})) . '::regclass' if $type eq 'regclass';
    return lit(qident($self->{focus})) . '::regclass::oid' if $type eq 'oid';
    if ($type eq 'text[]')
    {
        return $self->pick(q{ARRAY['k']}, q{ARRAY['k', 'v']}, q{ARRAY['Col "Q"']}, q{ARRAY['v', 'id']}, q{'{}'::text[]});
    }
    if ($type eq 'jsonb')
    {
        my $tj = json_str($self->{focus});
        my @rules = (
            qq{{"name": "r_nn", "type": "not_null", "table": $tj, "column": "v"}},
            qq{{"name": "r_u", "type": "unique", "table": $tj, "columns": ["k", "v"]}},
            qq{{"name": "r_fk", "type": "foreign_key", "table": $tj, "column": "k", "references": "plain_fuzz", "referenced_column": "id"}},
            qq{{"name": "r_av", "type": "accepted_values", "table": $tj, "column": "k", "values": [0, 1, 2, "x"]}},
            qq{{"name": "r_rc", "type": "row_count", "table": $tj, "min": 1, "max": 2147483648}},
            qq{{"name": "r_rg", "type": "range", "table": $tj, "column": "k", "min": -1, "max": 5, "where": "id > 0"}},
            qq{{"name": "r_ex", "type": "expression", "table": $tj, "expression": "k >= 0", "severity": "warn"}},
            qq{{"name": "r_fr", "type": "freshness", "table": $tj, "column": "ts", "max_age": "1 day"}},
            qq{{"name": "r_q", "query": "SELECT count(*) FROM " . json_str($self->{focus}) . ", "expected": 0, "operator": ">="}},
            qq{{"name": "r_q2", "query": "SELECT count(*) AS count FROM plain_fuzz WHERE k < 0", "expected": 0, "timeout": "1s"}},
        );
        # half the time one field of one rule replaced by a hostile value
        my @chosen = map { $self->pick(@rules) } 0 .. $self->rnd(3);
        $chosen[$_] =~ s/"name": "r_(\w+)"/"name": "r_$1_$_"/ for 1 .. $#chosen;    # names stay unique
        if ($self->chance(50))
        {
            my $victim = $self->rnd(scalar @chosen);
            my $field = $self->pick(@JSON_FIELDS);
            $chosen[$victim] =~ s/\}$/, @{[json_str($field)]}: @{[$self->gen_json_value(2, $field)]}}/;
        }
        my $rules = '[' . join(', ', @chosen) . ']';
        return lit($rules) . '::jsonb' if $argname =~ /rules/;
        my @opts = ('"lock_timeout": "200ms"', '"max_retries": 2', '"statement_timeout": "5s"',
            '"transactional": ' . $self->pick('true', 'false'), '"dry_run": ' . $self->pick('true', 'false'),
            '"lint": ' . $self->pick('"error"', '"warn"', '"off"'), '"force": ' . $self->pick('true', 'false'),
            '"max_plan_regression": ' . $self->pick('2', '0', '-1', '1e308'), "\"validation_rules\": $rules");
        my @o = map { $self->pick(@opts) } 0 .. $self->rnd(4);
        return lit('{' . join(', ', @o) . '}') . '::jsonb';
    }
    return undef;
}

sub gen_value
{
    my ($self, $type, $argname) = @_;
    if ($self->{plausible} && !$self->chance(25))
    {
        my $v = $self->gen_plausible($type, $argname);
        return $v if defined $v;
    }
    return 'NULL' if $self->chance(8);
    if ($type eq 'text' || $type eq 'character varying' || $type eq 'name')
    {
        my $v = $self->gen_text($argname);
        return $type eq 'text' ? $v : "($v)::$type";
    }
    return $self->gen_jsonb($argname) if $type eq 'jsonb' || $type eq 'json';
    return $self->pick('true', 'false') if $type eq 'boolean';
    if ($type eq 'integer' || $type eq 'smallint')
    {
        return $self->pick('-1', '0', '1', '2', '3', '100', '10000', '2147483647', '(-2147483647 - 1)');
    }
    if ($type eq 'bigint')
    {
        return $self->pick('-1::bigint', '0::bigint', '1::bigint', '1000::bigint', '2147483648::bigint',
            '9223372036854775807::bigint', '(-9223372036854775807 - 1)::bigint');
    }
    if ($type eq 'double precision' || $type eq 'real' || $type eq 'numeric')
    {
        return "'" . $self->pick('NaN', 'Infinity', '-Infinity', '-1', '0', '1e308', '1e-308', '10', '100',
            '1000', '-0') . "'::$type";
    }
    if ($type eq 'interval')
    {
        return lit($self->pick('0', '-1 day', '1 microsecond', '178000000 years', '-178000000 years',
            '1 second', '5 min', '100 years')) . '::interval';
    }
    if ($type eq 'regclass' || $type eq 'oid')
    {
        my $r = $self->rnd(10);
        my $v = $r < 5 ? lit(qident($self->{focus} // $self->pick(@TABLES))) . '::regclass'
          : $r == 5 ? '(SELECT oid FROM virtuoso_fuzz.dropped_holder)::regclass'
          : $r == 6 ? $self->pick(q{'pg_class'::regclass}, q{'virtuoso.migration_log'::regclass},
            q{'pg_toast.pg_toast_1255'::regclass})
          : $r == 7 ? $self->pick(q{'fuzz_view'::regclass}, q{'fuzz_seq'::regclass}, q{'fuzz_parted'::regclass},
            q{'fuzz_parted_1'::regclass})
          : $r == 8 ? $self->pick('0::oid::regclass', '4294967295::oid::regclass', '1259::oid::regclass')
          : q{(SELECT indexrelid FROM pg_index WHERE indrelid = 'plain_fuzz'::regclass LIMIT 1)::regclass};
        return $type eq 'oid' ? "($v)::oid" : $v;
    }
    if ($type =~ /^(.*)\[\]$/)
    {
        my $elem = $1;
        my $r = $self->rnd(6);
        return "'{}'::$type" if $r == 0;
        return "'{NULL}'::$type" if $r == 1;
        return "array_fill(" . lit('k') . "::$elem, ARRAY[10000])" if $r == 2;
        my @e = map { $self->chance(60) ? $self->pick(@COLUMNS) : $self->pick($self->identifier_pool) } 0 .. $self->rnd(4);
        return 'ARRAY[' . join(', ', map { lit($_) } @e) . "]::$type";
    }
    if ($type eq 'timestamp with time zone') { return $self->pick(q{'-infinity'::timestamptz}, 'now()'); }
    return "NULL::$type";    # a type without a generator: NULL keeps it covered
}

# ---------------------------------------------------------------------------------------
# Calls and contexts

our @FUNCTION_CONTEXTS = qw(plain plain plain read_only serializable aborted_subxact trigger cursor unprivileged);
our @PROCEDURE_CONTEXTS = qw(call call_in_block call_read_only unprivileged);

sub _call_record
{
    my ($self, $id, $fn, $context, $call, $expect_row) = @_;
    my (@pre, @post, $stmt);
    if ($context eq 'plain' || $context eq 'call') { $stmt = $call; }
    elsif ($context eq 'read_only' || $context eq 'call_read_only')
    {
        @pre = ('BEGIN READ ONLY;');
        $stmt = $call;
        @post = ('COMMIT;');
    }
    elsif ($context eq 'serializable')
    {
        @pre = ('BEGIN ISOLATION LEVEL SERIALIZABLE;');
        $stmt = $call;
        @post = ('COMMIT;');
    }
    elsif ($context eq 'call_in_block')
    {
        @pre = ('BEGIN;');
        $stmt = $call;
        @post = ('COMMIT;');
    }
    elsif ($context eq 'aborted_subxact')
    {
        @pre = ('BEGIN;', 'SAVEPOINT s;', 'SELECT 1/0;', 'ROLLBACK TO SAVEPOINT s;');
        $stmt = $call;
        @post = ('COMMIT;');
    }
    elsif ($context eq 'trigger')
    {
        $stmt = 'INSERT INTO virtuoso_fuzz.fire (q) VALUES (' . lit($call) . ')';
    }
    elsif ($context eq 'cursor')
    {
        @pre = ('BEGIN;', "DECLARE fuzz_c NO SCROLL CURSOR FOR $call;");
        $stmt = 'FETCH ALL FROM fuzz_c';
        @post = ('COMMIT;');
    }
    elsif ($context eq 'unprivileged')
    {
        @pre = ('SET ROLE virtuoso_fuzz_user;');
        $stmt = $call;
        @post = ('RESET ROLE;');
    }
    else { die "unknown context $context"; }
    return { id => $id, fn => $fn, context => $context, pre => \@pre, stmt => "$stmt;",
        post => \@post, expect_row => $expect_row };
}

sub generate_call
{
    my ($self, $id, $fn) = @_;
    $self->{focus} = $self->pick(@TABLES);
    my @types = @{ $fn->{types} };
    my $n = scalar @types;
    my $min = $n - $fn->{ndefaults};
    $self->{plausible} = $self->chance(40);
    my $count = $self->{plausible} && $self->chance(50) ? $n : $min + $self->rnd($n - $min + 1);
    my $named = $count > 0 && $self->chance(15) && @{ $fn->{argnames} } == $n;
    my @args;
    if ($named)
    {
        # named notation over a random subset that includes every argument without default
        for my $i (0 .. $n - 1)
        {
            next if $i >= $min && $self->chance(50);
            push @args, $fn->{argnames}[$i] . ' => ' . $self->gen_value($types[$i], $fn->{argnames}[$i]);
        }
    }
    else
    {
        @args = map { $self->gen_value($types[$_], $fn->{argnames}[$_]) } 0 .. $count - 1;
    }
    my $target = "virtuoso.$fn->{name}(" . join(', ', @args) . ')';
    my ($call, $context, $expect_row);
    if ($fn->{kind} eq 'p')
    {
        $context = $self->pick(@PROCEDURE_CONTEXTS);
        $context = 'call' if $context eq 'unprivileged' && $self->chance(50);
        $call = "CALL $target";
        $expect_row = 0;
    }
    else
    {
        $context = $self->pick(@FUNCTION_CONTEXTS);
        # a scalar call must give one row; a set-returning one may give none; each row goes
        # through the invariants (pseudo-type results are called as they are)
        $call = $fn->{rettype} =~ /^(void|trigger|event_trigger|record)$/
          ? "SELECT $target"
          : "SELECT virtuoso_fuzz.check(to_jsonb(r)) FROM $target AS r";
        $expect_row = $fn->{retset} ? 0 : 1;
    }
    return $self->_call_record($id, $fn->{name}, $context, $call, $expect_row);
}

# The SQL that reproduces one call (after the fixtures), for the failure report.
sub repro
{
    my ($self, $c) = @_;
    my $sql = join("\n", @{ $c->{pre} }, $c->{stmt}, @{ $c->{post} });
    $sql = substr($sql, 0, 4000) . "\n... (truncated)" if length $sql > 4000;
    return "psql -X -v ON_ERROR_STOP=1 <<'SQL'\nSET statement_timeout = '$self->{timeout}s';\n$sql\nSQL";
}

sub batch_script
{
    my ($self, @calls) = @_;
    my @lines = ('\set QUIET on', '\o /dev/null', '\pset pager off');
    for my $c (@calls)
    {
        push @lines,
          "RESET ALL; SET statement_timeout = '$self->{timeout}s'; SET client_min_messages = error; SET application_name = 'hostile_input';",
          @{ $c->{pre} },
          '\unset ERROR', '\unset SQLSTATE', '\unset ROW_COUNT',
          "\\echo \@\@B $c->{id}",
          $c->{stmt},
          "\\echo \@\@R $c->{id} :ERROR :SQLSTATE :ROW_COUNT",
          "\\echo \@\@M $c->{id} :LAST_ERROR_MESSAGE",
          "\\echo \@\@E $c->{id}",
          @{ $c->{post} };
    }
    push @lines, '\echo @@DONE';
    return join("\n", @lines) . "\n";
}

# ---------------------------------------------------------------------------------------
# Running

sub postmaster_state
{
    my ($self) = @_;
    my $out = $self->psql_run(q{SELECT pg_postmaster_start_time(), pg_backend_pid()}, 1);
    return (undef, undef) unless defined $out;
    my ($start, $pid) = split /\|/, $out;
    return ($start, $pid);
}

# Limits the address space of every process the postmaster forks from now on, so that a
# runaway allocation is an out-of-memory ERROR and never the kernel's OOM killer (which
# restarts the whole cluster). Returns the limit a new backend reports.
sub limit_memory
{
    my ($self) = @_;
    my $ppid = $self->psql_run(q{SELECT split_part(pg_read_file('postmaster.pid'), E'\n', 1)});
    my $bytes = $self->{memory_mb} * 1024 * 1024;
    my @cmd = ('prlimit', "--pid=$ppid", "--as=$bytes:$bytes");
    # root in a container may lack CAP_SYS_RESOURCE: then as the owner of the server
    my $owner = getpwuid((stat "/proc/$ppid")[4]);
    @cmd = ('runuser', '-u', $owner, '--', @cmd) if $> == 0 && $owner ne 'root';
    system(@cmd) == 0 or die "prlimit on the postmaster $ppid failed";
    # what a backend forked now reports
    return $self->psql_run(q{SELECT substring(pg_read_file('/proc/self/limits') FROM 'Max address space +([0-9a-z]+)')});
}

sub _log_size { my ($self) = @_; return -s $self->{log_file} // 0; }

sub _log_since
{
    my ($self, $offset) = @_;
    open(my $fh, '<:raw', $self->{log_file}) or return '';
    seek($fh, $offset, 0);
    local $/;
    my $text = <$fh> // '';
    close $fh;
    return $text;
}

# Runs one batch of calls in one psql session; returns the output text and whether the
# outer limit fired.
sub _run_script
{
    my ($self, $script, $tag) = @_;
    my $file = "$self->{work_dir}/$tag.sql";
    my $out = "$self->{work_dir}/$tag.out";
    open(my $fh, '>:raw', $file) or die "cannot write $file: $!";
    print $fh encode_utf8($script);
    close $fh;
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0)
    {
        open(STDOUT, '>', $out) or die;
        open(STDERR, '>', "$out.err") or die;
        exec(@{ $self->{psql} }, '-X', '-v', 'ON_ERROR_STOP=0', '-f', $file) or die "exec psql: $!";
    }
    my ($last_size, $last_change, $hung) = (-1, time, 0);
    while (waitpid($pid, WNOHANG) == 0)
    {
        my $size = -s $out // 0;
        if ($size != $last_size) { ($last_size, $last_change) = ($size, time); }
        elsif (time - $last_change > $self->{stall})
        {
            $hung = 1;
            # the call ignores statement_timeout: end it from outside, then the client
            $self->psql_run(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                              WHERE application_name = 'hostile_input' AND pid <> pg_backend_pid()}, 1);
            usleep(5_000_000);
            kill 'KILL', $pid;
            waitpid($pid, 0);
            last;
        }
        usleep(100_000);
    }
    open($fh, '<:raw', $out) or die "cannot read $out: $!";
    local $/;
    my $text = <$fh> // '';
    close $fh;
    unlink $file, $out, "$out.err";
    return ($text, $hung);
}

sub _parse
{
    my ($text) = @_;
    my %res;
    my @lines = split /\n/, $text;
    for (my $i = 0; $i < @lines; $i++)
    {
        my $l = $lines[$i];
        if ($l =~ /^\@\@B (\S+)$/) { $res{$1}{begun} = 1; }
        elsif ($l =~ /^\@\@R (\S+) (\S+) (\S+) (\S+)$/) { @{ $res{$1} }{qw(error sqlstate rows)} = ($2, $3, $4); }
        elsif ($l =~ /^\@\@M (\S+) ?(.*)$/)
        {
            my ($id, $msg) = ($1, $2);
            while ($i + 1 < @lines && $lines[ $i + 1 ] !~ /^\@\@E \Q$id\E$/) { $msg .= "\n" . $lines[ ++$i ]; }
            $res{$id}{message} = $msg;
        }
        elsif ($l =~ /^\@\@E (\S+)$/) { $res{$1}{ended} = 1; }
    }
    return \%res;
}

# The failure class of one call, or undef when it ended properly.
sub classify
{
    my ($self, $c, $r) = @_;
    return 'HANG' if $r->{hung};
    return 'CRASH' if $r->{begun} && !$r->{ended};
    return undef unless $r->{begun};    # not reached (after a crash or hang)
    my ($error, $state, $rows) = @$r{qw(error sqlstate rows)};
    return 'SILENT' if $error eq ':ERROR';    # psql got no result at all
    if ($error eq 'true')
    {
        my $msg = $r->{message} // '';
        return 'CRASH' if $msg =~ /server closed the connection|connection to server was lost|terminating connection/;
        return 'XX000' if $state eq 'XX000';
        return '00000' if $state eq '00000' || $state !~ /^[0-9A-Z]{5}$/;
        return 'OOM' if $state eq '53200';
        return 'TIMEOUT' if $state eq '57014' && $msg =~ /statement timeout/;
        return 'INVARIANT' if $state eq 'VZ001';
        return undef;
    }
    return 'SILENT' if $c->{expect_row} && $rows eq '0';
    return undef;
}

# Runs the whole campaign. Returns a summary hash.
sub run
{
    my ($self) = @_;
    my $t0 = time;
    my @fns = @{ $self->{catalog} // [ $self->load_catalog ] };
    my ($start_time) = $self->postmaster_state;
    my $log_offset = $self->_log_size;
    my (%classes, @failures, %per_fn, $done, $restarts, @log_findings, $hung_any);
    $done = 0;
    $restarts = 0;
    my $batches = int(($self->{calls} + $self->{batch} - 1) / $self->{batch});
    my $next_id = 0;
    for my $b (1 .. $batches)
    {
        $self->{batch_no} = $b;
        my @calls = $self->batch_fixture_calls($b);
        $_->{id} = 'f' . (++$next_id) for @calls;
        my $n = $b == $batches ? $self->{calls} - $self->{batch} * ($b - 1) : $self->{batch};
        for (1 .. $n)
        {
            my $fn = $fns[ $self->rnd(scalar @fns) ];
            push @calls, $self->generate_call('c' . (++$next_id), $fn);
        }
        my ($text, $hung) = $self->_run_script($self->batch_script(@calls), "batch$b");
        my $res = _parse($text);
        for my $i (0 .. $#calls)
        {
            my $c = $calls[$i];
            my $r = $res->{ $c->{id} } // {};
            $r->{hung} = 1 if $hung && $r->{begun} && !$r->{ended};
            next unless $r->{begun};
            $done++;
            $per_fn{ $c->{fn} }{calls}++;
            my $class = $self->classify($c, $r);
            $per_fn{ $c->{fn} }{ $r->{error} && $r->{error} eq 'true' ? 'errors' : 'results' }++;
            next unless $class;
            $classes{$class}++;
            push @failures, { class => $class, call => $c, result => $r, batch => $b };
        }
        $hung_any ||= $hung;
        my ($now_start) = $self->postmaster_state;
        my $wait = 0;
        while (!defined $now_start && $wait++ < 300)
        {
            usleep(200_000);    # crash recovery in progress
            ($now_start) = $self->postmaster_state;
        }
        if (!defined $now_start || $now_start ne $start_time)
        {
            $restarts++;
            $start_time = $now_start // '';
        }
        my $log = $self->_log_since($log_offset);
        $log_offset += length $log;
        for my $l (split /\n/, $log)
        {
            push @log_findings, $l
              if $l =~ /\bPANIC:|\bTRAP:|terminated by signal|server process .* exited with exit code [1-9]/;
        }
        $self->{say}->(sprintf('batch %d/%d: %d calls run, %d failures so far, %.0f s',
            $b, $batches, $done, scalar @failures, time - $t0));
        last if $hung && !defined $now_start;
    }
    $classes{LOG} = scalar @log_findings if @log_findings;
    return {
        seed => $self->{seed}, calls => $done, seconds => time - $t0, restarts => $restarts,
        classes => \%classes, failures => \@failures, per_fn => \%per_fn,
        log_findings => \@log_findings, functions => scalar @fns,
    };
}

# A readable report: counts per class, then per class and function the first few calls
# with the SQL that reproduces them.
sub report
{
    my ($self, $s, $max_examples) = @_;
    $max_examples //= 3;
    my @out;
    push @out, sprintf('hostile input: seed %d, %d functions, %d calls in %.0f s, restarts: %d',
        $s->{seed}, $s->{functions}, $s->{calls}, $s->{seconds}, $s->{restarts});
    push @out, sprintf('  %-34s %6s %7s %7s', 'function', 'calls', 'errors', 'results');
    for my $fn (sort keys %{ $s->{per_fn} })
    {
        my $p = $s->{per_fn}{$fn};
        push @out, sprintf('  %-34s %6d %7d %7d', $fn, $p->{calls} // 0, $p->{errors} // 0, $p->{results} // 0);
    }
    if (!%{ $s->{classes} }) { push @out, 'no failure'; return join("\n", @out); }
    push @out, 'failure classes: ' . join(', ', map { "$_ $s->{classes}{$_}" } sort keys %{ $s->{classes} });
    my %groups;
    for my $f (@{ $s->{failures} })
    {
        my $c = $f->{call};
        my $key = "$f->{class} $c->{fn}";
        push @{ $groups{$key} }, $f;
    }
    for my $key (sort keys %groups)
    {
        my @fs = @{ $groups{$key} };
        my %ctx;
        $ctx{ $_->{call}{context} }++ for @fs;
        push @out, '', "== $key: " . scalar(@fs) . ' calls (contexts: '
          . join(', ', map { "$_ $ctx{$_}" } sort keys %ctx) . ')';
        my @ids = map { $_->{call}{id} } @fs;
        push @out, 'calls: ' . join(' ', @ids[ 0 .. ($#ids < 29 ? $#ids : 29) ]) . (@ids > 30 ? ' ...' : '');
        my %seen_msg;
        my $shown = 0;
        for my $f (@fs)
        {
            my $r = $f->{result};
            my $msg = $r->{error} && $r->{error} eq 'true' ? ($r->{message} // '') : '(no error)';
            $msg =~ s/\n.*//s;
            next if $seen_msg{$msg}++ && $shown;    # one example per distinct message
            last if $shown++ >= $max_examples;
            push @out, sprintf('-- call %s (batch %d, %s): ERROR=%s SQLSTATE=%s ROW_COUNT=%s %s',
                $f->{call}{id}, $f->{batch}, $f->{call}{context}, $r->{error} // '-', $r->{sqlstate} // '-',
                $r->{rows} // '-', $msg);
            push @out, $self->repro($f->{call});
        }
    }
    if (@{ $s->{log_findings} })
    {
        push @out, '', '== server log:';
        push @out, map { "  $_" } @{ $s->{log_findings} }[ 0 .. ($#{ $s->{log_findings} } < 9 ? $#{ $s->{log_findings} } : 9) ];
    }
    return join("\n", @out);
}

1;
