-- Expand/contract: a column's type change or rename while writers keep writing.
CREATE SEQUENCE virtuoso.column_change_ids;
COMMENT ON SEQUENCE virtuoso.column_change_ids IS
'Numbers of the change ids of virtuoso.expand_column_change (cc1, cc2, ...).';

CREATE TABLE virtuoso.column_changes_log (
    change_id       text PRIMARY KEY,
    table_oid       oid NOT NULL,
    table_name      text NOT NULL,
    old_column      text NOT NULL,
    new_column      text NOT NULL,
    final_name      text NOT NULL,
    old_type        text NOT NULL,
    new_type        text NOT NULL,
    up_expression   text,
    down_expression text,
    batch_size      integer NOT NULL,
    phase           text NOT NULL CHECK (phase IN ('EXPANDING', 'BACKFILLING', 'READY',
                                                   'CONTRACTED', 'ABORTED', 'FAILED')),
    next_block      bigint NOT NULL DEFAULT 0,
    rows_backfilled bigint NOT NULL DEFAULT 0,
    rows_total      bigint,
    rows_differing  bigint,
    message         text,
    owner_role      oid NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at     timestamptz
);
CREATE UNIQUE INDEX column_changes_log_one_open ON virtuoso.column_changes_log (table_oid, old_column)
    WHERE phase IN ('EXPANDING', 'BACKFILLING', 'READY', 'FAILED');
COMMENT ON INDEX virtuoso.column_changes_log_one_open IS
'At most one change per column that has not ended: a second expand of the column resumes it.';
COMMENT ON TABLE virtuoso.column_changes_log IS
'Changes of virtuoso.expand_column_change: the column added (new_column, renamed to final_name by contract), the mappings, the phase, and the backfill position (next_block, committed with each batch). A change left EXPANDING, BACKFILLING or FAILED resumes when expand_column_change is called again for the same column; only roles with the privileges of owner_role can resume, contract or abort it.';

CREATE VIEW virtuoso.column_changes AS
SELECT change_id, table_name, old_column, final_name AS new_column, new_type, phase,
       rows_backfilled, rows_total, rows_differing, started_at, updated_at, finished_at,
       new_column AS working_column, old_type, up_expression, down_expression, message,
       owner_role::regrole AS owner_role
FROM virtuoso.column_changes_log l
WHERE pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
   OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
              WHERE r.oid OPERATOR(pg_catalog.=) l.owner_role
                AND pg_catalog.pg_has_role(r.oid, 'USAGE'));
COMMENT ON VIEW virtuoso.column_changes IS
'Column changes of expand_column_change started by roles whose privileges the caller has (every one for members of pg_read_all_stats): phase (EXPANDING, BACKFILLING, READY, CONTRACTED, ABORTED, FAILED), rows backfilled, rows that disagree under the mapping at the last parity check (contract needs 0), and the last error of a FAILED change.';

CREATE FUNCTION virtuoso.column_change_trigger()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_column_change_trigger';
COMMENT ON FUNCTION virtuoso.column_change_trigger() IS
'Trigger function of expand_column_change (BEFORE INSERT OR UPDATE FOR EACH ROW): keeps the old and the new column in agreement. When a row changes only the new column, the old one gets the down mapping of it; otherwise the new one gets the up mapping of the old. Arguments: old column, new column, up and down query (built by expand_column_change).';

CREATE PROCEDURE virtuoso.expand_column_change(target_table regclass, column_name text,
    new_type text, up_expression text DEFAULT NULL, down_expression text DEFAULT NULL,
    new_column_name text DEFAULT NULL, batch_size integer DEFAULT 10000,
    INOUT change_id text DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_expand_column_change';
COMMENT ON PROCEDURE virtuoso.expand_column_change(regclass, text, text, text, text, text, integer, text) IS
'Expand phase of a column change: checks the type and the mappings (up_expression: the new value from the old column, by its name, default a cast; down_expression: the old value from the new column, by its final name, default a cast), adds the new nullable column and a trigger keeping both in agreement, backfills the existing rows in committed batches of block ranges, validates a NOT NULL check and copies of the column''s CHECK constraints (NOT VALID, then VALIDATE), builds copies of its plain indexes and of the indexes of its primary key and unique constraints concurrently, then checks parity in batches; ends READY and returns the change id. Foreign keys referencing the column are moved by contract. Refuses (0A000, naming the objects, before changing anything) what it cannot carry over: generated columns, identity columns to a type other than smallint, integer or bigint, foreign keys of the column itself, exclusion constraints, indexes with expressions, predicates, sort options or other operator classes, views, rules, policies and other dependents, foreign keys that could not reference the new type, CHECK constraints that do not hold for it. Each phase is in virtuoso.migration_log (expand:<change>:expand, backfill, build, parity). Called again for the same column it resumes. Must be called outside a transaction block.';

CREATE PROCEDURE virtuoso.contract_column_change(change_id text,
    drop_old_column boolean DEFAULT true, INOUT result text DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_contract_column_change';
COMMENT ON PROCEDURE virtuoso.contract_column_change(text, boolean, text) IS
'Contract phase: for a READY change with rows_differing = 0, in one short transaction under virtuoso.lock_timeout with retries, drops the trigger, moves the default and sequence ownership, sets NOT NULL (from a validated check), moves an identity (ALWAYS or BY DEFAULT, its sequence''s name, options and current value; bounds that were the old type''s defaults become the new type''s), drops the foreign keys referencing the column, moves the primary key and unique constraints onto the index copies (ADD CONSTRAINT ... USING INDEX), gives the new column, index and CHECK copies their names, adds the foreign keys again NOT VALID, and commits; then validates each foreign key in its own transaction. The old column is dropped, or with drop_old_column => false kept as <column>_<change>_old (no default, NOT NULL, index or constraint left on it) for a later ALTER TABLE ... DROP COLUMN. For a rename, warns (WARNING and in the result) when pg_stat_statements shows statements that still name the old column. Returns what it did; each step is in virtuoso.migration_log (expand:<change>:contract, with lock_held_ms in final_stats). Must be called outside a transaction block.';

CREATE FUNCTION virtuoso.abort_column_change(change_id text)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_abort_column_change';
COMMENT ON FUNCTION virtuoso.abort_column_change(text) IS
'Aborts a change that is not CONTRACTED: drops the trigger, the helper check and the new column (with the index and constraint copies), so that the table is as before the expand. Logged in virtuoso.migration_log as expand:<change>:abort.';
