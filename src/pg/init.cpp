// Module entry: refuses to load unless preloaded, defines the GUCs.
#include "db_virtuoso/advisor/pg_advisor.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/postgres.hpp"

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
    MarkGUCPrefixReserved("virtuoso");
    virtuoso::advisor::install_whatif_hook();
}
}
