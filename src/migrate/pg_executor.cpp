// Lock-safe execution of migration statements.
#include "db_virtuoso/migrate/executor.hpp"

#include <chrono>
#include <random>

#include "db_virtuoso/migrate/capture.hpp"
#include "db_virtuoso/migrate/options.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/runner.hpp"

extern "C" {
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "parser/parser.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

namespace virtuoso::migrate {
namespace {

using pg::PgError;
using pg::UserError;

// Key of the advisory lock that serialises migrations ("VIRT", 1).
constexpr int32 kLockClass = 0x56495254;
constexpr int32 kLockObject = 1;

bool reindex_is_concurrent(ReindexStmt *stmt) {
    ListCell *lc;
    foreach (lc, stmt->params) {
        DefElem *opt = lfirst_node(DefElem, lc);
        if (strcmp(opt->defname, "concurrently") == 0) return defGetBoolean(opt);
    }
    return false;
}

bool detach_concurrently(AlterTableStmt *stmt) {
    ListCell *lc;
    foreach (lc, stmt->cmds) {
        auto *cmd = lfirst_node(AlterTableCmd, lc);
        if (cmd->subtype == AT_DetachPartition && castNode(PartitionCmd, cmd->def)->concurrent)
            return true;
    }
    return false;
}

// Statements PostgreSQL refuses inside a transaction block.
bool top_level_only(Node *stmt) {
    switch (nodeTag(stmt)) {
        case T_VacuumStmt:
            return castNode(VacuumStmt, stmt)->is_vacuumcmd;
        case T_IndexStmt:
            return castNode(IndexStmt, stmt)->concurrent;
        case T_ReindexStmt:
            return reindex_is_concurrent(castNode(ReindexStmt, stmt));
        case T_DropStmt:
            return castNode(DropStmt, stmt)->concurrent;
        case T_AlterTableStmt:
            return detach_concurrently(castNode(AlterTableStmt, stmt));
        case T_ClusterStmt:
            return castNode(ClusterStmt, stmt)->relation == nullptr;
        case T_CreatedbStmt:
        case T_DropdbStmt:
        case T_CreateTableSpaceStmt:
        case T_DropTableSpaceStmt:
        case T_AlterSystemStmt:
            return true;
        default:
            return false;
    }
}

// Relations a statement names, as RangeVars (the common DDL and DML forms).
List *named_relations(Node *stmt) {
    switch (nodeTag(stmt)) {
        case T_AlterTableStmt:
            return list_make1(castNode(AlterTableStmt, stmt)->relation);
        case T_IndexStmt:
            return list_make1(castNode(IndexStmt, stmt)->relation);
        case T_CreateStmt:
            return list_make1(castNode(CreateStmt, stmt)->relation);
        case T_RenameStmt: {
            RangeVar *rv = castNode(RenameStmt, stmt)->relation;
            return rv ? list_make1(rv) : NIL;
        }
        case T_InsertStmt:
            return list_make1(castNode(InsertStmt, stmt)->relation);
        case T_UpdateStmt:
            return list_make1(castNode(UpdateStmt, stmt)->relation);
        case T_DeleteStmt:
            return list_make1(castNode(DeleteStmt, stmt)->relation);
        case T_TruncateStmt:
            return list_copy(castNode(TruncateStmt, stmt)->relations);
        case T_LockStmt:
            return list_copy(castNode(LockStmt, stmt)->relations);
        case T_CreateTrigStmt:
            return list_make1(castNode(CreateTrigStmt, stmt)->relation);
        case T_ReindexStmt: {
            RangeVar *rv = castNode(ReindexStmt, stmt)->relation;
            return rv ? list_make1(rv) : NIL;
        }
        case T_VacuumStmt: {
            List *out = NIL;
            ListCell *lc;
            foreach (lc, castNode(VacuumStmt, stmt)->rels) {
                auto *vr = lfirst_node(VacuumRelation, lc);
                if (vr->relation) out = lappend(out, vr->relation);
            }
            return out;
        }
        case T_DropStmt: {
            auto *drop = castNode(DropStmt, stmt);
            if (drop->removeType != OBJECT_TABLE && drop->removeType != OBJECT_INDEX &&
                drop->removeType != OBJECT_VIEW && drop->removeType != OBJECT_MATVIEW &&
                drop->removeType != OBJECT_SEQUENCE)
                return NIL;
            List *out = NIL;
            ListCell *lc;
            foreach (lc, drop->objects)
                out = lappend(out, makeRangeVarFromNameList(castNode(List, lfirst(lc))));
            return out;
        }
        default:
            return NIL;
    }
}

struct RawStatement {
    int location, length;
    const char *tag;
    bool top_level_only, transaction_control;
    List *relids;  // of Oid
};

List *parse_statements(const char *sql) {
    List *out = NIL;
    ListCell *lc;
    foreach (lc, raw_parser(sql, RAW_PARSE_DEFAULT)) {
        RawStmt *raw = lfirst_node(RawStmt, lc);
        auto *s = static_cast<RawStatement *>(palloc0(sizeof(RawStatement)));
        s->location = raw->stmt_location;
        s->length = raw->stmt_len;
        s->tag = GetCommandTagName(CreateCommandTag(raw->stmt));
        s->transaction_control = IsA(raw->stmt, TransactionStmt);
        s->top_level_only = top_level_only(raw->stmt);
        ListCell *rc;
        foreach (rc, named_relations(raw->stmt)) {
            Oid relid = RangeVarGetRelid(lfirst_node(RangeVar, rc), NoLock, true);
            if (OidIsValid(relid)) s->relids = lappend_oid(s->relids, relid);
        }
        out = lappend(out, s);
    }
    return out;
}

// Arms the statement timeout for the migration's statements, and restores the caller's.
class StatementDeadline {
  public:
    explicit StatementDeadline(int ms) : ms_(ms) {
        if (ms_ <= 0) return;
        pg::pg_call([this] {
            had_outer_ = get_timeout_active(STATEMENT_TIMEOUT);
            if (had_outer_) outer_finish_ = get_timeout_finish_time(STATEMENT_TIMEOUT);
            TimestampTz ours = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms_);
            if (!had_outer_ || ours < outer_finish_) enable_timeout_at(STATEMENT_TIMEOUT, ours);
        });
    }
    ~StatementDeadline() {
        if (ms_ <= 0) return;
        disable_timeout(STATEMENT_TIMEOUT, false);
        if (had_outer_) enable_timeout_at(STATEMENT_TIMEOUT, outer_finish_);
    }
    StatementDeadline(const StatementDeadline &) = delete;
    StatementDeadline &operator=(const StatementDeadline &) = delete;

  private:
    int ms_;
    bool had_outer_ = false;
    TimestampTz outer_finish_ = 0;
};

// Who holds locks on the relations a statement needs, as a JSON array.
std::string describe_blockers(const std::vector<Oid> &relations) {
    pg::pg_call([] { pgstat_clear_snapshot(); });
    pg::InternalSql spi;
    auto blockers = spi.scalar(
        "SELECT coalesce(json_agg(json_build_object("
        "  'pid', l.pid, 'relation', l.relation::regclass::text, 'mode', l.mode,"
        "  'state', a.state, 'xact_start', a.xact_start, 'user', a.usename,"
        "  'application_name', a.application_name, 'query', left(a.query, 500))"
        "  ORDER BY a.xact_start, l.pid), '[]')::text "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid() "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND (CASE WHEN cardinality($1::oid[]) > 0 THEN l.relation = ANY($1::oid[]) "
        "     ELSE l.relation >= 16384 AND l.mode <> 'AccessShareLock' END)",
        {pg::oid_array(relations)});
    return blockers.value_or("[]");
}

std::string lock_wait_json(int attempt, const Statement &stmt, long waited_ms, int lock_timeout_ms,
                           long backoff, const std::string &blockers) {
    return fmt::format(
        R"({{"attempt": {}, "statement": {}, "command": "{}", "waited_ms": {}, "lock_timeout_ms": {}, "backoff_ms": {}, "blockers": {}}})",
        attempt, stmt.number, stmt.tag, waited_ms, lock_timeout_ms, backoff, blockers);
}

std::mt19937_64 &random_source() {
    static std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(MyProcPid));
    return rng;
}

long elapsed_ms(std::chrono::steady_clock::time_point since) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 since)
        .count();
}

constexpr long kBackoffBaseMs = 50;
constexpr long kBackoffCapMs = 5000;

}  // namespace

long lock_retry_backoff_ms(int attempt) {
    return backoff_ms(attempt, kBackoffBaseMs, kBackoffCapMs, random_source());
}

std::vector<Statement> split_statements(const std::string &sql) {
    List *raw = pg::pg_call([&sql] { return parse_statements(sql.c_str()); });
    std::vector<Statement> out;
    ListCell *lc;
    int n = 0;
    foreach (lc, raw) {
        auto *s = static_cast<RawStatement *>(lfirst(lc));
        Statement st;
        st.number = ++n;
        size_t begin = static_cast<size_t>(s->location);
        size_t len = s->length > 0 ? static_cast<size_t>(s->length) : sql.size() - begin;
        st.text = sql.substr(begin, len);
        // stmt_location counts from just after the previous semicolon
        size_t first = st.text.find_first_not_of(" \t\r\n");
        st.text = first == std::string::npos ? std::string() : st.text.substr(first);
        st.tag = s->tag;
        st.top_level_only = s->top_level_only;
        st.transaction_control = s->transaction_control;
        ListCell *rc;
        foreach (rc, s->relids) st.relations.push_back(lfirst_oid(rc));
        out.push_back(std::move(st));
    }
    return out;
}

Failure failure_from(const PgError &error, int statement) {
    Failure f;
    ErrorData *e = error.data();
    f.error = e;
    f.statement = statement;
    f.sqlstate = pg::pg_call([e] { return std::string(unpack_sql_state(e->sqlerrcode)); });
    f.message = e->message ? e->message : "";
    if (e->detail) f.detail = std::string(e->detail);
    if (e->hint) f.hint = std::string(e->hint);
    if (e->context) f.context = std::string(e->context);
    return f;
}

std::optional<Failure> check_rules(pg::Spi &spi, const std::string &rules, int lock_timeout_ms) {
    pg::GucScope settings;  // rules read the user's tables: no unbounded lock wait
    settings.set("lock_timeout", std::to_string(lock_timeout_ms) + "ms");
    auto result = spi.execute(
        "SELECT rule_name, status, result_count, expected_count, validation_message "
        "FROM virtuoso.validate_data_integrity($1::pg_catalog.jsonb)",  // caller's search_path
        {rules});
    std::vector<std::string> failed;
    for (const auto &row : result.rows) {
        std::string status = row[1].value_or("");
        if (status == "FAIL" || status == "ERROR")
            failed.push_back(
                fmt::format("{} {}: {}", row[0].value_or("?"), status, row[4].value_or("")));
    }
    if (failed.empty()) return std::nullopt;
    Failure f;
    f.sqlstate = "23514";
    f.message = fmt::format("{} of {} validation rules failed", failed.size(), result.rows.size());
    std::string detail;
    for (const auto &line : failed) detail += (detail.empty() ? "" : "\n") + line;
    f.detail = detail;
    f.hint = "Fix the data or the rules; nothing of the migration was kept.";
    return f;
}

RunResult run_transactional(const std::vector<Statement> &statements, const Limits &limits,
                            const std::optional<std::string> &validation_rules, bool keep,
                            const std::function<std::optional<Failure>()> &gate) {
    RunResult result;
    CaptureScope capture;
    pg::Spi spi;  // the caller's settings: user statements resolve names as the caller would
    const std::string lock_timeout = std::to_string(limits.lock_timeout_ms) + "ms";
    for (int attempt = 1;; ++attempt) {
        result.attempts = attempt;
        capture.clear();
        int current = 0;
        auto started = std::chrono::steady_clock::now();
        try {
            pg::SubTransaction attempt_scope;
            {
                pg::GucScope settings;
                settings.set("lock_timeout", lock_timeout);
                StatementDeadline deadline(limits.statement_timeout_ms);
                for (const Statement &stmt : statements) {
                    current = stmt.number;
                    spi.execute(stmt.text);
                    result.statements_done = stmt.number;
                }
            }
            current = 0;
            result.affected = capture.objects();
            if (validation_rules) {
                capture.pause(true);
                if (auto failed = check_rules(spi, *validation_rules, limits.lock_timeout_ms)) {
                    result.failure = failed;
                    return result;  // attempt_scope rolls back
                }
            }
            if (gate) {
                capture.pause(true);
                if (auto failed = gate()) {
                    result.failure = failed;
                    return result;  // attempt_scope rolls back
                }
            }
            if (keep)
                attempt_scope.commit();
            else
                attempt_scope.rollback();
            result.ok = true;
            return result;
        } catch (const PgError &e) {
            result.statements_done = 0;
            bool lock_timeout_hit = e.sqlstate() == ERRCODE_LOCK_NOT_AVAILABLE && current > 0;
            if (lock_timeout_hit && attempt <= limits.max_retries) {
                const Statement &stmt = statements[current - 1];
                long waited = elapsed_ms(started);
                long sleep = lock_retry_backoff_ms(attempt);
                result.lock_waits.push_back(lock_wait_json(attempt, stmt, waited,
                                                           limits.lock_timeout_ms, sleep,
                                                           describe_blockers(stmt.relations)));
                pg::interruptible_sleep(sleep);
                continue;
            }
            if (lock_timeout_hit) {
                const Statement &stmt = statements[current - 1];
                result.lock_waits.push_back(lock_wait_json(attempt, stmt, elapsed_ms(started),
                                                           limits.lock_timeout_ms, 0,
                                                           describe_blockers(stmt.relations)));
            }
            result.failure = failure_from(e, current);
            return result;
        }
    }
}

RunResult run_one_by_one(const std::vector<Statement> &statements, const Limits &limits,
                         const std::function<void(int)> &progress) {
    RunResult result;
    CaptureScope capture;
    const std::string lock_timeout = std::to_string(limits.lock_timeout_ms) + "ms";
    for (const Statement &stmt : statements) {
        for (int attempt = 1;; ++attempt) {
            result.attempts = std::max(result.attempts, attempt);
            auto started = std::chrono::steady_clock::now();
            pg::RunOutcome outcome;
            {
                // The worker copies these settings: lock timeout, statement timeout, capture.
                pg::GucScope settings;
                settings.set("lock_timeout", lock_timeout);
                if (limits.statement_timeout_ms > 0)  // else the caller's own setting stays
                    settings.set("statement_timeout",
                                 std::to_string(limits.statement_timeout_ms) + "ms");
                settings.set(worker_capture_setting(), "on");
                outcome = pg::run_in_worker({pg::RunMode::TopLevel, stmt.text, {}});
            }
            capture.add(outcome.captured);
            if (outcome.ok) break;
            if (outcome.error->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE &&
                attempt <= limits.max_retries) {
                long sleep = lock_retry_backoff_ms(attempt);
                result.lock_waits.push_back(lock_wait_json(attempt, stmt, elapsed_ms(started),
                                                           limits.lock_timeout_ms, sleep,
                                                           describe_blockers(stmt.relations)));
                pg::interruptible_sleep(sleep);
                continue;
            }
            result.affected = capture.objects();
            result.failure = failure_from(PgError(outcome.error), stmt.number);
            return result;
        }
        result.statements_done = stmt.number;
        progress(stmt.number);
    }
    result.affected = capture.objects();
    result.ok = true;
    return result;
}

void acquire_migration_lock(int lock_timeout_ms) {
    {
        // Usually nobody holds it: take it without waiting, no subtransaction needed.
        pg::InternalSql spi;
        if (spi.scalar(fmt::format("SELECT pg_try_advisory_xact_lock({}, {})", kLockClass,
                                   kLockObject)) == "t")
            return;
    }
    try {
        pg::SubTransaction scope;
        {
            pg::GucScope settings;  // restored before the caller goes on
            settings.set("lock_timeout", std::to_string(lock_timeout_ms) + "ms");
            pg::InternalSql spi;
            spi.execute(
                fmt::format("SELECT pg_advisory_xact_lock({}, {})", kLockClass, kLockObject));
        }
        scope.commit();  // the lock now belongs to the caller's transaction
    } catch (const PgError &e) {
        if (e.sqlstate() != ERRCODE_LOCK_NOT_AVAILABLE) throw;
        pg::pg_call([] { pgstat_clear_snapshot(); });
        pg::InternalSql spi;
        auto holder = spi.execute(
            fmt::format("SELECT l.pid, a.xact_start, left(a.query, 300) FROM pg_locks l "
                        "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {} "
                        "AND l.objid = {} AND l.objsubid = 2 AND l.database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())",
                        static_cast<uint32>(kLockClass), kLockObject));
        std::string pid = holder.empty() ? "unknown" : holder.rows[0][0].value_or("unknown");
        throw UserError(
            ERRCODE_LOCK_NOT_AVAILABLE,
            fmt::format("another migration is running in this database (backend PID {})", pid),
            holder.empty()
                ? ""
                : fmt::format("Its transaction started at {}; it is running: {}",
                              holder.rows[0][1].value_or("?"), holder.rows[0][2].value_or("?")),
            fmt::format("Migrations run one at a time; this call waited {} ms. Retry later or "
                        "raise options.lock_timeout.",
                        lock_timeout_ms));
    }
}

int duration_ms(const std::string &text, const char *option) {
    return pg::pg_call([&] {
        int ms;
        const char *hint = nullptr;
        if (!parse_int(text.c_str(), &ms, GUC_UNIT_MS, &hint) || ms < 0)
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("option \"%s\" is not a valid duration: \"%s\"", option, text.c_str()),
                     hint ? errhint("%s", hint)
                          : errhint("Use a number with a unit, such as \"500ms\" or \"2s\".")));
        return ms;
    });
}

std::string sha256_hex(const std::string &data) {
    uint8 digest[PG_SHA256_DIGEST_LENGTH];
    pg::pg_call([&] {
        pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
        if (pg_cryptohash_init(ctx) < 0 ||
            pg_cryptohash_update(ctx, reinterpret_cast<const uint8 *>(data.data()), data.size()) <
                0 ||
            pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
            elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
        pg_cryptohash_free(ctx);
    });
    std::string hex;
    for (uint8 b : digest) hex += fmt::format("{:02x}", b);
    return hex;
}

}  // namespace virtuoso::migrate
