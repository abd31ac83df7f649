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
