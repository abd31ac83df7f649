-- The extension's schema is created by CREATE EXTENSION (control file: schema = virtuoso).
COMMENT ON SCHEMA virtuoso IS 'db_virtuoso: monitored migrations, migration safety, integrity, maintenance and index advice';
