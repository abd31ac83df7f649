// Pure C++ (no postgres.h): the rules of virtuoso.validate_data_integrity.
//
// parse_rules() turns the JSON array a user passes into checked Rule values (every problem is
// a RuleError naming the rule and the field); build_sql() writes the read-only queries of a
// typed rule from identifiers the server has already resolved and quoted; judge() turns what
// those queries returned into a status and a message.  Nothing here touches the server.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace virtuoso::integrity {

enum class RuleType {
    Query,
    NotNull,
    Unique,
    ForeignKey,
    AcceptedValues,
    RowCount,
    Range,
    Expression,
    Freshness
};
enum class Operator { Eq, Le, Ge, Lt, Gt };
enum class Severity { Error, Warn };

std::string_view type_name(RuleType type);
std::string_view operator_text(Operator op);

struct Rule {
    std::string name;
    RuleType type = RuleType::Query;
    Severity severity = Severity::Error;
    std::optional<std::string> timeout;  // interval text, checked by the server
    std::optional<std::string> where;    // boolean SQL over the rows of `table` (typed rules)

    // query rules
    std::string query;
    int64_t expected = 0;
    Operator op = Operator::Eq;

    // typed rules
    std::string table;                            // as the user wrote it, resolved by the server
    std::vector<std::string> columns;             // column names, exactly as in the catalog
    std::string references;                       // foreign_key: the parent table
    std::vector<std::string> referenced_columns;  // foreign_key
    std::vector<std::string> values;              // accepted_values, in text form
    std::optional<std::string> min, max;          // range (text form), row_count (integers)
    std::string expression;                       // expression
    std::string max_age;                          // freshness: interval text
};

// A malformed rule set; the message names the rule and the field.
class RuleError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Parses the JSON array of rules.  Throws RuleError.
std::vector<Rule> parse_rules(std::string_view json);

// Checks that a SQL fragment (an expression or a filter) cannot reach outside the
// parentheses it is put in: balanced parentheses and no statement separator.  Returns the
// reason when it does not hold.
std::optional<std::string> fragment_problem(std::string_view sql);

// A comparison operator the server looked up in the catalog (the member of the default
// B-tree operator class of a column's type, as PostgreSQL's RI triggers do), never through
// search_path.  Operands whose type differs from the operator's declared input type are
// cast to it first.
struct ResolvedOperator {
    std::string name;        // OPERATOR(schema.op), schema quoted as needed
    std::string left_cast;   // schema-qualified type to cast the left operand to, or empty
    std::string right_cast;  // the same for the right operand
};

// "(left OPERATOR(s.op) right)", with the casts; parenthesised because every OPERATOR()
// form has the same precedence.
std::string apply(const ResolvedOperator &op, const std::string &left, const std::string &right);

// A column of the rule's table, as the server resolved it.
struct ResolvedColumn {
    std::string name;  // quoted identifier
    std::string type;  // schema-qualified type name usable in CAST(... AS type)
    // Operators the rule needs, comparing the column with a value of its own type (eq for
    // unique and accepted_values, lt and gt for range).  For a foreign key's parent column,
    // eq compares the parent column (left) with the child column (right).
    std::optional<ResolvedOperator> eq, lt, gt;
};

// The identifiers of a typed rule as the server resolved and quoted them.
struct Resolved {
    std::string table;                    // schema-qualified, quoted
    std::vector<ResolvedColumn> columns;  // rule.columns in order
    std::string parent;                   // foreign_key: schema-qualified, quoted
    std::vector<ResolvedColumn> parent_columns;
};

// The queries of a typed rule.  `count` returns one row: for most types one bigint (the
// offending rows, or the row count for row_count); for freshness (newest text, age_s bigint,
// max_age_s bigint, fresh bool).  `sample` (may be empty) returns up to sample_size rows of
// one text column describing offending rows or values.  $n parameters are text.
struct RuleSql {
    std::string count;
    std::string sample;
    std::vector<std::optional<std::string>> params;
};

RuleSql build_sql(const Rule &rule, const Resolved &resolved, int sample_size);

// What the queries of a rule returned.
struct Measurement {
    std::optional<int64_t> count;            // the count, or the query rule's value
    std::optional<std::string> newest;       // freshness
    std::optional<int64_t> age_s;            // freshness
    int64_t max_age_s = 0;                   // freshness
    bool fresh = false;                      // freshness
    std::vector<std::string> sample;         // offending rows or values
    std::optional<std::string> sample_note;  // why there is no sample (a privilege)
};

struct Verdict {
    std::string status;  // PASS, FAIL or WARN
    int64_t result_count = 0;
    int64_t expected_count = 0;
    std::string message;
};

Verdict judge(const Rule &rule, const Resolved &resolved, const Measurement &m);

bool compare(Operator op, int64_t actual, int64_t expected);

}  // namespace virtuoso::integrity
