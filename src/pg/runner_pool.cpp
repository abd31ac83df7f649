// Idle runner workers kept for reuse (runner_pool.hpp).  Plain C style: no C++ object is
// alive across a call that may ereport.
#include "db_virtuoso/pg/runner_pool.hpp"

#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/shmem.hpp"

#include <csignal>

extern "C" {
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace virtuoso::pg::pool {
namespace {

// More than virtuoso.max_runner_workers is never used: an idle worker holds a runner slot.
constexpr int kEntries = 64;

// Leaving: told to exit (to free its slot or its database); never claimed any more, so that
// no caller hands its job to a worker about to exit.
enum class State : int { Free = 0, Idle, Claimed, Leaving };

struct Entry {
    State state;
    pid_t pid;  // the worker
    Oid database;
    Oid user;  // its authenticated user
    PGPROC *proc;
    dsm_handle segment;  // Claimed: the caller's job
    pid_t claimed_by;
};

struct Registry {
    LWLock *lock;
    Entry entries[kEntries];
};

Registry *registry = nullptr;
int my_entry = -1;  // in a worker: its entry, once it has gone idle
bool exit_callback_registered = false;

Size registry_size() {
    return sizeof(Registry);
}

void attach(void *memory, bool found, LWLock *lock) {
    registry = static_cast<Registry *>(memory);
    if (!found) memset(registry, 0, sizeof(Registry));
    registry->lock = lock;
}

bool ours(const Entry &e, const Claim &c) {
    return e.state == State::Claimed && e.pid == c.pid && e.claimed_by == MyProcPid;
}

// A worker's entry goes with it, after ShutdownPostgres has aborted its transaction and
// released its locks (on_shmem_exit callbacks run after the before_shmem_exit ones).
void free_entry_at_exit(int, Datum) {
    if (registry == nullptr || my_entry < 0) return;
    LWLockAcquire(registry->lock, LW_EXCLUSIVE);
    Entry &e = registry->entries[my_entry];
    if (e.pid == MyProcPid) memset(&e, 0, sizeof(Entry));
    LWLockRelease(registry->lock);
    my_entry = -1;
}

ProcessUtility_hook_type previous_utility = nullptr;

// Tells the idle workers (of `database`, or any when InvalidOid; at most `max`) to exit.
int send_away(Oid database, int max) {
    if (registry == nullptr) return 0;
    int n = 0;
    LWLockAcquire(registry->lock, LW_EXCLUSIVE);
    for (Entry &e : registry->entries) {
        if (n >= max) break;
        if (e.state != State::Idle || (OidIsValid(database) && e.database != database)) continue;
        e.state = State::Leaving;
        (void)kill(e.pid, SIGTERM);
        ++n;
    }
    LWLockRelease(registry->lock);
    return n;
}

// The database a command needs free of other sessions (DROP DATABASE, ALTER DATABASE RENAME
// or SET TABLESPACE, CREATE DATABASE from a template), or nullptr.
const char *database_needing_no_sessions(Node *stmt) {
    switch (nodeTag(stmt)) {
        case T_DropdbStmt:
            return castNode(DropdbStmt, stmt)->dbname;
        case T_RenameStmt: {
            auto *rename = castNode(RenameStmt, stmt);
            return rename->renameType == OBJECT_DATABASE ? rename->subname : nullptr;
        }
        case T_AlterDatabaseStmt:
            return castNode(AlterDatabaseStmt, stmt)->dbname;
        case T_CreatedbStmt: {
            ListCell *lc;
            foreach (lc, castNode(CreatedbStmt, stmt)->options) {
                auto *option = static_cast<DefElem *>(lfirst(lc));
                if (strcmp(option->defname, "template") == 0 && option->arg != nullptr)
                    return defGetString(option);
            }
            return "template1";
        }
        default:
            return nullptr;
    }
}

// Idle workers connected to a database are sessions of it: such commands would wait for them
// and fail ("being accessed by other users").  They are asked to exit first; the command's
// own wait for other sessions (up to 5 s) covers the time they take.
void utility_hook(PlannedStmt *pstmt, const char *query, bool read_only,
                  ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *env,
                  DestReceiver *dest, QueryCompletion *qc) {
    const char *name = database_needing_no_sessions(pstmt->utilityStmt);
    if (name != nullptr && registry != nullptr) {
        // Only for its owner (or a superuser): anyone else's command fails on privileges.
        const Oid database = get_database_oid(name, true);
        if (OidIsValid(database) && pg_database_ownercheck(database, GetUserId()))
            (void)send_away(database, kEntries);
    }
    if (previous_utility != nullptr)
        previous_utility(pstmt, query, read_only, context, params, env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only, context, params, env, dest, qc);
}

}  // namespace

void register_memory() {
    shmem::register_piece({"db_virtuoso runner pool", registry_size, attach});
    previous_utility = ProcessUtility_hook;
    ProcessUtility_hook = utility_hook;
}

Claim claim(dsm_handle segment) {
    Claim c;
    if (registry == nullptr || gucs::runner_idle_timeout_ms <= 0) return c;
    const Oid user = GetAuthenticatedUserId();
    LWLockAcquire(registry->lock, LW_EXCLUSIVE);
    for (int i = 0; i < kEntries; ++i) {
        Entry &e = registry->entries[i];
        if (e.state != State::Idle || e.database != MyDatabaseId || e.user != user) continue;
        e.state = State::Claimed;
        e.segment = segment;
        e.claimed_by = MyProcPid;
        c.entry = i;
        c.pid = e.pid;
        SetLatch(&e.proc->procLatch);
        break;
    }
    LWLockRelease(registry->lock);
    return c;
}

bool serving(const Claim &c) {
    if (registry == nullptr || c.entry < 0) return false;
    LWLockAcquire(registry->lock, LW_SHARED);
    const bool still = ours(registry->entries[c.entry], c);
    LWLockRelease(registry->lock);
    return still;
}

void terminate(const Claim &c) {
    if (registry == nullptr || c.entry < 0) return;
    // Under the lock: the worker frees its entry under it before its PID can be reused.
    LWLockAcquire(registry->lock, LW_SHARED);
    if (ours(registry->entries[c.entry], c)) (void)kill(c.pid, SIGTERM);
    LWLockRelease(registry->lock);
}

bool evict_one() {
    if (registry == nullptr) return false;
    // One at a time: a caller polling for a slot would otherwise send away one per look.
    LWLockAcquire(registry->lock, LW_SHARED);
    bool leaving = false;
    for (const Entry &e : registry->entries) leaving = leaving || e.state == State::Leaving;
    LWLockRelease(registry->lock);
    return !leaving && send_away(InvalidOid, 1) > 0;
}

bool go_idle() {
    if (registry == nullptr || gucs::runner_idle_timeout_ms <= 0) return false;
    LWLockAcquire(registry->lock, LW_EXCLUSIVE);
    if (my_entry < 0) {
        for (int i = 0; i < kEntries; ++i)
            if (registry->entries[i].state == State::Free) {
                my_entry = i;
                break;
            }
        if (my_entry >= 0 && !exit_callback_registered) {
            on_shmem_exit(free_entry_at_exit, (Datum)0);
            exit_callback_registered = true;
        }
    }
    if (my_entry >= 0 && registry->entries[my_entry].state == State::Leaving) {
        LWLockRelease(registry->lock);
        return false;  // told to exit while it served its last job
    }
    if (my_entry >= 0) {
        Entry &e = registry->entries[my_entry];
        e.state = State::Idle;
        e.pid = MyProcPid;
        e.database = MyDatabaseId;
        e.user = GetAuthenticatedUserId();
        e.proc = MyProc;
        e.segment = DSM_HANDLE_INVALID;
        e.claimed_by = 0;
    }
    LWLockRelease(registry->lock);
    return my_entry >= 0;
}

dsm_handle wait_for_claim() {
    const TimestampTz deadline =
        TimestampTzPlusMilliseconds(GetCurrentTimestamp(), gucs::runner_idle_timeout_ms);
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        LWLockAcquire(registry->lock, LW_EXCLUSIVE);
        Entry &e = registry->entries[my_entry];
        dsm_handle segment = e.state == State::Claimed ? e.segment : DSM_HANDLE_INVALID;
        const bool expired = GetCurrentTimestamp() >= deadline;
        if (segment == DSM_HANDLE_INVALID && expired) memset(&e, 0, sizeof(Entry));
        LWLockRelease(registry->lock);
        if (segment != DSM_HANDLE_INVALID || expired) {
            if (expired && segment == DSM_HANDLE_INVALID) my_entry = -1;
            return segment;
        }
        const long left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, Max(left, 1L),
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}

}  // namespace virtuoso::pg::pool
