#include <gtest/gtest.h>

#include "db_virtuoso/plan/plan.hpp"

using namespace virtuoso::plan;

namespace {

bool mentions(const std::vector<std::string> &problems, const std::string &needle) {
    for (const auto &p : problems)
        if (p.find(needle) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST(PlanParse, EveryProblemIsListed) {
    auto r = parse_plan(R"J({"name": "p", "bogus": 1, "changes": [
        {"name": "a", "type": "create_tabel", "definition": "CREATE TABLE a (id int)"},
        {"name": "a", "type": "sql"},
        {"name": "c", "type": "sql", "definition": "UPDATE t SET x = 1"},
        {"name": "d", "type": "scaffold", "definition": {"table": "nope", "api_schema": "api"}}
    ], "options": {"lint": "maybe"}})J");
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(mentions(r.problems, "unknown key \"bogus\""));
    EXPECT_TRUE(mentions(r.problems, "unknown type \"create_tabel\""));
    EXPECT_TRUE(mentions(r.problems, "duplicate step name"));
    EXPECT_TRUE(mentions(r.problems, "missing definition"));
    EXPECT_TRUE(mentions(r.problems, "step 3 (\"c\"): needs a \"rollback\""));
    EXPECT_TRUE(mentions(r.problems, "earlier create_table step"));
    EXPECT_TRUE(mentions(r.problems, "option \"lint\""));
    EXPECT_EQ(r.problems.size(), 7u);
}

TEST(PlanParse, StepNamesCannotHoldTheSeparator) {
    auto r = parse_plan(R"J({"name": "p", "changes": [
        {"name": "a/b", "type": "create_table", "definition": "CREATE TABLE a (id int)"}]})J");
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(mentions(r.problems, "must not contain '/'"));
}

TEST(PlanParse, NotAnObject) {
    EXPECT_FALSE(parse_plan("[1]").ok());
    EXPECT_FALSE(parse_plan(R"J({"name": "p", "changes": []})J").ok());
}

TEST(PlanParse, StructuredCreateTableIsQuotedAndRolledBack) {
    auto r = parse_plan(R"J({"name": "p", "changes": [
        {"name": "t", "type": "create_table", "definition": {"schema": "s", "table": "Ta\"b",
         "columns": [{"name": "id", "type": "bigint", "not_null": true},
                     {"name": "p", "type": "int", "references": {"table": "par", "column": "id"}}],
         "primary_key": ["id"]}},
        {"name": "dal", "type": "scaffold", "definition": {"schema": "s", "table": "Ta\"b", "api_schema": "api"}}]})J");
    ASSERT_TRUE(r.ok()) << r.problems[0];
    const Step &s = r.plan.steps[0];
    EXPECT_NE(s.sql.find("CREATE TABLE \"s\".\"Ta\"\"b\""), std::string::npos) << s.sql;
    EXPECT_NE(s.sql.find("REFERENCES \"par\" (\"id\")"), std::string::npos) << s.sql;
    EXPECT_NE(s.sql.find("PRIMARY KEY (\"id\")"), std::string::npos) << s.sql;
    EXPECT_EQ(*s.rollback, "DROP TABLE \"s\".\"Ta\"\"b\"");
    EXPECT_TRUE(s.rollback_derived);
    EXPECT_FALSE(r.plan.needs_procedure());
}

TEST(PlanParse, FragmentsCannotEndTheStatement) {
    auto r = parse_plan(R"J({"name": "p", "changes": [{"name": "t", "type": "create_table",
        "definition": {"table": "t", "columns": [{"name": "id", "type": "int); DROP TABLE x; --"}]}}]})J");
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(mentions(r.problems, "type is not one type"));
}

TEST(PlanParse, IndexIsConcurrentAndNeedsTheProcedure) {
    auto r = parse_plan(R"J({"name": "p", "changes": [
        {"name": "i", "type": "create_index", "definition": "CREATE INDEX t_v ON s.t (v)"}]})J");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.plan.steps[0].sql, "CREATE INDEX CONCURRENTLY t_v ON s.t (v)");
    EXPECT_EQ(*r.plan.steps[0].rollback, "DROP INDEX CONCURRENTLY IF EXISTS \"s\".\"t_v\"");
    EXPECT_TRUE(r.plan.needs_procedure());
}

TEST(DeriveRollback, ObviousOnly) {
    EXPECT_EQ(*derive_rollback("CREATE TABLE \"A\".b (id int);"), "DROP TABLE \"A\".\"b\"");
    EXPECT_FALSE(derive_rollback("CREATE TABLE IF NOT EXISTS b (id int)"));
    EXPECT_EQ(*derive_rollback("ALTER TABLE t ADD COLUMN x int DEFAULT f(1, 2), ADD y text"),
              "ALTER TABLE \"t\" DROP COLUMN IF EXISTS \"x\", DROP COLUMN IF EXISTS \"y\"");
    EXPECT_FALSE(derive_rollback("ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0)"));
    EXPECT_FALSE(derive_rollback("ALTER TABLE t ADD COLUMN x int, DROP COLUMN y"));
    EXPECT_FALSE(derive_rollback("CREATE TABLE a (id int); CREATE TABLE b (id int)"));
    EXPECT_FALSE(derive_rollback("CREATE INDEX ON t (v)"));
    EXPECT_FALSE(derive_rollback("UPDATE t SET v = 1"));
}

TEST(Scaffold, TypedFunctionsByKey) {
    TableShape t;
    t.table = {std::string("app"), "order"};
    t.columns = {{"id", "bigint", true, false},
                 {"note", "text", false, false},
                 {"total", "numeric(10,2)", false, false}};
    t.key = {"id"};
    t.key_equality = {"OPERATOR(pg_catalog.=)"};
    std::string error;
    auto s = scaffold_sql(t, "api", true, &error);
    ASSERT_TRUE(s) << error;
    EXPECT_EQ(s->functions.size(), 4u);
    EXPECT_EQ(s->functions[0], "\"api\".\"get_order\"(bigint)");
    EXPECT_EQ(s->functions[1], "\"api\".\"insert_order\"(text, numeric(10,2))");
    EXPECT_EQ(s->functions[2], "\"api\".\"update_order\"(bigint, text, numeric(10,2))");
    EXPECT_NE(s->sql.find("REVOKE ALL ON FUNCTION \"api\".\"delete_order\"(bigint) FROM PUBLIC"),
              std::string::npos);
    EXPECT_NE(s->rollback.find("DROP SCHEMA IF EXISTS \"api\""), std::string::npos);
    t.key.clear();
    t.key_equality.clear();
    EXPECT_FALSE(scaffold_sql(t, "api", false, &error));
    EXPECT_NE(error.find("no primary key"), std::string::npos);
}
