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
