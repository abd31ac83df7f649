// The capture of affected objects (see capture.hpp).
#include "db_virtuoso/migrate/capture.hpp"

#include <algorithm>

#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "commands/event_trigger.h"
#include "executor/executor.h"
#include "parser/parsetree.h"
}

namespace virtuoso::migrate {
namespace {

bool capturing = false;  // a CaptureScope is alive in this backend
bool paused = false;
bool worker_capture = false;  // the setting a runner worker inherits from its caller
std::vector<std::string> *captured = nullptr;
std::vector<Oid> *written_tables = nullptr;  // by the executor hook; described lazily
ExecutorStart_hook_type previous_executor_start = nullptr;

// Runs before every executor start: remember the tables a write goes to.  Cheap when no
// migration runs; must never throw into the executor.
void capture_executor_start(QueryDesc *query_desc, int eflags) {
    if (capturing && !paused && written_tables != nullptr &&
        (query_desc->operation == CMD_INSERT || query_desc->operation == CMD_UPDATE ||
         query_desc->operation == CMD_DELETE)) {
        PlannedStmt *stmt = query_desc->plannedstmt;
        ListCell *lc;
        foreach (lc, stmt->resultRelations) {
            Oid relid = rt_fetch(lfirst_int(lc), stmt->rtable)->relid;
            try {
                if (std::find(written_tables->begin(), written_tables->end(), relid) ==
                    written_tables->end())
                    written_tables->push_back(relid);
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

void add_unique(const std::string &object) {
    if (std::find(captured->begin(), captured->end(), object) == captured->end())
        captured->push_back(object);
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

CaptureScope::CaptureScope() {
    captured = new std::vector<std::string>();
    written_tables = new std::vector<Oid>();
    capturing = true;
    paused = false;
}

CaptureScope::~CaptureScope() {
    capturing = false;
    delete captured;
    delete written_tables;
    captured = nullptr;
    written_tables = nullptr;
}

void CaptureScope::clear() {
    captured->clear();
    written_tables->clear();
}

void CaptureScope::pause(bool p) {
    paused = p;
}

void CaptureScope::add(const std::vector<std::string> &objects) {
    for (const auto &o : objects) add_unique(o);
}

std::vector<std::string> CaptureScope::objects() const {
    std::vector<std::string> all = *captured;
    if (!written_tables->empty()) {
        std::string oids;
        for (Oid relid : *written_tables) oids += (oids.empty() ? "" : ",") + std::to_string(relid);
        pg::InternalSql spi;
        auto rows = spi.execute(
            "SELECT json_build_object('command', 'DML', 'object_type', 'table', "
            "'schema', n.nspname, 'identity', quote_ident(n.nspname) || '.' || "
            "quote_ident(c.relname), "
            "'classid', 'pg_class'::regclass::oid::bigint, 'objid', c.oid::bigint)::text "
            "FROM unnest($1::oid[]) WITH ORDINALITY AS w(relid, ord) "
            "JOIN pg_class c ON c.oid = w.relid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "ORDER BY w.ord",
            {"{" + oids + "}"});
        for (const auto &row : rows.rows)
            if (row[0] && std::find(all.begin(), all.end(), *row[0]) == all.end())
                all.push_back(*row[0]);
    }
    return all;
}

}  // namespace virtuoso::migrate

using namespace virtuoso;

// The event trigger function (ddl_command_end and sql_drop).
VIRTUOSO_FUNCTION(virtuoso_capture_migration_ddl) {
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        throw pg::UserError(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                            "capture_migration_ddl() must be called as an event trigger");
    const bool here = migrate::capturing && !migrate::paused;
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
            migrate::add_unique(*row[0]);
        } else {
            // In a runner worker: INFO always reaches the caller, which collects it.
            const std::string &object = *row[0];
            pg::pg_call([&] {
                ereport(INFO, (errcode(MAKE_SQLSTATE('V', 'X', 'D', 'D', 'L')),
                               errmsg_internal("%s", object.c_str())));
            });
        }
    }
    return PointerGetDatum(nullptr);
}
