// The gate of execute_migration_with_monitoring: lint before anything runs, and the plans of
// the hottest statements compared before and after the migration, before it commits.
#include <nlohmann/json.hpp>  // before PostgreSQL's headers (port.h redefines snprintf)

#include "db_virtuoso/migrate/gate.hpp"
#include "db_virtuoso/advisor/pg_whatif.hpp"
#include "db_virtuoso/lint/pg_lint.hpp"
#include "db_virtuoso/pg/gucs.hpp"

extern "C" {
#include "mb/pg_wchar.h"
}

namespace virtuoso::migrate {
namespace {

using Json = nlohmann::json;

// At most this many findings or statements are spelled out in an error's detail; the log
// row holds all of them.
constexpr size_t kDetailItems = 10;

std::string one_line(const std::string &text, size_t max_bytes) {
    std::string flat;
    bool blank = false;
    for (char c : text) {
        bool space = c == '\n' || c == '\r' || c == '\t' || c == ' ';
        if (space && blank) continue;
        flat += space ? ' ' : c;
        blank = space;
    }
    if (flat.size() <= max_bytes) return flat;
    // cut at a character boundary of the server encoding
    int clip = pg::pg_call([&flat, max_bytes] {
        return pg_mbcliplen(flat.c_str(), static_cast<int>(flat.size()),
                            static_cast<int>(max_bytes));
    });
    return flat.substr(0, static_cast<size_t>(clip)) + "...";
}

// A memory context for the parse and plan trees of one statement: current while alive,
// deleted afterwards (the caller's context is current again).
class ScratchMemory {
  public:
    ScratchMemory() {
        caller_ = CurrentMemoryContext;
        context_ = pg::pg_call([] {
            return AllocSetContextCreate(CurrentMemoryContext, "db_virtuoso migration gate",
                                         ALLOCSET_DEFAULT_SIZES);
        });
        MemoryContextSwitchTo(context_);
    }
    ~ScratchMemory() {
        MemoryContextSwitchTo(caller_);
        MemoryContextDelete(context_);
    }
    ScratchMemory(const ScratchMemory &) = delete;
    ScratchMemory &operator=(const ScratchMemory &) = delete;

  private:
    MemoryContext caller_, context_;
};

// Analyses and plans one statement generically as `role`, in a subtransaction that is rolled
// back (the locks it took are released, nothing stays).  *utility: it is no query (not costed).
// Errors are the statement's result, except those that end the whole call (pg::ends_the_call:
// cancel, shutdown, resources, limits): those end the migration.
PlanGate::Entry::Side cost_statement(const std::string &text, Oid role, bool *utility) {
    PlanGate::Entry::Side side;
    *utility = false;
    ScratchMemory memory;
    try {
        pg::SubTransaction scope;
        List *queries = advisor::analyse_statement(text, role);
        if (queries == NIL) {
            *utility = true;
        } else {
            advisor::PlanCost cost = advisor::plan_with(queries, {}, role, true, &side.shape);
            side.planned = true;
            side.cost = cost.cost;
        }
        scope.rollback();
    } catch (const pg::PgError &e) {
        if (pg::ends_the_call(e.sqlstate())) throw;
        side.error = fmt::format("{}: {}", unpack_sql_state(e.sqlstate()), e.what());
    } catch (const pg::UserError &e) {
        side.error = fmt::format("{}: {}", unpack_sql_state(e.sqlstate()), e.what());
    }
    return side;
}

Json side_cost(const PlanGate::Entry::Side &side) {
    return side.planned ? Json(side.cost) : Json(nullptr);
}
Json side_text(const std::string &text) {
    return text.empty() ? Json(nullptr) : Json(text);
}

}  // namespace

LintOutcome lint_migration_gate(const std::string &sql, LintMode mode, bool transactional,
                                int lock_timeout_ms) {
    LintOutcome out;
    if (mode == LintMode::Off) return out;
    lint::Options options;
    options.transactional = transactional;
    options.lock_timeout_set = true;  // the executor runs every statement with one
    std::vector<lint::Finding> findings;
    {
        pg::GucScope settings;  // the linter reads live facts: no unbounded lock wait
        settings.set("lock_timeout", std::to_string(lock_timeout_ms) + "ms");
        findings = lint::lint_sql(sql.c_str(), false, options);
    }
    out.findings_json = lint::findings_json(findings, false);
    if (mode != LintMode::Error || lint::worst(findings) != lint::Severity::Error) return out;

    std::string detail;
    size_t errors = 0;
    for (const lint::Finding &f : findings) {
        if (f.severity != lint::Severity::Error) continue;
        if (++errors > kDetailItems) continue;
        detail += fmt::format("{}statement {}, {}: {}{}", detail.empty() ? "" : "\n",
                              f.statement_no, f.rule, f.message,
                              f.safe_alternative.empty() ? "" : " Safer: " + f.safe_alternative);
    }
    if (errors > kDetailItems)
        detail += fmt::format("\n... and {} more error findings", errors - kDetailItems);
    Failure refusal;
    refusal.sqlstate = kSqlstateLintRefused;
    refusal.message = fmt::format(
        "migration refused by the linter: {} error finding{} (options.lint is \"error\")", errors,
        errors == 1 ? "" : "s");
    refusal.detail = detail;
    refusal.hint =
        "Nothing was run. Rewrite the statements as the findings suggest (all findings are in "
        "the lint column of the FAILED row in virtuoso.migration_log), or pass "
        "{\"lint\": \"warn\"} to run the migration anyway.";
    out.refusal = refusal;
    return out;
}

PlanGate::PlanGate(double max_factor, int lock_timeout_ms)
    : factor_(max_factor), lock_timeout_ms_(lock_timeout_ms) {}

void PlanGate::cost_before() {
    advisor::WorkloadQuery query;
    query.order_by_total_time = true;
    query.weight_by_total_time = true;
    std::vector<advisor::WorkloadStatement> workload =
        advisor::read_workload(query, &skipped_roles_);
    const size_t limit = static_cast<size_t>(std::max(gucs::plan_regression_statements, 0));
    pg::GucScope settings;  // a table locked by someone else is reported, not waited for
    settings.set("lock_timeout", std::to_string(lock_timeout_ms_) + "ms");
    for (const advisor::WorkloadStatement &st : workload) {
        if (entries_.size() >= limit) break;
        bool utility = false;
        Entry::Side side = cost_statement(st.text, st.role, &utility);
        if (utility) continue;
        Entry e;
        e.query = st.text;
        e.role = st.role;
        e.role_name = pg::pg_call([&st] {
            const char *name = GetUserNameFromId(st.role, true);
            return std::string(name ? name : "");
        });
        e.calls = st.calls;
        e.total_ms = st.total_ms;
        e.before = std::move(side);
        entries_.push_back(std::move(e));
        pg::pg_call([] { CHECK_FOR_INTERRUPTS(); });
    }
}

std::optional<Failure> PlanGate::check_after() {
    std::vector<const Entry *> regressed;
    {
        pg::GucScope settings;
        settings.set("lock_timeout", std::to_string(lock_timeout_ms_) + "ms");
        for (Entry &e : entries_) {
            bool utility = false;
            e.after = cost_statement(e.query, e.role, &utility);
            e.compared = e.before.planned && e.after.planned;
            e.regressed = e.compared && e.before.cost > 0 && e.after.cost > e.before.cost * factor_;
            if (e.regressed) regressed.push_back(&e);
            pg::pg_call([] { CHECK_FOR_INTERRUPTS(); });
        }
    }
    if (regressed.empty()) return std::nullopt;
    std::string detail;
    for (size_t i = 0; i < regressed.size() && i < kDetailItems; ++i) {
        const Entry &e = *regressed[i];
        detail += fmt::format(
            "{}estimated cost {:.2f} -> {:.2f} ({:.1f}x) of {} (run {} times by {})\n"
            "  plan before: {}\n  plan after:  {}",
            detail.empty() ? "" : "\n", e.before.cost, e.after.cost, e.after.cost / e.before.cost,
            one_line(e.query, 200), e.calls, e.role_name.empty() ? "?" : e.role_name,
            one_line(e.before.shape, 300), one_line(e.after.shape, 300));
    }
    if (regressed.size() > kDetailItems)
        detail += fmt::format("\n... and {} more statements", regressed.size() - kDetailItems);
    Failure f;
    f.sqlstate = kSqlstatePlanRegression;
    f.message = fmt::format(
        "migration would make {} of the top {} statements of pg_stat_statements more than "
        "{:g} times as expensive",
        regressed.size(), entries_.size(), factor_);
    f.detail = detail;
    f.hint =
        "Nothing was applied. Keep what these statements need (an index, a constraint, "
        "statistics), or raise options.max_plan_regression; the plan_changes column of the "
        "FAILED row in virtuoso.migration_log lists every statement compared.";
    return f;
}

std::string PlanGate::json() const {
    Json statements = Json::array();
    size_t compared = 0, regressed = 0, not_planned = 0;
    for (const Entry &e : entries_) {
        compared += e.compared;
        regressed += e.regressed;
        not_planned += !e.before.error.empty() || !e.after.error.empty();
        Json s;
        s["query"] = e.query;
        s["role"] = side_text(e.role_name);
        s["calls"] = e.calls;
        s["total_exec_time_ms"] = e.total_ms;
        s["cost_before"] = side_cost(e.before);
        s["cost_after"] = side_cost(e.after);
        s["cost_ratio"] =
            e.compared && e.before.cost > 0 ? Json(e.after.cost / e.before.cost) : Json(nullptr);
        s["plan_before"] = side_text(e.before.shape);
        s["plan_after"] = side_text(e.after.shape);
        s["error_before"] = side_text(e.before.error);
        s["error_after"] = side_text(e.after.error);
        s["regressed"] = e.regressed;
        statements.push_back(std::move(s));
    }
    Json out;
    out["max_plan_regression"] = factor_;
    out["statements_compared"] = compared;
    out["regressed"] = regressed;
    out["not_planned"] = not_planned;
    out["skipped_other_roles"] = skipped_roles_;
    out["statements"] = std::move(statements);
    // invalid UTF-8 in a query text (another server encoding) is replaced, not fatal
    return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace virtuoso::migrate
