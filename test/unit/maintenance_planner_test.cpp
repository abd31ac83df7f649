#include <gtest/gtest.h>

#include "db_virtuoso/maintenance/planner.hpp"

using namespace virtuoso::maintenance;

namespace {

TableStats table(const std::string &name, int64_t live, int64_t dead, int64_t mods = 0,
                 int64_t xid_age = 100) {
    TableStats t;
    t.relid = static_cast<uint32_t>(name.size());
    t.schema = "public";
    t.name = name;
    t.live_tuples = live;
    t.dead_tuples = dead;
    t.modified_since_analyze = mods;
    t.xid_age = xid_age;
    return t;
}

std::string quote(const std::string &s) {
    return "\"" + s + "\"";
}

class FakeExecutor : public Executor {
  public:
    std::vector<std::string> performed;
    Outcome perform(const Decision &d) override {
        performed.push_back(d.table.name);
        return {kSuccess, d.reason, 0.5};
    }
};

}  // namespace

TEST(MaintenancePlanner, FreshTableNeedsNothing) {
    Thresholds t;
    EXPECT_EQ(decide(table("fresh", 10000, 10), t).action, Action::None);
}

TEST(MaintenancePlanner, VacuumDueAtBasePlusScale) {
    Thresholds t;                                                              // 1000 + 10 %
    EXPECT_EQ(decide(table("small", 100, 900), t).action, Action::None);       // 900 < 1010
    EXPECT_EQ(decide(table("big", 1000000, 100000), t).action, Action::None);  // < 101000
    Decision d = decide(table("bloated", 10000, 5000), t);
    EXPECT_EQ(d.action, Action::Vacuum);
    EXPECT_DOUBLE_EQ(d.dead_pct, 50.0);
    EXPECT_NE(d.reason.find("5000 dead tuples = 50.0% of 10000 live (due at 2000 = 1000 + 10%)"),
              std::string::npos)
        << d.reason;
    EXPECT_FALSE(d.also_analyze);
}

TEST(MaintenancePlanner, ExactThresholdCounts) {
    Thresholds t;
    t.dead_tuple_threshold = 1000;
    t.dead_tuple_pct = 10;
    EXPECT_EQ(due_count(10000, t), 2000);
    EXPECT_EQ(decide(table("edge", 10000, 2000), t).action, Action::Vacuum);
    EXPECT_EQ(decide(table("below", 10000, 1999), t).action, Action::None);
}

TEST(MaintenancePlanner, TinyHotTableNeedsTheBaseCount) {
    Thresholds t;  // a 10-row table: due at 1001 changes, not at 10 % of it
    EXPECT_EQ(decide(table("tiny", 10, 0, 1000), t).action, Action::None);
    EXPECT_EQ(decide(table("tiny", 10, 0, 1001), t).action, Action::Analyze);
}

TEST(MaintenancePlanner, MinimumIntervalPerKind) {
    Thresholds t;
    t.min_interval_s = 60;
    TableStats hot = table("hot", 10, 2000, 2000);
    hot.seconds_since_vacuum = 5;
    hot.seconds_since_analyze = 5;
    EXPECT_EQ(decide(hot, t).action, Action::None);  // both done 5 s ago
    hot.seconds_since_analyze = 61;
    Decision d = decide(hot, t);  // only the ANALYZE is due again
    EXPECT_EQ(d.action, Action::Analyze);
    hot.seconds_since_vacuum = std::nullopt;  // never vacuumed: due, and analyzes too
    d = decide(hot, t);
    EXPECT_EQ(d.action, Action::Vacuum);
    EXPECT_TRUE(d.also_analyze);
    t.min_interval_s = 0;  // no minimum
    hot.seconds_since_vacuum = 1;
    hot.seconds_since_analyze = 1;
    EXPECT_EQ(decide(hot, t).action, Action::Vacuum);
}

TEST(MaintenancePlanner, FreezeIgnoresTheMinimumInterval) {
    Thresholds t;
    t.min_interval_s = 60;
    t.freeze_xid_age = 1000;
    TableStats old = table("old", 10, 0, 0, 5000);
    old.seconds_since_vacuum = 1;
    EXPECT_EQ(decide(old, t).action, Action::VacuumFreeze);
}

TEST(MaintenancePlanner, OnlyDeadTuplesIsHundredPercent) {
    EXPECT_DOUBLE_EQ(dead_tuple_pct(5000, 0), 100.0);
    EXPECT_DOUBLE_EQ(dead_tuple_pct(0, 0), 0.0);
    EXPECT_EQ(decide(table("emptied", 0, 5000), Thresholds{}).action, Action::Vacuum);
}

TEST(MaintenancePlanner, AnalyzeAfterBulkLoad) {
    Decision d = decide(table("loaded", 50000, 0, 50000), Thresholds{});
    EXPECT_EQ(d.action, Action::Analyze);
    EXPECT_NE(d.reason.find("50000 rows changed since the last analyze"), std::string::npos);
}

TEST(MaintenancePlanner, VacuumAlsoAnalyzesWhenBothDue) {
    Decision d = decide(table("both", 10000, 5000, 8000), Thresholds{});
    EXPECT_EQ(d.action, Action::Vacuum);
    EXPECT_TRUE(d.also_analyze);
    EXPECT_EQ(command_for(d, quote), "VACUUM (ANALYZE) \"public\".\"both\"");
}

TEST(MaintenancePlanner, FreezeWhenOld) {
    Thresholds t;
    t.freeze_xid_age = 1000;
    Decision d = decide(table("old", 10, 0, 0, 1500), t);
    EXPECT_EQ(d.action, Action::VacuumFreeze);
    EXPECT_NE(d.reason.find("transaction ID age 1500 reached the freeze limit 1000"),
              std::string::npos);
    EXPECT_EQ(command_for(d, quote), "VACUUM (FREEZE) \"public\".\"old\"");

    TableStats multi = table("multi", 10, 0);
    multi.mxid_age = 2000;
    t.freeze_mxid_age = 1000;
    d = decide(multi, t);
    EXPECT_EQ(d.action, Action::VacuumFreeze);
    EXPECT_NE(d.reason.find("multixact ID age 2000"), std::string::npos);
}

TEST(MaintenancePlanner, FreezeBeatsVacuumAndAnalyzes) {
    Thresholds t;
    t.freeze_xid_age = 1000;
    Decision d = decide(table("old_bloated", 10000, 5000, 5000, 5000), t);
    EXPECT_EQ(d.action, Action::VacuumFreeze);
    EXPECT_EQ(command_for(d, quote), "VACUUM (FREEZE, ANALYZE) \"public\".\"old_bloated\"");
}

// A busy table is vacuumed without the end-of-table truncation (its ACCESS EXCLUSIVE lock
// would be retried for seconds); the choice is in the command and the reason.
TEST(MaintenancePlanner, BusyTableVacuumsWithoutTruncation) {
    Decision d = decide(table("hot", 10000, 5000), Thresholds{});
    skip_truncation(d, "2 locks held or awaited by other sessions");
    EXPECT_FALSE(d.truncate);
    EXPECT_EQ(command_for(d, quote), "VACUUM (TRUNCATE false) \"public\".\"hot\"");
    EXPECT_NE(d.reason.find("; without truncation: 2 locks held or awaited by other sessions"),
              std::string::npos);

    d = decide(table("hot_both", 10000, 5000, 8000), Thresholds{});
    skip_truncation(d, "busy");
    EXPECT_EQ(command_for(d, quote), "VACUUM (ANALYZE, TRUNCATE false) \"public\".\"hot_both\"");

    Thresholds t;
    t.freeze_xid_age = 1000;
    d = decide(table("hot_old", 10, 0, 0, 1500), t);
    skip_truncation(d, "busy");
    EXPECT_EQ(command_for(d, quote), "VACUUM (FREEZE, TRUNCATE false) \"public\".\"hot_old\"");

    d = decide(table("analyze_only", 50000, 0, 50000), Thresholds{});
    const std::string reason = d.reason;
    skip_truncation(d, "busy");
    EXPECT_EQ(command_for(d, quote), "ANALYZE \"public\".\"analyze_only\"");
    EXPECT_EQ(d.reason, reason);
}

TEST(MaintenancePlanner, OrderFreezeOldestFirstThenVacuumThenAnalyze) {
    Thresholds t;
    t.freeze_xid_age = 1000;
    std::vector<TableStats> tables{
        table("analyze_me", 100000, 0, 50000), table("vacuum_small", 10000, 2000),
        table("old", 10, 0, 0, 2000),          table("fresh", 100, 0),
        table("vacuum_big", 10000, 9000),      table("oldest", 10, 0, 0, 9000),
    };
    auto p = plan(tables, t);
    std::vector<std::string> names;
    for (const auto &d : p) names.push_back(d.table.name);
    EXPECT_EQ(names, (std::vector<std::string>{"oldest", "old", "vacuum_big", "vacuum_small",
                                               "analyze_me"}));
}

TEST(MaintenancePlanner, CommandQuotesNames) {
    Decision d = decide(table("we\"ird", 0, 5000), Thresholds{});
    auto q = [](const std::string &s) { return "<" + s + ">"; };
    EXPECT_EQ(command_for(d, q), "VACUUM <public>.<we\"ird>");
}

TEST(MaintenanceRound, DryRunPerformsNothing) {
    FakeExecutor ex;
    RoundSettings s;
    s.dry_run = true;
    auto rows = run_round(plan({table("a", 0, 5000)}, Thresholds{}), s, ex, [] { return 0.0; });
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].outcome.status, kDryRun);
    EXPECT_TRUE(ex.performed.empty());
}

TEST(MaintenanceRound, SkipsWhatTheRoleMayNotMaintain) {
    FakeExecutor ex;
    TableStats foreign = table("foreign", 0, 5000);
    foreign.may_maintain = false;
    auto rows = run_round(plan({foreign, table("mine", 0, 5000)}, Thresholds{}), RoundSettings{},
                          ex, [] { return 0.0; });
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].outcome.status, kSkipped);
    EXPECT_NE(rows[0].outcome.reason.find("permission denied"), std::string::npos);
    EXPECT_EQ(rows[1].outcome.status, kSuccess);
    EXPECT_EQ(ex.performed, std::vector<std::string>{"mine"});
}

TEST(MaintenanceRound, OutsideTheWindowNothingRuns) {
    FakeExecutor ex;
    RoundSettings s;
    std::string error;
    s.window = *virtuoso::core::TimeWindow::parse("01:00-05:00", &error);
    s.window_text = "01:00-05:00";
    s.minute_of_day = 12 * 60;
    auto rows = run_round(plan({table("a", 0, 5000)}, Thresholds{}), s, ex, [] { return 0.0; });
    EXPECT_EQ(rows[0].outcome.status, kSkipped);
    EXPECT_EQ(rows[0].outcome.reason, "outside the maintenance window 01:00-05:00");
    s.minute_of_day = 2 * 60;
    rows = run_round(plan({table("a", 0, 5000)}, Thresholds{}), s, ex, [] { return 0.0; });
    EXPECT_EQ(rows[0].outcome.status, kSuccess);
}

TEST(MaintenanceRound, BudgetStopsNewActions) {
    FakeExecutor ex;
    RoundSettings s;
    s.budget_seconds = 1;
    double clock = 0;
    std::vector<TableStats> tables{table("a", 0, 9000), table("b", 0, 8000), table("c", 0, 7000)};
    struct Slow : FakeExecutor {
        double *clock;
        Outcome perform(const Decision &d) override {
            *clock += 0.6;
            return FakeExecutor::perform(d);
        }
    } slow;
    slow.clock = &clock;
    auto rows = run_round(plan(tables, Thresholds{}), s, slow, [&] { return clock; });
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].outcome.status, kSuccess);
    EXPECT_EQ(rows[1].outcome.status, kSuccess);
    EXPECT_EQ(rows[2].outcome.status, kSkipped);
    EXPECT_NE(rows[2].outcome.reason.find("time budget"), std::string::npos);
}
