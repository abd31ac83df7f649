// The statement runner: caller side (launch, wait, relay) and worker side (execute).
//
// The code that calls into PostgreSQL here is written in plain C style, with no C++ object
// alive across a call that may ereport; the C++ API at the bottom goes through pg_call().
#include "db_virtuoso/pg/runner.hpp"

#include "db_virtuoso/pg/bgworker.hpp"
#include "db_virtuoso/pg/procedure.hpp"
#include "db_virtuoso/pg/runner_pool.hpp"
#include "db_virtuoso/pg/runner_slots.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "access/parallel.h"
#include "access/printtup.h"
#include "access/xlog.h"
#include "commands/async.h"
#include "libpq/pqformat.h"
#include "libpq/pqmq.h"
#include "mb/pg_wchar.h"
#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/fmgrprotos.h"
#include "utils/portal.h"
#include "utils/ps_status.h"
#include "utils/timeout.h"
#include "utils/wait_event.h"
}

extern "C" PGDLLEXPORT void virtuoso_runner_main(Datum main_arg);

namespace virtuoso::pg {
namespace {

constexpr uint64 kRunnerMagic = 0x56495254;  // "VIRT"
constexpr Size kQueueSize = 64 * 1024;
constexpr long kPollMillis = 50;         // how often the caller checks for a self-deadlock
constexpr long kStopWaitMillis = 30000;  // how long a stopped worker's exit is waited for

enum TocKey : uint64 { kKeyFixed = 1, kKeyRequests, kKeyReplies };

// Message types of the worker's replies beyond the protocol's 'E', 'N' and 'C'.
constexpr char kMsgValue = 'V';  // first column of the first row (Autonomous)
constexpr char kMsgDone = 'Z';   // the worker finished; nothing follows
// Data captured for the caller (send_captured_data).  No backend protocol message uses this
// type, and user SQL in the worker can only produce protocol messages (notices, COPY data,
// parameter status...), so what arrives under it comes from the extension's own code.
constexpr char kMsgCaptured = 'o';

// Set in a runner worker: a statement it runs must not start another runner (the runner
// waits for its caller's locks, a worker waiting on a worker has no caller to ask).
bool in_runner_worker = false;

// In a runner worker: memory of the request being served (reset after each one).
MemoryContext request_memory = nullptr;

// What the worker needs for its whole life (the segment's fixed part).  Everything else comes
// with each request, over the request queue.
struct RunnerShared {
    Oid database_id;
    Oid authenticated_user_id;
    pid_t caller_pid;
    int slot;  // the runner slot its starter holds for it (taken over by a worker kept idle)
};

// One request: this header, then the SQL (or the entry's name), the parameters and the
// caller's settings (SerializeGUCState), in one message of the request queue.  The caller's
// identity and settings travel with every request: one worker serves requests made as
// different users (the caller, the extension's owner) with different settings.
struct RequestHeader {
    int mode;  // RunMode
    int nparams;
    bool read_only;    // the caller's transaction is read-only (and this is no bookkeeping)
    bool bookkeeping;  // the extension's own log write: kept out of pg_stat_statements
    bool last;         // the worker exits once it has answered
    bool outer_is_superuser;
    Oid outer_user_id;  // GetCurrentRoleId(): InvalidOid when no SET ROLE is active
    Oid current_user_id;
    int sec_context;
    uint32 sql_len;  // with its terminating zero
    uint32 params_len;
    uint32 guc_len;
};

bool exit_callback_registered = false;

// A worker of this backend: one it started (handle) or an idle one it claimed from the pool.
struct WorkerRef {
    BackgroundWorkerHandle *handle = nullptr;
    pool::Claim claim;

    bool empty() const { return handle == nullptr && claim.entry < 0; }
};

// Tells the worker to stop wherever it is (a claimed one only while it still works for us).
void terminate_worker(const WorkerRef &w) {
    if (w.handle != nullptr) TerminateBackgroundWorker(w.handle);
    pool::terminate(w.claim);
}

// The running workers of this backend (runner sessions, one-shot calls, WorkerGroups; empty
// where free), so that a FATAL exit of the caller (terminate, postmaster death) stops them.
constexpr int kMaxWorkers = 128;
WorkerRef own_workers[kMaxWorkers];

void terminate_own_workers(int, Datum) {
    for (auto &w : own_workers) {
        terminate_worker(w);
        w = WorkerRef{};
    }
}

void register_exit_callback() {
    if (!exit_callback_registered) {
        before_shmem_exit(terminate_own_workers, (Datum)0);
        exit_callback_registered = true;
    }
}

// Index in own_workers, or -1 when all are taken (the worker then still runs; only a FATAL
// exit of the caller would not stop it at once).
int register_worker(const WorkerRef &w) {
    register_exit_callback();
    for (int i = 0; i < kMaxWorkers; ++i)
        if (own_workers[i].empty()) {
            own_workers[i] = w;
            return i;
        }
    return -1;
}

void unregister_worker(int index) {
    if (index >= 0) own_workers[index] = WorkerRef{};
}

// The worker's PID while it works for this backend, else 0.
pid_t worker_pid(const WorkerRef &w) {
    pid_t pid = 0;
    if (w.handle != nullptr) {
        if (GetBackgroundWorkerPid(w.handle, &pid) != BGWH_STARTED) pid = 0;
    } else if (pool::serving(w.claim)) {
        pid = w.claim.pid;
    }
    return pid;
}

// The worker no longer works for this backend: one it started has exited; a claimed one has
// exited or gone back to the pool.
bool worker_gone(const WorkerRef &w) {
    if (w.handle == nullptr) return !pool::serving(w.claim);
    pid_t pid;
    BgwHandleStatus status = GetBackgroundWorkerPid(w.handle, &pid);
    return status == BGWH_STOPPED || status == BGWH_POSTMASTER_DIED;
}

constexpr int kMaxChain = 64;  // processes looked at per check of the blocking chain

// The PIDs blocking `pid` (held or queued-before locks), from pg_blocking_pids.
void blocking_pids(int pid, int **pids, int *n) {
    Datum blockers = DirectFunctionCall1(pg_blocking_pids, Int32GetDatum(pid));
    ArrayType *array = DatumGetArrayTypeP(blockers);
    Datum *elems;
    bool *nulls;
    deconstruct_array(array, INT4OID, sizeof(int32), true, TYPALIGN_INT, &elems, &nulls, n);
    *pids = static_cast<int *>(palloc(sizeof(int) * (*n + 1)));
    int kept = 0;
    for (int i = 0; i < *n; ++i)
        if (!nulls[i]) (*pids)[kept++] = DatumGetInt32(elems[i]);
    *n = kept;
}

// Does the worker wait, directly or through a chain of other waiting sessions, for this
// backend?  (The caller reads t, another session queues ALTER TABLE t behind it, the worker
// queues behind the ALTER: nobody's deadlock detector sees the caller waiting for its
// worker.)  Breadth first, cycle-safe, at most kMaxChain processes; on success `path`
// holds the PIDs from the worker to this backend.
bool worker_waits_for_caller(int worker_pid, StringInfo path) {
    int node[kMaxChain];
    int parent[kMaxChain];
    int count = 0;
    node[count] = worker_pid;
    parent[count++] = -1;
    for (int head = 0; head < count; ++head) {
        int *pids;
        int n;
        blocking_pids(node[head], &pids, &n);
        for (int i = 0; i < n; ++i) {
            bool seen = false;
            for (int j = 0; j < count && !seen; ++j) seen = node[j] == pids[i];
            if (seen) continue;
            if (pids[i] == MyProcPid) {
                int chain[kMaxChain];
                int len = 0;
                for (int at = head; at >= 0; at = parent[at]) chain[len++] = node[at];
                appendStringInfo(path, "The db_virtuoso runner (PID %d) waits", chain[len - 1]);
                for (int k = len - 2; k >= 0; --k)
                    appendStringInfo(path, " for PID %d, which waits", chain[k]);
                appendStringInfo(path, " for a lock held by this session (PID %d)", MyProcPid);
                return true;
            }
            if (count == kMaxChain) return false;  // bounded: a later poll looks again
            node[count] = pids[i];
            parent[count++] = head;
        }
    }
    return false;
}

struct RawOutcome {
    bool ok;
    bool done;
    char *tag;
    char *value;
    ErrorData *error;
    int worker_pid;
    List *captured;  // kMsgCaptured texts, in order
};

// Handles one message of the worker.  Notices are re-raised here at their own level.
void handle_message(shm_mq_handle *, char *data, Size nbytes, RawOutcome *out) {
    StringInfoData msg;
    initStringInfo(&msg);
    appendBinaryStringInfo(&msg, data, static_cast<int>(nbytes));
    char type = pq_getmsgbyte(&msg);
    switch (type) {
        case 'E':
        case 'N': {
            ErrorData *edata = static_cast<ErrorData *>(palloc0(sizeof(ErrorData)));
            pq_parse_errornotice(&msg, edata);
            if (type == 'N' || edata->elevel < ERROR) {
                ThrowErrorData(edata);  // a notice or warning: show it and go on
            } else {
                edata->elevel = ERROR;  // a worker's FATAL is an ERROR for the caller
                if (out->error == nullptr) out->error = edata;
                out->ok = false;
            }
            break;
        }
        case 'C':
            out->tag = pstrdup(pq_getmsgstring(&msg));
            out->ok = out->error == nullptr;
            break;
        case kMsgValue:
            out->value = pstrdup(pq_getmsgstring(&msg));
            break;
        case kMsgCaptured:
            out->captured = lappend(out->captured, pstrdup(pq_getmsgstring(&msg)));
            break;
        case kMsgDone:
            out->done = true;
            break;
        default:
            break;  // ParameterStatus, NotificationResponse and the like: not ours to relay
    }
    pfree(msg.data);
}

void wait_for_worker(const WorkerRef &worker, shm_mq_handle *mqh, RawOutcome *out) {
    // The chain checks allocate; they run every kPollMillis for as long as the wait lasts.
    MemoryContext poll_context = AllocSetContextCreate(
        CurrentMemoryContext, "db_virtuoso runner wait", ALLOCSET_SMALL_SIZES);
    long waited = 0;
    for (;;) {
        Size nbytes;
        void *data;
        shm_mq_result res = shm_mq_receive(mqh, &nbytes, &data, true);
        if (res == SHM_MQ_SUCCESS) {
            handle_message(mqh, static_cast<char *>(data), nbytes, out);
            if (out->done) break;
            continue;
        }
        if (res == SHM_MQ_DETACHED) break;  // the worker is gone

        const pid_t pid = worker_pid(worker);
        // A claimed worker gone before it attached to the queue: nothing says so but the pool.
        if (pid == 0 && worker.handle == nullptr) break;
        if (pid != 0) {
            out->worker_pid = pid;
            if (waited >= kPollMillis) {
                MemoryContext outer = MemoryContextSwitchTo(poll_context);
                StringInfoData path;
                initStringInfo(&path);
                bool deadlock = worker_waits_for_caller(pid, &path);
                MemoryContextSwitchTo(outer);
                if (deadlock) {
                    // (session_request stops the worker and waits for it before the error
                    // goes on)
                    ereport(ERROR,
                            (errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
                             errmsg("the statement needs a lock that the calling transaction "
                                    "holds"),
                             errdetail("%s; the runner has been stopped.", path.data),
                             errhint("Run it outside a transaction block, or commit the work "
                                     "that locked the table first.")));
                }
                MemoryContextReset(poll_context);
            }
        }
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kPollMillis,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        waited += kPollMillis;
        CHECK_FOR_INTERRUPTS();
    }
    MemoryContextDelete(poll_context);
}

// Waits (interrupts held, bounded) until worker_gone().  False if it is still there.
bool wait_for_exit(const WorkerRef &w, long max_ms) {
    bool stopped = false;
    HOLD_INTERRUPTS();
    for (long waited = 0;; waited += 10) {
        if (worker_gone(w)) {
            stopped = true;
            break;
        }
        if (waited >= max_ms) break;
        // The postmaster sets our latch when a worker we started stops (bgw_notify_pid).
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
    RESUME_INTERRUPTS();
    return stopped;
}

// Stops the worker and waits until it has exited, so that a caller told "stopped" (an error,
// a cancel) never sees its statement finish afterwards -- e.g. once its own locks are gone.
// Interrupts are held: this runs while an error is being handled.  Bounded, in case a
// worker does not answer SIGTERM.
void stop_worker(const WorkerRef &w) {
    terminate_worker(w);
    (void)wait_for_exit(w, kStopWaitMillis);
}

struct SnapshotCheck {
    const RunRequest *request;
    const char *waits_for_snapshots;  // statement_waiting_for_snapshots() of the request
};

bool concurrently_option(List *params) {
    ListCell *lc;
    foreach (lc, params) {
        DefElem *opt = lfirst_node(DefElem, lc);
        if (strcmp(opt->defname, "concurrently") == 0) return defGetBoolean(opt);
    }
    return false;
}

}  // namespace

const char *statement_waiting_for_snapshots(const char *sql) {
    // Cheap test first: most statements never get near the parser here.
    if (strcasestr(sql, "concurrently") == nullptr) return nullptr;
    List *stmts = raw_parser(sql, RAW_PARSE_DEFAULT);
    ListCell *lc;
    foreach (lc, stmts) {
        Node *stmt = lfirst_node(RawStmt, lc)->stmt;
        if (IsA(stmt, IndexStmt) && castNode(IndexStmt, stmt)->concurrent)
            return "CREATE INDEX CONCURRENTLY";
        if (IsA(stmt, ReindexStmt) && concurrently_option(castNode(ReindexStmt, stmt)->params))
            return "REINDEX CONCURRENTLY";
        if (IsA(stmt, AlterTableStmt)) {
            ListCell *c;
            foreach (c, castNode(AlterTableStmt, stmt)->cmds) {
                auto *cmd = lfirst_node(AlterTableCmd, c);
                if (cmd->subtype == AT_DetachPartition && cmd->def != nullptr &&
                    castNode(PartitionCmd, cmd->def)->concurrent)
                    return "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY";
            }
        }
    }
    return nullptr;
}

void refuse_if_snapshot_held(const char *what) {
    release_procedure_snapshot();
    if (!holds_snapshot()) return;
    ereport(ERROR, (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                    errmsg("%s cannot run while the calling statement holds a snapshot", what),
                    errdetail("It waits until every snapshot older than its own is gone, this "
                              "session's included; a function call (or a transaction in REPEATABLE "
                              "READ or SERIALIZABLE) holds its snapshot until it ends."),
                    errhint("Use CALL virtuoso.build_index_concurrently(...), CALL "
                            "virtuoso.run_top_level(...) or CALL virtuoso.run_migration(...), "
                            "outside a transaction block.")));
}

namespace {

void check_snapshot_waiter(void *arg) {
    auto *args = static_cast<SnapshotCheck *>(arg);
    args->waits_for_snapshots = statement_waiting_for_snapshots(args->request->sql.c_str());
    if (args->waits_for_snapshots != nullptr) refuse_if_snapshot_held(args->waits_for_snapshots);
}

// Builds the DSM segment of a worker (its fixed part, the request queue and the reply queue)
// and describes the worker.  The mapping and both queue handles outlive the caller's
// (sub)transactions, as a session does: they are given back by session_stop() /
// group_release(), or at the caller's exit.
dsm_segment *build_segment(shm_mq_handle **requests_out, shm_mq_handle **replies_out,
                           BackgroundWorker *worker_out, RunnerShared **fixed_out = nullptr) {
    MemoryContext outer = MemoryContextSwitchTo(TopMemoryContext);
    shm_toc_estimator e;
    shm_toc_initialize_estimator(&e);
    shm_toc_estimate_chunk(&e, sizeof(RunnerShared));
    shm_toc_estimate_chunk(&e, kQueueSize);
    shm_toc_estimate_chunk(&e, kQueueSize);
    shm_toc_estimate_keys(&e, 3);
    Size segsize = shm_toc_estimate(&e);

    dsm_segment *seg = dsm_create(segsize, 0);
    dsm_pin_mapping(seg);  // not the resource owner's: a subtransaction's end must not detach it
    shm_toc *toc = shm_toc_create(kRunnerMagic, dsm_segment_address(seg), segsize);

    auto *fixed = static_cast<RunnerShared *>(shm_toc_allocate(toc, sizeof(RunnerShared)));
    fixed->database_id = MyDatabaseId;
    fixed->authenticated_user_id = GetAuthenticatedUserId();
    fixed->caller_pid = MyProcPid;
    fixed->slot = -1;
    shm_toc_insert(toc, kKeyFixed, fixed);
    if (fixed_out != nullptr) *fixed_out = fixed;

    shm_mq *requests = shm_mq_create(shm_toc_allocate(toc, kQueueSize), kQueueSize);
    shm_toc_insert(toc, kKeyRequests, requests);
    shm_mq_set_sender(requests, MyProc);
    shm_mq *replies = shm_mq_create(shm_toc_allocate(toc, kQueueSize), kQueueSize);
    shm_toc_insert(toc, kKeyReplies, replies);
    shm_mq_set_receiver(replies, MyProc);
    *requests_out = shm_mq_attach(requests, seg, nullptr);
    *replies_out = shm_mq_attach(replies, seg, nullptr);

    *worker_out = describe_worker("virtuoso_runner_main", "db_virtuoso runner",
                                  BgWorkerStart_ConsistentState, BGW_NEVER_RESTART);
    snprintf(worker_out->bgw_name, BGW_MAXLEN, "db_virtuoso runner for PID %d", MyProcPid);
    worker_out->bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
    worker_out->bgw_notify_pid = MyProcPid;
    MemoryContextSwitchTo(outer);
    return seg;
}

// The request as one message (see RequestHeader), in the caller's current memory context:
// the caller's identity and settings as they are now.
struct RequestMessage {
    char *data;
    Size size;
};

RequestMessage build_request(const RunRequest &req, bool last) {
    Size sql_len = req.sql.size() + 1;
    Size params_len = 0;
    for (const auto &p : req.params) params_len += sizeof(int32) + (p ? p->size() : 0);
    Size guc_len = EstimateGUCStateSpace();
    const Size header_len = MAXALIGN(sizeof(RequestHeader));
    RequestMessage message;
    message.size = header_len + sql_len + params_len + guc_len;
    message.data = static_cast<char *>(palloc0(message.size));

    auto *h = reinterpret_cast<RequestHeader *>(message.data);
    h->mode = static_cast<int>(req.mode);
    h->nparams = static_cast<int>(req.params.size());
    h->read_only = XactReadOnly && !req.bookkeeping;
    h->bookkeeping = req.bookkeeping;
    h->last = last;
    h->outer_user_id = GetCurrentRoleId();
    h->outer_is_superuser = superuser_arg(GetOuterUserId());
    GetUserIdAndSecContext(&h->current_user_id, &h->sec_context);
    h->sql_len = static_cast<uint32>(sql_len);
    h->params_len = static_cast<uint32>(params_len);
    h->guc_len = static_cast<uint32>(guc_len);

    char *cursor = message.data + header_len;
    memcpy(cursor, req.sql.c_str(), sql_len);
    cursor += sql_len;
    for (const auto &p : req.params) {
        int32 len = p ? static_cast<int32>(p->size()) : -1;
        memcpy(cursor, &len, sizeof(int32));
        cursor += sizeof(int32);
        if (p) {
            memcpy(cursor, p->data(), p->size());
            cursor += p->size();
        }
    }
    SerializeGUCState(guc_len, cursor);
    return message;
}

// Detaches the caller's ends of a worker's queues and its segment (build_segment), each
// once: a worker still attached sees the end of its requests.
void detach_worker_memory(dsm_segment **seg, shm_mq_handle **requests, shm_mq_handle **replies) {
    if (*requests != nullptr) shm_mq_detach(*requests);
    *requests = nullptr;
    if (*replies != nullptr) shm_mq_detach(*replies);
    *replies = nullptr;
    if (*seg != nullptr) dsm_detach(*seg);
    *seg = nullptr;
}

// ---- runner sessions (caller side) -------------------------------------------------------

// One worker serving requests one after the other; nothing while no worker runs.
struct SessionState {
    dsm_segment *seg = nullptr;
    shm_mq_handle *requests = nullptr;
    shm_mq_handle *replies = nullptr;
    WorkerRef worker;
    int slot = -1;        // of the runner budget, held while a worker it started lives
    int registered = -1;  // index in own_workers
};

// Gives the session a worker: an idle one of the pool (runner_pool.hpp), which holds its own
// slot, or a new one (waiting in line for a slot, see runner_slots.hpp).
void session_start(SessionState *s) {
    BackgroundWorker worker;
    RunnerShared *fixed = nullptr;
    s->seg = build_segment(&s->requests, &s->replies, &worker, &fixed);
    s->worker.claim = pool::claim(dsm_segment_handle(s->seg));
    if (s->worker.claim.entry >= 0) {
        s->registered = register_worker(s->worker);
        return;
    }
    MemoryContext outer = MemoryContextSwitchTo(TopMemoryContext);  // the handle, likewise
    s->worker.handle = start_runner_worker(&worker);
    MemoryContextSwitchTo(outer);
    s->slot = take_held_runner_slot();
    fixed->slot = s->slot;
    shm_mq_set_handle(s->requests, s->worker.handle);
    shm_mq_set_handle(s->replies, s->worker.handle);
    s->registered = register_worker(s->worker);
}

// Ends the session, whatever state it is in: the worker is told to exit (its request queue
// detached: an idle worker exits at once) or, with `terminate`, stopped wherever it is; it
// is waited for up to `wait_ms` (past it, terminated and waited for; -1: not waited for),
// and its slot given back.
void session_stop(SessionState *s, bool terminate, long wait_ms) {
    WorkerRef &w = s->worker;
    if (terminate) terminate_worker(w);
    // (a claimed worker that ends its job normally goes back to the pool: detached queues)
    detach_worker_memory(&s->seg, &s->requests, &s->replies);
    if (!w.empty() && wait_ms >= 0 && !wait_for_exit(w, wait_ms)) stop_worker(w);
    if (w.handle != nullptr) pfree(w.handle);
    w = WorkerRef{};
    unregister_worker(s->registered);
    s->registered = -1;
    release_runner_slot_number(s->slot);
    s->slot = -1;
}

// Ends a session whose worker is idle (or has exited after its last request): it has nothing
// in flight and exits by itself once its request queue is detached, so the slot is given
// back at once, without waiting for the process to be gone (as a one-shot worker's always
// was: waiting costs tens of milliseconds of wall time on a busy machine, per job).
void session_end(void *arg) {
    session_stop(static_cast<SessionState *>(arg), false, -1);
}

void session_kill(void *arg) {
    session_stop(static_cast<SessionState *>(arg), true, kStopWaitMillis);
}

// Sends the request.  To a worker it started, the queue's handle tells when it is gone; a
// claimed one has no handle: the send does not block, and the pool says whether the worker
// still works for us while the queue is full.
shm_mq_result send_request(SessionState *s, const RequestMessage &message) {
    if (s->worker.handle != nullptr)
        return shm_mq_send(s->requests, message.size, message.data, false, true);
    for (;;) {
        shm_mq_result res = shm_mq_send(s->requests, message.size, message.data, true, true);
        if (res != SHM_MQ_WOULD_BLOCK) return res;
        if (!pool::serving(s->worker.claim)) return SHM_MQ_DETACHED;
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kPollMillis,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

struct RequestArgs {
    SessionState *state;
    const RunRequest *request;
    bool last;                        // the worker exits after it (it may leave session state)
    const char *waits_for_snapshots;  // statement_waiting_for_snapshots() of the request
    RawOutcome out;
};

// Sends the request to the session's worker (starting one if there is none) and waits for its
// answer.  An error of the runner itself (no slot, cancel, self-deadlock, the worker gone)
// stops the worker and is raised; the statement's own error comes back in args->out.
void session_request(void *arg) {
    auto *a = static_cast<RequestArgs *>(arg);
    SessionState *s = a->state;
    RequestMessage message = build_request(*a->request, a->last);
    // Building it read catalogs (a catalog snapshot): drop it before anything waits for us.
    if (a->waits_for_snapshots != nullptr) refuse_if_snapshot_held(a->waits_for_snapshots);
    for (int tries = 0;; ++tries) {
        if (s->seg == nullptr) session_start(s);
        if (send_request(s, message) == SHM_MQ_SUCCESS) break;
        // The worker is gone before it read the request (terminated while idle, or failed to
        // start): nothing of it ran.  Once more with a fresh worker.
        session_stop(s, true, kStopWaitMillis);
        if (tries > 0)
            ereport(ERROR,
                    (errcode(ERRCODE_CONNECTION_FAILURE),
                     errmsg("the db_virtuoso runner exited before it received its statement"),
                     errhint("See the server log for the reason.")));
    }
    pfree(message.data);

    PG_TRY();
    { wait_for_worker(s->worker, s->replies, &a->out); }
    PG_CATCH();
    {
        session_stop(s, true, kStopWaitMillis);
        PG_RE_THROW();
    }
    PG_END_TRY();

    if (!a->out.done && a->out.error == nullptr) {
        session_stop(s, true, kStopWaitMillis);
        ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE),
                        errmsg("the db_virtuoso runner exited before finishing its statement"),
                        errhint("See the server log for the reason.")));
    }
    if (a->out.error != nullptr) a->out.ok = false;
}

// ---- worker side -------------------------------------------------------------------------

void send_string_message(char type, const char *s) {
    StringInfoData buf;
    pq_beginmessage(&buf, type);
    pq_sendstring(&buf, s);
    pq_endmessage(&buf);
}

// "INSERT 0 5", "UPDATE 3", "VACUUM": the tag as the protocol's CommandComplete has it.
void format_command_tag(char (&out)[COMPLETION_TAG_BUFSIZE], CommandTag tag, uint64 rows) {
    const char *name = GetCommandTagName(tag);
    if (command_tag_display_rowcount(tag))
        snprintf(out, sizeof(out),
                 tag == CMDTAG_INSERT ? "%s 0 " UINT64_FORMAT : "%s " UINT64_FORMAT, name, rows);
    else
        snprintf(out, sizeof(out), "%s", name);
}

}  // namespace

// Runs one statement at top level through a portal, in the transaction the caller started,
// and commits it; its completion tag goes to `completion` (COMPLETION_TAG_BUFSIZE bytes).
void run_top_level_statement(const char *sql, char *completion) {
    // Parse and plan trees must outlive the transaction: VACUUM and CREATE INDEX
    // CONCURRENTLY commit it from under the portal (exec_simple_query keeps them in
    // MessageContext for the same reason).
    MemoryContext statement_context = AllocSetContextCreate(
        TopMemoryContext, "db_virtuoso runner statement", ALLOCSET_DEFAULT_SIZES);
    MemoryContextSwitchTo(statement_context);
    List *parsetrees = pg_parse_query(sql);
    if (parsetrees == NIL)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("the statement is empty: it holds only comments or white space")));
    if (list_length(parsetrees) != 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("the statement runner takes exactly one statement, got %d",
                               list_length(parsetrees))));
    RawStmt *parsetree = linitial_node(RawStmt, parsetrees);
    if (IsA(parsetree->stmt, TransactionStmt))
        ereport(ERROR, (errcode(ERRCODE_INVALID_TRANSACTION_STATE),
                        errmsg("transaction control statements cannot run in the statement "
                               "runner")));
    // A worker has no client: COPY FROM STDIN would read from a socket that does not exist.
    if (IsA(parsetree->stmt, CopyStmt) && castNode(CopyStmt, parsetree->stmt)->filename == nullptr)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("COPY FROM STDIN and COPY TO STDOUT cannot run in the statement "
                               "runner: it has no client connection"),
                        errhint("COPY to or from a server file or program, or use INSERT ... "
                                "SELECT.")));

    CommandTag tag = CreateCommandTag(parsetree->stmt);
    set_ps_display(GetCommandTagName(tag));
    bool snapshot_set = false;
    if (analyze_requires_snapshot(parsetree)) {
        PushActiveSnapshot(GetTransactionSnapshot());
        snapshot_set = true;
    }
    List *querytrees = pg_analyze_and_rewrite_fixedparams(parsetree, sql, nullptr, 0, nullptr);
    List *plantrees = pg_plan_queries(querytrees, sql, CURSOR_OPT_PARALLEL_OK, nullptr);
    if (snapshot_set) PopActiveSnapshot();
    CHECK_FOR_INTERRUPTS();

    Portal portal = CreatePortal("", true, true);
    portal->visible = false;
    PortalDefineQuery(portal, nullptr, sql, tag, plantrees, nullptr);
    PortalStart(portal, nullptr, 0, InvalidSnapshot);
    int16 format = 0;
    PortalSetResultFormat(portal, 1, &format);
    DestReceiver *receiver = CreateDestReceiver(DestNone);
    QueryCompletion qc;
    InitializeQueryCompletion(&qc);
    (void)PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &qc);
    receiver->rDestroy(receiver);
    PortalDrop(portal, false);

    char tag_text[COMPLETION_TAG_BUFSIZE];
    format_command_tag(tag_text, qc.commandTag, qc.nprocessed);
    CommitTransactionCommand();
    MemoryContextSwitchTo(TopMemoryContext);
    MemoryContextDelete(statement_context);
    strlcpy(completion, tag_text, COMPLETION_TAG_BUFSIZE);
}

namespace {

void run_top_level(const char *sql) {
    char completion[COMPLETION_TAG_BUFSIZE];
    run_top_level_statement(sql, completion);
    send_string_message('C', completion);
}

void run_autonomous(const char *sql, int nparams, const char *params) {
    Oid *types = static_cast<Oid *>(palloc(sizeof(Oid) * (nparams + 1)));
    Datum *values = static_cast<Datum *>(palloc0(sizeof(Datum) * (nparams + 1)));
    char *nulls = static_cast<char *>(palloc(nparams + 1));
    const char *cursor = params;
    for (int i = 0; i < nparams; ++i) {
        int32 len;
        memcpy(&len, cursor, sizeof(int32));
        cursor += sizeof(int32);
        types[i] = TEXTOID;
        if (len < 0) {
            nulls[i] = 'n';
        } else {
            nulls[i] = ' ';
            values[i] = PointerGetDatum(cstring_to_text_with_len(cursor, len));
            cursor += len;
        }
    }
    nulls[nparams] = '\0';

    // The command tag is that of the last statement, as psql would show it.
    List *parsetrees = pg_parse_query(sql);
    if (parsetrees == NIL)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("the statement is empty: it holds only comments or white space")));
    CommandTag tag = CreateCommandTag(llast_node(RawStmt, parsetrees)->stmt);

    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();
    // One SPI call per statement: SPI keeps the plans of every statement of one string until
    // the call ends, so a script of 100,000 statements would hold 100,000 plans at once.
    ListCell *lc;
    foreach (lc, parsetrees) {
        RawStmt *raw = lfirst_node(RawStmt, lc);
        int location = raw->stmt_location > 0 ? raw->stmt_location : 0;
        char *one =
            raw->stmt_len > 0 ? pnstrdup(sql + location, raw->stmt_len) : pstrdup(sql + location);
        if (SPI_tuptable != nullptr) SPI_freetuptable(SPI_tuptable);
        int rc = SPI_execute_with_args(one, nparams, types, values, nulls, false, 0);
        if (rc < 0)
            raise_for_spi_result(rc, "in execute_autonomous",
                                 "The statements run in one transaction of their own, which "
                                 "commits when they end.");
        pfree(one);
        CHECK_FOR_INTERRUPTS();
    }
    char completion[COMPLETION_TAG_BUFSIZE];
    format_command_tag(completion, tag, SPI_processed);
    char *value = nullptr;
    if (SPI_tuptable != nullptr && SPI_processed > 0 && SPI_tuptable->tupdesc->natts > 0)
        value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    if (value != nullptr) value = MemoryContextStrdup(request_memory, value);
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    if (value != nullptr) send_string_message(kMsgValue, value);
    send_string_message('C', completion);
}

// RunMode::Entry: the library's own function `name` runs the work, with the parameters as
// C strings (nullptr for NULL), inside the transaction started for it; it commits as it goes
// and leaves its last transaction committed.
void run_entry(const char *name, int nparams, const char *params) {
    auto **values = static_cast<const char **>(palloc0(sizeof(char *) * (nparams + 1)));
    const char *cursor = params;
    for (int i = 0; i < nparams; ++i) {
        int32 len;
        memcpy(&len, cursor, sizeof(int32));
        cursor += sizeof(int32);
        if (len >= 0) {
            values[i] = pnstrdup(cursor, len);
            cursor += len;
        }
    }
    auto entry = reinterpret_cast<RunnerEntry>(
        load_external_function(MyBgworkerEntry->bgw_library_name, name, true, nullptr));
    entry(nparams, values);
    send_string_message('C', name);
}

}  // namespace

namespace {

// What the parser says about the request's SQL, before a worker is started for it.
struct SqlShape {
    int statements = 0;
    bool transaction_control = false;
    bool copy_with_client = false;  // COPY FROM STDIN / TO STDOUT
    bool changes_session = false;   // see changes_session_state()
};

bool temporary(const RangeVar *rel) {
    return rel != nullptr && rel->relpersistence == RELPERSISTENCE_TEMP;
}

// Whether a statement may leave state behind in the backend that runs it, beyond its
// transaction: settings and roles (SET, RESET, SET ROLE, SET SESSION AUTHORIZATION,
// set_config()), DISCARD, prepared statements, cursors WITH HOLD, LISTEN, LOAD, temporary
// objects, session-level advisory locks, and code that may do any of it (DO, CALL).
// Conservative: a runner session ends after such a statement, so that no later request
// sees what it left.
bool changes_session_state(Node *stmt) {
    switch (nodeTag(stmt)) {
        case T_VariableSetStmt:
        case T_DiscardStmt:
        case T_PrepareStmt:
        case T_DeallocateStmt:
        case T_ListenStmt:
        case T_UnlistenStmt:
        case T_LoadStmt:
        case T_DoStmt:
        case T_CallStmt:
            return true;
        case T_DeclareCursorStmt:
            return (castNode(DeclareCursorStmt, stmt)->options & CURSOR_OPT_HOLD) != 0;
        case T_CreateStmt:
            return temporary(castNode(CreateStmt, stmt)->relation);
        case T_CreateTableAsStmt:
            return temporary(castNode(CreateTableAsStmt, stmt)->into->rel);
        case T_ViewStmt:
            return temporary(castNode(ViewStmt, stmt)->view);
        case T_CreateSeqStmt:
            return temporary(castNode(CreateSeqStmt, stmt)->sequence);
        default:
            return false;
    }
}

SqlShape shape_of(const std::string &sql) {
    SqlShape shape;
    pg_call([&] {
        List *trees = raw_parser(sql.c_str(), RAW_PARSE_DEFAULT);
        ListCell *lc;
        foreach (lc, trees) {
            Node *stmt = lfirst_node(RawStmt, lc)->stmt;
            ++shape.statements;
            if (IsA(stmt, TransactionStmt)) shape.transaction_control = true;
            if (IsA(stmt, CopyStmt) && castNode(CopyStmt, stmt)->filename == nullptr)
                shape.copy_with_client = true;
            if (changes_session_state(stmt)) shape.changes_session = true;
        }
        // Function calls anywhere in the statement (set_config, pg_advisory_lock and the
        // like): by name, case-insensitively, wherever it appears (also in a string).  The
        // unlocks too: pg_advisory_unlock_all would also drop a pooled worker's runner slot.
        if (strcasestr(sql.c_str(), "set_config") != nullptr ||
            strcasestr(sql.c_str(), "advisory_lock") != nullptr ||
            strcasestr(sql.c_str(), "advisory_unlock") != nullptr)
            shape.changes_session = true;
    });
    return shape;
}

// Refuses, with a clear SQLSTATE, what the runner must not or cannot run; returns what the
// parser says about it.
SqlShape check_request(const RunRequest &request) {
    const char *entry =
        request.mode == RunMode::TopLevel ? "execute_top_level" : "execute_autonomous";
    // An index expression, a materialized view refresh, ANALYZE or the advisor's planning run
    // user code as a table owner under restrictions; the runner would shed them.
    if (pg_call([] { return InSecurityRestrictedOperation(); }))
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        "the db_virtuoso runner cannot be used inside a security-restricted "
                        "operation",
                        "An index expression, a materialized view refresh, ANALYZE or a "
                        "maintenance command called a function that starts the runner.");
    if (in_runner_worker)
        throw UserError(ERRCODE_FEATURE_NOT_SUPPORTED,
                        "a statement run by the db_virtuoso runner cannot start the runner again",
                        "", "Call the runner from the outer session instead.");
    if (request.mode == RunMode::Entry) return {};  // a function of ours, no SQL
    SqlShape shape = shape_of(request.sql);
    if (shape.statements == 0)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        "the statement is empty: it holds only comments or white space");
    // (Top level: the worker refuses several statements and transaction control itself.)
    if (request.mode == RunMode::Autonomous && shape.transaction_control)
        throw UserError(ERRCODE_FEATURE_NOT_SUPPORTED,
                        "transaction control statements cannot run in execute_autonomous",
                        "The statements run in one transaction of their own, which commits when "
                        "they end.");
    if (shape.copy_with_client)
        throw UserError(ERRCODE_FEATURE_NOT_SUPPORTED,
                        fmt::format("COPY FROM STDIN and COPY TO STDOUT cannot run in {}: it "
                                    "has no client connection",
                                    entry),
                        "", "COPY to or from a server file or program, or use INSERT ... SELECT.");
    return shape;
}

}  // namespace

bool send_captured_data(const std::string &data) {
    if (!in_runner_worker) return false;
    pg_call([&data] { send_string_message(kMsgCaptured, data.c_str()); });
    return true;
}

namespace {

RunnerSession *current_session = nullptr;

// Runs the request in the session's worker (one-shot: `last`, the session ends after it).
// The session ends after a request that failed, or that may have changed the worker's state
// (that worker exits instead of going back to the pool).
RunOutcome run_request(SessionState *state, const RunRequest &request, bool last) {
    const SqlShape shape = check_request(request);
    SnapshotCheck check{&request, nullptr};
    if (request.mode == RunMode::TopLevel) {
        // A statement that cannot run for this caller is the statement's failure, found
        // before any worker starts: nothing is half done (no invalid index left behind).
        if (ErrorData *refused = catch_pg_error(check_snapshot_waiter, &check)) {
            RunOutcome outcome;
            outcome.error = refused;
            return outcome;
        }
    }
    RequestArgs args{state, &request, shape.changes_session, check.waits_for_snapshots, {}};
    if (ErrorData *e = catch_pg_error(session_request, &args)) {
        // An error of the runner itself (no slot, a cancel, a refusal, the worker gone): the
        // worker, if one is left, is stopped and waited for; the next request starts anew.
        (void)catch_pg_error(session_kill, state);
        throw PgError(e);
    }
    RunOutcome outcome;
    outcome.ok = args.out.ok && args.out.error == nullptr;
    if (args.out.tag) outcome.command_tag = args.out.tag;
    if (args.out.value) outcome.value = std::string(args.out.value);
    outcome.error = args.out.error;
    outcome.worker_pid = args.out.worker_pid;
    ListCell *lc;
    foreach (lc, args.out.captured) outcome.captured.emplace_back(static_cast<char *>(lfirst(lc)));
    if (last || !outcome.ok || shape.changes_session) {
        // The worker goes back to the pool (or exits) once its queues are detached; one that
        // failed or may hold session state has exited by itself.
        if (ErrorData *e = catch_pg_error(session_end, state)) throw PgError(e);
    }
    return outcome;
}

}  // namespace

struct RunnerSession::State : SessionState {};

RunnerSession::RunnerSession() : state_(new State), previous_(current_session) {
    current_session = this;
}

RunnerSession::~RunnerSession() {
    if (current_session == this) current_session = previous_;
    end();
    delete state_;
}

RunOutcome RunnerSession::run(const RunRequest &request) {
    return run_request(state_, request, false);
}

void RunnerSession::end() noexcept {
    // Never throws: a failure to stop is left to the exit callback and the worker's own end.
    (void)catch_pg_error(session_end, state_);
}

bool RunnerSession::has_worker() const {
    return state_->seg != nullptr;
}

RunnerSession *RunnerSession::current() {
    return current_session;
}

RunOutcome run_in_worker(const RunRequest &request) {
    if (current_session != nullptr) return current_session->run(request);
    SessionState one_shot;
    return run_request(&one_shot, request, true);
}

RunOutcome run_in_worker_or_raise(const RunRequest &request) {
    RunOutcome outcome = run_in_worker(request);
    if (!outcome.ok) throw PgError(outcome.error);
    return outcome;
}

// ---- worker groups ---------------------------------------------------------------------

struct WorkerGroup::Member {
    dsm_segment *seg = nullptr;
    shm_mq_handle *requests = nullptr;
    shm_mq_handle *mqh = nullptr;  // the replies
    BackgroundWorkerHandle *handle = nullptr;
    int slot = -1;
    int registered = -1;  // index in own_workers
    bool running = false;
    RawOutcome raw{};
    int captured_taken = 0;
};

namespace {

struct StartArgs {
    const RunRequest *request;
    WorkerGroup::Member *member;
};

// Detaches the member's queues and segment (a worker still attached sees it as the end).
void group_detach(WorkerGroup::Member *m) {
    detach_worker_memory(&m->seg, &m->requests, &m->mqh);
}

void group_start(void *arg) {
    auto *a = static_cast<StartArgs *>(arg);
    WorkerGroup::Member *m = a->member;
    BackgroundWorker worker;
    m->seg = build_segment(&m->requests, &m->mqh, &worker);
    RequestMessage message = build_request(*a->request, true);  // one request, then it exits
    m->handle = start_runner_worker(&worker);
    m->slot = take_held_runner_slot();
    shm_mq_set_handle(m->requests, m->handle);
    shm_mq_set_handle(m->mqh, m->handle);
    m->registered = register_worker(WorkerRef{m->handle, {}});
    // A request that fits the queue is written at once, before the worker has even started.
    if (shm_mq_send(m->requests, message.size, message.data, false, true) != SHM_MQ_SUCCESS) {
        stop_worker(WorkerRef{m->handle, {}});
        unregister_worker(m->registered);
        m->registered = -1;
        release_runner_slot_number(m->slot);
        m->slot = -1;
        ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE),
                        errmsg("the db_virtuoso runner exited before it received its work"),
                        errhint("See the server log for the reason.")));
    }
    pfree(message.data);
}

// A worker that has finished (or is stopped): its slot and segment are given back.
void group_release(WorkerGroup::Member *m) {
    m->running = false;
    unregister_worker(m->registered);
    m->registered = -1;
    release_runner_slot_number(m->slot);
    m->slot = -1;
    group_detach(m);
}

struct WaitArgs {
    std::vector<WorkerGroup::Member *> *members;
    long timeout_ms;
    bool any_running;
};

// Drains every running worker's queue; waits on the latch when nothing came.
void group_wait(void *arg) {
    auto *a = static_cast<WaitArgs *>(arg);
    TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), a->timeout_ms);
    for (;;) {
        bool received = false, finished = false;
        a->any_running = false;
        for (WorkerGroup::Member *m : *a->members) {
            if (!m->running) continue;
            for (;;) {
                Size nbytes;
                void *data;
                shm_mq_result res = shm_mq_receive(m->mqh, &nbytes, &data, true);
                if (res == SHM_MQ_SUCCESS) {
                    received = true;
                    handle_message(m->mqh, static_cast<char *>(data), nbytes, &m->raw);
                    if (!m->raw.done) continue;
                } else if (res != SHM_MQ_DETACHED) {
                    pid_t pid;
                    if (m->raw.worker_pid == 0 &&
                        GetBackgroundWorkerPid(m->handle, &pid) == BGWH_STARTED)
                        m->raw.worker_pid = pid;
                    break;
                }
                group_release(m);  // done, or gone
                finished = true;
                break;
            }
            if (m->running) a->any_running = true;
        }
        if (finished || !a->any_running) return;
        if (received) continue;
        long left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
        if (left <= 0) return;
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                        Min(left, kPollMillis), PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

void group_stop(void *arg) {
    auto *members = static_cast<std::vector<WorkerGroup::Member *> *>(arg);
    // Every worker told first, then each one waited for: they stop in parallel.
    for (WorkerGroup::Member *m : *members)
        if (m->running) TerminateBackgroundWorker(m->handle);
    for (WorkerGroup::Member *m : *members)
        if (m->running) {
            stop_worker(WorkerRef{m->handle, {}});
            group_release(m);
        }
}

}  // namespace

WorkerGroup::WorkerGroup() = default;

WorkerGroup::~WorkerGroup() {
    // Never throws: a failure to stop is left to the exit callback and the worker's own end.
    (void)catch_pg_error(group_stop, &members_);
    for (Member *m : members_) delete m;
}

size_t WorkerGroup::start(const RunRequest &request) {
    check_request(request);
    members_.reserve(members_.size() + 1);  // no allocation once the worker runs
    auto *m = new Member;
    StartArgs args{&request, m};
    if (ErrorData *e = catch_pg_error(group_start, &args)) {
        (void)catch_pg_error(
            [](void *member) { group_detach(static_cast<WorkerGroup::Member *>(member)); }, m);
        delete m;
        throw PgError(e);
    }
    m->running = true;
    members_.push_back(m);
    return members_.size() - 1;
}

bool WorkerGroup::wait(long timeout_ms) {
    WaitArgs args{&members_, timeout_ms, false};
    if (ErrorData *e = catch_pg_error(group_wait, &args)) throw PgError(e);
    return args.any_running;
}

void WorkerGroup::stop_all() {
    if (ErrorData *e = catch_pg_error(group_stop, &members_)) throw PgError(e);
}

size_t WorkerGroup::size() const {
    return members_.size();
}

bool WorkerGroup::running(size_t i) const {
    return members_.at(i)->running;
}

RunOutcome WorkerGroup::outcome(size_t i) const {
    const Member *m = members_.at(i);
    RunOutcome outcome;
    outcome.ok = m->raw.done && m->raw.ok && m->raw.error == nullptr;
    if (m->raw.tag) outcome.command_tag = m->raw.tag;
    outcome.error = m->raw.error;
    outcome.worker_pid = m->raw.worker_pid;
    return outcome;
}

std::vector<std::string> WorkerGroup::take_captured(size_t i) {
    Member *m = members_.at(i);
    std::vector<std::string> out;
    int n = list_length(m->raw.captured);
    for (int k = m->captured_taken; k < n; ++k)
        out.emplace_back(static_cast<char *>(list_nth(m->raw.captured, k)));
    m->captured_taken = n;
    return out;
}

}  // namespace virtuoso::pg

using namespace virtuoso::pg;

namespace {

// The caller's identity and settings for this request: its settings (search_path, timeouts,
// work_mem, session authorization...), then its role and security context, as parallel
// workers restore them.  Each request restores them whole (RestoreGUCState first resets
// every setting that is not at its default), so nothing set by an earlier request survives.
// Messages go back in the database encoding: the caller converts them for its client.
void restore_caller_state(const RequestHeader *h, char *gucstate) {
    // No security-restricted or local-user-change context from the previous request: the
    // role settings cannot change inside one.
    SetUserIdAndSecContext(GetOuterUserId(), 0);
    // On a hot standby every transaction is read-only, and restoring transaction_read_only
    // (reset to its boot value first) fails its check hook ("failed to initialize", XX000).
    // Parallel workers restore the same state with InitializingParallelWorker set, which
    // skips the checks the leader already passed; do the same, only there.
    StartTransactionCommand();
    InitializingParallelWorker = RecoveryInProgress();
    RestoreGUCState(gucstate);
    InitializingParallelWorker = false;
    CommitTransactionCommand();
    SetClientEncoding(GetDatabaseEncoding());
    SetCurrentRoleId(h->outer_user_id, h->outer_is_superuser);
    SetUserIdAndSecContext(h->current_user_id, h->sec_context);
    // A read-only caller gets read-only transactions, and PostgreSQL's own rules decide what
    // runs (INSERT, CREATE INDEX CONCURRENTLY: 25006).  At override level so that a SET in the
    // statement cannot undo it; every transaction of the worker starts read-only.
    if (h->read_only)
        SetConfigOption("default_transaction_read_only", "on", PGC_SUSET, PGC_S_OVERRIDE);
}

// Serves one request and answers it (the outcome, then kMsgDone).  False when it failed:
// the worker then exits, leaving nothing of the failure behind for a later request.
bool serve_request(char *request) {
    auto *h = reinterpret_cast<RequestHeader *>(request);
    char *sql = request + MAXALIGN(sizeof(RequestHeader));
    char *params = sql + h->sql_len;
    char *gucstate = params + h->params_len;
    volatile bool ok = true;

    debug_query_string = sql;
    PG_TRY();
    {
        restore_caller_state(h, gucstate);
        pgstat_report_activity(STATE_RUNNING, sql);
        SetCurrentStatementStartTimestamp();
        // The caller's statement_timeout came with its settings; a background worker has to
        // arm the timer itself (postgres.c does it per statement for client backends).
        if (StatementTimeout > 0) enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
        StartTransactionCommand();
        // At the worker's top level, pg_stat_statements would record them as the users' own.
        if (h->bookkeeping) untrack_statements_of_transaction();
        if (h->mode == static_cast<int>(RunMode::TopLevel))
            run_top_level(sql);
        else if (h->mode == static_cast<int>(RunMode::Entry))
            run_entry(sql, h->nparams, params);
        else
            run_autonomous(sql, h->nparams, params);
    }
    PG_CATCH();
    {
        HOLD_INTERRUPTS();
        EmitErrorReport();  // goes to the caller as an 'E' message, and to the log
        AbortOutOfAnyTransaction();
        FlushErrorState();
        RESUME_INTERRUPTS();
        ok = false;
    }
    PG_END_TRY();
    disable_timeout(STATEMENT_TIMEOUT, false);
    // A cancel that arrives once the request is over (its statement timeout, say) is moot: it
    // must not fail the next request (an idle backend ignores it likewise).
    QueryCancelPending = false;
    debug_query_string = nullptr;
    pgstat_report_activity(STATE_IDLE, nullptr);

    StringInfoData done;
    pq_beginmessage(&done, kMsgDone);
    pq_endmessage(&done);
    return ok;
}

// The job's queues: replies (and the protocol's output: errors, notices) go to the caller.
shm_mq_handle *attach_job(dsm_segment *seg, RunnerShared **fixed_out) {
    shm_toc *toc = shm_toc_attach(kRunnerMagic, dsm_segment_address(seg));
    if (toc == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("db_virtuoso runner: bad magic number in its shared memory")));
    *fixed_out = static_cast<RunnerShared *>(shm_toc_lookup(toc, kKeyFixed, false));
    auto *requests = static_cast<shm_mq *>(shm_toc_lookup(toc, kKeyRequests, false));
    auto *replies = static_cast<shm_mq *>(shm_toc_lookup(toc, kKeyReplies, false));
    shm_mq_set_sender(replies, MyProc);
    shm_mq_handle *reply_mqh = shm_mq_attach(replies, seg, nullptr);
    pq_redirect_to_shm_mq(seg, reply_mqh);
    shm_mq_set_receiver(requests, MyProc);
    return shm_mq_attach(requests, seg, nullptr);
}

// Serves requests one after the other, until one fails, one is the last, or the caller ends
// the job (detaches: the receive says so).  True in the last case only: then nothing of the
// job is left in this worker, and it may serve another.
bool serve_job(shm_mq_handle *request_mqh) {
    for (;;) {
        Size nbytes;
        void *data;
        if (shm_mq_receive(request_mqh, &nbytes, &data, false) != SHM_MQ_SUCCESS) return true;
        MemoryContextSwitchTo(request_memory);
        auto *request = static_cast<char *>(palloc(nbytes));
        memcpy(request, data, nbytes);
        const bool last = reinterpret_cast<RequestHeader *>(request)->last;
        const bool ok = serve_request(request);
        MemoryContextSwitchTo(TopMemoryContext);
        MemoryContextReset(request_memory);
        if (!ok || last) return false;
    }
}

// Between two jobs: waits in the pool (runner_pool.hpp), holding the slot its first starter
// held, for the next job of this database and user; its segment, or nullptr when the worker
// should exit (pooling off, the slot taken by someone else, no job within the idle timeout).
dsm_segment *next_job(int starter_slot, bool *holds_slot) {
    for (;;) {
        if (!*holds_slot) *holds_slot = take_over_runner_slot(starter_slot);
        if (!*holds_slot || !pool::go_idle()) return nullptr;
        const dsm_handle handle = pool::wait_for_claim();
        if (handle == DSM_HANDLE_INVALID) return nullptr;
        // The caller may have ended already (its segment is gone): back to the pool.
        dsm_segment *seg = dsm_attach(handle);
        if (seg != nullptr) {
            dsm_pin_mapping(seg);
            return seg;
        }
    }
}

}  // namespace

extern "C" void virtuoso_runner_main(Datum main_arg) {
    in_runner_worker = true;
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();

    CurrentResourceOwner = ResourceOwnerCreate(nullptr, "db_virtuoso runner");
    dsm_segment *seg = dsm_attach(DatumGetUInt32(main_arg));
    if (seg == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("db_virtuoso runner: could not map its shared memory segment")));
    dsm_pin_mapping(seg);
    // From here on, errors and notices travel to the caller through the reply queue.
    RunnerShared *fixed = nullptr;
    shm_mq_handle *request_mqh = attach_job(seg, &fixed);

    BackgroundWorkerInitializeConnectionByOid(fixed->database_id, fixed->authenticated_user_id, 0);

    request_memory = AllocSetContextCreate(TopMemoryContext, "db_virtuoso runner request",
                                           ALLOCSET_DEFAULT_SIZES);
    int starter_slot = -1;
    bool holds_slot = false;
    for (;;) {
        const bool reusable = serve_job(request_mqh);
        // (the starter sets it before it sends its first request)
        if (!holds_slot) starter_slot = fixed->slot;
        dsm_detach(seg);  // the queues with it; errors go to the log until the next job
        if (!reusable) break;
        seg = next_job(starter_slot, &holds_slot);
        if (seg == nullptr) break;
        request_mqh = attach_job(seg, &fixed);
    }
}
