// Alerts (virtuoso.alert_log + NOTIFY) and log retention.
//
// An alert is one INSERT ... RETURNING whose row is also the NOTIFY payload, so the log and
// the notification never disagree.  NOTIFY is delivered at commit: an alert that must survive
// the caller's rollback (a FAILED migration) is written by an autonomous runner worker, whose
// transaction commits on its own.  Rows are written as the extension's owner with a pinned
// search_path; nobody else writes the log.
#include "db_virtuoso/alerts/alerts.hpp"
#include "db_virtuoso/core/json_text.hpp"

#include "db_virtuoso/migrate/log.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/runner.hpp"
#include "db_virtuoso/pg/spi.hpp"

#include <map>
#include <set>

namespace virtuoso::alerts {
namespace {

using core::json_quote;

// The payload of a NOTIFY must stay under 8000 bytes: a larger one keeps id, kind, severity,
// database, object and at, the message cut to 1000 characters and details {"truncated": true}.
// An alert with a fingerprint that is still unresolved is not written nor sent again.
constexpr const char *kEmitSql = R"SQL(
WITH a AS (
  INSERT INTO virtuoso.alert_log (kind, severity, object, message, details, fingerprint, resolved_at)
  SELECT $1, $2, $3, $4, COALESCE($5::pg_catalog.jsonb, '{}'::pg_catalog.jsonb), $6::pg_catalog.text,
         CASE WHEN $8::pg_catalog.bool THEN pg_catalog.clock_timestamp() END
  WHERE $6::pg_catalog.text IS NULL OR $8::pg_catalog.bool OR NOT EXISTS (
      SELECT FROM virtuoso.alert_log o
      WHERE o.fingerprint OPERATOR(pg_catalog.=) $6::pg_catalog.text AND o.resolved_at IS NULL)
  RETURNING *),
p AS (
  SELECT a.id, pg_catalog.jsonb_build_object('id', a.id, 'kind', a.kind, 'severity', a.severity,
           'database', a.database, 'object', a.object, 'message', a.message,
           'details', a.details, 'at', a.at) AS j
  FROM a)
SELECT p.id, pg_catalog.pg_notify($7,
         CASE WHEN pg_catalog.octet_length(p.j::pg_catalog.text) OPERATOR(pg_catalog.<=) 7900
              THEN p.j::pg_catalog.text
              ELSE (p.j OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                      'message', pg_catalog.left(p.j OPERATOR(pg_catalog.->>) 'message', 1000),
                      'details', '{"truncated": true}'::pg_catalog.jsonb))::pg_catalog.text
         END)::pg_catalog.text
FROM p
)SQL";

// Resolves the unresolved alerts of fingerprint $1 and sends an INFO "resolved:" alert for
// each on channel $2 (the payload cut as kEmitSql's).
constexpr const char *kResolveSql = R"SQL(
WITH r AS (
  UPDATE virtuoso.alert_log SET resolved_at = pg_catalog.clock_timestamp()
  WHERE fingerprint OPERATOR(pg_catalog.=) $1::pg_catalog.text AND resolved_at IS NULL
  RETURNING id, kind, object, message),
a AS (
  INSERT INTO virtuoso.alert_log (kind, severity, object, message, details, resolved_at)
  SELECT r.kind, 'INFO', r.object, 'resolved: ' OPERATOR(pg_catalog.||) r.message,
         pg_catalog.jsonb_build_object('resolves', r.id), pg_catalog.clock_timestamp()
  FROM r
  RETURNING *),
p AS (
  SELECT pg_catalog.jsonb_build_object('id', a.id, 'kind', a.kind, 'severity', a.severity,
           'database', a.database, 'object', a.object, 'message', a.message,
           'details', a.details, 'at', a.at) AS j
  FROM a)
SELECT pg_catalog.count(pg_catalog.pg_notify($2::pg_catalog.text,
         CASE WHEN pg_catalog.octet_length(p.j::pg_catalog.text) OPERATOR(pg_catalog.<=) 7900
              THEN p.j::pg_catalog.text
              ELSE (p.j OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                      'message', pg_catalog.left(p.j OPERATOR(pg_catalog.->>) 'message', 1000),
                      'details', '{"truncated": true}'::pg_catalog.jsonb))::pg_catalog.text
         END))::pg_catalog.text
FROM p
)SQL";

std::string channel() {
    return gucs::alert_channel ? gucs::alert_channel : "virtuoso_alerts";
}

std::string maintenance_fingerprint(uint32_t relid) {
    return fmt::format("maintenance_failed:{}", relid);
}

std::string json_or_null(const pg::Value &v) {
    return v ? json_quote(*v) : "null";
}

void emit_unguarded(const Alert &alert, bool autonomous) {
    migrate::AsExtensionOwner owner;
    if (!autonomous) {
        pg::InternalSql spi;
        spi.execute(kEmitSql, emit_params(alert));
        return;
    }
    // The worker copies these settings: the pinned search_path and the owner identity.
    pg::GucScope settings;
    settings.set("search_path", "pg_catalog, pg_temp");
    pg::run_in_worker_or_raise({pg::RunMode::Autonomous, kEmitSql, emit_params(alert), true});
}

}  // namespace

const char *emit_sql() {
    return kEmitSql;
}

std::vector<pg::Param> emit_params(const Alert &a) {
    return {a.kind,    a.severity,    a.object,  a.message,
            a.details, a.fingerprint, channel(), std::string(a.resolution ? "true" : "false")};
}

const char *resolve_sql() {
    return kResolveSql;
}

std::vector<pg::Param> maintenance_resolve_params(uint32_t relid) {
    return {maintenance_fingerprint(relid), channel()};
}

void emit(const Alert &alert, bool autonomous) {
    // An alert that cannot be written must not replace the error or result of the operation
    // it is about: a WARNING says so, and the caller's transaction goes on.
    std::string failure;
    try {
        pg::SubTransaction sub;
        emit_unguarded(alert, autonomous);
        sub.commit();
    } catch (const pg::PgError &e) {
        // The user's cancel or a shutdown still ends the call; a resource the alert lacks
        // (no runner worker slot: 53400) is the alert's failure, not the operation's.
        if (pg::is_operator_intervention(e.sqlstate())) throw;
        failure = e.what();
    } catch (const std::exception &e) {
        failure = e.what();
    }
    if (!failure.empty())
        pg::report(WARNING, fmt::format("db_virtuoso could not send the {} alert for \"{}\": {}",
                                        alert.kind, alert.object, failure));
}

Alert maintenance_failed(uint32_t relid, const std::string &table, const std::string &command,
                         const std::string &sqlstate, const std::string &message) {
    Alert a;
    a.fingerprint = maintenance_fingerprint(relid);
    a.kind = "maintenance_failed";
    a.severity = "WARN";
    a.object = table;
    a.message = fmt::format("maintenance of {} failed: {}", table, message);
    a.details = fmt::format(R"({{"command": {}, "sqlstate": {}}})", json_quote(command),
                            json_quote(sqlstate));
    return a;
}

void migration_logged(const pg::Row &row, bool autonomous) {
    const pg::Value status = row[migrate::log_column("status")];
    if (status != "FAILED" && status != "SUCCESS") return;
    const std::string name = row[migrate::log_column("name")].value_or("");
    const std::string id = row[migrate::log_column("id")].value_or("");
    if (status == "FAILED") {
        const pg::Value error = row[migrate::log_column("error_message")];
        Alert a;
        a.kind = "migration_failed";
        a.severity = "CRITICAL";
        a.object = name;
        a.message = fmt::format("migration \"{}\" failed: {}", name, error.value_or("?"));
        a.details = fmt::format(
            R"({{"migration_id": {}, "sqlstate": {}, "error_message": {}, "attempts": {}, "executed_by": {}}})",
            json_quote(id), json_or_null(row[migrate::log_column("sqlstate")]), json_or_null(error),
            row[migrate::log_column("attempts")].value_or("null"),
            json_or_null(row[migrate::log_column("executed_by")]));
        emit(a, autonomous);
    }
    const pg::Value waits = row[migrate::log_column("lock_waits")];
    if (gucs::alert_lock_wait_ms <= 0 || !waits || *waits == "[]") return;
    pg::Value total;
    {
        pg::InternalSql spi;
        total = spi.scalar(
            "SELECT sum((w ->> 'waited_ms')::bigint) FROM jsonb_array_elements($1::jsonb) w",
            {waits}, true);
    }
    if (!total || std::stoll(*total) <= gucs::alert_lock_wait_ms) return;
    Alert a;
    a.kind = "lock_wait";
    a.severity = "WARN";
    a.object = name;
    a.message = fmt::format("migration \"{}\" waited {} ms for locks (alert_lock_wait is {} ms)",
                            name, *total, gucs::alert_lock_wait_ms);
    a.details = fmt::format(R"({{"migration_id": {}, "waited_ms": {}, "lock_waits": {}}})",
                            json_quote(id), *total, *waits);
    emit(a, autonomous);
}

int health_round() {
    // Findings, keyed by fingerprint: check, severity and object (not the message, whose
    // figures change from round to round).
    std::map<std::string, Alert> findings;
    {
        pg::InternalSql spi(false);
        auto r = spi.execute(
            "SELECT check_name, severity, object, message, value::text, remedy"
            " FROM virtuoso.check_database_health() WHERE severity IN ('CRITICAL', 'WARN')");
        for (const auto &row : r.rows) {
            Alert a;
            a.kind = "health";
            a.severity = row[1].value_or("WARN");
            a.object = row[2].value_or("");
            a.message = row[3].value_or("");
            a.details =
                fmt::format(R"({{"check": {}, "value": {}, "remedy": {}}})", json_or_null(row[0]),
                            row[4].value_or("null"), json_or_null(row[5]));
            a.fingerprint =
                fmt::format("health:{}:{}:{}", row[0].value_or(""), a.severity, a.object);
            findings.emplace(*a.fingerprint, a);
        }
    }
    std::vector<pg::Row> open;
    {
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        if (gucs::alert_stalled_after_s > 0) {
            auto r = spi.execute(
                "SELECT 'migration', m.id::text, m.name, m.started_at::text"
                " FROM virtuoso.migration_log m WHERE m.status = 'RUNNING'"
                "  AND m.started_at < now() - make_interval(secs => $1::int)"
                " UNION ALL "
                "SELECT 'maintenance', l.id::text,"
                "  format('%s on %I.%I', l.action, l.schemaname, l.tablename), l.started_at::text"
                " FROM virtuoso.maintenance_log l WHERE l.status = 'RUNNING'"
                "  AND l.started_at < now() - make_interval(secs => $1::int)"
                // Any other long job whose progress has not moved for as long (a migration
                // in one transaction has no RUNNING row: it shows only here), unless one of
                // the rows above already stands for it.
                " UNION ALL "
                "SELECT 'job', p.pid::text || ':' || p.started_at::text, p.job, p.started_at::text"
                " FROM virtuoso.progress_jobs() p"
                " WHERE p.updated_at < now() - make_interval(secs => $1::int)"
                "  AND NOT EXISTS (SELECT FROM virtuoso.migration_log m WHERE m.status ="
                "   'RUNNING' AND m.backend_pid = p.pid)"
                "  AND NOT (p.job = 'maintenance round' AND EXISTS (SELECT FROM"
                "   virtuoso.maintenance_log l WHERE l.status = 'RUNNING'))",
                {std::to_string(gucs::alert_stalled_after_s)}, true);
            for (const auto &row : r.rows) {
                Alert a;
                a.kind = "job_stalled";
                a.severity = "WARN";
                a.object = row[2].value_or("");
                a.message = row[0] == "job"
                                ? fmt::format(
                                      "{} has made no progress for longer than {} s "
                                      "(running since {})",
                                      a.object, gucs::alert_stalled_after_s, row[3].value_or("?"))
                                : fmt::format("{} {} has been RUNNING since {}",
                                              row[0].value_or(""), a.object, row[3].value_or("?"));
                a.details =
                    fmt::format(R"({{"job": {}, "id": {}, "started_at": {}}})",
                                json_or_null(row[0]), json_or_null(row[1]), json_or_null(row[3]));
                a.fingerprint =
                    fmt::format("job_stalled:{}:{}", row[0].value_or(""), row[1].value_or(""));
                findings.emplace(*a.fingerprint, a);
            }
        }
        open = spi.execute(
                      "SELECT id::text, fingerprint, kind, object, message"
                      " FROM virtuoso.alert_log"
                      " WHERE fingerprint IS NOT NULL AND resolved_at IS NULL"
                      "   AND kind IN ('health', 'job_stalled')",  // the round's own findings
                      {}, true)
                   .rows;
    }
    int sent = 0;
    std::set<std::string> already;
    for (const auto &row : open) {
        const std::string fingerprint = row[1].value_or("");
        already.insert(fingerprint);
        if (findings.count(fingerprint)) continue;
        // Cleared: resolved, with an INFO alert that says so.
        {
            migrate::AsExtensionOwner owner;
            pg::InternalSql spi;
            spi.execute(
                "UPDATE virtuoso.alert_log SET resolved_at = clock_timestamp()"
                " WHERE id = $1::bigint",
                {row[0]});
        }
        Alert a;
        a.kind = row[2].value_or("health");
        a.severity = "INFO";
        a.object = row[3].value_or("");
        a.message = "resolved: " + row[4].value_or("");
        a.details = fmt::format(R"({{"resolves": {}}})", row[0].value_or("null"));
        a.resolution = true;
        emit(a, false);
        ++sent;
    }
    for (const auto &[fingerprint, alert] : findings) {
        if (already.count(fingerprint)) continue;  // still unresolved: alerted once already
        emit(alert, false);
        ++sent;
    }
    return sent;
}

long retention_batch(long batch_size) {
    const std::string retention = gucs::log_retention ? gucs::log_retention : "0";
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    if (spi.scalar("SELECT $1::interval = '0'::interval", {retention}, true) == "t") return 0;
    const std::vector<pg::Param> params{retention, std::to_string(batch_size)};
    long deleted = 0;
    // Never a RUNNING run, the latest run of a name, nor the latest SUCCESS run of a name
    // (the one a rollback would use).
    deleted += spi.execute(
                      "DELETE FROM virtuoso.migration_log d WHERE d.id IN ("
                      " SELECT o.id FROM virtuoso.migration_log o"
                      " WHERE o.started_at < now() - $1::interval AND o.status <> 'RUNNING'"
                      "   AND EXISTS (SELECT FROM virtuoso.migration_log n WHERE n.name = o.name"
                      "               AND (n.started_at, n.id) > (o.started_at, o.id))"
                      "   AND NOT (o.status = 'SUCCESS' AND NOT EXISTS ("
                      "       SELECT FROM virtuoso.migration_log n WHERE n.name = o.name"
                      "         AND n.status = 'SUCCESS'"
                      "         AND (n.started_at, n.id) > (o.started_at, o.id)))"
                      " LIMIT $2::int)",
                      params)
                   .processed;
    deleted += spi.execute(
                      "DELETE FROM virtuoso.maintenance_log WHERE id IN ("
                      " SELECT id FROM virtuoso.maintenance_log"
                      " WHERE started_at < now() - $1::interval AND status <> 'RUNNING'"
                      " ORDER BY id LIMIT $2::int)",
                      params)
                   .processed;
    deleted += spi.execute(
                      "DELETE FROM virtuoso.audit_log WHERE id IN ("
                      " SELECT id FROM virtuoso.audit_log"
                      " WHERE changed_at < now() - $1::interval ORDER BY id LIMIT $2::int)",
                      params)
                   .processed;
    deleted += spi.execute(
                      "DELETE FROM virtuoso.alert_log WHERE id IN ("
                      " SELECT id FROM virtuoso.alert_log WHERE at < now() - $1::interval"
                      "   AND (resolved_at IS NOT NULL OR acknowledged_at IS NOT NULL)"
                      " ORDER BY id LIMIT $2::int)",
                      params)
                   .processed;
    return deleted;
}

}  // namespace virtuoso::alerts

using namespace virtuoso;

VIRTUOSO_FUNCTION(virtuoso_acknowledge_alert) {
    if (PG_ARGISNULL(0)) throw pg::UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "id must not be NULL");
    const std::string id = std::to_string(PG_GETARG_INT64(0));
    const std::string who =
        pg::pg_call([] { return std::string(GetUserNameFromId(GetUserId(), false)); });
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    auto r = spi.execute(
        "WITH upd AS (UPDATE virtuoso.alert_log SET acknowledged_at = clock_timestamp(),"
        "   acknowledged_by = $2::name"
        " WHERE id = $1::bigint AND acknowledged_at IS NULL AND resolved_at IS NULL RETURNING 1)"
        " SELECT (SELECT count(*) FROM upd)::text,"
        "  EXISTS (SELECT FROM virtuoso.alert_log WHERE id = $1::bigint)::text",
        {id, who});
    if (r.rows[0][0] == "1") PG_RETURN_BOOL(true);
    if (r.rows[0][1] != "true")
        throw pg::UserError(ERRCODE_UNDEFINED_OBJECT, fmt::format("no alert with id {}", id), "",
                            "See SELECT id, kind, message FROM virtuoso.alerts.");
    PG_RETURN_BOOL(false);
}
