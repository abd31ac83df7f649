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
    -- session-level advisory locks (database 0) that stand for them; of the slots in use, those
    -- of workers idle in the pool (virtuoso.runner_idle_timeout: waiting on their latch), which
    -- give their slot to a caller in line.  (Other users' workers show as busy to callers
    -- without pg_read_all_stats, who cannot see their state.)
    RETURN QUERY
    WITH budget AS (SELECT current_setting('virtuoso.max_runner_workers')::int AS slots),
         runner AS (
        SELECT count(*) FILTER (WHERE l.classid = 1447645780) AS in_use,
               count(*) FILTER (WHERE l.classid = 1447645780 AND a.state = 'idle'
                                  AND a.wait_event_type = 'Extension') AS idle,
               count(*) FILTER (WHERE l.classid = 1447645777) AS waiting
        FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid
        WHERE l.locktype = 'advisory' AND l.database = 0 AND l.objsubid = 2 AND l.granted)
    SELECT 'runner_workers', CASE WHEN runner.waiting > 0 OR runner.in_use - runner.idle >= budget.slots THEN 'WARN' ELSE 'INFO' END,
           NULL::text, runner.in_use::numeric,
           format('%s of %s runner worker slots (virtuoso.max_runner_workers) in use (%s by workers idle in the pool), %s call(s) waiting in line for one',
                  runner.in_use, budget.slots, runner.idle, runner.waiting),
           CASE WHEN runner.waiting > 0 OR runner.in_use - runner.idle >= budget.slots
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
