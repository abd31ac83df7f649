// Server side of maintenance: the catalog scan, the executor of decisions, and the two
// places a round runs from (perform_maintenance_if_needed, the scheduler's database worker).
#pragma once

#include "db_virtuoso/maintenance/planner.hpp"
#include "db_virtuoso/pg/spi.hpp"

namespace virtuoso::maintenance {

enum class LockProbe { Free, Busy, HeldByMe, Gone };

struct CommandResult {
    bool ok = false;
    std::string sqlstate;  // five characters, when !ok
    std::string message;
    // An error of the machinery rather than of the statement (cancelled, no worker slot):
    // raised once the log row is closed.
    ErrorData *abort_error = nullptr;
};

// Where a round runs.  The function runs inside the caller's transaction and reaches top
// level through the statement runner; the scheduler's worker is at top level itself.
class Backend {
  public:
    virtual ~Backend() = default;
    // A read-only query with a fresh snapshot and fresh statistics; locks it takes are
    // released at once (they would hold back VACUUM's truncation).
    virtual pg::SpiResult read(const std::string &sql, const std::vector<pg::Param> &params) = 0;
    // A write to virtuoso.maintenance_log, committed at once whatever happens afterwards,
    // done as the log's owner (the acting role need not have privileges on it).
    virtual pg::Value write_log(const std::string &sql, const std::vector<pg::Param> &params) = 0;
    // A write to the log that may commit with the caller's transaction (a row whose action is
    // over and did not fail: SUCCESS, SKIPPED; closing abandoned rows).  The function writes
    // it there, as the log's owner and without a worker, unless the transaction is read-only.
    virtual pg::Value write_log_in_transaction(const std::string &sql,
                                               const std::vector<pg::Param> &params) {
        return write_log(sql, params);
    }
    // Whether VACUUM / ANALYZE could lock the table right now, without waiting.
    virtual LockProbe probe_lock(uint32_t relid) = 0;
    // Runs a statement at top level as the acting role, never waiting long for a lock, with
    // autovacuum's cost-based delay.
    virtual CommandResult run(const std::string &sql) = 0;
    virtual const char *triggered_by() const = 0;
    // The process the log rows belong to (for recognising rows left RUNNING by a crash).
    virtual int pid() const = 0;
};

// One round: one catalog scan, the plan, and the actions.  Callable in a transaction (the
// reads need one) only for the function's backend; the worker's backend opens its own.
std::vector<RoundRow> run_maintenance_round(Backend &backend, bool dry_run);

// Tests whether the relation could be locked for VACUUM now (needs a transaction).
LockProbe probe_relation_lock(uint32_t relid);

// Marks rows left RUNNING by a process that no longer runs as FAILED; returns how many.
int64_t fail_abandoned_runs(Backend &backend);

// The lock_timeout of the maintenance statements: the lock was just found free, so waiting
// only covers a lock taken in between, and must not make a user's statement queue behind us.
inline constexpr const char *kStatementLockTimeout = "50ms";

// vacuum_cost_delay / vacuum_cost_limit as autovacuum uses them, as GUC values.
std::string autovacuum_cost_delay_setting();
std::string autovacuum_cost_limit_setting();

// The time of day in the TimeZone setting, as minutes since midnight (for the window).
int current_minute_of_day();

// The owner of virtuoso.maintenance_log (who writes the log whoever acts).
Oid log_owner(Backend &backend);

// Switches the current user (as SECURITY DEFINER would) for the scope's duration.
class AsRole {
  public:
    explicit AsRole(Oid role) {
        GetUserIdAndSecContext(&saved_user_, &saved_context_);
        SetUserIdAndSecContext(role, saved_context_ | SECURITY_LOCAL_USERID_CHANGE);
    }
    ~AsRole() { SetUserIdAndSecContext(saved_user_, saved_context_); }
    AsRole(const AsRole &) = delete;
    AsRole &operator=(const AsRole &) = delete;

  private:
    Oid saved_user_;
    int saved_context_;
};

// Registers the scheduler (static background worker); called from _PG_init.
void register_scheduler();

}  // namespace virtuoso::maintenance
