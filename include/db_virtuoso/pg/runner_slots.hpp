// The runner's worker budget: at most virtuoso.max_runner_workers runner workers at once in
// the whole cluster, and a short, cancellable wait in line when the budget (or the server's
// pool of background workers) is full, instead of an immediate 53400.
//
// A slot is a session-level advisory lock in a key space no user lock can take (database 0:
// pg_advisory_lock always names the current database), so slots show in pg_locks and die with
// their session, whatever happens to it.  Callers waiting for a slot hold one more lock of
// that space, keyed by their PID, so that the health check can count them.
//
// Plain PostgreSQL style: errors are ereport()ed.
#pragma once

#include "db_virtuoso/pg/postgres.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace virtuoso::pg {

// pg_locks.classid of the slots (objid = slot number, 0-based) and of the waiting callers
// (objid = PID); database is 0 and objsubid 2.
inline constexpr uint32 kRunnerSlotLockClass = 0x56495254;   // "VIRT"
inline constexpr uint32 kRunnerQueueLockClass = 0x56495251;  // "VIRQ"

// Takes a slot and registers `worker`, waiting in line up to virtuoso.runner_queue_timeout
// while the budget or max_worker_processes is exhausted; raises 53400 when the wait ends
// without one, 57014 when cancelled.  On return this session holds a slot: release it with
// release_runner_slot() once the worker has exited.
BackgroundWorkerHandle *start_runner_worker(BackgroundWorker *worker);

// Gives back this session's slot (no-op when it holds none).
void release_runner_slot();

// For a session running several workers at once (WorkerGroup): the slot just taken by
// start_runner_worker() becomes the caller's to give back with release_runner_slot_number(),
// and the next start_runner_worker() takes another one.
int take_held_runner_slot();
void release_runner_slot_number(int slot);

// In a runner worker whose job is done and that would wait in the pool (runner_pool.hpp): takes
// over the slot its starter held for it, which the starter gives back as the job ends; false
// when another caller took it first (the worker then exits).  The slot is held until the
// worker exits.
bool take_over_runner_slot(int slot);

}  // namespace virtuoso::pg
