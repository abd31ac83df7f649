#include "db_virtuoso/pg/gucs.hpp"

#include "db_virtuoso/core/time_window.hpp"
#include "db_virtuoso/pg/guard.hpp"
#include "db_virtuoso/pg/postgres.hpp"

extern "C" {
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"
}

namespace virtuoso::gucs {

char *database_names = nullptr;
int maintenance_naptime_s = 60;
char *maintenance_window = nullptr;
char *maintenance_role = nullptr;
bool enable_maintenance_worker = true;
int dead_tuple_threshold = 1000;
double dead_tuple_pct = 10.0;
int lock_timeout_ms = 1000;
int max_lock_retries = 10;
int maintenance_time_budget_s = 300;
int max_maintenance_workers = 3;
int rule_timeout_ms = 300000;
int plan_regression_statements = 50;
char *alert_channel = nullptr;
int health_check_interval_s = 0;
int alert_lock_wait_ms = 10000;
int alert_stalled_after_s = 3600;
char *log_retention = nullptr;
int maintenance_min_interval_s = 60;
int max_runner_workers = 4;
int runner_queue_timeout_ms = 10000;
int runner_idle_timeout_ms = 2000;
int batch_pause_ms = 0;
int batch_max_replay_lag_ms = 0;
double batch_max_slowdown = 0;

namespace {

// GUC check hooks are called from C: no exception may escape them, and GUC_check_errdetail
// (which allocates, so may ereport) must run with no C++ object alive.  The body returns the
// problem with the value, or nothing when it is fine; an exception becomes `fallback`.
template <typename Body>
bool guarded_check(const char *fallback, Body &&body) {
    const char *problem = fallback;
    try {
        std::optional<std::string> error = body();
        if (!error) return true;
        problem = pg::pg_call([&error] { return pstrdup(error->c_str()); });
    } catch (...) {
        problem = fallback;
    }
    GUC_check_errdetail("%s", problem);
    return false;
}

bool check_window(char **newval, void **, GucSource) {
    return guarded_check("could not parse the maintenance window",
                         [newval]() -> std::optional<std::string> {
                             std::string error;
                             if (core::TimeWindow::parse(*newval ? *newval : "", &error))
                                 return std::nullopt;
                             return error;
                         });
}

// A factor below 1 would pause on statements as fast as before, forever.
bool check_slowdown(double *newval, void **, GucSource) {
    if (*newval == 0 || *newval >= 1) return true;
    GUC_check_errdetail("It is 0 (off) or a factor of at least 1.");
    return false;
}

bool check_database_names(char **newval, void **, GucSource) {
    return guarded_check("could not parse the database list",
                         [newval]() -> std::optional<std::string> {
                             std::string error;
                             if (core::parse_name_list(*newval ? *newval : "", &error))
                                 return std::nullopt;
                             return error;
                         });
}

bool check_alert_channel(char **newval, void **, GucSource) {
    return guarded_check("not a channel name", [newval]() -> std::optional<std::string> {
        const char *v = *newval ? *newval : "";
        if (v[0] == '\0') return std::string("The channel name must not be empty.");
        if (strlen(v) >= NAMEDATALEN)
            return fmt::format("The channel name must be shorter than {} bytes.", NAMEDATALEN);
        return std::nullopt;
    });
}

bool check_retention(char **newval, void **, GucSource) {
    return guarded_check("not an interval (e.g. '90 days'; 0 keeps every row)",
                         [newval]() -> std::optional<std::string> {
                             const char *v = *newval ? *newval : "";
                             bool negative = pg::pg_call([v] {
                                 Datum d = DirectFunctionCall3(interval_in, CStringGetDatum(v),
                                                               ObjectIdGetDatum(InvalidOid),
                                                               Int32GetDatum(-1));
                                 auto *zero = static_cast<Interval *>(palloc0(sizeof(Interval)));
                                 return DatumGetBool(
                                     DirectFunctionCall2(interval_lt, d, PointerGetDatum(zero)));
                             });
                             if (negative) return std::string("The retention must not be negative.");
                             return std::nullopt;
                         });
}

}  // namespace

void define_all() {
    DefineCustomStringVariable(
        "virtuoso.database_names",
        "Comma-separated databases in which the maintenance scheduler works.", nullptr,
        &database_names, "postgres", PGC_SIGHUP, 0, check_database_names, nullptr, nullptr);
    DefineCustomIntVariable("virtuoso.maintenance_naptime",
                            "Time between two rounds of the maintenance scheduler.", nullptr,
                            &maintenance_naptime_s, 60, 1, 86400 * 7, PGC_SIGHUP, GUC_UNIT_S,
                            nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "virtuoso.maintenance_window",
        "Daily window 'HH:MM-HH:MM' (server local time) in which scheduled maintenance runs; "
        "empty means always.",
        nullptr, &maintenance_window, "", PGC_SIGHUP, 0, check_window, nullptr, nullptr);
    DefineCustomStringVariable(
        "virtuoso.maintenance_role",
        "Role the maintenance scheduler works as; empty means the bootstrap superuser.", nullptr,
        &maintenance_role, "", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "virtuoso.enable_maintenance_worker", "Whether the maintenance scheduler does its rounds.",
        nullptr, &enable_maintenance_worker, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "virtuoso.dead_tuple_threshold", "Dead tuples a table needs before maintenance vacuums it.",
        nullptr, &dead_tuple_threshold, 1000, 0, INT_MAX, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomRealVariable("virtuoso.dead_tuple_pct",
                             "Dead tuples, in percent of live tuples, a table needs before "
                             "maintenance vacuums it.",
                             nullptr, &dead_tuple_pct, 10.0, 0.0, 100000.0, PGC_SIGHUP, 0, nullptr,
                             nullptr, nullptr);
    DefineCustomIntVariable(
        "virtuoso.lock_timeout", "lock_timeout of each attempt of a migration statement.", nullptr,
        &lock_timeout_ms, 1000, 1, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "virtuoso.max_lock_retries", "How often a migration is retried after a lock timeout.",
        nullptr, &max_lock_retries, 10, 0, 1000, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("virtuoso.maintenance_time_budget",
                            "Time after which a maintenance round starts no further action; 0 "
                            "means no limit.",
                            nullptr, &maintenance_time_budget_s, 300, 0, 86400 * 7, PGC_SIGHUP,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("virtuoso.max_maintenance_workers",
                            "Databases the maintenance scheduler serves at the same time.", nullptr,
                            &max_maintenance_workers, 3, 1, 64, PGC_SIGHUP, 0, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("virtuoso.rule_timeout",
                            "Time one rule of validate_data_integrity may run unless the rule "
                            "gives its own \"timeout\"; 0 means no limit.",
                            nullptr, &rule_timeout_ms, 300000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "virtuoso.plan_regression_statements",
        "Top statements of pg_stat_statements (by total time) whose plans a migration with "
        "max_plan_regression compares before and after it runs.",
        nullptr, &plan_regression_statements, 50, 1, 10000, PGC_USERSET, 0, nullptr, nullptr,
        nullptr);
    DefineCustomStringVariable("virtuoso.alert_channel",
                               "NOTIFY channel on which db_virtuoso sends its alerts.", nullptr,
                               &alert_channel, "virtuoso_alerts", PGC_SIGHUP, 0,
                               check_alert_channel, nullptr, nullptr);
    DefineCustomIntVariable("virtuoso.health_check_interval",
                            "Time between two health rounds of the scheduler (alerts for "
                            "CRITICAL and WARN findings); 0 means none.",
                            nullptr, &health_check_interval_s, 0, 0, 86400 * 7, PGC_SIGHUP,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("virtuoso.alert_lock_wait",
                            "Lock waits of one migration, added up, past which it raises an "
                            "alert; 0 means never.",
                            nullptr, &alert_lock_wait_ms, 10000, 0, INT_MAX, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("virtuoso.alert_stalled_after",
                            "Time a migration or maintenance action may stay RUNNING before the "
                            "health round alerts it as stalled; 0 means never.",
                            nullptr, &alert_stalled_after_s, 3600, 0, 86400 * 30, PGC_SIGHUP,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "virtuoso.log_retention",
        "Age past which the scheduler deletes rows of migration_log, maintenance_log, audit_log "
        "and alert_log (never a RUNNING row, the latest run of a migration, an open alert); 0 "
        "keeps every row.",
        nullptr, &log_retention, "90 days", PGC_SIGHUP, 0, check_retention, nullptr, nullptr);
    DefineCustomIntVariable("virtuoso.maintenance_min_interval",
                            "Minimum time between two VACUUMs (or two ANALYZEs) of one table by "
                            "maintenance, counted from the last one by anyone; 0 means none. "
                            "Freezing VACUUMs do not wait for it.",
                            nullptr, &maintenance_min_interval_s, 60, 0, 86400 * 7, PGC_USERSET,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("virtuoso.max_runner_workers",
                            "Background workers the statement runner may use at the same time, "
                            "in the whole cluster; further calls wait in line.",
                            nullptr, &max_runner_workers, 4, 1, 10000, PGC_SIGHUP, 0, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable("virtuoso.runner_queue_timeout",
                            "How long a call of the statement runner waits for a free worker "
                            "before failing with 53400; 0 means not at all.",
                            nullptr, &runner_queue_timeout_ms, 10000, 0, 3600000, PGC_USERSET,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("virtuoso.runner_idle_timeout",
                            "How long a runner worker whose job is done waits for the next job "
                            "of the same database and user (holding its runner slot) before it "
                            "exits; 0 means it exits at once.",
                            nullptr, &runner_idle_timeout_ms, 2000, 0, 3600000, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "virtuoso.batch_pause", "Pause between two batches of a batched copy or backfill.", nullptr,
        &batch_pause_ms, 0, 0, 3600000, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("virtuoso.batch_max_replay_lag",
                            "A batched copy or backfill waits before its next batch while a "
                            "standby has not replayed the WAL of batches committed longer ago "
                            "than this; 0 means no wait.",
                            nullptr, &batch_max_replay_lag_ms, 0, 0, INT_MAX, PGC_USERSET,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomRealVariable("virtuoso.batch_max_slowdown",
                             "A batched copy or backfill pauses while the statements on its "
                             "table (in pg_stat_statements) run more than this many times slower "
                             "than before the job started; 0 means no such pause.",
                             nullptr, &batch_max_slowdown, 0.0, 0.0, 1000000.0, PGC_USERSET, 0,
                             check_slowdown, nullptr, nullptr);
}

}  // namespace virtuoso::gucs
