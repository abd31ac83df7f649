// Running migration SQL lock-safely (server side).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "db_virtuoso/pg/spi.hpp"

namespace virtuoso::migrate {

struct Statement {
    int number = 0;               // 1-based position in the migration
    std::string text;             // exactly as written
    std::string tag;              // command tag, e.g. "ALTER TABLE"
    bool top_level_only = false;  // refuses to run inside a transaction block
    bool transaction_control = false;
    std::vector<Oid> relations;  // relations it names that exist right now
};

// Splits SQL into statements with PostgreSQL's parser (a syntax error is raised as 42601).
std::vector<Statement> split_statements(const std::string &sql);

struct Limits {
    int lock_timeout_ms = 1000;
    int statement_timeout_ms = 0;  // 0: none
    int max_retries = 10;
};

struct Failure {
    std::string sqlstate;
    std::string message;
    std::optional<std::string> detail, hint, context;
    int statement = 0;           // the statement that failed; 0 when validation failed
    ErrorData *error = nullptr;  // the server's error, re-raised as is when present
};

struct RunResult {
    bool ok = false;
    int attempts = 0;
    int statements_done = 0;
    std::vector<std::string> lock_waits;  // JSON objects
    std::vector<std::string> affected;    // JSON objects (see capture.hpp)
    std::optional<Failure> failure;
};

// Runs the statements in the caller's transaction: each attempt in a subtransaction with the
// lock_timeout, retried with backoff on 55P03 (the subtransaction is rolled back first, so
// no lock is held while sleeping); validation rules, then `gate` (when given: a failure it
// returns fails the attempt), run before the attempt is kept.  With keep = false (a dry
// run) a successful attempt is rolled back too.
RunResult run_transactional(const std::vector<Statement> &statements, const Limits &limits,
                            const std::optional<std::string> &validation_rules, bool keep,
                            const std::function<std::optional<Failure>()> &gate = {});

// Runs each statement as a top-level command through the statement runner (each commits on
// its own), with the same lock-timeout retries; progress(n) after statement n completes.
RunResult run_one_by_one(const std::vector<Statement> &statements, const Limits &limits,
                         const std::function<void(int)> &progress);

// Runs validation rules (JSON array, the validate_data_integrity format); a FAIL or ERROR
// result becomes a failure (23514).  Their locks wait at most lock_timeout_ms (55P03).
std::optional<Failure> check_rules(pg::Spi &spi, const std::string &rules, int lock_timeout_ms);

// Serialises migrations of this database: a transaction-scoped advisory lock, waited for
// up to lock_timeout_ms; 55P03 naming the holder's pid otherwise.
void acquire_migration_lock(int lock_timeout_ms);

// The pause before retry `attempt` after a lock timeout: exponential with jitter (50 ms
// doubling, capped at 5 s), the same for statements, backups and rules.
long lock_retry_backoff_ms(int attempt);

// Milliseconds of a duration option ("500ms", "2s"); 22023 naming the option when invalid.
int duration_ms(const std::string &text, const char *option);

std::string sha256_hex(const std::string &data);

// Failure as the server reported it.
Failure failure_from(const pg::PgError &error, int statement);

}  // namespace virtuoso::migrate
