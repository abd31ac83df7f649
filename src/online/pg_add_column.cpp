// CALL virtuoso.add_column_zero_downtime(target_table, column_name, column_type,
//                                        default_value, batch_size, not_null)
//
// The least locking way PostgreSQL 15 allows: a default without volatile functions is
// stored in the catalog (no rewrite, no backfill); a volatile one gets a nullable column
// whose default applies to new rows at once, then a backfill of the existing rows in
// committed batches.  NOT NULL comes from a CHECK added NOT VALID, validated under a lock
// that lets writers go on, which SET NOT NULL then trusts instead of scanning.  Every DDL
// step is its own transaction, under the short lock_timeout with retries.  Type and
// default are checked before anything changes; a rerun continues where a run stopped.
#include "db_virtuoso/online/batch.hpp"
#include "db_virtuoso/online/slowdown.hpp"
#include "db_virtuoso/migrate/executor.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/parse.hpp"
#include "db_virtuoso/pg/procedure.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "storage/bufmgr.h"
#include "utils/syscache.h"
}

namespace virtuoso::online {
namespace {

using pg::UserError;
constexpr const char *kProcedure = "virtuoso.add_column_zero_downtime";

struct ColumnType {
    Oid type = InvalidOid;
    int32 typmod = -1;
    std::string sql;  // qualified, with its modifier
};

ColumnType parse_type(const std::string &text);

ColumnType resolve_type(const std::string &text) {
    try {
        return parse_type(text);
    } catch (const pg::PgError &e) {
        // The parser's error position would point into the CALL statement: name the argument.
        throw UserError(e.sqlstate(), fmt::format("column_type: {}", e.what()));
    }
}

ColumnType parse_type(const std::string &text) {
    return pg::pg_call([&text] {
        ColumnType t;
        parseTypeString(text.c_str(), &t.type, &t.typmod, false);
        if (get_typtype(t.type) == TYPTYPE_PSEUDO)
            ereport(ERROR, (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
                            errmsg("%s is a pseudo-type", format_type_be(t.type))));
        t.sql = format_type_extended(t.type, t.typmod,
                                     FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
        return t;
    });
}

// The default must be one expression (checked on the real parser's tree, so that text such
// as "1) FROM t WHERE (true" is refused), assignable to the column's type, without column
// references or subqueries, as ALTER TABLE would cook it.  Returns whether it is volatile.
bool cook_default(const std::string &expression, const ColumnType &type);

bool check_default(const std::string &expression, const ColumnType &type) {
    try {
        return cook_default(expression, type);
    } catch (const pg::PgError &e) {
        throw UserError(e.sqlstate(), fmt::format("default_value: {}", e.what()),
                        e.data() && e.data()->detail ? e.data()->detail : "",
                        e.data() && e.data()->hint ? e.data()->hint : "");
    }
}

bool cook_default(const std::string &expression, const ColumnType &type) {
    std::string sql = "SELECT (" + expression + "\n)";
    return pg::pg_call([&sql, &type] {
        SelectStmt *s = pg::lone_expression_select(raw_parser(sql.c_str(), RAW_PARSE_DEFAULT));
        if (s == nullptr)
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("must be one expression"),
                     errhint("Pass an expression such as 0, 'none' or gen_random_uuid().")));
        Node *raw = linitial_node(ResTarget, s->targetList)->val;
        ParseState *ps = make_parsestate(nullptr);
        Node *expr = transformExpr(ps, raw, EXPR_KIND_COLUMN_DEFAULT);
        Oid from = exprType(expr);
        expr = coerce_to_target_type(ps, expr, from, type.type, type.typmod, COERCION_ASSIGNMENT,
                                     COERCE_IMPLICIT_CAST, -1);
        if (expr == nullptr)
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("default_value is of type %s, which cannot be assigned to a "
                                   "column of type %s",
                                   format_type_be(from), format_type_be(type.type)),
                            errhint("Cast the default to the column's type.")));
        assign_expr_collations(ps, expr);
        return contain_volatile_functions(expr);
    });
}

struct Existing {
    bool exists = false;
    bool same_type = false;
    bool not_null = false;
    std::string type_sql;
};

Existing existing_column(Oid table, const std::string &column, const ColumnType &type) {
    return pg::pg_call([table, &column, &type] {
        Existing e;
        HeapTuple tup = SearchSysCacheAttName(table, column.c_str());
        if (!HeapTupleIsValid(tup)) return e;
        auto *att = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tup));
        e.exists = true;
        e.same_type = att->atttypid == type.type && att->atttypmod == type.typmod;
        e.not_null = att->attnotnull;
        e.type_sql = format_type_with_typemod(att->atttypid, att->atttypmod);
        ReleaseSysCache(tup);
        return e;
    });
}

// One DDL step in a transaction of its own: a short lock_timeout, and on a timeout a
// back-off and another attempt (the migration executor's backoff), never holding a lock
// while sleeping.
void ddl_step(FunctionCallInfo fcinfo, const std::string &sql, pg::Progress &progress) {
    with_lock_retries(
        gucs::lock_timeout_ms, gucs::max_lock_retries,
        [&sql] {
            pg::Spi spi;
            spi.execute(sql);
        },
        [&](int attempt, int attempts, long sleep) {
            pg::commit_caller(fcinfo, kProcedure);  // the rolled-back attempt's snapshot goes too
            progress.pause(
                fmt::format("lock wait: DDL step timed out after {} ms (attempt {} of "
                            "{}), backing off {} ms",
                            gucs::lock_timeout_ms, attempt, attempts, sleep));
            pg::report(NOTICE, fmt::format("lock not available for \"{}\" (attempt {} of {}); "
                                           "retrying in {} ms",
                                           sql, attempt, attempts, sleep));
        });
    progress.resume();
    pg::commit_caller(fcinfo, kProcedure);
}

struct Arguments {
    Oid table = InvalidOid;
    std::string column;
    std::string type;
    std::optional<std::string> default_value;
    int batch_size = 10000;
    bool not_null = false;
};

Arguments read_arguments(FunctionCallInfo fcinfo) {
    Arguments a;
    if (PG_ARGISNULL(0))
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "target_table must not be NULL");
    a.table = PG_GETARG_OID(0);
    auto column = pg::text_arg(fcinfo, 1);
    auto type = pg::text_arg(fcinfo, 2);
    if (!column || column->empty() || column->size() >= NAMEDATALEN)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        "column_name must be a name of 1 to 63 bytes");
    if (!type || type->find_first_not_of(" \t\r\n") == std::string::npos)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "column_type must not be NULL or empty");
    a.column = *column;
    a.type = *type;
    a.default_value = pg::text_arg(fcinfo, 3);
    if (a.default_value && a.default_value->find_first_not_of(" \t\r\n") == std::string::npos)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        "default_value must be an expression or NULL (no default)");
    if (PG_NARGS() > 4 && !PG_ARGISNULL(4)) a.batch_size = PG_GETARG_INT32(4);
    if (PG_NARGS() > 5 && !PG_ARGISNULL(5)) a.not_null = PG_GETARG_BOOL(5);
    check_batch_size(a.batch_size);
    if (a.not_null && !a.default_value)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        "not_null needs a default_value: existing rows would have no value");
    return a;
}

}  // namespace
}  // namespace virtuoso::online

using namespace virtuoso;

VIRTUOSO_FUNCTION(virtuoso_add_column_zero_downtime) {
    online::Arguments args = online::read_arguments(fcinfo);
    pg::commit_caller(fcinfo, online::kProcedure);
    const std::string table = pg::qualified_relation_name(args.table);
    const std::string column = pg::quote_identifier(args.column);

    // Everything is checked before the first change.
    if (pg::pg_call([&args] {
            char kind = get_rel_relkind(args.table);
            return kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE;
        }))
        throw pg::UserError(ERRCODE_WRONG_OBJECT_TYPE, fmt::format("{} is not a table", table));
    online::ColumnType type = online::resolve_type(args.type);
    bool is_volatile = args.default_value && online::check_default(*args.default_value, type);
    online::Existing existing = online::existing_column(args.table, args.column, type);
    if (existing.exists && !existing.same_type)
        throw pg::UserError(ERRCODE_DUPLICATE_COLUMN,
                            fmt::format("column {} of {} exists already, of type {}", column, table,
                                        existing.type_sql),
                            "",
                            "Choose another column name, or change the type with "
                            "virtuoso.expand_column_change.");
    std::string default_sql =
        args.default_value ? fmt::format("({}\n)::{}", *args.default_value, type.sql) : "";

    pg::Progress progress(fmt::format("add column {} to {}", column, table), "adding the column");
    std::string done;
    if (!is_volatile) {
        // Catalog only: the default is evaluated once and stored as the rows' missing value.
        if (!existing.exists)
            online::ddl_step(
                fcinfo,
                fmt::format("ALTER TABLE {} ADD COLUMN {} {}{}", table, column, type.sql,
                            args.default_value ? " DEFAULT " + default_sql : ""),
                progress);
        else if (args.default_value)
            online::ddl_step(fcinfo,
                             fmt::format("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}", table,
                                         column, default_sql),
                             progress);
        done = existing.exists ? "column existed; default set" : "added without a rewrite";
    } else {
        // New rows get the default from the start; existing rows are filled in batches of
        // block ranges (TID range scans), to the table's end as it grows.
        if (!existing.exists)
            online::ddl_step(
                fcinfo, fmt::format("ALTER TABLE {} ADD COLUMN {} {}", table, column, type.sql),
                progress);
        online::ddl_step(fcinfo,
                         fmt::format("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}", table, column,
                                     default_sql),
                         progress);
        int64_t rows = 0;
        int64_t blocks_per_batch = online::blocks_per_batch(args.table, args.batch_size, &rows);
        progress.phase("backfilling");
        progress.total(rows);
        std::string update =
            fmt::format("UPDATE {0} SET {1} = {2} WHERE {3} AND {1} IS NULL", table, column,
                        default_sql, online::block_range_condition());
        int64_t next_block = 0;
        Oid relid = args.table;
        online::QuerySlowdown slowdown(relid, gucs::batch_max_slowdown);
        pg::PreparedStatement prepared(update);  // planned once, not once per batch
        int64_t filled = online::run_batches(
            [&]() -> std::optional<int64_t> {
                if (next_block >= online::relation_blocks(relid)) return std::nullopt;
                int64_t end = next_block + blocks_per_batch;
                pg::Spi spi;
                auto r = prepared.execute(spi, {std::to_string(next_block), std::to_string(end)});
                next_block = end;
                return static_cast<int64_t>(r.processed);
            },
            [fcinfo] { pg::commit_caller(fcinfo, online::kProcedure); },
            online::throttle_from_settings(), progress, &slowdown);
        // The batches committed without waiting for their WAL flush: flush before "done", to
        // the end of the last commit record (the insert position may lie past a page header
        // not written yet, which XLogFlush refuses).
        pg::pg_call([] { XLogFlush(XactLastCommitEnd); });
        done = fmt::format("{} rows backfilled in batches", filled);
    }

    if (args.not_null && !online::existing_column(args.table, args.column, type).not_null) {
        // A CHECK added NOT VALID takes its lock only for a moment; VALIDATE scans under SHARE
        // UPDATE EXCLUSIVE (writers go on); SET NOT NULL then uses it instead of a scan.
        std::string check = pg::quote_identifier(args.column.substr(0, 40) + "_not_null_zd");
        progress.phase("NOT NULL: validating");
        bool has_check = [&] {
            pg::InternalSql spi;
            return spi
                .scalar(
                    "SELECT 1 FROM pg_constraint WHERE conrelid = $1::oid AND conname = "
                    "$2",
                    {std::to_string(args.table), args.column.substr(0, 40) + "_not_null_zd"})
                .has_value();
        }();
        if (!has_check)
            online::ddl_step(fcinfo,
                             fmt::format("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS NOT NULL) "
                                         "NOT VALID",
                                         table, check, column),
                             progress);
        online::ddl_step(fcinfo, fmt::format("ALTER TABLE {} VALIDATE CONSTRAINT {}", table, check),
                         progress);
        online::ddl_step(fcinfo,
                         fmt::format("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL", table, column),
                         progress);
        online::ddl_step(fcinfo, fmt::format("ALTER TABLE {} DROP CONSTRAINT {}", table, check),
                         progress);
        done += ", NOT NULL";
    }
    pg::report(NOTICE, fmt::format("column {} of {}: {}", column, table, done));
    PG_RETURN_VOID();
}
