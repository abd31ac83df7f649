// Input checks shared by the migration entry points (server side).
#pragma once

#include <string>
#include <vector>

#include "db_virtuoso/migrate/executor.hpp"
#include "db_virtuoso/migrate/options.hpp"

namespace virtuoso::migrate {

// A text argument that must be present and not blank (22023 otherwise).
std::string required_text(FunctionCallInfo fcinfo, int argno, const char *what);
// Migrations need READ COMMITTED (25001 otherwise).
void require_read_committed();
Limits limits_from(const MigrationOptions &options);
// Parsed statements, refusing transaction control and, in a transactional migration,
// statements that cannot run inside a transaction block.
std::vector<Statement> checked_statements(const std::string &sql, bool transactional,
                                          const char *what);

// The arguments of a migration call, copied out of the call (a procedure commits its
// caller's transaction, which frees them, before it runs the migration).
struct MigrationCall {
    std::string name, sql;
    std::optional<std::string> rollback_sql;
    std::string options_text = "{}";
};

// execute_migration_with_monitoring in process (also for orchestrated plans): runs the
// migration and returns the virtuoso.migration_log row it recorded (or the recorded row of an
// identical earlier run); a failure is recorded and then raised.
std::vector<std::optional<std::string>> run_migration(const MigrationCall &call);

// execute_rollback_with_backup in process: rolls back the latest SUCCESS run of `name` and
// returns its updated log row; errors as that function raises them.
std::vector<std::optional<std::string>> rollback_migration(
    const std::string &name, bool preserve_new_data, const std::optional<std::string> &reason);

}  // namespace virtuoso::migrate
