// The maintenance scheduler: a static background worker that, every
// virtuoso.maintenance_naptime, starts one short-lived worker per database of
// virtuoso.database_names; that worker runs the round of perform_maintenance_if_needed at top
// level as virtuoso.maintenance_role and exits, so no database stays connected between rounds
// (DROP DATABASE is not blocked).
//
// The workers' main loops are plain PostgreSQL style (errors are ereport()ed, FATAL ends the
// process); the C++ round runs inside one try block whose error is reported after it.
#include <set>

#include "db_virtuoso/maintenance/pg_maintenance.hpp"
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
        AbortCurrentTransaction();
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
            pgstat_clear_snapshot();
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
    const std::string cost_delay = autovacuum_cost_delay_setting();
    const std::string cost_limit = autovacuum_cost_limit_setting();
    pg::PendingError pending;
    bool failed = false;
    try {
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

// ---- the scheduler ------------------------------------------------------------------------

BackgroundWorkerHandle *active_child = nullptr;

void terminate_active_child(int, Datum) {
    if (active_child != nullptr) TerminateBackgroundWorker(active_child);
    active_child = nullptr;
}

// Messages about a database that cannot be served are logged once, until the situation
// changes, not every round.
std::set<std::string> *reported = nullptr;

void report_once(const std::string &key, const std::string &message) {
    if (reported->insert(key).second) ereport(LOG, (errmsg("%s", message.c_str())));
}

void clear_reports(const std::string &database) {
    for (const char *kind : {"nodb:", "noext:", "norole:", "noconn:", "noslot:"})
        reported->erase(kind + database);
}

// Whether the database exists and accepts connections.  The scheduler has no database, so
// it scans the shared catalog pg_database itself (as the autovacuum launcher does): its
// indexes are not usable without one.
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

// Starts the worker of one database and waits for it (SIGTERM still ends us promptly).
void serve_database(const std::string &database) {
    bool exists;
    if (!database_connectable(database.c_str(), &exists)) {
        if (exists)
            report_once("noconn:" + database,
                        fmt::format("db_virtuoso maintenance: database \"{}\" does not accept "
                                    "connections; skipped",
                                    database));
        else
            report_once("nodb:" + database,
                        fmt::format("db_virtuoso maintenance: database \"{}\" of "
                                    "virtuoso.database_names does not exist; skipped until it "
                                    "does",
                                    database));
        return;
    }
    reported->erase("nodb:" + database);
    reported->erase("noconn:" + database);

    dsm_segment *seg = dsm_create(sizeof(DatabaseWorkerShared), 0);
    auto *shared = static_cast<DatabaseWorkerShared *>(dsm_segment_address(seg));
    memset(shared, 0, sizeof(*shared));
    strlcpy(shared->database, database.c_str(), NAMEDATALEN);

    BackgroundWorker worker =
        pg::describe_worker("virtuoso_maintenance_db_main", kDatabaseWorkerType,
                            BgWorkerStart_RecoveryFinished, BGW_NEVER_RESTART);
    snprintf(worker.bgw_name, BGW_MAXLEN, "db_virtuoso maintenance of %s", database.c_str());
    worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
    worker.bgw_notify_pid = MyProcPid;

    BackgroundWorkerHandle *handle;
    if (!RegisterDynamicBackgroundWorker(&worker, &handle)) {
        report_once("noslot:" + database,
                    fmt::format("db_virtuoso maintenance: no free background worker slot for "
                                "database \"{}\"; raise max_worker_processes",
                                database));
        dsm_detach(seg);
        return;
    }
    reported->erase("noslot:" + database);
    active_child = handle;
    for (;;) {
        pid_t pid;
        if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED) break;
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
    active_child = nullptr;

    switch (shared->result) {
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
                                    gucs::maintenance_role));
            break;
        case kDone:
            clear_reports(database);
            if (shared->actions > 0 || shared->abandoned > 0)
                ereport(LOG, (errmsg("db_virtuoso maintenance of database \"%s\": %d actions, %d "
                                     "skipped, %d interrupted runs marked FAILED",
                                     database.c_str(), shared->actions, shared->skipped,
                                     shared->abandoned)));
            break;
        default:
            break;  // the worker logged its error
    }
    dsm_detach(seg);
}

void scheduler_round() {
    std::string error;
    auto names = core::parse_name_list(gucs::database_names ? gucs::database_names : "", &error);
    if (!names) return;  // the GUC's check hook does not let a bad list in
    for (const auto &name : *names) serve_database(name);
}

bool window_open() {
    std::string error;
    auto window =
        core::TimeWindow::parse(gucs::maintenance_window ? gucs::maintenance_window : "", &error);
    return !window || window->contains(current_minute_of_day());
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
    before_shmem_exit(terminate_active_child, (Datum)0);
    reported = new std::set<std::string>();

    MemoryContext round_context = AllocSetContextCreate(
        TopMemoryContext, "db_virtuoso scheduler round", ALLOCSET_DEFAULT_SIZES);
    TimestampTz last_round = 0;
    bool first = true;
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        const long naptime_ms = static_cast<long>(gucs::maintenance_naptime_s) * 1000L;
        TimestampTz now = GetCurrentTimestamp();
        if (first || TimestampDifferenceExceeds(last_round, now, naptime_ms)) {
            first = false;
            last_round = now;
            if (gucs::enable_maintenance_worker && !RecoveryInProgress() && window_open()) {
                MemoryContextReset(round_context);
                MemoryContext old = MemoryContextSwitchTo(round_context);
                try {
                    scheduler_round();
                } catch (const std::exception &e) {
                    ereport(LOG, (errmsg("db_virtuoso maintenance scheduler: %s", e.what())));
                }
                MemoryContextSwitchTo(old);
            }
            pgstat_report_activity(STATE_IDLE, nullptr);
        }
        // Sleeps until the next round is due; a SIGHUP wakes it so that a new naptime counts
        // from the last round.
        long wait_ms = naptime_ms - static_cast<long>((GetCurrentTimestamp() - last_round) / 1000);
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
