// Idle runner workers kept for reuse (virtuoso.runner_idle_timeout): a worker whose job is
// done waits, holding its runner slot, for the next job of the same database and user, from
// any backend.  Starting a worker (fork, backend start, catalog caches, page faults on shared
// memory, exit) costs tens of milliseconds of CPU; on a busy server that CPU is taken from the
// sessions in the middle of their transactions.
//
// The registry lives in shared memory; every change is made under its LWLock.  An entry is
// free, idle (a worker waits on its latch), or claimed (a caller has handed it the DSM
// segment of its job).  The worker frees its entry as it exits (after its transaction is
// aborted and its locks are gone), so a caller can tell that the worker it claimed is gone
// without a BackgroundWorkerHandle, and never signals a PID that is no longer its worker.
//
// Plain PostgreSQL style: errors are ereport()ed.
#pragma once

#include "db_virtuoso/pg/postgres.hpp"

extern "C" {
#include "storage/dsm.h"
}

namespace virtuoso::pg::pool {

// From _PG_init: the registry's shared memory, and a utility hook that asks idle workers of a
// database to exit before DROP DATABASE (and the other commands that need it free of sessions).
void register_memory();

// ---- caller side ----

// A worker claimed by this backend.
struct Claim {
    int entry = -1;
    pid_t pid = 0;
};

// Hands `segment` to an idle worker of this database and authenticated user; entry -1 when
// there is none (or pooling is off).
Claim claim(dsm_handle segment);
// The claimed worker still works for this backend (false once it has exited or gone idle).
bool serving(const Claim &claim);
// Sends SIGTERM to the claimed worker if it still works for this backend.
void terminate(const Claim &claim);
// Asks one idle worker (any database, any user) to exit, to free its slot for a caller that
// waits in line; false when none is idle.
bool evict_one();

// ---- worker side ----

// Registers this worker (which holds a runner slot) as idle for its database and user; false
// (the worker should exit) when pooling is off or the registry is full.
bool go_idle();
// Waits on the latch up to virtuoso.runner_idle_timeout for a claim; the claimed segment, or
// DSM_HANDLE_INVALID when the wait ended unclaimed (the entry is then free).
dsm_handle wait_for_claim();

}  // namespace virtuoso::pg::pool
