-- Demo part: audit trail, updated_at and alerts (run by scripts/demo.sh).
\pset footer off
\set ECHO queries

\echo
\echo '### Audit a table: only the changed columns of an UPDATE, no row for a no-op update'
CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric(12,2), active boolean,
                       updated_at timestamptz);
SELECT virtuoso.enable_audit('accounts');
INSERT INTO accounts (id, owner, balance, active) VALUES (1, 'ada', 100, true), (2, 'bob', 5, true);
UPDATE accounts SET balance = balance + 50 WHERE id = 1;
UPDATE accounts SET owner = owner WHERE id = 2;
DELETE FROM accounts WHERE id = 2;
SELECT operation, key, old_values, new_values, changed_columns
FROM virtuoso.audit_history('accounts', NULL);

\echo
\echo '### updated_at kept current by a C trigger (and audited like any other change)'
SELECT virtuoso.enable_updated_at('accounts');
UPDATE accounts SET active = false WHERE id = 1;
SELECT id, active, updated_at IS NOT NULL AS updated_at_set FROM accounts;
SELECT changed_columns FROM virtuoso.audit_history('accounts', '{"id": 1}') ORDER BY id DESC LIMIT 1;

\echo
\echo '### Alerts: a failed migration raises one (NOTIFY virtuoso_alerts), even after ROLLBACK'
BEGIN;
SELECT public.demo_try($$SELECT virtuoso.execute_migration_with_monitoring('accounts_bad',
    'UPDATE accounts SET balance = balance / 0')$$);
ROLLBACK;
SELECT kind, severity, object, message FROM virtuoso.alerts ORDER BY id;
SELECT virtuoso.acknowledge_alert(id) AS acknowledged FROM virtuoso.alerts WHERE kind = 'migration_failed';
SELECT count(*) AS open_alerts FROM virtuoso.alerts;
