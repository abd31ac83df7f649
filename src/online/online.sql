-- Zero-downtime helpers.
CREATE FUNCTION virtuoso.create_index_concurrently(index_definition text, max_attempts integer DEFAULT 3)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'virtuoso_create_index_concurrently';
COMMENT ON FUNCTION virtuoso.create_index_concurrently(text, integer) IS
'Builds an index with CREATE INDEX CONCURRENTLY (added where missing) through the statement runner, checks pg_index.indisvalid, drops and retries an invalid or transiently failed build up to max_attempts times, and says what it did. Refuses anything that is not one CREATE INDEX statement. As a function it runs inside the calling statement, whose snapshot the build would wait for: it refuses with 25001; use the procedure build_index_concurrently.';

CREATE PROCEDURE virtuoso.build_index_concurrently(index_definition text, INOUT index_name text DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_build_index_concurrently';
COMMENT ON PROCEDURE virtuoso.build_index_concurrently(text, text) IS
'Procedure form of create_index_concurrently: commits the calling transaction, then builds the index with CREATE INDEX CONCURRENTLY while this session holds no snapshot, checks pg_index.indisvalid, drops and retries an invalid or transiently failed build up to 3 times, and returns the index name (NULL when IF NOT EXISTS found one). Must be called outside a transaction block.';

-- Progress of long jobs, from shared memory (nothing is written per batch for it).
CREATE FUNCTION virtuoso.progress_jobs(
    OUT job text, OUT phase text, OUT done bigint, OUT total bigint, OUT pct double precision,
    OUT rows_per_s double precision, OUT eta interval, OUT pid integer, OUT role oid,
    OUT started_at timestamptz, OUT updated_at timestamptz, OUT paused_because text,
    OUT done_before bigint)
RETURNS SETOF record
LANGUAGE C VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'virtuoso_progress_jobs';
COMMENT ON FUNCTION virtuoso.progress_jobs() IS
'The running long jobs of this database (batched copies, backfills, concurrent index builds) from shared memory: those of roles whose privileges the caller has, every one for members of pg_read_all_stats. done_before counts work of earlier runs of a resumed job, left out of rows_per_s.';

CREATE VIEW virtuoso.progress AS
SELECT job, phase, done, total, pct, rows_per_s, eta, pid, role::regrole AS role, started_at,
       updated_at, paused_because
FROM virtuoso.progress_jobs();
COMMENT ON VIEW virtuoso.progress IS
'Running long jobs: phase, rows done of total, percent, rows per second, estimated time left, and why the job is pausing (if it is). A job shows to roles with the privileges of the role that runs it and to members of pg_read_all_stats; finished jobs disappear (their outcome stays in their log table).';

-- Batched copies: one row per job, its position committed with each batch.
CREATE TABLE virtuoso.batch_jobs (
    job_name     text PRIMARY KEY,
    target_table text NOT NULL,
    target_oid   oid NOT NULL,
    source_query text NOT NULL,
    key_column   text NOT NULL,
    key_type     text NOT NULL,
    upper_key    text,
    last_key     text,
    rows_total   bigint,
    rows_done    bigint NOT NULL DEFAULT 0,
    batches      integer NOT NULL DEFAULT 0,
    status       text NOT NULL DEFAULT 'RUNNING' CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED')),
    owner_role   oid NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    job_id       integer GENERATED ALWAYS AS IDENTITY
);
COMMENT ON TABLE virtuoso.batch_jobs IS
'Jobs of migrate_data_batched: the bound (upper_key, the largest key when the job started) and the position (last_key, the largest key copied by the last committed batch, which commits together with its rows). A job left RUNNING resumes where it stopped when called again; only roles with the privileges of owner_role can resume it.';
COMMENT ON COLUMN virtuoso.batch_jobs.job_id IS
'The job''s number: the session running the job holds a session-level advisory lock on it (classid 1986161250, objid job_id), so another call of the same job is refused at once and different jobs never block each other.';
COMMENT ON SEQUENCE virtuoso.batch_jobs_job_id_seq IS
'Numbers the jobs of virtuoso.batch_jobs (identity of job_id).';

CREATE TABLE virtuoso.batch_job_ranges (
    job_name       text NOT NULL REFERENCES virtuoso.batch_jobs ON DELETE CASCADE,
    range_no       integer NOT NULL,
    lower_key      text,
    upper_key      text NOT NULL,
    last_key       text,
    rows_done      bigint NOT NULL DEFAULT 0,
    batches        integer NOT NULL DEFAULT 0,
    status         text NOT NULL DEFAULT 'RUNNING'
                   CHECK (status IN ('RUNNING', 'DONE', 'STOPPED', 'FAILED')),
    worker_pid     integer,
    error_sqlstate text,
    error_message  text,
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_name, range_no)
);
COMMENT ON TABLE virtuoso.batch_job_ranges IS
'The key ranges of a migrate_data_batched job run with parallel_workers > 1: keys > lower_key (NULL: from the first) and <= upper_key, split at the job''s start by key quantiles so that every key is in exactly one range. Each range is copied by one background worker, which commits each batch together with the range''s position (last_key). A failing worker stops the others: its range is FAILED with the error, the others STOPPED where they were; calling the procedure again resumes every range that is not DONE.';

CREATE PROCEDURE virtuoso.migrate_data_batched(source_query text, target_table text,
    batch_size integer DEFAULT 10000, parallel_workers integer DEFAULT 1,
    key_column text DEFAULT 'id', job_name text DEFAULT NULL)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_migrate_data_batched';
COMMENT ON PROCEDURE virtuoso.migrate_data_batched(text, text, integer, integer, text, text) IS
'Copies the rows of source_query (one SELECT, run as the caller) into target_table (columns matched by name) in batches of key_column ranges, committing each batch together with the job''s position in virtuoso.batch_jobs; bounded to the keys present when the job started. Called again with the same job (job_name, or by default the same arguments) after a cancel or crash, it resumes after the last committed batch. parallel_workers > 1 splits the keys into that many ranges by quantiles (virtuoso.batch_job_ranges), each copied by a runner background worker as the caller (within virtuoso.max_runner_workers); a failing worker stops the others and its error is raised. Pauses: virtuoso.batch_pause, virtuoso.batch_max_replay_lag, lock waits (virtuoso.lock_timeout, backed off). Must be called outside a transaction block.';

CREATE PROCEDURE virtuoso.add_column_zero_downtime(target_table regclass, column_name text,
    column_type text, default_value text DEFAULT NULL, batch_size integer DEFAULT 10000,
    not_null boolean DEFAULT false)
LANGUAGE C
AS 'MODULE_PATHNAME', 'virtuoso_add_column_zero_downtime';
COMMENT ON PROCEDURE virtuoso.add_column_zero_downtime(regclass, text, text, text, integer, boolean) IS
'Adds a column with the least locking: a default without volatile functions is stored in the catalog (no rewrite); a volatile default gets a nullable column whose default applies to new rows at once, and existing rows are filled in committed batches of block ranges. not_null: a CHECK NOT VALID, VALIDATE, SET NOT NULL (no scan), the check dropped. Every DDL step in its own transaction under virtuoso.lock_timeout with retries; type and default are checked before any change; rerunnable (an existing column of the same type is continued). Must be called outside a transaction block.';
