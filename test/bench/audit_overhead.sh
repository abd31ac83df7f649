# Trigger overhead on a 1M-row UPDATE that changes 3 of 8 columns, side by side in one run:
#   audit:      virtuoso.enable_audit's C trigger vs the seed documents' PL/pgSQL
#               audit_trigger_function (row_to_json of OLD and NEW into audit_logs);
#   updated_at: virtuoso.enable_updated_at's C trigger vs update_updated_at_column.
# Overhead = time of the UPDATE with the trigger minus the same UPDATE on an identical table
# without one (medians); the ratio compares the two overheads (target <= 0.5x).
#   AUDIT_ROWS (default 1000000; smaller under CI), AUDIT_RUNS (default 3)
source "$REPO/test/bench/lib.sh"
rows=${AUDIT_ROWS:-1000000}
runs=${AUDIT_RUNS:-3}
sql=$(mktemp)
{
    cat <<'SQL'
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
    for t in a_plain a_ours a_plpgsql u_plain u_ours u_plpgsql; do
        echo "CREATE TABLE $t (id bigint PRIMARY KEY, user_id bigint, title text, content text,
            status text, score int, created_at timestamptz DEFAULT now(), updated_at timestamptz);"
        echo "INSERT INTO $t (id, user_id, title, content, status, score)
            SELECT g, g % 1000, 'title ' || g, repeat('x', 40), 'draft', g FROM generate_series(1, $rows) g;"
    done
    echo "SELECT virtuoso.enable_audit('a_ours');"
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
        order="plain ours plpgsql"
        [ $((i % 2)) -eq 0 ] && order="plpgsql ours plain"
        for kind in a u; do
            for v in $order; do
                echo "TRUNCATE virtuoso.audit_log, audit_logs;"
                echo "VACUUM ${kind}_$v;"
                echo "CHECKPOINT;"
                echo "\\echo timed:${kind}_$v"
                echo "UPDATE ${kind}_$v $set;"
            done
        done
    done
    echo '\timing off'
    echo "SELECT virtuoso.disable_audit('a_ours');"
    echo "DROP TABLE a_plain, a_ours, a_plpgsql, u_plain, u_ours, u_plpgsql, audit_logs;"
    echo "DROP FUNCTION audit_trigger_function(), update_updated_at_column();"
    echo "TRUNCATE virtuoso.audit_log;"
} >"$sql"
times=$(time_statements "$sql")
rm -f "$sql"
overhead() {  # variant baseline: median difference in ms (a difference lost in noise is 0)
    perl -e 'my $d = $ARGV[0] - $ARGV[1]; printf "%.1f", $d > 0 ? $d : 0' -- \
        "$(median "$1" <<<"$times")" "$(median "$2" <<<"$times")"
}
echo "$times" >&2
record audit_overhead "UPDATE ${rows} rows, 3 of 8 cols: audit trigger overhead (C vs PL/pgSQL), median of $runs" \
    "$(overhead a_ours a_plain)" "$(overhead a_plpgsql a_plain)" "<= 0.50x"
record audit_overhead "same: updated_at trigger overhead (C vs PL/pgSQL)" \
    "$(overhead u_ours u_plain)" "$(overhead u_plpgsql u_plain)" "<= 0.50x"
