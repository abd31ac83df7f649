// Shared memory of the extension: pieces registered by modules, requested and attached by
// one pair of hooks (chained with whatever was installed before us).
#include "db_virtuoso/pg/shmem.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/shmem.h"
}

namespace virtuoso::pg::shmem {
namespace {

constexpr int kMaxPieces = 8;
constexpr const char *kTranche = "db_virtuoso";
Piece pieces[kMaxPieces];
int piece_count = 0;

shmem_request_hook_type previous_request = nullptr;
shmem_startup_hook_type previous_startup = nullptr;

void request() {
    if (previous_request) previous_request();
    Size total = 0;
    for (int i = 0; i < piece_count; ++i) total = add_size(total, MAXALIGN(pieces[i].size()));
    RequestAddinShmemSpace(total);
    RequestNamedLWLockTranche(kTranche, piece_count);
}

void startup() {
    if (previous_startup) previous_startup();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    LWLockPadded *locks = GetNamedLWLockTranche(kTranche);
    for (int i = 0; i < piece_count; ++i) {
        bool found = false;
        void *memory = ShmemInitStruct(pieces[i].name, pieces[i].size(), &found);
        pieces[i].attach(memory, found, &locks[i].lock);
    }
    LWLockRelease(AddinShmemInitLock);
}

}  // namespace

void register_piece(const Piece &piece) {
    if (!process_shared_preload_libraries_in_progress || piece_count >= kMaxPieces)
        elog(ERROR, "db_virtuoso: shared memory piece \"%s\" registered too late or too many",
             piece.name);
    pieces[piece_count++] = piece;
}

void install() {
    previous_request = shmem_request_hook;
    shmem_request_hook = request;
    previous_startup = shmem_startup_hook;
    shmem_startup_hook = startup;
}

}  // namespace virtuoso::pg::shmem
