-- Demo part: data-integrity rules, database health checks and the monitoring views.
\pset footer off
\set ECHO queries

\echo
\echo '### Sample data: customers and their invoices, with a few problems planted'
CREATE TABLE customers (id int PRIMARY KEY, email text, country text);
INSERT INTO customers SELECT g, 'c' || g || '@example.com', (ARRAY['DE','FR','NL'])[1 + g % 3]
FROM generate_series(1, 5000) g;
CREATE TABLE invoices (id bigint PRIMARY KEY, customer_id int, total numeric(10,2), status text,
                       issued_at timestamptz DEFAULT now());
INSERT INTO invoices SELECT g, 1 + g % 5000, (g % 900) + 0.99, (ARRAY['open','paid'])[1 + g % 2],
       now() - (g % 48) * interval '1 hour'
FROM generate_series(1, 50000) g;
-- planted: two orphans, a negative total, an unknown status, a duplicate e-mail address
INSERT INTO invoices VALUES (50001, 9001, 10, 'open', now()), (50002, 9002, -5, 'void', now());
UPDATE customers SET email = 'c1@example.com' WHERE id = 2;

\echo
\echo '### The basic rule, exactly as migration scripts write it today'
SELECT * FROM virtuoso.validate_data_integrity($$[
  {"name": "invoice_orphans", "query": "SELECT COUNT(*) AS count FROM invoices i LEFT JOIN customers c ON i.customer_id = c.id WHERE c.id IS NULL", "expected": 0}
]$$);

\echo
\echo '### Typed rules: no SQL to write, identifiers resolved, a sample of what offends'
SELECT rule_name, status, result_count, expected_count, validation_message
FROM virtuoso.validate_data_integrity($$[
  {"name": "customer_fk", "type": "foreign_key", "table": "invoices", "column": "customer_id", "references": "customers", "referenced_column": "id"},
  {"name": "email_unique", "type": "unique", "table": "customers", "column": "email"},
  {"name": "email_present", "type": "not_null", "table": "customers", "column": "email"},
  {"name": "status_known", "type": "accepted_values", "table": "invoices", "column": "status", "values": ["open", "paid"]},
  {"name": "total_sane", "type": "range", "table": "invoices", "column": "total", "min": 0, "max": 100000},
  {"name": "paid_has_total", "type": "expression", "table": "invoices", "expression": "status <> 'paid' OR total > 0"},
  {"name": "enough_invoices", "type": "row_count", "table": "invoices", "min": 1000},
  {"name": "fresh_invoices", "type": "freshness", "table": "invoices", "column": "issued_at", "max_age": "1 day"},
  {"name": "nl_customers", "type": "row_count", "table": "customers", "min": 2000, "where": "country = 'NL'", "severity": "warn"}
]$$);

\echo
\echo '### A broken rule is an ERROR row; the others still run. Hostile names are just names.'
SELECT rule_name, status, validation_message FROM virtuoso.validate_data_integrity($$[
  {"name": "hostile", "type": "not_null", "table": "x\"; DROP TABLE invoices; --", "column": "id"},
  {"name": "writes", "query": "WITH d AS (DELETE FROM invoices RETURNING 1) SELECT count(*) FROM d"},
  {"name": "slow", "query": "SELECT count(*) FROM pg_sleep(3)", "timeout": "200ms"},
  {"name": "still_runs", "type": "row_count", "table": "invoices", "min": 1}
]$$);
SELECT count(*) AS invoices_still_there FROM invoices;

\echo
\echo '### Malformed rules: a clear 22023 error naming the rule and the field'
\set ON_ERROR_STOP 0
SELECT * FROM virtuoso.validate_data_integrity('[{"name": "typo", "type": "not_null", "table": "invoices", "colum": "id"}]');
\set ON_ERROR_STOP 1

\echo
\echo '### Inside a migration transaction: rules see its uncommitted changes'
BEGIN;
DELETE FROM invoices WHERE customer_id NOT IN (SELECT id FROM customers);
SELECT rule_name, status, result_count FROM virtuoso.validate_data_integrity($$[
  {"name": "customer_fk", "type": "foreign_key", "table": "invoices", "column": "customer_id", "references": "customers", "referenced_column": "id"}
]$$);
ROLLBACK;

\echo
\echo '### Database health: planted problems'
CREATE INDEX invoices_customer_idx ON invoices (customer_id);
CREATE INDEX invoices_customer_idx2 ON invoices (customer_id);
CREATE TABLE audit_trail (at timestamptz, note text);
ALTER TABLE invoices ADD CONSTRAINT total_positive CHECK (total > 0) NOT VALID;
CREATE SEQUENCE ticket_seq AS smallint;
SELECT setval('ticket_seq', 31000);
CREATE TABLE refunds (id int PRIMARY KEY, invoice_id bigint REFERENCES invoices);
DELETE FROM invoices WHERE id % 4 <> 0 AND id <= 48000;  -- three quarters of most pages
VACUUM ANALYZE invoices;
ANALYZE customers;
SELECT check_name, severity, object, value, message, remedy
FROM virtuoso.check_database_health()
WHERE object NOT LIKE '%orders%'
ORDER BY CASE severity WHEN 'CRITICAL' THEN 0 WHEN 'WARN' THEN 1 ELSE 2 END, check_name, object;

\echo
\echo '### Monitoring views'
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT tablename, total_size, inserts, updates, deletes, live_tuples, dead_tuples, dead_tuple_pct
FROM virtuoso.migration_performance_dashboard
WHERE tablename IN ('customers', 'invoices') ORDER BY tablename;
SELECT left(query, 60) AS query, calls, round(total_exec_time::numeric, 1) AS total_ms,
       round(mean_exec_time::numeric, 2) AS mean_ms, rows, hit_percent
FROM virtuoso.slow_queries_analysis LIMIT 5;

DROP TABLE refunds, invoices, customers, audit_trail;
DROP SEQUENCE ticket_seq;
