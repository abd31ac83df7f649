// The linter's rules over neutral statement descriptions (no server).
#include <gtest/gtest.h>

#include <algorithm>

#include "db_virtuoso/lint/lint.hpp"

using namespace virtuoso::lint;

namespace {

RelationFacts table(const std::string &name, double rows, int64_t bytes) {
    RelationFacts f;
    f.exists = true;
    f.name = name;
    f.rows = rows;
    f.size_bytes = bytes;
    return f;
}

Statement set_lock_timeout(int no) {
    Statement s;
    s.no = no;
    s.kind = Kind::SetLockTimeout;
    s.tag = "SET";
    s.setting = "2s";
    return s;
}

Statement create_index(int no, const std::string &t, const RelationFacts &f, bool concurrently) {
    Statement s;
    s.no = no;
    s.kind = Kind::CreateIndex;
    s.tag = "CREATE INDEX";
    s.object = t;
    s.facts = f;
    s.concurrently = concurrently;
    s.lock = concurrently ? LockMode::ShareUpdateExclusive : LockMode::Share;
    s.columns = {"a"};
    return s;
}

Statement alter(int no, const std::string &t, const RelationFacts &f, Action a) {
    Statement s;
    s.no = no;
    s.kind = Kind::AlterTable;
    s.tag = "ALTER TABLE";
    s.object = t;
    s.facts = f;
    s.lock = a.lock;
    s.actions.push_back(std::move(a));
    return s;
}

const Finding *find(const std::vector<Finding> &fs, const std::string &rule, int no = 0) {
    for (const auto &f : fs)
        if (f.rule == rule && (no == 0 || f.statement_no == no)) return &f;
    return nullptr;
}

const RelationFacts kBig = table("public.big", 1e6, int64_t(1) << 30);

}  // namespace

TEST(LintLocks, ConflictTableIsPostgres) {
    EXPECT_TRUE(lock_conflicts(LockMode::AccessShare, LockMode::AccessExclusive));
    EXPECT_FALSE(lock_conflicts(LockMode::AccessShare, LockMode::Exclusive));
    EXPECT_TRUE(lock_conflicts(LockMode::ShareUpdateExclusive, LockMode::ShareUpdateExclusive));
    EXPECT_FALSE(lock_conflicts(LockMode::Share, LockMode::Share));
    EXPECT_TRUE(lock_conflicts(LockMode::RowExclusive, LockMode::Share));
    EXPECT_FALSE(lock_conflicts(LockMode::RowExclusive, LockMode::RowExclusive));
    EXPECT_FALSE(lock_conflicts(LockMode::None, LockMode::AccessExclusive));
    // symmetric
    for (int a = 1; a <= 8; ++a)
        for (int b = 1; b <= 8; ++b)
            EXPECT_EQ(lock_conflicts(LockMode(a), LockMode(b)),
                      lock_conflicts(LockMode(b), LockMode(a)));
    EXPECT_TRUE(blocks_writes(LockMode::Share));
    EXPECT_FALSE(blocks_reads(LockMode::Share));
    EXPECT_TRUE(blocks_reads(LockMode::AccessExclusive));
    EXPECT_EQ(lock_mode_from_pg("ShareRowExclusiveLock"), LockMode::ShareRowExclusive);
    EXPECT_FALSE(lock_mode_from_pg("SIReadLock").has_value());
    EXPECT_EQ(lock_mode_name(LockMode::ShareUpdateExclusive), "SHARE UPDATE EXCLUSIVE");
}

TEST(LintTypes, Advice) {
    EXPECT_EQ(type_advice("json", false)->rule, "prefer_jsonb");
    EXPECT_EQ(type_advice("character(3)", false)->rule, "prefer_text_over_char");
    EXPECT_EQ(type_advice("timestamp without time zone", false)->rule, "prefer_timestamptz");
    EXPECT_FALSE(type_advice("timestamp with time zone", false));
    EXPECT_EQ(type_advice("integer", true)->rule, "prefer_bigint_key");
    EXPECT_FALSE(type_advice("integer", false));
    EXPECT_EQ(type_advice("bigserial", false)->rule, "prefer_identity");
    EXPECT_FALSE(type_advice("bigint", true));
}

TEST(LintJson, QuotesEverything) {
    EXPECT_EQ(json_quote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
    EXPECT_EQ(human_bytes(0), "0 bytes");
    EXPECT_EQ(human_bytes(int64_t(1) << 30), "1024 MB");
}

TEST(LintRules, SizeDecidesSeverity) {
    auto tiny = table("public.tiny", 10, 8192);
    auto empty = table("public.empty", 0, 0);
    auto fs = lint({set_lock_timeout(1), create_index(2, "public.big", kBig, false),
                    create_index(3, "public.tiny", tiny, false),
                    create_index(4, "public.empty", empty, false)},
                   Options{});
    ASSERT_TRUE(find(fs, "create_index_not_concurrent", 2));
    EXPECT_EQ(find(fs, "create_index_not_concurrent", 2)->severity, Severity::Error);
    EXPECT_EQ(find(fs, "create_index_not_concurrent", 2)->lock, LockMode::Share);
    EXPECT_NE(find(fs, "create_index_not_concurrent", 2)->message.find("~1000000 rows"),
              std::string::npos);
    EXPECT_EQ(find(fs, "create_index_not_concurrent", 3)->severity, Severity::Warning);
    EXPECT_NE(find(fs, "create_index_not_concurrent", 3)->message.find("tiny"), std::string::npos);
    EXPECT_EQ(find(fs, "create_index_not_concurrent", 4)->severity, Severity::Info);
    EXPECT_NE(find(fs, "create_index_not_concurrent", 4)->message.find("empty"), std::string::npos);
}

// A table never analysed (no row estimate) is judged by its size: a few pages are tiny, a
// big one stays an error.
TEST(LintRules, NeverAnalysedTablesAreJudgedBySize) {
    auto fresh_small = table("public.fresh_small", -1, 5 * 8192);
    auto fresh_big = table("public.fresh_big", -1, int64_t(1) << 30);
    auto fs = lint({set_lock_timeout(1), create_index(2, "public.fresh_small", fresh_small, false),
                    create_index(3, "public.fresh_big", fresh_big, false)},
                   Options{});
    ASSERT_TRUE(find(fs, "create_index_not_concurrent", 2));
    EXPECT_EQ(find(fs, "create_index_not_concurrent", 2)->severity, Severity::Warning);
    EXPECT_NE(find(fs, "create_index_not_concurrent", 2)->message.find("never analysed"),
              std::string::npos);
    ASSERT_TRUE(find(fs, "create_index_not_concurrent", 3));
    EXPECT_EQ(find(fs, "create_index_not_concurrent", 3)->severity, Severity::Error);
}

TEST(LintRules, NewTablesAreHarmless) {
    Statement create;
    create.no = 1;
    create.kind = Kind::CreateTable;
    create.tag = "CREATE TABLE";
    create.object = "public.fresh";
    auto fs = lint({create, create_index(2, "public.fresh", RelationFacts{}, false)}, Options{});
    ASSERT_TRUE(find(fs, "create_index_not_concurrent", 2));
    EXPECT_EQ(find(fs, "create_index_not_concurrent", 2)->severity, Severity::Info);
    EXPECT_FALSE(find(fs, "missing_lock_timeout"));
}

// The migration gate lints SQL that its executor runs with a lock_timeout of its own.
TEST(LintRules, NoLockTimeoutWarningWhenTheRunnerSetsOne) {
    Action add;
    add.kind = ActionKind::AddColumn;
    add.column = "c";
    add.lock = LockMode::AccessExclusive;
    Options gate;
    gate.transactional = true;
    gate.lock_timeout_set = true;
    auto fs = lint({alter(1, "public.big", kBig, add)}, gate);
    EXPECT_FALSE(find(fs, "missing_lock_timeout"));
    EXPECT_TRUE(find(lint({alter(1, "public.big", kBig, add)}, Options{}), "missing_lock_timeout"));
}

TEST(LintRules, LockTimeoutWarnedOnce) {
    Action add;
    add.kind = ActionKind::AddColumn;
    add.column = "c";
    add.lock = LockMode::AccessExclusive;
    auto fs =
        lint({alter(1, "public.big", kBig, add), alter(2, "public.big", kBig, add)}, Options{});
    EXPECT_EQ(std::count_if(fs.begin(), fs.end(),
                            [](const Finding &f) { return f.rule == "missing_lock_timeout"; }),
              1);
    ASSERT_TRUE(find(fs, "statements_after_access_exclusive", 2));
    // statement by statement: no lock held across statements
    Options autocommit;
    autocommit.transactional = false;
    fs = lint({alter(1, "public.big", kBig, add), alter(2, "public.big", kBig, add)}, autocommit);
    EXPECT_FALSE(find(fs, "statements_after_access_exclusive"));
}

TEST(LintRules, ConcurrentlyInferredOutsideTransaction) {
    auto cic = create_index(1, "public.big", kBig, true);
    EXPECT_FALSE(find(lint({cic}, Options{}), "concurrently_in_transaction"));
    Options tx;
    tx.transactional = true;
    EXPECT_TRUE(find(lint({cic}, tx), "concurrently_in_transaction"));
}

TEST(LintRules, NotNullThroughValidatedCheck) {
    Action check;
    check.kind = ActionKind::AddConstraint;
    check.constraint = ConstraintKind::Check;
    check.constraint_name = "nn";
    check.not_valid = true;
    check.check_not_null_column = "a";
    check.lock = LockMode::AccessExclusive;
    Action validate;
    validate.kind = ActionKind::ValidateConstraint;
    validate.column = "nn";
    validate.lock = LockMode::ShareUpdateExclusive;
    Action set;
    set.kind = ActionKind::SetNotNull;
    set.column = "a";
    set.lock = LockMode::AccessExclusive;
    Statement commit;
    commit.no = 3;
    commit.kind = Kind::TransactionCommit;
    Statement begin;
    begin.no = 2;
    begin.kind = Kind::TransactionBegin;
    Options autocommit;
    autocommit.transactional = false;
    auto fs = lint({set_lock_timeout(1), begin, alter(2, "public.big", kBig, check), commit,
                    alter(4, "public.big", kBig, validate), alter(5, "public.big", kBig, set)},
                   autocommit);
    EXPECT_FALSE(find(fs, "validate_in_same_transaction"));
    EXPECT_FALSE(find(fs, "set_not_null_scans"));
    ASSERT_TRUE(find(fs, "set_not_null", 5));
    // without the validation, the scan is flagged; validating in the same transaction too
    Options tx;
    tx.transactional = true;
    fs = lint({set_lock_timeout(1), alter(2, "public.big", kBig, check),
               alter(3, "public.big", kBig, validate), alter(4, "public.big", kBig, set)},
              tx);
    EXPECT_TRUE(find(fs, "validate_in_same_transaction", 3));
    fs = lint({set_lock_timeout(1), alter(2, "public.big", kBig, set)}, tx);
    ASSERT_TRUE(find(fs, "set_not_null_scans", 2));
    EXPECT_EQ(find(fs, "set_not_null_scans", 2)->severity, Severity::Error);
}

TEST(LintRules, ForeignKeyIndexCreatedLaterCounts) {
    Action fk;
    fk.kind = ActionKind::AddConstraint;
    fk.constraint = ConstraintKind::ForeignKey;
    fk.not_valid = true;
    fk.fk_columns = {"a"};
    fk.fk_has_index = false;
    fk.referenced = "public.parent";
    fk.lock = LockMode::ShareRowExclusive;
    auto fs = lint({set_lock_timeout(1), alter(2, "public.big", kBig, fk)}, Options{});
    EXPECT_TRUE(find(fs, "foreign_key_without_index", 2));
    fs = lint({set_lock_timeout(1), alter(2, "public.big", kBig, fk),
               create_index(3, "public.big", kBig, true)},
              Options{});
    EXPECT_FALSE(find(fs, "foreign_key_without_index"));
}

TEST(LintRules, TraceOverridesStaticGuess) {
    Action type;
    type.kind = ActionKind::AlterColumnType;
    type.column = "a";
    type.type_name = "bigint";
    type.rewrites = true;
    type.rewrite_reason = "not binary coercible";
    type.lock = LockMode::AccessExclusive;
    auto s = alter(2, "public.big", kBig, type);
    s.trace.attempted = s.trace.ran = true;
    s.trace.locks.push_back({"public.big", LockMode::AccessExclusive});
    auto fs = lint({set_lock_timeout(1), s}, Options{});
    EXPECT_FALSE(find(fs, "column_type_change_rewrites"));
    ASSERT_TRUE(find(fs, "column_type_change", 2));
    EXPECT_NE(find(fs, "column_type_change", 2)->details.find("\"source\":\"trace\""),
              std::string::npos);
    EXPECT_NE(find(fs, "column_type_change", 2)->details.find("trace_overrides"),
              std::string::npos);
    s.trace.rewritten.push_back("public.big");
    fs = lint({set_lock_timeout(1), s}, Options{});
    EXPECT_TRUE(find(fs, "column_type_change_rewrites", 2));
}

TEST(LintRules, LockersInTheWay) {
    auto f = kBig;
    LockHolder reader;
    reader.pid = 42;
    reader.mode = LockMode::AccessShare;
    reader.xact_seconds = 300;
    f.lockers.push_back(reader);
    auto fs = lint({set_lock_timeout(1), create_index(2, "public.big", f, true)}, Options{});
    EXPECT_FALSE(find(fs, "lock_conflict_now"));  // ACCESS SHARE vs SHARE UPDATE EXCLUSIVE
    Action add;
    add.kind = ActionKind::AddColumn;
    add.lock = LockMode::AccessExclusive;
    fs = lint({set_lock_timeout(1), alter(2, "public.big", f, add)}, Options{});
    ASSERT_TRUE(find(fs, "lock_conflict_now", 2));
    EXPECT_NE(find(fs, "lock_conflict_now", 2)->message.find("pid 42"), std::string::npos);
}

TEST(LintRules, UnanalysableIsNeverSilent) {
    Statement s;
    s.no = 1;
    s.kind = Kind::Unanalysable;
    s.tag = "DO";
    s.reason = "procedural code";
    auto fs = lint({s}, Options{});
    ASSERT_EQ(fs.size(), 1u);
    EXPECT_EQ(fs[0].rule, "cannot_analyse");
    EXPECT_EQ(fs[0].severity, Severity::Info);
}

TEST(LintRules, SessionMatchesBatch) {
    Action add;
    add.kind = ActionKind::AddColumn;
    add.column = "c";
    add.rewrites = add.volatile_default = true;
    add.rewrite_reason = "volatile";
    add.lock = LockMode::AccessExclusive;
    std::vector<Statement> all = {alter(1, "public.big", kBig, add),
                                  create_index(2, "public.big", kBig, false)};
    Options o;
    o.transactional = true;
    auto batch = lint(all, o);
    Session session(o);
    for (const auto &s : all) session.add(s);
    auto streamed = session.finish();
    ASSERT_EQ(batch.size(), streamed.size());
    for (size_t i = 0; i < batch.size(); ++i) {
        EXPECT_EQ(batch[i].rule, streamed[i].rule);
        EXPECT_EQ(batch[i].details, streamed[i].details);
    }
}

TEST(LintRules, FindingsAsJsonForTheGate) {
    EXPECT_EQ(findings_json({}), "[]");
    EXPECT_EQ(worst({}), Severity::Info);
    auto fs = lint({create_index(1, "public.big", kBig, false)}, Options{});
    EXPECT_EQ(worst(fs), Severity::Error);
    std::string json = findings_json(fs);
    EXPECT_EQ(json.front(), '[');
    EXPECT_NE(json.find("\"rule\":\"create_index_not_concurrent\""), std::string::npos);
    EXPECT_NE(json.find("\"lock_mode\":\"SHARE\""), std::string::npos);
    EXPECT_NE(json.find("\"details\":{"), std::string::npos);
}
