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
