# Maintenance: one round deciding over 10,000 tables (target: <= 1 s, one catalog scan, no
# per-table round trips), and the scheduler's CPU time while idle (target: about 0).
source "$REPO/test/bench/lib.sh"
tables=${TABLES:-10000}
bloated=${BLOATED:-200}
runs=${RUNS:-5}
idle_seconds=${IDLE_SECONDS:-60}

psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE SCHEMA bench_maint;
DO \$\$
BEGIN
    FOR i IN 1..$tables LOOP
        EXECUTE format('CREATE TABLE bench_maint.t%s (id int)', i);
        IF i % 500 = 0 THEN COMMIT; END IF;  -- keep the lock table small
    END LOOP;
END \$\$;
DO \$\$
BEGIN
    FOR i IN 1..$bloated LOOP
        EXECUTE format('INSERT INTO bench_maint.t%s SELECT generate_series(1, 1500)', i);
        EXECUTE format('DELETE FROM bench_maint.t%s WHERE id > 100', i);
    END LOOP;
END \$\$;
SELECT pg_stat_force_next_flush();
SQL

sql=$(mktemp)
{
    echo '\timing on'
    for _ in $(seq "$runs"); do
        echo "\\echo timed:round"
        echo "SELECT count(*) FROM virtuoso.perform_maintenance_if_needed(dry_run => true);"
        echo "\\echo timed:catalog"
        echo "SELECT count(*) FROM pg_stat_user_tables;"
    done
} >"$sql"
times=$(time_statements "$sql")
rm -f "$sql"
round=$(median round <<<"$times")
catalog=$(median catalog <<<"$times")

# Scans of pg_class that one round makes (counted for the current transaction).
scans=$(psql -X -q -At -v ON_ERROR_STOP=1 <<'SQL' | tail -n 1
BEGIN;
SELECT pg_stat_get_xact_numscans('pg_catalog.pg_class'::regclass) AS before \gset
SELECT count(*) FROM virtuoso.perform_maintenance_if_needed(dry_run => true) \g /dev/null
SELECT pg_stat_get_xact_numscans('pg_catalog.pg_class'::regclass) - :before;
COMMIT;
SQL
)
due=$(psql -X -At -c "SELECT count(*) FROM virtuoso.perform_maintenance_if_needed(dry_run => true)")
echo "round over $tables tables: median $round ms, $due actions due, $scans pg_class scan(s)" >&2
record maintenance_round "dry-run round, $tables tables, $scans pg_class scan" "$round" "$catalog" "<= 1000 ms"

psql -X -q -v ON_ERROR_STOP=1 <<SQL
DO \$\$
BEGIN
    FOR i IN 1..$tables LOOP
        EXECUTE format('DROP TABLE bench_maint.t%s', i);
        IF i % 500 = 0 THEN COMMIT; END IF;
    END LOOP;
END \$\$;
DROP SCHEMA bench_maint;
SQL

# The scheduler's CPU time (utime + stime from /proc) over a minute of idling.
pid=$(psql -X -At -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'db_virtuoso maintenance scheduler'")
if [ -z "$pid" ] || [ ! -r "/proc/$pid/stat" ]; then
    echo "maintenance scheduler not found" >&2
    exit 1
fi
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
t0=$(cpu_ticks "$pid")
sleep "$idle_seconds"
t1=$(cpu_ticks "$pid")
cpu_ms=$(perl -e 'printf "%.1f", ($ARGV[1] - $ARGV[0]) * 1000 / $ARGV[2]' "$t0" "$t1" "$hz")
echo "idle scheduler (PID $pid): $cpu_ms ms CPU in $idle_seconds s" >&2
record maintenance_idle "scheduler CPU over ${idle_seconds} s idle vs wall" "$cpu_ms" "$((idle_seconds * 1000))" "about 0"
