// virtuoso.create_index_concurrently(index_definition text, max_attempts int DEFAULT 3)
//
// Builds an index with CREATE INDEX CONCURRENTLY through the statement runner (it cannot
// run inside a function otherwise), checks pg_index.indisvalid, and drops and retries a
// build that failed for a transient reason.  A build that fails for good leaves no invalid
// index behind.
#include "db_virtuoso/online/index_build.hpp"

#include "db_virtuoso/core/sql_lexer.hpp"
#include "db_virtuoso/pg/procedure.hpp"
#include "db_virtuoso/pg/progress.hpp"
#include "db_virtuoso/pg/runner.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "parser/parser.h"
}

namespace virtuoso::online {
namespace {

using pg::PgError;
using pg::UserError;

struct IndexTarget {
    Oid table = InvalidOid;
    Oid schema = InvalidOid;
    std::optional<std::string> index_name;
};

// The real parser decides: exactly one CREATE INDEX statement, on a table that exists.
IndexTarget resolve_target(const std::string &sql) {
    return pg::pg_call([&sql] {
        IndexTarget target;
        List *stmts = raw_parser(sql.c_str(), RAW_PARSE_DEFAULT);
        if (list_length(stmts) != 1 || !IsA(linitial_node(RawStmt, stmts)->stmt, IndexStmt))
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("index_definition must be exactly one CREATE INDEX statement"),
                            errhint("Pass one statement such as CREATE INDEX ON t (col).")));
        auto *stmt = reinterpret_cast<IndexStmt *>(linitial_node(RawStmt, stmts)->stmt);
        target.table = RangeVarGetRelid(stmt->relation, NoLock, false);
        target.schema = get_rel_namespace(target.table);
        if (stmt->idxname != nullptr) target.index_name = std::string(stmt->idxname);
        return target;
    });
}

std::vector<Oid> indexes_of(Oid table) {
    pg::InternalSql spi;
    auto result = spi.execute("SELECT indexrelid FROM pg_index WHERE indrelid = $1::oid",
                              {std::to_string(table)});
    std::vector<Oid> oids;
    for (const auto &row : result.rows) oids.push_back(static_cast<Oid>(std::stoul(*row[0])));
    return oids;
}

// The index this build created: by name when it has one, else the one that is new.
std::optional<Oid> created_index(const IndexTarget &target, const std::vector<Oid> &before) {
    if (target.index_name) {
        pg::InternalSql spi;
        auto oid = spi.scalar(
            "SELECT c.oid FROM pg_class c WHERE c.relname = $1 AND c.relnamespace = $2::oid "
            "AND c.relkind IN ('i', 'I')",
            {*target.index_name, std::to_string(target.schema)});
        if (!oid) return std::nullopt;
        Oid found = static_cast<Oid>(std::stoul(*oid));
        for (Oid b : before)
            if (b == found) return std::nullopt;  // it was there already (IF NOT EXISTS)
        return found;
    }
    for (Oid oid : indexes_of(target.table)) {
        bool existed = false;
        for (Oid b : before) existed = existed || b == oid;
        if (!existed) return oid;
    }
    return std::nullopt;
}

void drop_index_concurrently(const std::string &qualified_name) {
    pg::run_in_worker_or_raise(
        {pg::RunMode::TopLevel, "DROP INDEX CONCURRENTLY IF EXISTS " + qualified_name, {}});
}

// Drops the invalid index an earlier build left (its session crashed or was killed).  A
// build still running in another session is invalid too, but holds the table's SHARE UPDATE
// EXCLUSIVE lock until it ends: a short lock_timeout leaves that one alone.
void drop_leftover(const std::string &qualified_name) {
    pg::report(NOTICE,
               fmt::format("dropping invalid index {} left by an earlier build", qualified_name));
    pg::RunOutcome outcome;
    {
        pg::GucScope guc;
        guc.set("lock_timeout", "200ms");
        outcome = pg::run_in_worker(
            {pg::RunMode::TopLevel, "DROP INDEX CONCURRENTLY IF EXISTS " + qualified_name, {}});
    }
    if (outcome.ok) return;
    if (outcome.error->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE) throw PgError(outcome.error);
    pg::report(NOTICE, fmt::format("invalid index {} left alone: its table is locked, another "
                                   "session may still be building it",
                                   qualified_name));
}

// CREATE INDEX CONCURRENTLY waits for every snapshot older than its own: with the caller's
// snapshot held (any function call holds one), it could never finish.  Refuse before
// anything is created or dropped; the procedure form commits the caller instead.
void refuse_if_caller_holds_snapshot() {
    if (pg::holds_snapshot())
        throw UserError(ERRCODE_ACTIVE_SQL_TRANSACTION,
                        "CREATE INDEX CONCURRENTLY cannot run while the calling statement holds "
                        "a snapshot",
                        "The build waits until every snapshot older than its own is gone, this "
                        "session's included; a function call holds its snapshot until it ends.",
                        "Use CALL virtuoso.build_index_concurrently(...) outside a transaction "
                        "block.");
}

// An invalid index of the requested name is the remains of an earlier failed build.
void drop_leftover_invalid_index(const IndexTarget &target) {
    if (!target.index_name) return;
    std::optional<std::string> leftover;
    {
        pg::InternalSql spi;  // closed before the runner starts: it would copy the pinned path
        leftover = spi.scalar(
            "SELECT c.oid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE c.relname = $1 AND c.relnamespace = $2::oid AND i.indrelid = $3::oid "
            "AND NOT i.indisvalid",
            {*target.index_name, std::to_string(target.schema), std::to_string(target.table)});
    }
    if (leftover)
        drop_leftover(pg::qualified_relation_name(static_cast<Oid>(std::stoul(*leftover))));
}

// An unnamed build gets a new name (t_a_idx1) beside the invalid index an interrupted
// identical build left (t_a_idx): once the new one is valid, the old ones go.  Identical:
// same access method, keys, operator classes, collations, options, expressions, predicate.
void drop_identical_invalid_indexes(Oid built) {
    std::vector<std::string> names;
    {
        pg::InternalSql spi;
        auto rows = spi.execute(
            "SELECT i.indexrelid FROM pg_index n JOIN pg_class cn ON cn.oid = n.indexrelid, "
            "pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid "
            "WHERE n.indexrelid = $1::oid AND i.indrelid = n.indrelid "
            "AND i.indexrelid <> n.indexrelid AND NOT i.indisvalid AND ci.relam = cn.relam "
            "AND i.indisunique = n.indisunique "
            "AND i.indnullsnotdistinct = n.indnullsnotdistinct "
            "AND i.indnkeyatts = n.indnkeyatts AND i.indkey::text = n.indkey::text "
            "AND i.indclass::text = n.indclass::text "
            "AND i.indcollation::text = n.indcollation::text "
            "AND i.indoption::text = n.indoption::text "
            "AND ci.reloptions IS NOT DISTINCT FROM cn.reloptions "
            "AND pg_get_expr(i.indexprs, i.indrelid) IS NOT DISTINCT FROM "
            "    pg_get_expr(n.indexprs, n.indrelid) "
            "AND pg_get_expr(i.indpred, i.indrelid) IS NOT DISTINCT FROM "
            "    pg_get_expr(n.indpred, n.indrelid)",
            {std::to_string(built)});
        for (const auto &row : rows.rows)
            names.push_back(pg::qualified_relation_name(static_cast<Oid>(std::stoul(*row[0]))));
    }
    for (const auto &name : names) drop_leftover(name);
}

bool index_is_valid(Oid index) {
    pg::InternalSql spi;
    auto valid = spi.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = $1::oid",
                            {std::to_string(index)});
    return valid && *valid == "t";
}

// Failures worth another attempt: lock and snapshot conflicts, not bad definitions.
bool transient(int sqlstate) {
    return sqlstate == ERRCODE_T_R_DEADLOCK_DETECTED || sqlstate == ERRCODE_LOCK_NOT_AVAILABLE ||
           sqlstate == ERRCODE_T_R_SERIALIZATION_FAILURE;
}

}  // namespace

IndexBuildResult build_index_concurrently(const std::string &definition, int max_attempts,
                                          const std::function<void()> &release_snapshot) {
    std::string why;
    std::optional<std::string> sql = core::with_concurrently(definition, &why);
    if (!sql)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        fmt::format("index_definition is not an index definition: {}", why), "",
                        "Pass one statement such as CREATE INDEX ON t (col).");
    IndexTarget target = resolve_target(*sql);
    if (!release_snapshot) refuse_if_caller_holds_snapshot();
    drop_leftover_invalid_index(target);

    IndexBuildResult result;
    result.statement = *sql;
    // The build itself runs in a worker: the view shows which attempt and step it is at.
    pg::Progress progress("index build on " + pg::qualified_relation_name(target.table),
                          "starting");
    for (int attempt = 1; attempt <= max_attempts; ++attempt) {
        result.attempts = attempt;
        progress.phase(
            fmt::format("CREATE INDEX CONCURRENTLY, attempt {} of {}", attempt, max_attempts));
        std::vector<Oid> before = indexes_of(target.table);
        if (release_snapshot) release_snapshot();  // the look-ups above took snapshots
        pg::RunOutcome outcome = pg::run_in_worker({pg::RunMode::TopLevel, *sql, {}});
        std::optional<Oid> index = created_index(target, before);
        if (index) result.index_name = pg::qualified_relation_name(*index);

        if (outcome.ok && !index) {
            result.status = "exists";  // IF NOT EXISTS met an existing index
            return result;
        }
        progress.phase(fmt::format("checking the index, attempt {} of {}", attempt, max_attempts));
        if (outcome.ok && index_is_valid(*index)) {
            result.status = "valid";
            if (!target.index_name) drop_identical_invalid_indexes(*index);
            return result;
        }
        // Failed, or built but invalid: never leave an invalid index behind.
        if (index) {
            progress.phase(
                fmt::format("dropping the invalid index, attempt {} of {}", attempt, max_attempts));
            drop_index_concurrently(result.index_name);
        }
        bool retry = attempt < max_attempts && (outcome.ok || transient(outcome.error->sqlerrcode));
        if (!retry) {
            if (!outcome.ok) throw PgError(outcome.error);
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            fmt::format("index {} stayed invalid after {} attempts; it was dropped",
                                        result.index_name, attempt));
        }
        if (!outcome.ok)
            pg::report(NOTICE, fmt::format("index build attempt {} of {} failed: {}; retrying",
                                           attempt, max_attempts, outcome.error->message));
        pg::interruptible_sleep(200L << std::min(attempt - 1, 5));
    }
    throw UserError(ERRCODE_INTERNAL_ERROR, "index build loop ended without a result");
}

}  // namespace virtuoso::online

using virtuoso::pg::UserError;

namespace {

// The definition argument, copied (a procedure's commit frees the original).
std::string definition_arg(FunctionCallInfo fcinfo) {
    auto definition = virtuoso::pg::text_arg(fcinfo, 0);
    if (!definition || definition->find_first_not_of(" \t\r\n") == std::string::npos)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        "index_definition must not be NULL or empty");
    return *definition;
}

}  // namespace

// CALL virtuoso.build_index_concurrently(index_definition text, INOUT index_name text):
// commits the caller, then builds with no snapshot held; the index name comes back.
VIRTUOSO_FUNCTION(virtuoso_build_index_concurrently) {
    std::string definition = definition_arg(fcinfo);
    constexpr const char *kProcedure = "virtuoso.build_index_concurrently";
    virtuoso::pg::commit_caller(fcinfo, kProcedure);
    auto result = virtuoso::online::build_index_concurrently(
        definition, 3, [fcinfo] { virtuoso::pg::commit_caller(fcinfo, kProcedure); });
    if (result.status == "exists") {
        virtuoso::pg::report(NOTICE, "index already exists; nothing built");
        return virtuoso::pg::procedure_result(fcinfo, {std::nullopt});
    }
    virtuoso::pg::report(NOTICE,
                         fmt::format("index {} built concurrently and valid (attempt {} of 3)",
                                     result.index_name, result.attempts));
    return virtuoso::pg::procedure_result(fcinfo, {result.index_name});
}

VIRTUOSO_FUNCTION(virtuoso_create_index_concurrently) {
    std::string definition = definition_arg(fcinfo);
    int max_attempts = PG_NARGS() > 1 && !PG_ARGISNULL(1) ? PG_GETARG_INT32(1) : 3;
    if (max_attempts < 1 || max_attempts > 20)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        fmt::format("max_attempts must be between 1 and 20, got {}", max_attempts));
    auto result = virtuoso::online::build_index_concurrently(definition, max_attempts);
    std::string text = result.status == "exists"
                           ? "index already exists; nothing built"
                           : fmt::format("index {} built concurrently and valid (attempt {} of {})",
                                         result.index_name, result.attempts, max_attempts);
    return virtuoso::pg::text_datum(text);
}
