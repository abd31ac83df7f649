// Index advisor, pure part (see advisor.hpp).
#include "db_virtuoso/advisor/advisor.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <tuple>
#include <unordered_map>

namespace virtuoso::advisor {
namespace {

// PostgreSQL's on-disk constants (default build, 8 kB pages).
constexpr double kPageSize = 8192;
constexpr double kPageHeader = 24;       // SizeOfPageHeaderData
constexpr double kBtreeSpecial = 16;     // sizeof(BTPageOpaqueData)
constexpr double kIndexTupleHeader = 8;  // sizeof(IndexTupleData)
constexpr double kLinePointer = 4;       // sizeof(ItemIdData)
constexpr double kHeapTid = 6;           // one TID in a posting list
constexpr double kLeafFill = 0.90;       // BTREE_DEFAULT_FILLFACTOR
constexpr double kInnerFill = 0.70;      // BTREE_NONLEAF_FILLFACTOR
constexpr double kMaxPostingTids = 400;  // a posting list tuple holds up to ~1/3 of a page

double align_up(double offset, int align) {
    double a = align > 0 ? align : 1;
    return std::ceil(offset / a) * a;
}

const ColumnInfo *column(const TableInfo &t, AttrNum attnum) {
    auto it = t.columns.find(attnum);
    return it == t.columns.end() ? nullptr : &it->second;
}

// MAXALIGNed size of an index tuple holding these columns.
double tuple_bytes(const TableInfo &t, const std::vector<AttrNum> &cols) {
    double offset = kIndexTupleHeader;
    for (AttrNum a : cols) {
        const ColumnInfo *c = column(t, a);
        offset = align_up(offset, c ? c->align : 4);
        offset += c ? std::max(c->avg_width, 1.0) : 4;
    }
    return align_up(offset, 8);
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

// Every write maintains every index: a table that is only written counts half the benefit.
double write_penalty_factor(double write_share) {
    return 1 - 0.5 * std::clamp(write_share, 0.0, 1.0);
}

bool is_prefix(const std::vector<AttrNum> &prefix, const std::vector<AttrNum> &of) {
    return prefix.size() <= of.size() && std::equal(prefix.begin(), prefix.end(), of.begin());
}

void push_unique(std::vector<AttrNum> &v, AttrNum a) {
    if (!contains(v, a)) v.push_back(a);
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
    for (size_t c : chosen) s.recommendations.push_back(Recommendation{c, {}, 0, 0, 0});
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
        }
    }
    s.plans = cache.plans();
    return s;
}

}  // namespace

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
    double leaf_tuple = tuple_bytes(t, all) + kLinePointer;
    double leaf_bytes = rows * leaf_tuple;
    if (include.empty() && rows > 0) {
        // Deduplication stores each distinct key once with a list of heap TIDs.
        // Several columns: as the planner does (estimate_num_groups), assume they are
        // correlated and clamp the product to a tenth of the rows.
        double groups = 1, widest = 1;
        for (AttrNum a : keys) {
            groups *= distinct_values(t, a, rows);
            widest = std::max(widest, distinct_values(t, a, rows));
        }
        if (keys.size() > 1) groups = std::min(groups, std::max(widest, rows / 10));
        groups = std::clamp(groups, std::max(1.0, rows / kMaxPostingTids), rows);
        double deduplicated = groups * leaf_tuple + (rows - groups) * kHeapTid;
        leaf_bytes = std::min(leaf_bytes, deduplicated);
    }
    double leaf_space = (kPageSize - kPageHeader - kBtreeSpecial) * kLeafFill;
    double leaves = std::max(1.0, std::ceil(leaf_bytes / leaf_space));

    double pivot = tuple_bytes(t, keys) + kLinePointer;
    double per_inner =
        std::max(2.0, std::floor((kPageSize - kPageHeader - kBtreeSpecial) * kInnerFill / pivot));
    double total = leaves, level = leaves;
    while (level > 1) {
        level = std::ceil(level / per_inner);
        total += level;
        ++size.tree_height;
    }
    size.pages = static_cast<uint64_t>(total) + 1;  // + metapage
    return size;
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
        // Every statement that uses the leading column may use the index.
        for (size_t q = 0; q < queries.size(); ++q)
            for (const TableUse &tu : queries[q].tables)
                if (tu.table == c.table)
                    for (const ColumnUse &u : tu.uses)
                        if (u.attnum == c.keys.front()) c.queries.push_back(q);
        std::sort(c.queries.begin(), c.queries.end());
        c.queries.erase(std::unique(c.queries.begin(), c.queries.end()), c.queries.end());
        c.size = estimate_btree_size(t, c.keys, c.include, c.predicate);
        out.push_back(std::move(c));
    }
    return out;
}

Selection select_greedy(const std::vector<QueryDesc> &queries,
                        const std::vector<Candidate> &candidates, const Tables &tables,
                        const CostFn &cost_fn, const SelectionOptions &options) {
    CostCache cache(queries, candidates, cost_fn);
    std::vector<size_t> chosen;
    std::vector<double> current(queries.size());
    double workload = 0;
    for (size_t q = 0; q < queries.size(); ++q) {
        current[q] = cache.cost(q, {}).cost;
        workload += queries[q].weight * current[q];
    }

    // What choosing a candidate would mean now: the resulting set, and the statements whose
    // cost it can change (its own, and those of the chosen indexes it replaces).
    struct Move {
        bool redundant = false;
        std::vector<size_t> config, affected;
        double freed_bytes = 0;
    };
    auto move_for = [&](size_t c) {
        const Candidate &cand = candidates[c];
        Move m;
        std::set<size_t> affected(cand.queries.begin(), cand.queries.end());
        for (size_t o : chosen) {
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

    while (chosen.size() < options.max_indexes) {
        std::optional<size_t> best;
        double best_score = 0;
        for (size_t c = 0; c < candidates.size(); ++c) {
            const Candidate &cand = candidates[c];
            if (std::find(chosen.begin(), chosen.end(), c) != chosen.end()) continue;
            Move m = move_for(c);
            if (m.redundant) continue;
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
                // Writes pay for every index: on a write-heavy table the benefit counts less,
                // and what is left must still reach the minimum improvements.
                auto tit = tables.find(cand.table);
                double write_share = tit == tables.end() ? 0 : tit->second.write_share;
                double effective = benefit * write_penalty_factor(write_share);
                e.admissible = benefit > 0 && improved_before > 0 && effective > 0 &&
                               100 * effective / improved_before >= options.min_improvement_pct &&
                               100 * effective >= options.min_workload_pct * workload;
                double bytes = std::max(static_cast<double>(cand.size.bytes()) - m.freed_bytes,
                                        0.1 * static_cast<double>(cand.size.bytes()));
                e.score = effective / std::max(bytes, 1.0);
                memo[c] = std::move(e);
            }
            if (memo[c]->admissible && (!best || memo[c]->score > best_score)) {
                best = c;
                best_score = memo[c]->score;
            }
        }
        if (!best) break;
        Move m = move_for(*best);
        chosen = m.config;
        ++table_version[candidates[*best].table];
        for (size_t i = 0; i < m.affected.size(); ++i) {
            current[m.affected[i]] = memo[*best]->costs[i];
            ++query_version[m.affected[i]];
        }
    }
    // An index that a later choice made useless (no final plan uses it) is dropped.
    for (;;) {
        Selection s = evaluate_with(cache, queries, chosen);
        std::vector<size_t> used;
        for (const Recommendation &r : s.recommendations)
            if (!r.queries.empty()) used.push_back(r.candidate);
        if (used.size() == chosen.size()) return s;
        chosen = used;
    }
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

}  // namespace virtuoso::advisor
