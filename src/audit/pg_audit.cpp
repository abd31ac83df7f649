// Audit trail and updated_at: C trigger functions and the functions that install them.
//
// The audit trigger runs for every row a user writes, so its per-row path is plain
// PostgreSQL-style code (palloc'd memory, cached output functions, one kept SPI plan) run
// inside one pg_call, with no C++ object alive across a call that may ereport.  It writes
// virtuoso.audit_log as the extension's owner: the writer needs DML rights on the audited
// table only, and nobody can write the log directly.  The audited relation is the trigger's
// own (never an argument), so a table owner cannot record rows for another table.
#include "db_virtuoso/migrate/log.hpp"
#include "db_virtuoso/pg/result.hpp"
#include "db_virtuoso/pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "commands/event_trigger.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"
}

namespace virtuoso::audit {
namespace {

using pg::UserError;

// How a column's value becomes JSON (to_jsonb's choices, without its per-call lookups).
enum class JsonKind : char { String, Number, Bool, Json, ToJsonb };

// Per-trigger, per-statement cache (in the FmgrInfo's fn_extra): what to record of each
// column and how.  A statement sees one tuple descriptor; it is rebuilt when that changes.
struct AuditCache {
    Oid relid;
    TupleDesc desc;  // identity of the descriptor the cache was built for
    int natts;
    bool include_old;
    bool *recorded;  // column is written to old_values / new_values
    bool *is_key;    // column is part of the key
    JsonKind *kind;
    FmgrInfo *output;    // type output function
    FmgrInfo *to_jsonb;  // for ToJsonb columns (arrays, composites, ranges...)
    char *table_name;    // schema-qualified, quoted where needed
};

AuditCache *build_cache(FunctionCallInfo fcinfo, TriggerData *trig) {
    Relation rel = trig->tg_relation;
    TupleDesc desc = RelationGetDescr(rel);
    MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
    auto *c = static_cast<AuditCache *>(palloc0(sizeof(AuditCache)));
    c->relid = RelationGetRelid(rel);
    c->desc = desc;
    c->natts = desc->natts;
    c->recorded = static_cast<bool *>(palloc0(sizeof(bool) * (c->natts + 1)));
    c->is_key = static_cast<bool *>(palloc0(sizeof(bool) * (c->natts + 1)));
    c->kind = static_cast<JsonKind *>(palloc0(sizeof(JsonKind) * (c->natts + 1)));
    c->output = static_cast<FmgrInfo *>(palloc0(sizeof(FmgrInfo) * (c->natts + 1)));
    c->to_jsonb = static_cast<FmgrInfo *>(palloc0(sizeof(FmgrInfo) * (c->natts + 1)));
    c->table_name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
                                               RelationGetRelationName(rel));

    // Arguments: include_old, then the recorded columns (none: all of them).  Names that no
    // longer exist (dropped after enable_audit) are ignored.
    Trigger *t = trig->tg_trigger;
    c->include_old = t->tgnargs < 1 || strcmp(t->tgargs[0], "f") != 0;
    bool all = t->tgnargs <= 1;
    for (int i = 0; i < c->natts; ++i) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (att->attisdropped) continue;
        bool wanted = all;
        for (int a = 1; !wanted && a < t->tgnargs; ++a)
            wanted = strcmp(t->tgargs[a], NameStr(att->attname)) == 0;
        c->recorded[i] = wanted;
    }

    // The key: the replica identity (the primary key unless REPLICA IDENTITY says otherwise),
    // every column under REPLICA IDENTITY FULL, none under NOTHING.
    Bitmapset *key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
    bool full = rel->rd_rel->relreplident == REPLICA_IDENTITY_FULL;
    for (int i = 0; i < c->natts; ++i) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (att->attisdropped) continue;
        c->is_key[i] = full || bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, key);
    }

    for (int i = 0; i < c->natts; ++i) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (att->attisdropped || (!c->recorded[i] && !c->is_key[i])) continue;
        Oid base = getBaseType(att->atttypid);
        char category;
        bool preferred;
        get_type_category_preferred(base, &category, &preferred);
        switch (base) {
            case INT2OID:
            case INT4OID:
            case INT8OID:
            case FLOAT4OID:
            case FLOAT8OID:
            case NUMERICOID:
            case OIDOID:
                c->kind[i] = JsonKind::Number;
                break;
            case BOOLOID:
                c->kind[i] = JsonKind::Bool;
                break;
            case JSONOID:
            case JSONBOID:
                c->kind[i] = JsonKind::Json;
                break;
            default:
                c->kind[i] = (category == TYPCATEGORY_ARRAY || category == TYPCATEGORY_COMPOSITE)
                                 ? JsonKind::ToJsonb
                                 : JsonKind::String;
        }
        Oid out_fn;
        bool varlena;
        getTypeOutputInfo(att->atttypid, &out_fn, &varlena);
        fmgr_info_cxt(out_fn, &c->output[i], fcinfo->flinfo->fn_mcxt);
        if (c->kind[i] == JsonKind::ToJsonb) {
            // to_jsonb(anyelement) reads its argument's type from the call expression.
            fmgr_info_cxt(F_TO_JSONB, &c->to_jsonb[i], fcinfo->flinfo->fn_mcxt);
            Node *arg = reinterpret_cast<Node *>(
                makeNullConst(att->atttypid, att->atttypmod, att->attcollation));
            fmgr_info_set_expr(reinterpret_cast<Node *>(
                                   makeFuncExpr(F_TO_JSONB, JSONBOID, list_make1(arg), InvalidOid,
                                                InvalidOid, COERCE_EXPLICIT_CALL)),
                               &c->to_jsonb[i]);
        }
    }
    MemoryContextSwitchTo(old);
    fcinfo->flinfo->fn_extra = c;
    return c;
}

// Whether a number's text form is also a JSON number (not NaN, Infinity).
bool json_number(const char *s) {
    if (*s == '-') ++s;
    return *s >= '0' && *s <= '9';
}

void append_json_value(StringInfo buf, AuditCache *c, int i, Datum value, bool isnull) {
    if (isnull) {
        appendStringInfoString(buf, "null");
        return;
    }
    switch (c->kind[i]) {
        case JsonKind::Bool:
            appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
            return;
        case JsonKind::Number: {
            char *s = OutputFunctionCall(&c->output[i], value);
            if (json_number(s))
                appendStringInfoString(buf, s);
            else
                escape_json(buf, s);
            return;
        }
        case JsonKind::Json:
            appendStringInfoString(buf, OutputFunctionCall(&c->output[i], value));
            return;
        case JsonKind::ToJsonb: {
            Jsonb *j = DatumGetJsonbP(FunctionCall1(&c->to_jsonb[i], value));
            appendStringInfoString(buf, JsonbToCString(nullptr, &j->root, VARSIZE(j)));
            return;
        }
        case JsonKind::String:
            escape_json(buf, OutputFunctionCall(&c->output[i], value));
            return;
    }
}

// {"column": value, ...} of the columns selected by `take`, as jsonb; NULL (Datum 0) with
// *isnull when no column is selected.
template <typename Take>
Datum json_object(AuditCache *c, TupleTableSlot *slot, Take &&take, bool *isnull) {
    StringInfoData buf;
    initStringInfo(&buf);
    appendStringInfoChar(&buf, '{');
    bool any = false;
    for (int i = 0; i < c->natts; ++i) {
        if (!take(i)) continue;
        bool null;
        Datum v = slot_getattr(slot, i + 1, &null);
        if (any) appendStringInfoString(&buf, ", ");
        escape_json(&buf, NameStr(TupleDescAttr(c->desc, i)->attname));
        appendStringInfoString(&buf, ": ");
        append_json_value(&buf, c, i, v, null);
        any = true;
    }
    appendStringInfoChar(&buf, '}');
    *isnull = !any;
    return any ? DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)) : Datum(0);
}

// Whether a column's value differs between the old and the new row (by its stored image:
// a value written differently, such as 1.0 and 1.00, is a change).
bool column_changed(AuditCache *c, int i, TupleTableSlot *before, TupleTableSlot *after) {
    bool null1, null2;
    Datum v1 = slot_getattr(before, i + 1, &null1);
    Datum v2 = slot_getattr(after, i + 1, &null2);
    if (null1 || null2) return null1 != null2;
    Form_pg_attribute att = TupleDescAttr(c->desc, i);
    return !datum_image_eq(v1, v2, att->attbyval, att->attlen);
}

// Whether the relation still has the row trigger of enable_audit (its own, or cloned from
// its partitioned table): a partition's TRUNCATE trigger outlives a DETACH, which takes the
// cloned row trigger away.
bool audited(TriggerData *trig) {
    const TriggerDesc *desc = trig->tg_relation->trigdesc;
    for (int i = 0; desc != nullptr && i < desc->numtriggers; ++i) {
        const Trigger &t = desc->triggers[i];
        if (t.tgfoid == trig->tg_trigger->tgfoid && TRIGGER_FOR_ROW(t.tgtype) &&
            strcmp(t.tgname, "virtuoso_audit") == 0)
            return true;
    }
    return false;
}

constexpr int kInsertParams = 8;

// One audit_log row, its values ready for the kept INSERT plan.
struct AuditRow {
    Datum values[kInsertParams];
    char nulls[kInsertParams];
    bool skip;  // an UPDATE that changed no recorded column
};

void set(AuditRow *row, int i, Datum value, bool isnull) {
    row->values[i] = value;
    row->nulls[i] = isnull ? 'n' : ' ';
}

// Builds the row to write for this trigger event (in the trigger's per-tuple memory).
void build_row(FunctionCallInfo fcinfo, AuditRow *row) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("virtuoso.audit_trigger() must be called as a trigger")));
    auto *trig = reinterpret_cast<TriggerData *>(fcinfo->context);
    TriggerEvent ev = trig->tg_event;
    bool truncate = TRIGGER_FIRED_BY_TRUNCATE(ev);
    if (!TRIGGER_FIRED_AFTER(ev) ||
        (truncate ? TRIGGER_FIRED_FOR_ROW(ev) : !TRIGGER_FIRED_FOR_ROW(ev)))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("virtuoso.audit_trigger() must fire AFTER each row, or AFTER "
                               "TRUNCATE for each statement"),
                        errhint("Use virtuoso.enable_audit().")));
    memset(row, 0, sizeof(*row));
    if (truncate && !audited(trig)) {
        row->skip = true;
        return;
    }
    auto *c = static_cast<AuditCache *>(fcinfo->flinfo->fn_extra);
    if (c == nullptr || c->relid != RelationGetRelid(trig->tg_relation) ||
        c->desc != RelationGetDescr(trig->tg_relation))
        c = build_cache(fcinfo, trig);

    for (int i = 0; i < kInsertParams; ++i) row->nulls[i] = 'n';
    set(row, 0, CStringGetTextDatum(c->table_name), false);
    set(row, 6, DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false))),
        false);
    set(row, 7, ObjectIdGetDatum(c->relid), false);
    const char *op = truncate                      ? "TRUNCATE"
                     : TRIGGER_FIRED_BY_INSERT(ev) ? "INSERT"
                     : TRIGGER_FIRED_BY_UPDATE(ev) ? "UPDATE"
                                                   : "DELETE";
    set(row, 1, CStringGetTextDatum(op), false);
    if (truncate) return;

    TupleTableSlot *before = TRIGGER_FIRED_BY_INSERT(ev) ? nullptr : trig->tg_trigslot;
    TupleTableSlot *after = TRIGGER_FIRED_BY_INSERT(ev)   ? trig->tg_trigslot
                            : TRIGGER_FIRED_BY_UPDATE(ev) ? trig->tg_newslot
                                                          : nullptr;
    bool isnull;
    // The key of the row as it is now (as it was, for a DELETE).
    Datum key = json_object(
        c, after ? after : before, [c](int i) { return c->is_key[i]; }, &isnull);
    set(row, 2, key, isnull);

    if (before && after) {
        bool *changed = static_cast<bool *>(palloc0(sizeof(bool) * (c->natts + 1)));
        int nchanged = 0;
        for (int i = 0; i < c->natts; ++i)
            if (c->recorded[i] && column_changed(c, i, before, after)) {
                changed[i] = true;
                ++nchanged;
            }
        if (nchanged == 0) {
            row->skip = true;
            return;
        }
        Datum *names = static_cast<Datum *>(palloc(sizeof(Datum) * nchanged));
        int n = 0;
        for (int i = 0; i < c->natts; ++i)
            if (changed[i])
                names[n++] = CStringGetTextDatum(NameStr(TupleDescAttr(c->desc, i)->attname));
        set(row, 5, PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT)),
            false);
        auto take = [changed](int i) { return changed[i]; };
        if (c->include_old) {
            Datum old_values = json_object(c, before, take, &isnull);
            set(row, 3, old_values, isnull);
        }
        Datum new_values = json_object(c, after, take, &isnull);
        set(row, 4, new_values, isnull);
        return;
    }
    auto take = [c](int i) { return c->recorded[i]; };
    if (before && c->include_old) {
        Datum old_values = json_object(c, before, take, &isnull);
        set(row, 3, old_values, isnull);
    }
    if (after) {
        Datum new_values = json_object(c, after, take, &isnull);
        set(row, 4, new_values, isnull);
    }
}

// ---- the buffer of audit rows -------------------------------------------------------------
//
// One INSERT per audited row would cost an executor start-up per row.  Rows are collected in
// transaction memory and written 1000 at a time by one INSERT ... SELECT FROM unnest(...),
// and whatever is left before the transaction commits or prepares (and before audit_history
// reads the log).  A subtransaction that aborts takes its buffered rows with it; a
// transaction that aborts, all of them.  So the log holds exactly the committed changes, as
// with a row-by-row INSERT; only a plain SELECT on audit_log inside the writing transaction
// may not see its latest rows yet.

constexpr int kBatchRows = 1000;
constexpr int kColumns = 10;  // table_name, operation, key, old, new, changed, by, relid, app, at

struct Pending {
    MemoryContext context;  // child of TopTransactionContext
    Oid owner;              // extension owner, looked up once per transaction
    int n, capacity;
    Datum *values;  // capacity * kColumns
    bool *nulls;
    SubTransactionId *subxact;
};

Pending pending{};  // all zero outside a transaction that audited something
SPIPlanPtr batch_plan = nullptr;

void forget_pending() {
    memset(&pending, 0, sizeof(pending));
}

// Plain PostgreSQL-style code: also called from transaction callbacks.
void flush_pending() {
    if (pending.n == 0) return;
    static const Oid element[kColumns] = {TEXTOID, TEXTOID, JSONBOID, JSONBOID, JSONBOID,
                                          TEXTOID, NAMEOID, OIDOID,   TEXTOID,  TIMESTAMPTZOID};
    static const Oid array[kColumns] = {TEXTARRAYOID, TEXTARRAYOID, 3807 /* jsonb[] */, 3807,
                                        3807,         TEXTARRAYOID, 1003 /* name[] */,  OIDARRAYOID,
                                        TEXTARRAYOID, 1185 /* timestamptz[] */};
    const int n = pending.n;
    MemoryContext old = MemoryContextSwitchTo(pending.context);
    Datum params[kColumns];
    char param_nulls[kColumns];
    Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * n));
    bool *elem_nulls = static_cast<bool *>(palloc(sizeof(bool) * n));
    for (int col = 0; col < kColumns; ++col) {
        for (int i = 0; i < n; ++i) {
            elems[i] = pending.values[i * kColumns + col];
            elem_nulls[i] = pending.nulls[i * kColumns + col];
        }
        int16 typlen;
        bool byval;
        char align;
        get_typlenbyvalalign(element[col], &typlen, &byval, &align);
        int dims[1] = {n}, lbs[1] = {1};
        params[col] = PointerGetDatum(construct_md_array(elems, elem_nulls, 1, dims, lbs,
                                                         element[col], typlen, byval, align));
        param_nulls[col] = ' ';
    }
    MemoryContextSwitchTo(old);
    pending.n = 0;  // taken: an error below aborts the (sub)transaction anyway

    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    if (batch_plan == nullptr) {
        // Every name is schema-qualified: no search_path can redirect the statement.
        SPIPlanPtr plan = SPI_prepare(
            "INSERT INTO virtuoso.audit_log (table_name, operation, key, old_values, new_values,"
            " changed_columns, changed_by, relid, application_name, changed_at, txid)"
            " SELECT u.t, u.o, u.k, u.ov, u.nv, u.cc::pg_catalog.text[], u.cb, u.r, u.an, u.ca,"
            "        pg_catalog.txid_current()"
            " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
            "   pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5),"
            "   pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8),"
            "   pg_catalog.unnest($9), pg_catalog.unnest($10))"
            "   AS u(t, o, k, ov, nv, cc, cb, r, an, ca)",
            kColumns, const_cast<Oid *>(array));
        if (plan == nullptr) elog(ERROR, "could not prepare the audit_log insert");
        if (SPI_keepplan(plan) != 0) elog(ERROR, "could not keep the audit_log insert plan");
        batch_plan = plan;
    }
    // Written as the extension's owner, like a SECURITY DEFINER function.
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(pending.owner, saved_context | SECURITY_LOCAL_USERID_CHANGE);
    const bool push = !ActiveSnapshotSet();
    if (push) PushActiveSnapshot(GetTransactionSnapshot());
    int rc = SPI_execute_plan(batch_plan, params, param_nulls, false, 0);
    if (push) PopActiveSnapshot();
    SetUserIdAndSecContext(saved_user, saved_context);
    if (rc != SPI_OK_INSERT) elog(ERROR, "audit_log insert failed: %s", SPI_result_code_string(rc));
    SPI_finish();
    MemoryContextReset(pending.context);
    pending.capacity = 0;
    pending.values = nullptr;
    pending.nulls = nullptr;
    pending.subxact = nullptr;
}

void on_xact(XactEvent event, void *) {
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
        case XACT_EVENT_PRE_PREPARE:
            flush_pending();
            break;
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PREPARE:
        case XACT_EVENT_PARALLEL_ABORT:
            forget_pending();  // its memory went with TopTransactionContext
            break;
        default:
            break;
    }
}

void on_subxact(SubXactEvent event, SubTransactionId sub, SubTransactionId parent, void *) {
    if (pending.n == 0) return;
    if (event == SUBXACT_EVENT_COMMIT_SUB) {
        for (int i = 0; i < pending.n; ++i)
            if (pending.subxact[i] == sub) pending.subxact[i] = parent;
    } else if (event == SUBXACT_EVENT_ABORT_SUB) {
        // Its rows were the last ones added (its committed children's became its own).
        int kept = 0;
        for (int i = 0; i < pending.n; ++i) {
            if (pending.subxact[i] == sub) continue;
            if (kept != i) {
                memcpy(&pending.values[kept * kColumns], &pending.values[i * kColumns],
                       sizeof(Datum) * kColumns);
                memcpy(&pending.nulls[kept * kColumns], &pending.nulls[i * kColumns],
                       sizeof(bool) * kColumns);
                pending.subxact[kept] = pending.subxact[i];
            }
            ++kept;
        }
        pending.n = kept;
    }
}

// Adds a built row to the buffer (copied into transaction memory); writes the buffer when
// it is full.
void buffer_row(const AuditRow *row, Oid owner) {
    static bool registered = false;
    if (!registered) {
        RegisterXactCallback(on_xact, nullptr);
        RegisterSubXactCallback(on_subxact, nullptr);
        registered = true;
    }
    if (pending.context == nullptr) {
        pending.context = AllocSetContextCreate(TopTransactionContext, "db_virtuoso audit rows",
                                                ALLOCSET_DEFAULT_SIZES);
        pending.owner = owner;
    }
    if (pending.n == pending.capacity) {
        int capacity = pending.capacity == 0 ? 64 : pending.capacity * 2;
        MemoryContext old = MemoryContextSwitchTo(pending.context);
        auto *values = static_cast<Datum *>(palloc(sizeof(Datum) * kColumns * capacity));
        auto *nulls = static_cast<bool *>(palloc(sizeof(bool) * kColumns * capacity));
        auto *subxact =
            static_cast<SubTransactionId *>(palloc(sizeof(SubTransactionId) * capacity));
        if (pending.n > 0) {
            memcpy(values, pending.values, sizeof(Datum) * kColumns * pending.n);
            memcpy(nulls, pending.nulls, sizeof(bool) * kColumns * pending.n);
            memcpy(subxact, pending.subxact, sizeof(SubTransactionId) * pending.n);
        }
        MemoryContextSwitchTo(old);
        pending.values = values;
        pending.nulls = nulls;
        pending.subxact = subxact;
        pending.capacity = capacity;
    }
    MemoryContext old = MemoryContextSwitchTo(pending.context);
    Datum *v = &pending.values[pending.n * kColumns];
    bool *isnull = &pending.nulls[pending.n * kColumns];
    // Parameters 0..7 of the row, then application_name and the time of the change.
    static const bool byval[8] = {false, false, false, false, false, false, false, true};
    static const int len[8] = {-1, -1, -1, -1, -1, -1, NAMEDATALEN, sizeof(Oid)};
    for (int c = 0; c < 8; ++c) {
        isnull[c] = row->nulls[c] == 'n';
        v[c] = isnull[c] ? Datum(0) : datumCopy(row->values[c], byval[c], len[c]);
    }
    // changed_columns travels as text (an array of arrays of different lengths cannot)
    if (!isnull[5]) v[5] = CStringGetTextDatum(OidOutputFunctionCall(F_ARRAY_OUT, row->values[5]));
    const char *app = application_name ? application_name : "";
    v[8] = CStringGetTextDatum(app);
    isnull[8] = false;
    v[9] = TimestampTzGetDatum(GetCurrentTimestamp());
    isnull[9] = false;
    MemoryContextSwitchTo(old);
    pending.subxact[pending.n] = GetCurrentSubTransactionId();
    ++pending.n;
    if (pending.n >= kBatchRows) flush_pending();
}

// ---- checks shared by the enabling functions ----------------------------------------------

struct TableFacts {
    char relkind;
    char replident;
    bool has_identity_index;
    bool owner;
};

// The table must be a plain or partitioned table the caller owns.
TableFacts check_table(Oid relid, const char *what) {
    TableFacts facts = pg::pg_call([relid] {
        TableFacts f{};
        f.relkind = get_rel_relkind(relid);
        if (f.relkind == '\0')
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                            errmsg("relation with OID %u does not exist", relid)));
        f.owner = pg_class_ownercheck(relid, GetUserId());
        return f;
    });
    std::string name = pg::qualified_relation_name(relid);
    if (facts.relkind != RELKIND_RELATION && facts.relkind != RELKIND_PARTITIONED_TABLE)
        throw UserError(ERRCODE_WRONG_OBJECT_TYPE,
                        fmt::format("cannot {} \"{}\": it is not a table", what, name),
                        facts.relkind == RELKIND_VIEW || facts.relkind == RELKIND_MATVIEW
                            ? "Views record nothing themselves; enable it on their tables."
                        : facts.relkind == RELKIND_FOREIGN_TABLE
                            ? "A foreign table's rows are written by another server."
                            : "");
    if (!facts.owner)
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        fmt::format("permission denied to {} \"{}\"", what, name),
                        "Only the owner of the table (or a member of its owning role) can.");
    pg::InternalSql spi;
    auto r = spi.execute(
        "SELECT c.relreplident::text, EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid"
        "   AND CASE c.relreplident WHEN 'd' THEN i.indisprimary"
        "        WHEN 'i' THEN i.indisreplident ELSE false END)::text"
        " FROM pg_class c WHERE c.oid = $1::oid",
        {std::to_string(relid)});
    facts.replident = r.rows[0][0].value_or("d")[0];
    facts.has_identity_index = r.rows[0][1].value_or("false") == "true";
    return facts;
}

// Refuses to replace a trigger of that name that is not ours, or that a partitioned table
// above gave this partition.
void check_trigger_names(Oid relid, const std::string &table, const std::string &function,
                         const std::vector<std::string> &names) {
    pg::InternalSql spi;
    std::string list;
    for (const auto &n : names) list += (list.empty() ? "" : ",") + pg::quote_identifier(n);
    auto r = spi.execute(
        "SELECT t.tgname::text, (t.tgfoid = $3::regprocedure)::text, (t.tgparentid <> 0)::text"
        " FROM pg_trigger t WHERE t.tgrelid = $1::oid AND t.tgname = ANY ($2::name[])",
        {std::to_string(relid), "{" + list + "}", function});
    for (const auto &row : r.rows) {
        if (row[1] != "true")
            throw UserError(ERRCODE_DUPLICATE_OBJECT,
                            fmt::format("table \"{}\" already has a trigger named \"{}\"", table,
                                        row[0].value_or("")),
                            "", "Rename or drop that trigger first.");
        if (row[2] == "true")
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            fmt::format("\"{}\" is set up through its partitioned table", table),
                            "", "Call the function on the partitioned table instead.");
    }
}

// Runs DDL on the user's table as the extension's owner (the caller's ownership is checked
// first): the caller needs no EXECUTE on the trigger functions.
void run_ddl(const std::vector<std::string> &statements) {
    migrate::AsExtensionOwner owner;
    pg::InternalSql spi(false);
    pg::GucScope quiet;  // no NOTICE for a DROP TRIGGER IF EXISTS that finds nothing
    quiet.set("client_min_messages", "warning");
    for (const auto &sql : statements) spi.execute(sql);
}

// TRUNCATE is audited by a statement trigger, and PostgreSQL clones only row triggers to
// partitions: each partition below an audited table gets its own TRUNCATE trigger, with the
// table's arguments (args: quoted literals).  With `replace` (enable_audit) every one is
// written afresh, otherwise only missing ones (partitions created or attached later).
void set_partition_truncate_triggers(Oid root, const std::string &args, bool replace) {
    std::vector<std::string> ddl;
    {
        pg::InternalSql spi;
        auto r = spi.execute(
            "SELECT p.relid::oid::text, (t.oid IS NOT NULL)::text,"
            "  (t.tgfoid IS NOT DISTINCT FROM 'virtuoso.audit_trigger()'::regprocedure)::text"
            " FROM pg_partition_tree($1::oid::regclass) p"
            " LEFT JOIN pg_trigger t ON t.tgrelid = p.relid AND t.tgname = "
            "'virtuoso_audit_truncate'"
            " WHERE p.relid <> $1::oid::regclass ORDER BY p.level, p.relid::oid",
            {std::to_string(root)});
        for (const auto &row : r.rows) {
            const Oid part = static_cast<Oid>(std::stoul(row[0].value_or("0")));
            const bool exists = row[1] == "true";
            if (exists && !replace) continue;
            const std::string name = pg::qualified_relation_name(part);
            if (exists && row[2] != "true")
                throw UserError(ERRCODE_DUPLICATE_OBJECT,
                                fmt::format("partition \"{}\" already has a trigger named "
                                            "\"virtuoso_audit_truncate\"",
                                            name),
                                "", "Rename or drop that trigger first.");
            if (exists) ddl.push_back("DROP TRIGGER virtuoso_audit_truncate ON " + name);
            ddl.push_back(fmt::format(
                "CREATE TRIGGER virtuoso_audit_truncate AFTER TRUNCATE ON {} FOR EACH STATEMENT "
                "EXECUTE FUNCTION virtuoso.audit_trigger({})",
                name, args));
        }
    }
    if (!ddl.empty()) run_ddl(ddl);
}

// Drops the TRUNCATE triggers set_partition_truncate_triggers gave the partitions.
void drop_partition_truncate_triggers(Oid root) {
    std::vector<std::string> ddl;
    {
        pg::InternalSql spi;
        auto r = spi.execute(
            "SELECT p.relid::oid::text FROM pg_partition_tree($1::oid::regclass) p"
            " JOIN pg_trigger t ON t.tgrelid = p.relid AND t.tgname = 'virtuoso_audit_truncate'"
            "  AND t.tgfoid = 'virtuoso.audit_trigger()'::regprocedure"
            " WHERE p.relid <> $1::oid::regclass",
            {std::to_string(root)});
        for (const auto &row : r.rows)
            ddl.push_back(
                "DROP TRIGGER IF EXISTS virtuoso_audit_truncate ON " +
                pg::qualified_relation_name(static_cast<Oid>(std::stoul(row[0].value_or("0")))));
    }
    if (!ddl.empty()) run_ddl(ddl);
}

// Trigger arguments stored in pg_trigger.tgargs (hex of NUL-terminated strings), as the
// quoted literals of a CREATE TRIGGER.
std::string trigger_args_sql(const std::string &hex) {
    std::string args, current;
    auto digit = [](char ch) { return ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10; };
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
        const char ch = static_cast<char>(digit(hex[i]) * 16 + digit(hex[i + 1]));
        if (ch != '\0') {
            current += ch;
            continue;
        }
        args += (args.empty() ? "" : ", ") + pg::quote_literal(current);
        current.clear();
    }
    return args;
}

// Any argument in its type's text form (jsonb, text[]), or nullopt when NULL.
pg::Value arg_as_text(FunctionCallInfo fcinfo, int argno) {
    if (PG_ARGISNULL(argno)) return std::nullopt;
    return pg::pg_call([fcinfo, argno] {
        Oid type = get_fn_expr_argtype(fcinfo->flinfo, argno);
        Oid out;
        bool varlena;
        getTypeOutputInfo(type, &out, &varlena);
        return std::string(OidOutputFunctionCall(out, PG_GETARG_DATUM(argno)));
    });
}

Oid regclass_arg(FunctionCallInfo fcinfo, int argno, const char *name) {
    if (PG_ARGISNULL(argno))
        throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, fmt::format("{} must not be NULL", name));
    return PG_GETARG_OID(argno);
}

}  // namespace
}  // namespace virtuoso::audit

using namespace virtuoso;
using virtuoso::pg::UserError;

VIRTUOSO_TRIGGER_FUNCTION(virtuoso_audit_trigger) {
    audit::AuditRow row;
    pg::pg_call([fcinfo, &row] { audit::build_row(fcinfo, &row); });
    if (row.skip) return PointerGetDatum(nullptr);
    Oid owner = audit::pending.owner;
    if (audit::pending.context == nullptr) {
        migrate::AsExtensionOwner as_owner;  // the lookup, once per transaction
        owner = GetUserId();
    }
    pg::pg_call([&row, owner] { audit::buffer_row(&row, owner); });
    return PointerGetDatum(nullptr);
}

namespace virtuoso::audit {
namespace {

struct UpdatedAtCache {
    Oid relid;
    TupleDesc desc;  // identity of the descriptor the cache was built for
    int attnum;
    Oid type;
    bool clock;
    bool fixed8;            // stored as 8 bytes by value: can be overwritten where it lies
    TimestampTz converted;  // the last time converted to timestamp (without time zone)...
    Datum timestamp;        // ...and the result: one conversion per transaction
    bool has_converted;
};

// Checks how the trigger is declared and finds the column (once per statement: the cache
// lives in the trigger's FmgrInfo).  May raise errors: called through pg_call.
UpdatedAtCache *updated_at_cache(FunctionCallInfo fcinfo) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("virtuoso.updated_at_trigger() must be called as a trigger")));
    auto *trig = reinterpret_cast<TriggerData *>(fcinfo->context);
    TriggerEvent ev = trig->tg_event;
    if (!TRIGGER_FIRED_BEFORE(ev) || !TRIGGER_FIRED_FOR_ROW(ev) ||
        !(TRIGGER_FIRED_BY_INSERT(ev) || TRIGGER_FIRED_BY_UPDATE(ev)) ||
        trig->tg_trigger->tgnargs < 1)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("virtuoso.updated_at_trigger() must fire BEFORE INSERT OR UPDATE "
                               "for each row, with the column name as argument"),
                        errhint("Use virtuoso.enable_updated_at().")));
    Relation rel = trig->tg_relation;
    auto *c = static_cast<UpdatedAtCache *>(
        MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(UpdatedAtCache)));
    c->relid = RelationGetRelid(rel);
    c->desc = RelationGetDescr(rel);
    const char *column = trig->tg_trigger->tgargs[0];
    c->attnum = SPI_fnumber(c->desc, column);
    if (c->attnum <= 0)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("column \"%s\" of \"%s\" kept by virtuoso.enable_updated_at "
                               "does not exist",
                               column, RelationGetRelationName(rel)),
                        errhint("Call virtuoso.enable_updated_at() again with its new name.")));
    Form_pg_attribute att = TupleDescAttr(c->desc, c->attnum - 1);
    c->type = getBaseType(att->atttypid);
    if (c->type != TIMESTAMPTZOID && c->type != TIMESTAMPOID)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("column \"%s\" of \"%s\" is not a timestamp", column,
                               RelationGetRelationName(rel))));
    c->fixed8 = att->attlen == 8 && att->attbyval;
    c->clock = trig->tg_trigger->tgnargs > 1 && strcmp(trig->tg_trigger->tgargs[1], "clock") == 0;
    fcinfo->flinfo->fn_extra = c;
    return c;
}

bool updated_at_cache_fits(const UpdatedAtCache *c, FunctionCallInfo fcinfo) {
    if (c == nullptr || !CALLED_AS_TRIGGER(fcinfo)) return false;
    Relation rel = reinterpret_cast<TriggerData *>(fcinfo->context)->tg_relation;
    return c->relid == RelationGetRelid(rel) && c->desc == RelationGetDescr(rel);
}

// Where the (not null, present) attribute's data lies in a heap tuple, or nullptr.  The walk
// of slot_deform_heap_tuple, without deforming anything.
char *attribute_data(HeapTuple tuple, TupleDesc desc, int attnum) {
    HeapTupleHeader header = tuple->t_data;
    if (attnum > HeapTupleHeaderGetNatts(header)) return nullptr;  // added later: not stored
    const bool hasnulls = HeapTupleHasNulls(tuple);
    const bits8 *bits = header->t_bits;
    if (hasnulls && att_isnull(attnum - 1, bits)) return nullptr;
    char *data = reinterpret_cast<char *>(header) + header->t_hoff;
    uint32 off = 0;
    for (int i = 0; i < attnum - 1; ++i) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (hasnulls && att_isnull(i, bits)) continue;
        off = att_align_pointer(off, att->attalign, att->attlen, data + off);
        off = att_addlength_pointer(off, att->attlen, data + off);
    }
    Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
    return data + att_align_nominal(off, att->attalign);
}

// The new row with the column set: written into the row where it lies when that row is the
// private (materialized) tuple of the executor's slot, nothing has read the column from it
// yet and the column holds a value; otherwise a modified copy (heap_modify_tuple_by_cols).
// Overwriting in place spares deforming and forming the row and the executor's copy of a
// returned new tuple: most of what the trigger would cost beyond the executor's own work.
// Raises no error itself; the copy goes through pg_call.
HeapTuple stamp_row(UpdatedAtCache *c, TriggerData *trig, Datum value) {
    const bool update = TRIGGER_FIRED_BY_UPDATE(trig->tg_event);
    HeapTuple tuple = update ? trig->tg_newtuple : trig->tg_trigtuple;
    TupleTableSlot *slot = update ? trig->tg_newslot : trig->tg_trigslot;
    if (c->fixed8 && slot != nullptr && (TTS_IS_BUFFERTUPLE(slot) || TTS_IS_HEAPTUPLE(slot)) &&
        TTS_SHOULDFREE(slot) && reinterpret_cast<HeapTupleTableSlot *>(slot)->tuple == tuple &&
        slot->tts_nvalid < c->attnum) {
        if (char *where = attribute_data(tuple, c->desc, c->attnum)) {
            const int64 stored = DatumGetInt64(value);
            memcpy(where, &stored, sizeof(stored));
            return tuple;
        }
    }
    return pg::pg_call([c, tuple, value] {
        int column = c->attnum;
        Datum v = value;
        bool isnull = false;
        return heap_modify_tuple_by_cols(tuple, c->desc, 1, &column, &v, &isnull);
    });
}

}  // namespace
}  // namespace virtuoso::audit

// Runs for every row written: the path of a statement's second and later rows calls nothing
// that can raise an error, so it needs no pg_call (only the cache's building and a copy do).
VIRTUOSO_TRIGGER_FUNCTION(virtuoso_updated_at_trigger) {
    auto *c = static_cast<audit::UpdatedAtCache *>(fcinfo->flinfo->fn_extra);
    if (!audit::updated_at_cache_fits(c, fcinfo))
        c = pg::pg_call([fcinfo] { return audit::updated_at_cache(fcinfo); });
    auto *trig = reinterpret_cast<TriggerData *>(fcinfo->context);
    if (TRIGGER_FIRED_BY_INSERT(trig->tg_event) &&
        !heap_attisnull(trig->tg_trigtuple, c->attnum, c->desc))
        return PointerGetDatum(trig->tg_trigtuple);  // an INSERT that gives the time keeps it
    TimestampTz now = c->clock ? GetCurrentTimestamp() : GetCurrentTransactionStartTimestamp();
    Datum value = TimestampTzGetDatum(now);
    if (c->type == TIMESTAMPOID) {
        if (!c->has_converted || c->converted != now) {
            c->timestamp = pg::pg_call([now] {
                return DirectFunctionCall1(timestamptz_timestamp, TimestampTzGetDatum(now));
            });
            c->converted = now;
            c->has_converted = true;
        }
        value = c->timestamp;
    }
    return PointerGetDatum(audit::stamp_row(c, trig, value));
}

VIRTUOSO_FUNCTION(virtuoso_enable_audit) {
    Oid relid = audit::regclass_arg(fcinfo, 0, "target_table");
    bool include_old = PG_ARGISNULL(2) ? true : PG_GETARG_BOOL(2);
    auto facts = audit::check_table(relid, "enable audit on");
    std::string table = pg::qualified_relation_name(relid);
    if (pg::pg_call(
            [relid] { return get_rel_namespace(relid) == get_namespace_oid("virtuoso", true); }))
        throw UserError(
            ERRCODE_WRONG_OBJECT_TYPE,
            fmt::format("cannot enable audit on \"{}\": it belongs to db_virtuoso", table),
            "The audit trail would write into itself.");
    if (!facts.has_identity_index && facts.replident != 'f')
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        fmt::format("table \"{}\" has no primary key or replica identity", table),
                        "The audit trail identifies each row by its key.",
                        "Add a primary key, or set REPLICA IDENTITY USING INDEX (a unique index) "
                        "or REPLICA IDENTITY FULL.");
    std::string args = include_old ? "'t'" : "'f'";
    if (!PG_ARGISNULL(1)) {
        // Column names, each an existing column of the table.
        pg::InternalSql spi;
        auto r = spi.execute(
            "SELECT c.name, c.name IS NULL, EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid"
            "   = $1::oid AND a.attname = c.name AND a.attnum > 0 AND NOT a.attisdropped)"
            " FROM unnest($2::text[]) AS c(name)",
            {std::to_string(relid), audit::arg_as_text(fcinfo, 1)});
        if (r.rows.empty())
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "columns must not be empty", "",
                            "Pass NULL to record every column.");
        for (const auto &row : r.rows) {
            if (row[1] == "t")
                throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "columns must not contain NULL");
            if (row[2] != "t")
                throw UserError(ERRCODE_UNDEFINED_COLUMN,
                                fmt::format("column \"{}\" of \"{}\" does not exist",
                                            row[0].value_or(""), table));
            args += ", " + pg::quote_literal(*row[0]);
        }
    }
    audit::check_trigger_names(relid, table, "virtuoso.audit_trigger()",
                               {"virtuoso_audit", "virtuoso_audit_truncate"});
    audit::run_ddl({
        "DROP TRIGGER IF EXISTS virtuoso_audit ON " + table,
        "DROP TRIGGER IF EXISTS virtuoso_audit_truncate ON " + table,
        fmt::format("CREATE TRIGGER virtuoso_audit AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH "
                    "ROW EXECUTE FUNCTION virtuoso.audit_trigger({})",
                    table, args),
        fmt::format("CREATE TRIGGER virtuoso_audit_truncate AFTER TRUNCATE ON {} FOR EACH "
                    "STATEMENT EXECUTE FUNCTION virtuoso.audit_trigger({})",
                    table, args),
    });
    if (facts.relkind == RELKIND_PARTITIONED_TABLE)
        audit::set_partition_truncate_triggers(relid, args, true);
    PG_RETURN_VOID();
}

VIRTUOSO_FUNCTION(virtuoso_disable_audit) {
    Oid relid = audit::regclass_arg(fcinfo, 0, "target_table");
    audit::check_table(relid, "disable audit on");
    std::string table = pg::qualified_relation_name(relid);
    audit::check_trigger_names(relid, table, "virtuoso.audit_trigger()",
                               {"virtuoso_audit", "virtuoso_audit_truncate"});
    pg::InternalSql spi;
    auto found = spi.scalar(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::oid"
        " AND tgname IN ('virtuoso_audit', 'virtuoso_audit_truncate')",
        {std::to_string(relid)});
    if (found.value_or("0") == "0") {
        pg::report(NOTICE, fmt::format("table \"{}\" is not audited", table));
        PG_RETURN_VOID();
    }
    audit::run_ddl({"DROP TRIGGER IF EXISTS virtuoso_audit ON " + table,
                    "DROP TRIGGER IF EXISTS virtuoso_audit_truncate ON " + table});
    audit::drop_partition_truncate_triggers(relid);
    PG_RETURN_VOID();
}

// Event trigger (ddl_command_end of CREATE TABLE and ALTER TABLE): a partition created or
// attached below an audited table gets its TRUNCATE trigger, a detached one loses it.  The
// audited tables are those with a row trigger virtuoso_audit of their own (not cloned)
// above a table the command created or altered (ATTACH PARTITION reports the partitioned
// table).
VIRTUOSO_TRIGGER_FUNCTION(virtuoso_audit_new_partitions) {
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        throw UserError(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                        "audit_new_partitions() must be called as an event trigger");
    if (pg::InternalSql::active()) return PointerGetDatum(nullptr);  // the extension's own DDL
    std::vector<std::pair<Oid, std::string>> audited;
    std::vector<std::string> orphans;
    {
        pg::InternalSql spi;
        // A partition detached from an audited table lost its cloned row trigger: its TRUNCATE
        // trigger goes too (looked for when the command altered a partitioned table).
        auto o = spi.execute(
            "SELECT t.tgrelid::oid::text FROM pg_trigger t"
            " WHERE t.tgname = 'virtuoso_audit_truncate'"
            "  AND t.tgfoid = 'virtuoso.audit_trigger()'::regprocedure"
            "  AND NOT EXISTS (SELECT FROM pg_trigger r WHERE r.tgrelid = t.tgrelid"
            "                  AND r.tgname = 'virtuoso_audit')"
            "  AND EXISTS (SELECT FROM pg_event_trigger_ddl_commands() c"
            "              JOIN pg_class k ON k.oid = c.objid"
            "              WHERE c.classid = 'pg_class'::regclass AND k.relkind = 'p')");
        for (const auto &row : o.rows)
            orphans.push_back(
                "DROP TRIGGER IF EXISTS virtuoso_audit_truncate ON " +
                pg::qualified_relation_name(static_cast<Oid>(std::stoul(row[0].value_or("0")))));
        auto r = spi.execute(
            "SELECT DISTINCT t.tgrelid::oid::text, pg_catalog.encode(t.tgargs, 'hex')"
            " FROM pg_event_trigger_ddl_commands() c,"
            "  LATERAL pg_partition_ancestors(c.objid) a"
            " JOIN pg_trigger t ON t.tgrelid = a.relid AND t.tgname = 'virtuoso_audit'"
            "  AND t.tgparentid = 0 AND t.tgfoid = 'virtuoso.audit_trigger()'::regprocedure"
            " WHERE c.classid = 'pg_class'::regclass AND c.objsubid = 0"
            "  AND c.object_type = 'table'");
        for (const auto &row : r.rows)
            audited.emplace_back(static_cast<Oid>(std::stoul(row[0].value_or("0"))),
                                 audit::trigger_args_sql(row[1].value_or("")));
    }
    if (!orphans.empty()) audit::run_ddl(orphans);
    for (const auto &[root, args] : audited)
        audit::set_partition_truncate_triggers(root, args, false);
    return PointerGetDatum(nullptr);
}

VIRTUOSO_FUNCTION(virtuoso_audit_history) {
    Oid relid = audit::regclass_arg(fcinfo, 0, "target_table");
    bool owner = pg::pg_call([relid] {
        if (get_rel_relkind(relid) == '\0')
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                            errmsg("relation with OID %u does not exist", relid)));
        return pg_class_ownercheck(relid, GetUserId());
    });
    if (!owner)
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        fmt::format("permission denied to read the audit history of \"{}\"",
                                    pg::qualified_relation_name(relid)),
                        "Only the owner of the table (or a member of its owning role) can.");
    pg::pg_call([] { audit::flush_pending(); });  // this transaction's latest rows too
    std::vector<pg::Row> rows;
    {
        migrate::AsExtensionOwner as_owner;
        pg::InternalSql spi;
        rows = spi.execute(
                      "SELECT * FROM virtuoso.audit_log"
                      " WHERE relid IN (SELECT relid FROM pg_partition_tree($1::oid::regclass)"
                      "                 UNION ALL SELECT $1::oid)"
                      "   AND ($2::jsonb IS NULL OR key = $2::jsonb) ORDER BY id",
                      {std::to_string(relid), audit::arg_as_text(fcinfo, 1)})
                   .rows;
    }
    return pg::return_rows(fcinfo, rows);
}

VIRTUOSO_FUNCTION(virtuoso_enable_updated_at) {
    Oid relid = audit::regclass_arg(fcinfo, 0, "target_table");
    pg::Value column = pg::text_arg(fcinfo, 1);
    if (!column) throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "column_name must not be NULL");
    bool clock = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
    audit::check_table(relid, "keep updated_at of");
    std::string table = pg::qualified_relation_name(relid);
    pg::InternalSql spi;
    auto r = spi.execute(
        "SELECT format_type(a.atttypid, NULL), a.attgenerated::text,"
        "  format_type(CASE WHEN t.typbasetype = 0 THEN t.oid ELSE t.typbasetype END, NULL)"
        " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = $1::oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
        {std::to_string(relid), column});
    if (r.empty())
        throw UserError(ERRCODE_UNDEFINED_COLUMN,
                        fmt::format("column \"{}\" of \"{}\" does not exist", *column, table));
    const std::string base = r.rows[0][2].value_or("");
    if (base != "timestamp with time zone" && base != "timestamp without time zone")
        throw UserError(ERRCODE_DATATYPE_MISMATCH,
                        fmt::format("column \"{}\" of \"{}\" is of type {}, not a timestamp",
                                    *column, table, r.rows[0][0].value_or("?")));
    if (!r.rows[0][1].value_or("").empty())
        throw UserError(
            ERRCODE_INVALID_PARAMETER_VALUE,
            fmt::format("column \"{}\" of \"{}\" is a generated column", *column, table));
    audit::check_trigger_names(relid, table, "virtuoso.updated_at_trigger()",
                               {"virtuoso_updated_at"});
    audit::run_ddl({
        "DROP TRIGGER IF EXISTS virtuoso_updated_at ON " + table,
        fmt::format("CREATE TRIGGER virtuoso_updated_at BEFORE INSERT OR UPDATE ON {} FOR EACH "
                    "ROW EXECUTE FUNCTION virtuoso.updated_at_trigger({}, {})",
                    table, pg::quote_literal(*column), clock ? "'clock'" : "'transaction'"),
    });
    PG_RETURN_VOID();
}
