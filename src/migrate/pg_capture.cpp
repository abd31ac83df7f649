// The capture of affected objects (see capture.hpp).
#include "db_virtuoso/migrate/capture.hpp"

#include <algorithm>

#include "db_virtuoso/pg/runner.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "commands/event_trigger.h"
#include "executor/executor.h"
#include "parser/parsetree.h"
}

namespace virtuoso::migrate {
namespace {

CaptureScope *innermost = nullptr;  // the scope that records, if any
bool worker_capture = false;        // the setting a runner worker inherits from its caller
ExecutorStart_hook_type previous_executor_start = nullptr;

// Runs before every executor start: remember the tables a write goes to.  Cheap when no
// migration runs; must never throw into the executor.
void capture_executor_start(QueryDesc *query_desc, int eflags) {
    if (innermost != nullptr && innermost->recording() && !pg::InternalSql::active() &&
        (query_desc->operation == CMD_INSERT || query_desc->operation == CMD_UPDATE ||
         query_desc->operation == CMD_DELETE)) {
        PlannedStmt *stmt = query_desc->plannedstmt;
        ListCell *lc;
        foreach (lc, stmt->resultRelations) {
            Oid relid = rt_fetch(lfirst_int(lc), stmt->rtable)->relid;
            try {
                innermost->add_written_table(relid);
            } catch (...) {
                // out of memory while recording: the migration itself must not fail for it
            }
        }
    }
    if (previous_executor_start)
        previous_executor_start(query_desc, eflags);
    else
        standard_ExecutorStart(query_desc, eflags);
}

}  // namespace

void install_capture() {
    DefineCustomBoolVariable(
        "virtuoso.capture_migration_objects",
        "Internal: set by db_virtuoso while a migration runs statements in a runner worker.",
        nullptr, &worker_capture, false, PGC_USERSET,
        GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_NO_RESET_ALL, nullptr, nullptr, nullptr);
    previous_executor_start = ExecutorStart_hook;
    ExecutorStart_hook = capture_executor_start;
}

const char *worker_capture_setting() {
    return "virtuoso.capture_migration_objects";
}

CaptureScope::CaptureScope() : outer_(innermost) {
    innermost = this;
}

CaptureScope::~CaptureScope() {
    innermost = outer_;
    if (outer_ == nullptr) return;
    // What a nested migration touched, its caller touched too.
    try {
        outer_->add(objects_);
        for (unsigned int relid : written_tables_) outer_->add_written_table(relid);
    } catch (...) {
        // out of memory: the outer record is only less complete
    }
}

void CaptureScope::clear() {
    objects_.clear();
    written_tables_.clear();
}

void CaptureScope::pause(bool p) {
    paused_ = p;
}

bool CaptureScope::recording() const {
    return !paused_;
}

void CaptureScope::add(const std::vector<std::string> &objects) {
    for (const auto &o : objects)
        if (std::find(objects_.begin(), objects_.end(), o) == objects_.end()) objects_.push_back(o);
}

void CaptureScope::add_written_table(unsigned int relid) {
    if (std::find(written_tables_.begin(), written_tables_.end(), relid) == written_tables_.end())
        written_tables_.push_back(relid);
}

std::vector<std::string> CaptureScope::objects() const {
    std::vector<std::string> all = objects_;
    if (!written_tables_.empty()) {
        pg::InternalSql spi;
        auto rows = spi.execute(
            "SELECT json_build_object('command', 'DML', 'object_type', 'table', "
            "'schema', n.nspname, 'identity', quote_ident(n.nspname) || '.' || "
            "quote_ident(c.relname), "
            "'classid', 'pg_class'::regclass::oid::bigint, 'objid', c.oid::bigint)::text "
            "FROM unnest($1::oid[]) WITH ORDINALITY AS w(relid, ord) "
            "JOIN pg_class c ON c.oid = w.relid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "ORDER BY w.ord",
            {pg::oid_array(written_tables_)});
        for (const auto &row : rows.rows)
            if (row[0] && std::find(all.begin(), all.end(), *row[0]) == all.end())
                all.push_back(*row[0]);
    }
    return all;
}

}  // namespace virtuoso::migrate

using namespace virtuoso;

// The event trigger function (ddl_command_end and sql_drop).
VIRTUOSO_TRIGGER_FUNCTION(virtuoso_capture_migration_ddl) {
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        throw pg::UserError(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                            "capture_migration_ddl() must be called as an event trigger");
    migrate::CaptureScope *scope = migrate::innermost;
    if (pg::InternalSql::active()) return PointerGetDatum(nullptr);  // the extension's own DDL
    const bool here = scope != nullptr && scope->recording();
    if (!here && !migrate::worker_capture) return PointerGetDatum(nullptr);

    auto *trigger = reinterpret_cast<EventTriggerData *>(fcinfo->context);
    const bool drop = strcmp(trigger->event, "sql_drop") == 0;
    pg::InternalSql spi;
    auto rows = spi.execute(
        drop ? "SELECT json_build_object('command', 'DROP', 'object_type', object_type, "
               "'schema', schema_name, 'identity', object_identity, 'classid', classid::bigint, "
               "'objid', objid::bigint)::text FROM pg_event_trigger_dropped_objects() "
               "WHERE original OR normal"
             : "SELECT json_build_object('command', command_tag, 'object_type', object_type, "
               "'schema', schema_name, 'identity', object_identity, 'classid', classid::bigint, "
               "'objid', objid::bigint)::text FROM pg_event_trigger_ddl_commands()");
    for (const auto &row : rows.rows) {
        if (!row[0]) continue;
        if (here) {
            scope->add({*row[0]});
        } else {
            // In a runner worker: a message of the runner's own type, which user SQL cannot
            // forge (a RAISE INFO never counts as captured data).  Outside one: nothing.
            pg::send_captured_data(*row[0]);
        }
    }
    return PointerGetDatum(nullptr);
}
