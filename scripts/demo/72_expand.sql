-- Demo part: expand/contract of a column while writers keep writing (run by scripts/demo.sh).
\pset footer off
\set ECHO queries

\echo
\echo '### A table whose int primary key is running out, with a foreign key pointing at it'
CREATE TABLE tickets (id int PRIMARY KEY, amount numeric(10,2) NOT NULL);
INSERT INTO tickets SELECT g, g % 500 FROM generate_series(1, 20000) g;
CREATE TABLE ticket_events (ticket_id int NOT NULL REFERENCES tickets (id), line int,
                            PRIMARY KEY (ticket_id, line));
INSERT INTO ticket_events SELECT g, 1 FROM generate_series(1, 20000) g;

\echo
\echo '### Expand: a bigint copy kept in sync by a C trigger, backfilled in committed batches, its unique index built concurrently'
CALL virtuoso.expand_column_change('tickets', 'id', 'bigint', batch_size => 5000);
SELECT change_id, old_column, new_column, new_type, phase, rows_backfilled, rows_differing
FROM virtuoso.column_changes WHERE table_name = 'public.tickets';

\echo
\echo '### Writers go on through the old name meanwhile: the trigger fills the new column'
INSERT INTO tickets VALUES (20001, 12.50);
UPDATE tickets SET amount = amount + 1 WHERE id = 7;

\echo
\echo '### Contract: one short locked step swaps the columns, moves the primary key, re-points the foreign key (validated after)'
SELECT change_id FROM virtuoso.column_changes WHERE table_name = 'public.tickets' \gset
CALL virtuoso.contract_column_change(:'change_id');
SELECT format_type(atttypid, atttypmod) AS id_type FROM pg_attribute
WHERE attrelid = 'tickets'::regclass AND attname = 'id';
SELECT conname, contype, convalidated FROM pg_constraint
WHERE conrelid IN ('tickets'::regclass, 'ticket_events'::regclass) AND contype IN ('p', 'f')
ORDER BY conname;
SELECT name, status, final_stats ->> 'lock_held_ms' IS NOT NULL AS lock_time_logged
FROM virtuoso.migration_log WHERE name LIKE 'expand:%' ORDER BY started_at;
