-- CALL virtuoso.run_migration: the procedure form of execute_migration_with_monitoring.  It
-- commits the caller first, so a statement-by-statement migration can build indexes
-- concurrently: the function form refuses that (25001), since its own statement's snapshot
-- would be waited for.
CREATE TABLE mp_accounts (id int PRIMARY KEY, balance int);
INSERT INTO mp_accounts SELECT g, g % 100 FROM generate_series(1, 2000) g;

CALL virtuoso.run_migration('mp_concurrent',
    'CREATE INDEX CONCURRENTLY mp_accounts_balance_idx ON mp_accounts (balance); ANALYZE mp_accounts',
    'DROP INDEX CONCURRENTLY mp_accounts_balance_idx', '{"transactional": false}') \gset mp_
-- It returns the status and the id of the row it recorded.
SELECT status, :'mp_status' AS returned_status, id = :'mp_migration_id' AS returned_id,
       transactional, statements_total, statements_done, executed_by = current_user AS by_me
FROM virtuoso.migration_log WHERE name = 'mp_concurrent';
SELECT indisvalid FROM pg_index WHERE indexrelid = 'mp_accounts_balance_idx'::regclass;
DO $$
DECLARE s text; i uuid;
BEGIN
    -- (a DO block outside a transaction block is not atomic: the CALL may commit)
    CALL virtuoso.run_migration('mp_in_do', 'SELECT 1', NULL, '{}', s, i);
END $$;

-- Again with the same SQL: nothing runs, the recorded row comes back.
CALL virtuoso.run_migration('mp_concurrent',
    'CREATE INDEX CONCURRENTLY mp_accounts_balance_idx ON mp_accounts (balance); ANALYZE mp_accounts',
    'DROP INDEX CONCURRENTLY mp_accounts_balance_idx', '{"transactional": false}') \gset again_
SELECT :'again_status' AS status, :'again_migration_id' = :'mp_migration_id' AS same_row;
SELECT count(*) AS runs FROM virtuoso.migration_log WHERE name = 'mp_concurrent';

-- Transactional migrations work the same way.
CALL virtuoso.run_migration('mp_add_column', 'ALTER TABLE mp_accounts ADD COLUMN note text',
    'ALTER TABLE mp_accounts DROP COLUMN note') \gset tx_
SELECT status, id = :'tx_migration_id' AS returned_id FROM virtuoso.migration_log WHERE name = 'mp_add_column';

-- A failure is raised to the client and recorded FAILED (terse: the context names the row id).
\set VERBOSITY terse
CALL virtuoso.run_migration('mp_broken', 'ALTER TABLE mp_no_such_table ADD COLUMN x int');
SELECT status, sqlstate FROM virtuoso.migration_log WHERE name = 'mp_broken';
-- A failing concurrent build: FAILED with its error; the invalid index PostgreSQL leaves is
-- named in the hint and flagged by verify_migration_integrity.
INSERT INTO mp_accounts VALUES (3000, 1);
CALL virtuoso.run_migration('mp_unique_fails',
    'CREATE UNIQUE INDEX CONCURRENTLY mp_accounts_balance_key ON mp_accounts (balance)',
    NULL, '{"transactional": false}');
SELECT status, sqlstate, error_hint FROM virtuoso.migration_log WHERE name = 'mp_unique_fails';
SELECT check_name, status, object FROM virtuoso.verify_migration_integrity('mp_unique_fails')
WHERE check_name = 'invalid_index';
CALL virtuoso.run_top_level('DROP INDEX CONCURRENTLY mp_accounts_balance_key');

-- Inside a transaction block it cannot commit its caller: 25001, nothing recorded.
BEGIN;
CALL virtuoso.run_migration('mp_in_block', 'SELECT 1');
ROLLBACK;
SELECT count(*) AS recorded FROM virtuoso.migration_log WHERE name IN ('mp_in_block', 'mp_in_do');

-- Bad arguments are refused before the caller is committed.
CALL virtuoso.run_migration(NULL, 'SELECT 1');
CALL virtuoso.run_migration('mp_bad_options', 'SELECT 1', NULL, '{"transactional": "maybe"}');

-- The rollback of a procedure-run migration is the usual one.
SELECT status FROM virtuoso.execute_rollback_with_backup('mp_add_column', false);
SELECT count(*) AS note_columns FROM pg_attribute WHERE attrelid = 'mp_accounts'::regclass AND attname = 'note' AND NOT attisdropped;

-- Not granted to PUBLIC.
SELECT has_function_privilege('regress_virtuoso_nobody', 'virtuoso.run_migration(text, text, text, jsonb, text, uuid)', 'EXECUTE') AS nobody_may_call;
DROP TABLE mp_accounts;
