// Alerts: rows of virtuoso.alert_log, each also sent as a NOTIFY on virtuoso.alert_channel
// (a JSON payload {id, kind, severity, database, object, message, details, at}).  Consumers
// LISTEN from outside; the server never opens a connection itself.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db_virtuoso/pg/result.hpp"

namespace virtuoso::alerts {

struct Alert {
    std::string kind;      // migration_failed, maintenance_failed, lock_wait, health, job_stalled
    std::string severity;  // CRITICAL, WARN, INFO
    std::string object;
    std::string message;
    std::string details = "{}";              // a JSON object
    std::optional<std::string> fingerprint;  // identifies an unresolved finding (dedupe)
    bool resolution = false;  // the "resolved" notice of a finding (closed when written)
};

// The fixed SQL that writes an alert and sends its NOTIFY, and its parameters: for code that
// runs it through its own log writer (the maintenance backends).  Returns the alert's id.
const char *emit_sql();
std::vector<pg::Param> emit_params(const Alert &alert);

// The alert for a maintenance action that failed on a table: one while unresolved (the
// rounds that fail on it again send nothing), resolved when an action on it succeeds.
Alert maintenance_failed(uint32_t relid, const std::string &table, const std::string &command,
                         const std::string &sqlstate, const std::string &message);

// The fixed SQL that resolves the unresolved alerts of a fingerprint, each with an INFO
// "resolved:" alert and its NOTIFY, and its parameters (for the maintenance backends' log
// writer).  Returns the number of alerts resolved.
const char *resolve_sql();
std::vector<pg::Param> maintenance_resolve_params(uint32_t relid);

// Writes the alert as the extension's owner: in the current transaction, or autonomously
// (committed on its own and delivered even when the caller rolls back).
void emit(const Alert &alert, bool autonomous);

// Hook of the migration log: a run recorded FAILED, or one whose lock waits add up past
// virtuoso.alert_lock_wait, raises an alert (with the autonomy of the log write).
void migration_logged(const pg::Row &row, bool autonomous);

// The scheduler's periodic health round (in a transaction of the caller's): CRITICAL and WARN
// findings of check_database_health and stalled jobs become alerts once while unresolved; an
// unresolved alert whose finding is gone is resolved, with an INFO "resolved" alert.
// Returns the number of alerts sent.
int health_round();

// Retention: deletes one batch of rows older than virtuoso.log_retention from each log (never
// a RUNNING row, the latest run of a migration name, nor an open alert).  Returns the rows
// deleted; the caller repeats (each batch in a transaction of its own) while it is > 0.
long retention_batch(long batch_size);

}  // namespace virtuoso::alerts
