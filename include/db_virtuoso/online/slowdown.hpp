// Throttling on other sessions' queries: a batched copy or backfill pauses while the
// statements that touch its table run slower than before the job started (the in-database
// counterpart of pt-online-schema-change's --max-load and gh-ost's thresholds, measured on
// the statements themselves rather than on a server-wide load figure).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "db_virtuoso/pg/postgres.hpp"
#include "db_virtuoso/pg/progress.hpp"

namespace virtuoso::online {

class QuerySlowdown {
  public:
    // Finds, once, the top-level statements of pg_stat_statements (this database, roles
    // whose privileges the caller has) whose query reads or writes `relid`; their mean
    // execution time so far is the baseline.  max_factor <= 0, or no such statement, or no
    // pg_stat_statements: watches nothing (and says so in a NOTICE or WARNING).
    QuerySlowdown(Oid relid, double max_factor);

    // Before a batch: at most once per interval, compares the statements' mean time since
    // the last look with their baseline; above max_factor, pauses (the reason in progress,
    // a NOTICE when it starts and ends) until a look finds them fast again.
    void wait(pg::Progress &progress);

    bool watching() const { return !base_mean_ms_.empty(); }

    // Ratio of the time the statements completed since the last look took to the time they
    // took on average before the job; nullopt when none completed since (no evidence).
    std::optional<double> sample();

  private:
    using Key = std::pair<Oid, int64_t>;  // userid, queryid
    struct Counters {
        int64_t calls = 0;
        double total_ms = 0;
    };
    std::map<Key, Counters> read_counters();

    double max_factor_;
    std::string relation_;  // for messages
    std::string function_;  // schema-qualified pg_stat_statements(boolean)
    std::map<Key, double> base_mean_ms_;
    std::map<Key, Counters> reference_;  // counters at the start of the current window
    std::chrono::steady_clock::time_point last_look_;
    bool looked_ = false;
};

}  // namespace virtuoso::online
