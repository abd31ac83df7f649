// Expand/contract of a column (issue 14): a type change or a rename while writers go on.
//
//   CALL virtuoso.expand_column_change(table, column, new_type, up, down, new_name, batch)
//     adds the new column (nullable: no rewrite) and a C trigger that keeps both columns in
//     agreement for every writer, backfills the existing rows in committed batches of block
//     ranges (the position commits with each batch), checks parity in batches, ends READY.
//   virtuoso.contract_column_change(id): one short locked step, the new column takes over.
//   virtuoso.abort_column_change(id): the new column and trigger go, the table is as before.
//
// Expand is a procedure because it commits per batch; contract and abort are functions (one
// short step each), as in the API.
#include <algorithm>
#include <chrono>
#include <limits>

#include "db_virtuoso/core/json_text.hpp"

#include "db_virtuoso/migrate/executor.hpp"
#include "db_virtuoso/migrate/log.hpp"
#include "db_virtuoso/online/batch.hpp"
#include "db_virtuoso/online/index_build.hpp"
#include "db_virtuoso/pg/advisory_lock.hpp"
#include "db_virtuoso/pg/gucs.hpp"
#include "db_virtuoso/pg/parse.hpp"
#include "db_virtuoso/pg/procedure.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type_d.h"
#include "catalog/index.h"
#include "commands/defrem.h"
#include "access/stratnum.h"
#include "catalog/pg_am_d.h"
#include "parser/parse_coerce.h"
#include "utils/ruleutils.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_type.h"
#include "pgstat.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

namespace virtuoso::expand {
namespace {

using pg::UserError;
constexpr const char *kExpand = "virtuoso.expand_column_change";
constexpr const char *kContract = "virtuoso.contract_column_change";

// A backfill batch that failed on a row (not on a lock): the change is recorded FAILED.
class BatchFailure : public UserError {
  public:
    using UserError::UserError;
};

// ---------------------------------------------------------------------------------------
// The trigger, in plain PostgreSQL style (it runs inside one pg_call).

struct PlanKey {
    Oid trigger;
    int direction;  // 0: up (old -> new), 1: down (new -> old)
};
struct PlanEntry {
    PlanKey key;
    Oid argtype;
    SPIPlanPtr plan;
};
HTAB *plans = nullptr;

// One kept plan per trigger and direction (a new trigger of a resumed change has a new oid).
SPIPlanPtr mapping_plan(Oid trigger, int direction, const char *sql, Oid argtype) {
    if (plans == nullptr) {
        HASHCTL ctl;
        memset(&ctl, 0, sizeof(ctl));
        ctl.keysize = sizeof(PlanKey);
        ctl.entrysize = sizeof(PlanEntry);
        plans = hash_create("virtuoso column change plans", 16, &ctl, HASH_ELEM | HASH_BLOBS);
    }
    PlanKey key;
    memset(&key, 0, sizeof(key));
    key.trigger = trigger;
    key.direction = direction;
    bool found;
    auto *e = static_cast<PlanEntry *>(hash_search(plans, &key, HASH_FIND, &found));
    if (e != nullptr && e->argtype == argtype) return e->plan;
    SPIPlanPtr plan = SPI_prepare(sql, 1, &argtype);
    if (plan == nullptr)
        elog(ERROR, "virtuoso.column_change_trigger: SPI_prepare failed: %s",
             SPI_result_code_string(SPI_result));
    SPI_keepplan(plan);
    e = static_cast<PlanEntry *>(hash_search(plans, &key, HASH_ENTER, &found));
    if (found && e->plan != nullptr) SPI_freeplan(e->plan);
    e->argtype = argtype;
    e->plan = plan;
    return plan;
}

// The mapping of one value, under the same pinned search_path as when it was checked.
Datum map_value(Oid trigger, int direction, const char *sql, Datum in, bool in_null,
                Form_pg_attribute from, Form_pg_attribute to, bool *out_null) {
    int nest = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    SPIPlanPtr plan = mapping_plan(trigger, direction, sql, from->atttypid);
    Datum values[1] = {in};
    char nulls[1] = {in_null ? 'n' : ' '};
    int rc = SPI_execute_plan(plan, values, nulls, true, 2);
    if (rc != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "virtuoso.column_change_trigger: the mapping returned %d rows",
             static_cast<int>(SPI_processed));
    Datum out = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, out_null);
    if (!*out_null) out = SPI_datumTransfer(out, to->attbyval, to->attlen);
    SPI_finish();
    AtEOXact_GUC(true, nest);
    return out;
}

bool value_changed(HeapTuple before, HeapTuple after, int attnum, TupleDesc desc) {
    bool n1, n2;
    Datum v1 = heap_getattr(before, attnum, desc, &n1);
    Datum v2 = heap_getattr(after, attnum, desc, &n2);
    if (n1 || n2) return n1 != n2;
    Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
    return !datumIsEqual(v1, v2, att->attbyval, att->attlen);
}

HeapTuple sync_columns(FunctionCallInfo fcinfo) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("virtuoso.column_change_trigger() must be called as a trigger")));
    auto *trig = reinterpret_cast<TriggerData *>(fcinfo->context);
    TriggerEvent ev = trig->tg_event;
    Trigger *tg = trig->tg_trigger;
    if (!TRIGGER_FIRED_BEFORE(ev) || !TRIGGER_FIRED_FOR_ROW(ev) ||
        !(TRIGGER_FIRED_BY_INSERT(ev) || TRIGGER_FIRED_BY_UPDATE(ev)) || tg->tgnargs != 4)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("virtuoso.column_change_trigger() must fire BEFORE INSERT OR "
                               "UPDATE for each row, with four arguments"),
                        errhint("Use virtuoso.expand_column_change().")));
    Relation rel = trig->tg_relation;
    TupleDesc desc = RelationGetDescr(rel);
    int old_att = SPI_fnumber(desc, tg->tgargs[0]);
    int new_att = SPI_fnumber(desc, tg->tgargs[1]);
    if (old_att <= 0 || new_att <= 0)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("column \"%s\" or \"%s\" of \"%s\" kept in agreement by "
                               "virtuoso.expand_column_change does not exist",
                               tg->tgargs[0], tg->tgargs[1], RelationGetRelationName(rel)),
                        errhint("Abort the change with virtuoso.abort_column_change().")));
    HeapTuple tuple = TRIGGER_FIRED_BY_UPDATE(ev) ? trig->tg_newtuple : trig->tg_trigtuple;
    bool old_null, new_null;
    Datum old_value = heap_getattr(tuple, old_att, desc, &old_null);
    Datum new_value = heap_getattr(tuple, new_att, desc, &new_null);
    // A writer that names only the new column is mapped down; everything else is mapped up
    // (old writers, and rows that set neither, such as the backfill's SET old = old).
    Form_pg_attribute old_form = TupleDescAttr(desc, old_att - 1);
    Form_pg_attribute new_form = TupleDescAttr(desc, new_att - 1);
    bool out_null;
    Datum out;
    int column;
    bool down;
    if (TRIGGER_FIRED_BY_INSERT(ev)) {
        // An INSERT that gives the new column may still get the old one from its default:
        // the new value is the writer's unless it is the up mapping of the old one anyway.
        if (new_null) {
            down = false;
        } else {
            out = map_value(tg->tgoid, 0, tg->tgargs[2], old_value, old_null, old_form, new_form,
                            &out_null);
            if (!out_null && datumIsEqual(out, new_value, new_form->attbyval, new_form->attlen))
                return tuple;
            down = true;
        }
    } else {
        down = value_changed(trig->tg_trigtuple, tuple, new_att, desc) &&
               !value_changed(trig->tg_trigtuple, tuple, old_att, desc);
    }
    if (down) {
        out = map_value(tg->tgoid, 1, tg->tgargs[3], new_value, new_null, new_form, old_form,
                        &out_null);
        column = old_att;
    } else {
        out = map_value(tg->tgoid, 0, tg->tgargs[2], old_value, old_null, old_form, new_form,
                        &out_null);
        column = new_att;
    }
    return heap_modify_tuple_by_cols(tuple, desc, 1, &column, &out, &out_null);
}

// ---------------------------------------------------------------------------------------
// Shared pieces of the three calls.

struct Change {
    std::string id;
    Oid table = InvalidOid;
    std::string table_sql;
    std::string old_column, new_column, final_name, old_type, new_type;
    std::optional<std::string> up, down;
    int batch_size = 10000;
    std::string phase;
    int64_t next_block = 0, rows_backfilled = 0;
    std::optional<int64_t> rows_differing;
    Oid owner = InvalidOid;

    std::string trigger() const { return pg::quote_identifier("virtuoso_" + id + "_sync"); }
    std::string check_name() const { return "virtuoso_" + id + "_not_null"; }
};

const char *kChangeColumns =
    "change_id, table_oid::text, old_column, new_column, final_name, old_type, new_type, "
    "up_expression, down_expression, batch_size::text, phase, next_block::text, "
    "rows_backfilled::text, rows_differing::text, owner_role::text";

Change change_from_row(const std::vector<pg::Value> &r) {
    Change c;
    c.id = *r[0];
    c.table = static_cast<Oid>(std::stoul(*r[1]));
    c.old_column = *r[2];
    c.new_column = *r[3];
    c.final_name = *r[4];
    c.old_type = *r[5];
    c.new_type = *r[6];
    c.up = r[7];
    c.down = r[8];
    c.batch_size = std::stoi(*r[9]);
    c.phase = *r[10];
    c.next_block = std::stoll(*r[11]);
    c.rows_backfilled = std::stoll(*r[12]);
    if (r[13]) c.rows_differing = std::stoll(*r[13]);
    c.owner = static_cast<Oid>(std::stoul(*r[14]));
    return c;
}

std::string schema_of(Oid table) {
    return pg::pg_call([table] {
        const char *name = get_namespace_name(get_rel_namespace(table));
        return std::string(name ? name : "");
    });
}

bool table_exists(Oid table) {
    return pg::pg_call([table] { return get_rel_relkind(table) != '\0'; });
}

// The caller must own the table and have the privileges of the role that started the change.
void check_access(const Change &c, const char *action) {
    bool member = pg::pg_call([&c] { return has_privs_of_role(GetUserId(), c.owner); });
    if (!member)
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        fmt::format("permission denied to {} column change {}", action, c.id),
                        "Only roles with the privileges of the role that started it may.");
    if (table_exists(c.table) &&
        !pg::pg_call([&c] { return pg_class_ownercheck(c.table, GetUserId()); }))
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        fmt::format("must be owner of table {}", c.table_sql));
}

Change load_change(const std::string &id, bool for_update) {
    pg::SpiResult r;
    {
        migrate::AsExtensionOwner owner;
        pg::InternalSql spi;
        r = spi.execute(fmt::format("SELECT {} FROM virtuoso.column_changes_log "
                                    "WHERE change_id = $1{}",
                                    kChangeColumns, for_update ? " FOR UPDATE" : ""),
                        {id});
    }
    if (r.empty())
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        fmt::format("column change \"{}\" does not exist", id), "",
                        "See virtuoso.column_changes.");
    Change c = change_from_row(r.rows[0]);
    c.table_sql = table_exists(c.table) ? pg::qualified_relation_name(c.table) : "(dropped)";
    return c;
}

void record(const Change &c, const std::string &phase, const std::optional<std::string> &message,
            bool finished = false) {
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    spi.execute(
        "UPDATE virtuoso.column_changes_log SET phase = $2, message = $3, next_block = "
        "$4::bigint, rows_backfilled = $5::bigint, rows_differing = $6::bigint, updated_at = "
        "clock_timestamp(), finished_at = CASE WHEN $7::bool THEN clock_timestamp() END "
        "WHERE change_id = $1",
        {c.id, phase, message, std::to_string(c.next_block), std::to_string(c.rows_backfilled),
         c.rows_differing ? pg::Value(std::to_string(*c.rows_differing)) : pg::Value{},
         finished ? "true" : "false"});
}

// What the attempts of locked steps saw: for the log (attempts, lock_waits).
struct LockStats {
    int attempts = 0;
    // The longest successful attempt (lock wait plus time held) of the steps that lock out
    // writers, and of the VALIDATE steps (SHARE UPDATE EXCLUSIVE: writers go on meanwhile).
    long longest_step_ms = 0, longest_validate_ms = 0;
    std::vector<std::string> waits;  // JSON objects, one per lock timeout
};

// One phase of a change in virtuoso.migration_log, named expand:<change>:<phase>.  A phase
// of a procedure writes its RUNNING row at once (autonomously, with this backend's pid and
// start), so that a phase whose session died stays visible (settled FAILED by the next
// expand_column_change of the change, or by the next migration); its end updates the row.
// A phase of a function (abort) writes one row at its end in the caller's transaction, or
// autonomously when it fails.
class PhaseLog {
  public:
    PhaseLog(const Change &c, const std::string &phase, const std::string &what, bool running)
        : running_(running), started_(GetCurrentTimestamp()) {
        std::string user =
            pg::pg_call([] { return std::string(GetUserNameFromId(GetUserId(), false)); });
        row_.set("name", fmt::format("expand:{}:{}", c.id, phase))
            .set("checksum", migrate::sha256_hex(what))
            .set_time("started_at", started_)
            .set("migration_sql", what)
            .set("executed_by", user, "name")
            .set("executed_by_role", std::to_string(GetUserId()), "oid")
            .set("transactional", "false", "boolean")
            .set("affected_objects", fmt::format("[{}]", core::json_quote(c.table_sql)), "jsonb")
            .set("options",
                 fmt::format(R"({{"change_id": {}, "phase": {}, "column": {}, "new_type": {}}})",
                             core::json_quote(c.id), core::json_quote(phase),
                             core::json_quote(c.old_column), core::json_quote(c.new_type)),
                 "jsonb");
        if (running_) {
            migrate::LogRow row = row_;
            row.set("status", "RUNNING")
                .set("backend_pid", std::to_string(MyProcPid), "integer")
                .set_time("backend_start", MyStartTimestamp);
            id_ = *row.insert(true)[migrate::log_column("id")];
        }
    }

    // SUCCESS, with the lock attempts and waits and extra JSON members for final_stats.
    void succeeded(const LockStats &locks, const std::string &stats_members = "") {
        finish("SUCCESS", locks, stats_members, nullptr);
    }

    // Runs body; an error it raises is recorded as the phase's failure and raised again.
    void run(const LockStats &locks, const std::function<void()> &body) {
        try {
            body();
        } catch (const pg::UserError &e) {
            failed(locks, e.sqlstate(), e.what(), e.detail(), e.hint());
            throw;
        } catch (const pg::PgError &e) {
            // Raised by a statement of the step: its subtransaction rolled back.
            failed(locks, e.sqlstate(), e.what());
            throw;
        }
    }

    // FAILED with the error; never throws (the error being raised matters more).
    void failed(const LockStats &locks, int sqlstate, const std::string &message,
                const std::string &detail = "", const std::string &hint = "") {
        Failure f{sqlstate, message, detail, hint};
        try {
            pg::SubTransaction sub;
            finish("FAILED", locks, "", &f);
            sub.commit();
        } catch (const pg::PgError &) {
        } catch (const pg::UserError &) {
        }
    }

  private:
    struct Failure {
        int sqlstate;
        std::string message, detail, hint;
    };

    void finish(const char *status, const LockStats &locks, const std::string &stats_members,
                const Failure *f) {
        const TimestampTz now = GetCurrentTimestamp();
        std::string waits;
        for (auto &w : locks.waits) waits += (waits.empty() ? "" : ", ") + w;
        migrate::LogRow end;
        end.set("status", status)
            .set_time("completed_at", now)
            .set("duration", std::to_string(now - started_) + " microseconds", "interval")
            .set("attempts", std::to_string(locks.attempts), "integer")
            .set("lock_waits", "[" + waits + "]", "jsonb")
            .set("final_stats",
                 fmt::format(R"({{"longest_locked_step_ms": {}, "longest_validate_ms": {}{}{}}})",
                             locks.longest_step_ms, locks.longest_validate_ms,
                             stats_members.empty() ? "" : ", ", stats_members),
                 "jsonb");
        if (f) {
            const char *code = pg::pg_call([f] { return unpack_sql_state(f->sqlstate); });
            end.set("sqlstate", std::string(code))
                .set("error_message", f->message)
                .set("error_detail", f->detail.empty() ? pg::Value{} : pg::Value(f->detail))
                .set("error_hint", f->hint.empty() ? pg::Value{} : pg::Value(f->hint));
        }
        if (running_) {
            end.update(id_, true);
        } else {
            migrate::LogRow full = row_;
            full.merge(end);
            full.insert(f != nullptr);  // a failure survives the caller's rollback
        }
    }

    bool running_;
    TimestampTz started_;
    migrate::LogRow row_;
    std::string id_;
};

// RUNNING phase rows of the change whose session is gone: FAILED (a crash mid-phase).
void settle_phases(const Change &c) {
    pg::pg_call([] { pgstat_clear_snapshot(); });
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi;
    spi.execute(
        "UPDATE virtuoso.migration_log l SET status = 'FAILED', completed_at = clock_timestamp(), "
        "duration = clock_timestamp() - started_at, error_message = format('the session running "
        "this phase (PID %s) ended before it finished', l.backend_pid) WHERE l.name LIKE $1 AND "
        "l.status = 'RUNNING' AND (l.backend_pid = pg_backend_pid() OR NOT EXISTS (SELECT FROM "
        "pg_stat_activity a WHERE a.pid = l.backend_pid AND a.backend_start = l.backend_start))",
        {"expand:" + c.id + ":%"});
}

// Statements in one subtransaction under the short lock_timeout; a lock timeout rolls them
// back (releasing every lock they took), backs off and tries again.  after_attempt runs
// between attempts (a procedure commits there, so that no snapshot is held while sleeping).
void locked_step(const std::function<void()> &body, const std::function<void()> &after_attempt,
                 const std::string &what, LockStats *stats = nullptr, bool validate = false) {
    auto started = std::chrono::steady_clock::now();
    auto ms_since_start = [&started] {
        return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count());
    };
    online::with_lock_retries(
        gucs::lock_timeout_ms, gucs::max_lock_retries,
        [&] {
            started = std::chrono::steady_clock::now();
            if (stats) ++stats->attempts;
            pg::GucScope guc;
            guc.set("client_min_messages", "warning");  // no "skipping" of IF EXISTS
            body();
        },
        [&](int attempt, int attempts, long sleep) {
            after_attempt();
            if (stats)
                stats->waits.push_back(fmt::format(
                    R"({{"attempt": {}, "step": {}, "waited_ms": {}, "lock_timeout_ms": {}, "backoff_ms": {}}})",
                    attempt, core::json_quote(what), ms_since_start(), gucs::lock_timeout_ms,
                    sleep));
            pg::report(NOTICE, fmt::format("lock not available for {} (attempt {} of {}); "
                                           "retrying in {} ms",
                                           what, attempt, attempts, sleep));
        });
    if (stats) {
        long &longest = validate ? stats->longest_validate_ms : stats->longest_step_ms;
        longest = std::max<long>(longest, ms_since_start());
    }
}

// The query that maps one value: the expression sees only the input column (by its name),
// from input ("$1" in the trigger, a typed NULL when checking).
std::string mapping_sql(const std::string &expression, const std::string &input_name,
                        const std::string &out_type, const std::string &input) {
    return fmt::format("SELECT (({}\n))::{} FROM (SELECT {} AS {}) AS virtuoso_input", expression,
                       out_type, input, pg::quote_identifier(input_name));
}

bool has_sublink(Node *node, void *) {
    if (node == nullptr) return false;
    if (IsA(node, SubLink)) return true;
    return raw_expression_tree_walker(
        node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(has_sublink)), nullptr);
}

// Reads the column map[0] as map[1] (Vars of the one relation of a CHECK expression).
bool swap_column(Node *node, void *context) {
    if (node == nullptr) return false;
    if (IsA(node, Var)) {
        auto *var = reinterpret_cast<Var *>(node);
        const int *map = static_cast<const int *>(context);
        // (ruleutils names a Var by its syntactic attnum when it has one)
        if (var->varattno == map[0]) var->varattno = static_cast<AttrNumber>(map[1]);
        if (var->varattnosyn == map[0]) var->varattnosyn = static_cast<AttrNumber>(map[1]);
        return false;
    }
    return expression_tree_walker(
        node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(swap_column)), context);
}

const char *parse_one_expression(const std::string &sql);

// The expression must be one expression without subqueries (checked on the parser's tree,
// so that text such as "1) FROM t WHERE (true" is refused).
void check_one_expression(const std::string &expression, const char *argument) {
    std::string sql = "SELECT (" + expression + "\n)";
    const char *error;
    try {
        error = parse_one_expression(sql);
    } catch (const pg::PgError &e) {
        // The parser's position would point into the CALL statement: name the argument.
        throw UserError(e.sqlstate(), fmt::format("{}: {}", argument, e.what()));
    }
    if (error)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, fmt::format("{} {}", argument, error));
}

const char *parse_one_expression(const std::string &sql) {
    return pg::pg_call([&sql]() -> const char * {
        SelectStmt *s = pg::lone_expression_select(raw_parser(sql.c_str(), RAW_PARSE_DEFAULT));
        if (s == nullptr) return "must be one expression";
        if (has_sublink(linitial_node(ResTarget, s->targetList)->val, nullptr))
            return "must not contain a subquery";
        return nullptr;
    });
}

// Runs a mapping once on NULL, as the trigger will (pinned search_path): an unknown column,
// function or an impossible cast fails here, before anything changes.
void check_mapping(const std::string &sql, const char *argument) {
    try {
        pg::InternalSql spi(false);
        spi.execute(sql, {}, true);
    } catch (const pg::PgError &e) {
        throw UserError(e.sqlstate(), fmt::format("{}: {}", argument, e.what()),
                        e.data() && e.data()->detail ? e.data()->detail : "",
                        "The expression may name only its input column; qualify functions "
                        "outside pg_catalog with their schema.");
    }
}

// The longest prefix of name within max_bytes that ends on a character boundary.
std::string clip_name(const std::string &name, int max_bytes) {
    int n = pg::pg_call([&name, max_bytes] {
        return pg_mbcliplen(name.c_str(), static_cast<int>(name.size()), max_bytes);
    });
    return name.substr(0, static_cast<size_t>(n));
}

struct ColumnFacts {
    int attnum = 0;
    std::string type_sql;
    bool not_null = false;
    char identity = '\0', generated = '\0';
};

std::optional<ColumnFacts> column_facts(Oid table, const std::string &column) {
    return pg::pg_call([table, &column]() -> std::optional<ColumnFacts> {
        HeapTuple tup = SearchSysCacheAttName(table, column.c_str());
        if (!HeapTupleIsValid(tup)) return std::nullopt;
        auto *att = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tup));
        ColumnFacts f;
        f.attnum = att->attnum;
        f.not_null = att->attnotnull;
        f.identity = att->attidentity;
        f.generated = att->attgenerated;
        f.type_sql = format_type_extended(att->atttypid, att->atttypmod,
                                          FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
        ReleaseSysCache(tup);
        return f;
    });
}

std::string resolve_type(const std::string &text) {
    try {
        return pg::pg_call([&text] {
            Oid type;
            int32 typmod;
            parseTypeString(text.c_str(), &type, &typmod, false);
            if (get_typtype(type) == TYPTYPE_PSEUDO)
                ereport(ERROR, (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
                                errmsg("%s is a pseudo-type", format_type_be(type))));
            return std::string(format_type_extended(
                type, typmod, FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
        });
    } catch (const pg::PgError &e) {
        throw UserError(e.sqlstate(), fmt::format("new_type: {}", e.what()));
    }
}

// Indexes of the column ($1 table, $2 attnum) whose shape expand can rebuild for the new
// column: key and INCLUDE columns only (no expression, predicate, sort option or non-default
// operator class).
#define VIRTUOSO_INDEX_SHAPE                                                              \
    "SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = $1::oid "                     \
    "AND $2::int2 = ANY (i.indkey::int2[]) AND i.indexprs IS NULL AND i.indpred IS NULL " \
    "AND NOT EXISTS (SELECT 1 FROM unnest(i.indoption::int2[]) o WHERE o <> 0) "          \
    "AND NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) oc JOIN pg_opclass opc "     \
    "                ON opc.oid = oc WHERE NOT opc.opcdefault) "

// Plain ones (backing no constraint of the table), copied under the original's name.
constexpr const char *kCopyableIndexes = VIRTUOSO_INDEX_SHAPE
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
    "                AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))";

// Those of a primary key or unique constraint: the copy (a unique index) becomes the
// constraint at contract (ADD CONSTRAINT ... USING INDEX).
constexpr const char *kConstraintIndexes = VIRTUOSO_INDEX_SHAPE
    "AND EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
    "            AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u'))";
#undef VIRTUOSO_INDEX_SHAPE

struct CopyableIndex {
    std::string oid, name, definition;
    std::string constraint, contype, deferral;  // constraint indexes only
    std::string copy_name(const std::string &change_id) const {
        return "virtuoso_" + change_id + "_" + oid;
    }
};

// Those indexes (plain ones, or those of constraints), each with the definition of its copy
// on new_column (named virtuoso_<change>_<oid of the original>).
std::vector<CopyableIndex> copyable_indexes(Oid table, int attnum, const std::string &new_column,
                                            const std::string &change_id,
                                            const std::string &table_sql,
                                            bool of_constraints = false) {
    pg::InternalSql spi(false);
    auto r = spi.execute(
        fmt::format(
            "SELECT c.oid::text, c.relname, am.amname, i.indisunique::text, "
            "(SELECT string_agg(CASE WHEN k.attnum = $2::int2 THEN quote_ident($3) ELSE "
            "quote_ident(a.attname) END, ', ' ORDER BY k.n) FROM unnest(i.indkey::int2[]) WITH "
            "ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
            "a.attnum = k.attnum WHERE k.n <= i.indnkeyatts), "
            "(SELECT string_agg(CASE WHEN k.attnum = $2::int2 THEN quote_ident($3) ELSE "
            "quote_ident(a.attname) END, ', ' ORDER BY k.n) FROM unnest(i.indkey::int2[]) WITH "
            "ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
            "a.attnum = k.attnum WHERE k.n > i.indnkeyatts), "
            "i.indnullsnotdistinct::text, k.conname, k.contype::text, "
            "CASE WHEN k.condeferred THEN ' DEFERRABLE INITIALLY DEFERRED' WHEN k.condeferrable "
            "THEN ' DEFERRABLE' ELSE '' END "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = "
            "c.relam LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = "
            "i.indrelid AND k.contype IN ('p', 'u') "
            "WHERE i.indexrelid IN ({}) ORDER BY c.oid",
            of_constraints ? kConstraintIndexes : kCopyableIndexes),
        {std::to_string(table), std::to_string(attnum), new_column});
    std::vector<CopyableIndex> out;
    for (auto &row : r.rows) {
        CopyableIndex ix;
        ix.oid = *row[0];
        ix.name = *row[1];
        ix.definition = fmt::format("CREATE {}INDEX IF NOT EXISTS {} ON {} USING {} ({}){}{}",
                                    *row[3] == "true" ? "UNIQUE " : "",
                                    pg::quote_identifier(ix.copy_name(change_id)), table_sql,
                                    pg::quote_identifier(*row[2]), *row[4],
                                    row[5] ? fmt::format(" INCLUDE ({})", *row[5]) : "",
                                    *row[6] == "true" ? " NULLS NOT DISTINCT" : "");
        ix.constraint = row[7].value_or("");
        ix.contype = row[8].value_or("");
        ix.deferral = row[9].value_or("");
        out.push_back(ix);
    }
    return out;
}

// Every index copy of a change: plain ones, then those of constraints.
std::vector<CopyableIndex> all_index_copies(Oid table, int attnum, const std::string &new_column,
                                            const std::string &change_id,
                                            const std::string &table_sql) {
    auto all = copyable_indexes(table, attnum, new_column, change_id, table_sql, false);
    for (auto &ix : copyable_indexes(table, attnum, new_column, change_id, table_sql, true))
        all.push_back(ix);
    return all;
}

// Foreign keys of other tables (or of this one, on other columns) that reference the column
// ($1 table, $2 attnum): contract drops them, moves the key, and adds them again against the
// new column (NOT VALID, then validated after its commit).
constexpr const char *kReferencingKeys =
    "SELECT k.oid FROM pg_constraint k WHERE k.contype = 'f' AND k.confrelid = $1::oid "
    "AND $2::int2 = ANY (k.confkey) AND k.confdelsetcols IS NULL "
    "AND NOT (k.conrelid = $1::oid AND $2::int2 = ANY (k.conkey))";

// CHECK constraints of the table on the column: copied for the new column.
constexpr const char *kChecks =
    "SELECT k.oid FROM pg_constraint k WHERE k.contype = 'c' AND k.conrelid = $1::oid "
    "AND $2::int2 = ANY (k.conkey) AND k.conname !~ '^virtuoso_cc[0-9]+_'";

struct CheckCopy {
    Oid oid = InvalidOid;
    std::string name, copy;  // copy: virtuoso_<change>_c<oid>, renamed to name by contract
    bool valid = true, no_inherit = false;
};

std::vector<CheckCopy> checks_of(Oid table, int attnum, const std::string &change_id) {
    pg::InternalSql spi(false);
    auto r = spi.execute(fmt::format("SELECT k.oid::text, k.conname, k.convalidated::text, "
                                     "k.connoinherit::text FROM pg_constraint k WHERE k.oid IN "
                                     "({}) ORDER BY k.oid",
                                     kChecks),
                         {std::to_string(table), std::to_string(attnum)});
    std::vector<CheckCopy> out;
    for (auto &row : r.rows) {
        CheckCopy k;
        k.oid = static_cast<Oid>(std::stoul(*row[0]));
        k.name = *row[1];
        k.copy = "virtuoso_" + change_id + "_c" + *row[0];
        k.valid = *row[2] == "true";
        k.no_inherit = *row[3] == "true";
        out.push_back(k);
    }
    return out;
}

// A foreign key that references the column, as contract adds it again.
struct ForeignKey {
    std::string name, child, definition;  // definition: ADD CONSTRAINT ... NOT VALID
    bool valid = true;
};

// The foreign keys referencing the column, each with the clause that adds it again against
// the column named final_name (the new one, once renamed).
std::vector<ForeignKey> referencing_keys(Oid table, int attnum, const std::string &final_name,
                                         const std::string &table_sql) {
    pg::InternalSql spi(false);
    auto r = spi.execute(
        fmt::format(
            "SELECT k.conname, k.conrelid::text, "
            "(SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY u.n) FROM unnest(k.conkey) "
            "WITH ORDINALITY u(attnum, n) JOIN pg_attribute a ON a.attrelid = k.conrelid AND "
            "a.attnum = u.attnum), "
            "(SELECT string_agg(CASE WHEN u.attnum = $2::int2 THEN quote_ident($3) ELSE "
            "quote_ident(a.attname) END, ', ' ORDER BY u.n) FROM unnest(k.confkey) WITH "
            "ORDINALITY u(attnum, n) JOIN pg_attribute a ON a.attrelid = k.confrelid AND "
            "a.attnum = u.attnum), "
            "CASE k.confmatchtype WHEN 'f' THEN ' MATCH FULL' ELSE '' END || "
            "' ON UPDATE ' || CASE k.confupdtype WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' "
            "WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END || "
            "' ON DELETE ' || CASE k.confdeltype WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' "
            "WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END || "
            "CASE WHEN k.condeferred THEN ' DEFERRABLE INITIALLY DEFERRED' WHEN k.condeferrable "
            "THEN ' DEFERRABLE' ELSE '' END, k.convalidated::text "
            "FROM pg_constraint k WHERE k.oid IN ({}) ORDER BY k.oid",
            kReferencingKeys),
        {std::to_string(table), std::to_string(attnum), final_name});
    std::vector<ForeignKey> out;
    for (auto &row : r.rows) {
        ForeignKey k;
        k.name = *row[0];
        k.child = pg::qualified_relation_name(static_cast<Oid>(std::stoul(*row[1])));
        k.definition =
            fmt::format("ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){} NOT VALID",
                        pg::quote_identifier(k.name), *row[2], table_sql, *row[3], *row[4]);
        k.valid = *row[5] == "true";
        out.push_back(k);
    }
    return out;
}

// Dependents that expand carries over (their rows in pg_depend on the column).
const std::string &carried_dependents() {
    static const std::string sql =
        std::string("AND NOT (d.classid = 'pg_class'::regclass AND d.objid IN (") +
        kCopyableIndexes +
        ")) "
        "AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN ("
        "  SELECT k.oid FROM pg_constraint k WHERE k.conrelid = $1::oid AND k.contype IN "
        "  ('p', 'u') AND k.conindid IN (" +
        kConstraintIndexes + "))) AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN (" +
        kReferencingKeys + ")) AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN (" +
        kChecks + ")) ";
    return sql;
}

// The type of a formatted type name (resolve_type's output).
Oid type_oid(const std::string &type_sql) {
    return pg::pg_call([&type_sql] {
        Oid type;
        int32 typmod;
        parseTypeString(type_sql.c_str(), &type, &typmod, false);
        return type;
    });
}

// A CHECK constraint's expression with the column attnum `from` read as `to`, deparsed
// under the pinned search_path (names outside pg_catalog qualified).
std::string check_expression(Oid constraint, Oid table, int from, int to) {
    pg::GucScope guc;
    guc.set("search_path", "pg_catalog, pg_temp");
    return pg::pg_call([constraint, table, from, to] {
        HeapTuple tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(constraint));
        if (!HeapTupleIsValid(tup))
            elog(ERROR, "cache lookup failed for constraint %u", constraint);
        bool isnull;
        Datum bin = SysCacheGetAttr(CONSTROID, tup, Anum_pg_constraint_conbin, &isnull);
        if (isnull) elog(ERROR, "constraint %u has no expression", constraint);
        Node *expr = static_cast<Node *>(stringToNode(TextDatumGetCString(bin)));
        ReleaseSysCache(tup);
        int map[2] = {from, to};
        (void)swap_column(expr, map);
        char *text =
            deparse_expression(expr, deparse_context_for(get_rel_name(table), table), false, false);
        return std::string(text);
    });
}

// What expand cannot carry over to the new column, refused before any change (0A000 naming
// the objects).  With new_type: also what the new type cannot carry (an index whose access
// method has no default operator class for it, a foreign key PostgreSQL would refuse, a
// CHECK that does not type-check).
void refuse_dependents(Oid table, const ColumnFacts &f, const std::string &column,
                       const std::string &new_type = "") {
    if (f.generated)
        throw UserError(ERRCODE_FEATURE_NOT_SUPPORTED,
                        fmt::format("column \"{}\" is a generated column", column), "",
                        "Nothing was changed. Change it with ALTER TABLE.");
    // An identity column's identity moves to the new column at contract: it must be one of
    // the types an identity can have.
    if (f.identity && !new_type.empty()) {
        Oid type = type_oid(new_type);
        if (type != INT2OID && type != INT4OID && type != INT8OID)
            throw UserError(ERRCODE_FEATURE_NOT_SUPPORTED,
                            fmt::format("column \"{}\" is an identity column and cannot become {}",
                                        column, new_type),
                            "Contract moves the identity to the new column, and an identity "
                            "column is smallint, integer or bigint.",
                            "Nothing was changed. Choose one of those types.");
    }
    pg::InternalSql spi;
    const std::vector<pg::Value> params{std::to_string(table), std::to_string(f.attnum)};
    auto r = spi.execute(
        "SELECT pg_describe_object(d.classid, d.objid, d.objsubid) FROM pg_depend d "
        "WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::oid "
        "AND d.refobjsubid = $2::int AND d.deptype IN ('n', 'a') "
        "AND NOT (d.classid = 'pg_attrdef'::regclass "
        "         AND (SELECT adnum FROM pg_attrdef WHERE oid = d.objid) = $2::int2) "
        "AND NOT (d.classid = 'pg_class'::regclass AND d.deptype = 'a' "
        "         AND (SELECT relkind FROM pg_class WHERE oid = d.objid) = 'S') " +
            carried_dependents() + "ORDER BY 1",
        params);
    std::vector<std::string> refused;
    for (auto &row : r.rows) refused.push_back(row[0].value_or("?"));
    if (!new_type.empty()) {
        Oid type = type_oid(new_type);
        // Each index copy needs a default operator class of the new type.
        auto ams = spi.execute(std::string("SELECT c.relname, c.relam::text FROM pg_class c "
                                           "WHERE c.oid IN (") +
                                   kCopyableIndexes + ") OR c.oid IN (" + kConstraintIndexes +
                                   ") ORDER BY 1",
                               params);
        for (auto &row : ams.rows) {
            Oid am = static_cast<Oid>(std::stoul(*row[1]));
            if (!pg::pg_call([type, am] { return OidIsValid(GetDefaultOpClass(type, am)); }))
                refused.push_back(fmt::format("index {} (no default operator class for {})",
                                              pg::quote_identifier(*row[0]), new_type));
        }
        // Each referencing foreign key must be possible against the new type: the equality
        // of the new key's operator family, or an implicit cast (as ADD FOREIGN KEY checks).
        auto keys = spi.execute(
            std::string("SELECT k.conname, k.conrelid::regclass::text, a.atttypid::text FROM "
                        "pg_constraint k, unnest(k.conkey, k.confkey) u(fk, pk), pg_attribute a "
                        "WHERE k.oid IN (") +
                kReferencingKeys +
                ") AND u.pk = $2::int2 AND a.attrelid = k.conrelid AND a.attnum = u.fk "
                "ORDER BY 1",
            params);
        for (auto &row : keys.rows) {
            Oid fk_type = static_cast<Oid>(std::stoul(*row[2]));
            bool ok = pg::pg_call([type, fk_type] {
                Oid opclass = GetDefaultOpClass(type, BTREE_AM_OID);
                if (!OidIsValid(opclass)) return false;
                Oid family = get_opclass_family(opclass);
                Oid input = get_opclass_input_type(opclass);
                return OidIsValid(
                           get_opfamily_member(family, input, fk_type, BTEqualStrategyNumber)) ||
                       can_coerce_type(1, &fk_type, &input, COERCION_IMPLICIT);
            });
            if (!ok)
                refused.push_back(
                    fmt::format("constraint {} on table {} (its column cannot "
                                "reference {})",
                                pg::quote_identifier(*row[0]), *row[1], new_type));
        }
        // Contract drops and adds those foreign keys: the caller must own their tables.
        auto children = spi.execute(
            std::string("SELECT DISTINCT k.conrelid::text, k.conrelid::regclass::text FROM "
                        "pg_constraint k WHERE k.oid IN (") +
                kReferencingKeys + ") ORDER BY 2",
            params);
        for (auto &row : children.rows) {
            Oid child = static_cast<Oid>(std::stoul(*row[0]));
            if (!pg::pg_call([child] { return pg_class_ownercheck(child, GetUserId()); }))
                throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                                fmt::format("must be owner of table {}", *row[1]),
                                fmt::format("Its foreign keys reference column \"{}\"; contract "
                                            "drops and adds them again.",
                                            column),
                                "Nothing was changed.");
        }
        // Each CHECK must type-check with the column of the new type.
        auto checks = spi.execute(
            fmt::format("SELECT k.oid::text, k.conname, (SELECT string_agg(CASE WHEN a.attnum = "
                        "$2::int2 THEN 'NULL::' || $3 || ' AS ' ELSE '' END || "
                        "quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a "
                        "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped) "
                        "FROM pg_constraint k WHERE k.oid IN ({}) ORDER BY 2",
                        kChecks),
            {params[0], params[1], new_type});
        for (auto &row : checks.rows) {
            std::string expression =
                check_expression(static_cast<Oid>(std::stoul(*row[0])), table, f.attnum, f.attnum);
            try {
                pg::SubTransaction sub;
                {
                    pg::InternalSql probe(false);
                    probe.execute(
                        fmt::format("SELECT ({})::pg_catalog.bool FROM (SELECT {} FROM "
                                    "{} WHERE false) AS virtuoso_input",
                                    expression, *row[2], pg::qualified_relation_name(table)),
                        {}, true);
                }
                sub.commit();
            } catch (const pg::PgError &e) {
                if (pg::ends_the_call(e.sqlstate())) throw;  // not the constraint's failure
                refused.push_back(
                    fmt::format("constraint {} ({})", pg::quote_identifier(*row[1]), e.what()));
            }
        }
    }
    if (refused.empty()) return;
    std::string objects;
    for (auto &o : refused) objects += (objects.empty() ? "" : ", ") + o;
    throw UserError(ERRCODE_FEATURE_NOT_SUPPORTED,
                    fmt::format("column \"{}\" is used by {} object(s) that "
                                "expand_column_change cannot rebuild for the new column",
                                column, refused.size()),
                    "Used by: " + objects + ".",
                    "Nothing was changed. Drop or change those objects first, or use ALTER "
                    "TABLE ... ALTER COLUMN ... TYPE.");
}

// Contract of an identity column (under the table's ACCESS EXCLUSIVE lock, the new column
// NOT NULL already): the identity moves to the new column, ALWAYS or BY DEFAULT as it was,
// with a sequence of the same name and options (bounds only where they were not the old
// type's defaults, so that a wider type gets its wider range) at the same position, so the
// next insert gets the next id.  Returns what it did, for the result.
std::string move_identity(pg::Spi &spi, const Change &c, char identity, int old_attnum,
                          const std::string &old_q, const std::string &new_q) {
    auto r = spi.execute(
        "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(s.relname), "
        "q.seqstart::text, q.seqincrement::text, q.seqmin::text, q.seqmax::text, "
        "q.seqcache::text, q.seqcycle::text, q.seqtypid::oid::text "
        "FROM pg_depend d JOIN pg_sequence q ON q.seqrelid = d.objid "
        "JOIN pg_class s ON s.oid = d.objid JOIN pg_namespace n ON n.oid = s.relnamespace "
        "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
        "AND d.refobjid = $1::oid AND d.refobjsubid = $2::int AND d.deptype = 'i'",
        {std::to_string(c.table), std::to_string(old_attnum)});
    if (r.empty())
        throw UserError(
            ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            fmt::format("the identity sequence of column {} of {} is missing", old_q, c.table_sql));
    const auto &row = r.rows[0];
    const std::string seq = *row[0];
    const int64_t increment = std::stoll(*row[2]);
    const Oid seq_type = static_cast<Oid>(std::stoul(*row[7]));
    int64_t type_min = std::numeric_limits<int64_t>::min();
    int64_t type_max = std::numeric_limits<int64_t>::max();
    if (seq_type == INT2OID) {
        type_min = std::numeric_limits<int16>::min();
        type_max = std::numeric_limits<int16>::max();
    } else if (seq_type == INT4OID) {
        type_min = std::numeric_limits<int32>::min();
        type_max = std::numeric_limits<int32>::max();
    }
    std::string options =
        fmt::format("SEQUENCE NAME {} START WITH {} INCREMENT BY {}", seq, *row[1], *row[2]);
    if (std::stoll(*row[3]) != (increment > 0 ? 1 : type_min)) options += " MINVALUE " + *row[3];
    if (std::stoll(*row[4]) != (increment > 0 ? type_max : -1)) options += " MAXVALUE " + *row[4];
    options += fmt::format(" CACHE {}{}", *row[5], *row[6] == "true" ? " CYCLE" : " NO CYCLE");
    auto position =
        spi.execute(fmt::format("SELECT last_value::text, is_called::text FROM {}", seq));
    const std::string last_value = *position.rows[0][0];
    const std::string is_called = *position.rows[0][1];
    spi.execute(fmt::format("ALTER TABLE {} ALTER COLUMN {} DROP IDENTITY", c.table_sql, old_q));
    spi.execute(fmt::format("ALTER TABLE {} ALTER COLUMN {} ADD GENERATED {} AS IDENTITY ({})",
                            c.table_sql, new_q, identity == 'a' ? "ALWAYS" : "BY DEFAULT",
                            options));
    spi.execute("SELECT pg_catalog.setval($1::regclass, $2::bigint, $3::boolean)::text",
                {seq, last_value, is_called});
    return fmt::format("identity (GENERATED {}) moved, sequence {} at {}",
                       identity == 'a' ? "ALWAYS" : "BY DEFAULT", seq, last_value);
}

// One session at a time works on a change: expand holds a session-level advisory lock on it
// across its commits, contract and abort a transaction-level one.  Another session gets 55006
// at once instead of racing (two backfills, or a contract under a running expand).
constexpr int32 kLockSpace = 0x76636363;  // "vccc"

// The number of an id "cc<n>"; anything else names no change.
int32 change_number(const std::string &id) {
    bool ok = id.size() > 2 && id.size() <= 11 && id.compare(0, 2, "cc") == 0 &&
              id.find_first_not_of("0123456789", 2) == std::string::npos;
    long n = ok ? std::stol(id.substr(2)) : -1;
    if (n < 1 || n > std::numeric_limits<int32>::max())
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                        fmt::format("column change \"{}\" does not exist", id), "",
                        "See virtuoso.column_changes.");
    return static_cast<int32>(n);
}

void refuse_busy(const std::string &id) {
    throw UserError(ERRCODE_OBJECT_IN_USE,
                    fmt::format("column change {} is being worked on by another session", id), "",
                    "Wait for that call to end, or cancel it.");
}

class SessionChangeLock {
  public:
    explicit SessionChangeLock(const std::string &id) : lock_(kLockSpace, change_number(id)) {
        if (!lock_.held()) refuse_busy(id);
    }

  private:
    pg::SessionAdvisoryLock lock_;
};

void lock_change_for_transaction(const std::string &id) {
    if (!pg::try_transaction_advisory_lock(kLockSpace, change_number(id))) refuse_busy(id);
}

// After a failed backfill batch: the first row of its block range whose up mapping fails,
// named by primary key (when there is one) and ctid, each row tried in a subtransaction.
std::string first_failing_row(const Change &c, int64_t from_block, int64_t to_block) {
    pg::InternalSql spi(false);
    auto key = spi.scalar(
        "SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) FROM pg_index i, "
        "unnest(i.indkey) WITH ORDINALITY k(attnum, n), pg_attribute a WHERE i.indrelid = "
        "$1::oid AND i.indisprimary AND a.attrelid = i.indrelid AND a.attnum = k.attnum",
        {std::to_string(c.table)});
    const std::string old_q = pg::quote_identifier(c.old_column);
    auto rows = spi.execute(
        fmt::format("SELECT ctid::text, {}, {}::text FROM {} WHERE {} AND {} IS NULL ORDER BY "
                    "ctid",
                    key ? fmt::format("ROW({})::text", *key) : "NULL::text", old_q, c.table_sql,
                    online::block_range_condition(), pg::quote_identifier(c.new_column)),
        {std::to_string(from_block), std::to_string(to_block)}, true);
    std::string probe =
        mapping_sql(c.up.value_or(old_q), c.old_column, c.new_type, "$1::" + c.old_type);
    for (const auto &row : rows.rows) {
        try {
            pg::SubTransaction sub;
            {
                pg::InternalSql one(false);
                one.execute(probe, {row[2]}, true);
            }
            sub.commit();
        } catch (const pg::PgError &e) {
            if (pg::ends_the_call(e.sqlstate())) throw;  // not this row's failure
            return key ? fmt::format("First failing row: ({})={}, ctid {}.", *key,
                                     row[1].value_or("NULL"), *row[0])
                       : fmt::format("First failing row: ctid {}.", *row[0]);
        }
    }
    return "";
}

// The marker of a contracted change whose foreign keys are still to be validated (in its
// message, written in contract's transaction): a contract called again resumes there.
constexpr const char *kPendingKeys = "foreign keys to validate: ";

std::string key_label(const ForeignKey &k) {
    return pg::quote_identifier(k.name) + " of " + k.child;
}

// After contract's commit, the foreign keys added NOT VALID that were valid before are
// validated one by one, each in its own transaction: each holds SHARE UPDATE EXCLUSIVE on
// its table (writers go on) while it scans.  Returns the text for the result.
std::string validate_keys(Change &c, const std::vector<ForeignKey> &keys,
                          const std::optional<std::string> &kept_note,
                          const std::function<void()> &commit) {
    std::string result, failed;
    if (std::none_of(keys.begin(), keys.end(), [](const ForeignKey &k) { return k.valid; }))
        return result;
    LockStats locks;
    PhaseLog log(c, "validate",
                 fmt::format("validate the foreign keys referencing {}.{}", c.table_sql,
                             pg::quote_identifier(c.final_name)),
                 true);
    for (auto &k : keys) {
        if (!k.valid) continue;
        try {
            locked_step(
                [&] {
                    pg::InternalSql spi(false);
                    spi.execute(fmt::format("ALTER TABLE {} VALIDATE CONSTRAINT {}", k.child,
                                            pg::quote_identifier(k.name)));
                },
                commit, "validating " + k.name, &locks, true);
            commit();
            result += "; foreign key " + key_label(k) + " validated";
        } catch (const pg::PgError &e) {
            // A cancel may come from the backoff sleep, outside any subtransaction: nothing
            // more may run, the next call settles the phase and validates the keys left.
            if (pg::ends_the_call(e.sqlstate())) throw;
            failed += (failed.empty() ? "" : ", ") + key_label(k) + " (" + e.what() + ")";
        }
    }
    if (failed.empty()) {
        record(c, "CONTRACTED", kept_note, true);
        commit();
        log.succeeded(locks);
    } else {
        log.failed(locks, ERRCODE_LOCK_NOT_AVAILABLE, "foreign keys left NOT VALID: " + failed, "",
                   "Call virtuoso.contract_column_change again to validate them.");
        result += "; warning: foreign keys left NOT VALID: " + failed;
        pg::report(WARNING, "column change " + c.id + ": foreign keys left NOT VALID: " + failed +
                                "; call virtuoso.contract_column_change again to validate them");
    }
    commit();
    return result;
}

}  // namespace
}  // namespace virtuoso::expand

using namespace virtuoso;

VIRTUOSO_TRIGGER_FUNCTION(virtuoso_column_change_trigger) {
    return pg::pg_call([fcinfo] { return PointerGetDatum(expand::sync_columns(fcinfo)); });
}

VIRTUOSO_FUNCTION(virtuoso_expand_column_change) {
    using expand::Change;
    if (PG_ARGISNULL(0))
        throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE, "target_table must not be NULL");
    Oid table = PG_GETARG_OID(0);
    auto column = pg::text_arg(fcinfo, 1);
    auto new_type = pg::text_arg(fcinfo, 2);
    auto up = pg::text_arg(fcinfo, 3);
    auto down = pg::text_arg(fcinfo, 4);
    auto new_name = pg::text_arg(fcinfo, 5);
    int batch_size = PG_ARGISNULL(6) ? 10000 : PG_GETARG_INT32(6);
    if (!column || column->empty() || column->size() >= NAMEDATALEN)
        throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                            "column_name must be a name of 1 to 63 bytes");
    if (new_name && (new_name->empty() || new_name->size() >= NAMEDATALEN))
        throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                            "new_column_name must be a name of 1 to 63 bytes, or NULL");
    if (!new_type || new_type->find_first_not_of(" \t\r\n") == std::string::npos)
        throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE, "new_type must not be NULL or empty");
    online::check_batch_size(batch_size);
    for (auto *e : {&up, &down})
        if (*e && (*e)->find_first_not_of(" \t\r\n") == std::string::npos)
            throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                                "up_expression and down_expression must be expressions or NULL");
    pg::commit_caller(fcinfo, expand::kExpand);

    char kind = pg::pg_call([table] { return get_rel_relkind(table); });
    if (kind == '\0')
        throw pg::UserError(ERRCODE_UNDEFINED_TABLE,
                            fmt::format("relation with OID {} does not exist", table));
    const std::string table_sql = pg::qualified_relation_name(table);
    if (kind != RELKIND_RELATION)
        throw pg::UserError(ERRCODE_FEATURE_NOT_SUPPORTED,
                            fmt::format("{} is not a plain table", table_sql),
                            "Partitioned tables, views and other relations are not supported.");
    {
        // ADD COLUMN and the UPDATEs would reach inheritance children the trigger does not.
        pg::InternalSql spi;
        if (spi.scalar("SELECT 1 FROM pg_inherits WHERE inhrelid = $1::oid OR inhparent = $1::oid "
                       "LIMIT 1",
                       {std::to_string(table)}))
            throw pg::UserError(ERRCODE_FEATURE_NOT_SUPPORTED,
                                fmt::format("{} has inheritance parents or children", table_sql),
                                "", "Change the column with ALTER TABLE.");
    }
    if (!pg::pg_call([table] { return pg_class_ownercheck(table, GetUserId()); }))
        throw pg::UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                            fmt::format("must be owner of table {}", table_sql));

    // A change of this column that has not ended is resumed.
    Change c;
    {
        pg::SpiResult r;
        {
            migrate::AsExtensionOwner owner;
            pg::InternalSql spi;
            r = spi.execute(fmt::format("SELECT {} FROM virtuoso.column_changes_log WHERE "
                                        "table_oid = $1::oid AND old_column = $2 AND phase IN "
                                        "('EXPANDING', 'BACKFILLING', 'READY', 'FAILED')",
                                        expand::kChangeColumns),
                            {std::to_string(table), *column});
        }
        if (!r.empty()) {
            c = expand::change_from_row(r.rows[0]);
            c.table_sql = table_sql;
            expand::check_access(c, "resume");
            pg::report(NOTICE, fmt::format("resuming column change {} ({})", c.id, c.phase));
        }
    }
    if (c.id.empty()) {
        auto facts = expand::column_facts(table, *column);
        if (!facts)
            throw pg::UserError(
                ERRCODE_UNDEFINED_COLUMN,
                fmt::format("column \"{}\" of {} does not exist", *column, table_sql));
        c.table = table;
        c.table_sql = table_sql;
        c.old_column = *column;
        c.old_type = facts->type_sql;
        c.new_type = expand::resolve_type(*new_type);
        expand::refuse_dependents(table, *facts, *column, c.new_type);
        c.final_name = new_name ? *new_name : *column;
        if (new_name && *new_name == *column)
            throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                                "new_column_name must differ from column_name (or be NULL)");
        if (new_name && expand::column_facts(table, *new_name))
            throw pg::UserError(
                ERRCODE_DUPLICATE_COLUMN,
                fmt::format("column \"{}\" of {} exists already", *new_name, table_sql));
        if (c.new_type == c.old_type && !new_name)
            throw pg::UserError(
                ERRCODE_INVALID_PARAMETER_VALUE,
                fmt::format("column \"{}\" is of type {} already", *column, c.new_type), "",
                "Pass new_column_name for a rename.");
        c.up = up;
        c.down = down;
        c.batch_size = batch_size;
        for (auto [e, name] : {std::pair{&up, "up_expression"}, {&down, "down_expression"}})
            if (*e) expand::check_one_expression(**e, name);
        expand::check_mapping(expand::mapping_sql(up.value_or(pg::quote_identifier(c.old_column)),
                                                  c.old_column, c.new_type, "NULL::" + c.old_type),
                              "up_expression");
        expand::check_mapping(expand::mapping_sql(down.value_or(pg::quote_identifier(c.final_name)),
                                                  c.final_name, c.old_type, "NULL::" + c.new_type),
                              "down_expression");
        c.owner = GetUserId();
        c.phase = "EXPANDING";
        {
            migrate::AsExtensionOwner owner;
            pg::InternalSql spi;
            c.id =
                *spi.scalar("SELECT 'cc' || nextval('virtuoso.column_change_ids'::regclass)::text");
            c.new_column = new_name
                               ? *new_name
                               : expand::clip_name(c.old_column, NAMEDATALEN - 2 - 16) + "_" + c.id;
            try {
                spi.execute(
                    "INSERT INTO virtuoso.column_changes_log (change_id, table_oid, table_name, "
                    "old_column, new_column, final_name, old_type, new_type, up_expression, "
                    "down_expression, batch_size, phase, owner_role) VALUES ($1, $2::oid, $3, "
                    "$4, $5, $6, $7, $8, $9, $10, $11::int, 'EXPANDING', $12::oid)",
                    {c.id, std::to_string(table), table_sql, c.old_column, c.new_column,
                     c.final_name, c.old_type, c.new_type, c.up, c.down,
                     std::to_string(c.batch_size), std::to_string(c.owner)});
            } catch (const pg::PgError &e) {
                // Another session started a change of this column meanwhile (unique index).
                if (e.sqlstate() != ERRCODE_UNIQUE_VIOLATION) throw;
                throw pg::UserError(ERRCODE_OBJECT_IN_USE,
                                    fmt::format("a change of column \"{}\" of {} is under way "
                                                "in another session",
                                                c.old_column, table_sql));
            }
        }
        if (expand::column_facts(table, c.new_column))
            throw pg::UserError(
                ERRCODE_DUPLICATE_COLUMN,
                fmt::format("column \"{}\" of {} exists already", c.new_column, table_sql));
        pg::commit_caller(fcinfo, expand::kExpand);
    }

    expand::SessionChangeLock change_lock(c.id);
    auto commit = [fcinfo] { pg::commit_caller(fcinfo, expand::kExpand); };
    expand::settle_phases(c);
    commit();
    const std::string old_q = pg::quote_identifier(c.old_column);
    const std::string new_q = pg::quote_identifier(c.new_column);
    pg::Progress progress(fmt::format("column change {} of {}", c.id, table_sql),
                          c.phase == "EXPANDING" ? "adding the column" : "resuming");
    // The phase being run, for its log row when it fails.
    std::optional<expand::PhaseLog> log;
    expand::LockStats locks;
    auto start_phase = [&](const std::string &phase, const std::string &what) {
        locks = expand::LockStats{};
        log.emplace(c, phase, what, true);
    };
    try {
        if (c.phase == "EXPANDING" || c.phase == "FAILED") {
            // The column and the trigger in one step: writers are synced from the first row
            // the new column exists for.
            std::string up_sql =
                expand::mapping_sql(c.up.value_or(old_q), c.old_column, c.new_type, "$1");
            std::string down_sql =
                expand::mapping_sql(c.down.value_or(pg::quote_identifier(c.final_name)),
                                    c.final_name, c.old_type, "$1");
            start_phase("expand", fmt::format("add column {} {} to {} and the trigger {} keeping "
                                              "it in agreement with column {}",
                                              new_q, c.new_type, table_sql, c.trigger(), old_q));
            expand::locked_step(
                [&] {
                    pg::InternalSql spi(false);
                    // The old column's collation, when the new type has collations too.
                    auto collate = spi.scalar(
                        "SELECT ' COLLATE ' || quote_ident(n.nspname) || '.' || "
                        "quote_ident(co.collname) FROM pg_attribute a JOIN pg_collation co ON "
                        "co.oid = a.attcollation JOIN pg_namespace n ON n.oid = co.collnamespace "
                        "WHERE a.attrelid = $1::oid AND a.attname = $2 AND (SELECT typcollation "
                        "FROM pg_type WHERE oid = $3::regtype) <> 0",
                        {std::to_string(table), c.old_column, c.new_type});
                    spi.execute(fmt::format("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}{}",
                                            table_sql, new_q, c.new_type, collate.value_or("")));
                    spi.execute(
                        fmt::format("DROP TRIGGER IF EXISTS {} ON {}", c.trigger(), table_sql));
                    spi.execute(fmt::format(
                        "CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE "
                        "FUNCTION virtuoso.column_change_trigger({}, {}, {}, {})",
                        c.trigger(), table_sql, pg::quote_literal(c.old_column),
                        pg::quote_literal(c.new_column), pg::quote_literal(up_sql),
                        pg::quote_literal(down_sql)));
                    expand::record(c, "BACKFILLING", std::nullopt);
                },
                commit, "adding the column", &locks);
            c.phase = "BACKFILLING";
            commit();
            log->succeeded(locks);
            commit();
        }
        if (c.phase == "BACKFILLING") {
            progress.phase("backfilling");
            start_phase("backfill", fmt::format("backfill column {} of {} from column {} from "
                                                "block {}",
                                                new_q, table_sql, old_q, c.next_block));
            int64_t rows = 0;
            int64_t step = online::blocks_per_batch(table, c.batch_size, &rows);
            progress.total(rows);
            progress.done(c.rows_backfilled);
            // SET old = old: the trigger maps it up, the one place the mapping lives.  An
            // identity column GENERATED ALWAYS can only be updated to DEFAULT: there SET new =
            // new (NULL, unchanged), which the trigger maps up just the same.
            auto old_facts = expand::column_facts(table, c.old_column);
            const std::string &set_q = old_facts && old_facts->identity ? new_q : old_q;
            std::string update =
                fmt::format("UPDATE {} SET {} = {} WHERE {} AND {} IS NULL", table_sql, set_q,
                            set_q, online::block_range_condition(), new_q);
            online::run_batches(
                [&]() -> std::optional<int64_t> {
                    if (c.next_block >= online::relation_blocks(table)) return std::nullopt;
                    int64_t end = c.next_block + step;
                    int64_t n;
                    try {
                        pg::Spi spi;
                        n = static_cast<int64_t>(
                            spi.execute(update, {std::to_string(c.next_block), std::to_string(end)})
                                .processed);
                    } catch (const pg::PgError &e) {
                        // A lock wait is retried; a cancel ends the call and leaves the phase
                        // RUNNING, to resume: neither is a row that fails.
                        if (e.sqlstate() == ERRCODE_LOCK_NOT_AVAILABLE ||
                            pg::ends_the_call(e.sqlstate()))
                            throw;
                        throw expand::BatchFailure(
                            e.sqlstate(),
                            fmt::format("backfill of blocks {} to {} failed: {}", c.next_block,
                                        end - 1, e.what()),
                            "",
                            "Fix the rows or the up_expression (abort_column_change), "
                            "then call expand_column_change again.");
                    }
                    c.next_block = end;
                    c.rows_backfilled += n;
                    expand::record(c, "BACKFILLING", std::nullopt);
                    return n;
                },
                commit, online::throttle_from_settings(), progress);
            log->succeeded(locks, fmt::format(R"("rows_backfilled": {})", c.rows_backfilled));
            commit();
            auto facts = expand::column_facts(table, c.old_column);
            auto new_facts = expand::column_facts(table, c.new_column);
            start_phase("build", fmt::format("copy the constraints and indexes of column {} of {} "
                                             "for column {}",
                                             old_q, table_sql, new_q));
            // NOT NULL of the old column: a check validated now, trusted by contract.
            if (facts && facts->not_null) {
                progress.phase("validating NOT NULL");
                std::string check = pg::quote_identifier(c.check_name());
                expand::locked_step(
                    [&] {
                        pg::InternalSql spi(false);
                        spi.execute(fmt::format("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
                                                table_sql, check));
                        spi.execute(fmt::format(
                            "ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS NOT NULL) NOT VALID",
                            table_sql, check, new_q));
                    },
                    commit, "adding the NOT NULL check", &locks);
                commit();
                expand::locked_step(
                    [&] {
                        pg::InternalSql spi(false);
                        spi.execute(
                            fmt::format("ALTER TABLE {} VALIDATE CONSTRAINT {}", table_sql, check));
                    },
                    commit, "validating the NOT NULL check", &locks, true);
                commit();
            }
            // The old column's CHECK constraints, on the new column: NOT VALID, then validated.
            if (facts && new_facts) {
                for (auto &k : expand::checks_of(table, facts->attnum, c.id)) {
                    progress.phase("validating " + k.name);
                    std::string expression =
                        expand::check_expression(k.oid, table, facts->attnum, new_facts->attnum);
                    expand::locked_step(
                        [&] {
                            pg::InternalSql spi(false);
                            spi.execute(fmt::format("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
                                                    table_sql, pg::quote_identifier(k.copy)));
                            spi.execute(fmt::format(
                                "ALTER TABLE {} ADD CONSTRAINT {} CHECK ({}){} NOT VALID",
                                table_sql, pg::quote_identifier(k.copy), expression,
                                k.no_inherit ? " NO INHERIT" : ""));
                        },
                        commit, "adding a copy of " + k.name, &locks);
                    commit();
                    if (k.valid) {
                        expand::locked_step(
                            [&] {
                                pg::InternalSql spi(false);
                                spi.execute(fmt::format("ALTER TABLE {} VALIDATE CONSTRAINT {}",
                                                        table_sql, pg::quote_identifier(k.copy)));
                            },
                            commit, "validating a copy of " + k.name, &locks, true);
                        commit();
                    }
                }
            }
            // The old column's plain indexes and those of its primary key and unique
            // constraints, copied concurrently for the new one.
            if (facts) {
                for (auto &ix : expand::all_index_copies(table, facts->attnum, c.new_column, c.id,
                                                         table_sql)) {
                    progress.phase("building index for " + ix.name);
                    online::build_index_concurrently(ix.definition, 3, commit);
                    commit();
                }
            }
            log->succeeded(locks);
            commit();
        }
        // Parity, in batches: rows whose new value is not the mapping of the old one.
        progress.phase("checking parity");
        start_phase("parity",
                    fmt::format("compare column {} of {} with the up mapping of column {}", new_q,
                                table_sql, old_q));
        std::string parity = fmt::format(
            "SELECT count(*) FROM {} t, LATERAL ({}) m(v) WHERE {} AND t.{} IS DISTINCT FROM m.v",
            table_sql,
            expand::mapping_sql(c.up.value_or(old_q), c.old_column, c.new_type, "t." + old_q),
            online::block_range_condition(), new_q);
        int64_t differing = 0, block = 0;
        int64_t rows = 0;
        int64_t step = online::blocks_per_batch(table, c.batch_size, &rows);
        online::run_batches(
            [&]() -> std::optional<int64_t> {
                if (block >= online::relation_blocks(table)) return std::nullopt;
                pg::InternalSql spi(false);
                differing += std::stoll(*spi.scalar(
                    parity, {std::to_string(block), std::to_string(block + step)}, true));
                block += step;
                return 0;
            },
            commit, online::throttle_from_settings(), progress);
        c.rows_differing = differing;
        expand::record(c, "READY",
                       differing == 0 ? std::optional<std::string>()
                                      : fmt::format("{} rows differ under the mapping", differing));
        commit();
        log->succeeded(locks, fmt::format(R"("rows_differing": {})", differing));
        commit();
        // (the end of the last commit record: the insert position may lie past a page header)
        pg::pg_call([] { XLogFlush(XactLastCommitEnd); });
        pg::report(NOTICE, fmt::format("column change {}: READY, {} rows backfilled, {} differing",
                                       c.id, c.rows_backfilled, differing));
    } catch (const expand::BatchFailure &e) {
        // A batch that failed (its subtransaction rolled back, this transaction is sound):
        // FAILED with the message and the first failing row, committed before the error
        // reaches the caller.
        int64_t rows = 0;
        std::string first = expand::first_failing_row(
            c, c.next_block, c.next_block + online::blocks_per_batch(table, c.batch_size, &rows));
        std::string message = first.empty() ? e.what() : std::string(e.what()) + ". " + first;
        expand::record(c, "FAILED", message);
        if (log) log->failed(locks, e.sqlstate(), e.what(), first, e.hint());
        commit();
        throw pg::UserError(e.sqlstate(), e.what(), first, e.hint());
    } catch (const pg::UserError &e) {
        // Raised by this code, not by PostgreSQL: the transaction is sound.
        if (log) log->failed(locks, e.sqlstate(), e.what(), e.detail(), e.hint());
        throw;
    }
    // (A PostgreSQL error leaves the phase RUNNING; the next call of the change settles it.)
    return pg::procedure_result(fcinfo, {c.id});
}

VIRTUOSO_FUNCTION(virtuoso_contract_column_change) {
    auto id = pg::text_arg(fcinfo, 0);
    const bool drop_old = PG_ARGISNULL(1) ? true : PG_GETARG_BOOL(1);
    if (!id) throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE, "change_id must not be NULL");
    pg::commit_caller(fcinfo, expand::kContract);
    // Held across this procedure's commits: no expand, contract or abort of the change meanwhile.
    expand::SessionChangeLock change_lock(*id);
    expand::Change c = expand::load_change(*id, false);
    expand::check_access(c, "contract");
    if (c.phase == "CONTRACTED" && expand::table_exists(c.table)) {
        // Resumes the validation of foreign keys that a contract left NOT VALID.
        std::optional<std::string> message;
        {
            migrate::AsExtensionOwner owner;
            pg::InternalSql spi;
            message = spi.scalar(
                "SELECT message FROM virtuoso.column_changes_log WHERE change_id = $1", {c.id});
        }
        auto at = message ? message->find(expand::kPendingKeys) : std::string::npos;
        auto facts = expand::column_facts(c.table, c.final_name);
        if (at != std::string::npos && facts) {
            std::vector<expand::ForeignKey> keys;
            for (auto &k :
                 expand::referencing_keys(c.table, facts->attnum, c.final_name, c.table_sql))
                if (!k.valid && message->find(expand::key_label(k), at) != std::string::npos) {
                    k.valid = true;  // valid before the contract: to validate again
                    keys.push_back(k);
                }
            std::optional<std::string> kept_note;
            if (at > 0) kept_note = message->substr(0, at >= 2 ? at - 2 : 0);
            auto commit = [fcinfo] { pg::commit_caller(fcinfo, expand::kContract); };
            std::string result = fmt::format("column change {}: resumed", c.id) +
                                 expand::validate_keys(c, keys, kept_note, commit);
            return pg::procedure_result(fcinfo, {result});
        }
    }
    if (c.phase == "CONTRACTED" || c.phase == "ABORTED")
        throw pg::UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            fmt::format("column change {} is {} already", c.id, c.phase));
    if (c.phase != "READY")
        throw pg::UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            fmt::format("column change {} is {}, not READY", c.id, c.phase), "",
                            "Call virtuoso.expand_column_change again to finish it.");
    if (!c.rows_differing || *c.rows_differing != 0)
        throw pg::UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            fmt::format("column change {}: {} rows differ under the mapping", c.id,
                                        c.rows_differing.value_or(-1)),
                            "", "Call virtuoso.expand_column_change again to re-check parity.");
    if (!expand::table_exists(c.table))
        throw pg::UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            fmt::format("the table of column change {} was dropped", c.id), "",
                            "Abort the change.");
    const std::string old_q = pg::quote_identifier(c.old_column);
    const std::string new_q = pg::quote_identifier(c.new_column);
    const std::string table = c.table_sql;
    // A rename: statements seen lately (pg_stat_statements, when installed) that still name
    // the old column will fail once it is gone (the extension's own calls left out).  Said
    // in the result and as a WARNING.
    std::optional<std::string> stale;
    if (c.final_name != c.old_column) {
        pg::InternalSql spi(false);
        auto schema = spi.scalar(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = "
            "e.extnamespace WHERE e.extname = 'pg_stat_statements'");
        pg::Value n;
        std::string table_name = pg::pg_call([&c] {
            const char *name = get_rel_name(c.table);
            return std::string(name ? name : "");
        });
        // Advisory only: a caller who may not read the view (or a library not preloaded)
        // gets no warning rather than no contract.
        if (schema) {
            try {
                pg::SubTransaction sub;
                {
                    pg::InternalSql probe(false);
                    n = probe.scalar(
                        fmt::format(
                            "SELECT count(*) FROM {}.pg_stat_statements WHERE dbid = (SELECT oid "
                            "FROM pg_database WHERE datname = current_database()) AND query ~* "
                            "('\\m' || regexp_replace($1, '([^A-Za-z0-9_])', '\\\\\\1', "
                            "'g') || '\\M') AND query ~* ('\\m' || regexp_replace($2, "
                            "'([^A-Za-z0-9_])', '\\\\\\1', 'g') || '\\M') AND query !~* "
                            "'virtuoso\\.'",
                            pg::quote_identifier(*schema)),
                        {c.old_column, table_name}, true);
                }
                sub.commit();
            } catch (const pg::PgError &e) {
                if (pg::ends_the_call(e.sqlstate())) throw;
                n.reset();
            }
        }
        {
            if (n && *n != "0") {
                stale = fmt::format(
                    "{} statement(s) in pg_stat_statements still name column "
                    "\"{}\" of this table",
                    *n, c.old_column);
                pg::report(WARNING, "column change " + c.id + ": " + *stale);
            }
        }
    }
    auto commit = [fcinfo] { pg::commit_caller(fcinfo, expand::kContract); };
    std::vector<std::string> done;
    std::vector<expand::ForeignKey> keys;
    std::string kept;
    std::optional<std::string> kept_note;
    expand::LockStats locks;
    std::chrono::steady_clock::time_point locked_at;
    commit();
    expand::PhaseLog log(
        c, "contract",
        fmt::format("column {} of {} becomes {} {}{}", old_q, table,
                    pg::quote_identifier(c.final_name), c.new_type,
                    drop_old ? "; the old column is dropped" : "; the old column is kept"),
        true);
    log.run(locks, [&] {
        expand::locked_step(
            [&] {
                done.clear();
                kept.clear();
                kept_note.reset();
                pg::InternalSql spi(false);
                spi.execute(fmt::format("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", table));
                locked_at = std::chrono::steady_clock::now();
                auto old_facts = expand::column_facts(c.table, c.old_column);
                auto new_facts = expand::column_facts(c.table, c.new_column);
                if (!old_facts || !new_facts)
                    throw pg::UserError(
                        ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        fmt::format("column {} or {} of {} is gone", old_q, new_q, table), "",
                        "Abort the change.");
                expand::refuse_dependents(c.table, *old_facts, c.old_column);
                const std::string attnum = std::to_string(old_facts->attnum);
                const std::string table_oid = std::to_string(c.table);
                auto indexes =
                    expand::copyable_indexes(c.table, old_facts->attnum, c.new_column, c.id, table);
                auto constraint_indexes = expand::copyable_indexes(c.table, old_facts->attnum,
                                                                   c.new_column, c.id, table, true);
                auto checks = expand::checks_of(c.table, old_facts->attnum, c.id);
                for (const auto *list : {&indexes, &constraint_indexes})
                    for (auto &ix : *list)
                        if (!spi.scalar("SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = "
                                        "i.indexrelid WHERE i.indrelid = $1::oid AND c.relname = "
                                        "$2 AND i.indisvalid",
                                        {table_oid, ix.copy_name(c.id)}))
                            throw pg::UserError(
                                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                                fmt::format("index {} has no valid copy for the new column yet",
                                            pg::quote_identifier(ix.name)),
                                "", "Call virtuoso.expand_column_change again to build it.");
                for (auto &k : checks)
                    if (!spi.scalar("SELECT 1 FROM pg_constraint WHERE conrelid = $1::oid AND "
                                    "conname = $2 AND (convalidated OR NOT $3::bool)",
                                    {table_oid, k.copy, k.valid ? "true" : "false"}))
                        throw pg::UserError(
                            ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            fmt::format("constraint {} has no validated copy for the new column "
                                        "yet",
                                        pg::quote_identifier(k.name)),
                            "", "Call virtuoso.expand_column_change again to build it.");
                // Parity was checked while the trigger kept the columns in agreement: without
                // it since, rows may differ.
                if (!spi.scalar("SELECT 1 FROM pg_trigger WHERE tgrelid = $1::oid AND tgname = "
                                "$2 AND tgenabled IN ('O', 'A')",
                                {table_oid, "virtuoso_" + c.id + "_sync"}))
                    throw pg::UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                                        fmt::format("the trigger of column change {} is missing "
                                                    "or disabled: rows may disagree",
                                                    c.id),
                                        "", "Abort the change and start it again.");
                keys = expand::referencing_keys(c.table, old_facts->attnum, c.final_name, table);
                spi.execute(fmt::format("DROP TRIGGER IF EXISTS {} ON {}", c.trigger(), table));
                auto def = spi.scalar(
                    "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = $1::oid "
                    "AND adnum = $2::int",
                    {table_oid, attnum});
                if (def) {
                    spi.execute(fmt::format("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}", table,
                                            new_q, *def));
                    done.push_back("default moved");
                }
                auto seqs = spi.execute(
                    "SELECT d.objid::regclass::text FROM pg_depend d JOIN pg_class s ON s.oid = "
                    "d.objid WHERE d.classid = 'pg_class'::regclass AND d.refclassid = "
                    "'pg_class'::regclass AND d.refobjid = $1::oid AND d.refobjsubid = $2::int "
                    "AND d.deptype = 'a' AND s.relkind = 'S'",
                    {table_oid, attnum});
                for (auto &q : seqs.rows) {
                    spi.execute(
                        fmt::format("ALTER SEQUENCE {} OWNED BY {}.{}", *q[0], table, new_q));
                    done.push_back("sequence " + *q[0] + " owned by the new column");
                }
                // SET NOT NULL trusts the validated check: no scan under the lock.
                if (spi.scalar(
                        "SELECT 1 FROM pg_constraint WHERE conrelid = $1::oid AND conname = $2",
                        {table_oid, c.check_name()})) {
                    spi.execute(
                        fmt::format("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL", table, new_q));
                    spi.execute(fmt::format("ALTER TABLE {} DROP CONSTRAINT {}", table,
                                            pg::quote_identifier(c.check_name())));
                    done.push_back("NOT NULL");
                }
                if (old_facts->identity) {
                    if (!expand::column_facts(c.table, c.new_column)->not_null)
                        spi.execute(fmt::format("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
                                                table, new_q));
                    done.push_back(expand::move_identity(spi, c, old_facts->identity,
                                                         old_facts->attnum, old_q, new_q));
                }
                // The foreign keys referencing the key go first (they depend on its index).
                for (auto &k : keys)
                    spi.execute(fmt::format("ALTER TABLE {} DROP CONSTRAINT {}", k.child,
                                            pg::quote_identifier(k.name)));
                for (auto &ix : constraint_indexes)
                    spi.execute(fmt::format("ALTER TABLE {} DROP CONSTRAINT {}", table,
                                            pg::quote_identifier(ix.constraint)));
                if (drop_old) {
                    spi.execute(fmt::format("ALTER TABLE {} DROP COLUMN {}", table, old_q));
                } else {
                    // Kept for a later DROP COLUMN: the old values as of now, with nothing
                    // that writers would still have to satisfy or maintain.
                    for (auto &ix : indexes)
                        spi.execute(fmt::format("DROP INDEX {}.{}",
                                                pg::quote_identifier(expand::schema_of(c.table)),
                                                pg::quote_identifier(ix.name)));
                    for (auto &k : checks)
                        spi.execute(fmt::format("ALTER TABLE {} DROP CONSTRAINT {}", table,
                                                pg::quote_identifier(k.name)));
                    spi.execute(fmt::format(
                        "ALTER TABLE {0} ALTER COLUMN {1} DROP DEFAULT, ALTER COLUMN {1} DROP NOT "
                        "NULL",
                        table, old_q));
                    std::string suffix = "_" + c.id + "_old";
                    kept = expand::clip_name(c.old_column,
                                             NAMEDATALEN - 1 - static_cast<int>(suffix.size())) +
                           suffix;
                    if (expand::column_facts(c.table, kept))
                        throw pg::UserError(
                            ERRCODE_DUPLICATE_COLUMN,
                            fmt::format("column \"{}\" of {} exists already", kept, table), "",
                            "Rename it, or contract with drop_old_column => true.");
                    spi.execute(fmt::format("ALTER TABLE {} RENAME COLUMN {} TO {}", table, old_q,
                                            pg::quote_identifier(kept)));
                }
                // The copies take the names of the originals.
                std::string schema = pg::quote_identifier(expand::schema_of(c.table));
                for (auto &ix : indexes) {
                    spi.execute(fmt::format("ALTER INDEX {}.{} RENAME TO {}", schema,
                                            pg::quote_identifier(ix.copy_name(c.id)),
                                            pg::quote_identifier(ix.name)));
                    done.push_back("index " + pg::quote_identifier(ix.name) + " rebuilt");
                }
                if (c.final_name != c.new_column)
                    spi.execute(fmt::format("ALTER TABLE {} RENAME COLUMN {} TO {}", table, new_q,
                                            pg::quote_identifier(c.final_name)));
                for (auto &ix : constraint_indexes) {
                    spi.execute(fmt::format("ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}{}",
                                            table, pg::quote_identifier(ix.constraint),
                                            ix.contype == "p" ? "PRIMARY KEY" : "UNIQUE",
                                            pg::quote_identifier(ix.copy_name(c.id)), ix.deferral));
                    done.push_back(fmt::format("{} {} moved",
                                               ix.contype == "p" ? "primary key"
                                                                 : "unique "
                                                                   "constraint",
                                               pg::quote_identifier(ix.constraint)));
                }
                for (auto &k : checks) {
                    spi.execute(fmt::format("ALTER TABLE {} RENAME CONSTRAINT {} TO {}", table,
                                            pg::quote_identifier(k.copy),
                                            pg::quote_identifier(k.name)));
                    done.push_back("check " + pg::quote_identifier(k.name) + " moved");
                }
                // The foreign keys again, against the new key: NOT VALID here (no scan under
                // the lock), validated below after the commit.
                for (auto &k : keys)
                    spi.execute(fmt::format("ALTER TABLE {} {}", k.child, k.definition));
                if (!kept.empty())
                    kept_note = fmt::format("old column kept as {}", pg::quote_identifier(kept));
                std::string pending;
                for (auto &k : keys)
                    if (k.valid) pending += (pending.empty() ? "" : ", ") + expand::key_label(k);
                std::optional<std::string> note = kept_note;
                if (!pending.empty())
                    note = (kept_note ? *kept_note + "; " : std::string()) + expand::kPendingKeys +
                           pending;
                expand::record(c, "CONTRACTED", note, true);
            },
            commit, "contract", &locks);
        commit();
    });
    const long held_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - locked_at)
                             .count();
    log.succeeded(
        locks, fmt::format(R"("lock_held_ms": {}, "foreign_keys": {}, "old_column_kept": {})",
                           held_ms, keys.size(), kept.empty() ? "null" : core::json_quote(kept)));
    commit();
    std::string result = fmt::format("column change {}: {} of {} is now {} {}", c.id, old_q, table,
                                     pg::quote_identifier(c.final_name), c.new_type);
    for (auto &d : done) result += "; " + d;
    if (!kept.empty()) result += "; old column kept as " + pg::quote_identifier(kept);
    result += expand::validate_keys(c, keys, kept_note, commit);
    if (stale) result += "; warning: " + *stale;
    return pg::procedure_result(fcinfo, {result});
}

VIRTUOSO_FUNCTION(virtuoso_abort_column_change) {
    auto id = pg::text_arg(fcinfo, 0);
    if (!id) throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE, "change_id must not be NULL");
    expand::lock_change_for_transaction(*id);
    expand::Change c = expand::load_change(*id, true);
    expand::check_access(c, "abort");
    if (c.phase == "CONTRACTED" || c.phase == "ABORTED")
        throw pg::UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            fmt::format("column change {} is {} already", c.id, c.phase));
    bool exists = expand::table_exists(c.table);
    expand::LockStats locks;
    expand::PhaseLog log(c, "abort",
                         fmt::format("drop column {} of {} and the trigger {}",
                                     pg::quote_identifier(c.new_column), c.table_sql, c.trigger()),
                         false);
    log.run(locks, [&] {
        expand::locked_step(
            [&] {
                if (exists) {
                    pg::InternalSql spi(false);
                    const std::string &table = c.table_sql;
                    spi.execute(fmt::format("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", table));
                    spi.execute(fmt::format("DROP TRIGGER IF EXISTS {} ON {}", c.trigger(), table));
                    // The helper checks, and (with the column) the index and CHECK copies.
                    auto checks = spi.execute(
                        "SELECT quote_ident(conname) FROM pg_constraint WHERE conrelid = "
                        "$1::oid AND contype = 'c' AND starts_with(conname, $2) ORDER BY 1",
                        {std::to_string(c.table), "virtuoso_" + c.id + "_"});
                    for (auto &k : checks.rows)
                        spi.execute(fmt::format("ALTER TABLE {} DROP CONSTRAINT {}", table, *k[0]));
                    spi.execute(fmt::format("ALTER TABLE {} DROP COLUMN IF EXISTS {}", table,
                                            pg::quote_identifier(c.new_column)));
                }
                expand::record(c, "ABORTED", std::nullopt, true);
            },
            [] {}, "abort", &locks);
    });
    log.succeeded(locks);
    return pg::text_datum(fmt::format("column change {} aborted: column {} and its trigger dropped",
                                      c.id, pg::quote_identifier(c.new_column)));
}
