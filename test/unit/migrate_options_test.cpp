#include "db_virtuoso/migrate/options.hpp"

#include <gtest/gtest.h>

using virtuoso::migrate::backoff_ms;
using virtuoso::migrate::OptionError;
using virtuoso::migrate::parse_options;

TEST(MigrationOptions, DefaultsFromEmptyObject) {
    OptionError err;
    auto o = parse_options("{}", &err);
    ASSERT_TRUE(o);
    EXPECT_TRUE(o->transactional);
    EXPECT_FALSE(o->dry_run);
    EXPECT_FALSE(o->force);
    EXPECT_FALSE(o->lock_timeout);
    EXPECT_FALSE(o->max_retries);
    // the gate is on by default: a lint error refuses the migration
    EXPECT_EQ(o->lint, virtuoso::migrate::LintMode::Error);
    EXPECT_FALSE(o->max_plan_regression);
}

TEST(MigrationOptions, ReadsTheGateOptions) {
    OptionError err;
    auto o = parse_options(R"({"lint": "warn", "max_plan_regression": 2})", &err);
    ASSERT_TRUE(o) << err.message;
    EXPECT_EQ(o->lint, virtuoso::migrate::LintMode::Warn);
    EXPECT_DOUBLE_EQ(*o->max_plan_regression, 2.0);
    o = parse_options(R"({"lint": "off", "max_plan_regression": 1.5})", &err);
    ASSERT_TRUE(o) << err.message;
    EXPECT_EQ(o->lint, virtuoso::migrate::LintMode::Off);
    EXPECT_DOUBLE_EQ(*o->max_plan_regression, 1.5);
    o = parse_options(R"({"lint": "error"})", &err);
    ASSERT_TRUE(o) << err.message;
    EXPECT_EQ(o->lint, virtuoso::migrate::LintMode::Error);
}

TEST(MigrationOptions, ReadsEveryOption) {
    OptionError err;
    auto o = parse_options(
        R"({"lock_timeout": "500ms", "statement_timeout": 2000, "max_retries": 3,
            "validation_rules": [{"name": "r", "query": "SELECT 0", "expected": 0}],
            "transactional": true, "dry_run": true, "force": true})",
        &err);
    ASSERT_TRUE(o) << err.message;
    EXPECT_EQ(*o->lock_timeout, "500ms");
    EXPECT_EQ(*o->statement_timeout, "2000ms");
    EXPECT_EQ(*o->max_retries, 3);
    EXPECT_NE(o->validation_rules->find("\"expected\":0"), std::string::npos);
    EXPECT_TRUE(o->dry_run);
    EXPECT_TRUE(o->force);
}

TEST(MigrationOptions, NamesTheBadOption) {
    struct Case {
        const char *json;
        const char *says;
    } cases[] = {
        {R"({"lock_timout": "1s"})", "unknown option \"lock_timout\""},
        {R"({"max_retries": "3"})", "\"max_retries\" must be an integer, got string"},
        {R"({"max_retries": -1})", "between 0 and 1000"},
        {R"({"max_retries": 1.5})", "must be an integer, got number"},
        {R"({"transactional": "no"})", "\"transactional\" must be a boolean"},
        {R"({"dry_run": 1})", "\"dry_run\" must be a boolean"},
        {R"({"lock_timeout": true})", "\"lock_timeout\" must be a duration"},
        {R"({"lock_timeout": ""})", "must not be empty"},
        {R"({"statement_timeout": -5})", "must not be negative"},
        {R"({"validation_rules": {"name": "x"}})", "must be a JSON array, got object"},
        {R"({"transactional": false, "dry_run": true})", "needs a transactional migration"},
        {R"([1, 2])", "options must be a JSON object"},
        {R"(not json)", "options is not valid JSON"},
        {R"({"max_retries": 99999999999999999999999999999999})", "must be an integer, got number"},
        {R"({"max_retries": 1e400})", "options is not valid JSON"},
        {R"({"lint": "strict"})", "\"lint\" must be \"error\", \"warn\" or \"off\""},
        {R"({"lint": true})", "\"lint\" must be \"error\", \"warn\" or \"off\", got boolean"},
        {R"({"lint": "ERROR"})", "\"lint\" must be"},
        {R"({"max_plan_regression": 0})", "\"max_plan_regression\" must be at least 1"},
        {R"({"max_plan_regression": -2})", "\"max_plan_regression\" must be at least 1"},
        {R"({"max_plan_regression": 0.5})", "\"max_plan_regression\" must be at least 1"},
        {R"({"max_plan_regression": "2"})", "\"max_plan_regression\" must be a number, got string"},
        {R"({"max_plan_regression": null})", "must be a number, got null"},
        {R"({"transactional": false, "max_plan_regression": 2})",
         "needs a transactional migration"},
    };
    for (const auto &c : cases) {
        OptionError err;
        EXPECT_FALSE(parse_options(c.json, &err)) << c.json;
        EXPECT_NE(err.message.find(c.says), std::string::npos) << c.json << " -> " << err.message;
    }
}

TEST(Backoff, GrowsExponentiallyWithinJitterAndCap) {
    std::mt19937_64 rng(42);
    for (int attempt = 1; attempt <= 12; ++attempt) {
        long expected = std::min(50L << (attempt - 1), 2000L);
        for (int i = 0; i < 50; ++i) {
            long ms = backoff_ms(attempt, 50, 2000, rng);
            EXPECT_GE(ms, expected / 2) << attempt;
            EXPECT_LE(ms, expected) << attempt;
        }
    }
}
