// Index advisor, server side: analysing statements, describing them and their tables for
// the pure advisor, and what-if planning with hypothetical indexes.
#pragma once

#include <set>

#include "db_virtuoso/advisor/advisor.hpp"
#include "db_virtuoso/pg/guard.hpp"

namespace virtuoso::advisor {

// A hypothetical B-tree index as the planner is to see it.
struct Hypothetical {
    Oid table = InvalidOid;
    std::vector<AttrNum> keys;
    std::vector<AttrNum> include;
    std::optional<PartialPredicate> predicate;
    BtreeSize size;
    double tuple_fraction = 1;  // share of the table's rows a partial index holds
};

// Levels above the leaves a B-tree can have: at most 2^32 pages, two or more downlinks on
// every inner page.  Also keeps the planner's descent cost, (height + 1) * ..., finite.
constexpr int kMaxTreeHeight = 32;

// Parses and analyses one statement ($n parameters get their types inferred) and rewrites
// it, as `role` inside a security-restricted operation.  Returns NIL (allocated nothing)
// when it is not SELECT/INSERT/UPDATE/DELETE.  Raises PgError on any failure.  The Query
// trees live in CurrentMemoryContext.  param_types: types of $1.. given (InvalidOid: inferred).
List *analyse_statement(const std::string &sql, Oid role, const std::vector<Oid> &param_types = {});

// Plans the (rewritten) queries of one statement generically, with the hypothetical
// indexes added, and returns the summed total cost and which hypotheticals the plans use.
// Planning runs as `role` (the role that ran the statement) inside a security-restricted
// operation: the functions it folds are that role's code and get that role's rights only.
// check_permissions: raise 42501 as the executor would when `role` may not read a table.
// shape: when given, gets the shape of the plans (node types, relations, indexes; no costs),
// e.g. "Bitmap Heap Scan on public.t(Bitmap Index Scan using t_a_idx)".
PlanCost plan_with(List *queries, const std::vector<Hypothetical> &indexes, Oid role,
                   bool check_permissions = false, std::string *shape = nullptr);

// A statement of the workload in pg_stat_statements, with the role that ran it.
struct WorkloadStatement {
    std::string text;
    Oid role = InvalidOid;  // that ran it: it is analysed and planned as this role
    int64_t calls = 1;
    double total_ms = 0;  // total execution time
    double weight = 1;
    double rows = 0;  // rows it returned or wrote
    std::vector<int64_t> queryids;  // its entries' queryids (to follow their counters)
};
struct WorkloadQuery {
    int64_t min_calls = 1;
    bool weight_by_total_time = false;  // else by calls
    bool order_by_total_time = false;   // else by calls, most first
};
// Top-level statements of pg_stat_statements in this database, by role and text.  Only
// statements of roles whose privileges the caller has (and that still exist) are returned:
// planning runs them as that role; *skipped counts the others.  55000 without
// pg_stat_statements.
std::vector<WorkloadStatement> read_workload(const WorkloadQuery &query, size_t *skipped);

// Whether the caller has the privileges of the role (which still exists).
bool may_act_as(Oid role);

// Starts a run of what-if plans: forgets what earlier runs cached about operator classes.
void begin_costing();

// Nanoseconds spent in plan_with and number of plans, since the process started.
struct PlanCounters {
    uint64_t plans = 0;
    uint64_t nanoseconds = 0;
};
PlanCounters plan_counters();

// What the statement does with each table; tables that cannot get an index (catalogs,
// views, foreign, temporary, partitioned parents) are left out.  whole_row lists the tables
// whose entire row the statement reads.
QueryDesc describe_statement(List *queries, std::vector<TableId> *whole_row);

// Sizes, column statistics, existing B-tree indexes and write share of a table.
TableInfo describe_table(Oid relid);

// Fills info.sample with a small sample of rows for these columns (at least two B-tree ones),
// read as the caller with TABLESAMPLE SYSTEM (fixed seed, about 30,000 rows and at most
// 3,000 pages).  Left empty, and the estimate as without it, where the caller may not read the
// whole table (no SELECT, row-level security) or a value cannot be read.
void sample_table(Oid relid, const std::set<AttrNum> &columns, TableInfo &info);

}  // namespace virtuoso::advisor
