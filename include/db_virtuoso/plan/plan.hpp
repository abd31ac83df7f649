// Pure C++ (no postgres.h): orchestrated implementation plans (execute_database_implementation).
// Parses and checks a plan, turns structured definitions into SQL, derives the obvious
// rollbacks and generates the data-access layer of a scaffold step.  Every problem of a plan
// is collected, so that a refusal lists them all before anything runs.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace virtuoso::plan {

enum class StepType { CreateTable, AlterTable, CreateIndex, MigrateData, Sql, Validate, Scaffold };

// A relation named in a plan: schema optional (then the search_path decides).
struct QualifiedName {
    std::optional<std::string> schema;
    std::string name;
    std::string sql() const;  // quoted, schema-qualified when a schema is given
    bool operator==(const QualifiedName &o) const { return schema == o.schema && name == o.name; }
};

struct Step {
    int number = 0;  // 1-based position in the plan
    std::string name;
    StepType type = StepType::Sql;
    std::string type_name;
    // The SQL the step runs (generated from a structured definition, or as given).  Empty
    // for a scaffold step, whose SQL depends on the table and is generated when it runs.
    std::string sql;
    std::optional<std::string> rollback;
    bool rollback_derived = false;
    bool generated = false;     // sql generated from a structured definition
    bool transactional = true;  // false: statement by statement, only from the procedure
    std::optional<std::string> validation_rules;  // validate: the rules (JSON array)
    std::optional<QualifiedName> creates_table;   // create_table: the table it creates
    std::optional<QualifiedName> scaffold_table;  // scaffold: the table
    std::string scaffold_schema;                  // scaffold: the schema of the functions
};

struct PlanOptions {
    std::string lint = "error";   // "error" | "warn" | "off": what a lint error does
    bool undo_on_failure = true;  // undo the steps done when one fails
    bool preserve_data_on_undo = true;
    bool prechecks = true;
    std::optional<std::string> lock_timeout, statement_timeout;
    std::optional<int> max_retries;
    double max_connection_ratio = 0.9;  // pre-check: connections in use / max_connections
    double max_replication_lag_seconds = 300;
};

struct Plan {
    std::string name;
    std::vector<Step> steps;
    std::optional<std::string> validation_rules;  // JSON array
    PlanOptions options;
    bool needs_procedure() const;  // a step that cannot run inside a function
};

struct ParseResult {
    // What could be read (steps with a problem may be incomplete): the server adds its own
    // checks of the steps' SQL, so that one refusal lists every problem.
    Plan plan;
    std::vector<std::string> problems;  // every problem found, in plan order
    bool ok() const { return problems.empty(); }
};

// Parses the jsonb text of a plan and checks everything that needs no server.
ParseResult parse_plan(const std::string &json);

// The migration name of a step: "<plan>/<step>".
std::string migration_name(const Plan &plan, const Step &step);

// The obvious rollback of one statement (CREATE TABLE -> DROP TABLE, CREATE INDEX -> DROP
// INDEX CONCURRENTLY, ALTER TABLE ... ADD COLUMN -> DROP COLUMN), or nullopt.
std::optional<std::string> derive_rollback(const std::string &sql);
// The table a "CREATE TABLE name ..." statement creates, as written.
std::optional<QualifiedName> created_table(const std::string &sql);

std::string quote_identifier(const std::string &ident);
std::string quote_literal(const std::string &literal);

// A table as the catalog describes it, for the scaffold.
struct ColumnShape {
    std::string name;
    std::string type;          // format_type(), schema-qualified where needed
    bool has_default = false;  // DEFAULT, identity or generated: left out of insert
    bool generated = false;    // GENERATED ALWAYS AS: never written
};
struct TableShape {
    QualifiedName table;  // schema always set
    std::vector<ColumnShape> columns;
    std::vector<std::string> key;  // primary key columns, in key order
    // per key column: the equality operator of its type's default btree opclass, as
    // OPERATOR(schema.op)
    std::vector<std::string> key_equality;
};

struct Scaffold {
    std::string sql;                     // CREATE FUNCTION ... ; COMMENT ON ...; REVOKE ...
    std::string rollback;                // DROP FUNCTION ...
    std::vector<std::string> functions;  // signatures generated
};
// The typed data-access layer of a table: get_<t>(key), insert_<t>(...), update_<t>(key,
// ...), delete_<t>(key), in `schema` (created when missing, owned by the caller); nullopt and
// *error when it cannot be generated (no primary key, names too long).
std::optional<Scaffold> scaffold_sql(const TableShape &table, const std::string &schema,
                                     bool create_schema, std::string *error);

}  // namespace virtuoso::plan
