#include "db_virtuoso/core/sql_lexer.hpp"

#include <gtest/gtest.h>

using virtuoso::core::leading_word;
using virtuoso::core::may_be_query;
using virtuoso::core::tokenize;
using virtuoso::core::TokenKind;
using virtuoso::core::with_concurrently;

TEST(SqlLexer, SkipsCommentsAndKeepsQuotedText) {
    auto tokens =
        tokenize("/* a /* nested */ comment */ SELECT 'it''s -- not a comment' -- end\n, 1");
    ASSERT_EQ(tokens.size(), 4u);
    EXPECT_TRUE(tokens[0].is_keyword("SELECT"));
    EXPECT_EQ(tokens[1].kind, TokenKind::String);
    EXPECT_EQ(tokens[1].text, "'it''s -- not a comment'");
    EXPECT_EQ(tokens[2].text, ",");
    EXPECT_EQ(tokens[3].kind, TokenKind::Number);
}

TEST(SqlLexer, DollarQuotesParametersAndIdentifiers) {
    auto tokens = tokenize("SELECT $f$ a ; b $f$, $1, \"Mixed \"\"Case\"\"\" FROM t");
    ASSERT_EQ(tokens.size(), 8u);
    EXPECT_EQ(tokens[1].kind, TokenKind::String);
    EXPECT_EQ(tokens[1].text, "$f$ a ; b $f$");
    EXPECT_EQ(tokens[3].kind, TokenKind::Parameter);
    EXPECT_EQ(tokens[5].kind, TokenKind::QuotedIdentifier);
    EXPECT_TRUE(tokens[6].is_keyword("FROM"));
}

TEST(SqlLexer, EscapeStringsAndUnterminatedInput) {
    auto tokens = tokenize("SELECT E'a\\'b' x");
    ASSERT_EQ(tokens.size(), 3u);
    EXPECT_EQ(tokens[1].text, "E'a\\'b'");
    // Unterminated input ends as one token: the server's parser reports it.
    auto broken = tokenize("SELECT 'never closed");
    ASSERT_EQ(broken.size(), 2u);
    EXPECT_EQ(broken[1].kind, TokenKind::String);
}

TEST(SqlLexer, KeywordsAreCaseInsensitiveButNotQuoted) {
    auto tokens = tokenize("create \"INDEX\" index");
    EXPECT_TRUE(tokens[0].is_keyword("CREATE"));
    EXPECT_FALSE(tokens[1].is_keyword("INDEX"));
    EXPECT_TRUE(tokens[2].is_keyword("INDEX"));
}

TEST(WithConcurrently, AddsTheKeywordWhereMissing) {
    std::string error;
    EXPECT_EQ(*with_concurrently("CREATE INDEX i ON t (a)", &error),
              "CREATE INDEX CONCURRENTLY i ON t (a)");
    EXPECT_EQ(*with_concurrently("create unique index on t(a)", &error),
              "create unique index CONCURRENTLY on t(a)");
    EXPECT_EQ(*with_concurrently("-- why\nCREATE /* c */ INDEX IF NOT EXISTS i ON t (a)", &error),
              "-- why\nCREATE /* c */ INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)");
}

TEST(WithConcurrently, KeepsItWherePresent) {
    std::string error;
    EXPECT_EQ(*with_concurrently("CREATE INDEX CONCURRENTLY i ON t (a)", &error),
              "CREATE INDEX CONCURRENTLY i ON t (a)");
    EXPECT_EQ(*with_concurrently("create unique index concurrently on t (a)", &error),
              "create unique index concurrently on t (a)");
}

TEST(WithConcurrently, RefusesOtherStatements) {
    std::string error;
    EXPECT_FALSE(with_concurrently("DROP TABLE t", &error));
    EXPECT_NE(error.find("CREATE [UNIQUE] INDEX"), std::string::npos);
    EXPECT_FALSE(with_concurrently("CREATE TABLE index (a int)", &error));
    EXPECT_FALSE(with_concurrently("", &error));
    EXPECT_FALSE(with_concurrently("CREATE UNIQUE", &error));
    EXPECT_FALSE(with_concurrently("'CREATE INDEX' x", &error));
}

TEST(MayBeQuery, QueriesAfterCommentsAndParentheses) {
    EXPECT_TRUE(may_be_query("SELECT 1"));
    EXPECT_TRUE(may_be_query("  -- a comment\n/* another */ with x AS (SELECT 1) SELECT * FROM x"));
    EXPECT_TRUE(may_be_query("((select a from t) union (select b from u))"));
    EXPECT_TRUE(may_be_query("insert into t values ($1)"));
    EXPECT_TRUE(may_be_query("UPDATE t SET a = $1"));
    EXPECT_TRUE(may_be_query("delete from t"));
    EXPECT_TRUE(may_be_query("MERGE INTO t USING u ON true WHEN MATCHED THEN DELETE"));
    EXPECT_TRUE(may_be_query("VALUES (1)"));
    EXPECT_TRUE(may_be_query("TABLE t"));
}

TEST(MayBeQuery, UtilityStatementsAndOddInput) {
    EXPECT_FALSE(may_be_query("CREATE TABLE t (id int)"));
    EXPECT_FALSE(may_be_query("VACUUM (ANALYZE) t"));
    EXPECT_FALSE(may_be_query("BEGIN"));
    EXPECT_FALSE(may_be_query("END"));
    EXPECT_FALSE(may_be_query("SET search_path = public"));
    EXPECT_FALSE(may_be_query("EXPLAIN SELECT 1"));
    EXPECT_FALSE(may_be_query("\"SELECT\" 1"));
    EXPECT_FALSE(may_be_query(""));
    EXPECT_FALSE(may_be_query("   /* only a comment */"));
    EXPECT_FALSE(may_be_query("$1"));
}

TEST(LeadingWord, FirstWordAfterCommentsAndParentheses) {
    ASSERT_TRUE(leading_word("  -- c\n/* d */ ((insert into t values ($1)))"));
    EXPECT_TRUE(
        leading_word("  -- c\n/* d */ ((insert into t values ($1)))")->is_keyword("INSERT"));
    EXPECT_TRUE(
        leading_word("INSERT INTO t SELECT g FROM generate_series(1, 3) g")->is_keyword("INSERT"));
    EXPECT_FALSE(leading_word("SELECT 1")->is_keyword("INSERT"));
    EXPECT_FALSE(leading_word(""));
    EXPECT_FALSE(leading_word("$1"));
    EXPECT_FALSE(leading_word("'INSERT'"));
}
