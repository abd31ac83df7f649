// Describing db_virtuoso's background workers: what every one of them shares.
#pragma once

#include "db_virtuoso/pg/postgres.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace virtuoso::pg {

// A worker of this library that connects to a database: its entry point (an extern "C"
// function of db_virtuoso.so), type (as pg_stat_activity.backend_type shows it; also its
// name until the caller sets bgw_name), start time and restart policy.
inline BackgroundWorker describe_worker(const char *function, const char *type,
                                        BgWorkerStartTime start, int restart_seconds) {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = start;
    worker.bgw_restart_time = restart_seconds;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "db_virtuoso");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
    snprintf(worker.bgw_type, BGW_MAXLEN, "%s", type);
    snprintf(worker.bgw_name, BGW_MAXLEN, "%s", type);
    return worker;
}

}  // namespace virtuoso::pg
