// Pure C++ (no postgres.h): which maintenance each table needs, and in which order, from
// per-table numbers the server gathers in one catalog query; and the round that carries the
// decisions out against a budget, a window and an executor the server provides.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "db_virtuoso/core/time_window.hpp"

namespace virtuoso::maintenance {

// What the catalog says about one table.
struct TableStats {
    uint32_t relid = 0;
    std::string schema;
    std::string name;
    int64_t live_tuples = 0;
    int64_t dead_tuples = 0;
    int64_t modified_since_analyze = 0;
    int64_t xid_age = 0;       // age(relfrozenxid)
    int64_t mxid_age = 0;      // mxid_age(relminmxid)
    bool may_maintain = true;  // the acting role owns it (or is superuser / database owner)
    // Seconds since the last VACUUM / ANALYZE of the table by anyone (autovacuum included);
    // nullopt when never.
    std::optional<double> seconds_since_vacuum;
    std::optional<double> seconds_since_analyze;
};

// As autovacuum's: an action is due when its count reaches the base threshold PLUS the
// percentage of the live rows, so a tiny table needs about the base count, a big one about
// the percentage.
struct Thresholds {
    int64_t dead_tuple_threshold = 1000;  // virtuoso.dead_tuple_threshold (base)
    double dead_tuple_pct = 10.0;         // virtuoso.dead_tuple_pct (scale, % of live rows)
    // virtuoso.maintenance_min_interval: a VACUUM (or ANALYZE) is not due again this soon
    // after the last one of the table; 0 = no minimum.  Freezing VACUUMs ignore it.
    double min_interval_s = 0;
    // Ages at which a freezing VACUUM is due: PostgreSQL's own limits for an aggressive
    // vacuum, min(vacuum_freeze_table_age, 0.95 * autovacuum_freeze_max_age) (and the
    // multixact pair), computed by the caller.
    int64_t freeze_xid_age = 150000000;
    int64_t freeze_mxid_age = 150000000;
};

enum class Action { None, Vacuum, VacuumFreeze, Analyze };

// "VACUUM", "VACUUM (FREEZE)", "ANALYZE" ("" for None): the action column.
const char *action_name(Action action);

struct Decision {
    TableStats table;
    Action action = Action::None;
    bool also_analyze = false;  // a VACUUM that also refreshes the statistics
    // Whether the VACUUM may truncate the empty end of the table. Truncating needs an ACCESS
    // EXCLUSIVE lock that VACUUM retries for up to 5 s outside lock_timeout, so the executor
    // turns it off for a table in use (set_busy) and says why in the reason.
    bool truncate = true;
    std::string reason;
    double dead_pct = 0;  // dead tuples in percent of live ones (100 when only dead remain)
};

double dead_tuple_pct(int64_t dead, int64_t live);

// The count at which VACUUM (dead tuples) or ANALYZE (changed rows) is due for a table of
// `live` rows: base + pct% of live.
int64_t due_count(int64_t live, const Thresholds &thresholds);

// The action due for one table (Action::None when nothing is).
Decision decide(const TableStats &table, const Thresholds &thresholds);

// Decisions for every table that needs something, freezing VACUUMs first (oldest first), then
// VACUUMs (most dead tuples first), then ANALYZEs (most changes first).
std::vector<Decision> plan(const std::vector<TableStats> &tables, const Thresholds &thresholds);

// Marks a VACUUM decision as not truncating because `why` (the table is in use); appends the
// choice to the reason. No effect on an ANALYZE.
void skip_truncation(Decision &decision, const std::string &why);

// The statement that carries a decision out; schema and name are quoted by quote_ident.
std::string command_for(const Decision &decision,
                        const std::function<std::string(const std::string &)> &quote_ident);

// Status words of the result and of virtuoso.maintenance_log.
inline constexpr const char *kSuccess = "SUCCESS";
inline constexpr const char *kFailed = "FAILED";
inline constexpr const char *kSkipped = "SKIPPED";
inline constexpr const char *kDryRun = "DRY_RUN";
inline constexpr const char *kRunning = "RUNNING";

// What happened to one decision.
struct Outcome {
    std::string status;  // one of the status words
    std::string reason;  // the decision's reason, or why it was skipped / failed
    double seconds = 0;  // time the action took
};

// The server side of a round: performing one decision (lock check, statement, log).
class Executor {
  public:
    virtual ~Executor() = default;
    virtual Outcome perform(const Decision &decision) = 0;
};

struct RoundSettings {
    bool dry_run = false;
    core::TimeWindow window;      // outside it nothing runs
    int minute_of_day = 0;        // now, local time
    double budget_seconds = 300;  // no new action starts after this much time; <= 0: none
    std::string window_text;      // for the reason
};

struct RoundRow {
    Decision decision;
    Outcome outcome;
};

// Carries a plan out in order: outside the window, after the budget, or for a table the role
// may not maintain, the row is SKIPPED with that reason; a dry run says what would be done.
// elapsed_seconds tells how long the round has run so far.
std::vector<RoundRow> run_round(const std::vector<Decision> &plan, const RoundSettings &settings,
                                Executor &executor, const std::function<double()> &elapsed_seconds);

}  // namespace virtuoso::maintenance
