// SQL entry points of the statement runner: the functions and the procedure form.
#include "db_virtuoso/pg/procedure.hpp"
#include "db_virtuoso/pg/runner.hpp"
#include "db_virtuoso/pg/spi.hpp"

using virtuoso::pg::RunMode;
using virtuoso::pg::UserError;

namespace {

std::string required_statement(FunctionCallInfo fcinfo) {
    auto sql = virtuoso::pg::text_arg(fcinfo, 0);
    if (!sql || sql->find_first_not_of(" \t\r\n;") == std::string::npos)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "statement must not be NULL or empty");
    return *sql;
}

}  // namespace

// virtuoso.execute_top_level(statement text) RETURNS text: the command tag.
VIRTUOSO_FUNCTION(virtuoso_execute_top_level) {
    auto outcome =
        virtuoso::pg::run_in_worker_or_raise({RunMode::TopLevel, required_statement(fcinfo), {}});
    return virtuoso::pg::text_datum(outcome.command_tag);
}

// virtuoso.execute_autonomous(statement text) RETURNS text: the command tag; the statement's
// transaction commits whatever the caller's transaction does afterwards.
VIRTUOSO_FUNCTION(virtuoso_execute_autonomous) {
    auto outcome =
        virtuoso::pg::run_in_worker_or_raise({RunMode::Autonomous, required_statement(fcinfo), {}});
    return virtuoso::pg::text_datum(outcome.command_tag);
}

// CALL virtuoso.run_top_level(statement, command_tag): commits the caller's transaction, then
// runs the statement with no snapshot held, so that statements waiting for older snapshots
// (CREATE INDEX CONCURRENTLY...) can finish.
VIRTUOSO_FUNCTION(virtuoso_run_top_level) {
    std::string sql = required_statement(fcinfo);  // copied before the commit frees it
    virtuoso::pg::commit_caller(fcinfo, "virtuoso.run_top_level");
    auto outcome = virtuoso::pg::run_in_worker_or_raise({RunMode::TopLevel, std::move(sql), {}});
    return virtuoso::pg::procedure_result(fcinfo, {outcome.command_tag});
}
