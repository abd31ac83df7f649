# Trigger overhead on a 1M-row UPDATE that changes 3 of 8 columns, side by side in one run:
#   audit:      virtuoso.enable_audit's C trigger vs the seed documents' PL/pgSQL
#               audit_trigger_function (row_to_json of OLD and NEW into audit_logs);
#   updated_at: virtuoso.enable_updated_at's C trigger vs update_updated_at_column.
# Overhead = time of the UPDATE with the trigger minus the same UPDATE on an identical table
# without one (medians); the ratio compares the two overheads (target <= 0.5x).
# The floor is a C trigger that does nothing (test/bench/noop_trigger.c), AFTER for the
# audit and BEFORE for updated_at: what any row trigger costs the executor, whatever it does.
# Each UPDATE is measured twice: wall-clock time (psql's \timing) and the CPU time of its
# backend (utime + stime of /proc/self/stat, read by the backend itself before and after),
# which waiting for a CPU on a busy machine does not inflate.  Every table's updated_at
# holds a value, as in a table that has it NOT NULL DEFAULT now().
#   AUDIT_ROWS (default 1000000; smaller under CI), AUDIT_RUNS (default 3)
source "$REPO/test/bench/lib.sh"
rows=${AUDIT_ROWS:-1000000}
runs=${AUDIT_RUNS:-3}
ticks=$(getconf CLK_TCK)
# The floor's module goes into the staged installation of the bench cluster (PGHOST is its
# directory, see scripts/common.sh), never into the system's.
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pkglib=$PGHOST/stage$("$pg_config" --pkglibdir)
[ -d "$pkglib" ] || { echo "audit_overhead: no staged library directory $pkglib" >&2; exit 1; }
gcc -O2 -fPIC -shared -I"$("$pg_config" --includedir-server)" -o "$pkglib/bench_noop_trigger.so" \
    "$REPO/test/bench/noop_trigger.c" && chmod a+r "$pkglib/bench_noop_trigger.so" || exit 1
sql=$(mktemp)
{
    cat <<'SQL'
CREATE FUNCTION bench_noop_trigger() RETURNS trigger
    AS '$libdir/bench_noop_trigger', 'bench_noop_trigger' LANGUAGE C;
-- CPU milliseconds of this backend so far: fields 14 and 15 (utime, stime) of
-- /proc/self/stat, in clock ticks (getconf CLK_TCK)
CREATE FUNCTION bench_cpu_ms(ticks_per_s int) RETURNS float8 LANGUAGE sql AS $$
    SELECT (split_part(s, ' ', 12)::float8 + split_part(s, ' ', 13)::float8) * 1000 / ticks_per_s
    FROM (SELECT split_part(pg_read_file('/proc/self/stat'), ') ', 2) AS s) x $$;
-- The seed documents' reference triggers, as shipped (the baseline).
CREATE TABLE audit_logs (id bigserial PRIMARY KEY, table_name text, operation text,
    record_id bigint, user_id bigint, old_data jsonb, new_data jsonb, changed_fields text[],
    created_at timestamptz DEFAULT CURRENT_TIMESTAMP);
CREATE FUNCTION update_updated_at_column() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = CURRENT_TIMESTAMP;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE FUNCTION audit_trigger_function() RETURNS trigger AS $$
DECLARE
    changed_fields TEXT[] := ARRAY[]::TEXT[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.title IS DISTINCT FROM NEW.title THEN
            changed_fields := array_append(changed_fields, 'title');
        END IF;
        IF OLD.content IS DISTINCT FROM NEW.content THEN
            changed_fields := array_append(changed_fields, 'content');
        END IF;
        IF OLD.status IS DISTINCT FROM NEW.status THEN
            changed_fields := array_append(changed_fields, 'status');
        END IF;
    END IF;
    INSERT INTO audit_logs (table_name, operation, record_id, user_id, old_data, new_data,
                            changed_fields)
    VALUES (TG_TABLE_NAME, TG_OP, COALESCE(NEW.id, OLD.id), COALESCE(NEW.user_id, OLD.user_id),
            CASE WHEN TG_OP = 'DELETE' OR TG_OP = 'UPDATE' THEN row_to_json(OLD)::JSONB ELSE NULL END,
            CASE WHEN TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN row_to_json(NEW)::JSONB ELSE NULL END,
            changed_fields);
    RETURN COALESCE(NEW, OLD);
END;
$$ LANGUAGE plpgsql;
SQL
    # 8 columns; the UPDATE changes title, content and status
    for t in a_plain a_floor a_ours a_plpgsql u_plain u_floor u_ours u_plpgsql; do
        echo "CREATE TABLE $t (id bigint PRIMARY KEY, user_id bigint, title text, content text,
            status text, score int, created_at timestamptz DEFAULT now(), updated_at timestamptz);"
        echo "INSERT INTO $t (id, user_id, title, content, status, score, updated_at)
            SELECT g, g % 1000, 'title ' || g, repeat('x', 40), 'draft', g, now() FROM generate_series(1, $rows) g;"
    done
    echo "SELECT virtuoso.enable_audit('a_ours');"
    echo "CREATE TRIGGER floor AFTER INSERT OR UPDATE OR DELETE ON a_floor FOR EACH ROW EXECUTE FUNCTION bench_noop_trigger();"
    echo "CREATE TRIGGER floor BEFORE UPDATE ON u_floor FOR EACH ROW EXECUTE FUNCTION bench_noop_trigger();"
    echo "CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON a_plpgsql FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();"
    echo "SELECT virtuoso.enable_updated_at('u_ours');"
    echo "CREATE TRIGGER stamp BEFORE UPDATE ON u_plpgsql FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();"
    echo "VACUUM ANALYZE;"
    echo "CHECKPOINT;"
    echo '\timing on'
    for i in $(seq "$runs"); do
        # Each UPDATE starts from a vacuumed table and emptied logs (not timed); the order
        # turns round every run so that drift hits every variant alike.
        set="SET title = title || '.', content = content || 'y', status = CASE status WHEN 'draft' THEN 'live' ELSE 'draft' END"
        order="plain floor ours plpgsql"
        [ $((i % 2)) -eq 0 ] && order="plpgsql ours floor plain"
        for kind in a u; do
            for v in $order; do
                echo "TRUNCATE virtuoso.audit_log, audit_logs;"
                echo "VACUUM ${kind}_$v;"
                echo "CHECKPOINT;"
                echo "SELECT bench_cpu_ms($ticks) AS cpu_before \\gset"
                echo "\\echo timed:${kind}_$v"
                echo "UPDATE ${kind}_$v $set;"
                echo "SELECT 'cpu:${kind}_$v ' || (bench_cpu_ms($ticks) - :cpu_before) AS cpu;"
            done
        done
    done
    echo '\timing off'
    echo "SELECT virtuoso.disable_audit('a_ours');"
    echo "DROP TABLE a_plain, a_floor, a_ours, a_plpgsql, u_plain, u_floor, u_ours, u_plpgsql, audit_logs;"
    echo "DROP FUNCTION audit_trigger_function(), update_updated_at_column(), bench_noop_trigger(), bench_cpu_ms(int);"
    echo "TRUNCATE virtuoso.audit_log;"
} >"$sql"
# time_statements' output, and "cpu_LABEL ms" lines of the CPU times
times=$(psql -X -q -v ON_ERROR_STOP=1 -f "$sql" 2>&1 | perl -ne '
    if (/^timed:(\S+)/) { $label = $1; next }
    if (/^Time: ([0-9.]+) ms/ && defined $label) { print "$label $1\n"; undef $label; next }
    if (/^\s*cpu:(\S+) ([0-9.]+)/) { print "cpu_$1 $2\n" }')
rm -f "$sql"
overhead() {  # variant baseline: median difference in ms (a difference lost in noise is 0)
    perl -e 'my $d = $ARGV[0] - $ARGV[1]; printf "%.1f", $d > 0 ? $d : 0' -- \
        "$(median "$1" <<<"$times")" "$(median "$2" <<<"$times")"
}
echo "$times" >&2
for m in wall cpu; do
    p=; [ $m = cpu ] && p=cpu_
    record audit_overhead "UPDATE ${rows} rows, 3 of 8 cols, $m time, median of $runs: audit trigger overhead (C vs PL/pgSQL)" \
        "$(overhead ${p}a_ours ${p}a_plain)" "$(overhead ${p}a_plpgsql ${p}a_plain)" "<= 0.50x"
    record audit_overhead "same ($m): updated_at trigger overhead (C vs PL/pgSQL)" \
        "$(overhead ${p}u_ours ${p}u_plain)" "$(overhead ${p}u_plpgsql ${p}u_plain)" "<= 0.50x"
    # The floors against the same baselines: no trigger can go below these ratios.
    record audit_overhead "same ($m): floor, a no-op C AFTER row trigger vs PL/pgSQL audit" \
        "$(overhead ${p}a_floor ${p}a_plain)" "$(overhead ${p}a_plpgsql ${p}a_plain)" "(floor)"
    record audit_overhead "same ($m): floor, a no-op C BEFORE row trigger vs PL/pgSQL updated_at" \
        "$(overhead ${p}u_floor ${p}u_plain)" "$(overhead ${p}u_plpgsql ${p}u_plain)" "(floor)"
done
