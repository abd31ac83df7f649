// The statement runner: executes SQL in a dynamic background worker, in the caller's
// database, as the caller's role and with the caller's settings, and hands back the
// outcome.
//
//  * TopLevel: one statement run as a top-level command through a portal, so VACUUM and
//    DROP INDEX CONCURRENTLY work from inside a function.  Statements that wait for every
//    older snapshot (CREATE INDEX / REINDEX CONCURRENTLY...) would wait for the caller's
//    own snapshot, or, if it were ignored, make rows vanish from the caller's statement:
//    they are refused (25001) while the caller holds a snapshot, and run from procedures
//    that commit the caller first (CALL virtuoso.run_top_level).  The caller's snapshot and
//    proc flags are never changed.
//  * Autonomous: SQL (with text parameters) run through SPI in the worker's own
//    transaction, which commits even when the caller later rolls back.
//
// Never hangs: at most virtuoso.max_runner_workers workers run at once in the cluster; a call
// beyond that (or with the server's worker pool full) waits in line up to
// virtuoso.runner_queue_timeout, cancellably, then fails with 53400 (runner_slots.hpp); a worker that waits for a lock the
// caller holds, directly or through a chain of other waiting sessions, is stopped and
// reported as a deadlock (40P01); cancelling or terminating the
// caller terminates the worker.
#pragma once

#include "db_virtuoso/pg/guard.hpp"

namespace virtuoso::pg {

//  * Entry: a function of this library (request.sql names it, an extern "C" RunnerEntry)
//    runs in the worker, as the caller, with the parameters; it manages its transactions
//    itself (started for it; it must leave the last one committed).  Only the extension's
//    own code builds such requests.
enum class RunMode { TopLevel, Autonomous, Entry };

// The signature of a RunMode::Entry function: params[i] is nullptr for NULL.  Plain
// PostgreSQL style (errors ereport()ed); C++ bodies go through guarded().
using RunnerEntry = void (*)(int nparams, const char *const *params);

struct RunRequest {
    RunMode mode = RunMode::TopLevel;
    std::string sql;
    std::vector<std::optional<std::string>> params;  // Autonomous only: $1.. as text
    // The extension's own log writes (fixed internal SQL): they run read-write even when the
    // caller's transaction is read-only.  Everything else follows the caller's read-only state.
    bool bookkeeping = false;
};

struct RunOutcome {
    bool ok = false;
    std::string command_tag;           // e.g. "VACUUM", "CREATE INDEX", "INSERT 0 1"
    std::optional<std::string> value;  // Autonomous: first column of the first row, if any
    ErrorData *error = nullptr;        // the worker's error when !ok (elevel ERROR)
    int worker_pid = 0;
    std::vector<std::string> captured;  // send_captured_data() texts of the worker, in order
};

// In a runner worker: hands `data` (the objects a migration's statement touched) to the
// caller, which collects it in RunOutcome::captured.  It travels in a message of its own type
// that user SQL cannot produce (a RAISE INFO is only ever shown).  Elsewhere: does nothing
// and returns false.
bool send_captured_data(const std::string &data);

// Runs the request and waits for it.  Errors of the statement come back in the outcome;
// errors of the runner itself (no slot, self-deadlock, cancel) are thrown as PgError.
// While a RunnerSession is alive in this backend, the request goes to its worker; otherwise
// a worker is started for this request alone.
RunOutcome run_in_worker(const RunRequest &request);

// As run_in_worker, but an error of the statement is raised in the caller.
RunOutcome run_in_worker_or_raise(const RunRequest &request);

// One runner worker for all the requests of one job (a statement-by-statement migration with
// its log rows, a maintenance call), one after the other: a worker start costs tens of
// milliseconds of CPU (fork, backend start, catalog caches), the requests themselves often
// far less.  RAII; while alive, it is this backend's current session: run_in_worker() sends
// every request to it (the innermost session, when they nest).
//
//  * The worker starts with the first request and holds ONE slot of
//    virtuoso.max_runner_workers until the session ends.
//  * Each request is answered as run_in_worker() answers it (outcome, notices relayed,
//    captured data, errors with their SQLSTATE, 40P01 when the worker waits for the caller,
//    cancel or terminate of the caller stops the worker) and runs in its own transaction(s),
//    with the caller's identity (user, role, security context) and settings as they are when
//    it is sent: one worker serves the caller's statements and the extension owner's log
//    writes.
//  * The worker exits, and the next request starts a fresh one, after a request that failed
//    and after a statement that may leave session state behind (SET, RESET, set_config,
//    SET ROLE, SET SESSION AUTHORIZATION, DISCARD, PREPARE, LISTEN, temporary objects,
//    session advisory locks, DO, CALL: decided conservatively from the parse tree), so no
//    later request sees state a user statement left.
//  * The destructor (or end()) tells the idle worker to exit and gives its slot back (the
//    worker has nothing in flight and exits by itself, as a one-shot worker does); a worker
//    stopped mid-request (an error of the runner, a cancel, a longjmp through the wait) is
//    terminated and waited for; a FATAL exit of the caller terminates it.
class RunnerSession {
  public:
    RunnerSession();
    ~RunnerSession();
    RunnerSession(const RunnerSession &) = delete;
    RunnerSession &operator=(const RunnerSession &) = delete;

    RunOutcome run(const RunRequest &request);
    // Tells the worker (if any) to exit now; the next request starts another.  Never throws.
    void end() noexcept;
    bool has_worker() const;

    // The innermost live session of this backend, or nullptr.
    static RunnerSession *current();

    struct State;

  private:
    State *state_;
    RunnerSession *previous_;
};

// Several runner workers at once, for one job split in parts (each part a request, usually
// RunMode::Entry).  Each worker takes a slot of the runner budget.  The caller polls: wait()
// relays the workers' notices and collects their outcomes.  The destructor (and stop_all)
// stops every worker still running and waits until it has exited; so does a FATAL exit of
// the caller.  Errors of the runner itself (no slot: 53400, a cancel) are thrown as PgError;
// errors of a worker's work come back in its outcome.
class WorkerGroup {
  public:
    WorkerGroup();
    ~WorkerGroup();
    WorkerGroup(const WorkerGroup &) = delete;
    WorkerGroup &operator=(const WorkerGroup &) = delete;

    // Starts a worker for the request (waiting in line up to virtuoso.runner_queue_timeout
    // for a slot); returns its index.
    size_t start(const RunRequest &request);
    // Waits up to timeout_ms, returning earlier when a worker finishes.  False once no
    // worker is running.
    bool wait(long timeout_ms);
    void stop_all();

    size_t size() const;
    bool running(size_t i) const;
    // A finished worker's outcome (ok, or its error; an exit without either is an error).
    RunOutcome outcome(size_t i) const;
    // The send_captured_data() texts of worker i that arrived since the last call.
    std::vector<std::string> take_captured(size_t i);

    struct Member;

  private:
    std::vector<Member *> members_;
};

// The statement kind (e.g. "CREATE INDEX CONCURRENTLY") when `sql` holds a statement that
// waits for every snapshot older than its own: CREATE INDEX CONCURRENTLY, REINDEX ...
// CONCURRENTLY, ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY.  nullptr otherwise.
// Plain PostgreSQL style: a syntax error is ereport()ed.
const char *statement_waiting_for_snapshots(const char *sql);

// Plain PostgreSQL style: raises 25001 when this backend holds a snapshot that a statement
// of kind `what` would wait for.  run_in_worker() refuses such statements this way (as an
// error of the statement, before any worker starts): they run only from procedures that
// committed their caller (see procedure.hpp).
void refuse_if_snapshot_held(const char *what);

// For code that is itself at top level (a background worker): runs one statement through a
// portal as exec_simple_query would, inside the transaction the caller started, and commits
// that transaction.  Plain PostgreSQL style: errors are ereport()ed.  `completion` receives
// the command tag and must hold COMPLETION_TAG_BUFSIZE bytes.
void run_top_level_statement(const char *sql, char *completion);

}  // namespace virtuoso::pg
