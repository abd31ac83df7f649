// Procedure forms: commit the caller, hold no snapshot, return OUT parameters.
#include "db_virtuoso/pg/procedure.hpp"

extern "C" {
#include "access/htup_details.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "utils/portal.h"
#include "utils/lsyscache.h"
}

namespace virtuoso::pg {

bool holds_snapshot() {
    // The catalog snapshot is registered (and sets our xmin) whenever a catalog was read;
    // it can be dropped at any time, and must be before anything waits for us.
    InvalidateCatalogSnapshot();
    return HaveRegisteredOrActiveSnapshot() || MyProc->xmin != InvalidTransactionId;
}

void release_procedure_snapshot() {
    if (!SnapshotFreeProcedure::active() || ActivePortal == nullptr) return;
    Snapshot portal_snapshot = ActivePortal->portalSnapshot;
    // EnsurePortalSnapshotExists pushes it only when no snapshot is active, so when it is on
    // top it is the only one: no query of this session is running on it.
    if (portal_snapshot != nullptr && ActiveSnapshotSet() && GetActiveSnapshot() == portal_snapshot) {
        PopActiveSnapshot();
        ActivePortal->portalSnapshot = nullptr;
    }
}

void commit_caller(FunctionCallInfo fcinfo, const char *procedure) {
    bool atomic = fcinfo->context == nullptr || !IsA(fcinfo->context, CallContext) ||
                  castNode(CallContext, fcinfo->context)->atomic;
    if (atomic)
        throw UserError(ERRCODE_ACTIVE_SQL_TRANSACTION,
                        fmt::format("{} must be called outside a transaction block", procedure),
                        "It commits the calling transaction before it starts, so that no "
                        "snapshot of this session is held while it waits.",
                        fmt::format("Run CALL {}(...) on its own, in autocommit mode, not inside "
                                    "BEGIN, a function or a DO block.",
                                    procedure));
    pg_call([] {
        if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
            elog(ERROR, "SPI_connect_ext failed");
        SPI_commit();  // also releases the portal's snapshot (ForgetPortalSnapshots)
        SPI_finish();
    });
    if (holds_snapshot())
        throw UserError(
            ERRCODE_ACTIVE_SQL_TRANSACTION,
            fmt::format("{} cannot release the calling statement's snapshot", procedure),
            "A snapshot is still held after the commit (a cursor or an enclosing "
            "statement keeps it).",
            fmt::format("Run CALL {}(...) as a statement of its own.", procedure));
}

Datum procedure_result(FunctionCallInfo fcinfo,
                       const std::vector<std::optional<std::string>> &values) {
    return pg_call([fcinfo, &values] {
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "procedure result must be a record");
        desc = BlessTupleDesc(desc);
        if (desc->natts != static_cast<int>(values.size()))
            elog(ERROR, "procedure has %d output parameters, %d values given", desc->natts,
                 static_cast<int>(values.size()));
        Datum *datums = static_cast<Datum *>(palloc0(sizeof(Datum) * (values.size() + 1)));
        bool *nulls = static_cast<bool *>(palloc0(sizeof(bool) * (values.size() + 1)));
        for (size_t i = 0; i < values.size(); ++i) {
            nulls[i] = !values[i].has_value();
            if (!values[i]) continue;
            // Through the parameter type's input function: text, uuid, ... alike.
            Oid input_fn, input_param;
            Form_pg_attribute attr = TupleDescAttr(desc, static_cast<int>(i));
            getTypeInputInfo(attr->atttypid, &input_fn, &input_param);
            datums[i] = OidInputFunctionCall(input_fn, const_cast<char *>(values[i]->c_str()),
                                             input_param, attr->atttypmod);
        }
        return HeapTupleGetDatum(heap_form_tuple(desc, datums, nulls));
    });
}

}  // namespace virtuoso::pg
