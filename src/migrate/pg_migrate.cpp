// virtuoso.execute_migration_with_monitoring(name, sql, rollback_sql, options)
//
// The success path stays in the caller's transaction: no background worker, no extra
// commit (the log row commits with the migration).  Only a failure, and the statement-by-
// statement mode, write the log autonomously through the statement runner.
#include <nlohmann/json.hpp>

#include "db_virtuoso/migrate/executor.hpp"
#include "db_virtuoso/migrate/gate.hpp"
#include "db_virtuoso/migrate/log.hpp"
#include "db_virtuoso/migrate/options.hpp"
#include "db_virtuoso/migrate/run.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/procedure.hpp"
#include "db_virtuoso/pg/progress.hpp"
#include "db_virtuoso/pg/runner.hpp"

extern "C" {
#include "access/xlog.h"
#include "pgstat.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
}

namespace virtuoso::migrate {
namespace {

using pg::UserError;

std::string json_array(const std::vector<std::string> &objects) {
    std::string out = "[";
    for (const auto &o : objects) out += (out.size() > 1 ? ", " : "") + o;
    return out + "]";
}

// Relations named by the statements (before) and touched by them (after).
std::vector<Oid> touched_relations(const std::vector<Statement> &statements,
                                   const std::vector<std::string> &affected) {
    std::vector<Oid> out;
    auto add = [&out](Oid relid) {
        if (std::find(out.begin(), out.end(), relid) == out.end()) out.push_back(relid);
    };
    for (const auto &s : statements)
        for (Oid r : s.relations) add(r);
    for (const auto &text : affected) {
        auto object = nlohmann::json::parse(text, nullptr, false);
        // GRANT/REVOKE and the like are captured without classid/objid (JSON null)
        if (!object.is_object()) continue;
        const auto classid = object.find("classid");
        const auto objid = object.find("objid");
        const auto command = object.find("command");
        if (classid != object.end() && classid->is_number_integer() &&
            classid->get<long>() == static_cast<long>(RelationRelationId) &&
            objid != object.end() && objid->is_number_integer() &&
            !(command != object.end() && command->is_string() && *command == "DROP"))
            add(static_cast<Oid>(objid->get<long>()));
    }
    return out;
}

// Marks RUNNING rows of sessions that are gone as FAILED (only a statement-by-statement run
// writes RUNNING rows; holding the migration lock, no live session can own one), and returns
// the latest run and the latest SUCCESS run of this name, if any.  Internal SQL as the owner.
struct NameState {
    std::optional<pg::Row> latest, applied;
};
NameState settle_and_find_applied(const std::string &name) {
    NameState state;
    // this session's start, exactly (microseconds since 2000-01-01, as TimestampTz)
    const std::string start_text = std::to_string(MyStartTimestamp);
    AsExtensionOwner owner;
    pg::pg_call([] { pgstat_clear_snapshot(); });
    pg::InternalSql spi;
    // A session is its pid and its start time (pids are reused).  This session itself runs
    // no migration while it is here: a RUNNING row of its own was interrupted.
    spi.execute(
        "WITH me AS (SELECT '2000-01-01 00:00:00+00'::timestamptz + $1::bigint"
        "   * interval '1 microsecond' AS backend_start) "
        "UPDATE virtuoso.migration_log l SET status = 'FAILED', completed_at = clock_timestamp(),"
        " duration = clock_timestamp() - started_at,"
        " error_message = CASE WHEN l.backend_pid = pg_backend_pid() AND l.backend_start = (SELECT "
        "backend_start FROM me)"
        "   THEN format('this session (PID %s) was interrupted while it ran this migration; %s of "
        "%s statements had completed', l.backend_pid, coalesce(l.statements_done, 0),"
        "   l.statements_total)"
        "   ELSE format('the session running this migration (PID %s) ended before it "
        "finished; %s of %s statements had completed', l.backend_pid,"
        "   coalesce(l.statements_done, 0), l.statements_total) END,"
        " error_hint = 'Completed statements of a non-transactional migration stay applied; "
        "check with virtuoso.verify_migration_integrity().' "
        "WHERE l.status = 'RUNNING' AND ("
        "  (l.backend_pid = pg_backend_pid() AND l.backend_start = (SELECT backend_start FROM me)) "
        "OR NOT EXISTS ("
        "   SELECT FROM pg_stat_activity a WHERE a.pid = l.backend_pid"
        "   AND (l.backend_start IS NULL OR a.backend_start = l.backend_start)))",
        {start_text});
    // The latest run and the latest SUCCESS run: a new run under the name replaces both.
    auto latest = spi.execute(
        "SELECT * FROM virtuoso.migration_log WHERE name = $1 ORDER BY started_at DESC LIMIT 1",
        {name});
    if (latest.empty()) return state;
    state.latest = latest.rows[0];
    auto result = spi.execute(
        "SELECT * FROM virtuoso.migration_log WHERE name = $1 AND status = 'SUCCESS' "
        "ORDER BY started_at DESC LIMIT 1",
        {name});
    if (!result.empty()) state.applied = result.rows[0];
    return state;
}

std::string current_user_name() {
    return pg::pg_call([] { return std::string(GetUserNameFromId(GetUserId(), false)); });
}

std::string jsonb_text(FunctionCallInfo fcinfo, int argno) {
    return pg::pg_call([&] {
        Jsonb *jb = PG_GETARG_JSONB_P(argno);
        return std::string(JsonbToCString(nullptr, &jb->root, VARSIZE(jb)));
    });
}

// Raises the failure as the error the caller sees, with where it was recorded.
[[noreturn]] void raise_failure(const Failure &f, const std::string &name, const std::string &id,
                                int attempts) {
    std::string where =
        attempts == 0
            ? fmt::format(
                  "migration \"{}\" was refused before it ran; recorded as FAILED in "
                  "virtuoso.migration_log (id {})",
                  name, id)
            : fmt::format(
                  "migration \"{}\" failed{} after {} attempt{}; recorded as FAILED in "
                  "virtuoso.migration_log (id {})",
                  name, f.statement > 0 ? fmt::format(" at statement {}", f.statement) : "",
                  attempts, attempts == 1 ? "" : "s", id);
    if (f.error != nullptr) {
        ErrorData *e = f.error;
        pg::pg_call([&] {
            e->context =
                e->context ? psprintf("%s\n%s", e->context, where.c_str()) : pstrdup(where.c_str());
        });
        throw pg::PgError(e);
    }
    std::string detail = f.detail ? *f.detail + "\n" + where : where;
    // the failure's own SQLSTATE: 23514 for validation rules, VR001/VR002 for the gate
    const std::string &code = f.sqlstate;
    int sqlstate = code.size() == 5 ? MAKE_SQLSTATE(code[0], code[1], code[2], code[3], code[4])
                                    : ERRCODE_CHECK_VIOLATION;
    throw UserError(sqlstate, f.message, detail, f.hint.value_or(""));
}

// A concurrent build that failed leaves an invalid index that no event trigger reported:
// find it on the failed statement's tables, add it to the affected objects and say so.
void report_leftover_indexes(const std::vector<Statement> &statements, RunResult &result) {
    const Failure &f = *result.failure;
    if (f.statement <= 0) return;
    pg::InternalSql spi;
    auto invalid = spi.execute(
        "SELECT json_build_object('command', 'FAILED BUILD', 'object_type', 'index', "
        "'schema', n.nspname, 'identity', i.indexrelid::regclass::text, "
        "'classid', 'pg_class'::regclass::oid::bigint, 'objid', i.indexrelid::bigint)::text, "
        "i.indexrelid::regclass::text "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE NOT i.indisvalid AND i.indrelid = ANY($1::oid[])",
        {pg::oid_array(statements[f.statement - 1].relations)});
    if (invalid.empty()) return;
    std::string names;
    for (const auto &row : invalid.rows) {
        result.affected.push_back(*row[0]);
        names += (names.empty() ? "" : ", ") + *row[1];
    }
    std::string note = fmt::format(
        "The failed concurrent build left invalid index {}; drop it "
        "with DROP INDEX CONCURRENTLY before trying again.",
        names);
    result.failure->hint = f.hint ? *f.hint + " " + note : note;
}

void fill_failure(LogRow &row, const Failure &f) {
    row.set("sqlstate", f.sqlstate)
        .set("error_message", f.message)
        .set("error_detail", f.detail)
        .set("error_hint", f.hint)
        .set("error_context", f.context);
}

// The RUNNING row of a statement-by-statement run whose caller was interrupted: FAILED,
// written autonomously so that it survives the caller's abort.  Best effort: if even this
// fails, the next migration call settles the row (see settle_and_find_applied).
void mark_interrupted(const std::string &id, TimestampTz started, const Failure &f, int done) {
    try {
        pg::SubTransaction scope;
        const TimestampTz now = GetCurrentTimestamp();
        LogRow row;
        row.set("status", "FAILED")
            .set_time("completed_at", now)
            .set("duration", std::to_string(now - started) + " microseconds", "interval")
            .set("statements_done", std::to_string(done), "integer");
        Failure recorded = f;
        recorded.hint = fmt::format(
            "The caller was interrupted while statement {} ran; completed statements of a "
            "non-transactional migration stay applied: check with "
            "virtuoso.verify_migration_integrity().",
            done + 1);
        fill_failure(row, recorded);
        row.update(id, true);
        scope.commit();
    } catch (const pg::PgError &) {
        // the SubTransaction rolled back; the original error is what the caller must see
    } catch (const pg::UserError &) {
    }
}

}  // namespace

std::string required_text(FunctionCallInfo fcinfo, int argno, const char *what) {
    auto value = pg::text_arg(fcinfo, argno);
    if (!value || value->find_first_not_of(" \t\r\n") == std::string::npos)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        fmt::format("{} must not be NULL or empty", what));
    return *value;
}

void require_read_committed() {
    if (IsolationUsesXactSnapshot())
        throw UserError(ERRCODE_ACTIVE_SQL_TRANSACTION, "migrations need READ COMMITTED isolation",
                        "In REPEATABLE READ or SERIALIZABLE this transaction could not see a "
                        "migration that another session committed while it waited.",
                        "Run it outside an explicit transaction, or in READ COMMITTED.");
}

Limits limits_from(const MigrationOptions &options) {
    Limits limits;
    limits.lock_timeout_ms = options.lock_timeout
                                 ? duration_ms(*options.lock_timeout, "lock_timeout")
                                 : gucs::lock_timeout_ms;
    limits.statement_timeout_ms = options.statement_timeout
                                      ? duration_ms(*options.statement_timeout, "statement_timeout")
                                      : 0;
    limits.max_retries = options.max_retries.value_or(gucs::max_lock_retries);
    return limits;
}

std::vector<Statement> checked_statements(const std::string &sql, bool transactional,
                                          const char *what) {
    std::vector<Statement> statements = split_statements(sql);
    if (statements.empty())
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        fmt::format("{} contains no statement", what));
    for (const auto &s : statements) {
        if (s.transaction_control)
            throw UserError(
                ERRCODE_INVALID_TRANSACTION_TERMINATION,
                fmt::format("{} must not control transactions ({} at statement {})", what, s.tag,
                            s.number),
                "",
                "The migration runs in one transaction, or with {\"transactional\": false} "
                "each statement in its own; remove BEGIN/COMMIT/ROLLBACK.");
        if (transactional && s.top_level_only)
            throw UserError(
                ERRCODE_ACTIVE_SQL_TRANSACTION,
                fmt::format("statement {} ({}) cannot run inside a transaction", s.number, s.tag),
                "",
                "Pass options {\"transactional\": false} to run the migration statement by "
                "statement.");
    }
    return statements;
}

}  // namespace virtuoso::migrate

using namespace virtuoso;
using namespace virtuoso::migrate;

namespace virtuoso::migrate {
namespace {

MigrationCall migration_call(FunctionCallInfo fcinfo) {
    // Said before anything is tried: otherwise the first write (the log row) fails with a
    // message about an UPDATE the caller never wrote.
    if (RecoveryInProgress())
        throw pg::UserError(
            ERRCODE_READ_ONLY_SQL_TRANSACTION, "migrations cannot run on a hot standby",
            "This server is in recovery: it cannot write, and a migration changes the "
            "schema and records its run.",
            "Run the migration on the primary; it reaches the standby through replication.");
    MigrationCall call;
    call.name = required_text(fcinfo, 0, "migration_name");
    call.sql = required_text(fcinfo, 1, "migration_sql");
    call.rollback_sql = pg::text_arg(fcinfo, 2);
    if (call.rollback_sql &&
        call.rollback_sql->find_first_not_of(" \t\r\n") == std::string::npos)
        call.rollback_sql.reset();
    call.options_text = PG_ARGISNULL(3) ? "{}" : jsonb_text(fcinfo, 3);
    return call;
}

}  // namespace

pg::Row run_migration(const MigrationCall &call) {
    const std::string &name = call.name;
    const std::string &sql = call.sql;
    const pg::Value &rollback_sql = call.rollback_sql;
    const std::string &options_text = call.options_text;
    OptionError option_error;
    auto options = parse_options(options_text, &option_error);
    if (!options)
        throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE, option_error.message, "",
                            option_error.hint);
    require_read_committed();
    const Limits limits = limits_from(*options);
    const std::vector<Statement> statements =
        checked_statements(sql, options->transactional, "migration_sql");
    if (rollback_sql)
        (void)checked_statements(*rollback_sql, options->transactional, "rollback_sql");
    const std::string checksum = sha256_hex(sql);

    acquire_migration_lock(limits.lock_timeout_ms);
    const NameState state = settle_and_find_applied(name);
    // As the caller (not as the owner): a new run under the name replaces both rows, and the
    // recorded row is returned below only to a role that may see it.
    if (state.latest) (void)RunAccess(*state.latest, name, "replace");
    if (state.applied) (void)RunAccess(*state.applied, name, "replace");
    if (const auto &applied = state.applied; applied && !options->force) {
        const std::string &recorded = *(*applied)[log_column("checksum")];
        if (recorded == checksum) {
            pg::report(NOTICE, fmt::format("migration \"{}\" is already applied with this SQL; "
                                           "nothing was run",
                                           name));
            return *applied;
        }
        throw UserError(
            ERRCODE_DUPLICATE_OBJECT,
            fmt::format("migration \"{}\" was already applied with different SQL", name),
            fmt::format("Recorded checksum {}, this SQL has {}.", recorded, checksum),
            "Give the change a new migration name, or pass {\"force\": true} to run "
            "it again under this name.");
    }

    const TimestampTz started = GetCurrentTimestamp();
    const Stats initial_stats = collect_stats(touched_relations(statements, {}));

    LogRow row;
    row.set("name", name)
        .set("checksum", checksum)
        .set_time("started_at", started)
        .set("initial_stats", initial_stats.json, "jsonb")
        .set_detail("initial", initial_stats.detail)
        .set("migration_sql", sql)
        .set("rollback_sql", rollback_sql)
        .set("executed_by", current_user_name(), "name")
        .set("executed_by_role", std::to_string(GetUserId()), "oid")
        .set("options", options_text, "jsonb")
        .set("transactional", options->transactional ? "true" : "false", "boolean")
        .set("statements_total", std::to_string(statements.size()), "integer");

    // The gate, before anything runs: the linter, then the plans of the hottest statements.
    const LintOutcome lint =
        lint_migration_gate(sql, options->lint, options->transactional, limits.lock_timeout_ms);
    if (options->lint != LintMode::Off) row.set("lint", lint.findings_json, "jsonb");
    std::optional<PlanGate> plans;
    if (!lint.refusal && options->max_plan_regression) {
        plans.emplace(*options->max_plan_regression, limits.lock_timeout_ms);
        plans->cost_before();
    }

    std::string running_id;  // statement-by-statement mode: the RUNNING row written up front
    RunResult result;
    // Statement by statement: one runner worker for the RUNNING row, the statements, their
    // rows, the final row and its alerts (a new one only after a failure or a statement that
    // changes session state); gone when this call ends, whichever way.
    std::optional<pg::RunnerSession> session;
    if (!options->transactional) session.emplace();
    // Shown in virtuoso.progress while it runs (statements done of all, one by one).
    const auto total = static_cast<int64_t>(statements.size());
    pg::Progress progress(
        fmt::format("migration {}", name),
        options->transactional ? "running in one transaction" : fmt::format("statement 1 of {}", total),
        total);
    if (lint.refusal) {
        result.failure = lint.refusal;  // no attempt: nothing ran
    } else if (options->transactional) {
        std::function<std::optional<Failure>()> gate;
        if (plans) gate = [&plans] { return plans->check_after(); };
        result = run_transactional(statements, limits, options->validation_rules, !options->dry_run,
                                   gate);
    } else {
        LogRow running = row;
        running.set("status", "RUNNING")
            .set("statements_done", "0", "integer")
            .set("backend_pid", std::to_string(MyProcPid), "integer")
            .set_time("backend_start", MyStartTimestamp);
        running_id = *running.insert(true)[log_column("id")];
        int done_so_far = 0;
        try {
            // Cancelled while it waits (statement_timeout, pg_cancel_backend): the
            // subtransaction cleans up, the row is marked FAILED, and the error goes on.
            pg::SubTransaction waiting;
            result = run_one_by_one(statements, limits,
                                    [&running_id, &done_so_far, &progress, total](int done) {
                done_so_far = done;
                LogRow done_row;
                done_row.set("statements_done", std::to_string(done), "integer");
                done_row.update(running_id, true);
                progress.done(done);
                if (done < total)
                    progress.phase(fmt::format("statement {} of {}", done + 1, total));
            });
            waiting.commit();
        } catch (const pg::PgError &e) {
            mark_interrupted(running_id, started, failure_from(e, done_so_far + 1), done_so_far);
            throw;
        }
        if (!result.ok) report_leftover_indexes(statements, result);
        if (result.ok && options->validation_rules) {
            // An error here (a lock timeout) must still settle the RUNNING row as FAILED.
            try {
                pg::SubTransaction scope;
                std::optional<Failure> failed;
                {
                    pg::Spi spi;
                    failed = check_rules(spi, *options->validation_rules, limits.lock_timeout_ms);
                }
                scope.commit();
                if (failed) {
                    result.ok = false;
                    result.failure = failed;
                }
            } catch (const pg::PgError &e) {
                result.ok = false;
                result.failure = failure_from(e, 0);
            }
        }
    }

    const TimestampTz completed = GetCurrentTimestamp();
    const Stats final_stats =
        collect_stats(touched_relations(statements, result.affected), &initial_stats);
    LogRow outcome;
    outcome.set("status", result.ok ? (options->dry_run ? "DRY_RUN" : "SUCCESS") : "FAILED")
        .set_time("completed_at", completed)
        .set("duration", std::to_string(completed - started) + " microseconds", "interval")
        .set("final_stats", final_stats.json, "jsonb")
        .set_detail("final", final_stats.detail)
        .set("affected_objects", json_array(result.affected), "jsonb")
        .set("attempts", std::to_string(result.attempts), "integer")
        .set("lock_waits", json_array(result.lock_waits), "jsonb")
        .set("statements_done", std::to_string(result.statements_done), "integer");
    if (result.failure) fill_failure(outcome, *result.failure);
    if (plans) outcome.set("plan_changes", plans->json(), "jsonb");

    if (!running_id.empty()) {
        pg::Row recorded = outcome.update(running_id, true);
        if (!result.ok) raise_failure(*result.failure, name, running_id, result.attempts);
        return recorded;
    }
    // Transactional: merge the two halves into one row.
    LogRow full = row;
    full.merge(outcome);
    if (!result.ok) {
        if (!session) session.emplace();  // one worker for the row and its alert
        pg::Row recorded = full.insert(true);  // survives the caller's rollback
        raise_failure(*result.failure, name, *recorded[log_column("id")], result.attempts);
    }
    // A dry run leaves its row even when the caller rolls back (it is the dry run's result).
    return full.insert(options->dry_run);
}

}  // namespace virtuoso::migrate

VIRTUOSO_FUNCTION(virtuoso_execute_migration) {
    return pg::return_composite(fcinfo, run_migration(migration_call(fcinfo)));
}

// CALL virtuoso.run_migration(...): the procedure form.  It commits the calling transaction
// first and so holds no snapshot while it runs, which statements such as CREATE INDEX
// CONCURRENTLY need in a {"transactional": false} migration.
VIRTUOSO_FUNCTION(virtuoso_run_migration) {
    const MigrationCall call = migration_call(fcinfo);
    pg::commit_caller(fcinfo, "virtuoso.run_migration");
    pg::SnapshotFreeProcedure no_snapshot;
    const pg::Row recorded = run_migration(call);
    return pg::procedure_result(fcinfo,
                                {recorded[log_column("status")], recorded[log_column("id")]});
}
