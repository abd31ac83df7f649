// Module entry: refuses to load unless preloaded; defines the GUCs, installs the hooks
// (migration capture, what-if planning) and registers the maintenance scheduler.
#include "db_virtuoso/advisor/pg_advisor.hpp"
#include "db_virtuoso/maintenance/pg_maintenance.hpp"
#include "db_virtuoso/migrate/capture.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/postgres.hpp"
#include "db_virtuoso/pg/progress.hpp"
#include "db_virtuoso/pg/runner_pool.hpp"
#include "db_virtuoso/pg/shmem.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

void _PG_init(void) {
    // The statement runner and the scheduler need the library loaded in the postmaster.
    if (!process_shared_preload_libraries_in_progress)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("db_virtuoso must be loaded via shared_preload_libraries"),
                 errhint("Add db_virtuoso to shared_preload_libraries in postgresql.conf and "
                         "restart the server.")));
    virtuoso::gucs::define_all();
    virtuoso::migrate::install_capture();
    MarkGUCPrefixReserved("virtuoso");
    virtuoso::maintenance::register_scheduler();
    virtuoso::advisor::install_whatif_hook();
    // Shared memory: every module registers its piece, then the hooks go in once.
    virtuoso::pg::register_progress_memory();
    virtuoso::pg::pool::register_memory();
    virtuoso::pg::shmem::install();
}
}
