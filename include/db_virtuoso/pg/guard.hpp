// The C++ / PostgreSQL error boundary.
//
// PostgreSQL reports errors with longjmp, C++ with exceptions; neither may cross the other.
//  * Every SQL-callable entry point runs its body through guarded(): a C++ exception is
//    caught, its text copied, the catch block left, and only then ereport(ERROR) is raised.
//  * C++ code that holds objects with destructors calls PostgreSQL through pg_call(): a
//    PostgreSQL error raised inside is caught with PG_TRY, copied, flushed, and rethrown as
//    a PgError exception.  The transaction is then in an error state: the exception must end
//    in guarded() (which rethrows the original error) or in a SubTransaction rollback.
#pragma once

#include "db_virtuoso/pg/postgres.hpp"

namespace virtuoso::pg {

// An error a user can cause, raised from C++ code, with its SQLSTATE.
class UserError : public std::exception {
  public:
    UserError(int sqlstate, std::string message, std::string detail = {}, std::string hint = {})
        : sqlstate_(sqlstate),
          message_(std::move(message)),
          detail_(std::move(detail)),
          hint_(std::move(hint)) {}
    const char *what() const noexcept override { return message_.c_str(); }
    int sqlstate() const { return sqlstate_; }
    const std::string &detail() const { return detail_; }
    const std::string &hint() const { return hint_; }

  private:
    int sqlstate_;
    std::string message_, detail_, hint_;
};

// A PostgreSQL error caught by pg_call(); owns nothing C++-side: the ErrorData lives in the
// memory context that was current when pg_call() was entered.
class PgError : public std::exception {
  public:
    explicit PgError(ErrorData *data) : data_(data) {}
    const char *what() const noexcept override {
        return data_ && data_->message ? data_->message : "PostgreSQL error";
    }
    ErrorData *data() const { return data_; }
    int sqlstate() const { return data_ ? data_->sqlerrcode : ERRCODE_INTERNAL_ERROR; }

  private:
    ErrorData *data_;
};

// Runs fn(arg) inside PG_TRY and returns the PostgreSQL ERROR raised inside it (copied,
// error state flushed), or nullptr.  fn must not let a C++ exception escape: a C++ unwind
// through PG_TRY would leave PG_exception_stack pointing into a dead frame.  On an error the
// caller's PG_exception_stack, error_context_stack and memory context are restored.
ErrorData *catch_pg_error(void (*fn)(void *), void *arg);

// Runs f (plain calls into PostgreSQL) and turns a PostgreSQL ERROR raised inside it into a
// PgError.  Safe by construction against C++ exceptions in f, including a PgError from a
// pg_call nested in f: the thunk catches them inside the PG_TRY region and pg_call rethrows
// them only after PG_END_TRY.  (f must still not keep C++ objects with destructors alive
// across a direct PostgreSQL call that may ereport: a longjmp skips their destructors.)
template <typename F>
auto pg_call(F &&f) -> decltype(f()) {
    using Result = decltype(f());
    using Stored = std::conditional_t<std::is_void_v<Result>, bool, Result>;
    struct Call {
        std::remove_reference_t<F> *fn;
        std::optional<Stored> result;
        std::exception_ptr exception;
    } call{&f, std::nullopt, nullptr};
    auto thunk = [](void *p) {
        auto *c = static_cast<Call *>(p);
        try {
            if constexpr (std::is_void_v<Result>) {
                (*c->fn)();
                c->result.emplace(true);
            } else {
                c->result.emplace((*c->fn)());
            }
        } catch (...) {
            c->exception = std::current_exception();
        }
    };
    if (ErrorData *e = catch_pg_error(thunk, &call)) throw PgError(e);
    if (call.exception) std::rethrow_exception(call.exception);
    if constexpr (!std::is_void_v<Result>) return std::move(*call.result);
}

// Raises the error described by the current exception as a PostgreSQL ERROR.  Must be
// called after the catch block that caught it has ended (see guarded()).
struct PendingError {
    ErrorData *pg = nullptr;  // rethrown as is
    int sqlstate = 0;
    char *message = nullptr;
    char *detail = nullptr;
    char *hint = nullptr;
};
void capture_current_exception(PendingError &out) noexcept;
// Re-raises a saved (CopyErrorData) or received (from a runner worker) error as an ERROR
// that reaches the client and the log, whatever its ErrorData said.  The only way this
// extension rethrows an ErrorData.
[[noreturn]] void rethrow_error(ErrorData *edata);
[[noreturn]] void raise_pending(const PendingError &err, const char *function_name);

// Runs the body of a SQL-callable function.  The body returns a Datum.
template <typename Body>
Datum guarded(const char *function_name, Body &&body) {
    PendingError pending;
    try {
        return body();
    } catch (...) {
        capture_current_exception(pending);
    }
    raise_pending(pending, function_name);
}

// Raises 55000 when the extension's SQL objects in this database are of another version
// than the loaded library (a new library installed, ALTER EXTENSION ... UPDATE not yet
// run): the library's queries would otherwise meet tables and columns it does not know.
// Checked once per backend.
void require_matching_sql_version();

// Whether an error with this SQLSTATE belongs to the whole call, never to one item of it
// that a loop may report and skip: a cancel (statement_timeout, pg_cancel_backend), a
// shutdown, running out of resources or past a limit.
bool ends_the_call(int sqlstate);
// Of those, the operator's own (class 57): a cancel (statement_timeout, pg_cancel_backend) or
// a shutdown, which end even work whose other failures are only reported.
bool is_operator_intervention(int sqlstate);

// A copy of a saved error in `context`: one that must outlive the transaction it was caught in
// (a procedure that records the error and commits before raising it again).
ErrorData *copy_error(const ErrorData *error, MemoryContext context);

// Sends a NOTICE (or another level below ERROR) to the client.
void report(int elevel, const std::string &message);

// A subtransaction that is rolled back unless commit() is called.  Resource owner and
// memory context of the caller are restored either way.
class SubTransaction {
  public:
    SubTransaction();
    ~SubTransaction();
    SubTransaction(const SubTransaction &) = delete;
    SubTransaction &operator=(const SubTransaction &) = delete;
    void commit();
    void rollback();

  private:
    MemoryContext caller_context_;
    ResourceOwner caller_owner_;
    bool open_ = true;
};

}  // namespace virtuoso::pg

#define VIRTUOSO_FUNCTION_BODY(name, check_version)                          \
    static Datum name##_impl(FunctionCallInfo fcinfo);                       \
    extern "C" {                                                             \
    PG_FUNCTION_INFO_V1(name);                                               \
    Datum name(PG_FUNCTION_ARGS) {                                           \
        return virtuoso::pg::guarded(#name, [fcinfo] {                       \
            if (check_version) virtuoso::pg::require_matching_sql_version(); \
            return name##_impl(fcinfo);                                      \
        });                                                                  \
    }                                                                        \
    }                                                                        \
    static Datum name##_impl(FunctionCallInfo fcinfo)

// Declares a SQL-callable C function whose body runs inside the guard, after checking that
// the extension's SQL objects in this database are of the library's version:
//   VIRTUOSO_FUNCTION(my_function) { ...C++...; return Datum; }
#define VIRTUOSO_FUNCTION(name) VIRTUOSO_FUNCTION_BODY(name, true)
// The same without the version check, for trigger functions that must never block users'
// statements (an event trigger fires on every DDL of the database).
#define VIRTUOSO_TRIGGER_FUNCTION(name) VIRTUOSO_FUNCTION_BODY(name, false)
