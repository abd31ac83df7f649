// The runner's worker budget (see runner_slots.hpp).  Plain C style: no C++ object is alive
// across a call that may ereport.
#include "db_virtuoso/pg/runner_slots.hpp"

#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/runner_pool.hpp"

extern "C" {
#include "access/xact.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace virtuoso::pg {
namespace {

constexpr long kPollMillis = 10;      // first pause between two looks at the slots
constexpr long kMaxPollMillis = 100;  // pauses grow to this while the wait lasts
constexpr long kTakeOverMillis = 200;  // a worker going idle waits this long for its slot

int held_slot = -1;  // the slot this session holds, -1 when none

void set_tag(LOCKTAG *tag, uint32 lock_class, uint32 key) {
    // Database 0: a user's advisory lock always carries its database's OID.
    SET_LOCKTAG_ADVISORY(*tag, InvalidOid, lock_class, key, 2);
}

bool try_take_slot() {
    const int budget = gucs::max_runner_workers;
    // Start at a slot of our own so that concurrent callers do not all try slot 0 first.
    const int first = budget > 0 ? MyProcPid % budget : 0;
    for (int i = 0; i < budget; ++i) {
        int slot = (first + i) % budget;
        LOCKTAG tag;
        set_tag(&tag, kRunnerSlotLockClass, static_cast<uint32>(slot));
        LockAcquireResult got = LockAcquire(&tag, ExclusiveLock, true, true);
        if (got == LOCKACQUIRE_ALREADY_HELD) {
            // A slot of this session's worker group (take_held_runner_slot): not a new one.
            (void)LockRelease(&tag, ExclusiveLock, true);
            continue;
        }
        if (got != LOCKACQUIRE_NOT_AVAIL) {
            held_slot = slot;
            return true;
        }
    }
    return false;
}

void queue_lock(bool take) {
    LOCKTAG tag;
    set_tag(&tag, kRunnerQueueLockClass, static_cast<uint32>(MyProcPid));
    if (take)
        (void)LockAcquire(&tag, ExclusiveLock, true, true);
    else
        (void)LockRelease(&tag, ExclusiveLock, true);
}

// Waits a little (cancellable); false once `deadline` has passed.
bool pause_until(TimestampTz deadline, long *pause) {
    TimestampTz now = GetCurrentTimestamp();
    if (now >= deadline) return false;
    long left = TimestampDifferenceMilliseconds(now, deadline);
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                    Min(*pause, Max(left, 1L)), PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    *pause = Min(*pause * 2, kMaxPollMillis);
    return true;
}

}  // namespace

void release_runner_slot() {
    if (held_slot < 0) return;
    LOCKTAG tag;
    set_tag(&tag, kRunnerSlotLockClass, static_cast<uint32>(held_slot));
    held_slot = -1;
    (void)LockRelease(&tag, ExclusiveLock, true);
}

int take_held_runner_slot() {
    int slot = held_slot;
    held_slot = -1;
    return slot;
}

void release_runner_slot_number(int slot) {
    if (slot < 0) return;
    LOCKTAG tag;
    set_tag(&tag, kRunnerSlotLockClass, static_cast<uint32>(slot));
    (void)LockRelease(&tag, ExclusiveLock, true);
}

bool take_over_runner_slot(int slot) {
    if (slot < 0 || slot >= gucs::max_runner_workers) return false;
    LOCKTAG tag;
    set_tag(&tag, kRunnerSlotLockClass, static_cast<uint32>(slot));
    // The starter gives the slot back right after it ends the job; a caller waiting in line
    // may take it first, and then this worker is one too many.
    const TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kTakeOverMillis);
    bool taken = false;
    StartTransactionCommand();  // session locks outlive it
    for (long pause = 1;; pause = Min(pause * 2, kPollMillis)) {
        taken = LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
        if (taken || GetCurrentTimestamp() >= deadline) break;
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, pause,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
    CommitTransactionCommand();
    return taken;
}

BackgroundWorkerHandle *start_runner_worker(BackgroundWorker *worker) {
    const TimestampTz deadline =
        TimestampTzPlusMilliseconds(GetCurrentTimestamp(), gucs::runner_queue_timeout_ms);
    long pause = kPollMillis;
    volatile bool queued = false;  // read after a longjmp
    BackgroundWorkerHandle *handle = nullptr;
    bool budget_full = false;
    PG_TRY();
    {
        for (;;) {
            CHECK_FOR_INTERRUPTS();
            if (held_slot >= 0 || try_take_slot()) {
                budget_full = false;
                if (RegisterDynamicBackgroundWorker(worker, &handle)) break;
                // The server's pool is full (parallel query, other extensions): our slot
                // would only keep another caller out while we wait.
                release_runner_slot();
            } else {
                budget_full = true;
            }
            // Idle workers of the pool hold slots (and background worker slots) that a
            // caller in line needs more: one is asked to exit.
            (void)pool::evict_one();
            if (!queued) {
                queue_lock(true);
                queued = true;
            }
            if (!pause_until(deadline, &pause)) break;
        }
    }
    PG_CATCH();
    {
        release_runner_slot();
        if (queued) queue_lock(false);
        PG_RE_THROW();
    }
    PG_END_TRY();
    if (queued) queue_lock(false);
    if (handle != nullptr) return handle;
    if (budget_full)
        ereport(ERROR,
                (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                 errmsg("could not start a db_virtuoso runner: all %d runner slots stayed busy "
                        "for %d ms",
                        gucs::max_runner_workers, gucs::runner_queue_timeout_ms),
                 errhint("Retry later, or raise virtuoso.max_runner_workers or "
                         "virtuoso.runner_queue_timeout.")));
    ereport(ERROR,
            (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
             errmsg("could not start a db_virtuoso runner: no free background worker slot for "
                    "%d ms",
                    gucs::runner_queue_timeout_ms),
             errhint("Raise max_worker_processes (now %d) or retry when fewer background "
                     "workers are running.",
                     max_worker_processes)));
    return nullptr;  // not reached
}

}  // namespace virtuoso::pg
