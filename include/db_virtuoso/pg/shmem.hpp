// The extension's shared memory: one shmem_request_hook / shmem_startup_hook pair, installed
// by _PG_init, that every module asking for a piece of shared memory registers with.
#pragma once

#include "db_virtuoso/pg/postgres.hpp"

extern "C" {
#include "storage/lwlock.h"
}

namespace virtuoso::pg::shmem {

// A module's piece: size() is called at request time (MaxBackends is known then), attach()
// in every process once the memory exists (found: it was initialised already) with the
// piece's own LWLock.  Plain C callbacks: they run in the postmaster's start-up.
struct Piece {
    const char *name;
    Size (*size)();
    void (*attach)(void *memory, bool found, LWLock *lock);
};

// Only from _PG_init, before install().
void register_piece(const Piece &piece);
// Chains the hooks; _PG_init calls it once, after every module registered.
void install();

}  // namespace virtuoso::pg::shmem
