-- execute_rollback_with_backup of a statement-by-statement ({"transactional": false})
-- migration that fails half way: each rollback statement before the failure committed on
-- its own, so the backups (preserve_new_data) must already be committed and listed, and
-- the row must say how far the rollback got.  The transactional path changes nothing.
SET statement_timeout = '60s';
CREATE TABLE rb_t (id int PRIMARY KEY);
INSERT INTO rb_t SELECT generate_series(1, 5);

SELECT status FROM virtuoso.execute_migration_with_monitoring('rb_steps',
    'ALTER TABLE rb_t ADD COLUMN extra int; CREATE TABLE rb_other (x int)',
    'ALTER TABLE rb_t DROP COLUMN extra; SELECT 1/0; DROP TABLE rb_other',
    '{"transactional": false}');
UPDATE rb_t SET extra = id * 10;   -- new data that the rollback drops

-- the second rollback statement fails
SELECT status FROM virtuoso.execute_rollback_with_backup('rb_steps', true, 'test');
-- its first statement stayed applied: the column and its data are gone from rb_t ...
SELECT count(*) AS extra_columns FROM pg_attribute
WHERE attrelid = 'rb_t'::regclass AND attname = 'extra' AND NOT attisdropped;
-- ... but kept in the backup, which is listed in the row
SELECT l.status, cardinality(l.backup_tables) AS backups,
       to_regclass(l.backup_tables[1]) IS NOT NULL AS backup_exists,
       l.rollback_reason, l.rollback_at IS NOT NULL AS rollback_at_set
FROM virtuoso.migration_log l WHERE name = 'rb_steps';
SELECT (xpath('/row/s/text()', query_to_xml(format('SELECT sum(extra) AS s FROM %s', b),
        false, true, '')))[1]::text AS backed_up_sum
FROM virtuoso.migration_log, unnest(backup_tables) b
WHERE name = 'rb_steps' AND b LIKE 'virtuoso\_backup.rb\_t\_%';
-- verify_migration_integrity reports the rollback left half way
SELECT check_name, status FROM virtuoso.verify_migration_integrity('rb_steps')
WHERE check_name = 'rollback';

-- cancelled (statement_timeout) in its second statement: the row says so too
CREATE TABLE rb_c (id int PRIMARY KEY);
INSERT INTO rb_c VALUES (1), (2);
SELECT status FROM virtuoso.execute_migration_with_monitoring('rb_cancel',
    'ALTER TABLE rb_c ADD COLUMN extra int',
    'ALTER TABLE rb_c DROP COLUMN extra; SELECT pg_sleep(30)',
    '{"transactional": false}');
UPDATE rb_c SET extra = 7;
SET statement_timeout = '3s';
SELECT status FROM virtuoso.execute_rollback_with_backup('rb_cancel', true, 'test');
SET statement_timeout = '60s';
SELECT status, cardinality(backup_tables) AS backups, rollback_reason
FROM virtuoso.migration_log WHERE name = 'rb_cancel';
SELECT (xpath('/row/s/text()', query_to_xml(format('SELECT sum(extra) AS s FROM %s', backup_tables[1]),
        false, true, '')))[1]::text AS backed_up_sum
FROM virtuoso.migration_log WHERE name = 'rb_cancel';

-- transactional migration whose rollback fails: nothing changed, nothing recorded
SELECT status FROM virtuoso.execute_migration_with_monitoring('rb_tx',
    'ALTER TABLE rb_t ADD COLUMN tx int',
    'ALTER TABLE rb_t DROP COLUMN tx; SELECT 1/0');
SELECT status FROM virtuoso.execute_rollback_with_backup('rb_tx', true, 'test');
SELECT status, backup_tables, rollback_reason, rollback_at FROM virtuoso.migration_log WHERE name = 'rb_tx';
SELECT count(*) AS tx_columns FROM pg_attribute
WHERE attrelid = 'rb_t'::regclass AND attname = 'tx' AND NOT attisdropped;
-- its backup was rolled back with it: the only backup of rb_t is the one of rb_steps
SELECT count(*) AS rb_t_backups FROM pg_class
WHERE relnamespace = to_regnamespace('virtuoso_backup') AND relname LIKE 'rb\_t\_%' AND relkind = 'r';
RESET statement_timeout;
