// CALL virtuoso.migrate_data_batched(source_query, target_table, batch_size,
//                                    parallel_workers, key_column, job_name)
//
// Copies the rows of a query into a table in key-range batches (WHERE key > last AND key <=
// upper, never OFFSET), one transaction per batch, bounded to the keys present when the job
// started.  Each batch's rows and the job's new position (virtuoso.batch_jobs) commit
// together: after a cancel, a crash or kill -9, calling again with the same job continues
// after the last committed batch, losing and duplicating nothing.
#include "db_virtuoso/online/batch.hpp"
#include "db_virtuoso/online/slowdown.hpp"
#include "db_virtuoso/migrate/executor.hpp"
#include "db_virtuoso/migrate/log.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/procedure.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_operator.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
}

namespace virtuoso::online {
namespace {

using pg::UserError;
constexpr const char *kProcedure = "virtuoso.migrate_data_batched";

struct Arguments {
    std::string source_query;
    std::string target_table;
    int batch_size = 10000;
    int parallel_workers = 1;
    std::string key_column = "id";
    std::optional<std::string> job_name;
};

// Everything the batches need, resolved before any row moves.
struct Job {
    std::string name;
    Oid target = InvalidOid;
    std::string target_sql;      // quoted, qualified
    std::string columns_sql;     // "a", "b" (the source's columns, in its order)
    std::string key_sql;         // s."key"
    std::string key_type;        // qualified type name, for $n::type
    std::string key_name;        // "key"
    std::string gt, le, lt, eq;  // the key type's operators, OPERATOR(schema.op)
    std::string source;          // the caller's query, as a subquery body
    std::optional<std::string> last_key, upper_key;
    int64_t rows_done = 0, rows_total = 0;
    bool finished = false;  // an earlier run completed it
};

void parse_source(const std::string &query);

// The caller's query must be one SELECT (or VALUES, or WITH ... SELECT): it becomes a
// subquery, and the newline ends a trailing -- comment.
void check_source(const std::string &query) {
    try {
        parse_source(query);
    } catch (const pg::PgError &e) {
        // The parser's error position would point into the CALL statement: name the argument.
        throw UserError(e.sqlstate(), fmt::format("source_query: {}", e.what()));
    }
}

void parse_source(const std::string &query) {
    pg::pg_call([&query] {
        List *stmts = raw_parser(query.c_str(), RAW_PARSE_DEFAULT);
        if (list_length(stmts) != 1 || !IsA(linitial_node(RawStmt, stmts)->stmt, SelectStmt) ||
            reinterpret_cast<SelectStmt *>(linitial_node(RawStmt, stmts)->stmt)->intoClause)
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("must be exactly one SELECT statement"),
                     errhint("Pass a query such as SELECT id, a, b FROM t; its rows are copied.")));
    });
}

// target_table is text: parsed as a (qualified) name, never pasted into SQL.
Oid resolve_target(const std::string &name) {
    return pg::pg_call([&name] {
        List *names = stringToQualifiedNameList(name.c_str());
        Oid relid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
        if (!OidIsValid(relid))
            ereport(ERROR,
                    (errcode(ERRCODE_UNDEFINED_TABLE),
                     errmsg("target table %s does not exist", quote_literal_cstr(name.c_str())),
                     errhint("Create the target table first; target_table names it as in "
                             "SQL (schema.table, quoted where needed).")));
        char kind = get_rel_relkind(relid);
        if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
            ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                            errmsg("target %s is not a table", quote_literal_cstr(name.c_str()))));
        return relid;
    });
}

std::string operator_sql(Oid opno) {
    return pg::pg_call([opno] {
        HeapTuple tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
        if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for operator %u", opno);
        auto *op = reinterpret_cast<Form_pg_operator>(GETSTRUCT(tup));
        std::string out = std::string("OPERATOR(") +
                          quote_identifier(get_namespace_name(op->oprnamespace)) + "." +
                          NameStr(op->oprname) + ")";
        ReleaseSysCache(tup);
        return out;
    });
}

// The key's operators: those of its type's default btree ordering, named by schema.
void resolve_key_operators(Job &job, Oid type, const std::string &key_column) {
    struct Ops {
        Oid lt, gt, le, eq;
    };
    Ops ops = pg::pg_call([type] {
        TypeCacheEntry *tc =
            lookup_type_cache(type, TYPECACHE_LT_OPR | TYPECACHE_GT_OPR | TYPECACHE_EQ_OPR);
        Ops o{tc->lt_opr, tc->gt_opr, InvalidOid, tc->eq_opr};
        if (OidIsValid(o.gt)) o.le = get_negator(o.gt);
        return o;
    });
    if (!OidIsValid(ops.lt) || !OidIsValid(ops.gt) || !OidIsValid(ops.le) || !OidIsValid(ops.eq))
        throw UserError(
            ERRCODE_UNDEFINED_FUNCTION,
            fmt::format("key_column \"{}\" is of type {}, which has no ordering", key_column,
                        pg::pg_call([type] { return std::string(format_type_be(type)); })),
            "Batches are key ranges: the key needs a default btree operator class.",
            "Choose a key column of an orderable type (integer, text, timestamp, "
            "uuid, ...).");
    job.lt = operator_sql(ops.lt);
    job.gt = operator_sql(ops.gt);
    job.le = operator_sql(ops.le);
    job.eq = operator_sql(ops.eq);
    job.key_type = pg::pg_call([type] { return std::string(format_type_be_qualified(type)); });
}

struct SourceColumn {
    std::string name;
    Oid type;
};

// The source query's columns (planned as the caller, nothing run).
std::vector<SourceColumn> source_columns(const std::string &source) {
    std::string sql = "SELECT * FROM (" + source + "\n) s LIMIT 0";
    return pg::pg_call([&sql] {
        std::vector<SourceColumn> out;
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        SPIPlanPtr plan = SPI_prepare(sql.c_str(), 0, nullptr);
        if (plan == nullptr)
            elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        int rc = SPI_execute_plan(plan, nullptr, nullptr, true, 0);
        if (rc < 0) pg::raise_for_spi_result(rc, "in source_query", "");
        TupleDesc desc = SPI_tuptable->tupdesc;
        for (int i = 0; i < desc->natts; ++i) {
            Form_pg_attribute a = TupleDescAttr(desc, i);
            out.push_back({NameStr(a->attname), a->atttypid});
        }
        SPI_finish();
        return out;
    });
}

void check_columns(Job &job, const std::vector<SourceColumn> &columns,
                   const std::string &key_column) {
    std::optional<Oid> key_type;
    for (size_t i = 0; i < columns.size(); ++i) {
        for (size_t j = 0; j < i; ++j)
            if (columns[j].name == columns[i].name)
                throw UserError(
                    ERRCODE_DUPLICATE_COLUMN,
                    fmt::format("source_query returns column \"{}\" twice", columns[i].name), "",
                    "Give every column of the query its own name (AS ...).");
        bool in_target =
            pg::pg_call([&] { return get_attnum(job.target, columns[i].name.c_str()) > 0; });
        if (!in_target)
            throw UserError(ERRCODE_UNDEFINED_COLUMN,
                            fmt::format("column \"{}\" of source_query does not exist in target "
                                        "table {}",
                                        columns[i].name, job.target_sql),
                            "Rows are copied column by column, by name.",
                            "Name the query's columns as the target's (AS ...), or leave the "
                            "extra column out of the query.");
        if (!job.columns_sql.empty()) job.columns_sql += ", ";
        job.columns_sql += pg::quote_identifier(columns[i].name);
        if (columns[i].name == key_column) key_type = columns[i].type;
    }
    if (!key_type)
        throw UserError(
            ERRCODE_UNDEFINED_COLUMN,
            fmt::format("key_column \"{}\" is not a column of source_query", key_column),
            "Batches are ranges of this column of the query's rows.",
            "Pass key_column => 'name' of a column the query returns.");
    job.key_name = pg::quote_identifier(key_column);
    job.key_sql = "s." + job.key_name;
    resolve_key_operators(job, *key_type, key_column);
}

std::string insert_sql(const Job &job, bool from_start, const std::string &where_extra = "") {
    std::string lower =
        from_start ? "true" : fmt::format("{} {} $1::{}", job.key_sql, job.gt, job.key_type);
    return fmt::format("INSERT INTO {} ({}) SELECT {} FROM ({}\n) s WHERE {} AND {} {} $2::{}{}",
                       job.target_sql, job.columns_sql, job.columns_sql, job.source, lower,
                       job.key_sql, job.le, job.key_type, where_extra);
}

// The key values are text in batch_jobs: pinned output styles make them read back exactly,
// whatever the session's DateStyle.
void pin_key_styles(pg::GucScope &guc) {
    guc.set("DateStyle", "ISO, YMD");
    guc.set("IntervalStyle", "postgres");
    guc.set("extra_float_digits", "3");
}

// Starting a job: the bound (largest key now), the row count, and no NULL keys.
void measure(Job &job) {
    pg::GucScope guc;
    pin_key_styles(guc);
    pg::Spi spi;
    auto counts = spi.execute(fmt::format(
        "SELECT pg_catalog.count(*), pg_catalog.count({}) FROM ({}\n) s", job.key_sql, job.source));
    int64_t all = std::stoll(*counts.rows[0][0]), keyed = std::stoll(*counts.rows[0][1]);
    if (all != keyed)
        throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED,
                        fmt::format("key_column is NULL in {} rows of source_query", all - keyed),
                        "Rows are copied by key range: a row without a key would be left out.",
                        "Filter those rows out, or choose a key column without NULLs.");
    job.rows_total = all;
    job.upper_key =
        spi.scalar(fmt::format("SELECT {0}::pg_catalog.text FROM ({1}\n) s ORDER BY {0} USING {2} "
                               "LIMIT 1",
                               job.key_sql, job.source, job.gt));
}

std::string default_job_name(const Arguments &args, const std::string &target_sql) {
    pg::InternalSql spi;
    auto digest = spi.scalar("SELECT left(md5($1 || chr(10) || $2 || chr(10) || $3), 12)",
                             {args.source_query, target_sql, args.key_column});
    return fmt::format("migrate:{}:{}", target_sql, *digest);
}

// A job of this name: none (a new one is recorded), or one to resume.  Refused when it is
// another role's, or was started with other arguments.
bool load_or_create(Job &job, const Arguments &args) {
    std::optional<pg::SpiResult> found;
    {
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        found = spi.execute(
            "SELECT target_oid::text, source_query, key_column, last_key, upper_key, rows_done, "
            "rows_total, status, owner_role::text, owner_role::regrole::text "
            "FROM virtuoso.batch_jobs WHERE job_name = $1 FOR UPDATE",
            {job.name});
    }
    if (found->empty()) return false;
    const auto &row = found->rows[0];
    Oid owner_role = static_cast<Oid>(std::stoul(*row[8]));
    bool member = pg::pg_call([owner_role] { return has_privs_of_role(GetUserId(), owner_role); });
    if (!member)
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        fmt::format("permission denied to resume job \"{}\"", job.name),
                        fmt::format("It was started by role {}.", row[9].value_or("?")),
                        "Choose another job_name.");
    if (*row[0] != std::to_string(job.target) || *row[1] != args.source_query ||
        *row[2] != args.key_column)
        throw UserError(
            ERRCODE_INVALID_PARAMETER_VALUE,
            fmt::format("job \"{}\" was started with another source_query, target_table "
                        "or key_column",
                        job.name),
            "A job resumes only with the arguments it started with.",
            "Call again with the same arguments, or choose another job_name.");
    job.last_key = row[3];
    job.upper_key = row[4];
    job.rows_done = std::stoll(*row[5]);
    job.rows_total = row[6] ? std::stoll(*row[6]) : 0;
    job.finished = row[7] && *row[7] == "SUCCESS";
    return true;
}

void record_new(const Job &job, const Arguments &args) {
    Oid caller = pg::pg_call([] { return GetUserId(); });
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    spi.execute(
        "INSERT INTO virtuoso.batch_jobs (job_name, target_table, target_oid, source_query, "
        "key_column, key_type, upper_key, rows_total, owner_role) "
        "VALUES ($1, $2, $3::oid, $4, $5, $6, $7, $8::bigint, $9::oid)",
        {job.name, job.target_sql, std::to_string(job.target), args.source_query, args.key_column,
         job.key_type, job.upper_key, std::to_string(job.rows_total), std::to_string(caller)});
}

// The two statements of a batch, each planned once per run (not once per batch), with
// the job's position as parameters: $1 the last key copied (unused by the first batch's),
// $2 the bound.
struct BatchStatements {
    // The batch's largest key: that of the batch_size-th row by key above $1, none when
    // fewer rows are left below the bound.  Reads only the keys (an index-only scan where
    // the source allows one).
    pg::PreparedStatement end_first, end_next;
    // The rows above $1 up to the batch's largest key: every row of that key too, so that a
    // key's rows never split between batches, whether or not the key is unique.
    pg::PreparedStatement insert_first, insert_next;

    static std::string end_sql(const Job &job, bool from_start, int batch_size) {
        std::string lower =
            from_start ? "true" : fmt::format("{} {} $1::{}", job.key_sql, job.gt, job.key_type);
        return fmt::format(
            "SELECT {key}::pg_catalog.text FROM ({src}\n) s WHERE {lower} AND {key} {le} "
            "$2::{type} ORDER BY {key} USING {lt} OFFSET {skip} LIMIT 1",
            fmt::arg("key", job.key_sql), fmt::arg("src", job.source), fmt::arg("lower", lower),
            fmt::arg("le", job.le), fmt::arg("type", job.key_type), fmt::arg("lt", job.lt),
            fmt::arg("skip", batch_size - 1));
    }
    BatchStatements(const Job &job, int batch_size)
        : end_first(end_sql(job, true, batch_size)),
          end_next(end_sql(job, false, batch_size)),
          insert_first(insert_sql(job, true)),
          insert_next(insert_sql(job, false)) {}
};

// One batch: the largest key of the next batch_size keys (at most the job's bound), the
// rows up to it, and the job's new position, all in the caller's transaction.
std::optional<int64_t> copy_batch(Job &job, BatchStatements &statements) {
    if (!job.upper_key) return std::nullopt;  // the source was empty
    if (job.last_key && *job.last_key == *job.upper_key) return std::nullopt;
    std::optional<std::string> batch_end;
    int64_t copied = 0;
    {
        pg::GucScope guc;
        pin_key_styles(guc);
        pg::Spi spi;
        bool from_start = !job.last_key.has_value();
        // Two statements, not one that materialises the batch's rows to find its end: the
        // rows go straight from the source's scan into the target.  Between the two another
        // session may add rows below the end; they are copied with this batch, as they would
        // have been with the next one.
        batch_end = (from_start ? statements.end_first : statements.end_next)
                        .execute(spi, {job.last_key, job.upper_key})
                        .scalar();
        if (!batch_end) batch_end = job.upper_key;  // fewer than batch_size rows left
        copied =
            static_cast<int64_t>((from_start ? statements.insert_first : statements.insert_next)
                                     .execute(spi, {job.last_key, batch_end})
                                     .processed);
    }
    // The position commits with the rows.  It must still be where this run left it: a second
    // session running the same job waits for our row lock here, then finds it moved.
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    auto moved = spi.execute(
        "UPDATE virtuoso.batch_jobs SET last_key = $2, rows_done = rows_done + $4::bigint, "
        "batches = batches + 1, updated_at = clock_timestamp() "
        "WHERE job_name = $1 AND last_key IS NOT DISTINCT FROM $3 AND status = 'RUNNING'",
        {job.name, batch_end, job.last_key, std::to_string(copied)});
    if (moved.processed != 1)
        throw UserError(ERRCODE_OBJECT_IN_USE,
                        fmt::format("job \"{}\" was advanced by another session", job.name),
                        "Two sessions ran the same job; this one's last batch was undone.",
                        "Let the other session finish, or call again to resume after it.");
    job.last_key = batch_end;
    job.rows_done += copied;
    return copied;
}

void finish(const Job &job) {
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    spi.execute(
        "UPDATE virtuoso.batch_jobs SET status = 'SUCCESS', finished_at = clock_timestamp(), "
        "updated_at = clock_timestamp() WHERE job_name = $1",
        {job.name});
}

// Everything checked and resolved before any row moves; the job recorded (or found, to
// resume).  Returns whether the job existed.
bool prepare(Job &job, const Arguments &args) {
    check_source(args.source_query);
    job.source = args.source_query;
    job.target = resolve_target(args.target_table);
    job.target_sql = pg::qualified_relation_name(job.target);
    check_columns(job, source_columns(job.source), args.key_column);
    // The INSERT planned against no row: types, privileges and constraints' columns are
    // checked now, before any row moves.
    {
        pg::Spi spi;
        spi.execute(insert_sql(job, true, " AND false"), {std::nullopt, std::nullopt});
    }
    job.name = args.job_name ? *args.job_name : default_job_name(args, job.target_sql);
    if (load_or_create(job, args)) return true;
    measure(job);
    record_new(job, args);
    return false;
}

Arguments read_arguments(FunctionCallInfo fcinfo) {
    Arguments a;
    auto source = pg::text_arg(fcinfo, 0);
    auto target = pg::text_arg(fcinfo, 1);
    if (!source || source->find_first_not_of(" \t\r\n") == std::string::npos)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "source_query must not be NULL or empty");
    if (!target || target->empty())
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "target_table must not be NULL or empty");
    a.source_query = *source;
    a.target_table = *target;
    if (PG_NARGS() > 2 && !PG_ARGISNULL(2)) a.batch_size = PG_GETARG_INT32(2);
    if (PG_NARGS() > 3 && !PG_ARGISNULL(3)) a.parallel_workers = PG_GETARG_INT32(3);
    if (auto key = pg::text_arg(fcinfo, 4)) a.key_column = *key;
    a.job_name = pg::text_arg(fcinfo, 5);
    if (a.batch_size < 1 || a.batch_size > 10000000)
        throw UserError(
            ERRCODE_INVALID_PARAMETER_VALUE,
            fmt::format("batch_size must be between 1 and 10000000, got {}", a.batch_size));
    if (a.parallel_workers < 1 || a.parallel_workers > 64)
        throw UserError(
            ERRCODE_INVALID_PARAMETER_VALUE,
            fmt::format("parallel_workers must be between 1 and 64, got {}", a.parallel_workers));
    if (a.key_column.empty() || a.key_column.size() >= NAMEDATALEN)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        "key_column must be a column name of at most 63 bytes");
    if (a.job_name && (a.job_name->empty() || a.job_name->size() > 200))
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        "job_name must be between 1 and 200 bytes long");
    return a;
}

}  // namespace
}  // namespace virtuoso::online

using namespace virtuoso;

VIRTUOSO_FUNCTION(virtuoso_migrate_data_batched) {
    online::Arguments args = online::read_arguments(fcinfo);
    pg::commit_caller(fcinfo, online::kProcedure);
    if (args.parallel_workers > 1)
        throw pg::UserError(ERRCODE_FEATURE_NOT_SUPPORTED,
                            "parallel_workers > 1 is not supported yet", "",
                            "Call with parallel_workers => 1; the copy is resumable.");

    online::Job job;
    bool resumed = false;
    // Preparation locks the source's and the target's tables: under the short lock_timeout,
    // rolled back and retried after a back-off like every other lock of a migration.
    for (int attempt = 0;; ++attempt) {
        try {
            pg::SubTransaction sub;
            {
                pg::GucScope guc;
                guc.set("lock_timeout", std::to_string(gucs::lock_timeout_ms));
                job = online::Job{};
                resumed = online::prepare(job, args);
            }
            sub.commit();
            break;
        } catch (const pg::PgError &e) {
            if (e.sqlstate() != ERRCODE_LOCK_NOT_AVAILABLE || attempt >= gucs::max_lock_retries)
                throw;
        }
        long sleep = migrate::lock_retry_backoff_ms(attempt + 1);
        pg::report(NOTICE, fmt::format("lock not available while preparing the copy (attempt {} "
                                       "of {}); retrying in {} ms",
                                       attempt + 1, gucs::max_lock_retries + 1, sleep));
        pg::commit_caller(fcinfo, online::kProcedure);
        pg::interruptible_sleep(sleep);
    }
    if (resumed && job.finished) {
        pg::report(NOTICE, fmt::format("job \"{}\" finished earlier ({} rows); nothing to do",
                                       job.name, job.rows_done));
        PG_RETURN_VOID();
    }
    if (resumed)
        pg::report(NOTICE,
                   fmt::format("resuming job \"{}\" after {} rows", job.name, job.rows_done));
    pg::commit_caller(fcinfo, online::kProcedure);  // the job row is there before any batch

    pg::Progress progress(job.name, "copying", job.rows_total, job.rows_done);
    online::BatchStatements statements(job, args.batch_size);
    online::QuerySlowdown slowdown(job.target, gucs::batch_max_slowdown);
    int64_t copied =
        online::run_batches([&job, &statements] { return online::copy_batch(job, statements); },
                            [fcinfo] { pg::commit_caller(fcinfo, online::kProcedure); },
                            online::throttle_from_settings(), progress, &slowdown);
    online::finish(job);
    pg::commit_caller(fcinfo, online::kProcedure);
    pg::report(NOTICE, fmt::format("job \"{}\": {} rows copied{}", job.name, copied,
                                   resumed ? fmt::format(", {} in all", job.rows_done) : ""));
    PG_RETURN_VOID();
}
