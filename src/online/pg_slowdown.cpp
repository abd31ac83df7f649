// Throttling on other sessions' queries (see slowdown.hpp).
#include "db_virtuoso/online/slowdown.hpp"

#include <algorithm>
#include <cctype>

#include "db_virtuoso/advisor/pg_whatif.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/snapmgr.h"
#include "utils/lsyscache.h"
}

namespace virtuoso::online {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kLookInterval = std::chrono::seconds(1);  // at most one look per second
constexpr int kPausedLookMs = 1000;
constexpr int kMaxSilentLooks = 10;  // paused and no statement completed for this long: go on

bool references_walker(Node *node, void *relid);
// PostgreSQL 15 declares walkers as bool (*)() (C: any arguments).
auto walker() {
    return reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(references_walker));
}

bool references_walker(Node *node, void *relid) {
    if (node == nullptr) return false;
    if (IsA(node, RangeTblEntry)) {
        auto *rte = reinterpret_cast<RangeTblEntry *>(node);
        return rte->rtekind == RTE_RELATION && rte->relid == *static_cast<Oid *>(relid);
    }
    if (IsA(node, Query))
        return query_tree_walker(reinterpret_cast<Query *>(node), walker(), relid,
                                 QTW_EXAMINE_RTES_BEFORE);
    return expression_tree_walker(node, walker(), relid);
}

// Whether the statement (analysed and rewritten as the role that ran it: views expand)
// reads or writes the relation.  Statements that no longer analyse are not watched.
bool references(const advisor::WorkloadStatement &st, Oid relid) {
    try {
        pg::SubTransaction scope;  // the analysis' locks and memory go with it
        List *queries = advisor::analyse_statement(st.text, st.role);
        bool found = pg::pg_call([queries, relid]() mutable {
            ListCell *lc;
            foreach (lc, queries)
                if (references_walker(static_cast<Node *>(lfirst(lc)), &relid)) return true;
            return false;
        });
        scope.rollback();
        return found;
    } catch (const pg::PgError &e) {
        if (pg::ends_the_call(e.sqlstate())) throw;
        return false;
    } catch (const pg::UserError &) {
        return false;
    }
}

// A snapshot for read-only SPI (the workload reader) in a procedure that has committed.
class ActiveSnapshot {
  public:
    ActiveSnapshot() {
        pg::pg_call([] { PushActiveSnapshot(GetTransactionSnapshot()); });
    }
    ~ActiveSnapshot() { PopActiveSnapshot(); }
    ActiveSnapshot(const ActiveSnapshot &) = delete;
    ActiveSnapshot &operator=(const ActiveSnapshot &) = delete;
};

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

}  // namespace

QuerySlowdown::QuerySlowdown(Oid relid, double max_factor) : max_factor_(max_factor) {
    if (max_factor_ <= 0) return;
    relation_ = pg::qualified_relation_name(relid);
    ActiveSnapshot snapshot;
    std::vector<advisor::WorkloadStatement> workload;
    size_t skipped = 0;
    try {
        workload = advisor::read_workload(advisor::WorkloadQuery{}, &skipped);
    } catch (const pg::UserError &e) {
        pg::report(WARNING,
                   fmt::format("virtuoso.batch_max_slowdown is set but not applied: {}", e.what()));
        return;
    }
    {
        pg::InternalSql spi;
        function_ = *spi.scalar(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.pg_stat_statements' FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'");
    }
    // Only statements naming the table (or a view, whose text may not) can touch it;
    // analysing the others would be wasted.  The view case is left to the name check of the
    // text: a statement on a view over the table is watched only if it names the table.
    std::string name = lower(pg::pg_call([relid] { return std::string(get_rel_name(relid)); }));
    size_t statements = 0;
    for (const advisor::WorkloadStatement &st : workload) {
        if (st.calls < 1 || st.total_ms <= 0) continue;
        if (lower(st.text).find(name) == std::string::npos) continue;
        if (!references(st, relid)) continue;
        ++statements;
        for (int64_t id : st.queryids)
            base_mean_ms_[{st.role, id}] = st.total_ms / static_cast<double>(st.calls);
        pg::pg_call([] { CHECK_FOR_INTERRUPTS(); });
    }
    if (base_mean_ms_.empty()) {
        pg::report(
            NOTICE,
            fmt::format("virtuoso.batch_max_slowdown: no statement on {} in "
                        "pg_stat_statements{}; the job is not throttled on query slowdown",
                        relation_,
                        skipped ? fmt::format(" ({} of other roles not read)", skipped) : ""));
        return;
    }
    reference_ = read_counters();
    last_look_ = Clock::now();
    looked_ = true;
    pg::report(NOTICE, fmt::format("virtuoso.batch_max_slowdown: watching {} statement{} on {}; "
                                   "the job pauses while they run more than {}x slower than "
                                   "before it started",
                                   statements, statements == 1 ? "" : "s", relation_, max_factor_));
}

std::map<QuerySlowdown::Key, QuerySlowdown::Counters> QuerySlowdown::read_counters() {
    std::string ids = "{";
    for (const auto &[key, mean] : base_mean_ms_)
        ids += (ids.size() > 1 ? "," : "") + std::to_string(key.second);
    ids += "}";
    pg::InternalSql spi;
    // showtext => false: the numbers only, not the query texts' file.
    auto result = spi.execute(
        fmt::format("SELECT userid::text, queryid::text, sum(calls)::text, "
                    "sum(total_exec_time)::text FROM {}(false) WHERE toplevel AND dbid = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND queryid = ANY ($1::bigint[]) GROUP BY userid, queryid",
                    function_),
        {ids});
    std::map<Key, Counters> out;
    for (const auto &row : result.rows) {
        Key key{static_cast<Oid>(std::stoul(*row[0])), std::stoll(*row[1])};
        if (base_mean_ms_.count(key) == 0) continue;  // same queryid, another role
        out[key] = Counters{std::stoll(*row[2]), std::stod(*row[3])};
    }
    return out;
}

std::optional<double> QuerySlowdown::sample() {
    std::map<Key, Counters> now = read_counters();
    last_look_ = Clock::now();
    double expected = 0, actual = 0;
    for (const auto &[key, c] : now) {
        auto ref = reference_.find(key);
        Counters before = ref == reference_.end() ? Counters{} : ref->second;
        int64_t calls = c.calls - before.calls;
        double ms = c.total_ms - before.total_ms;
        if (calls < 0 || ms < 0) {  // reset or evicted and back: a new window from here
            reference_ = std::move(now);
            return std::nullopt;
        }
        expected += static_cast<double>(calls) * base_mean_ms_[key];
        actual += ms;
    }
    // No statement completed since the last look: the window grows until one does.
    if (expected <= 0) return std::nullopt;
    reference_ = std::move(now);
    return actual / expected;
}

void QuerySlowdown::wait(pg::Progress &progress) {
    if (!looked_ || Clock::now() - last_look_ < kLookInterval) return;
    std::optional<double> factor = sample();
    if (!factor || *factor <= max_factor_) return;
    std::string reason = fmt::format("queries on {} {:.1f}x slower than before the job (> {}x)",
                                     relation_, *factor, max_factor_);
    pg::report(NOTICE, fmt::format("pausing: {}", reason));
    progress.pause(reason);
    auto started = Clock::now();
    for (int silent = 0; silent < kMaxSilentLooks;) {
        pg::interruptible_sleep(kPausedLookMs);
        factor = sample();
        if (!factor) {
            ++silent;
            continue;
        }
        silent = 0;
        if (*factor <= max_factor_) break;
        reason = fmt::format("queries on {} {:.1f}x slower than before the job (> {}x)", relation_,
                             *factor, max_factor_);
        progress.pause(reason);
    }
    progress.resume();
    pg::report(NOTICE,
               fmt::format("resuming after {:.1f} s: queries on {} {}",
                           std::chrono::duration<double>(Clock::now() - started).count(), relation_,
                           factor ? fmt::format("{:.1f}x of their time before the job", *factor)
                                  : std::string("completed none for a while")));
}

}  // namespace virtuoso::online
