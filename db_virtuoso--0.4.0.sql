-- db_virtuoso 0.4.0, released: frozen (the install script of later versions is generated from src/*/*.sql)
\echo Use "CREATE EXTENSION db_virtuoso" to load this file. \quit

-- ==== src/pg/schema.sql
-- The schema is created here, by the script, so that it is a member of the extension and
-- DROP EXTENSION removes it. (A `schema = virtuoso` control file would make CREATE EXTENSION
-- create it before the extension exists, as a non-member left behind by DROP EXTENSION.)
-- The control file names pg_catalog only so that CREATE EXTENSION ... SCHEMA cannot move the
-- objects; every object is created in schema virtuoso, and an existing schema virtuoso that
-- is not the extension's makes CREATE EXTENSION fail instead of being taken over.
-- So @extschema@ means pg_catalog: scripts name schema virtuoso explicitly, never @extschema@,
-- and an update script must not create the schema again.
-- Schema virtuoso_backup (rollback copies) is created at run time and is not a member: it
-- holds user data, which DROP EXTENSION must not delete.
CREATE SCHEMA virtuoso;
-- Unqualified names in the script resolve as before (CREATE EXTENSION restores the setting).
SET LOCAL search_path = virtuoso, pg_temp;
COMMENT ON SCHEMA virtuoso IS 'db_virtuoso: monitored migrations, migration safety, integrity, maintenance and index advice';

-- ==== src/pg/runner.sql
-- The statement runner: statements in a background worker, as the calling role.
CREATE FUNCTION virtuoso.execute_top_level(statement text)
RETURNS text
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_top_level';
COMMENT ON FUNCTION virtuoso.execute_top_level(text) IS
'Runs one statement as a top-level command in a background worker, in this database, as the calling role and with its settings, and returns its command tag. VACUUM and DROP INDEX CONCURRENTLY work through it; statements that wait for older snapshots (CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY, DETACH PARTITION CONCURRENTLY) are refused with 25001, since the calling statement holds one: use the procedure run_top_level. Errors come back with their SQLSTATE; a statement that waits for a lock the calling transaction holds, directly or behind other sessions, fails with 40P01.';

CREATE FUNCTION virtuoso.execute_autonomous(statement text)
RETURNS text
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_autonomous';
COMMENT ON FUNCTION virtuoso.execute_autonomous(text) IS
'Runs SQL in a background worker in a transaction of its own, as the calling role, and returns its command tag: what it writes stays committed even if the calling transaction rolls back.';

CREATE PROCEDURE virtuoso.run_top_level(statement text, INOUT command_tag text DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_run_top_level';
COMMENT ON PROCEDURE virtuoso.run_top_level(text, text) IS
'Procedure form of execute_top_level, for statements that wait for every older snapshot (CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY, DETACH PARTITION CONCURRENTLY): commits the calling transaction first, then runs the statement in a background worker while this session holds no snapshot, and returns its command tag. Must be called outside a transaction block.';

-- ==== src/advisor/advisor.sql
-- Index advisor (API.md §5).
CREATE FUNCTION virtuoso.recommend_indexes(
    min_calls bigint DEFAULT 1,
    min_improvement_pct float8 DEFAULT 10,
    weight_by text DEFAULT 'calls',
    max_index_bytes bigint DEFAULT NULL,
    max_indexes int DEFAULT NULL)
RETURNS TABLE(table_name text, columns text[], index_definition text, queries_improved int,
              total_calls bigint, cost_before float8, cost_after float8,
              improvement_pct float8, estimated_size_bytes bigint, details jsonb)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_recommend_indexes';
COMMENT ON FUNCTION virtuoso.recommend_indexes(bigint, float8, text, bigint, int) IS
'Recommends a small set of B-tree indexes for the workload in pg_stat_statements (top-level statements of this database with at least min_calls calls, weighted by calls or total_time): candidates from the analysed statements, costed by the real planner with hypothetical indexes, chosen greedily by benefit per byte; a chosen index may grow by a key column its statements use, and covering variants of the same keys merge into one index (never two indexes of which one makes the other redundant by the rule of virtuoso.redundant_indexes). Each step must improve the statements it improves by min_improvement_pct, after the write cost of its index is taken off: every row the workload''s INSERT, UPDATE and DELETE statements wrote to its table (pg_stat_statements rows: the same period as the reads; the counters of pg_stat_user_tables also hold bulk loads from before the workload) costs one index probe as the planner prices it (random_page_cost plus 50 * cpu_operator_cost per tree level), in the workload''s weights. max_index_bytes bounds the summed estimated size, max_indexes the count; without max_index_bytes a step must save at least 1% of the workload''s estimated cost per tenth of the size of the tables the workload reads that its index takes (lean default). Ties within 2% are broken by a stable order (fewer columns, then table, keys). Normalised statements that do not analyse as written are retried with constants in constant-only positions (extract($1 FROM ...), date $1) and with each parameter given numeric, bigint, text, date, timestamptz, float8, boolean or interval; statements that still cannot be analysed are reported with a NOTICE and the reason, and left out. Each statement is analysed and planned as the role that ran it (pg_stat_statements userid) inside a security-restricted operation, so the functions planning evaluates get that role''s rights only; statements of roles whose privileges the caller does not have, or that no longer exist, are not analysed (one NOTICE counts them). details: for an index to create, {"action": "create", "statements": [{query, calls, cost_before, cost_after}]} with the per-call cost of each statement it serves; drop advice rows follow, with index_definition DROP INDEX CONCURRENTLY, NULL costs, estimated_size_bytes the negative of the bytes freed and details {"action": "drop", "reason": superseded | redundant | unused, "index", "frees_bytes", "covered_by"}: existing non-unique indexes of the workload''s tables, backing no constraint, that a recommended index makes redundant, that virtuoso.redundant_indexes lists, or that were not scanned since the statistics were reset.';

CREATE FUNCTION virtuoso.recommend_indexes_for_query(query text)
RETURNS TABLE(table_name text, columns text[], index_definition text, queries_improved int,
              total_calls bigint, cost_before float8, cost_after float8,
              improvement_pct float8, estimated_size_bytes bigint)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_recommend_indexes_for_query';
COMMENT ON FUNCTION virtuoso.recommend_indexes_for_query(text) IS
'Recommends B-tree indexes for one SELECT/INSERT/UPDATE/DELETE statement ($n parameters allowed: their types are inferred and the plan is generic), costed by the real planner with hypothetical indexes; only improvements of at least 10% are proposed. The statement is planned as the caller inside a security-restricted operation; every table it reads must be readable by the caller (42501).';

CREATE FUNCTION virtuoso.optimize_table_indexes(table_name regclass, apply boolean DEFAULT false)
RETURNS TABLE(table_name text, columns text[], index_definition text, queries_improved int,
              total_calls bigint, cost_before float8, cost_after float8,
              improvement_pct float8, estimated_size_bytes bigint, applied boolean)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_optimize_table_indexes';
COMMENT ON FUNCTION virtuoso.optimize_table_indexes(regclass, boolean) IS
'Recommends indexes on one table from the pg_stat_statements workload, as recommend_indexes does; with apply, builds each with CREATE INDEX CONCURRENTLY through the statement runner (indisvalid checked, an invalid build dropped and retried) and sets applied. A build that fails gives a WARNING and applied = false. The caller must be able to read table_name (42501).';

CREATE FUNCTION virtuoso.hypothetical_index_cost(
    query text, table_name regclass, key_columns text[],
    include_columns text[] DEFAULT '{}', index_pages bigint DEFAULT NULL,
    tree_height int DEFAULT NULL)
RETURNS TABLE(cost_without float8, cost_with float8, index_used boolean,
              estimated_pages bigint, estimated_size_bytes bigint, estimated_tree_height int)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_hypothetical_index_cost';
COMMENT ON FUNCTION virtuoso.hypothetical_index_cost(text, regclass, text[], text[], bigint, int) IS
'What-if costing of one statement with one hypothetical B-tree index (key_columns, optional INCLUDE columns): the generic plan''s total cost without and with it, whether the plan uses it, and the estimated index size. index_pages (1 to 4294967294) and tree_height (-1 for the planner''s own estimate from the pages, 0 to 32) override the estimate (to compare with other tools at the same size). The caller must be able to read table_name (42501).';

CREATE FUNCTION virtuoso.advisor_benchmark(min_calls bigint DEFAULT 1,
                                           candidates_per_group int DEFAULT 12)
RETURNS TABLE(measure text, value float8)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_advisor_benchmark';
COMMENT ON FUNCTION virtuoso.advisor_benchmark(bigint, integer) IS
'Benchmark of the index advisor over the pg_stat_statements workload: the greedy selection against an exhaustive search over the same candidates (the best candidates_per_group of each group of joined tables), and the time per what-if plan; then the default (lean) recommendation over every candidate against the reference Extend algorithm (Schlosser et al.) costed through the same what-if planner, at the same estimated storage and unbounded, and ours within the storage of unbounded Extend: workload cost relative to no index, index count, estimated bytes, seconds.';

-- Indexes that no scan has used since the statistics were reset, and that enforce nothing.
CREATE VIEW virtuoso.unused_indexes AS
SELECT s.schemaname,
       s.relname AS tablename,
       s.indexrelname AS indexname,
       pg_relation_size(s.indexrelid) AS index_size_bytes,
       s.idx_scan,
       pg_get_indexdef(s.indexrelid) AS index_definition,
       -- qualified and quoted: right whatever the search_path of whoever runs it
       pg_catalog.format('DROP INDEX CONCURRENTLY %I.%I', s.schemaname, s.indexrelname)
           AS drop_statement
FROM pg_catalog.pg_stat_user_indexes s
JOIN pg_catalog.pg_index i ON i.indexrelid = s.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = s.relid
WHERE s.idx_scan = 0
  -- only tables the caller may see, as virtuoso.health_may_see decides (defined later)
  AND (pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
       OR pg_catalog.pg_has_role(t.relowner, 'USAGE')
       OR pg_catalog.has_any_column_privilege(t.oid, 'SELECT'))
  AND NOT i.indisunique
  AND NOT i.indisprimary
  AND NOT i.indisexclusion
  AND i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = s.indexrelid);
COMMENT ON VIEW virtuoso.unused_indexes IS
'Valid, non-unique indexes that back no constraint and have not been scanned (idx_scan = 0) since the statistics were last reset, with their size and a DROP INDEX CONCURRENTLY statement (schema-qualified and quoted). Only indexes of tables the caller owns or may read (all with pg_read_all_stats).';

-- An index whose key columns (same operator classes, collations and sort orders) are a leading prefix of
-- another index's on the same table, with the same predicate and access method, serves no
-- query the other cannot.  Of two identical indexes, the newer is the redundant one.
CREATE VIEW virtuoso.redundant_indexes AS
WITH idx AS (
    SELECT i.indexrelid, i.indrelid, i.indisunique, i.indisprimary, c.relam,
           i.indnkeyatts,
           (string_to_array(i.indkey::text, ' ')::int2[])[1:i.indnkeyatts] AS keys,
           string_to_array(i.indkey::text, ' ')::int2[] AS all_columns,
           (string_to_array(i.indclass::text, ' ')::oid[])[1:i.indnkeyatts] AS opclasses,
           (string_to_array(i.indcollation::text, ' ')::oid[])[1:i.indnkeyatts] AS collations,
           (string_to_array(i.indoption::text, ' ')::int2[])[1:i.indnkeyatts] AS options,
           pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS predicate,
           pg_catalog.pg_get_expr(i.indexprs, i.indrelid) AS expressions
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
    JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE i.indisvalid
      -- only tables the caller may see, as virtuoso.health_may_see decides (defined later)
      AND (pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
           OR pg_catalog.pg_has_role(tc.relowner, 'USAGE')
           OR pg_catalog.has_any_column_privilege(tc.oid, 'SELECT'))
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast'
)
SELECT n.nspname AS schemaname,
       t.relname AS tablename,
       r.indexrelid::regclass::text AS redundant_index,
       k.indexrelid::regclass::text AS covering_index,
       pg_relation_size(r.indexrelid) AS redundant_size_bytes,
       CASE WHEN r.keys = k.keys THEN 'duplicate'
            ELSE 'prefix' END AS reason,
       pg_get_indexdef(r.indexrelid) AS redundant_definition,
       pg_get_indexdef(k.indexrelid) AS covering_definition,
       pg_catalog.format('DROP INDEX CONCURRENTLY %I.%I', n.nspname, ri.relname)
           AS drop_statement
FROM idx r
JOIN idx k ON k.indrelid = r.indrelid AND k.indexrelid <> r.indexrelid
          AND k.relam = r.relam
          AND k.indnkeyatts >= r.indnkeyatts
          AND k.keys[1:r.indnkeyatts] = r.keys
          AND k.opclasses[1:r.indnkeyatts] = r.opclasses
          AND k.collations[1:r.indnkeyatts] = r.collations
          AND k.options[1:r.indnkeyatts] = r.options
          AND k.predicate IS NOT DISTINCT FROM r.predicate
          AND k.expressions IS NOT DISTINCT FROM r.expressions
          AND r.all_columns <@ k.all_columns
JOIN pg_catalog.pg_class t ON t.oid = r.indrelid
JOIN pg_catalog.pg_class ri ON ri.oid = r.indexrelid  -- in the table's schema, as every index
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE NOT r.indisprimary
  -- a unique index enforces uniqueness of exactly its keys: keep it unless the other is an
  -- identical unique index
  AND (NOT r.indisunique OR (k.indisunique AND k.keys = r.keys))
  -- of two identical indexes report one: the newer (or the non-unique) one
  AND NOT (k.keys = r.keys AND r.all_columns = k.all_columns AND k.indisunique = r.indisunique
           AND NOT k.indisprimary AND k.indexrelid > r.indexrelid)
  AND NOT (k.keys = r.keys AND r.all_columns = k.all_columns AND NOT k.indisunique
           AND r.indisunique)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = r.indexrelid);
COMMENT ON VIEW virtuoso.redundant_indexes IS
'Indexes whose key columns (with the same operator classes, collations, sort orders, predicate and access method) are a leading prefix of, or identical to, another index of the same table, and that back no constraint: the other index serves every query this one does. Of two identical indexes, the newer is listed. Only indexes of tables the caller owns or may read (all with pg_read_all_stats).';

-- ==== src/alerts/alerts.sql
-- Alerts: a log, a NOTIFY per alert, a view of the open ones.
CREATE TABLE virtuoso.alert_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('CRITICAL', 'WARN', 'INFO')),
    database        name NOT NULL DEFAULT pg_catalog.current_database(),
    object          text,
    message         text NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}',
    at              timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    -- beyond the contract: dedupe of findings, resolution and acknowledgement
    fingerprint     text,
    resolved_at     timestamptz,
    acknowledged_at timestamptz,
    acknowledged_by name
);
CREATE INDEX alert_log_open ON virtuoso.alert_log (fingerprint)
    WHERE resolved_at IS NULL AND acknowledged_at IS NULL;
COMMENT ON TABLE virtuoso.alert_log IS
'One row per alert, each also sent as NOTIFY on the channel virtuoso.alert_channel with the JSON payload {id, kind, severity, database, object, message, details, at}: migration_failed (also when the caller rolled back), lock_wait (a migration''s lock waits past virtuoso.alert_lock_wait), maintenance_failed, health (CRITICAL and WARN findings of the scheduler''s round every virtuoso.health_check_interval, once while unresolved, and an INFO alert when resolved) and job_stalled (RUNNING past virtuoso.alert_stalled_after). Pruned by virtuoso.log_retention (open alerts stay).';
SELECT pg_catalog.pg_extension_config_dump('virtuoso.alert_log', '');

CREATE VIEW virtuoso.alerts AS
    SELECT id, kind, severity, database, object, message, details, at
    FROM virtuoso.alert_log
    WHERE resolved_at IS NULL AND acknowledged_at IS NULL
    ORDER BY id;
COMMENT ON VIEW virtuoso.alerts IS
'The open alerts: neither resolved (a health finding that cleared) nor acknowledged (virtuoso.acknowledge_alert).';

CREATE FUNCTION virtuoso.acknowledge_alert(id bigint)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_acknowledge_alert';
COMMENT ON FUNCTION virtuoso.acknowledge_alert(bigint) IS
'Closes an open alert (it leaves virtuoso.alerts), recording who acknowledged it and when: true, or false when it was closed already. An unresolved health finding that was acknowledged is not alerted again until it clears. 42704 for an unknown id.';

-- ==== src/audit/audit.sql
-- Audit trail and updated_at: C trigger functions enabled with one call per table.
CREATE TABLE virtuoso.audit_log (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name       text NOT NULL,
    operation        text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    key              jsonb,
    old_values       jsonb,
    new_values       jsonb,
    changed_columns  text[],
    changed_by       name NOT NULL,
    application_name text,
    txid             bigint NOT NULL,
    changed_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    -- beyond the contract: the audited relation (a partition for rows changed in one), which
    -- decides who may read the row
    relid            oid NOT NULL
);
-- audit_history's lookup; retention walks the primary key (ids grow with time).
CREATE INDEX audit_log_relid_key ON virtuoso.audit_log (relid, key);
COMMENT ON TABLE virtuoso.audit_log IS
'One row per audited INSERT, UPDATE (only the changed columns; no-op updates are skipped) or DELETE of a row, and per TRUNCATE, of tables with virtuoso.enable_audit: the key (primary key or replica identity) and values as jsonb, who changed it (the writing role), application_name, transaction id and time. Written by the trigger as the extension owner; readable through virtuoso.audit_history by the owners of the audited table, or, where SELECT is granted, row security shows each role the rows of tables it owns. Pruned by virtuoso.log_retention.';
ALTER TABLE virtuoso.audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_log_table_owners ON virtuoso.audit_log FOR SELECT
    USING (EXISTS (SELECT FROM pg_catalog.pg_class c
                   WHERE c.oid OPERATOR(pg_catalog.=) relid
                     AND pg_catalog.pg_has_role(c.relowner, 'USAGE')));
SELECT pg_catalog.pg_extension_config_dump('virtuoso.audit_log', '');

CREATE FUNCTION virtuoso.audit_trigger()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_audit_trigger';
COMMENT ON FUNCTION virtuoso.audit_trigger() IS
'Trigger function of virtuoso.enable_audit (AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW, AFTER TRUNCATE FOR EACH STATEMENT): writes virtuoso.audit_log. Arguments: include_old (t/f), then the recorded columns (none: all).';

CREATE FUNCTION virtuoso.updated_at_trigger()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_updated_at_trigger';
COMMENT ON FUNCTION virtuoso.updated_at_trigger() IS
'Trigger function of virtuoso.enable_updated_at (BEFORE INSERT OR UPDATE FOR EACH ROW): sets the column to the transaction time (or clock_timestamp()) on UPDATE, and on INSERT when it is NULL. Arguments: column name, clock or transaction.';

CREATE FUNCTION virtuoso.enable_audit(target_table regclass, columns text[] DEFAULT NULL,
                                      include_old boolean DEFAULT true)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_enable_audit';
COMMENT ON FUNCTION virtuoso.enable_audit(regclass, text[], boolean) IS
'Audits a table the caller owns (a plain or partitioned table with a primary key, a replica identity index or REPLICA IDENTITY FULL) into virtuoso.audit_log: INSERT, UPDATE (changed columns only, no-op updates skipped) and DELETE row by row, TRUNCATE as one row. columns restricts the recorded columns (the key is always recorded); include_old false leaves old_values NULL. Calling it again replaces the settings.';

CREATE FUNCTION virtuoso.disable_audit(target_table regclass)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_disable_audit';
COMMENT ON FUNCTION virtuoso.disable_audit(regclass) IS
'Stops auditing a table the caller owns (its audit_log rows stay). A NOTICE when it was not audited.';

CREATE FUNCTION virtuoso.audit_history(target_table regclass, key jsonb)
RETURNS SETOF virtuoso.audit_log
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_audit_history';
COMMENT ON FUNCTION virtuoso.audit_history(regclass, jsonb) IS
'The audit_log rows of a table the caller owns (and of its partitions) whose key equals key (NULL: every row), oldest first.';

CREATE FUNCTION virtuoso.enable_updated_at(target_table regclass, column_name text DEFAULT 'updated_at',
                                           use_clock boolean DEFAULT false)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_enable_updated_at';
COMMENT ON FUNCTION virtuoso.enable_updated_at(regclass, text, boolean) IS
'Keeps a timestamptz or timestamp column of a table the caller owns current: set on every UPDATE and on INSERT when NULL, to the transaction time or, with use_clock, clock_timestamp(). Calling it again replaces the settings.';

-- PostgreSQL clones row triggers to partitions, not the statement-level TRUNCATE trigger:
-- partitions created or attached below an audited table get theirs from this event trigger.
CREATE FUNCTION virtuoso.audit_new_partitions()
RETURNS event_trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_audit_new_partitions';
COMMENT ON FUNCTION virtuoso.audit_new_partitions() IS
'Event trigger function (ddl_command_end of CREATE TABLE and ALTER TABLE): gives a partition created or attached below a table audited by virtuoso.enable_audit the statement-level TRUNCATE trigger that PostgreSQL does not clone to partitions. Does nothing for other tables.';
CREATE EVENT TRIGGER virtuoso_audit_partitions ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION virtuoso.audit_new_partitions();

-- ==== src/expand/expand.sql
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
'Expand phase of a column change: checks the type and the mappings (up_expression: the new value from the old column, by its name, default a cast; down_expression: the old value from the new column, by its final name, default a cast), adds the new nullable column and a trigger keeping both in agreement, backfills the existing rows in committed batches of block ranges, validates a NOT NULL check and copies of the column''s CHECK constraints (NOT VALID, then VALIDATE), builds copies of its plain indexes and of the indexes of its primary key and unique constraints concurrently, then checks parity in batches; ends READY and returns the change id. Foreign keys referencing the column are moved by contract. Refuses (0A000, naming the objects, before changing anything) what it cannot carry over: identity and generated columns, foreign keys of the column itself, exclusion constraints, indexes with expressions, predicates, sort options or other operator classes, views, rules, policies and other dependents, foreign keys that could not reference the new type, CHECK constraints that do not hold for it. Each phase is in virtuoso.migration_log (expand:<change>:expand, backfill, build, parity). Called again for the same column it resumes. Must be called outside a transaction block.';

CREATE PROCEDURE virtuoso.contract_column_change(change_id text,
    drop_old_column boolean DEFAULT true, INOUT result text DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_contract_column_change';
COMMENT ON PROCEDURE virtuoso.contract_column_change(text, boolean, text) IS
'Contract phase: for a READY change with rows_differing = 0, in one short transaction under virtuoso.lock_timeout with retries, drops the trigger, moves the default and sequence ownership, sets NOT NULL (from a validated check), drops the foreign keys referencing the column, moves the primary key and unique constraints onto the index copies (ADD CONSTRAINT ... USING INDEX), gives the new column, index and CHECK copies their names, adds the foreign keys again NOT VALID, and commits; then validates each foreign key in its own transaction. The old column is dropped, or with drop_old_column => false kept as <column>_<change>_old (no default, NOT NULL, index or constraint left on it) for a later ALTER TABLE ... DROP COLUMN. For a rename, warns (WARNING and in the result) when pg_stat_statements shows statements that still name the old column. Returns what it did; each step is in virtuoso.migration_log (expand:<change>:contract, with lock_held_ms in final_stats). Must be called outside a transaction block.';

CREATE FUNCTION virtuoso.abort_column_change(change_id text)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_abort_column_change';
COMMENT ON FUNCTION virtuoso.abort_column_change(text) IS
'Aborts a change that is not CONTRACTED: drops the trigger, the helper check and the new column (with the index and constraint copies), so that the table is as before the expand. Logged in virtuoso.migration_log as expand:<change>:abort.';

-- ==== src/integrity/integrity.sql
-- Data integrity rules, database health checks and monitoring views.
CREATE FUNCTION virtuoso.validate_data_integrity(validation_rules jsonb)
RETURNS TABLE(rule_name text, status text, result_count bigint, expected_count bigint,
              validation_message text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_validate_data_integrity';
COMMENT ON FUNCTION virtuoso.validate_data_integrity(jsonb) IS
'Runs a JSON array of data-integrity rules (query rules and typed rules: not_null, unique, foreign_key, accepted_values, row_count, range, expression, freshness), each read-only in its own subtransaction on one snapshot, and returns one row per rule: PASS, FAIL, WARN or ERROR with counts and a message that samples offending rows.';

-- Whether the calling role may see facts about a relation (sizes, row estimates, bloat,
-- findings): it owns it (or is a member of its owner), may SELECT from it or from one of its
-- columns, or may read all statistics (pg_read_all_stats, which pg_monitor includes).
-- PostgreSQL itself shows relpages and pg_relation_size to everyone; the extension's reports
-- show only what the caller could find out by reading the table.
CREATE FUNCTION virtuoso.health_may_see(relid oid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_has_role('pg_read_all_stats', 'USAGE')
           OR pg_has_role(c.relowner, 'USAGE')
           OR has_any_column_privilege(c.oid, 'SELECT')
    FROM pg_class c
    WHERE c.oid = relid
$$;
COMMENT ON FUNCTION virtuoso.health_may_see(oid) IS
'Helper of check_database_health and the monitoring views: true when the calling role owns the relation (or is a member of its owner), may SELECT from it or one of its columns, or is a member of pg_read_all_stats.';

-- Whether a relation is the user's and the caller may see it: not a system or toast schema,
-- not another session's or this session's temporary schema, not a member of an extension,
-- and visible to the calling role (health_may_see).
CREATE FUNCTION virtuoso.health_is_user_relation(relid oid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = relid
                             AND d.deptype = 'e')
           AND virtuoso.health_may_see(relid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = relid
$$;
COMMENT ON FUNCTION virtuoso.health_is_user_relation(oid) IS
'Helper of check_database_health: true for relations of the user (not system, temporary or extension-owned) that the calling role may see (health_may_see).';

CREATE FUNCTION virtuoso.check_database_health(
    include_amcheck boolean DEFAULT false,
    long_running interval DEFAULT '5 min',
    idle_in_transaction interval DEFAULT '1 min',
    slot_retained_bytes bigint DEFAULT 1073741824,
    replication_lag interval DEFAULT '1 min')
RETURNS TABLE(check_name text, severity text, object text, value numeric, message text,
              remedy text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    freeze_max numeric := current_setting('autovacuum_freeze_max_age')::numeric;
    mxid_max numeric := current_setting('autovacuum_multixact_freeze_max_age')::numeric;
    block_size numeric := current_setting('block_size')::numeric;
    amcheck_schema name;
    idx record;
    checked integer := 0;
    in_recovery boolean := pg_is_in_recovery();
    -- where WAL ends here: what a slot's restart_lsn and a standby's positions are behind
    wal_end pg_lsn := CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END;
BEGIN
    IF long_running IS NULL OR idle_in_transaction IS NULL OR include_amcheck IS NULL
       OR slot_retained_bytes IS NULL OR replication_lag IS NULL THEN
        RAISE EXCEPTION 'the arguments of check_database_health must not be NULL'
            USING ERRCODE = '22023';
    END IF;

    -- Invalid indexes: left by a failed CREATE/REINDEX CONCURRENTLY; written, never read.
    RETURN QUERY
    SELECT 'invalid_index', 'WARN', i.indexrelid::regclass::text,
           pg_relation_size(i.indexrelid)::numeric,
           format('index %s on %s is invalid (a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY failed or is still running): every write maintains it, no query uses it',
                  i.indexrelid::regclass, i.indrelid::regclass),
           format('DROP INDEX CONCURRENTLY %s; then build it again: CALL virtuoso.build_index_concurrently(%L);',
                  i.indexrelid::regclass, pg_get_indexdef(i.indexrelid))
    FROM pg_index i
    WHERE NOT i.indisvalid AND virtuoso.health_is_user_relation(i.indrelid)
    ORDER BY 3;

    -- Constraints added NOT VALID and never validated.
    RETURN QUERY
    SELECT 'not_valid_constraint', 'WARN', format('%s on %s', quote_ident(con.conname), con.conrelid::regclass),
           NULL::numeric,
           format('%s constraint %I on %s was added NOT VALID and never validated: rows that existed before are not checked',
                  CASE con.contype WHEN 'f' THEN 'foreign key' ELSE 'check' END, con.conname, con.conrelid::regclass),
           format('ALTER TABLE %s VALIDATE CONSTRAINT %I;  -- takes only a SHARE UPDATE EXCLUSIVE lock',
                  con.conrelid::regclass, con.conname)
    FROM pg_constraint con
    WHERE NOT con.convalidated AND con.conrelid <> 0 AND virtuoso.health_is_user_relation(con.conrelid)
    ORDER BY 3;

    -- Sequences, and the serial/identity columns they feed, past 75% of their range.
    RETURN QUERY
    WITH seqs AS (
        SELECT s.seqrelid, s.seqincrement, s.seqmin, s.seqmax,
               CASE WHEN has_sequence_privilege(s.seqrelid, 'SELECT,USAGE')
                    THEN pg_sequence_last_value(s.seqrelid) END AS last_value,
               col.attrelid, col.attname, col.atttypid
        FROM pg_sequence s
        LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
             AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
        LEFT JOIN pg_attribute col ON col.attrelid = d.refobjid AND col.attnum = d.refobjsubid
        WHERE NOT s.seqcycle AND virtuoso.health_is_user_relation(s.seqrelid)
    ), bounded AS (
        SELECT seqs.*,
               CASE WHEN seqincrement > 0
                    THEN LEAST(seqmax, CASE atttypid WHEN 'int2'::regtype THEN 32767
                                                     WHEN 'int4'::regtype THEN 2147483647
                                                     ELSE seqmax END)
                    ELSE GREATEST(seqmin, CASE atttypid WHEN 'int2'::regtype THEN -32768
                                                        WHEN 'int4'::regtype THEN -2147483648
                                                        ELSE seqmin END) END::numeric AS bound
        FROM seqs WHERE last_value IS NOT NULL
    ), used AS (
        SELECT bounded.*,
               round(100 * CASE WHEN seqincrement > 0
                                THEN (last_value - seqmin)::numeric / NULLIF(bound - seqmin, 0)
                                ELSE (seqmax - last_value)::numeric / NULLIF(seqmax - bound, 0) END, 2) AS pct
        FROM bounded
    )
    SELECT 'sequence_exhaustion', CASE WHEN pct >= 90 THEN 'CRITICAL' ELSE 'WARN' END,
           seqrelid::regclass::text || CASE WHEN attrelid IS NOT NULL
                                         THEN format(' (%s.%I)', attrelid::regclass, attname) ELSE '' END,
           pct,
           format('sequence %s has used %s%% of its range (last value %s, limit %s%s)', seqrelid::regclass,
                  pct, last_value, bound,
                  CASE WHEN attrelid IS NOT NULL THEN format(', set by the %s column %s.%I', format_type(atttypid, NULL), attrelid::regclass, attname) ELSE '' END),
           CASE WHEN attrelid IS NOT NULL AND atttypid IN ('int2'::regtype, 'int4'::regtype)
                THEN format('ALTER TABLE %s ALTER COLUMN %I TYPE bigint; ALTER SEQUENCE %s AS bigint;  -- the column change rewrites the table: plan it (or migrate to a new bigint column in batches)',
                            attrelid::regclass, attname, seqrelid::regclass)
                ELSE format('ALTER SEQUENCE %s AS bigint MAXVALUE 9223372036854775807;', seqrelid::regclass) END
    FROM used WHERE pct >= 75
    ORDER BY pct DESC, 3;

    -- Transaction-id and multixact age of databases and tables against the autovacuum limits.
    RETURN QUERY
    WITH ages AS (
        SELECT 'xid_wraparound' AS chk, 'database ' || quote_ident(datname) AS obj,
               age(datfrozenxid)::numeric AS age, freeze_max AS lim, 'transaction ID' AS what,
               format('VACUUM (FREEZE) the oldest tables of database %I (see the table rows of this check), and end long transactions', datname) AS fix
        FROM pg_database WHERE datallowconn
        UNION ALL
        SELECT 'multixact_wraparound', 'database ' || quote_ident(datname), mxid_age(datminmxid)::numeric,
               mxid_max, 'multixact ID',
               format('VACUUM (FREEZE) the tables of database %I with the oldest multixacts', datname)
        FROM pg_database WHERE datallowconn
        UNION ALL
        (SELECT 'xid_wraparound', 'table ' || c.oid::regclass::text, age(c.relfrozenxid)::numeric, freeze_max,
                'transaction ID', format('VACUUM (FREEZE, VERBOSE) %s;', c.oid::regclass)
         FROM pg_class c
         WHERE c.relkind IN ('r', 'm') AND c.relfrozenxid <> 0 AND virtuoso.health_is_user_relation(c.oid)
           AND age(c.relfrozenxid) >= freeze_max / 2
         ORDER BY 3 DESC LIMIT 20)
        UNION ALL
        (SELECT 'multixact_wraparound', 'table ' || c.oid::regclass::text, mxid_age(c.relminmxid)::numeric, mxid_max,
                'multixact ID', format('VACUUM (FREEZE, VERBOSE) %s;', c.oid::regclass)
         FROM pg_class c
         WHERE c.relkind IN ('r', 'm') AND c.relminmxid <> 0 AND virtuoso.health_is_user_relation(c.oid)
           AND mxid_age(c.relminmxid) >= mxid_max / 2
         ORDER BY 3 DESC LIMIT 20)
    )
    SELECT chk, CASE WHEN age >= lim THEN 'CRITICAL' ELSE 'WARN' END, obj, age,
           format('%s has a %s age of %s, %s%% of autovacuum_%sfreeze_max_age (%s)%s', obj, what, age,
                  round(100 * age / lim, 1), CASE WHEN chk = 'multixact_wraparound' THEN 'multixact_' ELSE '' END, lim,
                  CASE WHEN age >= lim THEN ': anti-wraparound autovacuum is not keeping up'
                       ELSE ': anti-wraparound autovacuum starts at 100%' END),
           fix
    FROM ages WHERE age >= lim / 2
    ORDER BY 1, age DESC, 3;

    -- Duplicate indexes (same method, columns, operator classes, expressions, predicate), and
    -- indexes whose columns are a leading prefix of another index.
    RETURN QUERY
    WITH ix AS (
        SELECT i.indexrelid, i.indrelid, i.indisunique, c.relam,
               string_to_array(i.indkey::text, ' ')::int2[] AS cols,
               string_to_array(i.indclass::text, ' ')::oid[] AS classes,
               i.indcollation::text AS collations,
               coalesce(pg_get_expr(i.indexprs, i.indrelid), '') AS exprs,
               coalesce(pg_get_expr(i.indpred, i.indrelid), '') AS pred,
               EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                       AND con.contype IN ('p', 'u', 'x')) AS backs_constraint
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indisvalid AND virtuoso.health_is_user_relation(i.indrelid)
    )
    SELECT 'duplicate_index', 'WARN', a.indexrelid::regclass::text, pg_relation_size(a.indexrelid)::numeric,
           format('index %s is a duplicate of %s (same columns, method and predicate): it costs writes and space for nothing',
                  a.indexrelid::regclass, b.indexrelid::regclass),
           format('DROP INDEX CONCURRENTLY %s;', a.indexrelid::regclass)
    FROM ix a JOIN ix b ON a.indrelid = b.indrelid AND a.indexrelid <> b.indexrelid
         AND a.relam = b.relam AND a.cols = b.cols AND a.classes = b.classes
         AND a.collations = b.collations AND a.exprs = b.exprs AND a.pred = b.pred
    WHERE NOT a.backs_constraint AND (NOT a.indisunique OR b.indisunique)
      AND (b.backs_constraint OR (b.indisunique AND NOT a.indisunique) OR a.indexrelid > b.indexrelid)
    UNION ALL
    SELECT 'prefix_index', 'INFO', a.indexrelid::regclass::text, pg_relation_size(a.indexrelid)::numeric,
           format('the columns of index %s are a leading part of index %s, which can serve the same queries',
                  a.indexrelid::regclass, b.indexrelid::regclass),
           format('DROP INDEX CONCURRENTLY %s;  -- after checking that %s serves its queries (it is larger)',
                  a.indexrelid::regclass, b.indexrelid::regclass)
    FROM ix a JOIN ix b ON a.indrelid = b.indrelid AND a.indexrelid <> b.indexrelid
         AND a.relam = b.relam AND a.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
         AND cardinality(a.cols) < cardinality(b.cols)
         AND b.cols[1:cardinality(a.cols)] = a.cols AND b.classes[1:cardinality(a.classes)] = a.classes
         AND a.exprs = '' AND b.exprs = '' AND a.pred = b.pred
    WHERE NOT a.indisunique AND NOT a.backs_constraint
    ORDER BY 1, 3;

    -- Unused indexes: no scan since the statistics were reset, not unique, no constraint.
    RETURN QUERY
    SELECT 'unused_index', 'INFO', s.indexrelid::regclass::text, pg_relation_size(s.indexrelid)::numeric,
           format('index %s on %s has not been scanned since statistics were reset (%s); size %s',
                  s.indexrelid::regclass, s.relid::regclass,
                  coalesce((SELECT stats_reset::text FROM pg_stat_database WHERE datname = current_database()), 'never'),
                  pg_size_pretty(pg_relation_size(s.indexrelid))),
           format('DROP INDEX CONCURRENTLY %s;  -- if no rare job (month-end report, ...) needs it; on replicas check their statistics too',
                  s.indexrelid::regclass)
    FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
    WHERE s.idx_scan = 0 AND i.indisvalid AND NOT i.indisunique AND NOT i.indisprimary
      AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = s.indexrelid)
      AND virtuoso.health_is_user_relation(s.relid)
    ORDER BY 4 DESC, 3;

    -- Foreign keys whose referencing columns lead no index: every parent DELETE/UPDATE scans.
    RETURN QUERY
    SELECT 'foreign_key_without_index', 'WARN', format('%s on %s', quote_ident(con.conname), con.conrelid::regclass),
           NULL::numeric,
           format('foreign key %I on %s (%s) has no index on its referencing columns: deletes and key updates on %s scan %s',
                  con.conname, con.conrelid::regclass, cols.list, con.confrelid::regclass, con.conrelid::regclass),
           format('CREATE INDEX CONCURRENTLY ON %s (%s);', con.conrelid::regclass, cols.list)
    FROM pg_constraint con
    CROSS JOIN LATERAL (
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) AS list
        FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
    ) cols
    WHERE con.contype = 'f' AND virtuoso.health_is_user_relation(con.conrelid)
      AND NOT EXISTS (
          SELECT 1 FROM pg_index i
          WHERE i.indrelid = con.conrelid AND i.indisvalid AND i.indpred IS NULL
            AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(con.conkey)] @> con.conkey)
    ORDER BY 3;

    -- Tables without a primary key.
    RETURN QUERY
    SELECT 'no_primary_key', 'INFO', c.oid::regclass::text, NULLIF(GREATEST(c.reltuples, -1), -1)::numeric,
           format('table %s has no primary key: duplicate rows cannot be told apart, and logical replication cannot replicate its UPDATEs and DELETEs',
                  c.oid::regclass),
           format('ALTER TABLE %s ADD PRIMARY KEY (...);  -- or add a column: ALTER TABLE %s ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;',
                  c.oid::regclass, c.oid::regclass)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname <> 'virtuoso_backup'
      AND virtuoso.health_is_user_relation(c.oid)
      AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conrelid = c.oid AND con.contype = 'p')
    ORDER BY 3;

    -- Estimated table bloat, from pg_stats like the well-known catalog-based estimators: the
    -- pages the live rows need (tuple header, null bitmap, average column widths, fillfactor)
    -- against the pages the table has.  Marked unreliable where some column has no statistics;
    -- skipped where none has.
    RETURN QUERY
    WITH t AS (
        SELECT c.oid, c.relpages::numeric AS pages, c.reltuples::numeric AS tuples,
               coalesce((SELECT substring(o FROM 'fillfactor=([0-9]+)')::numeric
                         FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%'), 100) AS fillfactor,
               count(*) AS natts,
               count(s.attname) AS with_stats,
               sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0))::numeric AS data_width,
               bool_or(coalesce(s.null_frac, 0) > 0) AS has_nulls,
               min(a.attname) FILTER (WHERE s.attname IS NULL) AS missing
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
             AND s.attname = a.attname AND NOT s.inherited
        WHERE c.relkind IN ('r', 'm') AND c.reltuples >= 0 AND c.relpages >= 16
          AND virtuoso.health_is_user_relation(c.oid)
        GROUP BY c.oid, c.relpages, c.reltuples, c.reloptions
    ), est AS (
        SELECT t.*,
               -- 23-byte header (+ null bitmap) aligned to 8, data aligned to 8, 4-byte item pointer
               (ceil((23 + CASE WHEN has_nulls THEN ceil(natts / 8.0) ELSE 0 END) / 8) * 8
                + ceil(data_width / 8) * 8 + 4) AS tuple_bytes
        FROM t
    ), bloat AS (
        SELECT est.*,
               ceil(tuples / GREATEST(floor((block_size - 24) * fillfactor / 100 / tuple_bytes), 1)) AS needed
        FROM est
    )
    SELECT 'table_bloat', CASE WHEN missing IS NULL THEN 'WARN' ELSE 'INFO' END, oid::regclass::text,
           round(100 * (pages - needed) / pages, 1),
           format('table %s: about %s%% (%s of %s) is estimated to be free space%s', oid::regclass,
                  round(100 * (pages - needed) / pages, 1),
                  pg_size_pretty((pages - needed) * block_size), pg_size_pretty(pages * block_size),
                  CASE WHEN missing IS NULL THEN ''
                       ELSE format('; estimate unreliable: column %I has no statistics (ANALYZE %s, or it has SET STATISTICS 0)', missing, oid::regclass) END),
           format('Reclaim online with pg_repack, or run VACUUM (FULL) %s in a maintenance window (it takes an ACCESS EXCLUSIVE lock and rewrites the table)',
                  oid::regclass)
    FROM bloat
    WHERE with_stats > 0  -- never analyzed (CREATE INDEX sets reltuples too): nothing to estimate from
      AND pages > needed AND 100 * (pages - needed) / pages >= 40 AND (pages - needed) * block_size >= 1024 * 1024
    ORDER BY 4 DESC, 3;

    -- Long-running statements and sessions idle in a transaction (they hold locks and the
    -- xmin horizon, so VACUUM cannot clean up behind them).
    RETURN QUERY
    SELECT 'long_running_query', 'WARN', format('pid %s (%s, %s)', a.pid, a.usename, a.datname),
           round(extract(epoch FROM now() - a.query_start)::numeric, 1),
           format('pid %s has been running its statement for %s: %s', a.pid,
                  date_trunc('second', now() - a.query_start), left(a.query, 200)),
           format('SELECT pg_cancel_backend(%s);  -- or bound it with statement_timeout', a.pid)
    FROM pg_stat_activity a
    WHERE a.state = 'active' AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
      AND now() - a.query_start > long_running
    UNION ALL
    SELECT 'idle_in_transaction', 'WARN', format('pid %s (%s, %s)', a.pid, a.usename, a.datname),
           round(extract(epoch FROM now() - a.state_change)::numeric, 1),
           format('pid %s has been %s for %s (transaction open since %s); last statement: %s', a.pid, a.state,
                  date_trunc('second', now() - a.state_change), a.xact_start, left(a.query, 200)),
           format('SELECT pg_terminate_backend(%s);  -- and set idle_in_transaction_session_timeout', a.pid)
    FROM pg_stat_activity a
    WHERE a.state IN ('idle in transaction', 'idle in transaction (aborted)') AND a.pid <> pg_backend_pid()
      AND now() - a.state_change > idle_in_transaction
    ORDER BY 1, 4 DESC;

    -- The statement runner's worker budget: slots in use and calls waiting in line, from the
    -- session-level advisory locks (database 0) that stand for them.
    RETURN QUERY
    WITH budget AS (SELECT current_setting('virtuoso.max_runner_workers')::int AS slots),
         runner AS (
        SELECT count(*) FILTER (WHERE l.classid = 1447645780) AS in_use,
               count(*) FILTER (WHERE l.classid = 1447645777) AS waiting
        FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.database = 0 AND l.objsubid = 2 AND l.granted)
    SELECT 'runner_workers', CASE WHEN runner.waiting > 0 OR runner.in_use >= budget.slots THEN 'WARN' ELSE 'INFO' END,
           NULL::text, runner.in_use::numeric,
           format('%s of %s runner worker slots (virtuoso.max_runner_workers) in use, %s call(s) waiting in line for one',
                  runner.in_use, budget.slots, runner.waiting),
           CASE WHEN runner.waiting > 0 OR runner.in_use >= budget.slots
                THEN format('ALTER SYSTEM SET virtuoso.max_runner_workers = %s; SELECT pg_reload_conf();  -- if max_worker_processes (%s) leaves room; calls wait up to virtuoso.runner_queue_timeout (%s)',
                            budget.slots * 2, current_setting('max_worker_processes'), current_setting('virtuoso.runner_queue_timeout')) END
    FROM budget, runner;
    -- Replication and HA: server-wide facts, shown to members of pg_read_all_stats (pg_monitor
    -- includes it) and superusers, as PostgreSQL shows other sessions' replication details.
    IF NOT pg_has_role('pg_read_all_stats', 'USAGE') THEN
        IF in_recovery OR EXISTS (SELECT 1 FROM pg_replication_slots) OR EXISTS (SELECT 1 FROM pg_stat_replication)
           OR current_setting('archive_mode') <> 'off' THEN
            RETURN QUERY SELECT 'replication_checks_skipped', 'INFO', NULL::text, NULL::numeric,
                'replication slots, standbys, archiving and recovery were not checked: they are server-wide facts shown only to members of pg_read_all_stats',
                'GRANT pg_monitor TO <role>;  -- to see them';
        END IF;
    ELSE
        -- Slots: an inactive slot keeps all WAL since its restart_lsn (and a logical one holds
        -- back vacuum with its catalog_xmin); an active one can fall behind too.
        RETURN QUERY
        WITH slots AS (
            SELECT s.*, pg_wal_lsn_diff(wal_end, s.restart_lsn)::numeric AS retained
            FROM pg_replication_slots s
        )
        SELECT CASE WHEN NOT s.active THEN 'replication_slot_inactive' ELSE 'replication_slot_retention' END,
               CASE WHEN s.wal_status IN ('lost', 'unreserved') OR s.retained >= 4 * slot_retained_bytes THEN 'CRITICAL'
                    WHEN s.retained >= slot_retained_bytes OR NOT s.active THEN 'WARN' ELSE 'INFO' END,
               'slot ' || quote_ident(s.slot_name), s.retained,
               format('%s %s slot %I%s retains %s of WAL (restart_lsn %s, wal_status %s)%s%s',
                      CASE WHEN s.active THEN 'active' ELSE 'inactive' END, s.slot_type, s.slot_name,
                      CASE WHEN s.database IS NOT NULL THEN format(' (database %I)', s.database) ELSE '' END,
                      coalesce(pg_size_pretty(s.retained), 'no WAL yet'), coalesce(s.restart_lsn::text, 'none'),
                      coalesce(s.wal_status, 'unknown'),
                      CASE WHEN s.retained >= slot_retained_bytes
                           THEN format(', more than the bound of %s', pg_size_pretty(slot_retained_bytes::numeric)) ELSE '' END,
                      CASE WHEN s.catalog_xmin IS NOT NULL AND NOT s.active
                           THEN format('; its catalog_xmin %s holds back VACUUM of the catalogs', s.catalog_xmin) ELSE '' END),
               CASE WHEN s.active
                    THEN format('Find why the consumer of slot %I falls behind (its lag in pg_stat_replication, its disk, its network); bound the retention with max_slot_wal_keep_size', s.slot_name)
                    ELSE format('SELECT pg_drop_replication_slot(%L);  -- if its consumer is gone for good; otherwise start the consumer, and bound the retention with max_slot_wal_keep_size', s.slot_name) END
        FROM slots s
        WHERE NOT s.active OR s.retained >= slot_retained_bytes OR s.wal_status IN ('lost', 'unreserved')
        ORDER BY 4 DESC NULLS LAST, 3;

        -- Standbys connected to this server: write/flush/replay lag and WAL not yet replayed.
        RETURN QUERY
        SELECT 'replication_lag',
               CASE WHEN GREATEST(r.write_lag, r.flush_lag, r.replay_lag) >= 10 * replication_lag THEN 'CRITICAL' ELSE 'WARN' END,
               format('standby %s (%s)', quote_ident(r.application_name), coalesce(host(r.client_addr), 'local')),
               round(extract(epoch FROM GREATEST(r.write_lag, r.flush_lag, r.replay_lag))::numeric, 3),
               format('standby %s is behind: write lag %s, flush lag %s, replay lag %s, %s of WAL not yet replayed (state %s, sync %s)',
                      quote_ident(r.application_name), coalesce(r.write_lag::text, '-'), coalesce(r.flush_lag::text, '-'),
                      coalesce(r.replay_lag::text, '-'), pg_size_pretty(pg_wal_lsn_diff(wal_end, r.replay_lsn)),
                      r.state, r.sync_state),
               'Check the standby''s load, disk and network, and whether replay is paused (pg_get_wal_replay_pause_state() on the standby) or delayed (recovery_min_apply_delay); a synchronous standby that lags slows every commit here'
        FROM pg_stat_replication r
        WHERE GREATEST(r.write_lag, r.flush_lag, r.replay_lag) > replication_lag
        UNION ALL
        SELECT 'replication_not_streaming', 'WARN',
               format('standby %s (%s)', quote_ident(r.application_name), coalesce(host(r.client_addr), 'local')),
               NULL::numeric,
               format('standby %s is in state %s, not streaming', quote_ident(r.application_name), r.state),
               'A standby in catchup is still reading old WAL; one that stays there cannot keep up'
        FROM pg_stat_replication r
        WHERE r.state <> 'streaming'
        ORDER BY 1, 4 DESC NULLS LAST;

        -- WAL archiving that fails: the archive (and point-in-time recovery) falls behind and
        -- pg_wal fills up.
        RETURN QUERY
        SELECT 'wal_archiving_failing', 'CRITICAL', 'archiver', a.failed_count::numeric,
               format('archive_command failed %s times since %s; the last failure (%s, WAL file %s) is newer than the last success (%s): WAL is kept until archiving succeeds',
                      a.failed_count, coalesce(a.stats_reset::text, 'the statistics reset'), a.last_failed_time,
                      a.last_failed_wal, coalesce(a.last_archived_time::text, 'never')),
               'Look at the server log for the archive_command''s error and fix it (destination full, unreachable, permissions); pg_wal grows until it succeeds'
        FROM pg_stat_archiver a
        WHERE current_setting('archive_mode') <> 'off' AND a.failed_count > 0
          AND a.last_failed_time > coalesce(a.last_archived_time, '-infinity');

        IF in_recovery THEN
            -- A standby: replay paused or behind what it received, queries cancelled by
            -- recovery conflicts, no WAL receiver, and settings that let long migrations on the
            -- primary cancel standby queries.
            RETURN QUERY
            SELECT 'replay_paused', 'WARN', 'recovery', NULL::numeric,
                   format('WAL replay is %s on this standby: it serves older and older data and keeps all received WAL (replayed up to %s, received up to %s)',
                          pg_get_wal_replay_pause_state(), pg_last_wal_replay_lsn(), coalesce(pg_last_wal_receive_lsn()::text, '-')),
                   'SELECT pg_wal_replay_resume();'
            WHERE pg_get_wal_replay_pause_state() <> 'not paused';

            RETURN QUERY
            SELECT 'standby_replay_lag',
                   CASE WHEN now() - pg_last_xact_replay_timestamp() >= 10 * replication_lag THEN 'CRITICAL' ELSE 'WARN' END,
                   'recovery', round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::numeric, 3),
                   format('this standby has received %s of WAL it has not replayed; the last replayed transaction committed %s ago',
                          pg_size_pretty(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())),
                          date_trunc('second', now() - pg_last_xact_replay_timestamp())),
                   'Replay is slower than the primary writes, paused, delayed (recovery_min_apply_delay) or waiting for standby queries (max_standby_streaming_delay): see pg_stat_activity for waits on the startup process'
            WHERE pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()
              AND now() - pg_last_xact_replay_timestamp() > replication_lag;

            RETURN QUERY
            SELECT 'recovery_conflicts', 'WARN', 'database ' || quote_ident(c.datname),
                   (c.confl_tablespace + c.confl_lock + c.confl_snapshot + c.confl_bufferpin + c.confl_deadlock)::numeric,
                   format('%s queries on this standby in database %I were cancelled by recovery conflicts since the statistics were reset (snapshot %s, lock %s, buffer pin %s, deadlock %s, tablespace %s)',
                          c.confl_tablespace + c.confl_lock + c.confl_snapshot + c.confl_bufferpin + c.confl_deadlock, c.datname,
                          c.confl_snapshot, c.confl_lock, c.confl_bufferpin, c.confl_deadlock, c.confl_tablespace),
                   'snapshot conflicts: hot_standby_feedback = on (the primary then keeps rows standby queries need); lock conflicts (DDL of migrations, VACUUM truncation): a larger max_standby_streaming_delay, or run long reports elsewhere'
            FROM pg_stat_database_conflicts c
            WHERE c.confl_tablespace + c.confl_lock + c.confl_snapshot + c.confl_bufferpin + c.confl_deadlock > 0
            ORDER BY 4 DESC;

            RETURN QUERY
            SELECT 'wal_receiver_down', 'WARN', 'recovery', NULL::numeric,
                   'this standby has primary_conninfo set but no WAL receiver: it is not streaming (it replays only archived WAL, if any)',
                   'Look at the server log for the connection error to the primary (authentication, network, a missing replication slot)'
            WHERE current_setting('primary_conninfo') <> '' AND NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver);

            RETURN QUERY
            SELECT 'standby_conflict_settings', 'INFO', 'settings', NULL::numeric,
                   format('hot_standby_feedback = %s, max_standby_streaming_delay = %s, max_standby_archive_delay = %s: %s',
                          current_setting('hot_standby_feedback'), current_setting('max_standby_streaming_delay'),
                          current_setting('max_standby_archive_delay'),
                          concat_ws('; ',
                              CASE WHEN NOT current_setting('hot_standby_feedback')::boolean
                                   THEN 'VACUUM on the primary (also after a long backfill) removes rows that standby queries still need, which cancels them' END,
                              CASE WHEN current_setting('max_standby_streaming_delay') <> '-1'
                                   THEN format('a migration''s ACCESS EXCLUSIVE lock replayed here cancels standby queries on its table after %s', current_setting('max_standby_streaming_delay'))
                                   ELSE 'replay waits for standby queries without limit, so a long query makes this standby lag' END)),
                   'For long migrations: hot_standby_feedback = on on this standby, and a max_standby_streaming_delay that matches the longest standby query you accept to cancel or to wait for'
            WHERE NOT current_setting('hot_standby_feedback')::boolean
               OR current_setting('max_standby_streaming_delay') <> '-1';
        END IF;
    END IF;

    -- Opt-in: structural check of every valid B-tree index with amcheck's bt_index_check.
    IF include_amcheck THEN
        SELECT e.extnamespace::regnamespace::name INTO amcheck_schema
        FROM pg_extension e WHERE e.extname = 'amcheck';
        IF amcheck_schema IS NULL THEN
            RETURN QUERY SELECT 'btree_structure', 'INFO', NULL::text, NULL::numeric,
                'amcheck is not installed in this database: the structural index check was skipped',
                'CREATE EXTENSION amcheck;  -- then call check_database_health(include_amcheck => true)';
        ELSE
            FOR idx IN
                SELECT i.indexrelid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE c.relam = (SELECT oid FROM pg_am WHERE amname = 'btree') AND i.indisvalid
                  AND i.indisready AND c.relpersistence <> 't'
                  AND virtuoso.health_is_user_relation(i.indrelid)
                ORDER BY i.indexrelid::regclass::text
            LOOP
                BEGIN
                    EXECUTE format('SELECT %I.bt_index_check($1)', amcheck_schema) USING idx.indexrelid;
                    checked := checked + 1;
                EXCEPTION WHEN query_canceled THEN RAISE;
                WHEN OTHERS THEN
                    RETURN QUERY SELECT 'btree_structure', 'CRITICAL', idx.indexrelid::regclass::text, NULL::numeric,
                        format('bt_index_check found index %s broken: %s', idx.indexrelid::regclass, SQLERRM),
                        format('REINDEX INDEX CONCURRENTLY %s;  -- and find the cause (hardware, an operator class or collation that changed)', idx.indexrelid::regclass);
                END;
            END LOOP;
            RETURN QUERY SELECT 'btree_structure', 'INFO', NULL::text, checked::numeric,
                format('bt_index_check passed on %s B-tree index(es)', checked), NULL::text;
        END IF;
    END IF;
END
$fn$;
COMMENT ON FUNCTION virtuoso.check_database_health(boolean, interval, interval, bigint, interval) IS
'Catalog health checks, one row per finding with severity (CRITICAL, WARN, INFO), object, value, message and remedy: invalid indexes, NOT VALID constraints, sequences past 75% of their range, xid/multixact age, duplicate and prefix indexes, unused indexes, foreign keys without an index, tables without a primary key, estimated bloat, long-running and idle-in-transaction sessions, the statement runner''s worker slots in use and calls waiting for one (runner_workers, against virtuoso.max_runner_workers); replication and HA (for members of pg_read_all_stats): inactive replication slots and slots retaining more than slot_retained_bytes of WAL (with the bytes), standbys whose write/flush/replay lag passes replication_lag, failing WAL archiving, and on a standby paused or lagging replay, recovery conflicts, a missing WAL receiver and conflict settings risky for long migrations; with include_amcheck, bt_index_check of every B-tree index.';

-- Per-table activity and size for watching a migration's effect.
CREATE VIEW virtuoso.migration_performance_dashboard AS
SELECT s.schemaname, s.relname AS tablename,
       pg_catalog.pg_total_relation_size(s.relid) AS total_bytes,
       pg_catalog.pg_relation_size(s.relid) AS table_bytes,
       pg_catalog.pg_indexes_size(s.relid) AS index_bytes,
       pg_catalog.pg_total_relation_size(s.relid) - pg_catalog.pg_relation_size(s.relid)
           - pg_catalog.pg_indexes_size(s.relid) AS toast_bytes,
       pg_catalog.pg_size_pretty(pg_catalog.pg_total_relation_size(s.relid)) AS total_size,
       s.n_tup_ins AS inserts, s.n_tup_upd AS updates, s.n_tup_del AS deletes,
       s.n_tup_hot_upd AS hot_updates,
       s.n_live_tup AS live_tuples, s.n_dead_tup AS dead_tuples,
       round(100.0 * s.n_dead_tup / NULLIF(s.n_live_tup + s.n_dead_tup, 0), 2) AS dead_tuple_pct,
       s.seq_scan, s.idx_scan,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       s.vacuum_count, s.autovacuum_count, s.analyze_count, s.autoanalyze_count
FROM pg_catalog.pg_stat_user_tables s
WHERE virtuoso.health_may_see(s.relid);
COMMENT ON VIEW virtuoso.migration_performance_dashboard IS
'Per user table the caller may see (owns, may SELECT from, or all with pg_read_all_stats): total/table/index/TOAST size, inserts, updates, deletes, HOT updates, live and dead tuples, dead_tuple_pct (dead in % of all tuples), scans, last (auto)vacuum and (auto)analyze and their counts.';

-- pg_stat_statements may be missing: a view over it directly would make CREATE EXTENSION
-- fail there, so the view reads through a function that finds it at run time and says
-- what to do when it is absent.
CREATE FUNCTION virtuoso.slow_queries_analysis_rows()
RETURNS TABLE(query text, calls bigint, total_exec_time double precision,
              mean_exec_time double precision, stddev_exec_time double precision, rows bigint,
              hit_percent numeric, queryid bigint, userid oid, min_exec_time double precision,
              max_exec_time double precision, shared_blks_hit bigint, shared_blks_read bigint)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    pgss_schema name;
BEGIN
    SELECT e.extnamespace::regnamespace::name INTO pgss_schema
    FROM pg_extension e WHERE e.extname = 'pg_stat_statements';
    IF pgss_schema IS NULL THEN
        RAISE EXCEPTION 'pg_stat_statements is not installed in database "%"', current_database()
            USING ERRCODE = '55000',
                  DETAIL = 'virtuoso.slow_queries_analysis reads the statistics of pg_stat_statements.',
                  HINT = 'Add pg_stat_statements to shared_preload_libraries (a restart is needed), then run CREATE EXTENSION pg_stat_statements in this database.';
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT s.query, s.calls, s.total_exec_time, s.mean_exec_time, s.stddev_exec_time, s.rows,
                round(100.0 * s.shared_blks_hit / NULLIF(s.shared_blks_hit + s.shared_blks_read, 0), 2),
                s.queryid, s.userid, s.min_exec_time, s.max_exec_time, s.shared_blks_hit, s.shared_blks_read
         FROM %I.pg_stat_statements s
         WHERE s.dbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                         WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
           AND (pg_catalog.pg_has_role(''pg_read_all_stats'', ''USAGE'')
                OR pg_catalog.pg_has_role(s.userid, ''USAGE''))
         ORDER BY s.total_exec_time DESC', pgss_schema);
END
$fn$;
COMMENT ON FUNCTION virtuoso.slow_queries_analysis_rows() IS
'Rows of virtuoso.slow_queries_analysis: pg_stat_statements of the current database, of statements run by roles the caller is a member of (all with pg_read_all_stats), slowest total first; a clear error (55000) when pg_stat_statements is not installed.';

CREATE VIEW virtuoso.slow_queries_analysis AS
SELECT * FROM virtuoso.slow_queries_analysis_rows();
COMMENT ON VIEW virtuoso.slow_queries_analysis IS
'Statements of the current database from pg_stat_statements (those of roles the caller is a member of; all with pg_read_all_stats), slowest total first: query, calls, total_exec_time, mean_exec_time, stddev_exec_time, rows, hit_percent (shared buffer hits in %), then queryid, userid, min/max_exec_time and block counts. Says how to install pg_stat_statements when it is missing.';

-- ==== src/lint/lint.sql
-- The migration linter.
CREATE FUNCTION virtuoso.lint_migration(migration_sql text, trace boolean DEFAULT false)
RETURNS TABLE(statement_no int, rule text, severity text, object text, lock_mode text,
              message text, safe_alternative text, details jsonb)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_lint_migration';
COMMENT ON FUNCTION virtuoso.lint_migration(text, boolean) IS
'Safety analysis of a migration with PostgreSQL''s own parser and the live catalog: one row per hazard per statement (severity error, warning or info) with the lock the statement takes (PostgreSQL''s rules, AlterTableGetLockLevel for ALTER TABLE), the table''s size and row estimate now, whether it rewrites or scans, who holds or waits for a conflicting lock, and the safe alternative; details (jsonb) holds the facts. Statements it cannot analyse (DO, CALL, calls of user functions) get an info row. The migration is taken to run in one transaction (as execute_migration_with_monitoring runs it) unless it contains statements that cannot (CREATE INDEX CONCURRENTLY, VACUUM...) or its own BEGIN/COMMIT: then it is taken to run as psql runs it. trace => true runs the statements as the caller in a subtransaction that is always rolled back, under the short virtuoso.lock_timeout, and reports the locks really taken, rewrites (relfilenode changed) and durations. NULL arguments raise 22004; unparsable SQL raises 42601 with the position; an empty migration returns no rows.';

-- ==== src/maintenance/maintenance.sql
-- Maintenance: perform_maintenance_if_needed and its log (the scheduler runs the same logic).
CREATE TABLE virtuoso.maintenance_log (
    id                 bigserial PRIMARY KEY,
    started_at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at        timestamptz,
    duration           interval,
    relid              oid,
    schemaname         name NOT NULL,
    tablename          name NOT NULL,
    action             text NOT NULL,
    command            text,
    reason             text,
    status             text NOT NULL
        CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED', 'SKIPPED')),
    dead_tuples_before bigint,
    dead_tuples_after  bigint,
    dead_pct           numeric,
    pages_before       bigint,
    pages_after        bigint,
    pages_removed      bigint,
    sqlstate           text,
    error_message      text,
    executed_by        name NOT NULL,
    triggered_by       text NOT NULL CHECK (triggered_by IN ('function', 'scheduler')),
    pid                int,
    backend_start      timestamptz
);
CREATE INDEX maintenance_log_running ON virtuoso.maintenance_log (id) WHERE status = 'RUNNING';
CREATE INDEX maintenance_log_table ON virtuoso.maintenance_log (relid, started_at);
COMMENT ON TABLE virtuoso.maintenance_log IS
'One row per maintenance action (VACUUM, VACUUM (FREEZE), ANALYZE) run by perform_maintenance_if_needed or the scheduler, and per table skipped because it was locked: times, dead tuples and pages before and after, status and error. Rows left RUNNING by a crash or a terminated call are marked FAILED by the next scheduler round or perform_maintenance_if_needed call (not a dry run). From perform_maintenance_if_needed, a VACUUM''s row (RUNNING, then closed) and every FAILED row are written in transactions of their own and survive a rollback of the caller; ANALYZE and SKIPPED rows, and the closing of abandoned rows, are written in the caller''s transaction (no background worker; they commit with it) unless it is read-only.';
SELECT pg_catalog.pg_extension_config_dump('virtuoso.maintenance_log', '');
SELECT pg_catalog.pg_extension_config_dump('virtuoso.maintenance_log_id_seq', '');

CREATE FUNCTION virtuoso.perform_maintenance_if_needed(dry_run boolean DEFAULT false)
RETURNS TABLE(schemaname name, tablename name, action text, reason text,
              dead_tuples bigint, dead_pct numeric, status text, duration interval)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_perform_maintenance_if_needed';
COMMENT ON FUNCTION virtuoso.perform_maintenance_if_needed(boolean) IS
'Decides per table whether VACUUM (FREEZE) (table age near the freeze limit; first, oldest first), VACUUM (dead tuples reach virtuoso.dead_tuple_threshold plus virtuoso.dead_tuple_pct percent of the live rows, as autovacuum''s base threshold plus scale factor) or ANALYZE (as many changed rows since the last analyze); a VACUUM or ANALYZE is not due again within virtuoso.maintenance_min_interval of the table''s last one (by anyone, autovacuum included; freezing excepted) is due, runs it as a top-level command as the calling role with autovacuum''s cost delay, and logs it in virtuoso.maintenance_log. Tables locked by another session are SKIPPED with reason locked; a table in use (locks on it held or awaited by any session, sampled five times over 40 ms) is vacuumed with TRUNCATE false, since VACUUM''s end-of-table truncation would retry its exclusive lock for up to 5 s, and the log''s command and reason say so; nothing runs outside virtuoso.maintenance_window or after virtuoso.maintenance_time_budget. First marks FAILED the RUNNING rows of calls whose process is gone (crash, termination). dry_run only says what would be done. One row per table for which an action is due.';

-- ==== src/migrate/migrate.sql
-- Monitored, reversible migrations.
CREATE TABLE virtuoso.migration_log (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text NOT NULL,
    checksum         text NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED', 'SKIPPED', 'ROLLED_BACK', 'DRY_RUN')),
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at     timestamptz,
    duration         interval,
    initial_stats    jsonb,
    final_stats      jsonb,
    sqlstate         text,
    error_message    text,
    error_detail     text,
    error_hint       text,
    error_context    text,
    migration_sql    text NOT NULL,
    rollback_sql     text,
    rollback_at      timestamptz,
    rollback_reason  text,
    affected_objects jsonb NOT NULL DEFAULT '[]',
    attempts         int NOT NULL DEFAULT 0,
    lock_waits       jsonb NOT NULL DEFAULT '[]',
    lint             jsonb,
    plan_changes     jsonb,
    backup_tables    text[],
    executed_by      name NOT NULL DEFAULT current_user,
    -- beyond the contract: what verify_migration_integrity and operators need
    options          jsonb NOT NULL DEFAULT '{}',
    transactional    boolean NOT NULL DEFAULT true,
    statements_total int,
    statements_done  int,
    backend_pid      int,
    -- the role that recorded the run (executed_by is its name at the time): only roles with
    -- its privileges may replace, roll back or verify the run
    executed_by_role oid,
    -- with backend_pid, identifies the session of a RUNNING run (pids are reused)
    backend_start    timestamptz
);
CREATE INDEX migration_log_name_idx ON virtuoso.migration_log (name, started_at DESC);
CREATE INDEX migration_log_running_idx ON virtuoso.migration_log (status) WHERE status = 'RUNNING';
COMMENT ON TABLE virtuoso.migration_log IS
'One row per migration run of virtuoso.execute_migration_with_monitoring: status, timing, statistics before and after (initial_stats, final_stats: connections, commits, rollbacks, WAL position, database size, the size of each relation touched, and in final_stats wal_bytes, size_delta_bytes and rows_estimate_delta; each relation''s kind and row estimate are in virtuoso.migration_stats), the error (SQLSTATE, message, detail, hint, context), lock waits, affected objects and rollback state.';
SELECT pg_catalog.pg_extension_config_dump('virtuoso.migration_log', '');

-- The per-relation detail of a run's statistics, apart from the log row (which keeps the
-- summary a DBA reads), one row per phase (one tuple, not one per relation: the detail is
-- small, a row's overhead is not): deleted with its run, by retention or by hand.
CREATE TABLE virtuoso.migration_stats (
    migration_id uuid NOT NULL REFERENCES virtuoso.migration_log (id) ON DELETE CASCADE,
    phase        text NOT NULL CHECK (phase IN ('initial', 'final')),
    relations    jsonb NOT NULL,
    PRIMARY KEY (migration_id, phase)
);
COMMENT ON TABLE virtuoso.migration_stats IS
'Statistics of each relation a migration run touched, before (phase initial) and after (phase final) it ran: relations maps each relation''s name to its kind, size_bytes, rows_estimate, and not_measured when the relation was locked by another session at that moment. The run''s row in virtuoso.migration_log keeps the summary (initial_stats, final_stats: database counters, WAL, database size, the size of each relation, and after the run the size and row changes). Deleted with its migration_log row (virtuoso.log_retention); like migration_log, readable only by the roles granted SELECT on it.';
SELECT pg_catalog.pg_extension_config_dump('virtuoso.migration_stats', '');

CREATE FUNCTION virtuoso.execute_migration_with_monitoring(
    migration_name text,
    migration_sql  text,
    rollback_sql   text  DEFAULT NULL,
    options        jsonb DEFAULT '{}')
RETURNS virtuoso.migration_log
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_migration';
COMMENT ON FUNCTION virtuoso.execute_migration_with_monitoring(text, text, text, jsonb) IS
'Runs migration_sql once per name, serialised per database, each attempt with a short lock_timeout and retried with backoff on 55P03, atomically, and returns the virtuoso.migration_log row it recorded. Same name and SQL again returns the recorded row with a NOTICE; other SQL under an applied name is an error unless options.force. A failure is recorded as FAILED (surviving the caller''s rollback) and its error raised. Options: lock_timeout, max_retries, statement_timeout, validation_rules, lint ("error" (default): a migration with an error finding of virtuoso.lint_migration is refused before anything runs, SQLSTATE VR001; "warn": findings recorded in the lint column; "off"), max_plan_regression (a factor: the top statements of pg_stat_statements, virtuoso.plan_regression_statements of them by total time, are costed with generic plans before and after the migration SQL, each as the role that ran it; one more expensive by more than the factor fails the migration, SQLSTATE VR002; plan_changes holds both costs and plan shapes), transactional, dry_run (everything including the gate, then rolled back: status DRY_RUN, the row kept even when the caller rolls back), force. A name whose latest run another role recorded can be used only by a role with that role''s privileges (or a superuser).';

CREATE PROCEDURE virtuoso.run_migration(
    migration_name text,
    migration_sql  text,
    rollback_sql   text  DEFAULT NULL,
    options        jsonb DEFAULT '{}',
    INOUT status       text DEFAULT NULL,
    INOUT migration_id uuid DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_run_migration';
COMMENT ON PROCEDURE virtuoso.run_migration(text, text, text, jsonb, text, uuid) IS
'Procedure form of execute_migration_with_monitoring, with the same arguments, checks, log and errors: commits the calling transaction first, so that no snapshot of this session is held while the migration runs (needed by CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY in a {"transactional": false} migration), and returns the status and id of the virtuoso.migration_log row. Must be called outside a transaction block.';

CREATE FUNCTION virtuoso.execute_rollback_with_backup(
    migration_name    text,
    preserve_new_data boolean DEFAULT true,
    reason            text DEFAULT NULL)
RETURNS virtuoso.migration_log
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_rollback';
COMMENT ON FUNCTION virtuoso.execute_rollback_with_backup(text, boolean, text) IS
'Runs the stored rollback_sql of the latest SUCCESS run of a migration, lock-safe; with preserve_new_data first copies every table the migration touched into schema virtuoso_backup (names in backup_tables). The row becomes ROLLED_BACK. A transactional migration rolls back atomically: on failure nothing changes and no backup is kept. A {"transactional": false} migration rolls back statement by statement, each committing on its own: its backups are committed and listed in backup_tables before the first statement runs, and rollback_reason/rollback_at record the progress (''rolling back: k of n statements done'') and, on failure, ''rollback failed at statement k of n: SQLSTATE message''; the row stays SUCCESS until every statement is done (the migration is still applied, at least in part) and verify_migration_integrity reports it as a FAIL. Only a role with the privileges of the role that recorded the run (or a superuser) may roll it back; rollback_sql runs with the recording role''s rights.';

CREATE FUNCTION virtuoso.verify_migration_integrity(migration_name text)
RETURNS TABLE (check_name text, status text, object text, message text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_verify_migration';
COMMENT ON FUNCTION virtuoso.verify_migration_integrity(text) IS
'Checks what the latest run of a migration touched: objects that no longer exist, invalid indexes, NOT VALID constraints left behind, statements of a non-transactional run that did not complete, a statement-by-statement rollback left half way, and its stored validation rules (run with the rights of the role that recorded them). One row per check: PASS, FAIL, WARN or ERROR. Only a role with the privileges of the recording role (or a superuser) may verify a run.';

-- Captures the objects DDL touches while a migration runs (does nothing otherwise).
CREATE FUNCTION virtuoso.capture_migration_ddl()
RETURNS event_trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_capture_migration_ddl';
COMMENT ON FUNCTION virtuoso.capture_migration_ddl() IS
'Event trigger function: records the objects created, altered or dropped by a running migration into its affected_objects. Returns at once when no migration runs.';
CREATE EVENT TRIGGER virtuoso_capture_ddl ON ddl_command_end
    EXECUTE FUNCTION virtuoso.capture_migration_ddl();
CREATE EVENT TRIGGER virtuoso_capture_drops ON sql_drop
    EXECUTE FUNCTION virtuoso.capture_migration_ddl();

-- ==== src/online/online.sql
-- Zero-downtime helpers.
CREATE FUNCTION virtuoso.create_index_concurrently(index_definition text, max_attempts integer DEFAULT 3)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_create_index_concurrently';
COMMENT ON FUNCTION virtuoso.create_index_concurrently(text, integer) IS
'Builds an index with CREATE INDEX CONCURRENTLY (added where missing) through the statement runner, checks pg_index.indisvalid, drops and retries an invalid or transiently failed build up to max_attempts times, and says what it did. Refuses anything that is not one CREATE INDEX statement. As a function it runs inside the calling statement, whose snapshot the build would wait for: it refuses with 25001; use the procedure build_index_concurrently.';

CREATE PROCEDURE virtuoso.build_index_concurrently(index_definition text, INOUT index_name text DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_build_index_concurrently';
COMMENT ON PROCEDURE virtuoso.build_index_concurrently(text, text) IS
'Procedure form of create_index_concurrently: commits the calling transaction, then builds the index with CREATE INDEX CONCURRENTLY while this session holds no snapshot, checks pg_index.indisvalid, drops and retries an invalid or transiently failed build up to 3 times, and returns the index name (NULL when IF NOT EXISTS found one). Must be called outside a transaction block.';

-- Progress of long jobs, from shared memory (nothing is written per batch for it).
CREATE FUNCTION virtuoso.progress_jobs(
    OUT job text, OUT phase text, OUT done bigint, OUT total bigint, OUT pct double precision,
    OUT rows_per_s double precision, OUT eta interval, OUT pid integer, OUT role oid,
    OUT started_at timestamptz, OUT updated_at timestamptz, OUT paused_because text,
    OUT done_before bigint)
RETURNS SETOF record
LANGUAGE C VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'virtuoso_progress_jobs';
COMMENT ON FUNCTION virtuoso.progress_jobs() IS
'The running long jobs of this database (batched copies, backfills, concurrent index builds) from shared memory: those of roles whose privileges the caller has, every one for members of pg_read_all_stats. done_before counts work of earlier runs of a resumed job, left out of rows_per_s.';

CREATE VIEW virtuoso.progress AS
SELECT job, phase, done, total, pct, rows_per_s, eta, pid, role::regrole AS role, started_at,
       updated_at, paused_because
FROM virtuoso.progress_jobs();
COMMENT ON VIEW virtuoso.progress IS
'Running long jobs: phase, rows done of total, percent, rows per second, estimated time left, and why the job is pausing (if it is). A job shows to roles with the privileges of the role that runs it and to members of pg_read_all_stats; finished jobs disappear (their outcome stays in their log table).';

-- Batched copies: one row per job, its position committed with each batch.
CREATE TABLE virtuoso.batch_jobs (
    job_name     text PRIMARY KEY,
    target_table text NOT NULL,
    target_oid   oid NOT NULL,
    source_query text NOT NULL,
    key_column   text NOT NULL,
    key_type     text NOT NULL,
    upper_key    text,
    last_key     text,
    rows_total   bigint,
    rows_done    bigint NOT NULL DEFAULT 0,
    batches      integer NOT NULL DEFAULT 0,
    status       text NOT NULL DEFAULT 'RUNNING' CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED')),
    owner_role   oid NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz
);
COMMENT ON TABLE virtuoso.batch_jobs IS
'Jobs of migrate_data_batched: the bound (upper_key, the largest key when the job started) and the position (last_key, the largest key copied by the last committed batch, which commits together with its rows). A job left RUNNING resumes where it stopped when called again; only roles with the privileges of owner_role can resume it.';

CREATE TABLE virtuoso.batch_job_ranges (
    job_name       text NOT NULL REFERENCES virtuoso.batch_jobs ON DELETE CASCADE,
    range_no       integer NOT NULL,
    lower_key      text,
    upper_key      text NOT NULL,
    last_key       text,
    rows_done      bigint NOT NULL DEFAULT 0,
    batches        integer NOT NULL DEFAULT 0,
    status         text NOT NULL DEFAULT 'RUNNING'
                   CHECK (status IN ('RUNNING', 'DONE', 'STOPPED', 'FAILED')),
    worker_pid     integer,
    error_sqlstate text,
    error_message  text,
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_name, range_no)
);
COMMENT ON TABLE virtuoso.batch_job_ranges IS
'The key ranges of a migrate_data_batched job run with parallel_workers > 1: keys > lower_key (NULL: from the first) and <= upper_key, split at the job''s start by key quantiles so that every key is in exactly one range. Each range is copied by one background worker, which commits each batch together with the range''s position (last_key). A failing worker stops the others: its range is FAILED with the error, the others STOPPED where they were; calling the procedure again resumes every range that is not DONE.';

CREATE PROCEDURE virtuoso.migrate_data_batched(source_query text, target_table text,
    batch_size integer DEFAULT 10000, parallel_workers integer DEFAULT 1,
    key_column text DEFAULT 'id', job_name text DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_migrate_data_batched';
COMMENT ON PROCEDURE virtuoso.migrate_data_batched(text, text, integer, integer, text, text) IS
'Copies the rows of source_query (one SELECT, run as the caller) into target_table (columns matched by name) in batches of key_column ranges, committing each batch together with the job''s position in virtuoso.batch_jobs; bounded to the keys present when the job started. Called again with the same job (job_name, or by default the same arguments) after a cancel or crash, it resumes after the last committed batch. parallel_workers > 1 splits the keys into that many ranges by quantiles (virtuoso.batch_job_ranges), each copied by a runner background worker as the caller (within virtuoso.max_runner_workers); a failing worker stops the others and its error is raised. Pauses: virtuoso.batch_pause, virtuoso.batch_max_replay_lag, lock waits (virtuoso.lock_timeout, backed off). Must be called outside a transaction block.';

CREATE PROCEDURE virtuoso.add_column_zero_downtime(target_table regclass, column_name text,
    column_type text, default_value text DEFAULT NULL, batch_size integer DEFAULT 10000,
    not_null boolean DEFAULT false)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_add_column_zero_downtime';
COMMENT ON PROCEDURE virtuoso.add_column_zero_downtime(regclass, text, text, text, integer, boolean) IS
'Adds a column with the least locking: a default without volatile functions is stored in the catalog (no rewrite); a volatile default gets a nullable column whose default applies to new rows at once, and existing rows are filled in committed batches of block ranges. not_null: a CHECK NOT VALID, VALIDATE, SET NOT NULL (no scan), the check dropped. Every DDL step in its own transaction under virtuoso.lock_timeout with retries; type and default are checked before any change; rerunnable (an existing column of the same type is continued). Must be called outside a transaction block.';

-- ==== src/plan/plan.sql
-- Orchestrated implementation plans: every run of a plan and the rows it reported.
CREATE TABLE virtuoso.implementation_run (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    plan_name        text NOT NULL,
    plan             jsonb NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED', 'SKIPPED', 'ROLLED_BACK')),
    state            text,
    called_as        text NOT NULL CHECK (called_as IN ('function', 'procedure')),
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at     timestamptz,
    duration         interval,
    executed_by      name NOT NULL DEFAULT current_user,
    executed_by_role oid,
    backend_pid      int,
    backend_start    timestamptz
);
CREATE INDEX implementation_run_name_idx ON virtuoso.implementation_run (plan_name, started_at DESC);
COMMENT ON TABLE virtuoso.implementation_run IS
'One row per run of an implementation plan (virtuoso.execute_database_implementation or CALL virtuoso.run_implementation): its status, the state the database was left in, who ran it and how. A RUNNING row whose session ended is marked FAILED by the next run of the plan.';
SELECT pg_catalog.pg_extension_config_dump('virtuoso.implementation_run', '');

CREATE TABLE virtuoso.implementation_step (
    run_id       uuid NOT NULL REFERENCES virtuoso.implementation_run (id) ON DELETE CASCADE,
    ordinal      int NOT NULL,
    phase        text NOT NULL CHECK (phase IN ('check', 'step', 'undo', 'validation', 'plan')),
    step_name    text NOT NULL,
    status       text NOT NULL,
    duration     interval,
    details      jsonb NOT NULL DEFAULT '{}',
    migration_id uuid,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, ordinal)
);
COMMENT ON TABLE virtuoso.implementation_step IS
'The rows a plan run reported, in order: pre-checks, steps (each the migration <plan>/<step> of virtuoso.migration_log), undo of steps after a failure, post-validation, and the final row of the plan.';
SELECT pg_catalog.pg_extension_config_dump('virtuoso.implementation_step', '');

CREATE VIEW virtuoso.implementation_log AS
SELECT r.id AS run_id, r.plan_name, r.status AS plan_status, r.state AS plan_state, r.called_as,
       r.executed_by, r.started_at AS run_started_at, r.duration AS run_duration,
       s.ordinal, s.phase, s.step_name, s.status, s.duration, s.details, s.migration_id,
       s.recorded_at
FROM virtuoso.implementation_run r
LEFT JOIN virtuoso.implementation_step s ON s.run_id OPERATOR(pg_catalog.=) r.id
WHERE pg_catalog.pg_has_role(r.executed_by_role, 'USAGE') IS TRUE;
COMMENT ON VIEW virtuoso.implementation_log IS
'Every run of an implementation plan with its rows (pre-checks, steps, undo, validation, final state), limited to runs of roles whose privileges the caller has.';

CREATE FUNCTION virtuoso.execute_database_implementation(plan jsonb)
RETURNS TABLE (step_name text, status text, duration interval, details jsonb)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_database_implementation';
COMMENT ON FUNCTION virtuoso.execute_database_implementation(jsonb) IS
'Runs an implementation plan {"name", "changes": [{"name", "type", "definition", "rollback"?}], "validation_rules"?, "options"?} in the caller''s transaction: refuses it before anything runs listing every problem (22023), runs pre-checks, each step as the migration <plan>/<step>, post-validation, and returns one row per check, step, undo and the final state. A failing step stops the plan and the steps done are rolled back in reverse order; a finished plan re-run does nothing; a stopped one resumes at its first unfinished step. Plans with create_index or batched migrate_data steps are refused (25001): run them with CALL virtuoso.run_implementation.';

CREATE PROCEDURE virtuoso.run_implementation(
    plan       jsonb,
    INOUT status text DEFAULT NULL,
    INOUT run_id uuid DEFAULT NULL,
    INOUT report jsonb DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_run_implementation';
COMMENT ON PROCEDURE virtuoso.run_implementation(jsonb, text, uuid, jsonb) IS
'Procedure form of execute_database_implementation, with the same plan, checks and rows: commits the calling transaction first and after every step, so that concurrent index builds (create_index) and batched data migrations (migrate_data through virtuoso.migrate_data_batched) can run, and returns the final status, the run id of virtuoso.implementation_log and the rows as a JSON array. Must be called outside a transaction block.';

-- Nothing for PUBLIC (also on the update path, where privileges.sql does not run).
REVOKE ALL ON TABLE virtuoso.implementation_run, virtuoso.implementation_step,
    virtuoso.implementation_log FROM PUBLIC;
REVOKE ALL ON FUNCTION virtuoso.execute_database_implementation(jsonb) FROM PUBLIC;
REVOKE ALL ON PROCEDURE virtuoso.run_implementation(jsonb, text, uuid, jsonb) FROM PUBLIC;

-- ==== src/report/report.sql
-- The HTML report (API.md §10).
CREATE FUNCTION virtuoso.report_html(since interval DEFAULT '7 days',
                                     index_advice boolean DEFAULT false)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_report_html';
COMMENT ON FUNCTION virtuoso.report_html(interval, boolean) IS
'One self-contained HTML page (inline SVG charts, no scripts, nothing loaded from elsewhere) of the period since now() - since: migrations (runs per status over time, durations, failures with their errors, lock waits, rollbacks), maintenance (actions per day, dead tuples removed, tables most often due, skipped and failed actions), health findings by severity with remedies, table sizes and estimated bloat, unused and redundant indexes, slow queries, and open alerts and long jobs where those views exist. Everything is read as the calling role through the extension''s own tables, views and functions, so it shows only what the caller may see there; a section the caller may not read says why. index_advice also runs recommend_indexes() (it plans the whole pg_stat_statements workload, which can take seconds). Save it with psql -At -c "SELECT virtuoso.report_html()" > report.html.';

-- ==== src/pg/privileges.sql
-- Nothing is granted to PUBLIC: functions get EXECUTE for PUBLIC by default, so take it back.
REVOKE ALL ON SCHEMA virtuoso FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA virtuoso FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA virtuoso FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA virtuoso FROM PUBLIC;
