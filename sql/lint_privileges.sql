-- lint_migration and privileges: no EXECUTE for PUBLIC; sizes and row counts only of
-- relations the caller may read (and no lowered severity from facts it may not see); the
-- trace runs as the caller.
CREATE TABLE lint_priv (id bigint PRIMARY KEY, v int);
ANALYZE lint_priv;
SET ROLE regress_virtuoso_nobody;
SELECT try($$SELECT * FROM virtuoso.lint_migration('SELECT 1')$$);
RESET ROLE;
SET ROLE regress_virtuoso_user;
-- an empty table the caller may not read: no size, and the error stays an error
SELECT rule, severity, message, details->'relation' AS relation
FROM virtuoso.lint_migration('SET lock_timeout = ''1s''; CREATE INDEX ON lint_priv (v)')
WHERE rule = 'create_index_not_concurrent';
-- the trace runs as the caller: the caller may not change another role's table
SELECT rule, details->'trace'->>'sqlstate' AS sqlstate
FROM virtuoso.lint_migration('SET lock_timeout = ''1s''; CREATE INDEX ON lint_priv (v)', true)
WHERE rule LIKE 'trace%';
RESET ROLE;
GRANT SELECT ON lint_priv TO regress_virtuoso_user;
SET ROLE regress_virtuoso_user;
SELECT rule, severity, message, details->'relation' AS relation
FROM virtuoso.lint_migration('SET lock_timeout = ''1s''; CREATE INDEX ON lint_priv (v)')
WHERE rule = 'create_index_not_concurrent';
RESET ROLE;
DROP TABLE lint_priv;
