// Writing virtuoso.migration_log (server side).  Rows are written as the extension's owner
// with a pinned search_path, so a caller needs EXECUTE on the function, not rights on the
// table; `executed_by` records the caller.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "db_virtuoso/pg/result.hpp"

namespace virtuoso::migrate {

// Acts as the extension's owner while alive (SECURITY_LOCAL_USERID_CHANGE), like a
// SECURITY DEFINER function; the caller's identity comes back on scope exit.
class AsExtensionOwner {
  public:
    AsExtensionOwner();
    ~AsExtensionOwner();
    AsExtensionOwner(const AsExtensionOwner &) = delete;
    AsExtensionOwner &operator=(const AsExtensionOwner &) = delete;

  private:
    Oid saved_user_;
    int saved_context_;
};

// Who may act on a recorded run: a superuser, or a role with the privileges of the role
// that recorded it (has_privs_of_role); when that role was dropped, superusers only.
// Anything else is 42501 naming the recorder.  Check before any stored SQL of the run
// (rollback_sql, validation rules) runs, and run that SQL inside a StoredSqlScope: with the
// rights of the role that recorded it, never with more (a superuser rolling back another
// role's migration must not run that role's SQL as superuser).
class RunAccess {
  public:
    // action: "replace", "roll back", "verify" (in the message).
    RunAccess(const pg::Row &run, const std::string &name, const char *action);

    class StoredSqlScope {
      public:
        explicit StoredSqlScope(const RunAccess &access);
        ~StoredSqlScope();
        StoredSqlScope(const StoredSqlScope &) = delete;
        StoredSqlScope &operator=(const StoredSqlScope &) = delete;

      private:
        Oid saved_user_;
        int saved_context_;
    };

  private:
    Oid run_as_ = InvalidOid;
};

// Column values of a log row, in text form, each with the SQL type it is cast to.
class LogRow {
  public:
    LogRow &set(const std::string &column, pg::Value value, const std::string &type = "text");
    // A timestamptz as microseconds since 2000-01-01 (TimestampTz).
    LogRow &set_time(const std::string &column, int64_t timestamp);
    // Per-relation statistics (Stats::detail) of a phase ("initial", "final"), written to
    // virtuoso.migration_stats by the same statement as the log row.
    LogRow &set_detail(const std::string &phase, std::string detail);
    // Adds the columns (and details) of another row.
    LogRow &merge(const LogRow &other);

    // INSERT ... RETURNING *; in the caller's transaction, or autonomously (committed on its
    // own, surviving the caller's rollback), then read back.
    pg::Row insert(bool autonomous) const;
    // UPDATE ... WHERE id = $id RETURNING *; autonomous likewise.
    pg::Row update(const std::string &id, bool autonomous) const;

  private:
    struct Column {
        std::string name;
        std::string type;  // SQL type of the value, or "" for a TimestampTz in microseconds
        pg::Value value;
    };
    // "col = expr" pieces with $1.. numbered from first_param, and their values.
    std::vector<std::string> expressions(size_t first_param) const;
    std::vector<pg::Value> values() const;
    bool sets_status() const;  // a new status is written: the alert hook looks at it
    // The statement writing the row (ending in "RETURNING "), completed with the output list
    // placeholder and wrapped with the writes of the details if there are any; next_param is
    // the number of the details' first parameter.
    std::string with_details(const std::string &statement, size_t next_param) const;
    std::vector<Column> columns_;
    std::vector<std::pair<std::string, std::string>> details_;  // phase, JSON object
};

// The whole row of a log entry (in the order of the table's columns).
pg::Row read_log(const std::string &id);

// The latest run of a migration among the rows matching `filter` (SQL over the log's
// columns), ordered by `preference` first; 42704 when the name has no such row.
pg::Row latest_run(const std::string &name, const std::string &filter,
                   const std::string &preference = "");

// Statistics of the database and of the given relations.  `json` is the summary kept in the
// log row: connections, commits, rollbacks, WAL insert position, the database size and each
// relation's size; with `since` (final statistics) also the WAL bytes, size and row-estimate
// changes since then.  `detail` is a JSON object of each relation's kind, size and row
// estimate, stored in virtuoso.migration_stats.  pg_database_size() walks the whole
// database directory, so it is measured at most once a minute per session; in between the
// size is the last measurement plus the size changes of the relations measured here (or,
// for final statistics, the initial size plus what the touched relations gained).
struct Stats {
    std::string json;
    std::string detail = "{}";
    std::string wal_lsn;
    int64_t database_size = 0;
    int64_t relations_size = 0;  // sum over the relations measured
    int64_t relations_rows = 0;  // sum of the row estimates of the measured tables
};
Stats collect_stats(const std::vector<Oid> &relations, const Stats *since = nullptr);

// Column index of a migration_log row, by name.
int log_column(const std::string &name);

}  // namespace virtuoso::migrate
