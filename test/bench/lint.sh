# lint_migration over a 5,000-statement migration (static analysis: parse, live facts of
# the tables named, rules), against the target of the issue: 5,000 statements per second,
# i.e. 1,000 ms for the file.  The migration mixes the statements real migrations contain,
# over tables of 100,000 rows (sizes, lock queue and constraints are looked up live).
source "$REPO/test/bench/lib.sh"
runs=${RUNS:-11}
statements=${STATEMENTS:-5000}
migration=$(mktemp)
perl -e '
    my @t = (
      "ALTER TABLE bench_lint.accounts ADD COLUMN c%d int DEFAULT 0;",
      "CREATE INDEX CONCURRENTLY i%d ON bench_lint.accounts (balance);",
      "ALTER TABLE bench_lint.orders ALTER COLUMN code TYPE varchar(40);",
      "UPDATE bench_lint.accounts SET balance = %d WHERE id = 1;",
      "ALTER TABLE bench_lint.accounts ADD CONSTRAINT k%d CHECK (balance > 0) NOT VALID;",
      "ALTER TABLE bench_lint.accounts ADD COLUMN r%d float8 DEFAULT random();",
      "CREATE TABLE bench_lint.n%d (id bigint PRIMARY KEY, account_id bigint REFERENCES bench_lint.accounts (id));",
      "ALTER TABLE bench_lint.accounts ALTER COLUMN status SET NOT NULL;",
      "ALTER TABLE bench_lint.orders ADD CONSTRAINT f%d FOREIGN KEY (account_id) REFERENCES bench_lint.accounts (id) NOT VALID;",
      "INSERT INTO bench_lint.orders VALUES (%d, 1, 1, NULL);");
    printf($t[$_ % @t] . "\n", $_) for 0 .. $ARGV[0] - 1;' "$statements" >"$migration"
chmod 644 "$migration"
sql=$(mktemp)
{
    cat <<SQL
CREATE SCHEMA bench_lint;
CREATE TABLE bench_lint.accounts (id bigint PRIMARY KEY, balance int, status text,
    CONSTRAINT status_present CHECK (status IS NOT NULL));
INSERT INTO bench_lint.accounts SELECT g, g % 1000, 'ok' FROM generate_series(1, 100000) g;
CREATE TABLE bench_lint.orders (id bigint PRIMARY KEY, account_id bigint, amount numeric, code varchar(20));
INSERT INTO bench_lint.orders SELECT g, g, g, 'c' FROM generate_series(1, 100000) g;
VACUUM ANALYZE bench_lint.accounts;
VACUUM ANALYZE bench_lint.orders;
\\set migration \`cat $migration\`
SELECT count(*) AS findings FROM virtuoso.lint_migration(:'migration');
SQL
    echo '\timing on'
    for _ in $(seq "$runs"); do
        echo "\\echo timed:lint"
        echo "SELECT count(*) FROM virtuoso.lint_migration(:'migration');"
    done
    echo '\timing off'
    echo "DROP SCHEMA bench_lint CASCADE;"
} >"$sql"
times=$(time_statements "$sql")
rm -f "$sql" "$migration"
lint=$(median lint <<<"$times")
per_second=$(perl -e 'printf "%d", $ARGV[0] / ($ARGV[1] / 1000)' "$statements" "$lint")
record lint "$statements statements static ($per_second stmt/s) (median/$runs)" "$lint" 1000 "<= 1.00x"
