// The library checks that the SQL objects it works with are of its own version.
#include "db_virtuoso/pg/spi.hpp"

#ifndef VIRTUOSO_VERSION
#error "VIRTUOSO_VERSION must be defined by the build (Makefile: EXTVERSION)"
#endif

namespace virtuoso::pg {

void require_matching_sql_version() {
    // Only a match is remembered: after ALTER EXTENSION ... UPDATE in another session, a
    // backend that was refused checks again.
    static bool matches = false;
    if (matches) return;
    Value installed;
    {
        InternalSql spi;
        installed = spi.scalar(
            "SELECT extversion FROM pg_catalog.pg_extension "
            "WHERE extname OPERATOR(pg_catalog.=) 'db_virtuoso'");
    }
    if (!installed || *installed == VIRTUOSO_VERSION) {
        matches = true;
        return;
    }
    throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    fmt::format("db_virtuoso {} is installed in this database, but the server "
                                "has loaded the library of version {}",
                                *installed, VIRTUOSO_VERSION),
                    "The library was upgraded; the extension's tables and functions were not.",
                    "Run ALTER EXTENSION db_virtuoso UPDATE in this database.");
}

}  // namespace virtuoso::pg
