#include "db_virtuoso/advisor/advisor.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace virtuoso::advisor;

namespace {

TableInfo table(double tuples, int columns) {
    TableInfo t;
    t.name = "public.t";
    t.tuples = tuples;
    t.pages = tuples / 100;
    for (int a = 1; a <= columns; ++a) {
        ColumnInfo c;
        c.name = "c" + std::to_string(a);
        c.avg_width = 4;
        c.align = 4;
        c.n_distinct = -1;  // unique unless a test says otherwise
        t.columns[a] = c;
    }
    return t;
}

QueryDesc query(TableId tab, std::vector<ColumnUse> uses, double weight = 1,
                std::vector<AttrNum> referenced = {}) {
    QueryDesc q;
    q.weight = weight;
    q.tables.push_back(TableUse{tab, std::move(uses), std::move(referenced)});
    return q;
}

bool has_keys(const std::vector<Candidate> &cs, std::vector<AttrNum> keys,
              std::vector<AttrNum> include = {}) {
    return std::any_of(cs.begin(), cs.end(), [&](const Candidate &c) {
        return c.keys == keys && c.include == include && !c.predicate;
    });
}

// A toy planner: a statement's equality columns (in order of use) are served by the index
// whose leading keys match most of them; each matched column divides the cost by 10.
CostFn toy_cost(const std::vector<QueryDesc> &qs, const std::vector<Candidate> &cs) {
    return [&qs, &cs](size_t q, const std::vector<size_t> &config) {
        PlanCost best{1000, {}};
        for (size_t c : config) {
            size_t matched = 0;
            for (AttrNum k : cs[c].keys) {
                bool used = false;
                for (const ColumnUse &u : qs[q].tables[0].uses)
                    used = used || (u.attnum == k && u.kind == UseKind::Equality);
                if (!used) break;
                ++matched;
            }
            double cost = 1000;
            for (size_t i = 0; i < matched; ++i) cost /= 10;
            if (cost < best.cost) best = PlanCost{cost, {c}};
        }
        return best;
    };
}

}  // namespace

TEST(AdvisorSize, UniqueIntegerIndexMatchesPostgres) {
    // A real 100k-row int4 unique B-tree is 276 pages (2.26 MB).
    Tables ts{{1, table(100000, 2)}};
    BtreeSize s = estimate_btree_size(ts.at(1), {1}, {}, std::nullopt);
    EXPECT_NEAR(static_cast<double>(s.pages), 276, 276 * 0.05);
    EXPECT_EQ(s.tree_height, 1);
}

TEST(AdvisorSize, DeduplicationShrinksRepeatedKeys) {
    TableInfo t = table(100000, 2);
    t.columns[2].n_distinct = 10;
    BtreeSize repeated = estimate_btree_size(t, {2}, {}, std::nullopt);
    BtreeSize unique = estimate_btree_size(t, {1}, {}, std::nullopt);
    EXPECT_LT(repeated.pages * 2, unique.pages);
    // INCLUDE indexes are not deduplicated.
    BtreeSize covering = estimate_btree_size(t, {2}, {1}, std::nullopt);
    EXPECT_GE(covering.pages, unique.pages);
}

TEST(AdvisorSize, PartialIndexCountsOnlyMatchingRows) {
    TableInfo t = table(100000, 2);
    t.columns[2].null_frac = 0.01;
    BtreeSize partial = estimate_btree_size(t, {1}, {}, PartialPredicate{2, true});
    EXPECT_NEAR(partial.tuples, 1000, 1);
    EXPECT_LT(partial.pages, 10u);
}

TEST(AdvisorCandidates, EqualityThenRangeThenSort) {
    Tables ts{{1, table(100000, 4)}};
    ts.at(1).columns[1].n_distinct = 100;  // less selective than c2
    std::vector<QueryDesc> qs{
        query(1, {{1, UseKind::Equality}, {2, UseKind::Equality}}),
        query(1, {{3, UseKind::Range}, {1, UseKind::Equality}}),
        query(1, {{1, UseKind::Equality}, {4, UseKind::Sort}}),
    };
    auto cs = generate_candidates(qs, ts);
    EXPECT_TRUE(has_keys(cs, {2, 1}));  // most selective equality column first
    EXPECT_FALSE(has_keys(cs, {1, 2}));
    EXPECT_TRUE(has_keys(cs, {1, 3}));  // equality before range
    EXPECT_FALSE(has_keys(cs, {3, 1}));
    EXPECT_TRUE(has_keys(cs, {1, 4}));  // equality then sort
    for (const Candidate &c : cs) EXPECT_LE(c.keys.size(), 3u);
}

TEST(AdvisorCandidates, AtMostThreeColumnsAndCoveringVariant) {
    Tables ts{{1, table(1000, 6)}};
    std::vector<QueryDesc> qs{query(1,
                                    {{1, UseKind::Equality},
                                     {2, UseKind::Equality},
                                     {3, UseKind::Equality},
                                     {4, UseKind::Equality}},
                                    1, {1, 2, 3, 4, 5})};
    auto cs = generate_candidates(qs, ts);
    EXPECT_TRUE(has_keys(cs, {1, 2, 3}));
    EXPECT_TRUE(has_keys(cs, {1, 2, 3}, {4, 5}));
    for (const Candidate &c : cs) EXPECT_LE(c.keys.size(), 3u);
}

TEST(AdvisorCandidates, NoCoveringVariantForTheWholeRow) {
    Tables ts{{1, table(1000, 3)}};
    std::vector<QueryDesc> qs{query(1, {{1, UseKind::Equality}}, 1, {1, 2, 3})};
    auto cs = generate_candidates(qs, ts);
    EXPECT_TRUE(has_keys(cs, {1}));
    for (const Candidate &c : cs) EXPECT_TRUE(c.include.empty());
}

TEST(AdvisorCandidates, ExistingIndexPrefixSuppresses) {
    Tables ts{{1, table(1000, 3)}};
    ts.at(1).existing.push_back(ExistingIndex{{1, 2}, {}, false});
    std::vector<QueryDesc> qs{
        query(1, {{1, UseKind::Equality}}, 1, {1, 3}),
        query(1, {{3, UseKind::Equality}}),
    };
    auto cs = generate_candidates(qs, ts);
    EXPECT_FALSE(has_keys(cs, {1}));
    EXPECT_FALSE(has_keys(cs, {1}, {3}));  // nor a covering twin of the existing index
    EXPECT_TRUE(has_keys(cs, {3}));
}

TEST(AdvisorCandidates, NonBtreeColumnsAndUnknownTablesAreSkipped) {
    Tables ts{{1, table(1000, 2)}};
    ts.at(1).columns[2].btree = false;
    std::vector<QueryDesc> qs{query(1, {{2, UseKind::Equality}}),
                              query(7, {{1, UseKind::Equality}})};
    EXPECT_TRUE(generate_candidates(qs, ts).empty());
}

TEST(AdvisorCandidates, NullTestGivesPartialVariant) {
    Tables ts{{1, table(100000, 3)}};
    ts.at(1).columns[3].null_frac = 0.02;
    std::vector<QueryDesc> qs{query(1, {{3, UseKind::IsNull}, {1, UseKind::Sort}})};
    auto cs = generate_candidates(qs, ts);
    bool partial = std::any_of(cs.begin(), cs.end(), [](const Candidate &c) {
        return c.keys == std::vector<AttrNum>{1} && c.predicate && c.predicate->attnum == 3 &&
               c.predicate->is_null;
    });
    EXPECT_TRUE(partial);
}

TEST(AdvisorSelection, GreedyPicksOneTwoColumnIndexNotTwoSingles) {
    Tables ts{{1, table(100000, 3)}};
    ts.at(1).columns[1].n_distinct = 1000;
    std::vector<QueryDesc> qs{query(1, {{1, UseKind::Equality}, {2, UseKind::Equality}}, 10)};
    auto cs = generate_candidates(qs, ts);
    auto cost = toy_cost(qs, cs);
    Selection s = select_greedy(qs, cs, ts, cost, SelectionOptions{});
    ASSERT_EQ(s.chosen.size(), 1u);
    EXPECT_EQ(cs[s.chosen[0]].keys.size(), 2u);
    ASSERT_EQ(s.recommendations.size(), 1u);
    EXPECT_DOUBLE_EQ(s.recommendations[0].cost_before, 10000);
    EXPECT_DOUBLE_EQ(s.recommendations[0].cost_after, 100);
    EXPECT_NEAR(s.recommendations[0].improvement_pct(), 99, 1e-9);
}

TEST(AdvisorSelection, MinimumImprovementStopsAndWriteHeavyTablesArePenalised) {
    Tables ts{{1, table(100000, 2)}, {2, table(100000, 2)}};
    ts.at(2).write_share = 0.95;  // 90% better, but worth 47% after the write penalty
    std::vector<QueryDesc> qs{query(1, {{1, UseKind::Equality}}),
                              query(2, {{1, UseKind::Equality}})};
    auto cs = generate_candidates(qs, ts);
    auto cost = toy_cost(qs, cs);
    EXPECT_EQ(select_greedy(qs, cs, ts, cost, SelectionOptions{}).chosen.size(), 2u);
    SelectionOptions half;
    half.min_improvement_pct = 50;
    Selection s = select_greedy(qs, cs, ts, cost, half);
    ASSERT_EQ(s.chosen.size(), 1u);
    EXPECT_EQ(cs[s.chosen[0]].table, 1u);
    // 90% improvement is below a 95% threshold: nothing.
    SelectionOptions strict;
    strict.min_improvement_pct = 95;
    EXPECT_TRUE(select_greedy(qs, cs, ts, cost, strict).chosen.empty());
}

TEST(AdvisorSelection, ExtensionReplacesItsPrefix) {
    Tables ts{{1, table(100000, 3)}};
    ts.at(1).columns[1].n_distinct = 50000;
    ts.at(1).columns[2].n_distinct = 100;
    // Many calls of a one-column lookup, a few of a two-column one.
    std::vector<QueryDesc> qs{query(1, {{1, UseKind::Equality}}, 100),
                              query(1, {{1, UseKind::Equality}, {2, UseKind::Equality}}, 100)};
    auto cs = generate_candidates(qs, ts);
    auto cost = toy_cost(qs, cs);
    Selection s = select_greedy(qs, cs, ts, cost, SelectionOptions{});
    ASSERT_EQ(s.chosen.size(), 1u);
    EXPECT_EQ(cs[s.chosen[0]].keys, (std::vector<AttrNum>{1, 2}));
    EXPECT_EQ(s.recommendations[0].queries.size(), 2u);
}

TEST(AdvisorSelection, GreedyMatchesExhaustiveOnSmallWorkload) {
    Tables ts{{1, table(100000, 4)}, {2, table(50000, 3)}};
    std::vector<QueryDesc> qs;
    for (AttrNum a = 1; a <= 4; ++a) qs.push_back(query(1, {{a, UseKind::Equality}}, a));
    qs.push_back(query(1, {{1, UseKind::Equality}, {3, UseKind::Equality}}, 5));
    for (AttrNum a = 1; a <= 3; ++a) qs.push_back(query(2, {{a, UseKind::Equality}}, 2));
    auto cs = generate_candidates(qs, ts);
    auto cost = toy_cost(qs, cs);
    SelectionOptions options;
    options.min_improvement_pct = 1;
    Selection greedy = select_greedy(qs, cs, ts, cost, options);
    std::vector<size_t> all(cs.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    Selection best = select_exhaustive(qs, cs, all, cost);
    double greedy_gain = greedy.workload_before - greedy.workload_after;
    double best_gain = best.workload_before - best.workload_after;
    EXPECT_GT(best_gain, 0);
    EXPECT_GE(greedy_gain, 0.95 * best_gain);
    EXPECT_LE(greedy.chosen.size(), best.chosen.size());
}

TEST(AdvisorDefinition, QuotesAndClauses) {
    TableInfo t = table(10, 3);
    Candidate c;
    c.keys = {1, 2};
    c.include = {3};
    c.predicate = PartialPredicate{3, false};
    auto quote = [](const std::string &s) { return "\"" + s + "\""; };
    EXPECT_EQ(index_definition(c, t, quote),
              "CREATE INDEX CONCURRENTLY ON public.t USING btree (\"c1\", \"c2\") INCLUDE "
              "(\"c3\") WHERE \"c3\" IS NOT NULL");
}

TEST(AdvisorSelection, CrumbsOfTheWorkloadAreNotWorthAnIndex) {
    Tables ts{{1, table(100000, 2)}};
    // A heavy statement that an index on c1 serves, and a rare one on c2 whose 90% gain is
    // a crumb of the workload.
    std::vector<QueryDesc> qs{query(1, {{1, UseKind::Equality}}, 100000),
                              query(1, {{2, UseKind::Equality}}, 1)};
    auto cs = generate_candidates(qs, ts);
    auto cost = toy_cost(qs, cs);
    Selection s = select_greedy(qs, cs, ts, cost, SelectionOptions{});
    ASSERT_EQ(s.chosen.size(), 1u);
    EXPECT_EQ(cs[s.chosen[0]].keys, (std::vector<AttrNum>{1}));
    SelectionOptions all;
    all.min_workload_pct = 0;
    EXPECT_EQ(select_greedy(qs, cs, ts, cost, all).chosen.size(), 2u);
}

TEST(AdvisorSelection, TopCandidatesPerGroupKeepsTheMostBeneficial) {
    Tables ts{{1, table(100000, 4)}};
    std::vector<QueryDesc> qs{query(1, {{1, UseKind::Equality}}, 100),
                              query(1, {{2, UseKind::Equality}}, 10),
                              query(1, {{3, UseKind::Equality}}, 1),
                              query(1, {{4, UseKind::Range}}, 1000)};  // toy cost: no gain
    auto cs = generate_candidates(qs, ts);
    auto cost = toy_cost(qs, cs);
    std::vector<size_t> top = top_candidates_per_group(qs, cs, cost, 2);
    ASSERT_EQ(top.size(), 2u);
    std::vector<std::vector<AttrNum>> keys;
    for (size_t c : top) keys.push_back(cs[c].keys);
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::vector<AttrNum>>{{1}, {2}}));
}
