// Procedure forms (CALL) for work that must not run while the caller holds a snapshot.
//
// A SQL function always runs inside its calling statement, which holds a snapshot until it
// ends: a statement that waits for every older snapshot (CREATE INDEX CONCURRENTLY and the
// like) would wait for its own caller.  A C procedure called outside a transaction block
// can instead commit the calling transaction first and then run with no snapshot at all.
#pragma once

#include "db_virtuoso/pg/guard.hpp"

namespace virtuoso::pg {

// Commits the transaction that called the procedure (everything done before the CALL
// included) and starts a new one, holding no snapshot.  Raises 25001 when the CALL is
// atomic (inside a transaction block, a function or an atomic procedure).  Copy the
// procedure's arguments before calling this.  May be called again later in the same
// procedure, e.g. after catalog look-ups, to drop the snapshots they took.
void commit_caller(FunctionCallInfo fcinfo, const char *procedure);

// In a procedure that committed its caller, SPI re-creates a snapshot for the CALL's portal
// at the procedure's first query (EnsurePortalSnapshotExists) and keeps it until the portal
// ends.  While a SnapshotFreeProcedure is alive, release_procedure_snapshot() may drop it
// again: the procedure's own C code copies every query result out, so nothing uses it
// between queries.  Create one right after commit_caller, in a procedure's entry point only.
class SnapshotFreeProcedure {
  public:
    SnapshotFreeProcedure() { ++depth_; }
    ~SnapshotFreeProcedure() { --depth_; }
    SnapshotFreeProcedure(const SnapshotFreeProcedure &) = delete;
    SnapshotFreeProcedure &operator=(const SnapshotFreeProcedure &) = delete;
    static bool active() { return depth_ > 0; }

  private:
    static inline int depth_ = 0;
};

// Plain PostgreSQL style, for the runner just before it checks for a held snapshot: inside a
// SnapshotFreeProcedure, drops the CALL portal's snapshot when it is the only active one
// (never a snapshot that a running query uses).
void release_procedure_snapshot();

// Drops the catalog snapshot and says whether this backend still holds a snapshot (or an
// xmin) that other transactions' "wait for older snapshots" would wait for.
bool holds_snapshot();

// The result of a procedure with OUT/INOUT parameters: a record of them, in order (NULL
// where the optional is empty; each text converted by its parameter type's input
// function), as ExecuteCallStmt expects.
Datum procedure_result(FunctionCallInfo fcinfo,
                       const std::vector<std::optional<std::string>> &values);

}  // namespace virtuoso::pg
