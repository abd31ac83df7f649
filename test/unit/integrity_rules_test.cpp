#include "db_virtuoso/integrity/rules.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <set>

#include "db_virtuoso/core/sql_lexer.hpp"

using namespace virtuoso::integrity;

namespace {

std::string error_of(const std::string &json) {
    try {
        parse_rules(json);
    } catch (const RuleError &e) {
        return e.what();
    }
    return "no error";
}

ResolvedOperator catalog_op(const std::string &op, const std::string &left_cast = {},
                            const std::string &right_cast = {}) {
    return {"OPERATOR(pg_catalog." + op + ")", left_cast, right_cast};
}

ResolvedColumn column_of(const std::string &name, const std::string &type) {
    return {name, type, catalog_op("="), catalog_op("<"), catalog_op(">")};
}

Resolved resolved_one(const std::string &column = "\"c\"", const std::string &type = "integer") {
    Resolved r;
    r.table = "public.t";
    r.columns = {column_of(column, type)};
    return r;
}

// The words of sql that call something ("name(") without naming its schema, and the
// operators written outside OPERATOR(schema.op): what search_path could resolve.
std::vector<std::string> unqualified(const std::string &sql) {
    static const std::set<std::string> syntax = {
        "CAST", "EXTRACT",  "COALESCE", "EXISTS", "ANY",  "ARRAY", "ROW",
        "IN",   "FROM",     "WHERE",    "AND",    "OR",   "NOT",   "SELECT",
        "AS",   "OPERATOR", "HAVING",   "WHEN",   "THEN", "ELSE"};
    std::vector<std::string> found;
    auto tokens = virtuoso::core::tokenize(sql);
    for (size_t i = 0; i < tokens.size(); ++i) {
        const auto &t = tokens[i];
        if (t.kind == virtuoso::core::TokenKind::Word && t.is_keyword("OPERATOR")) {
            while (i < tokens.size() && tokens[i].text != ")") ++i;  // OPERATOR(schema.op)
            continue;
        }
        bool call = i + 1 < tokens.size() && tokens[i + 1].text == "(";
        bool qualified = i > 0 && tokens[i - 1].text == ".";
        if (t.kind == virtuoso::core::TokenKind::Word && call && !qualified) {
            std::string upper;
            for (char c : t.text) upper += static_cast<char>(std::toupper(c));
            if (!syntax.count(upper)) found.emplace_back(t.text);
        }
        if (t.kind == virtuoso::core::TokenKind::Punctuation &&
            t.text.find_first_of("=<>|+-!~@#%^&?/:") != std::string_view::npos)
            found.emplace_back(t.text);
    }
    return found;
}

}  // namespace

TEST(IntegrityParse, BasicQueryRuleAsUsersWriteIt) {
    auto rules = parse_rules(
        R"([{"name": "fk_orphans", "query": "SELECT COUNT(*) AS count FROM a", "expected": 0}])");
    ASSERT_EQ(rules.size(), 1u);
    EXPECT_EQ(rules[0].type, RuleType::Query);
    EXPECT_EQ(rules[0].expected, 0);
    EXPECT_EQ(rules[0].op, Operator::Eq);
    EXPECT_EQ(rules[0].severity, Severity::Error);
}

TEST(IntegrityParse, OperatorsSeverityAndTimeout) {
    auto rules = parse_rules(R"([{"name": "a", "query": "q", "expected": 5, "operator": "<=",
                                  "severity": "warn", "timeout": "2s"}])");
    EXPECT_EQ(rules[0].op, Operator::Le);
    EXPECT_EQ(rules[0].severity, Severity::Warn);
    EXPECT_EQ(*rules[0].timeout, "2s");
    EXPECT_EQ(rules[0].expected, 5);
}

TEST(IntegrityParse, TypedRulesAndTheirFields) {
    auto rules = parse_rules(R"([
      {"name": "u", "type": "unique", "table": "s.t", "columns": ["a", "b"]},
      {"name": "f", "type": "foreign_key", "table": "c", "column": "pid", "references": "p", "referenced_column": "id"},
      {"name": "v", "type": "accepted_values", "table": "t", "column": "c", "values": ["x", 1, true, 2.5]},
      {"name": "r", "type": "range", "table": "t", "column": "c", "min": "2024-01-01"},
      {"name": "n", "type": "row_count", "table": "t", "max": 10, "where": "a > 1"}
    ])");
    ASSERT_EQ(rules.size(), 5u);
    EXPECT_EQ(rules[0].columns, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(rules[1].referenced_columns, (std::vector<std::string>{"id"}));
    EXPECT_EQ(rules[2].values, (std::vector<std::string>{"x", "1", "true", "2.5"}));
    EXPECT_EQ(*rules[3].min, "2024-01-01");
    EXPECT_FALSE(rules[3].max);
    EXPECT_EQ(*rules[4].max, "10");
    EXPECT_EQ(*rules[4].where, "a > 1");
}

TEST(IntegrityParse, MalformedInputNamesRuleAndField) {
    EXPECT_EQ(error_of("{}"), "validation_rules must be a JSON array of rule objects, not object");
    EXPECT_NE(error_of("[").find("not valid JSON"), std::string::npos);
    EXPECT_EQ(error_of(R"([{"query": "q"}])"), "rule #1: field \"name\" is required");
    EXPECT_EQ(error_of(R"([{"name": "a", "type": "x"}])").substr(0, 40),
              "rule \"a\": field \"type\" has unknown value");
    EXPECT_EQ(error_of(R"([{"name": "a", "type": "not_null", "table": "t", "column": 1}])"),
              "rule \"a\": field \"column\" must be a string, not number");
    EXPECT_EQ(
        error_of(
            R"([{"name": "a", "type": "not_null", "table": "t", "column": "c", "values": []}])"),
        "rule \"a\": field \"values\" is not known for a not_null rule");
    EXPECT_EQ(error_of(R"([{"name": "a", "query": "q", "expected": 1.5}])"),
              "rule \"a\": field \"expected\" must be an integer, not a fraction");
    EXPECT_EQ(error_of(R"([{"name": "a", "query": "q"}, {"name": "a", "query": "q"}])"),
              "rule \"a\": the name is used by more than one rule");
    EXPECT_EQ(error_of(R"([{"name": "a", "type": "unique", "table": "t", "columns": ["x", "x"]}])"),
              "rule \"a\": field \"columns\" names column \"x\" twice");
    EXPECT_EQ(
        error_of(
            R"([{"name": "a", "type": "unique", "table": "t", "column": "x", "columns": ["y"]}])"),
        "rule \"a\": field \"columns\" cannot be given together with \"column\"");
    EXPECT_EQ(error_of(R"([{"name": "a", "type": "row_count", "table": "t", "min": -1}])"),
              "rule \"a\": field \"min\" must not be negative");
}

TEST(IntegrityParse, FragmentsStayInsideTheirParentheses) {
    EXPECT_FALSE(fragment_problem("a > 1 AND (b < 2)"));
    EXPECT_FALSE(fragment_problem("name <> ')' AND x = ';'"));  // quoted text does not count
    EXPECT_FALSE(fragment_problem("\"odd)name\" = 1"));
    EXPECT_TRUE(fragment_problem("true) OR (true"));
    EXPECT_TRUE(fragment_problem("(true"));
    EXPECT_TRUE(fragment_problem("true; DROP TABLE t"));
    EXPECT_EQ(
        error_of(
            R"([{"name": "a", "type": "expression", "table": "t", "expression": "1) OR (1"}])"),
        "rule \"a\": field \"expression\" has a \")\" without its \"(\"");
}

TEST(IntegritySql, NotNullCountsAndSamplesWithFilter) {
    auto rules = parse_rules(
        R"([{"name": "a", "type": "not_null", "table": "t", "column": "c", "where": "d > 0"}])");
    auto sql = build_sql(rules[0], resolved_one(), 5);
    EXPECT_EQ(sql.count,
              "SELECT pg_catalog.count(*) FROM public.t WHERE \"c\" IS NULL AND (\nd > 0\n)");
    EXPECT_NE(sql.sample.find("LIMIT 5"), std::string::npos);
    EXPECT_TRUE(sql.params.empty());
}

TEST(IntegritySql, ValuesAndBoundsArePassedAsParametersCastToTheColumnType) {
    auto rules = parse_rules(R"([
      {"name": "v", "type": "accepted_values", "table": "t", "column": "c", "values": ["a'b", "c"]},
      {"name": "r", "type": "range", "table": "t", "column": "c", "min": 1, "max": 9}])");
    auto v = build_sql(rules[0], resolved_one("\"c\"", "text"), 5);
    EXPECT_EQ(v.count,
              "SELECT pg_catalog.count(*) FROM public.t WHERE \"c\" IS NOT NULL AND NOT (\"c\" "
              "OPERATOR(pg_catalog.=) ANY (ARRAY[CAST($1 AS text), CAST($2 AS text)]))");
    EXPECT_EQ(*v.params[0], "a'b");
    auto r = build_sql(rules[1], resolved_one(), 5);
    EXPECT_EQ(
        r.count,
        "SELECT pg_catalog.count(*) FROM public.t WHERE \"c\" IS NOT NULL AND ((\"c\" "
        "OPERATOR(pg_catalog.<) CAST($1 AS integer)) OR (\"c\" OPERATOR(pg_catalog.>) CAST($2 "
        "AS integer)))");
    EXPECT_EQ(r.params.size(), 2u);
}

TEST(IntegritySql, ForeignKeyUsesNotExistsOnEveryColumn) {
    auto rules =
        parse_rules(R"([{"name": "f", "type": "foreign_key", "table": "c", "columns": ["a", "b"],
                                  "references": "p", "referenced_columns": ["x", "y"]}])");
    Resolved r;
    r.table = "public.c";
    r.columns = {column_of("a", "integer"), column_of("b", "bigint")};
    r.parent = "public.p";
    r.parent_columns = {column_of("x", "integer"), column_of("y", "text")};
    r.parent_columns[1].eq = catalog_op("=", "", "pg_catalog.text");  // y = CAST(b AS text)
    auto sql = build_sql(rules[0], r, 5);
    EXPECT_EQ(sql.count,
              "SELECT pg_catalog.count(*) FROM public.c WHERE public.c.a IS NOT NULL AND "
              "public.c.b IS NOT NULL AND NOT EXISTS (SELECT 1 FROM public.p AS virtuoso_parent "
              "WHERE (virtuoso_parent.x OPERATOR(pg_catalog.=) public.c.a) AND (virtuoso_parent.y "
              "OPERATOR(pg_catalog.=) CAST(public.c.b AS pg_catalog.text)))");
}

TEST(IntegritySql, UniqueCountsOffendingRows) {
    auto rules = parse_rules(R"([{"name": "u", "type": "unique", "table": "t", "column": "c"}])");
    auto sql = build_sql(rules[0], resolved_one(), 3);
    EXPECT_EQ(
        sql.count,
        "SELECT CAST(coalesce(pg_catalog.sum(virtuoso_n), 0) AS pg_catalog.int8) FROM (SELECT "
        "pg_catalog.count(*) AS virtuoso_n FROM public.t WHERE \"c\" IS NOT NULL GROUP BY "
        "\"c\" HAVING (pg_catalog.count(*) OPERATOR(pg_catalog.>) 1)) AS virtuoso_dup");
    EXPECT_NE(sql.sample.find("LIMIT 3"), std::string::npos);
}

TEST(IntegrityJudge, StatusesAndBounds) {
    auto rules = parse_rules(R"([
      {"name": "q", "query": "x", "expected": 3, "operator": ">="},
      {"name": "n", "type": "not_null", "table": "t", "column": "c", "severity": "warn"},
      {"name": "rc", "type": "row_count", "table": "t", "min": 5, "max": 10}])");
    Measurement m;
    m.count = 3;
    EXPECT_EQ(judge(rules[0], {}, m).status, "PASS");
    m.count = 2;
    EXPECT_EQ(judge(rules[0], {}, m).status, "FAIL");
    m.sample = {"(1,)", "(2,)"};
    auto v = judge(rules[1], resolved_one(), m);
    EXPECT_EQ(v.status, "WARN");
    EXPECT_EQ(v.message, "2 rows of public.t have NULL in \"c\"; first 2: (1,), (2,)");
    m.sample.clear();
    m.count = 11;
    v = judge(rules[2], resolved_one(), m);
    EXPECT_EQ(v.status, "FAIL");
    EXPECT_EQ(v.expected_count, 10);
    m.count = 4;
    EXPECT_EQ(judge(rules[2], resolved_one(), m).expected_count, 5);
    m.count = 7;
    EXPECT_EQ(judge(rules[2], resolved_one(), m).status, "PASS");
}

TEST(IntegrityJudge, CompareOperators) {
    EXPECT_TRUE(compare(Operator::Eq, 1, 1));
    EXPECT_TRUE(compare(Operator::Lt, 1, 2));
    EXPECT_FALSE(compare(Operator::Gt, 2, 2));
    EXPECT_TRUE(compare(Operator::Ge, 2, 2));
    EXPECT_FALSE(compare(Operator::Le, 3, 2));
}

TEST(IntegritySql, ExpressionFailsOnlyWhenFalseAndFreshnessComparesWithAnInterval) {
    auto rules = parse_rules(R"([
      {"name": "e", "type": "expression", "table": "t", "expression": "a > 0"},
      {"name": "f", "type": "freshness", "table": "t", "column": "c", "max_age": "1 day"}])");
    auto e = build_sql(rules[0], resolved_one(), 5);
    EXPECT_EQ(e.count, "SELECT pg_catalog.count(*) FROM public.t WHERE (\na > 0\n) IS FALSE");
    auto f = build_sql(rules[1], resolved_one("\"c\"", "timestamp with time zone"), 5);
    ASSERT_EQ(f.params.size(), 1u);  // max_age, used twice
    EXPECT_EQ(*f.params[0], "1 day");
    EXPECT_NE(f.count.find("(CAST(pg_catalog.max(\"c\") AS pg_catalog.timestamptz) "
                           "OPERATOR(pg_catalog.>=) (pg_catalog.now() OPERATOR(pg_catalog.-) "
                           "CAST($1 AS pg_catalog.interval)))"),
              std::string::npos);
    EXPECT_TRUE(f.sample.empty());
}

TEST(IntegrityJudge, FreshnessUsesAgeAndMaxAge) {
    auto rules = parse_rules(
        R"([{"name": "f", "type": "freshness", "table": "t", "column": "c", "max_age": "1 hour"}])");
    Measurement m;
    m.newest = "2020-01-01";
    m.age_s = 7200;
    m.max_age_s = 3600;
    m.fresh = false;
    auto v = judge(rules[0], resolved_one(), m);
    EXPECT_EQ(v.status, "FAIL");
    EXPECT_EQ(v.result_count, 7200);
    EXPECT_EQ(v.expected_count, 3600);
    m = Measurement{};
    m.max_age_s = 3600;
    v = judge(rules[0], resolved_one(), m);
    EXPECT_EQ(v.status, "FAIL");
    EXPECT_EQ(v.message, "public.t has no \"c\" value to judge freshness by");
}

TEST(IntegritySql, OperatorCastsGoWhereTheResolvedOperatorNeedsThem) {
    EXPECT_EQ(apply(catalog_op("=", "pg_catalog.text", "pg_catalog.text"), "a", "b"),
              "(CAST(a AS pg_catalog.text) OPERATOR(pg_catalog.=) CAST(b AS pg_catalog.text))");
    EXPECT_EQ(apply({"OPERATOR(\"my schema\".=)", "", ""}, "a", "b"),
              "(a OPERATOR(\"my schema\".=) b)");
    // accepted_values on varchar: both sides cast to text for text's "=".
    auto rules = parse_rules(
        R"([{"name": "v", "type": "accepted_values", "table": "t", "column": "c", "values": ["x"]}])");
    auto r = resolved_one("\"c\"", "character varying");
    r.columns[0].eq = catalog_op("=", "pg_catalog.text", "pg_catalog.text");
    EXPECT_EQ(build_sql(rules[0], r, 5).count,
              "SELECT pg_catalog.count(*) FROM public.t WHERE \"c\" IS NOT NULL AND NOT "
              "(CAST(\"c\" AS pg_catalog.text) OPERATOR(pg_catalog.=) ANY (ARRAY[CAST(CAST($1 AS "
              "character varying) AS pg_catalog.text)]))");
}

TEST(IntegritySql, AnUnresolvedOperatorIsAnErrorNotAGuess) {
    auto rules = parse_rules(R"([
      {"name": "v", "type": "accepted_values", "table": "t", "column": "c", "values": ["x"]},
      {"name": "u", "type": "unique", "table": "t", "column": "c"},
      {"name": "r", "type": "range", "table": "t", "column": "c", "max": 1}])");
    Resolved r;
    r.table = "public.t";
    r.columns = {{"\"c\"", "json", std::nullopt, std::nullopt, std::nullopt}};
    for (const auto &rule : rules) EXPECT_THROW(build_sql(rule, r, 5), RuleError) << rule.name;
}

// Nothing the extension writes into a typed rule's SQL is left to search_path: every call
// names pg_catalog and every operator is OPERATOR(schema.op).
TEST(IntegritySql, EveryGeneratedCallAndOperatorNamesItsSchema) {
    auto rules = parse_rules(R"([
      {"name": "n", "type": "not_null", "table": "t", "column": "c"},
      {"name": "u", "type": "unique", "table": "t", "columns": ["c", "d"]},
      {"name": "f", "type": "foreign_key", "table": "t", "column": "c", "references": "p", "referenced_column": "c"},
      {"name": "v", "type": "accepted_values", "table": "t", "column": "c", "values": [1, 2]},
      {"name": "rc", "type": "row_count", "table": "t", "min": 1},
      {"name": "r", "type": "range", "table": "t", "column": "c", "min": 1, "max": 9},
      {"name": "e", "type": "expression", "table": "t", "expression": "true"},
      {"name": "fr", "type": "freshness", "table": "t", "column": "c", "max_age": "1 day"}])");
    Resolved r = resolved_one();
    r.columns.push_back(column_of("d", "integer"));
    r.parent = "public.p";
    r.parent_columns = {column_of("c", "integer")};
    for (const auto &rule : rules) {
        Resolved one = r;
        if (rule.type != RuleType::Unique) one.columns.resize(1);
        auto sql = build_sql(rule, one, 5);
        EXPECT_EQ(unqualified(sql.count), std::vector<std::string>{}) << sql.count;
        EXPECT_EQ(unqualified(sql.sample), std::vector<std::string>{}) << sql.sample;
    }
    // and the check itself finds what it looks for
    EXPECT_EQ(unqualified("SELECT count(*) FROM t WHERE a = b"),
              (std::vector<std::string>{"count", "="}));
}

TEST(IntegrityJudge, ANoteSaysWhyThereIsNoSample) {
    auto rules = parse_rules(R"([{"name": "n", "type": "not_null", "table": "t", "column": "c"}])");
    Measurement m;
    m.count = 1;
    m.sample_note = "no sample (permission denied for table t)";
    EXPECT_EQ(judge(rules[0], resolved_one(), m).message,
              "1 row of public.t has NULL in \"c\"; no sample (permission denied for table t)");
    m.count = 0;
    EXPECT_EQ(judge(rules[0], resolved_one(), m).message, "0 rows of public.t have NULL in \"c\"");
}
