# Ten typed rules of validate_data_integrity over a 1M-row table pair, against the same ten
# checks written by hand and run directly as top-level statements, measured interleaved in
# one session.  All rules pass, as after a correct migration.
source "$REPO/test/bench/lib.sh"
runs=${RUNS:-11}
rows=${ROWS:-1000000}
sql=$(mktemp)
{
    cat <<SQL
CREATE TABLE bench_parent (id bigint PRIMARY KEY, code int NOT NULL, name text);
INSERT INTO bench_parent SELECT g, g, 'parent ' || g FROM generate_series(1, $rows) g;
CREATE TABLE bench_child (id bigint PRIMARY KEY, parent_id bigint, seq int, status text,
                          amount numeric(12,2), created_at timestamptz);
INSERT INTO bench_child
SELECT g, 1 + (g::bigint * 7919) % $rows, g % 10, (ARRAY['new','paid','shipped'])[1 + g % 3],
       (g % 5000) / 3.0, now() - (g % 1000) * interval '1 minute'
FROM generate_series(1, $rows) g;
VACUUM ANALYZE bench_parent;
VACUUM ANALYZE bench_child;
SQL
    rules='[
      {"name": "child_parent_not_null", "type": "not_null", "table": "bench_child", "column": "parent_id"},
      {"name": "parent_code_unique", "type": "unique", "table": "bench_parent", "column": "code"},
      {"name": "child_key_unique", "type": "unique", "table": "bench_child", "columns": ["parent_id", "seq"]},
      {"name": "child_parent_fk", "type": "foreign_key", "table": "bench_child", "column": "parent_id", "references": "bench_parent", "referenced_column": "id"},
      {"name": "child_status_values", "type": "accepted_values", "table": "bench_child", "column": "status", "values": ["new", "paid", "shipped"]},
      {"name": "child_rows", "type": "row_count", "table": "bench_child", "min": 1},
      {"name": "child_amount_range", "type": "range", "table": "bench_child", "column": "amount", "min": 0, "max": 10000},
      {"name": "child_amount_expression", "type": "expression", "table": "bench_child", "expression": "amount >= 0 AND seq >= 0"},
      {"name": "child_fresh", "type": "freshness", "table": "bench_child", "column": "created_at", "max_age": "1 day"},
      {"name": "parent_name_not_null", "type": "not_null", "table": "bench_parent", "column": "name"}
    ]'
    # the same ten checks written by hand, sent as ten top-level statements in one request
    # (psql's \; ) so that \timing measures them together
    hand="SELECT count(*) FROM bench_child WHERE parent_id IS NULL \\;
SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM bench_parent WHERE code IS NOT NULL GROUP BY code HAVING count(*) > 1) d \\;
SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM bench_child WHERE parent_id IS NOT NULL AND seq IS NOT NULL GROUP BY parent_id, seq HAVING count(*) > 1) d \\;
SELECT count(*) FROM bench_child c WHERE c.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM bench_parent p WHERE p.id = c.parent_id) \\;
SELECT count(*) FROM bench_child WHERE status IS NOT NULL AND status NOT IN ('new', 'paid', 'shipped') \\;
SELECT count(*) FROM bench_child \\;
SELECT count(*) FROM bench_child WHERE amount IS NOT NULL AND (amount < 0 OR amount > 10000) \\;
SELECT count(*) FROM bench_child WHERE NOT (amount >= 0 AND seq >= 0) \\;
SELECT max(created_at) >= now() - interval '1 day' FROM bench_child \\;
SELECT count(*) FROM bench_parent WHERE name IS NULL;"
    # every rule must pass (a failing one would also sample rows): stop otherwise
    echo "SELECT 1 / (1 - least(count(*), 1)) AS all_pass FROM virtuoso.validate_data_integrity('$rules') WHERE status <> 'PASS';"
    echo "$hand"
    echo '\timing on'
    for _ in $(seq "$runs"); do
        echo "\\echo timed:rules"
        echo "SELECT count(*) FROM virtuoso.validate_data_integrity('$rules');"
        echo "\\echo timed:hand"
        echo "$hand"
    done
    echo '\timing off'
    # the same with a few violations planted in every table: failing typed rules also fetch a
    # sample of what offends (a second, bounded query), which the hand-written ones do not
    cat <<SQL
UPDATE bench_child SET parent_id = NULL WHERE id <= 10;
UPDATE bench_child SET parent_id = -id WHERE id BETWEEN 11 AND 20;
UPDATE bench_child SET status = 'lost' WHERE id BETWEEN 21 AND 30;
UPDATE bench_child SET amount = -1 WHERE id BETWEEN 31 AND 40;
UPDATE bench_child SET parent_id = 5, seq = 5 WHERE id BETWEEN 41 AND 50;
UPDATE bench_parent SET code = 1 WHERE id <= 10;
VACUUM ANALYZE bench_child;
VACUUM ANALYZE bench_parent;
SQL
    echo '\timing on'
    for _ in $(seq "$runs"); do
        echo "\\echo timed:failing_rules"
        echo "SELECT count(*) FROM virtuoso.validate_data_integrity('$rules');"
        echo "\\echo timed:failing_hand"
        echo "$hand"
    done
    echo '\timing off'
    echo "DROP TABLE bench_child, bench_parent;"
} >"$sql"
times=$(time_statements "$sql")
rm -f "$sql"
rules=$(median rules <<<"$times")
hand=$(median hand <<<"$times")
record integrity_rules "10 typed rules, 1M-row pair (median/$runs)" "$rules" "$hand" "<= 1.05x"
failing_rules=$(median failing_rules <<<"$times")
failing_hand=$(median failing_hand <<<"$times")
record integrity_rules "same, 7 rules failing (with samples)" "$failing_rules" "$failing_hand" "informational"
