// Pure C++ (no postgres.h): the options of execute_migration_with_monitoring, parsed and
// checked before anything runs.
#pragma once

#include <optional>
#include <random>
#include <string>

namespace virtuoso::migrate {

// What an `error` finding of lint_migration does to a migration (option "lint").
enum class LintMode { Error, Warn, Off };

struct MigrationOptions {
    std::optional<std::string> lock_timeout;       // as given: "500ms", "2s", or ms as number
    std::optional<std::string> statement_timeout;  // likewise
    std::optional<int> max_retries;                // default: GUC virtuoso.max_lock_retries
    std::optional<std::string> validation_rules;   // a JSON array, re-serialised
    LintMode lint = LintMode::Error;               // the default refuses an unsafe migration
    std::optional<double> max_plan_regression;     // factor of estimated cost growth allowed
    bool transactional = true;
    bool dry_run = false;
    bool force = false;
};

// A problem with the options, naming the option; the caller raises it as 22023.
struct OptionError {
    std::string message;
    std::string hint;
};

// Parses the jsonb text of `options`.  Returns nullopt and fills *error on bad input.
std::optional<MigrationOptions> parse_options(const std::string &json, OptionError *error);

// Sleep before retry `attempt` (1-based) after a lock timeout: exponential from base_ms,
// capped, with full jitter in [50%, 100%] so that colliding callers spread out.
long backoff_ms(int attempt, long base_ms, long cap_ms, std::mt19937_64 &rng);

}  // namespace virtuoso::migrate
