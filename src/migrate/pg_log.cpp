#include "db_virtuoso/migrate/log.hpp"

#include "db_virtuoso/pg/runner.hpp"

extern "C" {
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "utils/syscache.h"
}

namespace virtuoso::migrate {
namespace {

Oid extension_owner() {
    pg::InternalSql spi;
    auto owner = spi.scalar("SELECT extowner FROM pg_extension WHERE extname = 'db_virtuoso'");
    if (!owner)
        throw pg::UserError(ERRCODE_UNDEFINED_OBJECT, "extension db_virtuoso is not installed");
    return static_cast<Oid>(std::stoul(*owner));
}

// Every column of migration_log, in table order (its row type).
const std::vector<std::string> &log_columns() {
    static const std::vector<std::string> columns = {
        "id", "name", "checksum", "status", "started_at", "completed_at", "duration",
        "initial_stats", "final_stats", "sqlstate", "error_message", "error_detail",
        "error_hint", "error_context", "migration_sql", "rollback_sql", "rollback_at",
        "rollback_reason", "affected_objects", "attempts", "lock_waits", "lint",
        "plan_changes", "backup_tables", "executed_by", "options", "transactional",
        "statements_total", "statements_done", "backend_pid"};
    return columns;
}

// Runs internal SQL that writes the log, here or in an autonomous worker; returns the id.
std::string write(const std::string &sql, const std::vector<pg::Value> &params, bool autonomous) {
    AsExtensionOwner owner;
    if (!autonomous) {
        pg::InternalSql spi;
        auto id = spi.scalar(sql, params);
        if (!id) throw pg::UserError(ERRCODE_INTERNAL_ERROR, "migration log row not written");
        return *id;
    }
    // The worker copies these settings: the pinned search_path and the owner identity.
    pg::GucScope settings;
    settings.set("search_path", "pg_catalog, pg_temp");
    auto outcome = pg::run_in_worker_or_raise({pg::RunMode::Autonomous, sql, params});
    if (!outcome.value) throw pg::UserError(ERRCODE_INTERNAL_ERROR, "migration log row not written");
    return *outcome.value;
}

}  // namespace

AsExtensionOwner::AsExtensionOwner() {
    Oid owner = extension_owner();
    GetUserIdAndSecContext(&saved_user_, &saved_context_);
    SetUserIdAndSecContext(owner, saved_context_ | SECURITY_LOCAL_USERID_CHANGE);
}

AsExtensionOwner::~AsExtensionOwner() { SetUserIdAndSecContext(saved_user_, saved_context_); }

LogRow &LogRow::set(const std::string &column, pg::Value value, const std::string &type) {
    columns_.push_back({column, type, std::move(value)});
    return *this;
}

LogRow &LogRow::set_time(const std::string &column, int64_t timestamp) {
    columns_.push_back({column, "", std::to_string(timestamp)});
    return *this;
}

LogRow &LogRow::merge(const LogRow &other) {
    columns_.insert(columns_.end(), other.columns_.begin(), other.columns_.end());
    return *this;
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
    return read_log(write(fmt::format("INSERT INTO virtuoso.migration_log ({}) VALUES ({}) "
                                      "RETURNING id",
                                      names, exprs),
                          this->values(), autonomous));
}

pg::Row LogRow::update(const std::string &id, bool autonomous) const {
    std::string sets;
    std::vector<std::string> values = expressions(2);
    for (size_t i = 0; i < columns_.size(); ++i)
        sets += (i ? ", " : "") + columns_[i].name + " = " + values[i];
    std::vector<pg::Value> params{id};
    for (const auto &v : this->values()) params.push_back(v);
    return read_log(write(fmt::format("UPDATE virtuoso.migration_log SET {} WHERE id = $1::uuid "
                                      "RETURNING id",
                                      sets),
                          params, autonomous));
}

pg::Row read_log(const std::string &id) {
    AsExtensionOwner owner;
    pg::InternalSql spi;
    auto result = spi.execute("SELECT * FROM virtuoso.migration_log WHERE id = $1::uuid", {id});
    if (result.empty())
        throw pg::UserError(ERRCODE_INTERNAL_ERROR, "migration log row " + id + " not found");
    return result.rows[0];
}

int log_column(const std::string &name) {
    const auto &columns = log_columns();
    for (size_t i = 0; i < columns.size(); ++i)
        if (columns[i] == name) return static_cast<int>(i);
    throw pg::UserError(ERRCODE_INTERNAL_ERROR, "no migration_log column " + name);
}

std::string collect_stats(const std::vector<Oid> &relations, const std::string &since_lsn) {
    std::string oids;
    for (Oid r : relations) oids += (oids.empty() ? "" : ",") + std::to_string(r);
    pg::InternalSql spi;
    spi.execute("SELECT pg_stat_clear_snapshot()");
    auto stats = spi.scalar(
        "SELECT jsonb_build_object("
        " 'captured_at', clock_timestamp(),"
        " 'connections', (SELECT count(*) FROM pg_stat_activity WHERE datid = d.datid),"
        " 'commits', d.xact_commit, 'rollbacks', d.xact_rollback,"
        " 'database_size_bytes', pg_database_size(d.datid),"
        " 'wal_lsn', pg_current_wal_insert_lsn(),"
        " 'wal_bytes', CASE WHEN $2 = '' THEN NULL"
        "              ELSE pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $2::pg_lsn) END,"
        " 'relations', coalesce((SELECT jsonb_object_agg(c.oid::regclass::text, jsonb_build_object("
        "     'kind', c.relkind, 'size_bytes', pg_total_relation_size(c.oid),"
        "     'rows_estimate', c.reltuples::bigint))"
        "   FROM pg_class c WHERE c.oid = ANY($1::oid[])), '{}'::jsonb))::text "
        "FROM pg_stat_database d "
        "WHERE d.datid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        {"{" + oids + "}", since_lsn});
    return stats.value_or("{}");
}

}  // namespace virtuoso::migrate
