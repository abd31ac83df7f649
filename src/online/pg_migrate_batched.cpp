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
#include "db_virtuoso/pg/advisory_lock.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/procedure.hpp"
#include "db_virtuoso/pg/runner.hpp"
#include "db_virtuoso/pg/spi.hpp"

#include <deque>

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_operator.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/snapmgr.h"
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
    bool failed = false;    // an earlier parallel run failed (it resumes)
    // Parallel jobs: the quantile boundaries of a new job's ranges; in a worker, its range.
    std::vector<std::string> boundaries;
    std::optional<int> range_no;
    int ranges = 0;  // how many ranges the job has (0: a single-process job)
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

// A new parallel job's ranges: keys > boundary i-1 and <= boundary i, the last one ending at
// the job's bound.  The boundaries are key quantiles of the source (percentile_disc picks
// existing keys), so the ranges hold about as many rows each and every key falls in exactly
// one of them, duplicates included.
void split(Job &job, int parts) {
    if (!job.upper_key || parts < 2) return;
    std::string fractions = "{";
    for (int i = 1; i < parts; ++i)
        fractions += fmt::format("{}{}", i > 1 ? "," : "", static_cast<double>(i) / parts);
    fractions += "}";
    pg::GucScope guc;
    pin_key_styles(guc);
    pg::Spi spi;
    auto r = spi.execute(
        fmt::format("SELECT u.b::pg_catalog.text FROM pg_catalog.unnest((SELECT "
                    "pg_catalog.percentile_disc($1::pg_catalog.float8[]) WITHIN GROUP (ORDER BY "
                    "{key} USING {lt}) FROM ({src}\n) s)) WITH ORDINALITY AS u(b, i) ORDER BY u.i",
                    fmt::arg("key", job.key_sql), fmt::arg("lt", job.lt),
                    fmt::arg("src", job.source)),
        {fractions});
    for (const auto &row : r.rows) {
        if (!row[0] || *row[0] == *job.upper_key) continue;
        if (!job.boundaries.empty() && job.boundaries.back() == *row[0]) continue;
        job.boundaries.push_back(*row[0]);
    }
    job.boundaries.push_back(*job.upper_key);
    job.ranges = static_cast<int>(job.boundaries.size());
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
    job.failed = row[7] && *row[7] == "FAILED";
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    job.ranges = std::stoi(
        *spi.scalar("SELECT pg_catalog.count(*)::pg_catalog.text FROM virtuoso.batch_job_ranges "
                    "WHERE job_name = $1",
                    {job.name}));
    if (job.failed) {
        // A failed parallel run resumes: every range not done continues where it stopped.
        spi.execute(
            "UPDATE virtuoso.batch_jobs SET status = 'RUNNING', updated_at = "
            "clock_timestamp() WHERE job_name = $1",
            {job.name});
        spi.execute(
            "UPDATE virtuoso.batch_job_ranges SET status = 'RUNNING', error_sqlstate = "
            "NULL, error_message = NULL, updated_at = clock_timestamp() "
            "WHERE job_name = $1 AND status <> 'DONE'",
            {job.name});
    }
    return true;
}

// Records a new job and its ranges; returns its job_id, or nullopt when another session
// recorded a job of this name meanwhile (that session runs it).
std::optional<int32> record_new(const Job &job, const Arguments &args) {
    Oid caller = pg::pg_call([] { return GetUserId(); });
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    auto id = spi.scalar(
        "INSERT INTO virtuoso.batch_jobs (job_name, target_table, target_oid, source_query, "
        "key_column, key_type, upper_key, rows_total, owner_role) "
        "VALUES ($1, $2, $3::oid, $4, $5, $6, $7, $8::bigint, $9::oid) "
        "ON CONFLICT (job_name) DO NOTHING RETURNING job_id::pg_catalog.text",
        {job.name, job.target_sql, std::to_string(job.target), args.source_query, args.key_column,
         job.key_type, job.upper_key, std::to_string(job.rows_total), std::to_string(caller)});
    if (!id) return std::nullopt;
    // A range's position starts at its lower bound (exclusive; NULL: before the first key).
    std::optional<std::string> lower;
    for (size_t i = 0; i < job.boundaries.size(); ++i) {
        spi.execute(
            "INSERT INTO virtuoso.batch_job_ranges (job_name, range_no, lower_key, upper_key, "
            "last_key) VALUES ($1, $2::integer, $3, $4, $3)",
            {job.name, std::to_string(i), lower, job.boundaries[i]});
        lower = job.boundaries[i];
    }
    return std::stoi(*id);
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
    auto moved = job.range_no
                     ? spi.execute(
                           "UPDATE virtuoso.batch_job_ranges SET last_key = $2, rows_done = "
                           "rows_done + $4::bigint, batches = batches + 1, updated_at = "
                           "clock_timestamp() WHERE job_name = $1 AND range_no = $5::integer "
                           "AND last_key IS NOT DISTINCT FROM $3 AND status = 'RUNNING'",
                           {job.name, batch_end, job.last_key, std::to_string(copied),
                            std::to_string(*job.range_no)})
                     : spi.execute(
                           "UPDATE virtuoso.batch_jobs SET last_key = $2, rows_done = rows_done + "
                           "$4::bigint, batches = batches + 1, updated_at = clock_timestamp() "
                           "WHERE job_name = $1 AND last_key IS NOT DISTINCT FROM $3 AND status = "
                           "'RUNNING'",
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

// One session at a time runs a job: the caller holds this lock on the job's number (job_id,
// never a hash of its name, which two names can share) across its commits (and its workers'
// run); another session asking for the same job gets 55006 at once instead of racing it
// batch by batch.
constexpr int32 kJobLockSpace = 0x76626a62;  // "vbjb"

[[noreturn]] void refuse_running(const std::string &name) {
    throw UserError(ERRCODE_OBJECT_IN_USE,
                    fmt::format("job \"{}\" is being run by another session", name), "",
                    "Wait for that call to end, or cancel it; calling again afterwards "
                    "resumes the job.");
}

void lock_job(std::optional<pg::SessionAdvisoryLock> &lock, int32 job_id,
              const std::string &name) {
    // Taken by an earlier attempt of this call: kept when it is this job's.
    if (lock && lock->key() == job_id) return;
    lock.reset();
    lock.emplace(kJobLockSpace, job_id);
    if (!lock->held()) refuse_running(name);
}

std::optional<int32> find_job_id(const std::string &name) {
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    auto id = spi.scalar(
        "SELECT job_id::pg_catalog.text FROM virtuoso.batch_jobs WHERE job_name = $1", {name});
    if (!id) return std::nullopt;
    return std::stoi(*id);
}

// Everything checked and resolved before any row moves; the job locked for this session and
// recorded (or found, to resume).  Returns whether the job existed.
bool prepare(Job &job, const Arguments &args, std::optional<pg::SessionAdvisoryLock> &lock) {
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
    if (auto id = find_job_id(job.name)) {
        lock_job(lock, *id, job.name);
        if (load_or_create(job, args)) return true;
        // Deleted since: recorded anew below.
    }
    measure(job);
    split(job, args.parallel_workers);
    // Two sessions starting the same new job: the second one's INSERT waits for the first's
    // commit, which comes with the first holding the job's lock.
    auto id = record_new(job, args);
    if (!id) refuse_running(job.name);
    lock_job(lock, *id, job.name);
    return false;
}

// ---- parallel jobs ------------------------------------------------------------------------

constexpr const char *kRangeEntry = "virtuoso_copy_range_entry";

// In a runner worker: the transaction's snapshot for SPI (a worker has no portal to
// provide one), taken again after each commit.
void worker_commit() {
    pg::pg_call([] {
        PopActiveSnapshot();
        CommitTransactionCommand();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
    });
}

// A worker's range: the job's arguments again (resolved as the caller, whose role and
// settings the runner restored), its position, and the batch loop.  Each batch's rows commit
// with the range's position; the caller hears of each batch's rows (send_captured_data).
void copy_range(const std::vector<std::optional<std::string>> &p) {
    pg::pg_call([] { PushActiveSnapshot(GetTransactionSnapshot()); });
    Job job;
    job.name = *p.at(0);
    job.range_no = std::stoi(*p.at(1));
    int batch_size = std::stoi(*p.at(2));
    job.source = *p.at(3);
    job.target = static_cast<Oid>(std::stoul(*p.at(4)));
    {
        // Planning the source locks its tables: under the short lock_timeout, as in the
        // caller (a timeout fails this range; the job resumes when called again).
        pg::GucScope guc;
        guc.set("lock_timeout", std::to_string(gucs::lock_timeout_ms));
        job.target_sql = pg::qualified_relation_name(job.target);
        check_columns(job, source_columns(job.source), *p.at(5));
    }
    int64_t done_before = 0;
    {
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        auto r = spi.execute(
            "UPDATE virtuoso.batch_job_ranges SET worker_pid = pg_catalog.pg_backend_pid() "
            "WHERE job_name = $1 AND range_no = $2::integer AND status = 'RUNNING' "
            "RETURNING last_key, upper_key, rows_done",
            {job.name, std::to_string(*job.range_no)});
        if (r.empty())
            throw pg::UserError(
                ERRCODE_OBJECT_IN_USE,
                fmt::format("range {} of job \"{}\" is not running", *job.range_no + 1, job.name),
                "It was stopped by another session running the same job.");
        job.last_key = r.rows[0][0];
        job.upper_key = r.rows[0][1];
        done_before = std::stoll(*r.rows[0][2]);
    }
    worker_commit();
    pg::Progress progress(fmt::format("{} [range {}]", job.name, *job.range_no + 1), "copying", -1,
                          done_before);
    progress.silence();  // the caller reports the whole job
    int64_t last = 0;
    BatchStatements statements(job, batch_size);
    online::run_batches(
        [&job, &last, &statements] {
            auto n = copy_batch(job, statements);
            last = n.value_or(0);
            return n;
        },
        [&last] {
            worker_commit();
            pg::send_captured_data(std::to_string(last));
        },
        online::throttle_from_settings(), progress);
    {
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        spi.execute(
            "UPDATE virtuoso.batch_job_ranges SET status = 'DONE', updated_at = "
            "clock_timestamp() WHERE job_name = $1 AND range_no = $2::integer",
            {job.name, std::to_string(*job.range_no)});
    }
    pg::pg_call([] {
        PopActiveSnapshot();
        CommitTransactionCommand();
    });
}

struct RangeState {
    int range_no;
    std::string status;
};

std::vector<RangeState> load_ranges(const Job &job) {
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    auto r = spi.execute(
        "SELECT range_no::pg_catalog.text, status FROM virtuoso.batch_job_ranges "
        "WHERE job_name = $1 ORDER BY range_no",
        {job.name});
    std::vector<RangeState> out;
    for (const auto &row : r.rows) out.push_back({std::stoi(*row[0]), *row[1]});
    return out;
}

// A worker failed: the others are stopped; each range keeps its position, the failed one
// its error, and the job is FAILED (a new call resumes it).
void record_failure(const Job &job, int range_no, const std::string &sqlstate,
                    const std::string &message) {
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    spi.execute(
        "UPDATE virtuoso.batch_job_ranges SET status = CASE WHEN range_no = $2::integer THEN "
        "'FAILED' WHEN status = 'RUNNING' THEN 'STOPPED' ELSE status END, error_sqlstate = "
        "CASE WHEN range_no = $2::integer THEN $3 END, error_message = CASE WHEN range_no = "
        "$2::integer THEN $4 END, updated_at = clock_timestamp() WHERE job_name = $1",
        {job.name, std::to_string(range_no), sqlstate, message});
    spi.execute(
        "UPDATE virtuoso.batch_jobs j SET status = 'FAILED', updated_at = clock_timestamp(), "
        "rows_done = (SELECT COALESCE(sum(r.rows_done), 0) FROM virtuoso.batch_job_ranges r "
        "WHERE r.job_name = j.job_name), batches = (SELECT COALESCE(sum(r.batches), 0) FROM "
        "virtuoso.batch_job_ranges r WHERE r.job_name = j.job_name) WHERE j.job_name = $1",
        {job.name});
}

void finish_parallel(const Job &job) {
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    spi.execute(
        "UPDATE virtuoso.batch_jobs j SET status = 'SUCCESS', finished_at = clock_timestamp(), "
        "updated_at = clock_timestamp(), last_key = upper_key, "
        "rows_done = (SELECT COALESCE(sum(r.rows_done), 0) FROM virtuoso.batch_job_ranges r "
        "WHERE r.job_name = j.job_name), batches = (SELECT COALESCE(sum(r.batches), 0) FROM "
        "virtuoso.batch_job_ranges r WHERE r.job_name = j.job_name) WHERE j.job_name = $1",
        {job.name});
}

struct ParallelResult {
    int64_t copied = 0;       // by this call
    int64_t done_before = 0;  // by earlier calls of the job
    int workers = 0;
};

// The caller's side: ranges handed to at most `workers` runner workers (a range waits for a
// worker that finished its own), progress summed from their batches.
ParallelResult run_parallel(FunctionCallInfo fcinfo, const Job &job, const Arguments &args) {
    std::deque<int> pending;
    int64_t done_before = 0;
    {
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        done_before = std::stoll(*spi.scalar(
            "SELECT COALESCE(sum(rows_done), 0)::pg_catalog.text FROM virtuoso.batch_job_ranges "
            "WHERE job_name = $1",
            {job.name}));
    }
    for (const auto &r : load_ranges(job))
        if (r.status != "DONE") pending.push_back(r.range_no);
    ParallelResult result;
    result.done_before = done_before;
    int workers = std::min<int>(args.parallel_workers, static_cast<int>(pending.size()));
    if (pending.empty()) return result;
    pg::report(NOTICE,
               fmt::format("{} job \"{}\"{}: {} of {} key ranges to copy, {} workers",
                           done_before > 0 ? "resuming" : "running", job.name,
                           done_before > 0 ? fmt::format(" after {} rows", done_before) : "",
                           pending.size(), job.ranges, workers));
    pg::commit_caller(fcinfo, kProcedure);

    auto request_for = [&](int range_no) {
        pg::RunRequest req;
        req.mode = pg::RunMode::Entry;
        req.sql = kRangeEntry;
        req.params = {job.name,   std::to_string(range_no),   std::to_string(args.batch_size),
                      job.source, std::to_string(job.target), args.key_column};
        return req;
    };
    pg::Progress progress(job.name, fmt::format("copying ({} workers)", workers), job.rows_total,
                          done_before);
    pg::WorkerGroup group;
    std::vector<int> range_of;  // by worker index
    std::vector<bool> seen;     // finished workers already handled
    int running = 0;
    auto start_next = [&]() {
        range_of.push_back(pending.front());
        seen.push_back(false);
        try {
            group.start(request_for(pending.front()));
        } catch (...) {
            range_of.pop_back();
            seen.pop_back();
            throw;
        }
        pending.pop_front();
        ++running;
    };
    while (!pending.empty() && running < workers) {
        try {
            start_next();
        } catch (const pg::PgError &e) {
            // No slot within virtuoso.runner_queue_timeout: go on with the workers that
            // started; the other ranges wait for them.  Without any worker: the error.
            if (e.sqlstate() != ERRCODE_CONFIGURATION_LIMIT_EXCEEDED || running == 0) throw;
            pg::report(NOTICE,
                       fmt::format("only {} of {} workers could start ({}); the other ranges "
                                   "are copied as these finish",
                                   running, workers, e.what()));
            workers = running;
        }
    }
    result.workers = workers;
    for (;;) {
        bool any = group.wait(200);
        for (size_t i = 0; i < group.size(); ++i)
            for (const auto &rows : group.take_captured(i)) {
                int64_t n = std::stoll(rows);
                result.copied += n;
                progress.advance(n);
            }
        for (size_t i = 0; i < group.size(); ++i) {
            if (seen[i] || group.running(i)) continue;
            seen[i] = true;
            --running;
            pg::RunOutcome out = group.outcome(i);
            if (!out.ok) {
                group.stop_all();
                int code = out.error ? out.error->sqlerrcode : ERRCODE_CONNECTION_FAILURE;
                std::string message =
                    out.error && out.error->message
                        ? out.error->message
                        : "the worker exited before finishing its range (see the server log)";
                std::string detail = out.error && out.error->detail ? out.error->detail : "";
                std::string hint = out.error && out.error->hint ? out.error->hint : "";
                std::string state =
                    pg::pg_call([code] { return std::string(unpack_sql_state(code)); });
                record_failure(job, range_of[i], state, message);
                pg::commit_caller(fcinfo, kProcedure);
                throw pg::UserError(
                    code, message,
                    fmt::format("{}{}The worker copying range {} of {} of job \"{}\" failed; the "
                                "other workers were stopped and each range's position is in "
                                "virtuoso.batch_job_ranges.",
                                detail, detail.empty() ? "" : "\n", range_of[i] + 1, job.ranges,
                                job.name),
                    hint.empty() ? "Fix the cause and call again: the job resumes every range "
                                   "where it stopped."
                                 : hint);
            }
        }
        while (!pending.empty() && running < workers) start_next();
        if (!any && running == 0 && pending.empty()) break;
    }
    return result;
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
    check_batch_size(a.batch_size);
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

    online::Job job;
    bool resumed = false;
    std::optional<pg::SessionAdvisoryLock> job_lock;
    // Preparation locks the source's and the target's tables: under the short lock_timeout,
    // rolled back and retried after a back-off like every other lock of a migration.
    online::with_lock_retries(
        gucs::lock_timeout_ms, gucs::max_lock_retries,
        [&] {
            job = online::Job{};
            resumed = online::prepare(job, args, job_lock);
        },
        [fcinfo](int attempt, int attempts, long sleep) {
            pg::report(NOTICE, fmt::format("lock not available while preparing the copy (attempt "
                                           "{} of {}); retrying in {} ms",
                                           attempt, attempts, sleep));
            pg::commit_caller(fcinfo, online::kProcedure);
        });
    if (resumed && job.finished) {
        pg::report(NOTICE, fmt::format("job \"{}\" finished earlier ({} rows); nothing to do",
                                       job.name, job.rows_done));
        PG_RETURN_VOID();
    }
    if (resumed && job.ranges == 0)
        pg::report(NOTICE,
                   fmt::format("resuming job \"{}\" after {} rows", job.name, job.rows_done));
    pg::commit_caller(fcinfo, online::kProcedure);  // the job row is there before any batch

    if (job.ranges > 0) {
        if (args.parallel_workers == 1 && job.ranges > 1)
            pg::report(NOTICE, fmt::format("job \"{}\" was split into {} key ranges when it "
                                           "started; they are copied one after the other",
                                           job.name, job.ranges));
        online::ParallelResult r = online::run_parallel(fcinfo, job, args);
        online::finish_parallel(job);
        pg::commit_caller(fcinfo, online::kProcedure);
        pg::report(
            NOTICE,
            fmt::format("job \"{}\": {} rows copied by {} workers{}", job.name, r.copied, r.workers,
                        resumed ? fmt::format(", {} in all", r.done_before + r.copied) : ""));
        PG_RETURN_VOID();
    }
    if (resumed && args.parallel_workers > 1)
        pg::report(NOTICE,
                   fmt::format("job \"{}\" started as one process; it continues so", job.name));

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

// RunMode::Entry of the runner: one key range of a parallel job, in a background worker.
extern "C" PGDLLEXPORT void virtuoso_copy_range_entry(int nparams, const char *const *params);

void virtuoso_copy_range_entry(int nparams, const char *const *params) {
    std::vector<std::optional<std::string>> p;
    for (int i = 0; i < nparams; ++i)
        p.push_back(params[i] ? std::optional<std::string>(params[i]) : std::nullopt);
    (void)pg::guarded("virtuoso_copy_range_entry", [&p] {
        online::copy_range(p);
        return (Datum)0;
    });
}
