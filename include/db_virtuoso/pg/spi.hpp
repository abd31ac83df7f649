// RAII over SPI, with results copied into C++ memory before SPI lets go of them.
#pragma once

#include "db_virtuoso/pg/guard.hpp"

namespace virtuoso::pg {

using Value = std::optional<std::string>;  // a column value in text form; nullopt is NULL

struct SpiResult {
    std::vector<std::string> columns;
    std::vector<std::vector<Value>> rows;
    uint64_t processed = 0;

    bool empty() const { return rows.empty(); }
    // The first column of the first row; nullopt when there is no row or it is NULL.
    Value scalar() const { return rows.empty() || rows[0].empty() ? Value{} : rows[0][0]; }
    // Index of a column by name, or -1.
    int column(std::string_view name) const;
};

// A parameter of a query: its text form, passed as type `text` (cast in SQL where needed).
using Param = Value;

class Spi {
  public:
    // keep_plans: prepare each distinct SQL text once per session and keep the plan (for
    // the extension's own fixed SQL; PostgreSQL revalidates kept plans after DDL).
    explicit Spi(bool keep_plans = false);
    ~Spi();
    Spi(const Spi &) = delete;
    Spi &operator=(const Spi &) = delete;

    // Runs sql with $1.. bound to params (all of type text).  max_rows 0 = all rows.
    SpiResult execute(const std::string &sql, const std::vector<Param> &params = {},
                      bool read_only = false, long max_rows = 0);
    // Convenience: the scalar result of a query.
    Value scalar(const std::string &sql, const std::vector<Param> &params = {},
                 bool read_only = false);

  private:
    bool connected_ = false;
    bool keep_plans_ = false;
};

// One statement planned once (on its first execute) and kept across transactions until
// this object dies, for a statement run many times with other parameters (one per batch):
// no parsing and planning per run.  PostgreSQL replans it after DDL on what it uses, and
// chooses between custom and generic plans as for any prepared statement.
class PreparedStatement {
  public:
    explicit PreparedStatement(std::string sql) : sql_(std::move(sql)) {}
    ~PreparedStatement();
    PreparedStatement(const PreparedStatement &) = delete;
    PreparedStatement &operator=(const PreparedStatement &) = delete;
    // Runs it within an open SPI connection, $1.. bound to params (text), always as many
    // as at the first run.
    SpiResult execute(Spi &spi, const std::vector<Param> &params = {}, bool read_only = false,
                      long max_rows = 0);

  private:
    std::string sql_;
    SPIPlanPtr plan_ = nullptr;
    int nargs_ = 0;
};

// Sets GUCs for the rest of the current (sub)transaction and restores them on scope exit,
// e.g. a pinned search_path for the extension's own SQL.
class GucScope {
  public:
    GucScope();
    ~GucScope();
    GucScope(const GucScope &) = delete;
    GucScope &operator=(const GucScope &) = delete;
    void set(const char *name, const std::string &value);
    // Keeps the statements run in this scope out of pg_stat_statements (see
    // untrack_statements_of_transaction).
    void untrack_statements();

  private:
    int nest_level_;
};

// The extension's own statements (its log writes, its scheduler's queries) stay out of
// pg_stat_statements, when that is loaded: they are not the users' workload, which the index
// advisor and the migration gate read and a DBA ranks.  For the rest of the transaction;
// plain PostgreSQL style (errors ereport()ed), for the runner worker.
void untrack_statements_of_transaction();

// The extension's own SQL: SPI with search_path pinned to pg_catalog (then pg_temp), so that
// objects a user creates cannot capture what internal queries call.  Do not run user
// statements (or the statement runner, which copies the settings) inside one.
class InternalSql : public Spi {
  public:
    // keep_plans = false for one-off SQL texts (DDL naming a new object): a kept plan each
    // would leak for the life of the session.
    explicit InternalSql(bool keep_plans = true) : Spi(keep_plans) {
        guc_.set("search_path", "pg_catalog, pg_temp");
        guc_.untrack_statements();
        ++depth_;
    }
    ~InternalSql() { --depth_; }
    // Whether the extension's own SQL is running (hooks that watch users' statements skip it).
    static bool active() { return depth_ > 0; }

  private:
    GucScope guc_;
    static inline int depth_ = 0;
};

// Plain PostgreSQL style, for a negative SPI result code: a clear 0A000 for what user SQL
// causes (transaction control, COPY with the client), an internal error for anything else.
// `where` completes "cannot run ..." ("here", "in execute_autonomous"); `transaction_detail`
// says in which transaction the statements run.
void raise_for_spi_result(int rc, const char *where, const char *transaction_detail);

// Sleeps, waking up for interrupts (cancel, terminate, postmaster death).
void interruptible_sleep(long milliseconds);

// quote_ident / quote_literal as PostgreSQL does them.
std::string quote_identifier(const std::string &ident);
std::string quote_literal(const std::string &literal);
// An oid[] literal ("{1,2}") to pass OIDs as one text parameter cast to oid[].
std::string oid_array(const std::vector<Oid> &oids);
// schema-qualified, quoted name of a relation.
std::string qualified_relation_name(Oid relid);

// Text of a SQL-callable argument, or nullopt when NULL.
Value text_arg(FunctionCallInfo fcinfo, int argno);
Datum text_datum(const std::string &s);

}  // namespace virtuoso::pg
