-- Alerts: a FAILED migration is alerted even when the caller rolls back; the open alerts
-- view; acknowledge_alert and its bad input.  (NOTIFY delivery, lock waits, health rounds and
-- retention: TAP test 100_alerts.)
SHOW virtuoso.alert_channel;
SHOW virtuoso.health_check_interval;
SHOW virtuoso.log_retention;
BEGIN;
\set VERBOSITY terse
SELECT virtuoso.execute_migration_with_monitoring('alerts_regress_fail', 'SELECT 1 / 0');
\set VERBOSITY default
ROLLBACK;
SELECT kind, severity, database = current_database() AS here, object, message,
       details ->> 'sqlstate' AS sqlstate, details ->> 'attempts' AS attempts
FROM virtuoso.alerts WHERE object = 'alerts_regress_fail';
-- acknowledged: closed (true), a second time false; the row stays in the log
SELECT virtuoso.acknowledge_alert(id) FROM virtuoso.alert_log WHERE object = 'alerts_regress_fail';
SELECT virtuoso.acknowledge_alert(id) FROM virtuoso.alert_log WHERE object = 'alerts_regress_fail';
SELECT count(*) AS open FROM virtuoso.alerts WHERE object = 'alerts_regress_fail';
SELECT acknowledged_by, acknowledged_at IS NOT NULL AS acknowledged
FROM virtuoso.alert_log WHERE object = 'alerts_regress_fail';
\set VERBOSITY sqlstate
SELECT virtuoso.acknowledge_alert(NULL);
SELECT virtuoso.acknowledge_alert(-1);
-- settings only the server's configuration changes
SET virtuoso.alert_channel = 'elsewhere';
SET virtuoso.log_retention = '1 day';
-- nothing for a role without grants; the log is the extension owner's
SET ROLE regress_virtuoso_nobody;
SELECT count(*) FROM virtuoso.alerts;
SELECT virtuoso.acknowledge_alert(1);
RESET ROLE;
SET ROLE regress_virtuoso_user;
SELECT count(*) FROM virtuoso.alert_log;
INSERT INTO virtuoso.alert_log (kind, severity, message) VALUES ('forged', 'INFO', 'x');
RESET ROLE;
\set VERBOSITY default
DELETE FROM virtuoso.alert_log WHERE object = 'alerts_regress_fail';
DELETE FROM virtuoso.migration_log WHERE name = 'alerts_regress_fail';
