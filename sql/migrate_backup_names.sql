-- Backup names of execute_rollback_with_backup: valid after PostgreSQL's truncation of
-- identifiers to 63 bytes, found in a bounded number of tries, recorded exactly as created.
-- (A bug here once looped for ever and took the cluster down: bound the test's own time.)
SET statement_timeout = '20s';
-- 15 emoji of 4 bytes each: 60 bytes, a name that the timestamp suffix pushes over 63 bytes.
CREATE TABLE "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀" (id int PRIMARY KEY, v text);
INSERT INTO "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀" VALUES (1, 'one');
-- a name with quotes and spaces
CREATE TABLE "odd ""name"" here" (id int PRIMARY KEY);
INSERT INTO "odd ""name"" here" VALUES (1);

CREATE FUNCTION pg_temp.backups_ok(migration text) RETURNS TABLE (backups int, all_exist bool, all_fit bool, data_rows bigint)
LANGUAGE sql AS $$
    SELECT count(*)::int,
           coalesce(bool_and(to_regclass(b) IS NOT NULL), false),
           coalesce(bool_and(octet_length((parse_ident(b))[2]) <= 63), false),
           sum((xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', b), false, true, '')))[1]::text::bigint)
    FROM virtuoso.migration_log l, unnest(l.backup_tables) b
    WHERE l.id = (SELECT id FROM virtuoso.migration_log WHERE name = migration ORDER BY started_at DESC LIMIT 1)
$$;

SELECT status FROM virtuoso.execute_migration_with_monitoring('emoji_col',
    'ALTER TABLE "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀" ADD COLUMN extra int',
    'ALTER TABLE "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀" DROP COLUMN extra');
SELECT status, cardinality(backup_tables) AS backups FROM virtuoso.execute_rollback_with_backup('emoji_col');
-- the recorded name is the table that was created
SELECT * FROM pg_temp.backups_ok('emoji_col');
-- the same table backed up again (even within the same second): a new, distinct name
SELECT status FROM virtuoso.execute_migration_with_monitoring('emoji_col',
    'ALTER TABLE "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀" ADD COLUMN extra int',
    'ALTER TABLE "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀" DROP COLUMN extra');
SELECT status, cardinality(backup_tables) AS backups FROM virtuoso.execute_rollback_with_backup('emoji_col');
SELECT * FROM pg_temp.backups_ok('emoji_col');
SELECT status FROM virtuoso.execute_migration_with_monitoring('emoji_col',
    'ALTER TABLE "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀" ADD COLUMN extra int',
    'ALTER TABLE "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀" DROP COLUMN extra');
SELECT status, cardinality(backup_tables) AS backups FROM virtuoso.execute_rollback_with_backup('emoji_col');
SELECT * FROM pg_temp.backups_ok('emoji_col');
SELECT count(*) AS emoji_backups, count(DISTINCT relname) AS distinct_names,
       bool_and(convert_from(convert_to(relname, 'UTF8'), 'UTF8') = relname) AS valid_text
FROM pg_class WHERE relnamespace = 'virtuoso_backup'::regnamespace AND relkind = 'r'
  AND relname LIKE '😀%';

-- quotes and spaces survive in the backup name
SELECT status FROM virtuoso.execute_migration_with_monitoring('odd_col',
    'ALTER TABLE "odd ""name"" here" ADD COLUMN extra int',
    'ALTER TABLE "odd ""name"" here" DROP COLUMN extra');
SELECT status, regexp_replace(backup_tables[1], '_\d{8}_\d{6}(_\d+)?"$', '_<timestamp>"') AS backup
FROM virtuoso.execute_rollback_with_backup('odd_col');
SELECT * FROM pg_temp.backups_ok('odd_col');
-- a backup's CREATE TABLE text is unique: no plan of it is kept for the session
SELECT count(*) AS kept_backup_plans FROM pg_backend_memory_contexts
WHERE name = 'CachedPlanSource' AND ident LIKE 'CREATE TABLE virtuoso_backup.%';
RESET statement_timeout;
