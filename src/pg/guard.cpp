#include "db_virtuoso/pg/guard.hpp"

extern "C" {
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/resowner.h"
}

namespace virtuoso::pg {

ErrorData *catch_pg_error(void (*fn)(void *), void *arg) {
    // PG_END_TRY restores these too; restoring them here states the contract explicitly.
    sigjmp_buf *const saved_exception_stack = PG_exception_stack;
    ErrorContextCallback *const saved_context_stack = error_context_stack;
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData *volatile error = nullptr;
    PG_TRY();
    { fn(arg); }
    PG_CATCH();
    {
        // The copy must outlive contexts that unwinding destroys (an SPI procedure context,
        // say) until guarded() or a subtransaction rollback has dealt with it.
        MemoryContextSwitchTo(IsTransactionState() ? TopTransactionContext : caller_context);
        error = CopyErrorData();
        FlushErrorState();
        MemoryContextSwitchTo(caller_context);
    }
    PG_END_TRY();
    PG_exception_stack = saved_exception_stack;
    error_context_stack = saved_context_stack;
    return error;
}

void capture_current_exception(PendingError &out) noexcept {
    // pstrdup may itself fail only when out of memory; that error then wins, which is fine.
    try {
        throw;
    } catch (const PgError &e) {
        out.pg = e.data();
    } catch (const UserError &e) {
        out.sqlstate = e.sqlstate();
        out.message = pstrdup(e.what());
        out.detail = e.detail().empty() ? nullptr : pstrdup(e.detail().c_str());
        out.hint = e.hint().empty() ? nullptr : pstrdup(e.hint().c_str());
    } catch (const std::bad_alloc &) {
        out.sqlstate = ERRCODE_OUT_OF_MEMORY;
        out.message = nullptr;
    } catch (const std::exception &e) {
        out.sqlstate = ERRCODE_INTERNAL_ERROR;
        out.message = pstrdup(e.what());
    } catch (...) {
        out.sqlstate = ERRCODE_INTERNAL_ERROR;
        out.message = nullptr;
    }
}

void rethrow_error(ErrorData *edata) {
    // ReThrowError keeps the ErrorData's own idea of where the report goes.  An error parsed
    // from a runner worker's message (pq_parse_errornotice) has output_to_client and
    // output_to_server false, so re-raised as is it would reach nobody: the client would
    // see success.  Decide here as errstart() does for a new ERROR, for every rethrow.
    edata->elevel = ERROR;  // a worker's FATAL is an ERROR for the caller
    edata->output_to_server = log_min_messages <= ERROR;
    edata->output_to_client = whereToSendOutput == DestRemote;
    ReThrowError(edata);
}

void raise_pending(const PendingError &err, const char *function_name) {
    if (err.pg != nullptr) rethrow_error(err.pg);
    if (err.sqlstate == ERRCODE_OUT_OF_MEMORY && err.message == nullptr)
        ereport(ERROR,
                (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory in %s", function_name)));
    ereport(ERROR, (errcode(err.sqlstate),
                    err.message ? errmsg_internal("%s", err.message)
                                : errmsg_internal("unexpected internal error in %s", function_name),
                    err.detail ? errdetail_internal("%s", err.detail) : 0,
                    err.hint ? errhint("%s", err.hint) : 0));
    pg_unreachable();
}

bool is_operator_intervention(int sqlstate) {
    return ERRCODE_TO_CATEGORY(sqlstate) == ERRCODE_OPERATOR_INTERVENTION;  // 57014 too
}

bool ends_the_call(int sqlstate) {
    int category = ERRCODE_TO_CATEGORY(sqlstate);
    return is_operator_intervention(sqlstate) ||
           category == ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES) ||
           category == ERRCODE_TO_CATEGORY(ERRCODE_PROGRAM_LIMIT_EXCEEDED);
}

ErrorData *copy_error(const ErrorData *error, MemoryContext context) {
    return pg_call([&] {
        MemoryContext caller = MemoryContextSwitchTo(context);
        auto *copy = static_cast<ErrorData *>(palloc(sizeof(ErrorData)));
        *copy = *error;
        // the strings belong to the error's own context: each needs its own copy
        for (char **field :
             {&copy->message, &copy->detail, &copy->detail_log, &copy->hint, &copy->context,
              &copy->backtrace, &copy->schema_name, &copy->table_name, &copy->column_name,
              &copy->datatype_name, &copy->constraint_name, &copy->internalquery})
            if (*field) *field = pstrdup(*field);
        copy->assoc_context = context;
        MemoryContextSwitchTo(caller);
        return copy;
    });
}

void report(int elevel, const std::string &message) {
    pg_call([&] { ereport(elevel, (errmsg_internal("%s", message.c_str()))); });
}

SubTransaction::SubTransaction()
    : caller_context_(CurrentMemoryContext), caller_owner_(CurrentResourceOwner) {
    pg_call([] { BeginInternalSubTransaction(nullptr); });
    MemoryContextSwitchTo(caller_context_);
}

SubTransaction::~SubTransaction() {
    if (open_) rollback();
}

void SubTransaction::commit() {
    if (!open_) return;
    open_ = false;
    pg_call([] { ReleaseCurrentSubTransaction(); });
    MemoryContextSwitchTo(caller_context_);
    CurrentResourceOwner = caller_owner_;
}

void SubTransaction::rollback() {
    if (!open_) return;
    open_ = false;
    // Rolling back cannot fail short of a FATAL problem; it is what error recovery does.
    RollbackAndReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(caller_context_);
    CurrentResourceOwner = caller_owner_;
}

}  // namespace virtuoso::pg
