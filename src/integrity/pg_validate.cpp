// virtuoso.validate_data_integrity(validation_rules jsonb)
//
// Rules are parsed and checked in pure C++ (integrity/rules.hpp); here each rule's tables
// and columns are resolved through the catalog, its queries run through SPI, and the
// verdict becomes a row.  Every rule runs in its own subtransaction that is always rolled
// back, with the transaction marked read-only meanwhile and SPI in read-only mode: a rule
// that tries to write fails with ERROR and nothing it did survives.  Read-only SPI runs on
// the active snapshot, which the function sets once for all rules (push_rules_snapshot), so
// all rules see the same data, including what the calling transaction has written and not
// yet committed.
//
// The SQL a typed rule runs names every operator, function and type by schema (operators
// from the column type's default B-tree operator class, see btree_operator), so the
// caller's search_path cannot put another role's code in their place; only the user's own
// parts (a query rule, expression, where, table names) resolve through it, as in any query
// the caller writes.
#include "db_virtuoso/integrity/rules.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "access/stratnum.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_operator.h"
#include "commands/defrem.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"
}

namespace virtuoso::integrity {
namespace {

using pg::PgError;
using pg::UserError;

constexpr int kSampleSize = 5;

// ---- the per-rule timeout ------------------------------------------------------------
// statement_timeout only covers top-level statements, so a rule gets a timeout of its own
// that raises a query cancel.  The handler acts only while a rule is running, so a timer
// left over by an error that bypassed us can never cancel anything else.
volatile sig_atomic_t rule_running = 0;
volatile sig_atomic_t rule_timed_out = 0;
TimeoutId rule_timeout_id = MAX_TIMEOUTS;

void rule_timeout_handler(void) {
    if (rule_running) {
        rule_timed_out = 1;
        QueryCancelPending = true;
        InterruptPending = true;
    }
    SetLatch(MyLatch);
}

class RuleTimer {
  public:
    explicit RuleTimer(long ms) {
        rule_timed_out = 0;
        if (ms <= 0) return;
        pg::pg_call([ms] {
            if (rule_timeout_id == MAX_TIMEOUTS)
                rule_timeout_id = RegisterTimeout(USER_TIMEOUT, rule_timeout_handler);
            rule_running = 1;
            enable_timeout_after(rule_timeout_id, static_cast<int>(std::min<long>(ms, INT_MAX)));
        });
        armed_ = true;
    }
    ~RuleTimer() { stop(); }
    void stop() {
        rule_running = 0;
        if (!armed_) return;
        armed_ = false;
        disable_timeout(rule_timeout_id, false);
    }
    // The timer fired: the cancel it raised was consumed by the error we caught, unless the
    // rule finished first; then the cancel is ours and must not hit the next statement.
    bool fired_and_forget_cancel(bool cancel_consumed) {
        stop();
        if (!rule_timed_out) return false;
        if (!cancel_consumed) QueryCancelPending = false;
        return true;
    }

  private:
    bool armed_ = false;
};

// Marks the transaction read-only while a rule runs (inside its subtransaction).
class ReadOnlyScope {
  public:
    ReadOnlyScope() : saved_(XactReadOnly) { XactReadOnly = true; }
    ~ReadOnlyScope() { XactReadOnly = saved_; }

  private:
    bool saved_;
};

struct Row {
    std::string rule_name, status;
    std::optional<int64_t> result_count, expected_count;
    std::string message;
};

std::string pg_error_text(const PgError &e) {
    ErrorData *d = e.data();
    std::string text =
        fmt::format("{}: {}", d ? unpack_sql_state(d->sqlerrcode) : "XX000", e.what());
    if (d && d->detail) text += fmt::format(" ({})", d->detail);
    return text;
}

// ---- input checks done by the server ----------------------------------------------------

// Milliseconds of an interval text; a bad interval is 22023 naming the rule and field.
int64_t interval_ms(const Rule &rule, std::string_view field, const std::string &text) {
    pg::SubTransaction sub;
    try {
        int64_t ms = pg::pg_call([&text] {
            Datum d = DirectFunctionCall3(interval_in, CStringGetDatum(text.c_str()),
                                          ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
            Interval *iv = DatumGetIntervalP(d);
            double total_us = static_cast<double>(iv->time) +
                              (static_cast<double>(iv->month) * DAYS_PER_MONTH + iv->day) *
                                  static_cast<double>(USECS_PER_DAY);
            return static_cast<int64_t>(std::min(total_us / 1000.0, 9.0e15));
        });
        sub.commit();
        if (ms < 0)
            throw UserError(
                ERRCODE_INVALID_PARAMETER_VALUE,
                fmt::format("rule \"{}\": field \"{}\" must not be negative", rule.name, field));
        return ms;
    } catch (const PgError &e) {
        if (pg::ends_the_call(e.sqlstate())) throw;  // not the interval's fault
        std::string why = e.what();
        sub.rollback();
        throw UserError(
            ERRCODE_INVALID_PARAMETER_VALUE,
            fmt::format("rule \"{}\": field \"{}\" is not an interval: {}", rule.name, field, why),
            "", "Write an interval such as \"30s\", \"5 min\" or \"1 day\".");
    }
}

// ---- resolving identifiers --------------------------------------------------------------

// A table name as regclass reads it ("orders", "sales.orders", "\"Odd Name\""); text that is
// not a valid qualified name is taken as one exact name, so it can only ever name a table.
Oid resolve_table(const std::string &name) {
    return pg::pg_call([&name] {
        char *raw = pstrdup(name.c_str());
        List *parts = NIL;
        List *names = NIL;
        if (SplitIdentifierString(raw, '.', &parts) && list_length(parts) >= 1 &&
            list_length(parts) <= 3) {
            ListCell *lc;
            foreach (lc, parts) names = lappend(names, makeString(static_cast<char *>(lfirst(lc))));
        } else {
            names = list_make1(makeString(pstrdup(name.c_str())));
        }
        return RangeVarGetRelid(makeRangeVarFromNameList(names), AccessShareLock, false);
    });
}

std::vector<ResolvedColumn> resolve_columns(Oid relid, const std::vector<std::string> &names,
                                            std::vector<Oid> &types) {
    std::vector<ResolvedColumn> out;
    for (const auto &name : names) {
        Oid type = pg::pg_call([relid, &name] {
            AttrNumber attnum = get_attnum(relid, name.c_str());
            if (attnum == InvalidAttrNumber)
                ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                                errmsg("column \"%s\" of relation \"%s\" does not exist",
                                       name.c_str(), get_rel_name(relid))));
            return get_atttype(relid, attnum);
        });
        const char *quoted = pg::pg_call([&name] { return ::quote_identifier(name.c_str()); });
        const char *type_name = pg::pg_call(
            [type] { return format_type_extended(type, -1, FORMAT_TYPE_FORCE_QUALIFY); });
        out.push_back(ResolvedColumn{quoted, type_name, std::nullopt, std::nullopt, std::nullopt});
        types.push_back(type);
    }
    return out;
}

// The operator of `strategy` in the default B-tree operator class of left_type, taking
// right_type on its right if the class's family has such a cross-type member, else the
// class's own type (the right operand is then cast), as PostgreSQL's RI triggers choose
// the equality of a foreign key.  Looked up in the catalog and written OPERATOR(schema.op),
// so no search_path can put another operator in its place.  A type without a default
// B-tree class is 42883: there is no operator that is the type's own to compare with.
ResolvedOperator btree_operator(const Rule &rule, const std::string &column, Oid left_type,
                                Oid right_type, int16 strategy) {
    struct Found {
        bool no_class = false;
        Oid op = InvalidOid;
        char *schema = nullptr, *name = nullptr, *left_cast = nullptr, *right_cast = nullptr;
        char *type = nullptr;
    };
    Found f = pg::pg_call([=] {
        Found f;
        f.type = format_type_be(left_type);
        Oid opclass = GetDefaultOpClass(left_type, BTREE_AM_OID);
        if (!OidIsValid(opclass)) {
            f.no_class = true;
            return f;
        }
        Oid family = get_opclass_family(opclass);
        Oid input = get_opclass_input_type(opclass);
        f.op = get_opfamily_member(family, input, getBaseType(right_type), strategy);
        if (!OidIsValid(f.op)) f.op = get_opfamily_member(family, input, input, strategy);
        if (!OidIsValid(f.op)) return f;
        HeapTuple tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(f.op));
        if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for operator %u", f.op);
        auto *form = reinterpret_cast<Form_pg_operator>(GETSTRUCT(tuple));
        f.schema = pstrdup(::quote_identifier(get_namespace_name(form->oprnamespace)));
        f.name = pstrdup(NameStr(form->oprname));
        // A polymorphic input (anyenum, anyarray, record...) takes the value as it is.
        auto cast_to = [](Oid have, Oid want) -> char * {
            if (have == want || get_typtype(want) == TYPTYPE_PSEUDO) return nullptr;
            return format_type_extended(want, -1, FORMAT_TYPE_FORCE_QUALIFY);
        };
        f.left_cast = cast_to(left_type, form->oprleft);
        f.right_cast = cast_to(right_type, form->oprright);
        ReleaseSysCache(tuple);
        return f;
    });
    if (f.no_class || !OidIsValid(f.op))
        throw UserError(
            ERRCODE_UNDEFINED_FUNCTION,
            fmt::format("column {} has type {}, {}: rule type {} cannot compare its values", column,
                        f.type,
                        f.no_class ? "which has no default B-tree operator class"
                                   : "whose default B-tree operator class lacks the comparison",
                        type_name(rule.type)),
            "", "Write an expression or query rule that compares the values as you mean it.");
    return ResolvedOperator{fmt::format("OPERATOR({}.{})", f.schema, f.name),
                            f.left_cast ? f.left_cast : "", f.right_cast ? f.right_cast : ""};
}

Resolved resolve(const Rule &rule) {
    Resolved r;
    Oid table = resolve_table(rule.table);
    r.table = pg::qualified_relation_name(table);
    std::vector<Oid> types;
    r.columns = resolve_columns(table, rule.columns, types);
    for (size_t i = 0; i < r.columns.size(); ++i) {
        auto &c = r.columns[i];
        if (rule.type == RuleType::Unique || rule.type == RuleType::AcceptedValues)
            c.eq = btree_operator(rule, c.name, types[i], types[i], BTEqualStrategyNumber);
        if (rule.type == RuleType::Range && rule.min)
            c.lt = btree_operator(rule, c.name, types[i], types[i], BTLessStrategyNumber);
        if (rule.type == RuleType::Range && rule.max)
            c.gt = btree_operator(rule, c.name, types[i], types[i], BTGreaterStrategyNumber);
    }
    if (rule.type == RuleType::ForeignKey) {
        Oid parent = resolve_table(rule.references);
        r.parent = pg::qualified_relation_name(parent);
        std::vector<Oid> parent_types;
        r.parent_columns = resolve_columns(parent, rule.referenced_columns, parent_types);
        for (size_t i = 0; i < r.parent_columns.size(); ++i)
            r.parent_columns[i].eq = btree_operator(rule, r.parent_columns[i].name, parent_types[i],
                                                    types[i], BTEqualStrategyNumber);
    }
    return r;
}

// ---- running one rule -------------------------------------------------------------------

int64_t to_int64(const pg::Value &v, const char *what) {
    if (!v) throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, fmt::format("{} is NULL", what));
    try {
        size_t used = 0;
        long long n = std::stoll(*v, &used);
        if (used == v->size()) return n;
    } catch (const std::exception &) {
    }
    throw UserError(ERRCODE_DATATYPE_MISMATCH,
                    fmt::format("{} is \"{}\", not a whole number", what, *v));
}

Measurement measure(pg::Spi &spi, const Rule &rule, const RuleSql &sql) {
    Measurement m;
    if (rule.type == RuleType::Query) {
        auto result = spi.execute(sql.count, {}, true, 2);
        if (result.rows.empty())
            throw UserError(ERRCODE_NO_DATA_FOUND, "the query returned no row; it must return one");
        if (result.rows.size() > 1)
            throw UserError(ERRCODE_CARDINALITY_VIOLATION,
                            "the query returned more than one row; it must return one");
        int col = result.column("count");
        if (col < 0 && result.columns.size() != 1)
            throw UserError(ERRCODE_UNDEFINED_COLUMN,
                            "the query must return a column named \"count\" or a single column");
        m.count = to_int64(result.rows[0][col < 0 ? 0 : col], "the query's count");
        return m;
    }
    auto result =
        spi.execute(sql.count, sql.params, true, 0);  // one row; no limit keeps parallel plans
    const auto &row = result.rows.at(0);
    if (rule.type == RuleType::Freshness) {
        m.newest = row[0];
        m.age_s = row[1] ? std::optional<int64_t>(to_int64(row[1], "the age")) : std::nullopt;
        m.max_age_s = to_int64(row[2], "max_age");
        m.fresh = row[3] && *row[3] == "t";
        return m;
    }
    m.count = to_int64(row[0], "the count");
    if (*m.count > 0 && !sql.sample.empty() && rule.type != RuleType::RowCount) {
        // A row sample reads every column: a caller who may read only the rule's columns
        // still gets the verdict, without the sample.
        pg::SubTransaction sample_sub;
        try {
            for (const auto &s : spi.execute(sql.sample, sql.params, true, kSampleSize).rows)
                m.sample.push_back(s[0].value_or("NULL"));
            sample_sub.commit();
        } catch (const PgError &e) {
            sample_sub.rollback();
            if (e.sqlstate() != ERRCODE_INSUFFICIENT_PRIVILEGE) throw;
            m.sample.clear();
            m.sample_note = fmt::format("no sample ({})", e.what());
        }
    }
    return m;
}

Row run_rule(const Rule &rule, long timeout_ms) {
    Row row{rule.name, "ERROR", std::nullopt, std::nullopt, {}};
    pg::SubTransaction sub;
    ReadOnlyScope read_only;
    RuleTimer timer(timeout_ms);
    try {
        pg::Spi spi;
        Resolved resolved;
        if (rule.type != RuleType::Query) resolved = resolve(rule);
        RuleSql sql = build_sql(rule, resolved, kSampleSize);
        Measurement m = measure(spi, rule, sql);
        (void)timer.fired_and_forget_cancel(false);  // finished just in time: the result stands
        Verdict v = judge(rule, resolved, m);
        row.status = v.status;
        row.result_count = v.result_count;
        row.expected_count = v.expected_count;
        row.message = v.message;
    } catch (const PgError &e) {
        bool cancel = e.sqlstate() == ERRCODE_QUERY_CANCELED;
        if (timer.fired_and_forget_cancel(cancel) && cancel) {
            row.message = fmt::format(
                "57014: the rule ran longer than its timeout of {} ms and was "
                "cancelled",
                timeout_ms);
        } else if (pg::ends_the_call(e.sqlstate())) {
            throw;  // the user's cancel or statement_timeout, a shutdown, a resource or limit
        } else if (e.sqlstate() == ERRCODE_FEATURE_NOT_SUPPORTED &&
                   std::string_view(e.what()).find("non-volatile function") !=
                       std::string_view::npos) {
            // Read-only SPI refuses a writing statement with a message about functions.
            row.message = fmt::format(
                "25006: a rule must only read, but its SQL writes (DML, DDL or a writable WITH); "
                "PostgreSQL says: {}",
                e.what());
        } else {
            row.message = pg_error_text(e);
        }
    } catch (const UserError &e) {
        timer.stop();
        row.message = fmt::format("{}: {}", unpack_sql_state(e.sqlstate()), e.what());
    } catch (const RuleError &e) {
        timer.stop();
        row.message = fmt::format("42883: {}", e.what());  // an operator left unresolved
    }
    timer.stop();
    sub.rollback();  // a rule never leaves anything behind
    return row;
}

// The snapshot every rule reads: the caller's, advanced to the caller's latest command, so
// that the rules see everything the calling transaction has done so far (a migration's
// uncommitted changes) however the caller ran us, and nothing committed meanwhile.  An
// error leaves it to transaction abort to pop.
void push_rules_snapshot() {
    pg::pg_call([] {
        if (ActiveSnapshotSet())
            PushCopiedSnapshot(GetActiveSnapshot());
        else
            PushActiveSnapshot(GetTransactionSnapshot());
        UpdateActiveSnapshotCommandId();
    });
}

Datum emit(FunctionCallInfo fcinfo, const std::vector<Row> &rows) {
    pg::pg_call([&] {
        InitMaterializedSRF(fcinfo, 0);
        auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
        for (const auto &r : rows) {
            Datum values[5];
            bool nulls[5] = {false, false, !r.result_count, !r.expected_count, false};
            values[0] = CStringGetTextDatum(r.rule_name.c_str());
            values[1] = CStringGetTextDatum(r.status.c_str());
            values[2] = Int64GetDatum(r.result_count.value_or(0));
            values[3] = Int64GetDatum(r.expected_count.value_or(0));
            values[4] = CStringGetTextDatum(r.message.c_str());
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
        }
    });
    return (Datum)0;
}

}  // namespace
}  // namespace virtuoso::integrity

using namespace virtuoso;

VIRTUOSO_FUNCTION(virtuoso_validate_data_integrity) {
    if (PG_ARGISNULL(0))
        throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE, "validation_rules must not be NULL",
                            "", "Pass a JSON array of rules, e.g. '[]'.");
    std::string text = pg::pg_call([fcinfo] {
        Jsonb *jb = PG_GETARG_JSONB_P(0);
        return std::string(JsonbToCString(nullptr, &jb->root, VARSIZE(jb)));
    });
    std::vector<integrity::Rule> rules;
    try {
        rules = integrity::parse_rules(text);
    } catch (const integrity::RuleError &e) {
        throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE, e.what(), "",
                            "See the rule format of virtuoso.validate_data_integrity in the "
                            "documentation.");
    }
    // Every interval is checked before any rule runs: a malformed set runs nothing.
    std::vector<long> timeouts;
    for (const auto &rule : rules) {
        if (rule.type == integrity::RuleType::Freshness)
            (void)integrity::interval_ms(rule, "max_age", rule.max_age);
        timeouts.push_back(rule.timeout ? integrity::interval_ms(rule, "timeout", *rule.timeout)
                                        : gucs::rule_timeout_ms);
    }
    std::vector<integrity::Row> rows;
    integrity::push_rules_snapshot();
    for (size_t i = 0; i < rules.size(); ++i)
        rows.push_back(integrity::run_rule(rules[i], timeouts[i]));
    pg::pg_call([] { PopActiveSnapshot(); });
    return integrity::emit(fcinfo, rows);
}
