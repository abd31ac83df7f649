// The maintenance scheduler: a static background worker that, every
// virtuoso.maintenance_naptime, starts one short-lived worker per database of
// virtuoso.database_names, independently (a long round in one database delays no other, at
// most virtuoso.max_maintenance_workers run at once); that worker runs the round of
// perform_maintenance_if_needed at top level as virtuoso.maintenance_role and exits, so no
// database stays connected between rounds (DROP DATABASE is not blocked).
//
// The workers' main loops are plain PostgreSQL style (errors are ereport()ed, FATAL ends the
// process) and hold no C++ objects; the C++ parts (the database's round, the scheduler's
// bookkeeping) run inside try blocks, call PostgreSQL through pg_call, and their errors are
// reported after the try block has ended.
#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <vector>

#include "db_virtuoso/maintenance/pg_maintenance.hpp"
#include "db_virtuoso/alerts/alerts.hpp"
#include "db_virtuoso/pg/bgworker.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/runner.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

extern "C" {
PGDLLEXPORT void virtuoso_scheduler_main(Datum main_arg);
PGDLLEXPORT void virtuoso_maintenance_db_main(Datum main_arg);
}

namespace virtuoso::maintenance {
namespace {

constexpr const char *kSchedulerType = "db_virtuoso maintenance scheduler";
constexpr const char *kDatabaseWorkerType = "db_virtuoso maintenance";
constexpr int kRestartSeconds = 5;

// What the scheduler and a database worker share (one small DSM segment per launch).
enum DatabaseResult : int { kNotRun = 0, kDone, kNoExtension, kNoRole, kFailed };
struct DatabaseWorkerShared {
    char database[NAMEDATALEN];
    int result;
    int actions;
    int skipped;
    int abandoned;
    bool health_due;  // this round also runs the health checks (virtuoso.health_check_interval)
};

// ---- the database worker ------------------------------------------------------------------

template <typename F>
auto in_own_transaction(F &&f) -> decltype(f()) {
    pg::pg_call([] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
    });
    try {
        auto result = f();
        pg::pg_call([] {
            PopActiveSnapshot();
            CommitTransactionCommand();
        });
        return result;
    } catch (...) {
        // Through pg_call: C++ objects (the exception among them) are alive here.  Should the
        // abort itself fail, its error replaces the original one.
        pg::pg_call([] { AbortCurrentTransaction(); });
        throw;
    }
}

// Runs a statement at top level in this process; its error, if any, is copied out.
ErrorData *run_statement(const char *sql) {
    MemoryContext caller = CurrentMemoryContext;
    ErrorData *volatile error = nullptr;
    SetCurrentStatementStartTimestamp();
    pgstat_report_activity(STATE_RUNNING, sql);
    StartTransactionCommand();
    PG_TRY();
    {
        char completion[COMPLETION_TAG_BUFSIZE];
        pg::run_top_level_statement(sql, completion);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller);
        error = CopyErrorData();
        FlushErrorState();
        AbortCurrentTransaction();
    }
    PG_END_TRY();
    MemoryContextSwitchTo(caller);
    pgstat_report_activity(STATE_IDLE, nullptr);
    return error;
}

class WorkerBackend : public Backend {
  public:
    pg::SpiResult read(const std::string &sql, const std::vector<pg::Param> &params) override {
        return in_own_transaction([&] {
            pg::pg_call([] { pgstat_clear_snapshot(); });
            pg::InternalSql spi;
            return spi.execute(sql, params, true);
        });
    }

    pg::Value write_log(const std::string &sql, const std::vector<pg::Param> &params) override {
        if (owner_ == InvalidOid) owner_ = log_owner(*this);
        return in_own_transaction([&] {
            AsRole as_owner(owner_);
            pg::InternalSql spi;
            return spi.scalar(sql, params);
        });
    }

    LockProbe probe_lock(uint32_t relid) override {
        return in_own_transaction([relid] { return probe_relation_lock(relid); });
    }

    CommandResult run(const std::string &sql) override {
        CommandResult r;
        ErrorData *error = nullptr;
        {
            auto thunk = [](void *arg) {
                auto *p = static_cast<std::pair<const char *, ErrorData **> *>(arg);
                *p->second = run_statement(p->first);
            };
            std::pair<const char *, ErrorData **> arg{sql.c_str(), &error};
            if (ErrorData *e = pg::catch_pg_error(thunk, &arg)) throw pg::PgError(e);
        }
        r.ok = error == nullptr;
        if (error != nullptr) {
            r.sqlstate = unpack_sql_state(error->sqlerrcode);
            r.message = error->message ? error->message : "";
        }
        return r;
    }

    const char *triggered_by() const override { return "scheduler"; }
    int pid() const override { return MyProcPid; }

  private:
    Oid owner_ = InvalidOid;
};

// The round of one database; its result goes to the scheduler through shared memory.
void maintain_database(DatabaseWorkerShared *shared) {
    // Checked in a transaction of its own: the extension and the role to act as.
    Oid role = InvalidOid;
    bool has_extension = false;
    const char *role_name = gucs::maintenance_role ? gucs::maintenance_role : "";
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    has_extension = OidIsValid(get_extension_oid("db_virtuoso", true));
    if (role_name[0] != '\0') role = get_role_oid(role_name, true);
    CommitTransactionCommand();
    if (!has_extension) {
        shared->result = kNoExtension;
        return;
    }
    if (role_name[0] != '\0' && !OidIsValid(role)) {
        shared->result = kNoRole;
        return;
    }

    // Works as the maintenance role (a background worker cannot log in as a NOLOGIN role, so
    // it connected as the bootstrap superuser and switches here); the log is written as the
    // log's owner.  Statements never wait long for a lock and are throttled like autovacuum.
    if (OidIsValid(role)) SetUserIdAndSecContext(role, SECURITY_LOCAL_USERID_CHANGE);
    // Every C++ object lives inside the try block: the error is reported after it, with
    // plain PostgreSQL calls, when none is alive any more.
    pg::PendingError pending;  // plain pointers, no destructor
    bool failed = false;
    try {
        const std::string cost_delay = autovacuum_cost_delay_setting();
        const std::string cost_limit = autovacuum_cost_limit_setting();
        pg::pg_call([&] {
            SetConfigOption("lock_timeout", kStatementLockTimeout, PGC_SUSET, PGC_S_SESSION);
            SetConfigOption("vacuum_cost_delay", cost_delay.c_str(), PGC_SUSET, PGC_S_SESSION);
            SetConfigOption("vacuum_cost_limit", cost_limit.c_str(), PGC_SUSET, PGC_S_SESSION);
        });
        WorkerBackend backend;
        shared->abandoned = static_cast<int>(fail_abandoned_runs(backend));
        for (const auto &row : run_maintenance_round(backend, false)) {
            if (row.outcome.status == kSkipped)
                ++shared->skipped;
            else
                ++shared->actions;
        }
        // Alerts for health findings, then old log rows deleted in small batches (each its
        // own transaction, so no long lock or transaction), at most 100 per round.
        if (shared->health_due) in_own_transaction([] { return alerts::health_round(); });
        for (int batch = 0; batch < 100; ++batch)
            if (in_own_transaction([] { return alerts::retention_batch(1000); }) == 0) break;
    } catch (...) {
        pg::capture_current_exception(pending);
        failed = true;
    }
    if (failed) {
        shared->result = kFailed;
        if (pending.pg != nullptr) {
            pending.pg->elevel = WARNING;
            ThrowErrorData(pending.pg);
        } else {
            ereport(WARNING, (errmsg("db_virtuoso maintenance in database \"%s\" failed: %s",
                                     shared->database,
                                     pending.message ? pending.message : "unknown error")));
        }
        return;
    }
    shared->result = kDone;
}

bool database_connectable(const char *name, bool *exists);

// ---- the scheduler ------------------------------------------------------------------------
//
// Databases are served independently: each round queues every listed database whose worker
// from an earlier round is not still running (that one is skipped, not waited for), and
// queued databases get a worker as soon as fewer than virtuoso.max_maintenance_workers run.
// A long VACUUM in one database thus never delays another.  The scheduler's state is C++
// (heap, reached through a pointer), and every PostgreSQL call it makes goes through pg_call;
// its main loop (extern "C", below) holds no C++ objects.

struct RunningWorker {
    std::string database;
    dsm_segment *seg;
    DatabaseWorkerShared *shared;
    BackgroundWorkerHandle *handle;  // palloc'd in TopMemoryContext
};

class Scheduler {
  public:
    // Collects the workers that have ended and logs their outcome.
    void reap() {
        for (auto it = running_.begin(); it != running_.end();) {
            BackgroundWorkerHandle *handle = it->handle;
            pid_t pid;
            if (pg::pg_call([&] { return GetBackgroundWorkerPid(handle, &pid); }) != BGWH_STOPPED) {
                ++it;
                continue;
            }
            report_result(it->database, *it->shared);
            dsm_segment *seg = it->seg;
            pg::pg_call([&] {
                dsm_detach(seg);
                pfree(handle);
            });
            reported_.erase("busy:" + it->database);
            it = running_.erase(it);
        }
    }

    // A round is due: every listed database joins the queue unless its worker still runs
    // or it is queued already.  Queued databases that left the list are dropped.
    void queue_round() {
        std::string error;
        auto names =
            core::parse_name_list(gucs::database_names ? gucs::database_names : "", &error);
        if (!names) return;  // the GUC's check hook does not let a bad list in
        std::deque<std::string> queue;
        for (const auto &name : *names) {
            if (is_running(name)) {
                report_once("busy:" + name,
                            fmt::format("db_virtuoso maintenance of database \"{}\" started in an "
                                        "earlier round is still running; skipped this round",
                                        name));
            } else if (std::find(queue.begin(), queue.end(), name) == queue.end()) {
                queue.push_back(name);
            }
        }
        // Databases still waiting from the last round keep their place at the front.
        std::deque<std::string> ordered;
        for (const auto &name : pending_)
            if (std::find(queue.begin(), queue.end(), name) != queue.end()) ordered.push_back(name);
        for (const auto &name : queue)
            if (std::find(ordered.begin(), ordered.end(), name) == ordered.end())
                ordered.push_back(name);
        pending_ = std::move(ordered);
    }

    // Starts workers for queued databases while the bound allows.
    void launch_pending() {
        while (!pending_.empty() &&
               static_cast<int>(running_.size()) < gucs::max_maintenance_workers) {
            std::string database = pending_.front();
            if (!launch(database)) break;  // no free slot: retried at the next wake-up
            pending_.pop_front();
        }
    }

    void clear_pending() { pending_.clear(); }
    bool busy() const { return !running_.empty() || !pending_.empty(); }

    // From before_shmem_exit: the workers end with the scheduler.  Plain calls only.
    void terminate_all() noexcept {
        for (auto &w : running_) TerminateBackgroundWorker(w.handle);
    }

  private:
    // Whether the database's health round is due (and, if so, counts it as run now).
    bool health_due(const std::string &database) {
        if (gucs::health_check_interval_s <= 0) return false;
        TimestampTz now = GetCurrentTimestamp();
        auto last = last_health_.find(database);
        if (last != last_health_.end() &&
            !TimestampDifferenceExceeds(last->second, now,
                                        gucs::health_check_interval_s * 1000))
            return false;
        last_health_[database] = now;
        return true;
    }

    bool is_running(const std::string &database) const {
        return std::any_of(running_.begin(), running_.end(),
                           [&](const RunningWorker &w) { return w.database == database; });
    }

    void report_once(const std::string &key, const std::string &message) {
        if (reported_.insert(key).second)
            pg::pg_call([&] { ereport(LOG, (errmsg("%s", message.c_str()))); });
    }

    void clear_reports(const std::string &database) {
        for (const char *kind : {"nodb:", "noext:", "norole:", "noconn:", "noslot:"})
            reported_.erase(kind + database);
    }

    // Returns false only when no background worker slot was free (the database stays queued);
    // a database that cannot be served is reported and counts as done.
    bool launch(const std::string &database) {
        bool exists = false;
        const char *name = database.c_str();
        if (!pg::pg_call([&] { return database_connectable(name, &exists); })) {
            if (exists)
                report_once("noconn:" + database,
                            fmt::format("db_virtuoso maintenance: database \"{}\" does not "
                                        "accept connections; skipped",
                                        database));
            else
                report_once("nodb:" + database,
                            fmt::format("db_virtuoso maintenance: database \"{}\" of "
                                        "virtuoso.database_names does not exist; skipped until "
                                        "it does",
                                        database));
            return true;
        }
        reported_.erase("nodb:" + database);
        reported_.erase("noconn:" + database);

        RunningWorker w{database, nullptr, nullptr, nullptr};
        const bool registered = pg::pg_call([&] {
            // Lives until reaped, across rounds and transactions.
            w.seg = dsm_create(sizeof(DatabaseWorkerShared), 0);
            dsm_pin_mapping(w.seg);
            w.shared = static_cast<DatabaseWorkerShared *>(dsm_segment_address(w.seg));
            memset(w.shared, 0, sizeof(*w.shared));
            strlcpy(w.shared->database, name, NAMEDATALEN);
            w.shared->health_due = health_due(database);

            BackgroundWorker worker =
                pg::describe_worker("virtuoso_maintenance_db_main", kDatabaseWorkerType,
                                    BgWorkerStart_RecoveryFinished, BGW_NEVER_RESTART);
            snprintf(worker.bgw_name, BGW_MAXLEN, "db_virtuoso maintenance of %s", name);
            worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(w.seg));
            worker.bgw_notify_pid = MyProcPid;  // its start and end set our latch
            MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
            const bool ok = RegisterDynamicBackgroundWorker(&worker, &w.handle);
            MemoryContextSwitchTo(old);
            if (!ok) dsm_detach(w.seg);
            return ok;
        });
        if (!registered) {
            report_once("noslot:" + database,
                        fmt::format("db_virtuoso maintenance: no free background worker slot for "
                                    "database \"{}\"; raise max_worker_processes",
                                    database));
            return false;
        }
        reported_.erase("noslot:" + database);
        running_.push_back(std::move(w));
        return true;
    }

    void report_result(const std::string &database, const DatabaseWorkerShared &shared) {
        switch (shared.result) {
            case kNoExtension:
                report_once("noext:" + database,
                            fmt::format("db_virtuoso maintenance: extension db_virtuoso is not "
                                        "installed in database \"{}\"; skipped until it is",
                                        database));
                break;
            case kNoRole:
                report_once("norole:" + database,
                            fmt::format("db_virtuoso maintenance: role \"{}\" of "
                                        "virtuoso.maintenance_role does not exist; nothing done",
                                        gucs::maintenance_role ? gucs::maintenance_role : ""));
                break;
            case kDone:
                clear_reports(database);
                if (shared.actions > 0 || shared.abandoned > 0) {
                    const std::string message = fmt::format(
                        "db_virtuoso maintenance of database \"{}\": {} actions, {} skipped, {} "
                        "interrupted runs marked FAILED",
                        database, shared.actions, shared.skipped, shared.abandoned);
                    pg::pg_call([&] { ereport(LOG, (errmsg("%s", message.c_str()))); });
                }
                break;
            default:
                break;  // the worker logged its error (or ended before reporting)
        }
    }

    std::vector<RunningWorker> running_;
    std::deque<std::string> pending_;
    // Messages about a database that cannot be served are logged once, until the situation
    // changes, not every round.
    std::set<std::string> reported_;
    std::map<std::string, TimestampTz> last_health_;
};

Scheduler *scheduler = nullptr;

void terminate_workers(int, Datum) {
    if (scheduler != nullptr) scheduler->terminate_all();
}

// Whether the database exists and accepts connections.  The scheduler has no database, so
// it scans the shared catalog pg_database itself (as the autovacuum launcher does): its
// indexes are not usable without one.  Plain PostgreSQL calls (run under pg_call).
bool database_connectable(const char *name, bool *exists) {
    bool ok = false;
    *exists = false;
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    (void)GetTransactionSnapshot();
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    HeapTuple tuple;
    while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection))) {
        auto *db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
        if (strcmp(NameStr(db->datname), name) == 0) {
            *exists = true;
            ok = db->datallowconn;
            break;
        }
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    CommitTransactionCommand();
    return ok;
}

bool window_open() {
    std::string error;
    auto window =
        core::TimeWindow::parse(gucs::maintenance_window ? gucs::maintenance_window : "", &error);
    return !window || window->contains(current_minute_of_day());
}

// One wake-up of the scheduler: reap, queue a round when due, launch.  Never throws; an error
// is copied into `error` for the caller to log once no C++ object is alive.
bool scheduler_step(bool round_due, char *error, size_t error_size) noexcept {
    try {
        scheduler->reap();
        bool active = gucs::enable_maintenance_worker && !RecoveryInProgress() && window_open();
        if (!active) {
            scheduler->clear_pending();
            return true;
        }
        if (round_due) scheduler->queue_round();
        scheduler->launch_pending();
        return true;
    } catch (const std::exception &e) {
        strlcpy(error, e.what(), error_size);
    } catch (...) {
        strlcpy(error, "unknown error", error_size);
    }
    return false;
}

}  // namespace

void register_scheduler() {
    BackgroundWorker worker = pg::describe_worker("virtuoso_scheduler_main", kSchedulerType,
                                                  BgWorkerStart_RecoveryFinished, kRestartSeconds);
    RegisterBackgroundWorker(&worker);
}

}  // namespace virtuoso::maintenance

using namespace virtuoso::maintenance;
namespace gucs = virtuoso::gucs;

extern "C" void virtuoso_scheduler_main(Datum) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    // No database: only shared catalogs (pg_database, roles); makes it visible in
    // pg_stat_activity without ever holding a database open.
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    scheduler = new Scheduler();
    before_shmem_exit(terminate_workers, (Datum)0);

    // Whatever a wake-up allocates in plain memory is freed at the next one; what outlives it
    // (worker handles, DSM mappings) lives in TopMemoryContext and is freed when reaped.
    MemoryContext step_context = AllocSetContextCreate(
        TopMemoryContext, "db_virtuoso scheduler step", ALLOCSET_DEFAULT_SIZES);
    TimestampTz last_round = 0;
    bool first = true;
    char error[512];
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        const long naptime_ms = static_cast<long>(gucs::maintenance_naptime_s) * 1000L;
        TimestampTz now = GetCurrentTimestamp();
        const bool due = first || TimestampDifferenceExceeds(last_round, now, naptime_ms);
        if (due) {
            first = false;
            last_round = now;
        }
        MemoryContextReset(step_context);
        MemoryContext old = MemoryContextSwitchTo(step_context);
        const bool ok = scheduler_step(due, error, sizeof(error));
        MemoryContextSwitchTo(old);
        if (!ok) {
            AbortCurrentTransaction();  // if the error came from inside one
            ereport(LOG, (errmsg("db_virtuoso maintenance scheduler: %s", error)));
        }
        if (due) pgstat_report_activity(STATE_IDLE, nullptr);
        // Sleeps until the next round is due.  A worker's start or end (bgw_notify_pid) and a
        // SIGHUP set the latch: ended workers are reaped and queued databases started at
        // once, and a new naptime counts from the last round.  While workers run it also
        // looks once a second, in case a notification was missed.
        long wait_ms = naptime_ms - static_cast<long>((GetCurrentTimestamp() - last_round) / 1000);
        if (scheduler->busy() && wait_ms > 1000) wait_ms = 1000;
        if (wait_ms < 1) wait_ms = 1;
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}

extern "C" void virtuoso_maintenance_db_main(Datum main_arg) {
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    CurrentResourceOwner = ResourceOwnerCreate(nullptr, "db_virtuoso maintenance");
    dsm_segment *seg = dsm_attach(DatumGetUInt32(main_arg));
    if (seg == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("db_virtuoso maintenance: could not map its shared memory")));
    auto *shared = static_cast<DatabaseWorkerShared *>(dsm_segment_address(seg));
    BackgroundWorkerInitializeConnection(shared->database, nullptr, 0);
    if (!RecoveryInProgress()) maintain_database(shared);
    dsm_detach(seg);
}
