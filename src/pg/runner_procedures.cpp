// Procedure form of the statement runner: CALL virtuoso.run_top_level(statement, command_tag).
#include "db_virtuoso/pg/procedure.hpp"
#include "db_virtuoso/pg/runner.hpp"
#include "db_virtuoso/pg/spi.hpp"

using virtuoso::pg::UserError;

// Commits the caller's transaction, then runs the statement with no snapshot held, so
// that statements waiting for older snapshots (CREATE INDEX CONCURRENTLY...) can finish.
VIRTUOSO_FUNCTION(virtuoso_run_top_level) {
    auto sql = virtuoso::pg::text_arg(fcinfo, 0);  // copied before the commit frees it
    if (!sql || sql->find_first_not_of(" \t\r\n;") == std::string::npos)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "statement must not be NULL or empty");
    virtuoso::pg::commit_caller(fcinfo, "virtuoso.run_top_level");
    auto outcome =
        virtuoso::pg::run_in_worker_or_raise({virtuoso::pg::RunMode::TopLevel, *sql, {}});
    return virtuoso::pg::procedure_result(fcinfo, {outcome.command_tag});
}
