// Pure C++ (no postgres.h): the rules of virtuoso.lint_migration.
//
// The server side (src/lint/pg_lint.cpp) parses a migration with PostgreSQL's own parser,
// turns each parse tree into a neutral Statement (what it does, to which relation, with
// which lock as PostgreSQL's rules decide, whether it rewrites or scans, the relation's live
// size) and hands the list to lint(), which applies the rules with the context of the whole
// migration (transaction blocks, lock_timeout, tables created or constraints validated by
// earlier statements) and returns one Finding per hazard.  The migration gate can call
// lint() in-process with the same Statement list and look at Finding::severity.
#pragma once

#include "db_virtuoso/core/json_text.hpp"
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace virtuoso::lint {

// Same numbering as PostgreSQL's lockdefs.h (NoLock = 0 ... AccessExclusiveLock = 8).
enum class LockMode : int {
    None = 0,
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive
};
std::string_view lock_mode_name(LockMode mode);  // "ACCESS EXCLUSIVE", "" for None
std::optional<LockMode> lock_mode_from_pg(std::string_view pg_locks_mode);  // "ShareLock"
// Whether a lock in mode `held` blocks a request for `requested` (PostgreSQL's table).
bool lock_conflicts(LockMode held, LockMode requested);
// Whether ordinary reads (SELECT) / writes (INSERT, UPDATE, DELETE) wait behind `mode`.
bool blocks_reads(LockMode mode);
bool blocks_writes(LockMode mode);

enum class Severity { Info = 0, Warning = 1, Error = 2 };
std::string_view severity_name(Severity s);

// A session that holds or waits for a lock on a relation now (pg_locks + pg_stat_activity).
struct LockHolder {
    int pid = 0;
    LockMode mode = LockMode::None;
    bool granted = true;
    double xact_seconds = -1;  // age of its transaction, -1 unknown
    std::string state;         // pg_stat_activity.state, may be empty
};

// What the server knows about a relation right now.
struct RelationFacts {
    bool exists = false;  // false: not (yet) in the catalog
    bool visible = true;  // the caller may see its facts (else sizes are withheld)
    std::string name;     // schema-qualified as PostgreSQL prints it
    char relkind = 'r';
    int64_t size_bytes = -1;          // -1 unknown
    double rows = -1;                 // planner estimate, -1 unknown (never analysed)
    std::vector<LockHolder> lockers;  // other sessions holding or waiting for a lock on it
};

enum class Kind {
    Unknown,       // parsed but not analysed: described in `reason`
    Unanalysable,  // DO, dynamic SQL, CALL: cannot be analysed statically
    TransactionBegin,
    TransactionCommit,
    TransactionRollback,
    Savepoint,
    SetLockTimeout,  // SET [LOCAL] lock_timeout (value in `setting`)
    SetStatementTimeout,
    SetOther,
    CreateTable,
    CreateIndex,
    DropIndex,
    Reindex,
    DropTable,
    AlterTable,  // see `actions`
    RenameTable,
    RenameColumn,
    RenameOther,
    Truncate,
    Vacuum,  // `full` for VACUUM FULL
    Cluster,
    LockTable,
    Update,
    Delete,
    Insert,
    Select,
    RefreshMatView,
    CreateTrigger,
    DropDatabase,
    DropSchema,
    CreateOther,  // CREATE FUNCTION/VIEW/TYPE...: harmless for locks
    DropOther,
    AlterOther,
    Comment,
    Grant,
    AlterTypeAddValue,
    AlterDomainAddConstraint,
    CreateDomainWithConstraint,
    Copy,
};

enum class ActionKind {
    AddColumn,
    DropColumn,
    AlterColumnType,
    SetNotNull,
    DropNotNull,
    SetDefault,
    DropDefault,
    AddConstraint,
    ValidateConstraint,
    DropConstraint,
    SetLogged,
    SetUnlogged,
    SetTablespace,
    AttachPartition,
    DetachPartition,
    AddIdentity,
    SetStorage,
    Other
};

enum class ConstraintKind { None, Check, ForeignKey, Unique, PrimaryKey, Exclusion, NotNull };

// One subcommand of ALTER TABLE, with the facts the server worked out for it.
struct Action {
    ActionKind kind = ActionKind::Other;
    std::string column;              // column or constraint it works on
    LockMode lock = LockMode::None;  // AlterTableGetLockLevel for this subcommand alone
    bool rewrites = false;           // PostgreSQL rewrites the table (and its indexes)
    std::string rewrite_reason;
    bool scans = false;  // PostgreSQL reads the whole table under the lock
    std::string scan_reason;
    bool unknown = false;  // could not be decided (reason in rewrite_reason)

    // AddColumn
    std::string type_name;  // as written, lower case ("integer", "character(10)")
    bool not_null = false;
    bool has_default = false;
    bool volatile_default = false;
    bool serial = false, identity = false, generated_stored = false;
    // AddConstraint
    ConstraintKind constraint = ConstraintKind::None;
    std::string constraint_name;
    bool not_valid = false;
    bool using_index = false;             // ADD PRIMARY KEY/UNIQUE USING INDEX
    std::string check_not_null_column;    // CHECK (col IS NOT NULL) on this column
    std::string referenced;               // FK: the referenced table (qualified)
    std::vector<std::string> fk_columns;  // FK: the referencing columns
    bool fk_has_index = true;             // FK: an index of the table starts with fk_columns
    // SetNotNull: a validated CHECK (col IS NOT NULL) exists already
    bool implied_by_check = false;
    bool already_not_null = false;
    // AttachPartition / DetachPartition
    std::string partition;
    bool concurrently = false;
};

struct Statement {
    int no = 0;    // 1-based
    int line = 0;  // line of the migration text where it starts (1-based)
    Kind kind = Kind::Unknown;
    std::string tag;      // command tag, e.g. "ALTER TABLE"
    std::string text;     // the statement's first 200 bytes (cut at a character), for the report
    std::string reason;   // Unknown/Unanalysable: why
    std::string object;   // main relation (qualified when known) or object name
    RelationFacts facts;  // of `object` when it is a relation
    LockMode lock = LockMode::None;  // on `object`
    // Locks on other relations (FK referenced table, partition, parent of an index).
    struct OtherLock {
        std::string object;
        LockMode lock;
        RelationFacts facts;
    };
    std::vector<OtherLock> other_locks;
    std::vector<Action> actions;       // AlterTable
    bool concurrently = false;         // CREATE/DROP INDEX, REINDEX, REFRESH, DETACH
    bool full = false;                 // VACUUM FULL
    bool cascade = false;              // TRUNCATE/DROP ... CASCADE
    bool has_where = true;             // UPDATE/DELETE
    bool local = false;                // SET LOCAL
    std::string setting;               // SET: the value as written
    std::vector<std::string> columns;  // CreateIndex: leading columns (names)
    bool unique = false;               // CreateIndex
    // CreateTable: column types to check (name, type as written), primary key columns
    struct ColumnType {
        std::string column;
        std::string type_name;
        bool key = false;  // part of the primary key
    };
    std::vector<ColumnType> column_types;
    std::vector<Action> table_constraints;    // CreateTable: FKs (for the index rule)
    std::string rename_to;                    // Rename*
    std::vector<std::string> user_functions;  // DML calling functions not in pg_catalog
    std::string parent;                       // CreateTable ... PARTITION OF / INHERITS: the parent

    // trace => true: what really happened when the statement ran (in a rolled-back
    // subtransaction).  When `ran`, these override the static guesses above.
    struct Trace {
        bool attempted = false;
        bool ran = false;
        std::string skipped;  // why it was not run (CONCURRENTLY, VACUUM, BEGIN...)
        std::string error;    // the error it raised, if any
        std::string sqlstate;
        double milliseconds = 0;
        struct Lock {
            std::string object;
            LockMode mode;
        };
        std::vector<Lock> locks;             // relation locks taken by this statement
        std::vector<std::string> rewritten;  // relations whose relfilenode changed
    } trace;
};

// How the migration will run: one transaction (execute_migration_with_monitoring's
// default) or each statement on its own (psql without BEGIN, "transactional": false).
// Unset: one transaction, unless a statement can only run outside one (CREATE INDEX
// CONCURRENTLY, VACUUM...) or the migration has its own BEGIN/COMMIT: then the author
// means it to run as psql does, statement by statement outside explicit blocks.
struct Options {
    std::optional<bool> transactional;
    bool lock_timeout_set = false;  // the runner sets lock_timeout (the migration gate's case)
    double tiny_rows = 1000;               // below: a hazard is one level less severe
    int64_t tiny_bytes = 1 << 20;          // ... and below this size
    double big_rows = 100000;              // UPDATE/DELETE without WHERE: error above
    double long_transaction_seconds = 60;  // a transaction this old makes a lock queue dangerous
};

struct Finding {
    int statement_no = 0;
    std::string rule;
    Severity severity = Severity::Info;
    std::string object;
    LockMode lock = LockMode::None;
    std::string message;
    std::string safe_alternative;
    std::string details;        // a JSON object (text), without the statement's text
    std::string statement_sql;  // the statement's text, details' "sql" key on output
};

// The finding's details as one JSON object (text), with the statement's text under "sql"
// when with_sql (lint_migration's rows); the migration log leaves it out (the statement
// number and the log's migration_sql give it, and it was most of the log's bytes).
std::string details_json(const Finding &f, bool with_sql);

// The oldest transaction of another session now (for the lock-queue warning).
struct OldestTransaction {
    int pid = 0;
    double seconds = -1;
    std::string state;
};

std::vector<Finding> lint(const std::vector<Statement> &statements, const Options &options,
                          const OldestTransaction &oldest = {});
// The findings as a JSON array of objects with the columns of virtuoso.lint_migration
// (statement_no, rule, severity, object, lock_mode, message, safe_alternative, details), for
// the `lint` column of the migration log.
std::string findings_json(const std::vector<Finding> &findings, bool with_sql = true);
// The most severe finding's severity (Info when there is none).
Severity worst(const std::vector<Finding> &findings);

// Whether PostgreSQL refuses to run the statement inside a transaction block.
bool top_level_only(const Statement &s);

// The streaming form of lint(), for long migrations: statements are added one at a time, in
// order, and need not be kept.  options.transactional should be set (unset means one
// transaction); a caller that wants the inference of lint() decides it first (the server
// side looks at the parse trees).
class Session {
  public:
    explicit Session(const Options &options, const OldestTransaction &oldest = {});
    ~Session();
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;
    void add(const Statement &s);
    std::vector<Finding> finish();  // the findings, in statement order

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Helpers shared with the server side and the unit tests.
using core::json_quote;
std::string human_bytes(int64_t bytes);
// The type rules: the reason a column type is discouraged, or "" (type as written,
// lower case, e.g. "integer", "serial", "character varying(20)", "timestamp").
struct TypeAdvice {
    std::string rule, message, alternative;
};
std::optional<TypeAdvice> type_advice(std::string_view type_name, bool key);

}  // namespace virtuoso::lint
