// virtuoso.execute_database_implementation(plan) and CALL virtuoso.run_implementation(plan):
// an implementation plan run step by step on the machinery that exists.  Each step is a
// migration "<plan>/<step>" of the migration executor (lock-safe, recorded, idempotent by
// name), checked first by the linter; a failing step stops the plan and the steps done are
// rolled back with their migrations' rollback SQL in reverse order.  The function form runs
// in the caller's transaction; the procedure form commits after every step and alone can run
// concurrent index builds and batched data migrations (they must not wait for the caller's
// snapshot).
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

#include <nlohmann/json.hpp>

#include "db_virtuoso/lint/pg_lint.hpp"
#include "db_virtuoso/migrate/executor.hpp"
#include "db_virtuoso/migrate/log.hpp"
#include "db_virtuoso/migrate/run.hpp"
#include "db_virtuoso/pg/procedure.hpp"
#include "db_virtuoso/pg/result.hpp"
#include "db_virtuoso/pg/runner.hpp"
#include "db_virtuoso/plan/plan.hpp"

extern "C" {
#include "utils/acl.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
}

namespace virtuoso::plan {
namespace {

using json = nlohmann::json;
using pg::UserError;

constexpr const char *kProcedure = "virtuoso.run_implementation";

std::string jsonb_arg(FunctionCallInfo fcinfo, int argno) {
    if (PG_ARGISNULL(argno))
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "plan must not be NULL");
    return pg::pg_call([&] {
        Jsonb *jb = PG_GETARG_JSONB_P(argno);
        return std::string(JsonbToCString(nullptr, &jb->root, VARSIZE(jb)));
    });
}

std::string interval_text(TimestampTz from, TimestampTz to) {
    return std::to_string(to - from) + " microseconds";
}

json text_or_null(const pg::Value &v) {
    return v ? json(*v) : json(nullptr);
}
json json_or_null(const pg::Value &v) {
    if (!v) return nullptr;
    json j = json::parse(*v, nullptr, false);
    return j.is_discarded() ? json(*v) : j;
}

json error_json(const pg::PgError &e) {
    ErrorData *d = e.data();
    json out = json::object();
    if (!d) return out;
    out["sqlstate"] = unpack_sql_state(d->sqlerrcode);
    out["message"] = d->message ? d->message : "";
    if (d->detail) out["detail"] = d->detail;
    if (d->hint) out["hint"] = d->hint;
    return out;
}
json error_json(const UserError &e) {
    json out = {{"sqlstate", unpack_sql_state(e.sqlstate())}, {"message", e.what()}};
    if (!e.detail().empty()) out["detail"] = e.detail();
    if (!e.hint().empty()) out["hint"] = e.hint();
    return out;
}

struct ReportRow {
    std::string phase;  // check, step, undo, validation, plan
    std::string step_name, status;
    std::optional<std::string> duration;
    json details;
    pg::Value migration_id;
};

// The applied state of a step's migration: the latest run of its name.
struct Applied {
    pg::Value id, status, checksum;
    bool other_role = false;  // recorded by a role whose privileges the caller does not have
    pg::Value recorded_by;
};
Applied latest_migration(const std::string &name) {
    const Oid caller = GetUserId();
    pg::SpiResult r;
    {
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        r = spi.execute(
            "SELECT id::text, status, checksum, executed_by_role::text, executed_by::text FROM "
            "virtuoso.migration_log WHERE name = $1 AND status <> 'DRY_RUN' ORDER BY started_at "
            "DESC LIMIT 1",
            {name});
    }
    if (r.empty()) return {};
    Applied a{r.rows[0][0], r.rows[0][1], r.rows[0][2], false, r.rows[0][4]};
    if (const pg::Value &role = r.rows[0][3]) {
        const Oid roleid = static_cast<Oid>(std::stoul(*role));
        a.other_role =
            pg::pg_call([&] { return !superuser() && !has_privs_of_role(caller, roleid); });
    }
    return a;
}

class Orchestrator {
  public:
    Orchestrator(const ParseResult &parsed, const std::string &plan_text, FunctionCallInfo fcinfo,
                 bool procedure)
        : plan_(parsed.plan),
          parse_problems_(parsed.problems),
          plan_text_(plan_text),
          fcinfo_(fcinfo),
          procedure_(procedure) {}

    // Everything that can be known before anything runs; throws 22023 listing every problem.
    void validate();
    void run();

    const std::vector<ReportRow> &rows() const { return rows_; }
    const std::string &run_id() const { return run_id_; }
    const std::string &final_status() const { return final_status_; }

  private:
    void add(ReportRow row);
    void commit_if_procedure() {
        if (procedure_) pg::commit_caller(fcinfo_, kProcedure);
    }
    bool prechecks();
    void settle_interrupted_runs();
    std::string migration_options(const Step &step) const;
    bool run_step(Step &step);
    void scaffold(Step &step);
    void drop_failed_builds(const std::string &migration, json &details);
    bool undo(size_t failed_index, std::string *state);
    bool post_validate();
    void finish(const std::string &status, const std::string &state, json extra = json::object());
    // A cancel, a shutdown or a resource limit met during `during` (pg::ends_the_call): the run
    // ends there (nothing more runs, nothing is undone) and the error reaches the caller.
    [[noreturn]] void stop(const pg::PgError &e, const std::string &during);

    Plan plan_;
    std::vector<std::string> parse_problems_;
    std::string plan_text_;
    FunctionCallInfo fcinfo_;
    bool procedure_;
    std::vector<ReportRow> rows_;
    std::vector<std::vector<migrate::Statement>> statements_;  // per step (empty: scaffold)
    std::vector<Applied> applied_;
    std::string run_id_, final_status_;
    TimestampTz started_ = 0;
    int ordinal_ = 0;
};

void Orchestrator::validate() {
    std::vector<std::string> problems = parse_problems_;
    statements_.resize(plan_.steps.size());
    applied_.resize(plan_.steps.size());
    lint::Options lint_options;
    for (size_t i = 0; i < plan_.steps.size(); ++i) {
        Step &step = plan_.steps[i];
        const std::string where = fmt::format("step {} (\"{}\"): ", step.number, step.name);
        if (!step.name.empty() && !plan_.name.empty())
            applied_[i] = latest_migration(migration_name(plan_, step));
        const std::string prefix = fmt::format("step {} ", step.number);
        const bool has_problem =
            std::any_of(problems.begin(), problems.end(),
                        [&](const std::string &p) { return p.rfind(prefix, 0) == 0; });
        if (applied_[i].other_role) {
            // Only the recording role's members may replace or roll back its runs; say so
            // now rather than skip its steps or fail half way.
            problems.push_back(where + fmt::format("migration \"{}\" was recorded by role {}; "
                                                   "give the plan another name",
                                                   migration_name(plan_, step),
                                                   applied_[i].recorded_by.value_or("(dropped)")));
            continue;
        }
        if (step.type == StepType::Scaffold || step.sql.empty() || has_problem) continue;
        auto check = [&](const std::string &sql, const char *what,
                         std::vector<migrate::Statement> *out) {
            try {
                pg::SubTransaction scope;
                auto statements = migrate::split_statements(sql);
                scope.commit();
                if (statements.empty()) problems.push_back(where + what + " contains no statement");
                for (const auto &s : statements) {
                    if (s.transaction_control)
                        problems.push_back(where + fmt::format("{} must not control transactions "
                                                               "({} at statement {})",
                                                               what, s.tag, s.number));
                    else if (s.top_level_only && step.transactional)
                        problems.push_back(where +
                                           fmt::format("{} statement {} ({}) cannot run inside a "
                                                       "transaction; use a create_index step for "
                                                       "concurrent index builds",
                                                       what, s.number, s.tag));
                }
                if (out) *out = std::move(statements);
            } catch (const pg::PgError &e) {
                if (pg::ends_the_call(e.sqlstate())) throw;
                problems.push_back(where + fmt::format("{}: {}", what, e.what()));
            }
        };
        check(step.sql, "definition", &statements_[i]);
        if (step.rollback) check(*step.rollback, "rollback", nullptr);
        if (applied_[i].status == std::string("SUCCESS") && step.type != StepType::Validate &&
            applied_[i].checksum != migrate::sha256_hex(step.sql))
            problems.push_back(where + fmt::format("migration \"{}\" was applied with different "
                                                   "SQL; give the step a new name",
                                                   migration_name(plan_, step)));
        if (plan_.options.lint == "off" || step.type == StepType::Validate) continue;
        try {
            pg::SubTransaction scope;
            lint_options.transactional = step.transactional;
            auto findings = lint::lint_sql(step.sql.c_str(), false, lint_options);
            scope.commit();
            for (const auto &f : findings)
                if (f.severity == lint::Severity::Error && plan_.options.lint == "error")
                    problems.push_back(where + fmt::format("lint error {} at statement {}: {}{}",
                                                           f.rule, f.statement_no, f.message,
                                                           f.safe_alternative.empty()
                                                               ? ""
                                                               : " (" + f.safe_alternative + ")"));
        } catch (const pg::PgError &e) {
            if (pg::ends_the_call(e.sqlstate())) throw;
            // a syntax error was already listed by the statement check
        }
    }
    if (!problems.empty()) {
        // in plan order: the plan's own problems, then each step's
        auto step_of = [](const std::string &p) {
            return p.rfind("step ", 0) == 0 ? std::atoi(p.c_str() + 5) : 0;
        };
        std::stable_sort(
            problems.begin(), problems.end(),
            [&](const std::string &a, const std::string &b) { return step_of(a) < step_of(b); });
        std::string detail;
        for (const auto &p : problems) detail += (detail.empty() ? "" : "\n") + ("- " + p);
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        fmt::format("plan{} refused with {} problem{}; nothing was run",
                                    plan_.name.empty() ? "" : " \"" + plan_.name + "\"",
                                    problems.size(), problems.size() == 1 ? "" : "s"),
                        detail,
                        "Fix every problem listed (lint errors can be accepted with options "
                        "{\"lint\": \"warn\"}).");
    }
    if (plan_.needs_procedure() && !procedure_) {
        std::string steps;
        for (const auto &s : plan_.steps)
            if (!s.transactional) steps += (steps.empty() ? "" : ", ") + s.name;
        throw UserError(
            ERRCODE_ACTIVE_SQL_TRANSACTION,
            fmt::format("plan \"{}\" has steps that cannot run inside a function: {}", plan_.name,
                        steps),
            "Concurrent index builds and batched data migrations must not wait for the calling "
            "statement's snapshot, which a function keeps until it returns.",
            fmt::format("Run the plan with CALL {}('<plan>'), outside a transaction block; it "
                        "commits after every step.",
                        kProcedure));
    }
    for (const auto &s : plan_.steps)
        if (s.type == StepType::MigrateData && s.generated) {
            auto found = pg::InternalSql().scalar(
                "SELECT pg_catalog.to_regprocedure('virtuoso.migrate_data_batched(text, text, "
                "integer, integer, text, text)') IS NOT NULL");
            if (found != std::string("t"))
                throw UserError(ERRCODE_FEATURE_NOT_SUPPORTED,
                                fmt::format("step \"{}\" needs virtuoso.migrate_data_batched, "
                                            "which this installation does not have",
                                            s.name),
                                "",
                                "Update the extension, or write the step's definition as SQL "
                                "text (one transactional INSERT ... SELECT) with a rollback.");
        }
    migrate::require_read_committed();
}

void Orchestrator::add(ReportRow row) {
    if (!run_id_.empty()) {
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        spi.execute(
            "INSERT INTO virtuoso.implementation_step (run_id, ordinal, phase, step_name, status, "
            "duration, details, migration_id) VALUES ($1::uuid, $2::int, $3, $4, $5, "
            "$6::interval, $7::jsonb, $8::uuid)",
            {run_id_, std::to_string(++ordinal_), row.phase, row.step_name, row.status,
             row.duration, row.details.dump(), row.migration_id});
    }
    rows_.push_back(std::move(row));
}

// One run of a plan at a time: a second session gets 55P03 instead of racing the first
// through the same steps (and undoing what it did).  The check and the RUNNING row are made
// under a transaction-scoped advisory lock, taken without waiting.
void Orchestrator::settle_interrupted_runs() {
    pg::Value holder;
    {
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        // A 64-bit key: under hashtext's 32 bits, plans with colliding names (such as
        // 'p144044' and 'p5050') refused each other.
        if (spi.scalar("SELECT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtextextended("
                       "'virtuoso.implementation:' OPERATOR(pg_catalog.||) $1, 0))",
                       {plan_.name}) != std::string("t"))
            holder = std::string("another session");
        // RUNNING rows of sessions that are gone, or of this one (which runs none now).
        spi.execute(
            "UPDATE virtuoso.implementation_run r SET status = 'FAILED', completed_at = "
            "clock_timestamp(), state = 'interrupted: the session running it (PID ' || "
            "r.backend_pid || ') stopped before it finished; run the plan again to resume' "
            "WHERE r.status = 'RUNNING' AND r.plan_name = $1 AND (r.backend_pid = "
            "pg_backend_pid() OR NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a WHERE "
            "a.pid = r.backend_pid AND a.backend_start = r.backend_start))",
            {plan_.name});
        if (!holder) {
            auto running = spi.scalar(
                "SELECT 'PID ' || backend_pid FROM virtuoso.implementation_run WHERE status = "
                "'RUNNING' AND plan_name = $1 LIMIT 1",
                {plan_.name});
            if (running) holder = running;
        }
    }
    if (holder)
        throw UserError(ERRCODE_LOCK_NOT_AVAILABLE,
                        fmt::format("plan \"{}\" is being run by {}", plan_.name, *holder), "",
                        "Wait until that run ends (see virtuoso.implementation_log), then run "
                        "the plan again: it resumes where that run stopped.");
}

// Rows for the checks that decide whether the plan may start; false when a hard one fails.
bool Orchestrator::prechecks() {
    bool ok = true;
    auto check = [&](const std::string &name, auto &&body) {
        const TimestampTz t0 = GetCurrentTimestamp();
        ReportRow row{"check", "pre-check: " + name, "PASS", {}, json::object(), {}};
        try {
            pg::SubTransaction scope;
            body(row);
            scope.commit();
        } catch (const pg::PgError &e) {
            if (pg::ends_the_call(e.sqlstate())) stop(e, "pre-check: " + name);
            row.status = "WARN";
            row.details = {{"error", error_json(e)}, {"message", "the check could not run"}};
        }
        row.duration = interval_text(t0, GetCurrentTimestamp());
        if (row.status == "FAIL") ok = false;
        add(std::move(row));
    };
    check("connections", [&](ReportRow &row) {
        pg::InternalSql spi(false);
        auto r = spi.execute(
            "SELECT (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = "
            "'client backend')::int, pg_catalog.current_setting('max_connections')::int - "
            "pg_catalog.current_setting('superuser_reserved_connections')::int");
        const double used = std::stod(*r.rows[0][0]), max = std::stod(*r.rows[0][1]);
        row.details = {
            {"in_use", used}, {"max", max}, {"max_ratio", plan_.options.max_connection_ratio}};
        if (max > 0 && used / max > plan_.options.max_connection_ratio) {
            row.status = "FAIL";
            row.details["message"] = "too few connections left for the plan and its workers";
        }
    });
    check("blocking sessions", [&](ReportRow &row) {
        pg::InternalSql spi(false);
        auto r = spi.execute(
            "SELECT pg_catalog.json_agg(json_build_object('pid', pid, 'state', state, "
            "'xact_age', (now() - xact_start)::text))::text, count(*) FROM "
            "pg_catalog.pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database() AND xact_start IS NOT "
            "NULL AND ((state = 'idle in transaction' AND now() - state_change > interval '1 min') "
            "OR now() - xact_start > interval '5 min')");
        row.details = {{"sessions", json_or_null(r.rows[0][0])}};
        if (r.rows[0][1] != std::string("0")) {
            row.status = "WARN";
            row.details["message"] =
                "long or idle-in-transaction sessions can hold locks the DDL waits for; each "
                "step waits at most lock_timeout and retries with backoff";
        }
    });
    check("replication lag", [&](ReportRow &row) {
        pg::InternalSql spi(false);
        auto r = spi.execute(
            "SELECT count(*), max(extract(epoch FROM replay_lag))::text FROM "
            "pg_catalog.pg_stat_replication");
        row.details = {{"standbys", std::stol(*r.rows[0][0])},
                       {"max_replay_lag_seconds", text_or_null(r.rows[0][1])},
                       {"limit_seconds", plan_.options.max_replication_lag_seconds}};
        if (r.rows[0][1] && std::stod(*r.rows[0][1]) > plan_.options.max_replication_lag_seconds)
            row.status = "FAIL";
    });
    check("disk headroom", [&](ReportRow &row) {
        std::vector<Oid> relations;
        for (const auto &statements : statements_)
            for (const auto &s : statements)
                relations.insert(relations.end(), s.relations.begin(), s.relations.end());
        pg::InternalSql spi(false);
        auto r = spi.execute(
            "SELECT c.oid::regclass::text, pg_catalog.pg_total_relation_size(c.oid) FROM "
            "pg_catalog.pg_class c WHERE c.oid = ANY ($1::oid[]) ORDER BY 2 DESC LIMIT 1",
            {pg::oid_array(relations)});
        struct statvfs fs {};
        const bool measured = statvfs(DataDir, &fs) == 0;
        const double free_bytes = measured ? double(fs.f_bavail) * double(fs.f_frsize) : -1;
        const double largest = r.empty() ? 0 : std::stod(*r.rows[0][1]);
        row.details = {{"free_bytes", free_bytes},
                       {"largest_relation", r.empty() ? json(nullptr) : json(*r.rows[0][0])},
                       {"largest_relation_bytes", largest},
                       {"message",
                        "a rewrite or index build of the largest relation the plan "
                        "names needs up to its size again"}};
        if (!measured)
            row.status = "WARN";
        else if (free_bytes < largest)
            row.status = "FAIL";
        else if (free_bytes < 2 * largest)
            row.status = "WARN";
    });
    check("database health", [&](ReportRow &row) {
        pg::InternalSql spi(false);
        auto r = spi.execute(
            "SELECT severity, count(*)::int, pg_catalog.json_agg(json_build_object('check', "
            "check_name, 'object', object, 'message', message))::text FROM "
            "virtuoso.check_database_health() GROUP BY severity");
        json summary = json::object();
        for (const auto &x : r.rows) {
            summary[*x[0]] = std::stoi(*x[1]);
            if (*x[0] == "CRITICAL") {
                row.status = "WARN";
                row.details["critical"] = json_or_null(x[2]);
            }
        }
        row.details["summary"] = summary;
    });
    commit_if_procedure();
    return ok;
}

std::string Orchestrator::migration_options(const Step &step) const {
    json o = json::object();
    const auto &opt = plan_.options;
    if (opt.lock_timeout) o["lock_timeout"] = *opt.lock_timeout;
    if (opt.statement_timeout) o["statement_timeout"] = *opt.statement_timeout;
    if (opt.max_retries) o["max_retries"] = *opt.max_retries;
    if (!step.transactional) o["transactional"] = false;
    // A validation is never "applied": it checks again whenever the plan runs.
    if (step.type == StepType::Validate) o["force"] = true;
    if (step.validation_rules) o["validation_rules"] = json::parse(*step.validation_rules);
    return o.dump();
}

// The scaffold's SQL, from the table as it is now.
void Orchestrator::scaffold(Step &step) {
    const std::string table_sql = step.scaffold_table->sql();
    // The caller's search_path resolves an unqualified name, as in the create_table step.
    auto oid = pg::Spi().scalar(
        "SELECT pg_catalog.to_regclass($1)::pg_catalog.oid::pg_catalog.text", {table_sql});
    if (!oid)
        throw UserError(ERRCODE_UNDEFINED_TABLE,
                        fmt::format("scaffold: table {} does not exist", table_sql));
    pg::InternalSql spi(false);
    TableShape shape;
    auto names = spi.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE c.oid = $1::oid",
        {oid});
    shape.table = {names.rows[0][0], *names.rows[0][1]};
    auto cols = spi.execute(
        "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.atthasdef OR "
        "a.attidentity <> '', a.attgenerated <> '' FROM pg_attribute a WHERE a.attrelid = "
        "$1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        {oid});
    for (const auto &c : cols.rows)
        shape.columns.push_back({*c[0], *c[1], c[2] == std::string("t"), c[3] == std::string("t")});
    auto key = spi.execute(
        "SELECT a.attname, pg_catalog.format('OPERATOR(%I.%s)', n.nspname, o.oprname) "
        "FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, "
        "ord) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "JOIN pg_opclass oc ON oc.oid = i.indclass[k.ord - 1] "
        "JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amoplefttype = oc.opcintype "
        " AND ao.amoprighttype = oc.opcintype AND ao.amopstrategy = 3 "
        " AND ao.amopmethod = (SELECT oid FROM pg_am WHERE amname = 'btree') "
        "JOIN pg_operator o ON o.oid = ao.amopopr JOIN pg_namespace n ON n.oid = o.oprnamespace "
        "WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.ord",
        {oid});
    for (const auto &k : key.rows) {
        shape.key.push_back(*k[0]);
        shape.key_equality.push_back(*k[1]);
    }
    const bool schema_exists = spi.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                                          {step.scaffold_schema}) != std::string("0");
    std::string error;
    auto generated = scaffold_sql(shape, step.scaffold_schema, !schema_exists, &error);
    if (!generated) throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "scaffold: " + error);
    step.sql = generated->sql;
    step.rollback = generated->rollback;
    step.rollback_derived = true;
}

// A failed concurrent build can leave an invalid index: the executor lists it in the failed
// run's affected objects; drop it so that nothing invalid stays behind.
void Orchestrator::drop_failed_builds(const std::string &migration, json &details) {
    pg::Value affected;
    {
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        affected = spi.scalar(
            "SELECT affected_objects::text FROM virtuoso.migration_log WHERE name = $1 ORDER BY "
            "started_at DESC LIMIT 1",
            {migration});
    }
    json objects = json_or_null(affected);
    if (!objects.is_array()) return;
    for (const auto &o : objects) {
        if (!o.is_object() || o.value("command", "") != "FAILED BUILD") continue;
        const std::string index = o.value("identity", "");
        pg::RunRequest request;
        request.sql = "DROP INDEX CONCURRENTLY IF EXISTS " + index;
        pg::RunOutcome outcome = pg::run_in_worker(request);
        details["invalid_index_dropped"].push_back({{"index", index}, {"dropped", outcome.ok}});
    }
}

bool Orchestrator::run_step(Step &step) {
    const std::string name = migration_name(plan_, step);
    const TimestampTz t0 = GetCurrentTimestamp();
    ReportRow row{"step", step.name, "SUCCESS", {}, json::object(), {}};
    row.details["type"] = step.type_name;
    row.details["migration"] = name;
    bool ok = true;
    std::optional<pg::PgError> ending;
    pg::Row recorded;
    // Only the step itself is caught, in its subtransaction (rolled back on an error, so that
    // SQL may run after it); reading what it recorded is not the step's failure.
    try {
        pg::SubTransaction scope;
        if (step.type == StepType::Scaffold) scaffold(step);
        migrate::MigrationCall call;
        call.name = name;
        call.sql = step.sql;
        call.rollback_sql = step.rollback;
        call.options_text = migration_options(step);
        recorded = migrate::run_migration(call);
        scope.commit();
    } catch (const pg::PgError &e) {
        ok = false;
        row.status = "FAILED";
        row.details["error"] = error_json(e);
        if (pg::ends_the_call(e.sqlstate())) ending = e;
    } catch (const UserError &e) {
        ok = false;
        row.status = "FAILED";
        row.details["error"] = error_json(e);
    }
    if (ok) {
        auto col = [&](const char *c) { return recorded[migrate::log_column(c)]; };
        row.migration_id = col("id");
        row.details["sql"] = step.sql;
        if (step.generated || step.type == StepType::Scaffold) row.details["sql_generated"] = true;
        row.details["rollback"] = text_or_null(step.rollback);
        row.details["rollback_derived"] = step.rollback_derived;
        row.details["attempts"] = std::stoi(col("attempts").value_or("0"));
        row.details["lock_waits"] = json_or_null(col("lock_waits"));
        row.details["affected_objects"] = json_or_null(col("affected_objects"));
        if (step.type == StepType::MigrateData && step.generated) {
            // The batched copy's job is named after the step's migration: its rows moved.
            pg::Value moved;
            {
                migrate::AsExtensionOwner owner;
                pg::InternalSql spi;
                // Not read-only: a fresh snapshot sees the batches the copy committed.
                moved = spi.scalar(
                    "SELECT rows_done::text FROM virtuoso.batch_jobs WHERE job_name = $1", {name});
            }
            if (moved) row.details["rows_moved"] = std::stoll(*moved);
        }
        if (step.type == StepType::Scaffold) {
            json fns = json::array();
            for (const auto &line : {step.sql})
                for (size_t p = line.find("COMMENT ON FUNCTION "); p != std::string::npos;
                     p = line.find("COMMENT ON FUNCTION ", p + 1)) {
                    size_t start = p + 20, end = line.find(" IS ", start);
                    fns.push_back(line.substr(start, end - start));
                }
            row.details["generated_functions"] = fns;
        }
    }
    if (!ok) {
        row.details["sql"] = step.sql;
        if (step.type == StepType::CreateIndex) drop_failed_builds(name, row.details);
        applied_[step.number - 1] = latest_migration(name);
        row.migration_id = applied_[step.number - 1].id;
    } else {
        applied_[step.number - 1] = {row.migration_id, std::string("SUCCESS"), std::nullopt};
    }
    row.duration = interval_text(t0, GetCurrentTimestamp());
    add(std::move(row));
    if (ending) stop(*ending, fmt::format("step \"{}\"", step.name));
    commit_if_procedure();
    return ok;
}

// Rolls back the applied steps before `failed_index`, last first.  False when one could not be
// rolled back (the rest then stay applied); *state says what the database holds.
bool Orchestrator::undo(size_t failed_index, std::string *state) {
    std::vector<std::string> undone, remaining;
    for (size_t k = failed_index; k-- > 0;) {
        Step &step = plan_.steps[k];
        if (applied_[k].status != std::string("SUCCESS")) continue;
        const std::string name = migration_name(plan_, step);
        const TimestampTz t0 = GetCurrentTimestamp();
        ReportRow row{"undo", "undo: " + step.name, "ROLLED_BACK",
                      {},     json::object(),       applied_[k].id};
        row.details["migration"] = name;
        if (step.type == StepType::Validate) {
            row.status = "SKIPPED";
            row.details["message"] = "a validation changes nothing";
            row.duration = interval_text(t0, GetCurrentTimestamp());
            add(std::move(row));
            continue;
        }
        if (!remaining.empty()) {
            remaining.push_back(step.name);
            continue;
        }
        try {
            pg::SubTransaction scope;
            const bool preserve = plan_.options.preserve_data_on_undo &&
                                  step.type != StepType::CreateIndex &&
                                  step.type != StepType::Scaffold;
            pg::Row recorded = migrate::rollback_migration(
                name, preserve, fmt::format("plan \"{}\" undone after a failure", plan_.name));
            scope.commit();
            const pg::Value backups = recorded[migrate::log_column("backup_tables")];
            row.details["rollback_sql"] =
                text_or_null(recorded[migrate::log_column("rollback_sql")]);
            if (backups) row.details["backup_tables"] = *backups;
            applied_[k].status = "ROLLED_BACK";
            undone.push_back(step.name);
        } catch (const pg::PgError &e) {
            row.status = "FAILED";
            row.details["error"] = error_json(e);
            remaining.push_back(step.name);
            if (pg::ends_the_call(e.sqlstate())) {
                row.duration = interval_text(t0, GetCurrentTimestamp());
                add(std::move(row));
                stop(e, fmt::format("the undo of step \"{}\"", step.name));
            }
        } catch (const UserError &e) {
            row.status = "FAILED";
            row.details["error"] = error_json(e);
            remaining.push_back(step.name);
        }
        row.duration = interval_text(t0, GetCurrentTimestamp());
        add(std::move(row));
        commit_if_procedure();
    }
    auto list = [](const std::vector<std::string> &v) {
        std::string out;
        for (const auto &s : v) out += (out.empty() ? "" : ", ") + s;
        return out;
    };
    if (remaining.empty()) {
        *state = undone.empty() ? "nothing of the plan was applied: the database is as before"
                                : fmt::format(
                                      "the steps done ({}) were rolled back in reverse "
                                      "order: the database is as before the plan",
                                      list(undone));
        return true;
    }
    *state = fmt::format(
        "undo stopped: steps {} are still applied{}; fix the cause and run the "
        "plan again to resume, or roll them back with "
        "virtuoso.execute_rollback_with_backup",
        list(remaining), undone.empty() ? "" : fmt::format(" (rolled back: {})", list(undone)));
    return false;
}

bool Orchestrator::post_validate() {
    bool ok = true;
    const TimestampTz t0 = GetCurrentTimestamp();
    if (plan_.validation_rules) {
        try {
            pg::SubTransaction scope;
            pg::SpiResult r;
            {
                // The rules are the plan's SQL: the caller's search_path, as for its steps.
                pg::Spi spi;
                r = spi.execute(
                    "SELECT rule_name, status, validation_message FROM "
                    "virtuoso.validate_data_integrity($1::pg_catalog.jsonb)",
                    {*plan_.validation_rules});
            }
            scope.commit();
            for (const auto &x : r.rows) {
                ReportRow row{"validation",
                              "validation: " + x[0].value_or("?"),
                              x[1].value_or("ERROR"),
                              interval_text(t0, GetCurrentTimestamp()),
                              {{"message", text_or_null(x[2])}},
                              {}};
                if (row.status == "FAIL" || row.status == "ERROR") ok = false;
                add(std::move(row));
            }
        } catch (const pg::PgError &e) {
            if (pg::ends_the_call(e.sqlstate())) stop(e, "post-implementation validation");
            ok = false;
            add({"validation",
                 "validation: rules",
                 "ERROR",
                 interval_text(t0, GetCurrentTimestamp()),
                 {{"error", error_json(e)}},
                 {}});
        }
    }
    // Every object the steps touched: no invalid index, no NOT VALID constraint, nothing missing.
    json problems = json::array();
    int checks = 0;
    for (const auto &step : plan_.steps) {
        if (step.type == StepType::Validate) continue;
        try {
            pg::SubTransaction scope;
            pg::SpiResult r;
            {
                pg::InternalSql spi(false);
                r = spi.execute(
                    "SELECT check_name, status, object, message FROM "
                    "virtuoso.verify_migration_integrity($1)",
                    {migration_name(plan_, step)});
            }
            scope.commit();
            for (const auto &x : r.rows) {
                ++checks;
                if (x[1] == std::string("FAIL") || x[1] == std::string("ERROR"))
                    problems.push_back({{"step", step.name},
                                        {"check", text_or_null(x[0])},
                                        {"status", text_or_null(x[1])},
                                        {"object", text_or_null(x[2])},
                                        {"message", text_or_null(x[3])}});
            }
        } catch (const pg::PgError &e) {
            if (pg::ends_the_call(e.sqlstate())) stop(e, "post-implementation validation");
            problems.push_back({{"step", step.name}, {"error", error_json(e)}});
        }
    }
    if (!problems.empty()) ok = false;
    add({"validation",
         "validation: touched objects",
         problems.empty() ? "PASS" : "FAIL",
         interval_text(t0, GetCurrentTimestamp()),
         {{"checks", checks}, {"problems", problems}},
         {}});
    commit_if_procedure();
    return ok;
}

void Orchestrator::finish(const std::string &status, const std::string &state, json extra) {
    const TimestampTz now = GetCurrentTimestamp();
    final_status_ = status;
    extra["state"] = state;
    if (!run_id_.empty()) extra["run_id"] = run_id_;
    add({"plan", "plan: " + plan_.name, status, interval_text(started_, now), extra, {}});
    if (!run_id_.empty()) {
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        spi.execute(
            "UPDATE virtuoso.implementation_run SET status = $2, state = $3, completed_at = "
            "clock_timestamp(), duration = clock_timestamp() - started_at WHERE id = $1::uuid",
            {run_id_, status, state});
    }
    commit_if_procedure();
}

void Orchestrator::run() {
    started_ = GetCurrentTimestamp();
    settle_interrupted_runs();
    {
        // the caller, before acting as the owner to write the log
        const std::string caller =
            pg::pg_call([] { return std::string(GetUserNameFromId(GetUserId(), false)); });
        const std::string caller_oid = std::to_string(GetUserId());
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        run_id_ = *spi.scalar(
            "INSERT INTO virtuoso.implementation_run (plan_name, plan, status, executed_by, "
            "executed_by_role, called_as, backend_pid, backend_start) VALUES ($1, $2::jsonb, "
            "'RUNNING', $3::name, $4::oid, $5, pg_backend_pid(), (SELECT backend_start FROM "
            "pg_stat_activity WHERE pid = pg_backend_pid())) RETURNING id::text",
            {plan_.name, plan_text_, caller, caller_oid, procedure_ ? "procedure" : "function"});
    }
    commit_if_procedure();

    // A plan whose every step is applied is done: nothing runs again.
    bool all_applied = true;
    for (size_t i = 0; i < plan_.steps.size(); ++i)
        if (plan_.steps[i].type != StepType::Validate)
            all_applied = all_applied && applied_[i].status == std::string("SUCCESS");
    if (all_applied) {
        for (size_t i = 0; i < plan_.steps.size(); ++i)
            add({"step",
                 plan_.steps[i].name,
                 "SKIPPED",
                 std::string("0"),
                 {{"message", "already applied"},
                  {"migration", migration_name(plan_, plan_.steps[i])}},
                 applied_[i].id});
        finish("SKIPPED", "already implemented: every step is applied; nothing ran");
        return;
    }

    if (plan_.options.prechecks && !prechecks()) {
        finish("FAILED", "a hard pre-check failed (see the pre-check rows); nothing was changed");
        return;
    }

    size_t failed = plan_.steps.size();
    int ran = 0, skipped = 0;
    for (size_t i = 0; i < plan_.steps.size(); ++i) {
        Step &step = plan_.steps[i];
        if (applied_[i].status == std::string("SUCCESS") && step.type != StepType::Validate) {
            ++skipped;
            add({"step",
                 step.name,
                 "SKIPPED",
                 std::string("0"),
                 {{"message", "applied by an earlier run of the plan; resuming after it"},
                  {"migration", migration_name(plan_, step)}},
                 applied_[i].id});
            continue;
        }
        if (!run_step(step)) {
            failed = i;
            break;
        }
        ++ran;
    }
    std::string failure;
    if (failed < plan_.steps.size())
        failure = fmt::format("step \"{}\" failed", plan_.steps[failed].name);
    else if (!post_validate())
        failure = "post-implementation validation failed";
    if (failure.empty()) {
        finish("SUCCESS",
               fmt::format("implemented: all {} steps applied ({} now, {} by an earlier run)",
                           plan_.steps.size(), ran, skipped));
        return;
    }
    if (!plan_.options.undo_on_failure) {
        finish("FAILED", failure +
                             "; the steps before it stay applied (undo_on_failure is off): "
                             "fix the cause and run the plan again to resume from it");
        return;
    }
    std::string state;
    const bool clean = undo(failed, &state);
    finish(clean ? "ROLLED_BACK" : "FAILED", failure + "; " + state);
}

void Orchestrator::stop(const pg::PgError &e, const std::string &during) {
    // Recording the run commits a procedure's transaction, and the error's copy with it.
    ErrorData *error = pg::copy_error(e.data(), fcinfo_->flinfo->fn_mcxt);
    finish("FAILED",
           fmt::format("stopped during {} by \"{}\" ({}): nothing after it ran and nothing was "
                       "undone; run the plan again to resume from there",
                       during, error->message ? error->message : "an error",
                       unpack_sql_state(error->sqlerrcode)));
    throw pg::PgError(error);
}

ParseResult parsed_plan(const std::string &text) {
    return parse_plan(text);
}

}  // namespace
}  // namespace virtuoso::plan

using namespace virtuoso;

VIRTUOSO_FUNCTION(virtuoso_execute_database_implementation) {
    const std::string text = plan::jsonb_arg(fcinfo, 0);
    plan::Orchestrator o(plan::parsed_plan(text), text, fcinfo, false);
    o.validate();
    o.run();
    std::vector<pg::Row> rows;
    for (const auto &r : o.rows())
        rows.push_back({r.step_name, r.status, r.duration, r.details.dump()});
    return pg::return_rows(fcinfo, rows);
}

// CALL virtuoso.run_implementation(plan): commits the caller first and after every step.
VIRTUOSO_FUNCTION(virtuoso_run_implementation) {
    const std::string text = plan::jsonb_arg(fcinfo, 0);
    plan::Orchestrator o(plan::parsed_plan(text), text, fcinfo, true);
    pg::commit_caller(fcinfo, plan::kProcedure);
    pg::SnapshotFreeProcedure no_snapshot;
    o.validate();
    o.run();
    nlohmann::json report = nlohmann::json::array();
    for (const auto &r : o.rows())
        report.push_back({{"step_name", r.step_name},
                          {"status", r.status},
                          {"duration", r.duration ? nlohmann::json(*r.duration) : nlohmann::json()},
                          {"details", r.details}});
    return pg::procedure_result(fcinfo, {o.final_status(), o.run_id(), report.dump()});
}
