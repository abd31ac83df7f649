// virtuoso.execute_rollback_with_backup(migration_name, preserve_new_data, reason)
#include <random>

#include "db_virtuoso/migrate/log.hpp"
#include "db_virtuoso/migrate/options.hpp"
#include "db_virtuoso/migrate/run.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/runner.hpp"

extern "C" {
#include "access/xlog.h"
#include "mb/pg_wchar.h"
#include "utils/timestamp.h"
}

namespace virtuoso::migrate {
namespace {

using pg::UserError;

// The latest SUCCESS row of the migration; a precise error otherwise.
pg::Row rollback_target(const std::string &name) {
    pg::Row row = latest_run(name, "true", "(status = 'SUCCESS') DESC");
    std::string status = row[log_column("status")].value_or("");
    if (status != "SUCCESS")
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        fmt::format("migration \"{}\" has no SUCCESS run to roll back (its latest "
                                    "run is {})",
                                    name, status));
    if (!row[log_column("rollback_sql")])
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        fmt::format("migration \"{}\" has no rollback_sql", name), "",
                        "Record one by passing rollback_sql to execute_migration_with_monitoring.");
    return row;
}

constexpr int kMaxBackupNameTries = 1000;

// Longest part of a table's name kept in its backup's name, in bytes: the rest of the 63
// bytes holds "_YYYYMMDD_HHMMSS" and a counter "_1000".
constexpr int kBackupBaseBytes = NAMEDATALEN - 1 - 23;

// The first `max_bytes` bytes of a name, cut at a character boundary in the database
// encoding, as PostgreSQL's truncate_identifier does.
std::string clip_name(const std::string &name, int max_bytes) {
    if (static_cast<int>(name.size()) <= max_bytes) return name;
    int keep = pg::pg_call(
        [&] { return pg_mbcliplen(name.c_str(), static_cast<int>(name.size()), max_bytes); });
    return name.substr(0, static_cast<size_t>(keep));
}

struct BackupSource {
    std::string table;      // regclass text
    std::string base_name;  // clipped relname + "_YYYYMMDD_HHMMSS"
};

// The tables the migration created or altered (and that still exist), to copy.
std::vector<BackupSource> backup_sources(pg::InternalSql &spi, const std::string &affected) {
    auto tables = spi.execute(
        "SELECT DISTINCT c.oid::regclass::text, c.relname::text, "
        "  to_char(clock_timestamp(), 'YYYYMMDD_HH24MISS') "
        "FROM jsonb_array_elements($1::jsonb) AS o "
        "JOIN pg_class c ON c.oid = (o->>'objid')::oid "
        "WHERE (o->>'classid')::oid = 'pg_class'::regclass::oid AND o->>'command' <> 'DROP' "
        "AND c.relkind IN ('r', 'p')",
        {affected});
    std::vector<BackupSource> out;
    for (const auto &t : tables.rows)
        out.push_back({*t[0], clip_name(*t[1], kBackupBaseBytes) + "_" + *t[2]});
    return out;
}

// A name in virtuoso_backup that neither a relation nor a type has yet, from a bounded
// number of tries; quoted and schema-qualified.
std::string free_backup_name(pg::InternalSql &spi, const BackupSource &source) {
    for (int n = 1; n <= kMaxBackupNameTries; ++n) {
        std::string name = n == 1 ? source.base_name : source.base_name + "_" + std::to_string(n);
        // a table's row type takes the same name: neither may exist
        if (spi.scalar("SELECT NOT EXISTS (SELECT FROM pg_class WHERE relname = $1::name "
                       "AND relnamespace = 'virtuoso_backup'::regnamespace) AND NOT EXISTS "
                       "(SELECT FROM pg_type WHERE typname = $1::name "
                       "AND typnamespace = 'virtuoso_backup'::regnamespace)",
                       {name}) == "t")
            return "virtuoso_backup." + pg::quote_identifier(name);
    }
    throw pg::UserError(ERRCODE_DUPLICATE_TABLE,
                        fmt::format("no free backup name for table {} in schema virtuoso_backup "
                                    "after {} tries",
                                    source.table, kMaxBackupNameTries),
                        "", "Drop old backups from schema virtuoso_backup.");
}

// Copies each table the migration touched into schema virtuoso_backup, in the caller's
// transaction; returns their names.  Each name fits in NAMEDATALEN - 1 bytes before
// anything is appended, so PostgreSQL keeps it as built: the name probed is the name created
// is the name recorded.
std::vector<std::string> back_up_tables(const std::string &affected_objects) {
    // As the caller: a backup reads only what the caller may read.  No kept plans: the
    // CREATE TABLE ... AS text is unique to each backup.
    pg::InternalSql spi(false);
    std::vector<BackupSource> sources = backup_sources(spi, affected_objects);
    std::vector<std::string> names;
    if (sources.empty()) return names;
    // The schema and the empty copies are made by the extension's owner, so a role with only
    // the documented grants (no CREATE on the database or the schema) may back up; each copy
    // then belongs to the caller and is filled as the caller, reading only what it may read.
    const std::string caller = *spi.scalar("SELECT quote_ident(current_user)");
    // (IF NOT EXISTS would add a NOTICE to every later rollback; migrations are serialised)
    if (!spi.scalar("SELECT to_regnamespace('virtuoso_backup')")) {
        AsExtensionOwner owner;
        spi.execute("CREATE SCHEMA virtuoso_backup");
    }
    for (const BackupSource &source : sources) {
        std::string target = free_backup_name(spi, source);
        {
            AsExtensionOwner owner;
            spi.execute(fmt::format("GRANT USAGE ON SCHEMA virtuoso_backup TO {}", caller));
            spi.execute(
                fmt::format("CREATE TABLE {} AS TABLE {} WITH NO DATA", target, source.table));
            spi.execute(fmt::format("ALTER TABLE {} OWNER TO {}", target, caller));
        }
        spi.execute(fmt::format("INSERT INTO {} TABLE {}", target, source.table));
        names.push_back(target);
    }
    return names;
}


// Runs one backup statement through the runner in its own transaction, which commits at
// once: as the caller, with the caller's settings and the migration's lock_timeout, retried
// with backoff on 55P03 (the worker has ended, so no lock is held while sleeping).
void run_committed(const std::string &sql, const Limits &limits) {
    for (int attempt = 1;; ++attempt) {
        pg::RunOutcome outcome;
        {
            pg::GucScope settings;  // the worker copies it
            settings.set("lock_timeout", std::to_string(limits.lock_timeout_ms) + "ms");
            outcome = pg::run_in_worker({pg::RunMode::Autonomous, sql, {}});
        }
        if (outcome.ok) return;
        if (outcome.error->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE || attempt > limits.max_retries)
            throw pg::PgError(outcome.error);
        pg::interruptible_sleep(lock_retry_backoff_ms(attempt));
    }
}

std::string text_array(const std::vector<std::string> &items) {
    std::string out = "{";
    for (size_t i = 0; i < items.size(); ++i) {
        out += i ? ",\"" : "\"";
        for (char c : items[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

// For a statement-by-statement rollback, whose statements each commit on their own: the
// backups are committed before the first of them runs, each listed in the row (committed
// too) as soon as it exists, so that no rollback statement can have dropped data that is not
// in a durable, recorded backup -- whatever happens to the caller afterwards.
std::vector<std::string> back_up_tables_committed(const std::string &id,
                                                  const std::string &affected_objects,
                                                  const Limits &limits) {
    std::vector<BackupSource> sources;
    bool have_schema = false;
    {
        pg::InternalSql spi(false);
        sources = backup_sources(spi, affected_objects);
        have_schema = spi.scalar("SELECT to_regnamespace('virtuoso_backup')").has_value();
    }
    std::vector<std::string> names;
    if (sources.empty()) return names;
    if (!have_schema) run_committed("CREATE SCHEMA virtuoso_backup", limits);
    for (const BackupSource &source : sources) {
        std::string target;
        {
            // sees the backups committed so far (READ COMMITTED: a new snapshot per query)
            pg::InternalSql spi(false);
            target = free_backup_name(spi, source);
        }
        run_committed(fmt::format("CREATE TABLE {} AS TABLE {}", target, source.table), limits);
        names.push_back(target);
        LogRow listed;
        listed.set("backup_tables", text_array(names), "text[]");
        listed.update(id, true);
    }
    return names;
}

// back_up_tables with each attempt under the migration's lock_timeout (copying a table
// locks it; another session's lock must not make the rollback queue without bound), retried
// with backoff on 55P03 as a migration's statements are; no lock is held while sleeping.
std::vector<std::string> back_up_tables_lock_safe(const std::string &affected_objects,
                                                  const Limits &limits) {
    for (int attempt = 1;; ++attempt) {
        try {
            pg::SubTransaction scope;
            std::vector<std::string> names;
            {
                pg::GucScope settings;
                settings.set("lock_timeout", std::to_string(limits.lock_timeout_ms) + "ms");
                names = back_up_tables(affected_objects);
            }
            scope.commit();
            return names;
        } catch (const pg::PgError &e) {
            if (e.sqlstate() != ERRCODE_LOCK_NOT_AVAILABLE || attempt > limits.max_retries) throw;
        }
        pg::interruptible_sleep(lock_retry_backoff_ms(attempt));
    }
}

// The state of a statement-by-statement rollback in its row (rollback_reason, rollback_at),
// committed on its own: it is what stays if the caller is killed.
void record_rollback_state(const std::string &id, const std::string &state) {
    LogRow row;
    row.set("rollback_reason", state).set_time("rollback_at", GetCurrentTimestamp());
    row.update(id, true);
}

// Where a statement-by-statement rollback stopped.  After a cancel (interrupted) it is best
// effort: the original error is what the caller must see, and the progress already recorded
// stays.
void record_rollback_failure(const std::string &id, const Failure &f, size_t total,
                             bool interrupted) {
    const std::string state = fmt::format(
        "rollback failed at statement {} of {}: {} {}; {}", f.statement, total, f.sqlstate,
        f.message,
        f.statement > 1 ? "statements before it were applied" : "no statement was applied");
    if (!interrupted) {
        record_rollback_state(id, state);
        return;
    }
    try {
        pg::SubTransaction scope;
        record_rollback_state(id, state);
        scope.commit();
    } catch (const pg::PgError &) {
    } catch (const pg::UserError &) {
    }
}

}  // namespace
}  // namespace virtuoso::migrate

using namespace virtuoso;
using namespace virtuoso::migrate;

namespace virtuoso::migrate {

pg::Row rollback_migration(const std::string &name, bool preserve, const pg::Value &reason) {
    if (RecoveryInProgress())
        throw pg::UserError(ERRCODE_READ_ONLY_SQL_TRANSACTION,
                            "rollbacks cannot run on a hot standby",
                            "This server is in recovery: it cannot write.",
                            "Roll the migration back on the primary.");
    require_read_committed();

    acquire_migration_lock(gucs::lock_timeout_ms);
    // Ownership first: nothing of another role's run (not even its status) for a non-member.
    (void)RunAccess(latest_run(name, "true"), name, "roll back");
    pg::Row target = rollback_target(name);
    const RunAccess access(target, name, "roll back");
    const std::string id = *target[log_column("id")];
    OptionError ignored;
    auto options = parse_options(target[log_column("options")].value_or("{}"), &ignored);
    const Limits limits = limits_from(options.value_or(MigrationOptions{}));
    const std::string rollback_sql = *target[log_column("rollback_sql")];
    // A migration that ran statement by statement rolls back the same way.
    const bool transactional = target[log_column("transactional")] != "f";
    const std::vector<Statement> statements =
        checked_statements(rollback_sql, transactional, "rollback_sql");

    const std::string affected = target[log_column("affected_objects")].value_or("[]");
    std::vector<std::string> backups;
    RunResult result;
    // Statement by statement: one runner worker for the backups, the statements and the rows
    // recording them (see pg::RunnerSession).
    std::optional<pg::RunnerSession> session;
    if (transactional) {
        if (preserve) backups = back_up_tables_lock_safe(affected, limits);
        RunAccess::StoredSqlScope as_recorder(access);
        result = run_transactional(statements, limits, std::nullopt, true);
    } else {
        session.emplace();
        // Each statement commits on its own, so nothing here can be undone by the caller's
        // abort: backups are committed and listed first, and the row records (committed)
        // how far the rollback got, so that a failure, a cancel or a killed caller leaves a
        // trace.  The row stays SUCCESS until the last statement is done: the migration is
        // still applied, at least in part.
        if (preserve) backups = back_up_tables_committed(id, affected, limits);
        const size_t total = statements.size();
        int done = 0;
        record_rollback_state(id, fmt::format("rolling back: 0 of {} statements done", total));
        try {
            // Cancelled while it waits: the subtransaction cleans up, the row says where it
            // stopped, and the error goes on.
            pg::SubTransaction waiting;
            {
                RunAccess::StoredSqlScope as_recorder(access);
                result = run_one_by_one(statements, limits, [&](int k) {
                    done = k;
                    record_rollback_state(
                        id, fmt::format("rolling back: {} of {} statements done", k, total));
                });
            }
            waiting.commit();
        } catch (const pg::PgError &e) {
            record_rollback_failure(id, failure_from(e, done + 1), total, true);
            throw;
        }
        if (!result.ok) record_rollback_failure(id, *result.failure, total, false);
    }
    if (!result.ok) {
        const Failure &f = *result.failure;
        std::string where = fmt::format(
            "rollback of migration \"{}\" failed at statement {}; {}", name, f.statement,
            transactional     ? "nothing was changed"
            : f.statement > 1 ? "statements before it were applied (recorded in its "
                                "migration_log row, which stays SUCCESS)"
                              : "no statement was applied");
        if (f.error) {
            pg::pg_call([&] {
                f.error->context = f.error->context
                                       ? psprintf("%s\n%s", f.error->context, where.c_str())
                                       : pstrdup(where.c_str());
            });
            throw pg::PgError(f.error);
        }
        throw pg::UserError(ERRCODE_INTERNAL_ERROR, where);
    }
    LogRow update;
    update.set("status", "ROLLED_BACK")
        .set_time("rollback_at", GetCurrentTimestamp())
        .set("rollback_reason", reason.value_or("requested by " + std::string(pg::pg_call([] {
                                                    return GetUserNameFromId(GetUserId(), false);
                                                }))))
        .set("backup_tables", backups.empty() ? pg::Value() : pg::Value(text_array(backups)),
             "text[]");
    // Statement by statement, the rollback has committed: so does its record.
    return update.update(id, !transactional);
}

}  // namespace virtuoso::migrate

VIRTUOSO_FUNCTION(virtuoso_execute_rollback) {
    const std::string name = required_text(fcinfo, 0, "migration_name");
    const bool preserve = PG_NARGS() < 2 || PG_ARGISNULL(1) ? true : PG_GETARG_BOOL(1);
    pg::Value reason = pg::text_arg(fcinfo, 2);
    return pg::return_composite(fcinfo, rollback_migration(name, preserve, reason));
}
