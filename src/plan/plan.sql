-- Orchestrated implementation plans: every run of a plan and the rows it reported.
CREATE TABLE virtuoso.implementation_run (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    plan_name        text NOT NULL,
    plan             jsonb NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED', 'SKIPPED', 'ROLLED_BACK')),
    state            text,
    called_as        text NOT NULL CHECK (called_as IN ('function', 'procedure')),
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at     timestamptz,
    duration         interval,
    executed_by      name NOT NULL DEFAULT current_user,
    executed_by_role oid,
    backend_pid      int,
    backend_start    timestamptz
);
CREATE INDEX implementation_run_name_idx ON virtuoso.implementation_run (plan_name, started_at DESC);
COMMENT ON TABLE virtuoso.implementation_run IS
'One row per run of an implementation plan (virtuoso.execute_database_implementation or CALL virtuoso.run_implementation): its status, the state the database was left in, who ran it and how. A RUNNING row whose session ended is marked FAILED by the next run of the plan.';
SELECT pg_catalog.pg_extension_config_dump('virtuoso.implementation_run', '');

CREATE TABLE virtuoso.implementation_step (
    run_id       uuid NOT NULL REFERENCES virtuoso.implementation_run (id) ON DELETE CASCADE,
    ordinal      int NOT NULL,
    phase        text NOT NULL CHECK (phase IN ('check', 'step', 'undo', 'validation', 'plan')),
    step_name    text NOT NULL,
    status       text NOT NULL,
    duration     interval,
    details      jsonb NOT NULL DEFAULT '{}',
    migration_id uuid,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, ordinal)
);
COMMENT ON TABLE virtuoso.implementation_step IS
'The rows a plan run reported, in order: pre-checks, steps (each the migration <plan>/<step> of virtuoso.migration_log), undo of steps after a failure, post-validation, and the final row of the plan.';
SELECT pg_catalog.pg_extension_config_dump('virtuoso.implementation_step', '');

CREATE VIEW virtuoso.implementation_log AS
SELECT r.id AS run_id, r.plan_name, r.status AS plan_status, r.state AS plan_state, r.called_as,
       r.executed_by, r.started_at AS run_started_at, r.duration AS run_duration,
       s.ordinal, s.phase, s.step_name, s.status, s.duration, s.details, s.migration_id,
       s.recorded_at
FROM virtuoso.implementation_run r
LEFT JOIN virtuoso.implementation_step s ON s.run_id OPERATOR(pg_catalog.=) r.id
WHERE pg_catalog.pg_has_role(r.executed_by_role, 'USAGE') IS TRUE;
COMMENT ON VIEW virtuoso.implementation_log IS
'Every run of an implementation plan with its rows (pre-checks, steps, undo, validation, final state), limited to runs of roles whose privileges the caller has.';

CREATE FUNCTION virtuoso.execute_database_implementation(plan jsonb)
RETURNS TABLE (step_name text, status text, duration interval, details jsonb)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_execute_database_implementation';
COMMENT ON FUNCTION virtuoso.execute_database_implementation(jsonb) IS
'Runs an implementation plan {"name", "changes": [{"name", "type", "definition", "rollback"?}], "validation_rules"?, "options"?} in the caller''s transaction: refuses it before anything runs listing every problem (22023), runs pre-checks, each step as the migration <plan>/<step>, post-validation, and returns one row per check, step, undo and the final state. A failing step stops the plan and the steps done are rolled back in reverse order; a finished plan re-run does nothing; a stopped one resumes at its first unfinished step. Plans with create_index or batched migrate_data steps are refused (25001): run them with CALL virtuoso.run_implementation.';

CREATE PROCEDURE virtuoso.run_implementation(
    plan       jsonb,
    INOUT status text DEFAULT NULL,
    INOUT run_id uuid DEFAULT NULL,
    INOUT report jsonb DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_run_implementation';
COMMENT ON PROCEDURE virtuoso.run_implementation(jsonb, text, uuid, jsonb) IS
'Procedure form of execute_database_implementation, with the same plan, checks and rows: commits the calling transaction first and after every step, so that concurrent index builds (create_index) and batched data migrations (migrate_data through virtuoso.migrate_data_batched) can run, and returns the final status, the run id of virtuoso.implementation_log and the rows as a JSON array. Must be called outside a transaction block.';

-- Nothing for PUBLIC (also on the update path, where privileges.sql does not run).
REVOKE ALL ON TABLE virtuoso.implementation_run, virtuoso.implementation_step,
    virtuoso.implementation_log FROM PUBLIC;
REVOKE ALL ON FUNCTION virtuoso.execute_database_implementation(jsonb) FROM PUBLIC;
REVOKE ALL ON PROCEDURE virtuoso.run_implementation(jsonb, text, uuid, jsonb) FROM PUBLIC;
