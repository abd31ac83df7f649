// Index advisor, pure part (see advisor.hpp).
#include "db_virtuoso/advisor/advisor.hpp"

#include "db_virtuoso/core/sql_lexer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <set>
#include <tuple>
#include <unordered_map>

namespace virtuoso::advisor {
namespace {

// PostgreSQL's on-disk constants (default build, 8 kB pages), as CREATE INDEX lays out a
// B-tree (nbtsort.c).
constexpr double kPageSize = 8192;
constexpr double kPageHeader = 24;       // SizeOfPageHeaderData
constexpr double kBtreeSpecial = 16;     // sizeof(BTPageOpaqueData)
constexpr double kIndexTupleHeader = 8;  // sizeof(IndexTupleData)
constexpr double kNullTupleHeader = 16;  // ... + IndexAttributeBitMapData, MAXALIGNed
constexpr double kLinePointer = 4;       // sizeof(ItemIdData)
constexpr double kHeapTid = 6;           // one TID in a posting list
// A page is full when less than (100 - fillfactor)% of it is free: 90 for leaves
// (BTREE_DEFAULT_FILLFACTOR), 70 for inner pages (BTREE_NONLEAF_FILLFACTOR).
constexpr double kLeafFree = 819;    // BLCKSZ * (100 - 90) / 100
constexpr double kInnerFree = 2457;  // BLCKSZ * (100 - 70) / 100
// A posting list tuple built by CREATE INDEX: MAXALIGN_DOWN(BLCKSZ / 10) - sizeof(ItemIdData).
constexpr double kMaxPostingBytes = 812;
// A varlena value of up to 126 data bytes is stored with a 1-byte header, unaligned.
constexpr double kShortVarlena = 127;
// Nullable columns whose NULL patterns are enumerated (2^n cases); further ones count as
// never NULL.
constexpr size_t kMaxNullableEnumerated = 8;
// Bounds of the swap phase of the greedy selection: swaps, and what-if plans at least allowed.
constexpr size_t kMaxSwaps = 10;
constexpr size_t kMinSwapPlans = 2000;
// No candidate (an index into the candidate list).
constexpr size_t kNoCandidate = std::numeric_limits<size_t>::max();

double align_up(double offset, int align) {
    double a = align > 0 ? align : 1;
    return std::ceil(offset / a) * a;
}

const ColumnInfo *column(const TableInfo &t, AttrNum attnum) {
    auto it = t.columns.find(attnum);
    return it == t.columns.end() ? nullptr : &it->second;
}

// MAXALIGNed size of an index tuple holding these columns, those flagged in `null` absent.
double tuple_bytes_if(const TableInfo &t, const std::vector<AttrNum> &cols,
                      const std::vector<bool> &null) {
    bool any_null = std::find(null.begin(), null.end(), true) != null.end();
    double offset = any_null ? kNullTupleHeader : kIndexTupleHeader;
    for (size_t i = 0; i < cols.size(); ++i) {
        if (null[i]) continue;
        const ColumnInfo *c = column(t, cols[i]);
        double width = c ? std::max(c->avg_width, 1.0) : 4;
        if (c && c->varlena) {
            width += 0.5;  // pg_stats.avg_width is truncated to whole bytes
            if (width <= kShortVarlena) {
                offset += width;  // 1-byte header, no alignment
                continue;
            }
        }
        offset = align_up(offset, c ? c->align : 4);
        offset += width;
    }
    return align_up(offset, 8);
}

// Calls f(probability, null) for each pattern of NULLs among these columns that their
// null_frac make possible (only the first kMaxNullableEnumerated nullable columns vary).
template <typename F>
void for_null_patterns(const TableInfo &t, const std::vector<AttrNum> &cols, F f) {
    std::vector<size_t> nullable;
    for (size_t i = 0; i < cols.size(); ++i) {
        const ColumnInfo *c = column(t, cols[i]);
        if (c && c->null_frac > 0 && nullable.size() < kMaxNullableEnumerated)
            nullable.push_back(i);
    }
    for (uint32_t mask = 0; mask < (1u << nullable.size()); ++mask) {
        std::vector<bool> null(cols.size(), false);
        double p = 1;
        for (size_t j = 0; j < nullable.size(); ++j) {
            double frac = std::clamp(column(t, cols[nullable[j]])->null_frac, 0.0, 1.0);
            bool is_null = (mask >> j) & 1u;
            null[nullable[j]] = is_null;
            p *= is_null ? frac : 1 - frac;
        }
        if (p > 0) f(p, null);
    }
}

// Expected MAXALIGNed size of an index tuple holding these columns, over their NULL
// patterns (a NULL takes no data but adds the NULL bitmap).
double tuple_bytes(const TableInfo &t, const std::vector<AttrNum> &cols) {
    double expected = 0;
    for_null_patterns(t, cols, [&](double p, const std::vector<bool> &null) {
        expected += p * tuple_bytes_if(t, cols, null);
    });
    return expected;
}

// Leaf bytes (tuples and line pointers) of one group of k equal keys, each key tuple `key`
// bytes: a plain tuple for one, else posting list tuples of at most kMaxPostingBytes.
double group_bytes(double key, uint64_t k) {
    if (k == 0) return 0;
    if (k == 1) return key + kLinePointer;
    double per_posting = std::floor((kMaxPostingBytes - key) / kHeapTid);
    if (per_posting < 2) return k * (key + kLinePointer);  // key too wide for a posting list
    uint64_t full = k / static_cast<uint64_t>(per_posting);
    uint64_t rest = k % static_cast<uint64_t>(per_posting);
    double bytes = full * (align_up(key + per_posting * kHeapTid, 8) + kLinePointer);
    if (rest == 1) bytes += key + kLinePointer;
    if (rest > 1) bytes += align_up(key + rest * kHeapTid, 8) + kLinePointer;
    return bytes;
}

// The same for a group of k (not a whole number) rows: between the neighbouring counts.
double group_bytes(double key, double k) {
    double lo = std::floor(std::max(k, 0.0));
    double below = group_bytes(key, static_cast<uint64_t>(lo));
    return below + (k - lo) * (group_bytes(key, static_cast<uint64_t>(lo) + 1) - below);
}

double distinct_values(const TableInfo &t, AttrNum a, double rows) {
    const ColumnInfo *c = column(t, a);
    if (!c || c->n_distinct == 0) return std::max(rows, 1.0);  // unknown: assume unique
    double nd = c->n_distinct < 0 ? -c->n_distinct * t.tuples : c->n_distinct;
    return std::clamp(nd, 1.0, std::max(rows, 1.0));
}

bool contains(const std::vector<AttrNum> &v, AttrNum a) {
    return std::find(v.begin(), v.end(), a) != v.end();
}

bool is_prefix(const std::vector<AttrNum> &prefix, const std::vector<AttrNum> &of) {
    return prefix.size() <= of.size() && std::equal(prefix.begin(), prefix.end(), of.begin());
}

void push_unique(std::vector<AttrNum> &v, AttrNum a) {
    if (!contains(v, a)) v.push_back(a);
}

// Every statement that uses the leading column of an index on `table` may use it.
void add_serving_queries(Candidate &c, const std::vector<QueryDesc> &queries) {
    for (size_t q = 0; q < queries.size(); ++q)
        for (const TableUse &tu : queries[q].tables)
            if (tu.table == c.table)
                for (const ColumnUse &u : tu.uses)
                    if (u.attnum == c.keys.front()) c.queries.push_back(q);
    std::sort(c.queries.begin(), c.queries.end());
    c.queries.erase(std::unique(c.queries.begin(), c.queries.end()), c.queries.end());
}

// A stable order of candidates, independent of the order they were found in: fewer
// columns first, then table, keys, INCLUDE columns and predicate.
bool canonical_less(const Candidate &a, const Candidate &b) {
    auto key = [](const Candidate &c) {
        return std::make_tuple(c.keys.size() + c.include.size(), c.table, c.keys, c.include,
                               c.predicate ? c.predicate->attnum : 0,
                               c.predicate ? (c.predicate->is_null ? 2 : 1) : 0);
    };
    return key(a) < key(b);
}

bool same_index(const Candidate &a, const Candidate &b) {
    return a.table == b.table && a.keys == b.keys && a.include == b.include &&
           a.predicate == b.predicate;
}

// Appends c (keys, include, predicate set) unless the list has it; returns whether it did.
bool append_candidate(std::vector<Candidate> &candidates, Candidate c,
                      const std::vector<QueryDesc> &queries, const Tables &tables) {
    auto tit = tables.find(c.table);
    if (c.keys.empty() || tit == tables.end()) return false;
    std::vector<AttrNum> include;
    for (AttrNum a : c.include)
        if (!contains(c.keys, a) && !contains(include, a)) include.push_back(a);
    std::sort(include.begin(), include.end());
    c.include = std::move(include);
    for (const Candidate &o : candidates)
        if (same_index(o, c)) return false;
    for (const ExistingIndex &e : tit->second.existing)
        if (!e.partial && is_prefix(c.keys, e.keys) && c.include.empty()) return false;
    c.queries.clear();
    add_serving_queries(c, queries);
    c.size = estimate_btree_size(tit->second, c.keys, c.include, c.predicate);
    candidates.push_back(std::move(c));
    return true;
}

// Columns a B-tree key can use in the statements that may use candidate c, not yet its keys.
std::vector<AttrNum> extension_columns(const Candidate &c, const std::vector<QueryDesc> &queries,
                                       const Tables &tables) {
    std::set<AttrNum> cols;
    const TableInfo &t = tables.at(c.table);
    for (size_t q : c.queries)
        for (const TableUse &tu : queries[q].tables)
            if (tu.table == c.table)
                for (const ColumnUse &u : tu.uses) {
                    if (u.kind == UseKind::IsNull || u.kind == UseKind::IsNotNull) continue;
                    const ColumnInfo *col = column(t, u.attnum);
                    if (col && col->btree && !contains(c.keys, u.attnum)) cols.insert(u.attnum);
                }
    return {cols.begin(), cols.end()};
}

// Caches what-if plans: the cost of a statement depends only on the candidates that can
// serve it (Candidate::queries, sorted).
class CostCache {
  public:
    CostCache(const std::vector<QueryDesc> &queries, const std::vector<Candidate> &candidates,
              const CostFn &fn)
        : queries_(queries), candidates_(candidates), fn_(fn) {}

    const PlanCost &cost(size_t q, const std::vector<size_t> &config) {
        // Only candidates whose leading column the statement uses can change its plan.
        std::vector<size_t> relevant;
        for (size_t c : config) {
            const std::vector<size_t> &serves = candidates_[c].queries;
            if (std::binary_search(serves.begin(), serves.end(), q)) relevant.push_back(c);
        }
        std::sort(relevant.begin(), relevant.end());
        auto key = std::make_pair(q, relevant);
        auto it = cache_.find(key);
        if (it != cache_.end()) return it->second;
        ++plans_;
        return cache_.emplace(std::move(key), fn_(q, relevant)).first->second;
    }
    size_t plans() const { return plans_; }

  private:
    const std::vector<QueryDesc> &queries_;
    const std::vector<Candidate> &candidates_;
    const CostFn &fn_;
    struct KeyHash {
        size_t operator()(const std::pair<size_t, std::vector<size_t>> &k) const {
            size_t h = std::hash<size_t>()(k.first);
            for (size_t c : k.second) h = h * 1000003u ^ std::hash<size_t>()(c);
            return h;
        }
    };
    std::unordered_map<std::pair<size_t, std::vector<size_t>>, PlanCost, KeyHash> cache_;
    size_t plans_ = 0;
};

// Groups of tables that some statement joins (union-find): statements of different groups
// do not influence each other's plans.
class TableGroups {
  public:
    explicit TableGroups(const std::vector<QueryDesc> &queries) {
        for (const QueryDesc &q : queries)
            for (size_t i = 1; i < q.tables.size(); ++i)
                parent_[of(q.tables[i].table)] = of(q.tables[0].table);
    }
    TableId of(TableId t) {
        auto it = parent_.find(t);
        if (it == parent_.end()) return parent_[t] = t;
        return it->second == t ? t : (it->second = of(it->second));
    }

  private:
    std::map<TableId, TableId> parent_;
};

Selection evaluate_with(CostCache &cache, const std::vector<QueryDesc> &queries,
                        const std::vector<size_t> &chosen) {
    Selection s;
    s.chosen = chosen;
    for (size_t c : chosen) s.recommendations.push_back(Recommendation{c, {}, 0, 0, 0, {}, {}});
    for (size_t q = 0; q < queries.size(); ++q) {
        double w = queries[q].weight;
        double before = cache.cost(q, {}).cost;
        const PlanCost &after = cache.cost(q, chosen);
        s.workload_before += w * before;
        s.workload_after += w * after.cost;
        for (Recommendation &r : s.recommendations) {
            if (std::find(after.used.begin(), after.used.end(), r.candidate) == after.used.end())
                continue;
            r.queries.push_back(q);
            r.weight += w;
            r.cost_before += w * before;
            r.cost_after += w * after.cost;
            r.query_before.push_back(before);
            r.query_after.push_back(after.cost);
        }
    }
    s.plans = cache.plans();
    return s;
}

}  // namespace

bool determines(const TableInfo &t, AttrNum a, AttrNum b) {
    // Fewer repeating sampled rows than this and a chance agreement is too likely.
    constexpr size_t kMinEvidence = 50;
    constexpr double kMinAgreement = 0.95;
    auto cached = t.determines_cache.find({a, b});
    if (cached != t.determines_cache.end()) return cached->second;
    auto sa = t.sample.find(a), sb = t.sample.find(b);
    // Not cached without a sample: one may be taken later.
    if (a == b || sa == t.sample.end() || sb == t.sample.end()) return false;
    bool result = false;
    if (sa->second.size() == sb->second.size()) {
        std::vector<std::pair<uint64_t, uint64_t>> rows;
        rows.reserve(sa->second.size());
        for (size_t i = 0; i < sa->second.size(); ++i)
            if (sa->second[i] != 0 && sb->second[i] != 0)
                rows.emplace_back(sa->second[i], sb->second[i]);
        std::sort(rows.begin(), rows.end());
        size_t repeating = 0, agreeing = 0;
        for (size_t start = 0; start < rows.size();) {
            size_t end = start, most = 0;
            while (end < rows.size() && rows[end].first == rows[start].first) {
                size_t run = end;
                while (end < rows.size() && rows[end] == rows[run]) ++end;
                most = std::max(most, end - run);
            }
            if (end - start >= 2) {
                repeating += end - start;
                agreeing += most;
            }
            start = end;
        }
        result = repeating >= kMinEvidence &&
                 static_cast<double>(agreeing) >= kMinAgreement * static_cast<double>(repeating);
    }
    t.determines_cache[{a, b}] = result;
    return result;
}

double sampled_combinations(const TableInfo &t, const std::vector<AttrNum> &cols) {
    constexpr double kUnknown = std::numeric_limits<double>::infinity();
    std::vector<AttrNum> key = cols;
    std::sort(key.begin(), key.end());
    if (t.sample_by_page) return kUnknown;
    auto cached = t.combinations_cache.find(key);
    if (cached != t.combinations_cache.end()) return cached->second;
    std::vector<const std::vector<uint64_t> *> columns;
    for (AttrNum a : key) {
        auto it = t.sample.find(a);
        // Not cached without a sample: one may be taken later.
        if (it == t.sample.end()) return kUnknown;
        columns.push_back(&it->second);
    }
    size_t n = columns.empty() ? 0 : columns.front()->size();
    for (const auto *c : columns)
        if (c->size() != n) return kUnknown;
    std::vector<std::vector<uint64_t>> rows;
    rows.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        std::vector<uint64_t> row;
        for (const auto *c : columns) row.push_back((*c)[i]);
        if (std::find(row.begin(), row.end(), 0) == row.end()) rows.push_back(std::move(row));
    }
    std::sort(rows.begin(), rows.end());
    double sampled = static_cast<double>(rows.size());
    double distinct = static_cast<double>(std::unique(rows.begin(), rows.end()) - rows.begin());
    double result = kUnknown;
    if (sampled >= 2 && distinct < sampled) {
        // C * (1 - exp(-n / C)) grows with C from 0 towards n: bisection (on a log scale).
        auto occupied = [sampled](double c) { return c * -std::expm1(-sampled / c); };
        double lo = std::max(distinct, 1.0), hi = lo;
        while (occupied(hi) < distinct && hi < 1e18) hi *= 2;
        for (int i = 0; i < 100 && hi / lo > 1 + 1e-9; ++i) {
            double mid = std::sqrt(lo * hi);
            (occupied(mid) < distinct ? lo : hi) = mid;
        }
        result = hi;
    }
    t.combinations_cache[key] = result;
    return result;
}

BtreeSize estimate_btree_size(const TableInfo &t, const std::vector<AttrNum> &keys,
                              const std::vector<AttrNum> &include,
                              const std::optional<PartialPredicate> &predicate) {
    BtreeSize size;
    double rows = std::max(t.tuples, 0.0);
    if (predicate) {
        const ColumnInfo *c = column(t, predicate->attnum);
        double null_frac = c ? std::clamp(c->null_frac, 0.0, 1.0) : 0;
        rows *= predicate->is_null ? null_frac : 1 - null_frac;
    }
    size.tuples = rows;

    std::vector<AttrNum> all = keys;
    all.insert(all.end(), include.begin(), include.end());
    double key = tuple_bytes(t, all);
    double leaf_bytes = rows * (key + kLinePointer);
    bool dedup = include.empty() && rows > 1;
    for (AttrNum a : keys) {
        const ColumnInfo *c = column(t, a);
        dedup = dedup && (!c || c->deduplicates);
    }
    if (dedup) {
        // Rows of each NULL pattern apart (NULLs are equal keys).  One non-NULL column: its
        // distinct values share the rows evenly.  Several: as if independent, `combinations`
        // equally likely ones, the rows per combination a Poisson count (mostly 0 or 1 when
        // combinations outnumber rows); one per row when a column is unique.
        leaf_bytes = 0;
        for_null_patterns(t, keys, [&](double p, const std::vector<bool> &null) {
            double part = rows * p, combinations = 1;
            if (part <= 0) return;
            // A column that another (counted) key column determines adds no combinations.
            std::vector<bool> counted(keys.size(), false);
            std::vector<AttrNum> non_null;
            size_t present = 0;
            double most_distinct = 1;
            bool unique = false;  // a unique column makes every combination unique
            for (size_t i = 0; i < keys.size(); ++i) {
                if (null[i]) continue;
                non_null.push_back(keys[i]);
                bool dependent = false;
                for (size_t j = 0; j < keys.size() && !dependent; ++j)
                    dependent = j != i && !null[j] && (j > i || counted[j]) &&
                                determines(t, keys[j], keys[i]);
                if (dependent) continue;
                counted[i] = true;
                double distinct = distinct_values(t, keys[i], part);
                combinations *= distinct;
                most_distinct = std::max(most_distinct, distinct);
                unique = unique || distinct >= part;
                ++present;
            }
            // Correlated columns: no more combinations than the sample shows.
            if (present >= 2 && !unique)
                combinations = std::max(most_distinct,
                                        std::min(combinations, sampled_combinations(t, non_null)));
            double tuple = tuple_bytes_if(t, keys, null), lambda = part / combinations;
            if (present <= 1 || lambda >= 30 || unique) {
                double groups = std::min(combinations, part);
                leaf_bytes += groups * group_bytes(tuple, part / groups);
                return;
            }
            double prob = std::exp(-lambda), sum = 0;
            double last = lambda + 12 * std::sqrt(lambda) + 12;
            for (uint64_t n = 1; n <= static_cast<uint64_t>(last); ++n) {
                prob *= lambda / static_cast<double>(n);
                sum += prob * group_bytes(tuple, n);
            }
            leaf_bytes += std::min(part * (tuple + kLinePointer), combinations * sum);
        });
    }
    // Each leaf page but the last also holds a high key (a pivot); a page is closed once
    // less than kLeafFree is free, half a tuple past that on average.
    double pivot = tuple_bytes(t, keys) + kLinePointer;
    double leaf_space =
        kPageSize - kPageHeader - kBtreeSpecial - kLeafFree - pivot + (key + kLinePointer) / 2;
    double leaves = std::max(1.0, std::ceil(leaf_bytes / leaf_space));

    double per_inner = std::max(
        2.0, std::floor((kPageSize - kPageHeader - kBtreeSpecial - kInnerFree) / pivot) + 1);
    double total = leaves, level = leaves;
    while (level > 1) {
        level = std::ceil(level / per_inner);
        total += level;
        ++size.tree_height;
    }
    size.pages = static_cast<uint64_t>(total) + 1;  // + metapage
    return size;
}

double maintenance_cost(const Candidate &c, const TableInfo &t, const SelectionOptions &options) {
    double writes = std::max(t.writes, 0.0);
    if (c.predicate && t.tuples > 0) writes *= std::clamp(c.size.tuples / t.tuples, 0.0, 1.0);
    double per_row = options.random_page_cost +
                     (std::max(c.size.tree_height, 0) + 1) * 50 * options.cpu_operator_cost;
    return writes * per_row * options.weight_per_call;
}

bool redundant_by_view_rule(const std::vector<AttrNum> &redundant_keys,
                            const std::vector<AttrNum> &redundant_include,
                            const std::optional<PartialPredicate> &redundant_pred,
                            const std::vector<AttrNum> &covering_keys,
                            const std::vector<AttrNum> &covering_include,
                            const std::optional<PartialPredicate> &covering_pred) {
    if (!(redundant_pred == covering_pred)) return false;
    if (!is_prefix(redundant_keys, covering_keys)) return false;
    for (AttrNum a : redundant_include)
        if (!contains(covering_keys, a) && !contains(covering_include, a)) return false;
    return true;
}

bool covered_by(const Candidate &prefix, const std::vector<AttrNum> &keys,
                const std::vector<AttrNum> &include, const std::optional<PartialPredicate> &pred) {
    if (pred && !(prefix.predicate && *prefix.predicate == *pred)) return false;
    if (!is_prefix(prefix.keys, keys)) return false;
    for (AttrNum a : prefix.include)
        if (!contains(keys, a) && !contains(include, a)) return false;
    return true;
}

std::vector<Candidate> generate_candidates(const std::vector<QueryDesc> &queries,
                                           const Tables &tables, int max_columns) {
    using Key = std::tuple<TableId, std::vector<AttrNum>, std::vector<AttrNum>, int, bool>;
    std::map<Key, Candidate> merged;
    const size_t max_cols = static_cast<size_t>(std::max(1, max_columns));

    auto add = [&](size_t q, TableId table, std::vector<AttrNum> keys, std::vector<AttrNum> include,
                   std::optional<PartialPredicate> pred) {
        if (keys.empty()) return;
        if (keys.size() > max_cols) keys.resize(max_cols);
        std::sort(include.begin(), include.end());
        Key key{table, keys, include, pred ? pred->attnum : 0, pred ? pred->is_null : false};
        Candidate &c = merged[key];
        c.table = table;
        c.keys = std::move(keys);
        c.include = std::move(include);
        c.predicate = pred;
        c.queries.push_back(q);
    };

    for (size_t q = 0; q < queries.size(); ++q) {
        for (const TableUse &tu : queries[q].tables) {
            auto tit = tables.find(tu.table);
            if (tit == tables.end()) continue;
            const TableInfo &t = tit->second;
            auto btree = [&](AttrNum a) {
                const ColumnInfo *c = column(t, a);
                return c && c->btree;
            };
            std::vector<AttrNum> eq, range, sort, join;
            std::vector<PartialPredicate> nulls;
            for (const ColumnUse &u : tu.uses) {
                if (u.kind == UseKind::IsNull || u.kind == UseKind::IsNotNull) {
                    PartialPredicate p{u.attnum, u.kind == UseKind::IsNull};
                    if (std::find(nulls.begin(), nulls.end(), p) == nulls.end()) nulls.push_back(p);
                    continue;
                }
                if (!btree(u.attnum)) continue;
                switch (u.kind) {
                    case UseKind::Equality:
                        push_unique(eq, u.attnum);
                        break;
                    case UseKind::Range:
                        push_unique(range, u.attnum);
                        break;
                    case UseKind::Sort:
                        push_unique(sort, u.attnum);
                        break;
                    case UseKind::Join:
                        push_unique(join, u.attnum);
                        break;
                    default:
                        break;
                }
            }
            auto drop_eq = [&](std::vector<AttrNum> &v) {
                v.erase(
                    std::remove_if(v.begin(), v.end(), [&](AttrNum a) { return contains(eq, a); }),
                    v.end());
            };
            drop_eq(range);
            drop_eq(join);
            // Most selective equality column first: prefixes then serve more statements.
            std::stable_sort(eq.begin(), eq.end(), [&](AttrNum a, AttrNum b) {
                return distinct_values(t, a, t.tuples) > distinct_values(t, b, t.tuples);
            });
            // A sort that equality columns already fix is no sort: drop those.
            std::vector<AttrNum> sort_rest;
            for (AttrNum a : sort)
                if (!contains(eq, a)) sort_rest.push_back(a);

            std::vector<std::vector<AttrNum>> key_lists;
            for (AttrNum a : eq) key_lists.push_back({a});
            for (AttrNum a : range) key_lists.push_back({a});
            for (AttrNum a : join) key_lists.push_back({a});
            if (!sort_rest.empty()) key_lists.push_back(sort_rest);
            std::vector<AttrNum> eq_prefix(eq.begin(), eq.begin() + std::min(eq.size(), max_cols));
            if (eq_prefix.size() > 1) key_lists.push_back(eq_prefix);
            if (!eq.empty()) {
                std::vector<AttrNum> base(eq.begin(),
                                          eq.begin() + std::min(eq.size(), max_cols - 1));
                for (const auto *tail : {&range, &join}) {
                    if (tail->empty()) continue;
                    auto k = base;
                    k.push_back(tail->front());
                    key_lists.push_back(k);
                }
                if (!sort_rest.empty()) {
                    auto k = base;
                    for (AttrNum a : sort_rest) push_unique(k, a);
                    key_lists.push_back(k);
                }
            }
            // A range on the leading sort column serves both.
            if (!range.empty() && !sort_rest.empty() && range.front() == sort_rest.front() &&
                !eq.empty()) {
                auto k = eq_prefix;
                if (k.size() >= max_cols) k.resize(max_cols - 1);
                push_unique(k, range.front());
                key_lists.push_back(k);
            }

            for (const auto &keys : key_lists) {
                add(q, tu.table, keys, {}, std::nullopt);
                std::vector<AttrNum> rest;
                for (AttrNum a : tu.referenced)
                    if (!contains(keys, a)) push_unique(rest, a);
                // Covering: a few more columns, never the whole row (that is the table again).
                if (!rest.empty() && rest.size() <= 3 &&
                    keys.size() + rest.size() < t.columns.size())
                    add(q, tu.table, keys, rest, std::nullopt);
                for (const PartialPredicate &p : nulls) {
                    const ColumnInfo *c = column(t, p.attnum);
                    double share = c ? (p.is_null ? c->null_frac : 1 - c->null_frac) : 1;
                    if (share <= 0.5 && !contains(keys, p.attnum)) add(q, tu.table, keys, {}, p);
                }
            }
            // Only a null test to go by: index the column under its own predicate.
            if (key_lists.empty())
                for (const PartialPredicate &p : nulls) {
                    const ColumnInfo *c = column(t, p.attnum);
                    double share = c ? (p.is_null ? c->null_frac : 1 - c->null_frac) : 1;
                    if (share <= 0.5 && btree(p.attnum)) add(q, tu.table, {p.attnum}, {}, p);
                }
        }
    }

    std::vector<Candidate> out;
    for (auto &[key, c] : merged) {
        const TableInfo &t = tables.at(c.table);
        bool covered = false;
        for (const ExistingIndex &e : t.existing)
            // An existing index that starts with these keys already serves the statements;
            // a second one that adds only INCLUDE columns or a predicate is not worth it.
            if (!e.partial && is_prefix(c.keys, e.keys)) covered = true;
        if (covered) continue;
        add_serving_queries(c, queries);
        c.size = estimate_btree_size(t, c.keys, c.include, c.predicate);
        out.push_back(std::move(c));
    }
    return out;
}

Selection select_greedy(const std::vector<QueryDesc> &queries, std::vector<Candidate> &candidates,
                        const Tables &tables, const CostFn &cost_fn,
                        const SelectionOptions &options) {
    CostCache cache(queries, candidates, cost_fn);
    std::vector<size_t> chosen;
    std::vector<double> current(queries.size());
    double workload = 0;
    for (size_t q = 0; q < queries.size(); ++q) {
        current[q] = cache.cost(q, {}).cost;
        workload += queries[q].weight * current[q];
    }
    // The size of the data the workload reads: the yardstick of the lean threshold.
    std::set<TableId> read;
    for (const QueryDesc &q : queries)
        for (const TableUse &tu : q.tables) read.insert(tu.table);
    double data_bytes = 0;
    for (TableId t : read) {
        auto it = tables.find(t);
        if (it != tables.end()) data_bytes += std::max(it->second.pages, 1.0) * kPageSize;
    }
    data_bytes = std::max(data_bytes, kPageSize);

    // The write cost of a candidate's index (see maintenance_cost).
    auto maintenance_of = [&](size_t c) {
        auto tit = tables.find(candidates[c].table);
        return tit == tables.end() ? 0.0 : maintenance_cost(candidates[c], tit->second, options);
    };
    // What choosing a candidate would mean now (with the chosen index `skip` given up, for a
    // swap): the resulting set, and the statements whose cost it can change (its own, and
    // those of the chosen indexes it replaces).
    struct Move {
        bool redundant = false;
        std::vector<size_t> config, affected;
        double freed_bytes = 0, freed_maintenance = 0;
    };
    auto move_for = [&](size_t c, size_t skip = kNoCandidate) {
        const Candidate &cand = candidates[c];
        Move m;
        std::set<size_t> affected(cand.queries.begin(), cand.queries.end());
        for (size_t o : chosen) {
            if (o == skip) continue;
            const Candidate &other = candidates[o];
            if (other.table == cand.table &&
                covered_by(cand, other.keys, other.include, other.predicate)) {
                m.redundant = true;
                return m;
            }
            if (other.table == cand.table &&
                covered_by(other, cand.keys, cand.include, cand.predicate)) {
                affected.insert(other.queries.begin(), other.queries.end());  // replaced
                m.freed_bytes += static_cast<double>(other.size.bytes());
                m.freed_maintenance += maintenance_of(o);
                continue;
            }
            m.config.push_back(o);
        }
        m.config.push_back(c);
        m.affected.assign(affected.begin(), affected.end());
        return m;
    };
    // The evaluation of a candidate stays valid while neither its table's chosen indexes nor
    // the cost of a statement it affects change (versions below): later steps reuse it.
    struct Evaluation {
        uint64_t stamp = 0;
        bool admissible = false;
        double score = 0;
        std::vector<double> costs;  // of Move::affected
    };
    std::map<TableId, uint64_t> table_version;
    std::vector<uint64_t> query_version(queries.size(), 0);
    std::vector<std::optional<Evaluation>> memo(candidates.size());
    double used_bytes = 0;

    // The swap phase (as DB2 Advisor's second phase), once greedy can add nothing more: a
    // chosen index is replaced by an unchosen candidate (with the chosen ones of its table
    // that it covers: a merge) when the workload then costs less, net of maintenance, by at
    // least min_workload_pct and by more than kTieTolerance of what the set saved on the
    // statements the swap touches, within the budget and the index count; without a budget,
    // bytes it adds must be worth them by the lean threshold.  The best swap wins, near-equal ones
    // by the stable order; greedy then goes on with what is left.  Bounded: kMaxSwaps swaps,
    // and the phase's what-if plans at most as many as greedy's (or kMinSwapPlans).
    auto bytes_of = [&](const std::vector<size_t> &config) {
        double b = 0;
        for (size_t c : config) b += static_cast<double>(candidates[c].size.bytes());
        return b;
    };
    std::optional<size_t> swap_plans_start, swap_plan_budget;
    double floor_pct = options.min_workload_pct;  // a step's least share of the workload
    auto swap_one = [&]() -> bool {
        if (!swap_plans_start) {
            swap_plans_start = cache.plans();
            swap_plan_budget = std::max(kMinSwapPlans, cache.plans());
        }
        double now_bytes = bytes_of(chosen);
        struct Swap {
            double gain = 0;
            size_t in = 0;
            std::vector<size_t> config;
        };
        std::optional<Swap> best;
        for (size_t c = 0; c < candidates.size(); ++c) {
            if (cache.plans() - *swap_plans_start > *swap_plan_budget) break;
            if (std::find(chosen.begin(), chosen.end(), c) != chosen.end()) continue;
            const Candidate &in = candidates[c];
            // Only a candidate that helps some statement on its own can be worth a swap.
            bool helps = false;
            for (size_t q : in.queries)
                if (cache.cost(q, {c}).cost < cache.cost(q, {}).cost * (1 - 1e-9)) {
                    helps = true;
                    break;
                }
            if (!helps) continue;
            for (size_t dropped : chosen) {
                // c in, dropped out, and the chosen ones c covers merged into it.
                Move m = move_for(c, dropped);
                if (m.redundant || m.config.size() > options.max_indexes) continue;
                const Candidate &out = candidates[dropped];
                double added = static_cast<double>(in.size.bytes()) - m.freed_bytes -
                               static_cast<double>(out.size.bytes());
                if (options.max_bytes && now_bytes + added > *options.max_bytes) continue;
                std::set<size_t> affected(m.affected.begin(), m.affected.end());
                affected.insert(out.queries.begin(), out.queries.end());
                // gain: of the swap; had: what the current set saves on those statements.
                double gain = m.freed_maintenance + maintenance_of(dropped) - maintenance_of(c),
                       had = 0;
                for (size_t q : affected) {
                    double now = cache.cost(q, chosen).cost;
                    gain += queries[q].weight * (now - cache.cost(q, m.config).cost);
                    had += queries[q].weight * (cache.cost(q, {}).cost - now);
                }
                // Not a near-tie (ANALYZE noise must not flip a set), nor a crumb.
                if (gain <= kTieTolerance * std::max(had, 0.0) || 100 * gain < floor_pct * workload)
                    continue;
                if (!options.max_bytes && added > 0 && workload > 0 &&
                    (gain / workload) / (added / data_bytes) < options.min_benefit_per_byte_share)
                    continue;
                if (!best || gain > best->gain * (1 + kTieTolerance) ||
                    (gain >= best->gain * (1 - kTieTolerance) &&
                     canonical_less(in, candidates[best->in])))
                    best = Swap{gain, c, std::move(m.config)};
            }
        }
        if (!best) return false;
        chosen = std::move(best->config);
        return true;
    };

    for (size_t swaps = 0;; ++swaps) {
        for (;;) {
            memo.resize(candidates.size());
            std::vector<std::pair<size_t, double>> admissible;
            double top = 0;
            for (size_t c = 0; c < candidates.size(); ++c) {
                const Candidate &cand = candidates[c];
                if (std::find(chosen.begin(), chosen.end(), c) != chosen.end()) continue;
                Move m = move_for(c);
                if (m.redundant || m.config.size() > options.max_indexes) continue;
                double cand_bytes = static_cast<double>(cand.size.bytes());
                if (options.max_bytes &&
                    used_bytes - m.freed_bytes + cand_bytes > *options.max_bytes)
                    continue;
                uint64_t stamp = table_version[cand.table] * 1000003u;
                for (size_t q : m.affected) stamp += query_version[q] + 1;
                if (!memo[c] || memo[c]->stamp != stamp) {
                    Evaluation e;
                    e.stamp = stamp;
                    double benefit = 0, improved_before = 0;
                    for (size_t q : m.affected) {
                        double now = cache.cost(q, m.config).cost;
                        e.costs.push_back(now);
                        double w = queries[q].weight;
                        benefit += w * (current[q] - now);
                        if (now < current[q] * (1 - 1e-9)) improved_before += w * current[q];
                    }
                    // Writes pay for every index: its maintenance is taken off the benefit, and
                    // what is left must still reach the minimum improvements.
                    double effective = benefit - maintenance_of(c) + m.freed_maintenance;
                    double bytes = std::max(cand_bytes - m.freed_bytes, 0.1 * cand_bytes);
                    e.admissible =
                        benefit > 0 && improved_before > 0 && effective > 0 &&
                        100 * effective / improved_before >= options.min_improvement_pct &&
                        100 * effective >= floor_pct * workload;
                    // Without a budget: the saving per storage must be worth it (lean default).
                    if (!options.max_bytes && workload > 0 &&
                        (effective / workload) / (std::max(bytes, 1.0) / data_bytes) <
                            options.min_benefit_per_byte_share)
                        e.admissible = false;
                    e.score = effective / std::max(bytes, 1.0);
                    memo[c] = std::move(e);
                }
                if (!memo[c]->admissible) continue;
                admissible.push_back({c, memo[c]->score});
                top = std::max(top, memo[c]->score);
            }
            // Near-equal scores are a tie: the first in the stable order wins.
            std::optional<size_t> best;
            for (const auto &[c, score] : admissible)
                if (score >= top * (1 - kTieTolerance) &&
                    (!best || canonical_less(candidates[c], candidates[*best])))
                    best = c;
            if (!best) break;
            Move m = move_for(*best);
            chosen = m.config;
            used_bytes += static_cast<double>(candidates[*best].size.bytes()) - m.freed_bytes;
            ++table_version[candidates[*best].table];
            for (size_t i = 0; i < m.affected.size(); ++i) {
                current[m.affected[i]] = memo[*best]->costs[i];
                ++query_version[m.affected[i]];
            }
            if (!options.widen) continue;
            // Extend's step: the chosen index with one more key column its statements use; and
            // one index for covering variants of the same or prefix keys (INCLUDE merged).
            const Candidate grown_from = candidates[*best];  // a copy: the list grows below
            if (grown_from.keys.size() < options.max_key_columns)
                for (AttrNum a : extension_columns(grown_from, queries, tables)) {
                    Candidate g;
                    g.table = grown_from.table;
                    g.keys = grown_from.keys;
                    g.keys.push_back(a);
                    g.include = grown_from.include;
                    g.predicate = grown_from.predicate;
                    append_candidate(candidates, std::move(g), queries, tables);
                }
            size_t existing = candidates.size();
            for (size_t d = 0; d < existing; ++d) {
                const Candidate &o = candidates[d];
                if (d == *best || o.table != grown_from.table ||
                    !(o.predicate == grown_from.predicate))
                    continue;
                // Variants of the same keys (any candidate), or of prefix keys among the chosen:
                // merging every prefix-related candidate costs too many plans on large workloads.
                bool chosen_other = std::find(chosen.begin(), chosen.end(), d) != chosen.end();
                bool o_longer = is_prefix(grown_from.keys, o.keys);
                if (!o_longer && !is_prefix(o.keys, grown_from.keys)) continue;
                if (o.keys != grown_from.keys && !chosen_other) continue;
                if (o.include.empty() && grown_from.include.empty()) continue;
                Candidate g;
                g.table = o.table;
                g.keys = o_longer ? o.keys : grown_from.keys;
                g.include = grown_from.include;
                g.include.insert(g.include.end(), o.include.begin(), o.include.end());
                g.predicate = o.predicate;
                if (g.keys.size() + g.include.size() > options.max_key_columns + 3) continue;
                append_candidate(candidates, std::move(g), queries, tables);
            }
        }
        if (swaps >= kMaxSwaps || !swap_one()) {
            // Under a storage budget the budget decides: what is left of it goes to steps
            // below the min_workload_pct floor (crumbs), best benefit per byte first.
            if (!options.max_bytes || floor_pct == 0) break;
            floor_pct = 0;
        }
        // Greedy goes on from the new set: every statement's cost, the bytes, the evaluations.
        for (size_t q = 0; q < queries.size(); ++q) current[q] = cache.cost(q, chosen).cost;
        used_bytes = bytes_of(chosen);
        memo.assign(candidates.size(), std::nullopt);
    }
    // A grown index can end up doing no more than a candidate on a subset of its columns:
    // greedy took a small first step (status) and grew it to (status, ref_code) where
    // (ref_code) alone serves as well.  The simpler one, when no larger and no costlier.
    auto simplify = [&](Selection s) {
        for (size_t k = 0; k < chosen.size(); ++k)
            for (size_t c = 0; c < candidates.size(); ++c) {
                const Candidate &big = candidates[chosen[k]], &small = candidates[c];
                if (small.table != big.table || !(small.predicate == big.predicate) ||
                    small.keys.size() >= big.keys.size() || small.size.bytes() > big.size.bytes() ||
                    std::find(chosen.begin(), chosen.end(), c) != chosen.end())
                    continue;
                bool subset = true;
                for (AttrNum a : small.keys) subset = subset && contains(big.keys, a);
                for (AttrNum a : small.include)
                    subset = subset && (contains(big.keys, a) || contains(big.include, a));
                if (!subset) continue;
                std::vector<size_t> config = chosen;
                config[k] = c;
                Selection simpler = evaluate_with(cache, queries, config);
                if (simpler.workload_after <= s.workload_after * (1 + kTieTolerance)) {
                    chosen = config;
                    s = std::move(simpler);
                    break;
                }
            }
        return s;
    };
    // An index that a later choice made useless (no final plan uses it) is dropped.
    for (;;) {
        Selection s = evaluate_with(cache, queries, chosen);
        std::vector<size_t> used;
        for (const Recommendation &r : s.recommendations)
            if (!r.queries.empty()) used.push_back(r.candidate);
        if (used.size() == chosen.size()) return simplify(std::move(s));
        chosen = used;
    }
}

Selection select_extend(const std::vector<QueryDesc> &queries, std::vector<Candidate> &candidates,
                        const Tables &tables, const CostFn &cost_fn, double max_bytes,
                        size_t max_key_columns) {
    CostCache cache(queries, candidates, cost_fn);
    auto find_or_add = [&](Candidate c) -> std::optional<size_t> {
        for (size_t i = 0; i < candidates.size(); ++i)
            if (same_index(candidates[i], c)) return i;
        if (!append_candidate(candidates, std::move(c), queries, tables)) return std::nullopt;
        return candidates.size() - 1;
    };
    // Single-column candidates on every column a B-tree can serve in some statement.
    std::set<std::pair<TableId, AttrNum>> columns;
    for (const QueryDesc &q : queries)
        for (const TableUse &tu : q.tables) {
            auto tit = tables.find(tu.table);
            if (tit == tables.end()) continue;
            for (const ColumnUse &u : tu.uses) {
                const ColumnInfo *col = column(tit->second, u.attnum);
                if (u.kind != UseKind::IsNull && u.kind != UseKind::IsNotNull && col && col->btree)
                    columns.insert({tu.table, u.attnum});
            }
        }
    std::vector<size_t> singles;
    for (const auto &[table, attnum] : columns) {
        Candidate c;
        c.table = table;
        c.keys = {attnum};
        if (auto i = find_or_add(std::move(c))) singles.push_back(*i);
    }
    std::vector<double> current(queries.size());
    for (size_t q = 0; q < queries.size(); ++q) current[q] = cache.cost(q, {}).cost;
    std::vector<size_t> chosen;
    double used_bytes = 0;
    for (;;) {
        struct Step {
            size_t add = 0;
            std::optional<size_t> replaces;
        };
        std::vector<Step> steps;
        for (size_t c : singles)
            if (std::find(chosen.begin(), chosen.end(), c) == chosen.end())
                steps.push_back({c, {}});
        for (size_t i : chosen) {
            if (candidates[i].keys.size() >= max_key_columns) continue;
            const Candidate base = candidates[i];
            for (AttrNum a : extension_columns(base, queries, tables)) {
                Candidate g;
                g.table = base.table;
                g.keys = base.keys;
                g.keys.push_back(a);
                if (auto e = find_or_add(std::move(g)))
                    if (std::find(chosen.begin(), chosen.end(), *e) == chosen.end())
                        steps.push_back({*e, i});
            }
        }
        std::optional<Step> best;
        double best_ratio = 0;
        std::vector<double> best_costs;
        std::vector<size_t> best_affected, best_config;
        for (const Step &st : steps) {
            double extra = static_cast<double>(candidates[st.add].size.bytes());
            if (st.replaces) extra -= static_cast<double>(candidates[*st.replaces].size.bytes());
            if (used_bytes + extra > max_bytes) continue;
            std::vector<size_t> config;
            for (size_t i : chosen)
                if (!st.replaces || i != *st.replaces) config.push_back(i);
            config.push_back(st.add);
            std::set<size_t> affected(candidates[st.add].queries.begin(),
                                      candidates[st.add].queries.end());
            if (st.replaces)
                affected.insert(candidates[*st.replaces].queries.begin(),
                                candidates[*st.replaces].queries.end());
            double benefit = 0;
            std::vector<double> costs;
            for (size_t q : affected) {
                double now = cache.cost(q, config).cost;
                costs.push_back(now);
                benefit += queries[q].weight * (current[q] - now);
            }
            if (benefit <= 1e-9) continue;
            double ratio = benefit / std::max(extra, 1.0);
            if (!best || ratio > best_ratio) {
                best = st;
                best_ratio = ratio;
                best_costs = std::move(costs);
                best_affected.assign(affected.begin(), affected.end());
                best_config = std::move(config);
            }
        }
        if (!best) break;
        used_bytes += static_cast<double>(candidates[best->add].size.bytes());
        if (best->replaces)
            used_bytes -= static_cast<double>(candidates[*best->replaces].size.bytes());
        chosen = best_config;
        for (size_t i = 0; i < best_affected.size(); ++i) current[best_affected[i]] = best_costs[i];
    }
    return evaluate_with(cache, queries, chosen);
}

Selection select_exhaustive(const std::vector<QueryDesc> &queries,
                            const std::vector<Candidate> &candidates,
                            const std::vector<size_t> &subset_of, const CostFn &cost_fn) {
    CostCache cache(queries, candidates, cost_fn);
    TableGroups groups(queries);
    std::map<TableId, std::vector<size_t>> group_candidates, group_queries;
    for (size_t c : subset_of) group_candidates[groups.of(candidates[c].table)].push_back(c);
    for (size_t q = 0; q < queries.size(); ++q)
        if (!queries[q].tables.empty())
            group_queries[groups.of(queries[q].tables[0].table)].push_back(q);

    std::vector<size_t> chosen;
    for (const auto &[group, cands] : group_candidates) {
        const auto &qs = group_queries[group];
        size_t k = std::min<size_t>(cands.size(), 24);
        double best_total = 0;
        uint64_t best_mask = 0;
        int best_bits = 0;
        for (uint64_t mask = 0; mask < (uint64_t{1} << k); ++mask) {
            std::vector<size_t> config;
            for (size_t i = 0; i < k; ++i)
                if (mask & (uint64_t{1} << i)) config.push_back(cands[i]);
            double total = 0;
            for (size_t q : qs) total += queries[q].weight * cache.cost(q, config).cost;
            int bits = static_cast<int>(config.size());
            bool better = mask == 0 || total < best_total * (1 - 1e-9) ||
                          (total <= best_total * (1 + 1e-9) && bits < best_bits);
            if (better) {
                best_total = total;
                best_mask = mask;
                best_bits = bits;
            }
        }
        for (size_t i = 0; i < k; ++i)
            if (best_mask & (uint64_t{1} << i)) chosen.push_back(cands[i]);
    }
    return evaluate_with(cache, queries, chosen);
}

std::vector<size_t> top_candidates_per_group(const std::vector<QueryDesc> &queries,
                                             const std::vector<Candidate> &candidates,
                                             const CostFn &cost_fn, size_t per_group) {
    CostCache cache(queries, candidates, cost_fn);
    TableGroups groups(queries);
    std::map<TableId, std::vector<std::pair<double, size_t>>> ranked;
    for (size_t c = 0; c < candidates.size(); ++c) {
        double benefit = 0;
        for (size_t q : candidates[c].queries)
            benefit += queries[q].weight * (cache.cost(q, {}).cost - cache.cost(q, {c}).cost);
        if (benefit > 0) ranked[groups.of(candidates[c].table)].push_back({-benefit, c});
    }
    std::vector<size_t> out;
    for (auto &[group, list] : ranked) {
        std::sort(list.begin(), list.end());
        for (size_t i = 0; i < list.size() && i < per_group; ++i) out.push_back(list[i].second);
    }
    std::sort(out.begin(), out.end());
    return out;
}

Selection evaluate_set(const std::vector<QueryDesc> &queries,
                       const std::vector<Candidate> &candidates, const std::vector<size_t> &chosen,
                       const CostFn &cost_fn) {
    CostCache cache(queries, candidates, cost_fn);
    return evaluate_with(cache, queries, chosen);
}

std::string index_definition(const Candidate &c, const TableInfo &t,
                             const std::function<std::string(const std::string &)> &quote) {
    auto names = [&](const std::vector<AttrNum> &cols) {
        std::string out;
        for (AttrNum a : cols) {
            if (!out.empty()) out += ", ";
            const ColumnInfo *col = column(t, a);
            out += quote(col ? col->name : std::to_string(a));
        }
        return out;
    };
    std::string sql =
        "CREATE INDEX CONCURRENTLY ON " + t.name + " USING btree (" + names(c.keys) + ")";
    if (!c.include.empty()) sql += " INCLUDE (" + names(c.include) + ")";
    if (c.predicate)
        sql += " WHERE " + names({c.predicate->attnum}) +
               (c.predicate->is_null ? " IS NULL" : " IS NOT NULL");
    return sql;
}

namespace {
bool word_in(const core::Token &t, std::initializer_list<const char *> upper) {
    if (t.kind != core::TokenKind::Word) return false;
    for (const char *u : upper)
        if (t.is_keyword(u)) return true;
    return false;
}
}  // namespace

std::string repair_normalised(const std::string &sql) {
    std::vector<core::Token> tokens = core::tokenize(sql);
    struct Edit {
        size_t begin, end;
        std::string text;
    };
    std::vector<Edit> edits;
    auto end_of = [&](size_t i) { return tokens[i].offset + tokens[i].text.size(); };
    for (size_t i = 0; i < tokens.size(); ++i) {
        const core::Token &t = tokens[i];
        // extract($n FROM x): the field is a keyword or string constant; any valid field
        // costs the same, epoch is valid for every source type.
        if (t.is_keyword("EXTRACT") && i + 3 < tokens.size() && tokens[i + 1].text == "(" &&
            tokens[i + 2].kind == core::TokenKind::Parameter && tokens[i + 3].is_keyword("FROM")) {
            edits.push_back({tokens[i + 2].offset, end_of(i + 2), "epoch"});
            i += 3;
            continue;
        }
        // A typed literal, "date '2024-01-01'", normalised to "date $n": a cast instead.
        if (!word_in(t,
                     {"DATE", "TIME", "TIMESTAMP", "TIMESTAMPTZ", "INTERVAL", "NUMERIC", "INT2",
                      "INT4", "INT8", "INTEGER",   "BIGINT",      "SMALLINT", "FLOAT4",  "FLOAT8",
                      "REAL", "TEXT", "VARCHAR",   "BOOL",        "BOOLEAN",  "JSON",    "JSONB",
                      "UUID", "INET", "CIDR",      "BYTEA",       "MONEY"}))
            continue;
        if (i > 0 && (tokens[i - 1].text == ":" || tokens[i - 1].text == "."))
            continue;  // a cast target or a qualified name, not a typed literal
        std::string type(t.text);
        size_t j = i + 1;
        bool zone = false;
        if (word_in(t, {"TIME", "TIMESTAMP"}) && j + 2 < tokens.size() &&
            word_in(tokens[j], {"WITH", "WITHOUT"}) && tokens[j + 1].is_keyword("TIME") &&
            tokens[j + 2].is_keyword("ZONE")) {
            zone = tokens[j].is_keyword("WITH");
            j += 3;
        }
        if (j >= tokens.size() || tokens[j].kind != core::TokenKind::Parameter) continue;
        if (zone) type = t.is_keyword("TIME") ? "timetz" : "timestamptz";
        size_t last = j;
        // interval $n day [to second]: the field list goes with the literal.
        auto field = {"YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND"};
        if (t.is_keyword("INTERVAL")) {
            if (last + 1 < tokens.size() && word_in(tokens[last + 1], field)) {
                ++last;
                if (last + 2 < tokens.size() && tokens[last + 1].is_keyword("TO") &&
                    word_in(tokens[last + 2], field))
                    last += 2;
            }
        }
        edits.push_back({t.offset, end_of(last),
                         "(" + std::string(tokens[j].text) + "::pg_catalog." + type + ")"});
        i = last;
    }
    std::string out;
    size_t pos = 0;
    for (const Edit &e : edits) {
        out.append(sql, pos, e.begin - pos);
        out += e.text;
        pos = e.end;
    }
    out.append(sql, pos, std::string::npos);
    return out;
}

int parameter_count(const std::string &sql) {
    int n = 0;
    for (const core::Token &t : core::tokenize(sql))
        if (t.kind == core::TokenKind::Parameter && t.text.size() > 1 && t.text.size() < 7)
            n = std::max(n, std::stoi(std::string(t.text.substr(1))));
    return n;
}

}  // namespace virtuoso::advisor
