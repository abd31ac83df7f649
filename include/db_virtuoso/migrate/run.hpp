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

}  // namespace virtuoso::migrate
