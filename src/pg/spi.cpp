#include "db_virtuoso/pg/spi.hpp"

#include <unordered_map>

extern "C" {
#include "storage/latch.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace virtuoso::pg {

int SpiResult::column(std::string_view name) const {
    for (size_t i = 0; i < columns.size(); ++i)
        if (columns[i] == name) return static_cast<int>(i);
    return -1;
}

Spi::Spi(bool keep_plans) : keep_plans_(keep_plans) {
    pg_call([] {
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    });
    connected_ = true;
}

Spi::~Spi() {
    if (connected_) SPI_finish();
}

namespace {

// Everything SPI hands back, copied into palloc'd C strings inside the PG_TRY region, so
// that no C++ allocation (which could throw) happens there.
struct RawResult {
    int ncols = 0;
    uint64 nrows = 0;
    uint64 processed = 0;
    char **names = nullptr;
    char **cells = nullptr;  // nrows * ncols, NULL for SQL NULL
};

struct RawCall {
    SPIPlanPtr plan;  // a kept plan, or nullptr to plan sql now
    const char *sql;
    int nargs;
    Oid *types;
    Datum *values;
    char *nulls;
    bool read_only;
    long max_rows;
    RawResult out;
};

void run_raw(void *arg) {
    auto *c = static_cast<RawCall *>(arg);
    int rc = c->plan ? SPI_execute_plan(c->plan, c->values, c->nulls, c->read_only, c->max_rows)
                     : SPI_execute_with_args(c->sql, c->nargs, c->types, c->values, c->nulls,
                                             c->read_only, c->max_rows);
    // User SQL reaches here too (transactional migrations, integrity rules).
    if (rc < 0)
        raise_for_spi_result(rc, "here",
                             "The statement runs inside a transaction that db_virtuoso controls.");
    c->out.processed = SPI_processed;
    if (SPI_tuptable == nullptr) return;
    TupleDesc desc = SPI_tuptable->tupdesc;
    c->out.ncols = desc->natts;
    c->out.nrows = SPI_processed;
    c->out.names = static_cast<char **>(palloc0(sizeof(char *) * (desc->natts + 1)));
    for (int i = 0; i < desc->natts; ++i)
        c->out.names[i] = pstrdup(NameStr(TupleDescAttr(desc, i)->attname));
    c->out.cells =
        static_cast<char **>(palloc0(sizeof(char *) * (SPI_processed * desc->natts + 1)));
    for (uint64 r = 0; r < SPI_processed; ++r)
        for (int col = 0; col < desc->natts; ++col)
            c->out.cells[r * desc->natts + col] =
                SPI_getvalue(SPI_tuptable->vals[r], desc, col + 1);
}

}  // namespace

void raise_for_spi_result(int rc, const char *where, const char *transaction_detail) {
    if (rc == SPI_ERROR_TRANSACTION)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("transaction control statements cannot run %s", where),
                        errdetail_internal("%s", transaction_detail)));
    if (rc == SPI_ERROR_COPY)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("COPY FROM STDIN and COPY TO STDOUT cannot run %s: it has no "
                               "client connection",
                               where),
                        errhint("COPY to or from a server file or program, or use INSERT ... "
                                "SELECT.")));
    if (rc < 0)
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                        errmsg_internal("SPI execution failed: %s", SPI_result_code_string(rc))));
}

namespace {

// SPI_prepare + SPI_keepplan: the plan outlives the SPI connection and the transaction.
SPIPlanPtr keep_plan(const std::string &sql, std::vector<Oid> &types) {
    return pg_call([&] {
        SPIPlanPtr p = SPI_prepare(sql.c_str(), static_cast<int>(types.size()), types.data());
        if (p == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        if (SPI_keepplan(p) != 0) elog(ERROR, "SPI_keepplan failed");
        return p;
    });
}

// Runs sql (plan: its kept plan, or nullptr to plan it now) with text parameters, the rows
// copied into C++ memory.
SpiResult run(SPIPlanPtr plan, const std::string &sql, const std::vector<Param> &params,
              std::vector<Oid> &types, bool read_only, long max_rows) {
    const int nargs = static_cast<int>(params.size());
    std::vector<Datum> values(nargs, 0);
    std::vector<char> nulls(nargs + 1, ' ');
    for (int i = 0; i < nargs; ++i) {
        if (!params[i]) {
            nulls[i] = 'n';
            continue;
        }
        const std::string &p = *params[i];
        values[i] = pg_call([&p] {
            return PointerGetDatum(cstring_to_text_with_len(p.data(), static_cast<int>(p.size())));
        });
    }
    RawCall call{plan,      sql.c_str(), nargs, types.data(), values.data(), nulls.data(),
                 read_only, max_rows,    {}};
    if (ErrorData *e = catch_pg_error(run_raw, &call)) throw PgError(e);

    SpiResult result;
    result.processed = call.out.processed;
    for (int i = 0; i < call.out.ncols; ++i) result.columns.emplace_back(call.out.names[i]);
    result.rows.reserve(call.out.nrows);
    for (uint64 r = 0; r < call.out.nrows; ++r) {
        std::vector<Value> row;
        row.reserve(call.out.ncols);
        for (int col = 0; col < call.out.ncols; ++col) {
            const char *cell = call.out.cells[r * call.out.ncols + col];
            row.push_back(cell ? Value(cell) : Value());
        }
        result.rows.push_back(std::move(row));
    }
    return result;
}

}  // namespace

SpiResult Spi::execute(const std::string &sql, const std::vector<Param> &params, bool read_only,
                       long max_rows) {
    std::vector<Oid> types(params.size(), TEXTOID);
    SPIPlanPtr plan = nullptr;
    if (keep_plans_) {
        // Kept plans of the extension's own SQL, per session, by text and parameter count.
        static std::unordered_map<std::string, SPIPlanPtr> kept;
        std::string key = std::to_string(params.size()) + ":" + sql;
        auto found = kept.find(key);
        if (found == kept.end()) {
            plan = keep_plan(sql, types);
            kept.emplace(std::move(key), plan);
        } else {
            plan = found->second;
        }
    }
    return run(plan, sql, params, types, read_only, max_rows);
}

PreparedStatement::~PreparedStatement() {
    if (plan_ != nullptr) SPI_freeplan(plan_);
}

SpiResult PreparedStatement::execute(Spi &, const std::vector<Param> &params, bool read_only,
                                     long max_rows) {
    std::vector<Oid> types(params.size(), TEXTOID);
    if (plan_ == nullptr) {
        plan_ = keep_plan(sql_, types);
        nargs_ = static_cast<int>(params.size());
    } else if (nargs_ != static_cast<int>(params.size())) {
        throw std::logic_error("PreparedStatement: another parameter count than when prepared");
    }
    return run(plan_, sql_, params, types, read_only, max_rows);
}

Value Spi::scalar(const std::string &sql, const std::vector<Param> &params, bool read_only) {
    return execute(sql, params, read_only, 1).scalar();
}

GucScope::GucScope() : nest_level_(NewGUCNestLevel()) {}

GucScope::~GucScope() {
    AtEOXact_GUC(true, nest_level_);
}

void GucScope::set(const char *name, const std::string &value) {
    pg_call([&] {
        (void)set_config_option(name, value.c_str(), PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
                                true, 0, false);
    });
}

namespace {
constexpr const char *kTrackSetting = "pg_stat_statements.track";

void untrack(GucAction action) {
    if (GetConfigOption(kTrackSetting, true, false) == nullptr) return;  // not loaded
    (void)set_config_option(kTrackSetting, "none", PGC_SUSET, PGC_S_SESSION, action, true, 0,
                            false);
}
}  // namespace

void GucScope::untrack_statements() {
    pg_call([] { untrack(GUC_ACTION_SAVE); });
}

void untrack_statements_of_transaction() {
    untrack(GUC_ACTION_LOCAL);
}

void interruptible_sleep(long milliseconds) {
    pg_call([milliseconds] {
        // The latch is also set by others (a shm_mq peer, a signal): sleep on to the end.
        TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), milliseconds);
        for (;;) {
            long left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
            if (left <= 0) break;
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, left,
                            PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
        }
    });
}

std::string quote_identifier(const std::string &ident) {
    return pg_call([&] { return std::string(::quote_identifier(ident.c_str())); });
}

std::string quote_literal(const std::string &literal) {
    return pg_call([&] { return std::string(quote_literal_cstr(literal.c_str())); });
}

std::string oid_array(const std::vector<Oid> &oids) {
    std::string out = "{";
    for (size_t i = 0; i < oids.size(); ++i) out += (i ? "," : "") + std::to_string(oids[i]);
    return out + "}";
}

std::string qualified_relation_name(Oid relid) {
    return pg_call([relid] {
        char *rel = get_rel_name(relid);
        if (rel == nullptr)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                            errmsg("relation with OID %u does not exist", relid)));
        char *nsp = get_namespace_name(get_rel_namespace(relid));
        return std::string(quote_qualified_identifier(nsp, rel));
    });
}

Value text_arg(FunctionCallInfo fcinfo, int argno) {
    if (PG_NARGS() <= argno || PG_ARGISNULL(argno)) return std::nullopt;
    return pg_call([&] { return std::string(text_to_cstring(PG_GETARG_TEXT_PP(argno))); });
}

Datum text_datum(const std::string &s) {
    return pg_call([&] {
        return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
    });
}

}  // namespace virtuoso::pg
