// Index advisor, pure part: candidate generation from a neutral description of analysed
// queries, B-tree size estimation, and set selection (greedy benefit per byte, and an
// exhaustive search used by tests and the benchmark).  No postgres.h here: the server side
// (pg_*.cpp) describes queries and tables and supplies the what-if costing as a callback.
#pragma once

#include "db_virtuoso/core/json_text.hpp"
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace virtuoso::advisor {

using TableId = uint32_t;  // a relation OID on the server side
using AttrNum = int;

// How a query uses a column (only uses a B-tree can serve are described).
enum class UseKind { Equality, Range, Sort, Join, IsNull, IsNotNull };

struct ColumnUse {
    AttrNum attnum = 0;
    UseKind kind = UseKind::Equality;
};

// What one analysed statement does with one table.
struct TableUse {
    TableId table = 0;
    std::vector<ColumnUse> uses;      // in query order; sort uses in ORDER BY order
    std::vector<AttrNum> referenced;  // every column read (for covering variants)
};

struct QueryDesc {
    std::vector<TableUse> tables;
    double weight = 1;  // calls (or total time) of the statement
};

struct ColumnInfo {
    std::string name;
    double avg_width = 4;      // bytes, as stored (after TOAST compression); of non-NULL values
    int align = 4;             // typalign in bytes: 1, 2, 4 or 8
    bool varlena = false;      // typlen -1: values under 127 bytes are stored unaligned
    bool deduplicates = true;  // B-tree deduplication allowed (equality implies same image)
    double n_distinct = -1;    // pg_stats convention: < 0 is a fraction of the rows
    double null_frac = 0;
    bool btree = true;  // has a default B-tree operator class
};

struct ExistingIndex {
    std::vector<AttrNum> keys;
    std::vector<AttrNum> include;
    bool partial = false;
};

struct TableInfo {
    std::string name;  // schema-qualified, quoted
    double tuples = 0;
    double pages = 0;
    // Rows the workload's INSERT, UPDATE and DELETE statements wrote to the table
    // (pg_stat_statements rows, the same period as the reads): each maintains every index.
    double writes = 0;
    std::map<AttrNum, ColumnInfo> columns;
    std::vector<ExistingIndex> existing;
    // A sample of rows for the columns the workload may index (a hash per value, 0 for NULL;
    // every vector the same length), to find columns that are functions of another: the
    // planner's statistics cannot tell (grp, grp % 20) from two independent columns.
    std::map<AttrNum, std::vector<uint64_t>> sample;
    // The sample holds whole pages (a large table): rows stored together were sampled
    // together, so it tells dependencies but not how many combinations there are.
    bool sample_by_page = false;
    // determines(a, b) answers already worked out from the sample.
    mutable std::map<std::pair<AttrNum, AttrNum>, bool> determines_cache;
    // sampled_combinations(cols) answers already worked out from the sample.
    mutable std::map<std::vector<AttrNum>, double> combinations_cache;
};

// Whether column b is (almost always) a function of column a in the table's sample: at least
// 95% of the sampled rows whose value of a repeats agree with the most common value of b for
// it, and enough such rows to tell (false without a sample).
bool determines(const TableInfo &t, AttrNum a, AttrNum b);

// How many equally likely combinations of values of these columns the table's rows fall
// into (those with every one of them non-NULL), as the table's sample shows them: the count
// C whose Poisson occupancy C * (1 - exp(-n / C)) by the n sampled rows gives the distinct
// combinations seen.  Infinity when the sample cannot tell (no sample, a sample of whole
// pages, fewer than two rows, or no combination seen twice): the columns then count as
// independent.  Correlated columns
// that are no function of one another, such as (part, supplier) where each supplier
// delivers only some parts, have far fewer combinations than their n_distinct multiplied.
double sampled_combinations(const TableInfo &t, const std::vector<AttrNum> &cols);

using Tables = std::map<TableId, TableInfo>;

// A partial-index predicate on a column: "col IS NULL" or "col IS NOT NULL".
struct PartialPredicate {
    AttrNum attnum = 0;
    bool is_null = false;
    bool operator==(const PartialPredicate &o) const {
        return attnum == o.attnum && is_null == o.is_null;
    }
};

struct BtreeSize {
    double tuples = 0;
    uint64_t pages = 0;   // including the metapage
    int tree_height = 0;  // levels above the leaves
    uint64_t bytes() const { return pages * 8192ULL; }
};

struct Candidate {
    TableId table = 0;
    std::vector<AttrNum> keys;
    std::vector<AttrNum> include;
    std::optional<PartialPredicate> predicate;
    std::vector<size_t> queries;  // statements using its leading column (sorted): all it can serve
    BtreeSize size;
};

// The B-tree size of a (hypothetical) index over table t as CREATE INDEX builds it: leaf
// tuples (8-byte header, 16 with a NULL bitmap, each column at its alignment, short varlenas
// unaligned, MAXALIGNed) with their 4-byte line pointers; deduplication of repeated keys into
// posting lists of at most 812 bytes (PostgreSQL 13+; not for INCLUDE indexes nor for keys
// whose type forbids it, e.g. numeric); the groups of one column from n_distinct, of several
// columns from the product of their n_distinct as if independent (a Poisson count of rows per
// combination), leaving out a column the sample shows to be a function of another key column,
// and no more combinations than the sample shows (sampled_combinations), nor fewer than the
// most distinct column has values; leaf pages filled to 90%, inner pages to 70%, and the
// metapage.
BtreeSize estimate_btree_size(const TableInfo &t, const std::vector<AttrNum> &keys,
                              const std::vector<AttrNum> &include,
                              const std::optional<PartialPredicate> &predicate);

// Candidates for a workload: per statement and table, equality → range → sort (or join)
// orderings of up to max_columns columns, covering (INCLUDE) and IS [NOT] NULL partial
// variants; merged across statements, minus those an existing index covers as a prefix.
std::vector<Candidate> generate_candidates(const std::vector<QueryDesc> &queries,
                                           const Tables &tables, int max_columns = 3);

// true when `prefix` is served by `index`: same predicate (or the index has none), keys a
// prefix, and INCLUDE columns all present in the index.  This contains the rule of view
// virtuoso.redundant_indexes (same predicate, keys a leading prefix, every column present;
// for B-tree indexes with default operator classes, collations and orders, as the advisor's
// are): the selection never keeps two indexes of which one covers the other.
bool covered_by(const Candidate &prefix, const std::vector<AttrNum> &keys,
                const std::vector<AttrNum> &include, const std::optional<PartialPredicate> &pred);

// The rule of view virtuoso.redundant_indexes for two plain B-tree indexes of one table:
// `redundant` has the same predicate, its keys are a leading prefix of `covering`'s, and all
// its columns are among `covering`'s.
bool redundant_by_view_rule(const std::vector<AttrNum> &redundant_keys,
                            const std::vector<AttrNum> &redundant_include,
                            const std::optional<PartialPredicate> &redundant_pred,
                            const std::vector<AttrNum> &covering_keys,
                            const std::vector<AttrNum> &covering_include,
                            const std::optional<PartialPredicate> &covering_pred);

// What the planner says about one statement with a set of hypothetical indexes.
struct PlanCost {
    double cost = 0;
    std::vector<size_t> used;  // candidates (indexes into the candidate list) the plan uses
};
// (statement, candidates on its tables) -> cost; the server plans with the real planner.
using CostFn = std::function<PlanCost(size_t query, const std::vector<size_t> &candidates)>;

// Without a storage budget, a step must save at least this share of the workload's cost per
// share of the data's size its index takes (net of the indexes it replaces): an index as
// large as a tenth of the tables the workload reads must save at least 1% of the workload's
// estimated cost.  Lower steps are not worth their storage and maintenance: the default
// answer stays lean.
constexpr double kDefaultMinBenefitPerByteShare = 0.1;
// Two steps whose scores differ by less than this share are a tie, broken by a stable order
// (smaller index, then table, keys, INCLUDE columns, predicate), so that sampling noise of
// ANALYZE does not flip the choice between near-equal indexes.
constexpr double kTieTolerance = 0.02;

struct SelectionOptions {
    double min_improvement_pct = 10;  // per step, over the statements the step improves
    // per step, of the whole workload's cost (no crumbs); under a storage budget, once
    // nothing above it fits or swaps, what is left of the budget goes to smaller steps too
    double min_workload_pct = 0.1;
    size_t max_indexes = 20;
    // Storage budget: the summed estimated size of the chosen indexes stays within it.  When
    // unset, min_benefit_per_byte_share ends the selection instead.
    std::optional<double> max_bytes;
    double min_benefit_per_byte_share = kDefaultMinBenefitPerByteShare;
    // Extend's step: a chosen index may grow by one key column used by the statements it
    // serves (up to max_key_columns keys), and chosen indexes with the same or prefix keys
    // merge their INCLUDE columns; the grown candidates are appended to the candidate list.
    bool widen = true;
    size_t max_key_columns = 4;
    // Write cost: each row written to a table costs each of its indexes one B-tree descent
    // and a leaf page, priced as the planner prices one index probe (random_page_cost, and
    // 50 * cpu_operator_cost per level, as btcostestimate's descent charge); weight_per_call
    // turns it into the workload's weights (1 when weighted by calls).
    double random_page_cost = 4;
    double cpu_operator_cost = 0.0025;
    double weight_per_call = 1;
};

// The weighted maintenance cost an index adds to the workload (see SelectionOptions).
double maintenance_cost(const Candidate &c, const TableInfo &t, const SelectionOptions &options);

struct Recommendation {
    size_t candidate = 0;
    std::vector<size_t> queries;  // statements whose final plan uses it
    double weight = 0;            // their summed weight (calls)
    double cost_before = 0;       // weighted cost of those statements without any new index
    double cost_after = 0;        // ... with the whole recommended set
    std::vector<double> query_before, query_after;  // per statement of `queries`, unweighted
    double improvement_pct() const {
        return cost_before > 0 ? 100 * (cost_before - cost_after) / cost_before : 0;
    }
};

struct Selection {
    std::vector<size_t> chosen;  // candidate indexes, in the order they were chosen
    std::vector<Recommendation> recommendations;  // same order
    double workload_before = 0;                   // weighted cost of the whole workload
    double workload_after = 0;
    size_t plans = 0;  // what-if plans asked for
};

// Greedy selection by benefit per byte over the weighted workload.  A step must improve the
// statements it improves by min_improvement_pct; a candidate that extends a chosen one
// replaces it; the maintenance cost of the writes to its table is taken off its benefit
// (and that of the indexes it replaces given back).  With
// options.widen, candidates grown from chosen ones are appended to `candidates` (the cost
// function must look them up there).  Ties are broken by a stable order (kTieTolerance).
Selection select_greedy(const std::vector<QueryDesc> &queries, std::vector<Candidate> &candidates,
                        const Tables &tables, const CostFn &cost, const SelectionOptions &options);

// The reference Extend algorithm (Schlosser et al.): from single-column candidates on the
// columns the statements use, each step adds the single-column index or the one-column
// extension of a chosen index with the largest cost reduction per additional byte, within
// max_bytes, until no step reduces the cost.  Appends the candidates it creates.  For the
// benchmark: the same what-if costing, another search.
Selection select_extend(const std::vector<QueryDesc> &queries, std::vector<Candidate> &candidates,
                        const Tables &tables, const CostFn &cost, double max_bytes,
                        size_t max_key_columns = 4);

// Normalised statement text (pg_stat_statements) rewritten where a $n stands in a position
// the grammar allows only a constant or keyword: "extract($1 FROM x)" gets a field name,
// "date $1", "interval $1 day" and the like become casts.  The same text when nothing applies.
std::string repair_normalised(const std::string &sql);

// Highest $n in the text (0 when none).
int parameter_count(const std::string &sql);

using core::json_quote;

// The subset of `subset_of` with the largest weighted cost reduction (ties: fewest indexes),
// by trying every subset; statements are independent across groups of tables they join, so
// each group is searched separately.  For tests and the benchmark (2^k plans per group).
Selection select_exhaustive(const std::vector<QueryDesc> &queries,
                            const std::vector<Candidate> &candidates,
                            const std::vector<size_t> &subset_of, const CostFn &cost);

// The `per_group` candidates with the largest single-index benefit in each group of joined
// tables (those with no benefit left out): the candidate set the benchmark hands to both
// the greedy and the exhaustive search.
std::vector<size_t> top_candidates_per_group(const std::vector<QueryDesc> &queries,
                                             const std::vector<Candidate> &candidates,
                                             const CostFn &cost, size_t per_group);

// Weighted workload cost of a set of candidates (with per-index attribution).
Selection evaluate_set(const std::vector<QueryDesc> &queries,
                       const std::vector<Candidate> &candidates, const std::vector<size_t> &chosen,
                       const CostFn &cost);

// "CREATE INDEX CONCURRENTLY ON t USING btree (a, b) INCLUDE (c) WHERE d IS NULL"
std::string index_definition(const Candidate &c, const TableInfo &t,
                             const std::function<std::string(const std::string &)> &quote);

}  // namespace virtuoso::advisor
