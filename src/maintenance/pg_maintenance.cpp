// perform_maintenance_if_needed: the catalog scan, the executor of decisions and the
// function's backend (caller's transaction + statement runner).
#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "db_virtuoso/maintenance/pg_maintenance.hpp"
#include "db_virtuoso/alerts/alerts.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/progress.hpp"
#include "db_virtuoso/pg/runner.hpp"

extern "C" {
#include "access/xlog.h"
#include "commands/vacuum.h"
#include "pgstat.h"
#include "postmaster/autovacuum.h"
#include "storage/lmgr.h"
#include "utils/datetime.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace virtuoso::maintenance {
namespace {

using pg::Param;
using pg::SpiResult;
using pg::Value;

int64_t to_int(const Value &v) {
    return v ? std::strtoll(v->c_str(), nullptr, 10) : 0;
}

Param int_param(int64_t v) {
    return std::to_string(v);
}
Param opt_int_param(const std::optional<int64_t> &v) {
    return v ? Param(std::to_string(*v)) : Param();
}

// Every user table and materialized view with its statistics, ages and whether the acting
// role may vacuum it (PostgreSQL 15: owner, superuser, or the database owner), in ONE scan.
// Temporary tables are left out: the runner's worker cannot see them.
constexpr const char *kTablesSql = R"SQL(
SELECT c.oid, n.nspname, c.relname,
       coalesce(pg_catalog.pg_stat_get_live_tuples(c.oid), 0),
       coalesce(pg_catalog.pg_stat_get_dead_tuples(c.oid), 0),
       coalesce(pg_catalog.pg_stat_get_mod_since_analyze(c.oid), 0),
       pg_catalog.age(c.relfrozenxid),
       pg_catalog.mxid_age(c.relminmxid),
       pg_catalog.pg_has_role(c.relowner, 'USAGE') OR db.is_owner,
       pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)
         GREATEST(pg_catalog.pg_stat_get_last_vacuum_time(c.oid),
                             pg_catalog.pg_stat_get_last_autovacuum_time(c.oid))),
       pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)
         GREATEST(pg_catalog.pg_stat_get_last_analyze_time(c.oid),
                             pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid)))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN (SELECT pg_catalog.pg_has_role(d.datdba, 'USAGE') AS is_owner
            FROM pg_catalog.pg_database d
            WHERE d.datname = pg_catalog.current_database()) db
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
  AND n.nspname <> ALL ('{pg_catalog,information_schema}')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
)SQL";

constexpr const char *kSizeSql = R"SQL(
SELECT pg_catalog.pg_stat_get_dead_tuples($1::pg_catalog.oid),
       pg_catalog.pg_relation_size($1::pg_catalog.oid)
         / pg_catalog.current_setting('block_size')::pg_catalog.int8
)SQL";

// Locks on the table held or awaited by any session (the VACUUM's worker has not started yet;
// the caller's own transaction counts: the worker would wait for it too).
constexpr const char *kLocksSql = R"SQL(
SELECT pg_catalog.count(*) FILTER (WHERE l.granted), pg_catalog.count(*) FILTER (WHERE NOT l.granted)
FROM pg_catalog.pg_locks l
WHERE l.locktype = 'relation' AND l.relation = $1::pg_catalog.oid
  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                    WHERE d.datname = pg_catalog.current_database())
)SQL";

// How often and how far apart the locks are sampled: a table of short transactions (TPC-B's
// branches) may be without locks for an instant between two of them.
constexpr int kLockSamples = 5;
constexpr long kLockSampleGapUs = 10000;

constexpr const char *kInsertSql = R"SQL(
INSERT INTO virtuoso.maintenance_log
  (relid, schemaname, tablename, action, command, reason, status, dead_tuples_before,
   dead_pct, pages_before, executed_by, triggered_by, pid, backend_start, finished_at, duration,
   error_message)
VALUES ($1::pg_catalog.oid, $2::pg_catalog.name, $3::pg_catalog.name, $4, $5, $6, $7,
        $8::pg_catalog.int8, pg_catalog.round($9::pg_catalog.numeric, 2), $10::pg_catalog.int8,
        $11::pg_catalog.name, $12, $13::pg_catalog.int4,
        (SELECT a.backend_start FROM pg_catalog.pg_stat_activity a
         WHERE a.pid = $13::pg_catalog.int4),
        CASE WHEN $7 = 'RUNNING' THEN NULL ELSE pg_catalog.clock_timestamp() END,
        CASE WHEN $7 = 'RUNNING' THEN NULL ELSE '0'::pg_catalog.interval END,
        $14)
RETURNING id
)SQL";

// The row of an action that is over (an ANALYZE): written once, afterwards, with its times.
constexpr const char *kInsertDoneSql = R"SQL(
INSERT INTO virtuoso.maintenance_log
  (started_at, finished_at, duration, relid, schemaname, tablename, action, command, reason,
   status, dead_tuples_before, dead_pct, pages_before, executed_by, triggered_by, pid,
   backend_start, dead_tuples_after, pages_after, pages_removed, sqlstate, error_message)
SELECT t.now OPERATOR(pg_catalog.-) t.took, t.now, t.took, $1::pg_catalog.oid,
       $2::pg_catalog.name, $3::pg_catalog.name, $4, $5, $6, $7, $8::pg_catalog.int8,
       pg_catalog.round($9::pg_catalog.numeric, 2), $10::pg_catalog.int8, $11::pg_catalog.name,
       $12, $13::pg_catalog.int4,
       (SELECT a.backend_start FROM pg_catalog.pg_stat_activity a
        WHERE a.pid = $13::pg_catalog.int4),
       $14::pg_catalog.int8, $15::pg_catalog.int8,
       pg_catalog.int8larger($10::pg_catalog.int8 OPERATOR(pg_catalog.-) $15::pg_catalog.int8, 0),
       $16, $17
FROM (SELECT pg_catalog.clock_timestamp() AS now,
             pg_catalog.make_interval(secs => $18::pg_catalog.float8) AS took) t
RETURNING id
)SQL";

constexpr const char *kFinishSql = R"SQL(
UPDATE virtuoso.maintenance_log l
SET finished_at = t.now, duration = t.now OPERATOR(pg_catalog.-) l.started_at,
    status = $2, dead_tuples_after = $3::pg_catalog.int8, pages_after = $4::pg_catalog.int8,
    pages_removed = pg_catalog.int8larger(l.pages_before OPERATOR(pg_catalog.-)
                                          $4::pg_catalog.int8, 0),
    sqlstate = $5, error_message = $6
FROM (SELECT pg_catalog.clock_timestamp() AS now) t
WHERE l.id = $1::pg_catalog.int8
)SQL";

constexpr const char *kAbandonedSql = R"SQL(
WITH abandoned AS (
  UPDATE virtuoso.maintenance_log l
  SET status = 'FAILED', finished_at = pg_catalog.clock_timestamp(),
      duration = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) l.started_at,
      error_message = 'interrupted: the process running it ended (crash, restart or termination)'
  WHERE l.status = 'RUNNING'
    AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a
                    WHERE a.pid = l.pid
                      AND a.backend_start IS NOT DISTINCT FROM l.backend_start)
  RETURNING 1)
SELECT pg_catalog.count(*) FROM abandoned
)SQL";

std::vector<TableStats> gather_tables(Backend &backend) {
    SpiResult r = backend.read(kTablesSql, {});
    std::vector<TableStats> tables;
    tables.reserve(r.rows.size());
    for (const auto &row : r.rows) {
        TableStats t;
        t.relid = static_cast<uint32_t>(std::strtoul(row[0]->c_str(), nullptr, 10));
        t.schema = *row[1];
        t.name = *row[2];
        t.live_tuples = to_int(row[3]);
        t.dead_tuples = to_int(row[4]);
        t.modified_since_analyze = to_int(row[5]);
        t.xid_age = to_int(row[6]);
        t.mxid_age = to_int(row[7]);
        t.may_maintain = row[8] && *row[8] == "t";
        if (row[9]) t.seconds_since_vacuum = std::strtod(row[9]->c_str(), nullptr);
        if (row[10]) t.seconds_since_analyze = std::strtod(row[10]->c_str(), nullptr);
        tables.push_back(std::move(t));
    }
    return tables;
}

// PostgreSQL's own limits for an aggressive (freezing) vacuum.
Thresholds current_thresholds() {
    Thresholds t;
    t.dead_tuple_threshold = gucs::dead_tuple_threshold;
    t.dead_tuple_pct = gucs::dead_tuple_pct;
    t.min_interval_s = gucs::maintenance_min_interval_s;
    t.freeze_xid_age = std::min<int64_t>(vacuum_freeze_table_age,
                                         static_cast<int64_t>(0.95 * autovacuum_freeze_max_age));
    t.freeze_mxid_age =
        std::min<int64_t>(vacuum_multixact_freeze_table_age,
                          static_cast<int64_t>(0.95 * autovacuum_multixact_freeze_max_age));
    return t;
}

// Read through the backend: the scheduler's worker is outside any transaction here.
std::string acting_role_name(Backend &backend) {
    return backend.read("SELECT CURRENT_USER", {}).scalar().value_or("");
}

struct Measure {
    std::optional<int64_t> dead;
    std::optional<int64_t> pages;
};

Measure measure(Backend &backend, uint32_t relid) {
    SpiResult r = backend.read(kSizeSql, {int_param(relid)});
    Measure m;
    if (!r.rows.empty()) {
        if (r.rows[0][0]) m.dead = to_int(r.rows[0][0]);
        if (r.rows[0][1]) m.pages = to_int(r.rows[0][1]);
    }
    return m;
}

// Why the VACUUM should not truncate the table (empty: it may). VACUUM's truncation takes an
// ACCESS EXCLUSIVE lock that it retries for up to 5 s (VACUUM_TRUNCATE_LOCK_TIMEOUT), which
// lock_timeout does not bound: on a table in use that is a stall of the caller and of a worker
// slot, and its users queue behind the lock while it is held.
std::string truncation_risk(Backend &backend, uint32_t relid) {
    for (int i = 0; i < kLockSamples; ++i) {
        if (i > 0) pg::pg_call([] { pg_usleep(kLockSampleGapUs); });
        SpiResult r = backend.read(kLocksSql, {int_param(relid)});
        if (r.rows.empty()) continue;
        const int64_t granted = to_int(r.rows[0][0]);
        const int64_t waiting = to_int(r.rows[0][1]);
        if (granted + waiting > 0)
            return fmt::format(
                "the table is in use ({} lock(s) held and {} awaited by other sessions); its "
                "empty end is left for a quiet moment",
                granted, waiting);
    }
    return {};
}

std::string quote_ident(const std::string &s) {
    return pg::quote_identifier(s);
}

// Carries out one decision: lock probe, log row, statement, measurements, log update.
class ServerExecutor : public Executor {
  public:
    ServerExecutor(Backend &backend, pg::Progress *progress)
        : backend_(backend), role_(acting_role_name(backend)), progress_(progress) {}

    // Each action shows in virtuoso.progress as the round's phase while it runs.
    Outcome perform(const Decision &decision) override {
        if (progress_) progress_->phase(command_for(decision, quote_ident));
        Outcome out = perform_action(decision);
        if (progress_) progress_->advance(1);
        return out;
    }

  private:
    Outcome perform_action(const Decision &decision) {
        Decision d = decision;
        const auto start = std::chrono::steady_clock::now();
        auto seconds = [&start] {
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        };
        std::string command = command_for(d, quote_ident);
        switch (backend_.probe_lock(d.table.relid)) {
            case LockProbe::Gone:
                return {kSkipped, "table no longer exists", 0};
            case LockProbe::HeldByMe:
                log_skipped(d, command, "the calling transaction holds a conflicting lock");
                return {kSkipped, "locked", 0};
            case LockProbe::Busy:
                log_skipped(d, command, "another session holds a conflicting lock");
                return {kSkipped, "locked", 0};
            case LockProbe::Free:
                break;
        }
        if (d.action == Action::Vacuum || d.action == Action::VacuumFreeze) {
            const std::string risk = truncation_risk(backend_, d.table.relid);
            if (!risk.empty()) {
                skip_truncation(d, risk);
                command = command_for(d, quote_ident);
            }
        }
        Measure before = measure(backend_, d.table.relid);
        if (d.action == Action::Analyze) return analyze(d, command, before, seconds);
        // A VACUUM (which can take long) has a RUNNING row, written by a worker so that it is
        // visible while the VACUUM runs and left behind (then closed as FAILED) if the caller
        // dies; its closing is written the same way, as the caller may still roll back.
        Value id = backend_.write_log(
            kInsertSql, log_params(d, command, kRunning, before.dead.value_or(d.table.dead_tuples),
                                   before.pages, {}));
        CommandResult result = backend_.run(command);
        Measure after = measure(backend_, d.table.relid);
        std::string message;
        Outcome out = outcome_of(d, result, seconds(), &message);
        backend_.write_log(kFinishSql,
                           {id, out.status, opt_int_param(after.dead), opt_int_param(after.pages),
                            result.ok ? Param() : Param(result.sqlstate),
                            message.empty() ? Param() : Param(message)});
        if (out.status == kFailed)  // written like the log row, so it shares its fate
            alert_failed(d, command, result);
        else if (out.status == kSuccess)
            resolve_failed(d);
        if (result.abort_error != nullptr) throw pg::PgError(result.abort_error);
        return out;
    }

    static Outcome outcome_of(const Decision &d, const CommandResult &result, double seconds,
                              std::string *message) {
        if (result.ok) return {kSuccess, d.reason, seconds};
        *message = result.message;
        if (result.sqlstate == "55P03") return {kSkipped, "locked", seconds};  // next round
        return {kFailed, fmt::format("{}: {}", result.sqlstate, result.message), seconds};
    }

    // An ANALYZE (short): one row once it is over.  It commits with the caller unless the
    // ANALYZE failed or the call is being cancelled: such a row must survive the rollback
    // that follows, so a worker writes it.
    template <typename Clock>
    Outcome analyze(const Decision &d, const std::string &command, const Measure &before,
                    const Clock &seconds) {
        CommandResult result = backend_.run(command);
        Measure after = measure(backend_, d.table.relid);
        std::string message;
        Outcome out = outcome_of(d, result, seconds(), &message);
        std::vector<Param> params =
            log_params(d, command, out.status.c_str(), before.dead.value_or(d.table.dead_tuples),
                       before.pages, {});
        params.pop_back();  // the message goes last, after the measurements
        params.push_back(opt_int_param(after.dead));
        params.push_back(opt_int_param(after.pages));
        params.push_back(result.ok ? Param() : Param(result.sqlstate));
        params.push_back(message.empty() ? Param() : Param(message));
        params.push_back(fmt::format("{}", out.seconds));
        if (out.status == kFailed || result.abort_error != nullptr)
            backend_.write_log(kInsertDoneSql, params);
        else
            backend_.write_log_in_transaction(kInsertDoneSql, params);
        if (out.status == kFailed)
            alert_failed(d, command, result);
        else if (out.status == kSuccess)
            resolve_failed(d);
        if (result.abort_error != nullptr) throw pg::PgError(result.abort_error);
        return out;
    }

    // One maintenance_failed alert per table while unresolved, written by a worker like the
    // FAILED log row (it survives the caller's rollback).
    void alert_failed(const Decision &d, const std::string &command, const CommandResult &result) {
        backend_.write_log(alerts::emit_sql(),
                           alerts::emit_params(alerts::maintenance_failed(
                               d.table.relid, d.table.schema + "." + d.table.name, command,
                               result.sqlstate, result.message)));
    }

    // A successful action resolves the table's open maintenance_failed alert (in the caller's
    // transaction, like the SUCCESS row).
    void resolve_failed(const Decision &d) {
        backend_.write_log_in_transaction(alerts::resolve_sql(),
                                          alerts::maintenance_resolve_params(d.table.relid));
    }

    std::vector<Param> log_params(const Decision &d, const std::string &command, const char *status,
                                  int64_t dead, const std::optional<int64_t> &pages,
                                  const Value &message) {
        return {int_param(d.table.relid),
                d.table.schema,
                d.table.name,
                std::string(action_name(d.action)),
                command,
                d.reason,
                std::string(status),
                int_param(dead),
                fmt::format("{}", d.dead_pct),
                opt_int_param(pages),
                role_,
                std::string(backend_.triggered_by()),
                int_param(backend_.pid()),
                message};
    }

    void log_skipped(const Decision &d, const std::string &command, const std::string &why) {
        backend_.write_log_in_transaction(
            kInsertSql,
            log_params(d, command, kSkipped, d.table.dead_tuples, {}, "locked: " + why));
    }

    Backend &backend_;
    std::string role_;
    pg::Progress *progress_;
};

// ---- the function's backend -------------------------------------------------------------

class FunctionBackend : public Backend {
  public:
    SpiResult read(const std::string &sql, const std::vector<Param> &params) override {
        // Rolled back: releases what pg_relation_size locked, which would otherwise keep the
        // runner's VACUUM from truncating the table until the caller commits.
        pg::SubTransaction sub;
        pg::pg_call([] { pgstat_clear_snapshot(); });
        pg::InternalSql spi;
        return spi.execute(sql, params, true);
    }

    Value write_log(const std::string &sql, const std::vector<Param> &params) override {
        if (owner_ == InvalidOid) owner_ = log_owner(*this);
        pg::GucScope guc;
        guc.set("search_path", "pg_catalog, pg_temp");
        AsRole as_owner(owner_);
        return pg::run_in_worker_or_raise({pg::RunMode::Autonomous, sql, params, true}).value;
    }

    // In the caller's transaction, as the log's owner: no worker.  A read-only transaction
    // cannot hold the row, the autonomous path can (the log is bookkeeping).
    Value write_log_in_transaction(const std::string &sql,
                                   const std::vector<Param> &params) override {
        if (pg::pg_call([] { return XactReadOnly; })) return write_log(sql, params);
        if (owner_ == InvalidOid) owner_ = log_owner(*this);
        AsRole as_owner(owner_);
        pg::InternalSql spi;
        return spi.scalar(sql, params);
    }

    LockProbe probe_lock(uint32_t relid) override { return probe_relation_lock(relid); }

    CommandResult run(const std::string &sql) override {
        pg::GucScope guc;
        guc.set("lock_timeout", kStatementLockTimeout);
        guc.set("vacuum_cost_delay", autovacuum_cost_delay_setting());
        guc.set("vacuum_cost_limit", autovacuum_cost_limit_setting());
        pg::RunOutcome outcome;
        try {
            // An error of the runner itself (cancel, no worker slot) is caught in a
            // subtransaction, so that the log row can still be closed before it is raised.
            pg::SubTransaction sub;
            outcome = pg::run_in_worker({pg::RunMode::TopLevel, sql, {}});
            sub.commit();
        } catch (const pg::PgError &e) {
            CommandResult failed;
            failed.sqlstate = unpack_sql_state(e.sqlstate());
            failed.message = e.what();
            failed.abort_error = e.data();
            return failed;
        }
        CommandResult r;
        r.ok = outcome.ok;
        if (!outcome.ok && outcome.error) {
            r.sqlstate = unpack_sql_state(outcome.error->sqlerrcode);
            r.message = outcome.error->message ? outcome.error->message : "";
        }
        return r;
    }

    const char *triggered_by() const override { return "function"; }
    int pid() const override { return MyProcPid; }

  private:
    Oid owner_ = InvalidOid;
};

// Builds the result rows of the SQL function.  Everything inside the pg_call is plain
// PostgreSQL: no nested pg_call, no C++ object created, nothing that throws (a C++ exception
// must not leave a PG_TRY block); the strings are those of `rows`, alive throughout.
void emit_rows(FunctionCallInfo fcinfo, const std::vector<RoundRow> &rows) {
    pg::pg_call([&] {
        InitMaterializedSRF(fcinfo, 0);
        auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
        auto text = [](const char *s) { return PointerGetDatum(cstring_to_text(s)); };
        for (const auto &row : rows) {
            const Decision &d = row.decision;
            Datum values[8];
            bool nulls[8] = {false};
            values[0] = DirectFunctionCall1(namein, CStringGetDatum(d.table.schema.c_str()));
            values[1] = DirectFunctionCall1(namein, CStringGetDatum(d.table.name.c_str()));
            values[2] = text(action_name(d.action));
            values[3] = text(row.outcome.reason.c_str());
            values[4] = Int64GetDatum(d.table.dead_tuples);
            values[5] = DirectFunctionCall2(
                numeric_round, DirectFunctionCall1(float8_numeric, Float8GetDatum(d.dead_pct)),
                Int32GetDatum(2));
            values[6] = text(row.outcome.status.c_str());
            if (row.outcome.status == kSuccess || row.outcome.status == kFailed) {
                auto *iv = static_cast<Interval *>(palloc0(sizeof(Interval)));
                iv->time = static_cast<TimeOffset>(row.outcome.seconds * USECS_PER_SEC);
                values[7] = IntervalPGetDatum(iv);
            } else {
                nulls[7] = true;
            }
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
        }
    });
}

}  // namespace

Oid log_owner(Backend &backend) {
    SpiResult r = backend.read(
        "SELECT c.relowner FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
        "c.relnamespace WHERE n.nspname = 'virtuoso' AND c.relname = 'maintenance_log'",
        {});
    if (r.empty() || !r.rows[0][0])
        throw pg::UserError(ERRCODE_UNDEFINED_TABLE, "table virtuoso.maintenance_log is missing",
                            {},
                            "Reinstall the extension: DROP EXTENSION db_virtuoso; CREATE "
                            "EXTENSION db_virtuoso;");
    return static_cast<Oid>(std::strtoul(r.rows[0][0]->c_str(), nullptr, 10));
}

LockProbe probe_relation_lock(uint32_t relid) {
    return pg::pg_call([relid] {
        if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid))) return LockProbe::Gone;
        if (CheckRelationOidLockedByMe(relid, ShareUpdateExclusiveLock, true))
            return LockProbe::HeldByMe;
        if (!ConditionalLockRelationOid(relid, ShareUpdateExclusiveLock)) return LockProbe::Busy;
        UnlockRelationOid(relid, ShareUpdateExclusiveLock);
        return LockProbe::Free;
    });
}

int current_minute_of_day() {
    return pg::pg_call([] {
        struct pg_tm tm;
        fsec_t fsec;
        int tz;
        if (timestamp2tm(GetCurrentTimestamp(), &tz, &tm, &fsec, nullptr, nullptr) != 0) return 0;
        return tm.tm_hour * 60 + tm.tm_min;
    });
}

std::string autovacuum_cost_delay_setting() {
    double delay = autovacuum_vac_cost_delay >= 0 ? autovacuum_vac_cost_delay : VacuumCostDelay;
    return fmt::format("{}ms", delay);
}

std::string autovacuum_cost_limit_setting() {
    int limit = autovacuum_vac_cost_limit > 0 ? autovacuum_vac_cost_limit : VacuumCostLimit;
    return std::to_string(limit);
}

int64_t fail_abandoned_runs(Backend &backend) {
    // Idempotent: if the caller rolls back, the next call closes the rows again.
    return to_int(backend.write_log_in_transaction(kAbandonedSql, {}));
}

std::vector<RoundRow> run_maintenance_round(Backend &backend, bool dry_run) {
    const auto start = std::chrono::steady_clock::now();
    RoundSettings settings;
    settings.dry_run = dry_run;
    settings.window_text = gucs::maintenance_window ? gucs::maintenance_window : "";
    std::string error;
    if (auto window = core::TimeWindow::parse(settings.window_text, &error))
        settings.window = *window;
    settings.minute_of_day = current_minute_of_day();
    settings.budget_seconds = gucs::maintenance_time_budget_s;

    std::vector<Decision> decisions = plan(gather_tables(backend), current_thresholds());
    // A round that acts shows in virtuoso.progress (actions done of those due); a dry run
    // does nothing worth watching.
    std::optional<pg::Progress> progress;
    if (!dry_run) {
        auto due = std::count_if(decisions.begin(), decisions.end(),
                                 [](const Decision &d) { return d.action != Action::None; });
        progress.emplace("maintenance round", "deciding", static_cast<int64_t>(due));
    }
    ServerExecutor executor(backend, progress ? &*progress : nullptr);
    return run_round(decisions, settings, executor, [&start] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    });
}

}  // namespace virtuoso::maintenance

using namespace virtuoso::maintenance;

// virtuoso.perform_maintenance_if_needed(dry_run boolean DEFAULT false)
VIRTUOSO_FUNCTION(virtuoso_perform_maintenance_if_needed) {
    if (PG_ARGISNULL(0))
        throw virtuoso::pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                                      "dry_run must be true or false, not NULL");
    const bool dry_run = PG_GETARG_BOOL(0);
    if (!dry_run && RecoveryInProgress())
        throw virtuoso::pg::UserError(
            ERRCODE_READ_ONLY_SQL_TRANSACTION, "maintenance cannot run on a hot standby",
            "VACUUM and ANALYZE cannot run during recovery.",
            "Run it on the primary, or pass dry_run => true to see what is due.");
    // One runner worker for the whole call: its VACUUMs and ANALYZEs and the log rows and
    // alerts written autonomously (a new one only after a failed statement).
    std::optional<virtuoso::pg::RunnerSession> session;
    if (!dry_run) session.emplace();
    FunctionBackend backend;
    // Rows of calls that crashed or were terminated mid-VACUUM are closed here too, not only
    // by the scheduler: with the scheduler off, or this database not in its list, they
    // would stay RUNNING for ever.
    if (!dry_run) (void)fail_abandoned_runs(backend);
    std::vector<RoundRow> rows = run_maintenance_round(backend, dry_run);
    emit_rows(fcinfo, rows);
    return (Datum)0;
}
