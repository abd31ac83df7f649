// The server side of the linter, callable in-process (by the migration gate as well as by
// virtuoso.lint_migration): parses the SQL with PostgreSQL's parser, describes each
// statement with live facts and applies the rules of lint/lint.hpp.
#pragma once

#include "db_virtuoso/lint/lint.hpp"
#include "db_virtuoso/pg/guard.hpp"

namespace virtuoso::lint {

// Findings of a migration, in statement order.  trace runs the statements in a
// subtransaction that is always rolled back (never call it inside a security-restricted
// operation or a read-only transaction: it refuses).  A syntax error is thrown as PgError
// (SQLSTATE 42601, cursorpos in the SQL text).
std::vector<Finding> lint_sql(const char *sql, bool trace, const Options &options);

}  // namespace virtuoso::lint
