// The gate of execute_migration_with_monitoring (server side): the linter before anything
// runs (option "lint") and the plan-regression check of the top pg_stat_statements queries
// before the migration commits (option "max_plan_regression").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "db_virtuoso/migrate/executor.hpp"
#include "db_virtuoso/migrate/options.hpp"

namespace virtuoso::migrate {

// SQLSTATEs of the gate, in the extension's own class VR.
constexpr const char *kSqlstateLintRefused = "VR001";
constexpr const char *kSqlstatePlanRegression = "VR002";

struct LintOutcome {
    std::string findings_json;       // for the `lint` column
    std::optional<Failure> refusal;  // mode "error" and an error finding: VR001
};

// Lints the migration as it will run (transactional or not, with the executor's own
// lock_timeout), with lock waits for the linter's facts bounded by lock_timeout_ms.
LintOutcome lint_migration_gate(const std::string &sql, LintMode mode, bool transactional,
                                int lock_timeout_ms);

// Costs the top statements of pg_stat_statements (by total time; how many: GUC
// virtuoso.plan_regression_statements) with generic plans, each as the role that ran it
// inside a security-restricted operation, before the migration runs and again after it ran
// in the same transaction.  A statement that fails to plan is reported, never fatal.
class PlanGate {
  public:
    PlanGate(double max_factor, int lock_timeout_ms);
    // Before the migration: reads the workload and costs it (in a rolled-back subtransaction).
    void cost_before();
    // After the migration ran, before it is kept: costs the same statements again; a
    // failure (VR002) when one grew by more than the factor.
    std::optional<Failure> check_after();
    // The `plan_changes` column: a JSON object.
    std::string json() const;

    struct Entry {
        std::string query;
        Oid role = InvalidOid;
        std::string role_name;
        int64_t calls = 0;
        double total_ms = 0;
        struct Side {
            bool planned = false;
            double cost = 0;
            std::string shape;
            std::string error;  // "SQLSTATE: message" when it could not be planned
        } before, after;
        bool compared = false;
        bool regressed = false;
    };

  private:
    double factor_;
    int lock_timeout_ms_;
    size_t skipped_roles_ = 0;
    std::vector<Entry> entries_;
};

}  // namespace virtuoso::migrate
