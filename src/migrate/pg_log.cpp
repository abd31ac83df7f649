#include "db_virtuoso/migrate/log.hpp"

#include "db_virtuoso/alerts/alerts.hpp"
#include "db_virtuoso/pg/runner.hpp"

extern "C" {
#include "access/xlog.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/backend_status.h"
#include "utils/fmgrprotos.h"
#include "utils/acl.h"
#include "utils/pg_lsn.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace virtuoso::migrate {
namespace {

// The extension's owner, looked up once per transaction.
Oid extension_owner() {
    static LocalTransactionId looked_up_in = InvalidLocalTransactionId;
    static Oid owner = InvalidOid;
    if (looked_up_in == MyProc->lxid && OidIsValid(owner)) return owner;
    pg::InternalSql spi;
    auto found = spi.scalar("SELECT extowner FROM pg_extension WHERE extname = 'db_virtuoso'");
    if (!found)
        throw pg::UserError(ERRCODE_UNDEFINED_OBJECT, "extension db_virtuoso is not installed");
    owner = static_cast<Oid>(std::stoul(*found));
    looked_up_in = MyProc->lxid;
    return owner;
}

// Every column of migration_log, in table order (its row type).
const std::vector<std::string> &log_columns() {
    static const std::vector<std::string> columns = {"id",
                                                     "name",
                                                     "checksum",
                                                     "status",
                                                     "started_at",
                                                     "completed_at",
                                                     "duration",
                                                     "initial_stats",
                                                     "final_stats",
                                                     "sqlstate",
                                                     "error_message",
                                                     "error_detail",
                                                     "error_hint",
                                                     "error_context",
                                                     "migration_sql",
                                                     "rollback_sql",
                                                     "rollback_at",
                                                     "rollback_reason",
                                                     "affected_objects",
                                                     "attempts",
                                                     "lock_waits",
                                                     "lint",
                                                     "plan_changes",
                                                     "backup_tables",
                                                     "executed_by",
                                                     "options",
                                                     "transactional",
                                                     "statements_total",
                                                     "statements_done",
                                                     "backend_pid",
                                                     "executed_by_role",
                                                     "backend_start"};
    return columns;
}

// Runs internal SQL that writes the log, here or in an autonomous worker, and returns the
// whole row.  kReturning in the SQL stands for the output list ("*" here, "id" from a worker).
constexpr const char *kReturning = "/*returning*/";
pg::Row write(const std::string &sql, const std::vector<pg::Value> &params, bool autonomous) {
    AsExtensionOwner owner;
    auto returning = [&sql](const char *list) {
        std::string out = sql;
        for (auto at = out.find(kReturning); at != std::string::npos; at = out.find(kReturning))
            out.replace(at, strlen(kReturning), list);
        return out;
    };
    if (!autonomous) {
        pg::InternalSql spi;
        auto rows = spi.execute(returning("*"), params);
        if (rows.empty())
            throw pg::UserError(ERRCODE_INTERNAL_ERROR, "migration log row not written");
        return rows.rows[0];
    }
    // The worker copies these settings: the pinned search_path and the owner identity.
    pg::GucScope settings;
    settings.set("search_path", "pg_catalog, pg_temp");
    auto outcome =
        pg::run_in_worker_or_raise({pg::RunMode::Autonomous, returning("id"), params, true});
    if (!outcome.value)
        throw pg::UserError(ERRCODE_INTERNAL_ERROR, "migration log row not written");
    return read_log(*outcome.value);
}

}  // namespace

AsExtensionOwner::AsExtensionOwner() {
    Oid owner = extension_owner();
    GetUserIdAndSecContext(&saved_user_, &saved_context_);
    SetUserIdAndSecContext(owner, saved_context_ | SECURITY_LOCAL_USERID_CHANGE);
}

AsExtensionOwner::~AsExtensionOwner() {
    SetUserIdAndSecContext(saved_user_, saved_context_);
}

RunAccess::RunAccess(const pg::Row &run, const std::string &name, const char *action) {
    const pg::Value recorded = run[log_column("executed_by_role")];
    const std::string recorded_name = run[log_column("executed_by")].value_or("?");
    struct Check {
        bool exists, superuser, member;
    };
    const Oid role = recorded ? static_cast<Oid>(std::stoul(*recorded)) : InvalidOid;
    Check check = pg::pg_call([role] {
        bool exists = OidIsValid(role) && SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role));
        return Check{exists, superuser(), exists && has_privs_of_role(GetUserId(), role)};
    });
    if (check.superuser || check.member) {
        run_as_ = check.exists ? role : GetUserId();
        return;
    }
    if (!check.exists)
        throw pg::UserError(
            ERRCODE_INSUFFICIENT_PRIVILEGE,
            fmt::format("permission denied to {} migration \"{}\"", action, name),
            fmt::format("Its latest run was recorded by role \"{}\", which no longer exists.",
                        recorded_name),
            "Only a superuser can act on it.");
    throw pg::UserError(
        ERRCODE_INSUFFICIENT_PRIVILEGE,
        fmt::format("permission denied to {} migration \"{}\"", action, name),
        fmt::format("Its latest run was recorded by role \"{}\".", recorded_name),
        fmt::format("Only roles with the privileges of role \"{}\" can replace, roll back or "
                    "verify it; choose another migration name.",
                    recorded_name));
}

RunAccess::StoredSqlScope::StoredSqlScope(const RunAccess &access) {
    GetUserIdAndSecContext(&saved_user_, &saved_context_);
    SetUserIdAndSecContext(access.run_as_, saved_context_ | SECURITY_LOCAL_USERID_CHANGE);
}

RunAccess::StoredSqlScope::~StoredSqlScope() {
    SetUserIdAndSecContext(saved_user_, saved_context_);
}

LogRow &LogRow::set(const std::string &column, pg::Value value, const std::string &type) {
    columns_.push_back({column, type, std::move(value)});
    return *this;
}

LogRow &LogRow::set_time(const std::string &column, int64_t timestamp) {
    columns_.push_back({column, "", std::to_string(timestamp)});
    return *this;
}

LogRow &LogRow::set_detail(const std::string &phase, std::string detail) {
    if (detail != "{}") details_.emplace_back(phase, std::move(detail));
    return *this;
}

LogRow &LogRow::merge(const LogRow &other) {
    columns_.insert(columns_.end(), other.columns_.begin(), other.columns_.end());
    details_.insert(details_.end(), other.details_.begin(), other.details_.end());
    return *this;
}

std::string LogRow::with_details(const std::string &statement, size_t next_param) const {
    if (details_.empty()) return statement + kReturning;
    // One statement: the details commit (or roll back) with their row, wherever it is written.
    std::string phases;
    for (size_t i = 0; i < details_.size(); ++i, next_param += 2)
        phases +=
            fmt::format("{}(${}::text, ${}::jsonb)", i ? ", " : "", next_param, next_param + 1);
    return fmt::format(
        "WITH logged AS ({} *), detail AS ("
        "INSERT INTO virtuoso.migration_stats (migration_id, phase, relations) "
        "SELECT logged.id, d.phase, d.relations FROM logged, (VALUES {}) AS d(phase, relations) "
        "ON CONFLICT (migration_id, phase) DO UPDATE SET relations = excluded.relations) "
        "SELECT {} FROM logged",
        statement, phases, kReturning);
}

std::vector<std::string> LogRow::expressions(size_t first_param) const {
    std::vector<std::string> out;
    size_t n = first_param;
    for (const Column &c : columns_)
        out.push_back(c.type.empty()
                          ? fmt::format("'2000-01-01 00:00:00+00'::timestamptz + ${}::bigint * "
                                        "interval '1 microsecond'",
                                        n++)
                          : fmt::format("${}::{}", n++, c.type));
    return out;
}

std::vector<pg::Value> LogRow::values() const {
    std::vector<pg::Value> out;
    for (const Column &c : columns_) out.push_back(c.value);
    return out;
}

pg::Row LogRow::insert(bool autonomous) const {
    std::string names, exprs;
    std::vector<std::string> values = expressions(1);
    for (size_t i = 0; i < columns_.size(); ++i) {
        names += (i ? ", " : "") + columns_[i].name;
        exprs += (i ? ", " : "") + values[i];
    }
    std::vector<pg::Value> params = this->values();
    const std::string statement = with_details(
        fmt::format("INSERT INTO virtuoso.migration_log ({}) VALUES ({}) RETURNING ", names, exprs),
        params.size() + 1);
    for (const auto &[phase, detail] : details_) {
        params.emplace_back(phase);
        params.emplace_back(detail);
    }
    pg::Row row = write(statement, params, autonomous);
    if (sets_status()) alerts::migration_logged(row, autonomous);  // FAILED, long lock waits
    return row;
}

pg::Row LogRow::update(const std::string &id, bool autonomous) const {
    std::string sets;
    std::vector<std::string> values = expressions(2);
    for (size_t i = 0; i < columns_.size(); ++i)
        sets += (i ? ", " : "") + columns_[i].name + " = " + values[i];
    std::vector<pg::Value> params{id};
    for (const auto &v : this->values()) params.push_back(v);
    const std::string statement = with_details(
        fmt::format("UPDATE virtuoso.migration_log SET {} WHERE id = $1::uuid RETURNING ", sets),
        params.size() + 1);
    for (const auto &[phase, detail] : details_) {
        params.emplace_back(phase);
        params.emplace_back(detail);
    }
    pg::Row row = write(statement, params, autonomous);
    if (sets_status()) alerts::migration_logged(row, autonomous);  // FAILED, long lock waits
    return row;
}

bool LogRow::sets_status() const {
    for (const Column &c : columns_)
        if (c.name == "status") return true;
    return false;
}

pg::Row read_log(const std::string &id) {
    AsExtensionOwner owner;
    pg::InternalSql spi;
    auto result = spi.execute("SELECT * FROM virtuoso.migration_log WHERE id = $1::uuid", {id});
    if (result.empty())
        throw pg::UserError(ERRCODE_INTERNAL_ERROR, "migration log row " + id + " not found");
    return result.rows[0];
}

pg::Row latest_run(const std::string &name, const std::string &filter,
                   const std::string &preference) {
    AsExtensionOwner owner;
    pg::InternalSql spi;
    auto rows = spi.execute(fmt::format("SELECT * FROM virtuoso.migration_log WHERE name = $1 "
                                        "AND ({}) ORDER BY {} started_at DESC LIMIT 1",
                                        filter, preference.empty() ? "" : preference + ","),
                            {name});
    if (rows.empty())
        throw pg::UserError(ERRCODE_UNDEFINED_OBJECT,
                            fmt::format("no migration named \"{}\"", name), "",
                            "See SELECT name, status FROM virtuoso.migration_log.");
    return rows.rows[0];
}

int log_column(const std::string &name) {
    const auto &columns = log_columns();
    for (size_t i = 0; i < columns.size(); ++i)
        if (columns[i] == name) return static_cast<int>(i);
    throw pg::UserError(ERRCODE_INTERNAL_ERROR, "no migration_log column " + name);
}

namespace {

struct DatabaseSize {
    Oid database = InvalidOid;
    int64 bytes = 0;
    TimestampTz measured_at = 0;
};

constexpr long kDatabaseSizeMaxAgeMs = 60 * 1000;

// pg_database_size(), remembered for a minute (see collect_stats).
const DatabaseSize &database_size() {
    static DatabaseSize cached;
    TimestampTz now = GetCurrentTimestamp();
    if (cached.database != MyDatabaseId ||
        TimestampDifferenceExceeds(cached.measured_at, now, kDatabaseSizeMaxAgeMs)) {
        cached.bytes = pg::pg_call([] {
            return DatumGetInt64(
                DirectFunctionCall1(pg_database_size_oid, ObjectIdGetDatum(MyDatabaseId)));
        });
        cached.database = MyDatabaseId;
        cached.measured_at = now;
    }
    return cached;
}

std::string timestamp_text(TimestampTz t) {
    return pg::pg_call([t] { return std::string(timestamptz_to_str(t)); });
}

}  // namespace

Stats collect_stats(const std::vector<Oid> &relations, const Stats *since) {
    struct Counters {
        int64 commits, rollbacks;
        int connections;
        XLogRecPtr lsn;
    } counters = pg::pg_call([] {
        pgstat_clear_snapshot();
        PgStat_StatDBEntry *db = pgstat_fetch_stat_dbentry(MyDatabaseId);
        return Counters{db ? db->n_xact_commit : 0, db ? db->n_xact_rollback : 0,
                        pgstat_fetch_stat_numbackends(), GetXLogInsertRecPtr()};
    });
    Stats stats;
    stats.wal_lsn = fmt::format("{:X}/{:X}", static_cast<uint32>(counters.lsn >> 32),
                                static_cast<uint32>(counters.lsn));

    std::string relations_json = "{}";
    if (!relations.empty()) {
        // Sizes need an ACCESS SHARE lock on each relation.  Statistics must never queue
        // behind another session (the migration's own attempts wait only up to its
        // lock_timeout, and are retried): a relation that is locked right now is not measured.
        std::vector<Oid> measured, busy;
        for (Oid relid : relations)
            (pg::pg_call([relid] { return ConditionalLockRelationOid(relid, AccessShareLock); })
                 ? measured
                 : busy)
                .push_back(relid);
        struct Unlock {
            const std::vector<Oid> &relids;
            ~Unlock() {
                for (Oid relid : relids) UnlockRelationOid(relid, AccessShareLock);
            }
        } unlock{measured};  // no lock held past the measurement (nor while backing off)
        pg::InternalSql spi;
        // The log row gets each relation's size (null: not measured); the rest goes to
        // virtuoso.migration_stats (see LogRow::set_detail).
        auto rel = spi.execute(
            "SELECT coalesce(jsonb_object_agg(r.name, r.size), '{}'::jsonb)::text,"
            "  coalesce(jsonb_object_agg(r.name, jsonb_build_object('kind', r.relkind,"
            "    'size_bytes', r.size, 'rows_estimate', r.reltuples::bigint)"
            "    || CASE WHEN r.busy THEN '{\"not_measured\": \"locked by another session\"}'"
            "       ELSE '{}' END::jsonb), '{}'::jsonb)::text,"
            "  coalesce(sum(r.size), 0)::bigint,"
            "  coalesce(sum(r.reltuples::bigint) FILTER (WHERE r.relkind IN ('r', 'm', 'p')"
            "           AND NOT r.busy AND r.reltuples >= 0), 0)::bigint "
            "FROM (SELECT c.oid::regclass::text AS name, c.relkind, c.reltuples,"
            "        c.oid = ANY($2::oid[]) AS busy,"
            "        CASE WHEN c.oid = ANY($1::oid[]) THEN pg_total_relation_size(c.oid) END AS "
            "size"
            "      FROM pg_class c WHERE c.oid = ANY($1::oid[]) OR c.oid = ANY($2::oid[])) r",
            {pg::oid_array(measured), pg::oid_array(busy)});
        relations_json = rel.rows[0][0].value_or("{}");
        stats.detail = rel.rows[0][1].value_or("{}");
        stats.relations_size = std::stoll(rel.rows[0][2].value_or("0"));
        stats.relations_rows = std::stoll(rel.rows[0][3].value_or("0"));
    }

    const DatabaseSize &measured = database_size();
    stats.database_size =
        since ? since->database_size + (stats.relations_size - since->relations_size)
              : measured.bytes;
    const std::string counters_json =
        fmt::format(R"("connections": {}, "commits": {}, "rollbacks": {}, "wal_lsn": "{}", )"
                    R"("database_size_bytes": {}, "relations": {})",
                    counters.connections, counters.commits, counters.rollbacks, stats.wal_lsn,
                    stats.database_size, relations_json);
    if (!since) {
        stats.json = fmt::format(R"({{{}, "database_size_measured_at": "{}"}})", counters_json,
                                 timestamp_text(measured.measured_at));
        return stats;
    }
    const int64 wal_bytes = static_cast<int64>(counters.lsn) - static_cast<int64>(pg::pg_call([&] {
                                return DatumGetLSN(DirectFunctionCall1(
                                    pg_lsn_in, CStringGetDatum(since->wal_lsn.c_str())));
                            }));
    stats.json =
        fmt::format(R"({{{}, "wal_bytes": {}, "size_delta_bytes": {}, "rows_estimate_delta": {}}})",
                    counters_json, wal_bytes, stats.relations_size - since->relations_size,
                    stats.relations_rows - since->relations_rows);
    return stats;
}

}  // namespace virtuoso::migrate
