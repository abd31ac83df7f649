#include "db_virtuoso/integrity/rules.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "db_virtuoso/core/sql_lexer.hpp"

namespace virtuoso::integrity {
namespace {

using nlohmann::json;

struct TypeInfo {
    RuleType type;
    std::string_view name;
    std::vector<std::string_view> fields;  // besides name, type, severity, timeout, where
};

const std::vector<TypeInfo> &types() {
    static const std::vector<TypeInfo> all = {
        {RuleType::Query, "query", {"query", "expected", "operator"}},
        {RuleType::NotNull, "not_null", {"table", "column"}},
        {RuleType::Unique, "unique", {"table", "column", "columns"}},
        {RuleType::ForeignKey,
         "foreign_key",
         {"table", "column", "columns", "references", "referenced_column", "referenced_columns"}},
        {RuleType::AcceptedValues, "accepted_values", {"table", "column", "values"}},
        {RuleType::RowCount, "row_count", {"table", "min", "max"}},
        {RuleType::Range, "range", {"table", "column", "min", "max"}},
        {RuleType::Expression, "expression", {"table", "expression"}},
        {RuleType::Freshness, "freshness", {"table", "column", "max_age"}},
    };
    return all;
}

std::string json_type(const json &v) {
    return v.type_name();
}

// Reads the fields of one rule object, each error naming the rule and the field.
class Fields {
  public:
    Fields(const json &object, std::string label) : object_(object), label_(std::move(label)) {}

    [[noreturn]] void fail(std::string_view field, std::string_view problem) const {
        throw RuleError(fmt::format("{}: field \"{}\" {}", label_, field, problem));
    }

    bool has(std::string_view field) const { return object_.contains(std::string(field)); }

    std::optional<std::string> optional_string(std::string_view field,
                                               bool allow_empty = false) const {
        auto it = object_.find(std::string(field));
        if (it == object_.end()) return std::nullopt;
        if (!it->is_string()) fail(field, fmt::format("must be a string, not {}", json_type(*it)));
        std::string s = it->get<std::string>();
        if (!allow_empty && s.find_first_not_of(" \t\r\n") == std::string::npos)
            fail(field, "must not be empty");
        if (s.find('\0') != std::string::npos) fail(field, "must not contain a NUL character");
        return s;
    }

    std::string string(std::string_view field) const {
        auto s = optional_string(field);
        if (!s) fail(field, "is required");
        return *s;
    }

    std::optional<int64_t> optional_integer(std::string_view field) const {
        auto it = object_.find(std::string(field));
        if (it == object_.end()) return std::nullopt;
        if (it->is_number_integer()) {
            if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX))
                fail(field, "is out of range for a bigint");
            return it->get<int64_t>();
        }
        fail(field, fmt::format("must be an integer, not {}",
                                it->is_number() ? std::string("a fraction") : json_type(*it)));
    }

    // A scalar (number, string, boolean) in the text form SQL input functions take.
    std::optional<std::string> optional_scalar(std::string_view field) const {
        auto it = object_.find(std::string(field));
        if (it == object_.end()) return std::nullopt;
        auto text = scalar_text(*it);
        if (!text)
            fail(field, fmt::format("must be a number, string or boolean, not {}", json_type(*it)));
        return text;
    }

    static std::optional<std::string> scalar_text(const json &v) {
        if (v.is_string()) {
            std::string s = v.get<std::string>();
            if (s.find('\0') != std::string::npos) return std::nullopt;
            return s;
        }
        if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
        if (v.is_number()) return v.dump();
        return std::nullopt;
    }

    // A list of names given either as "single" (one string) or "plural" (array of strings).
    std::vector<std::string> names(std::string_view single, std::string_view plural) const {
        if (has(single) && has(plural))
            fail(plural, fmt::format("cannot be given together with \"{}\"", single));
        if (has(single)) return {string(single)};
        auto it = object_.find(std::string(plural));
        if (it == object_.end())
            throw RuleError(
                fmt::format("{}: field \"{}\" or \"{}\" is required", label_, single, plural));
        if (!it->is_array() || it->empty())
            fail(plural, "must be a non-empty array of column names");
        std::vector<std::string> out;
        std::set<std::string> seen;
        for (const auto &v : *it) {
            if (!v.is_string() || v.get<std::string>().empty() ||
                v.get<std::string>().find('\0') != std::string::npos)
                fail(plural, "must contain only non-empty strings");
            if (!seen.insert(v.get<std::string>()).second)
                fail(plural, fmt::format("names column \"{}\" twice", v.get<std::string>()));
            out.push_back(v.get<std::string>());
        }
        if (out.size() > 32) fail(plural, "names more than 32 columns");
        return out;
    }

    const json &object() const { return object_; }
    const std::string &label() const { return label_; }

  private:
    const json &object_;
    std::string label_;
};

Operator parse_operator(const Fields &f) {
    auto op = f.optional_string("operator");
    if (!op || *op == "=" || *op == "==") return Operator::Eq;
    if (*op == "<=") return Operator::Le;
    if (*op == ">=") return Operator::Ge;
    if (*op == "<") return Operator::Lt;
    if (*op == ">") return Operator::Gt;
    f.fail("operator", fmt::format("must be one of =, <=, >=, <, > (got \"{}\")", *op));
}

void check_fragment(const Fields &f, std::string_view field, const std::string &sql) {
    if (auto problem = fragment_problem(sql)) f.fail(field, *problem);
}

Rule parse_rule(const json &object, size_t index, std::set<std::string> &names) {
    std::string label = fmt::format("rule #{}", index + 1);
    if (!object.is_object())
        throw RuleError(fmt::format("{} must be a JSON object, not {}", label, json_type(object)));
    Rule rule;
    rule.name = Fields(object, label).string("name");
    Fields f(object, fmt::format("rule \"{}\"", rule.name));
    if (!names.insert(rule.name).second)
        throw RuleError(fmt::format("{}: the name is used by more than one rule", f.label()));

    auto type_text = f.optional_string("type");
    if (type_text && f.has("query"))
        f.fail("query",
               "cannot be combined with \"type\" (a rule is either a query or a typed rule)");
    if (!type_text && !f.has("query"))
        throw RuleError(fmt::format("{}: give either \"query\" or \"type\"", f.label()));
    const TypeInfo *info = &types()[0];
    if (type_text) {
        auto it = std::find_if(types().begin() + 1, types().end(),
                               [&](const TypeInfo &t) { return t.name == *type_text; });
        if (it == types().end())
            f.fail("type",
                   fmt::format("has unknown value \"{}\" (known: not_null, unique, foreign_key, "
                               "accepted_values, row_count, range, expression, freshness)",
                               *type_text));
        info = &*it;
    }
    rule.type = info->type;

    for (const auto &[key, value] : object.items()) {
        static const std::set<std::string_view> common = {"name", "type", "severity", "timeout",
                                                          "where"};
        if (common.count(key) ||
            std::find(info->fields.begin(), info->fields.end(), key) != info->fields.end())
            continue;
        f.fail(key, fmt::format("is not known for a {} rule", info->name));
    }

    if (auto severity = f.optional_string("severity")) {
        if (*severity == "warn" || *severity == "warning")
            rule.severity = Severity::Warn;
        else if (*severity != "error" && *severity != "fail")
            f.fail("severity",
                   fmt::format("must be \"error\" or \"warn\" (got \"{}\")", *severity));
    }
    rule.timeout = f.optional_string("timeout");
    rule.where = f.optional_string("where");
    if (rule.where) {
        if (rule.type == RuleType::Query)
            f.fail("where", "applies to typed rules only; put the filter into the query");
        check_fragment(f, "where", *rule.where);
    }

    switch (rule.type) {
        case RuleType::Query:
            rule.query = f.string("query");
            rule.expected = f.optional_integer("expected").value_or(0);
            rule.op = parse_operator(f);
            return rule;
        case RuleType::NotNull:
        case RuleType::AcceptedValues:
        case RuleType::Range:
        case RuleType::Freshness:
            rule.columns = {f.string("column")};
            break;
        case RuleType::Unique:
            rule.columns = f.names("column", "columns");
            break;
        case RuleType::ForeignKey:
            rule.columns = f.names("column", "columns");
            rule.references = f.string("references");
            rule.referenced_columns = f.names("referenced_column", "referenced_columns");
            if (rule.referenced_columns.size() != rule.columns.size())
                f.fail("referenced_columns",
                       fmt::format("names {} column(s) but the rule checks {}",
                                   rule.referenced_columns.size(), rule.columns.size()));
            break;
        default:
            break;
    }
    rule.table = f.string("table");

    if (rule.type == RuleType::AcceptedValues) {
        auto it = object.find("values");
        if (it == object.end()) f.fail("values", "is required");
        if (!it->is_array() || it->empty()) f.fail("values", "must be a non-empty array");
        for (const auto &v : *it) {
            if (v.is_null())
                f.fail("values", "must not contain null (use a not_null rule for that)");
            auto text = Fields::scalar_text(v);
            if (!text) f.fail("values", "must contain only numbers, strings or booleans");
            rule.values.push_back(*text);
        }
        if (rule.values.size() > 10000) f.fail("values", "has more than 10000 entries");
    }
    if (rule.type == RuleType::RowCount) {
        auto min = f.optional_integer("min"), max = f.optional_integer("max");
        if (!min && !max) f.fail("min", "or \"max\" is required");
        if (min && *min < 0) f.fail("min", "must not be negative");
        if (min && max && *min > *max) f.fail("min", "must not be greater than \"max\"");
        if (min) rule.min = std::to_string(*min);
        if (max) rule.max = std::to_string(*max);
    }
    if (rule.type == RuleType::Range) {
        rule.min = f.optional_scalar("min");
        rule.max = f.optional_scalar("max");
        if (!rule.min && !rule.max) f.fail("min", "or \"max\" is required");
    }
    if (rule.type == RuleType::Expression) {
        rule.expression = f.string("expression");
        check_fragment(f, "expression", rule.expression);
    }
    if (rule.type == RuleType::Freshness) rule.max_age = f.string("max_age");
    return rule;
}

std::string join(const std::vector<std::string> &parts, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i) out += sep;
        out += parts[i];
    }
    return out;
}

std::vector<std::string> names_of(const std::vector<ResolvedColumn> &columns,
                                  const std::string &prefix = {}) {
    std::vector<std::string> out;
    for (const auto &c : columns) out.push_back(prefix + c.name);
    return out;
}

// "WHERE cond AND (filter)" with the user's filter kept inside its own parentheses.
std::string where_clause(const Rule &rule, const std::vector<std::string> &conditions) {
    std::vector<std::string> all = conditions;
    if (rule.where) all.push_back("(\n" + *rule.where + "\n)");
    return all.empty() ? std::string() : " WHERE " + join(all, " AND ");
}

// Text of a value or key for the sample, bounded in length.
std::string sample_text(const std::vector<std::string> &exprs) {
    std::string value = exprs.size() == 1 ? exprs[0] : "ROW(" + join(exprs, ", ") + ")";
    return "pg_catalog.left(CAST(" + value + " AS pg_catalog.text), 60)";
}

std::string plural(int64_t n, std::string_view word) {
    return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

}  // namespace

std::string_view type_name(RuleType type) {
    for (const auto &t : types())
        if (t.type == type) return t.name;
    return "?";
}

std::string_view operator_text(Operator op) {
    switch (op) {
        case Operator::Eq:
            return "=";
        case Operator::Le:
            return "<=";
        case Operator::Ge:
            return ">=";
        case Operator::Lt:
            return "<";
        case Operator::Gt:
            return ">";
    }
    return "=";
}

std::vector<Rule> parse_rules(std::string_view text) {
    json doc;
    try {
        doc = json::parse(text.begin(), text.end());
    } catch (const json::exception &e) {
        throw RuleError(fmt::format("validation_rules is not valid JSON: {}", e.what()));
    }
    if (!doc.is_array())
        throw RuleError(fmt::format("validation_rules must be a JSON array of rule objects, not {}",
                                    json_type(doc)));
    std::vector<Rule> rules;
    std::set<std::string> names;
    for (size_t i = 0; i < doc.size(); ++i) rules.push_back(parse_rule(doc[i], i, names));
    return rules;
}

std::optional<std::string> fragment_problem(std::string_view sql) {
    int depth = 0;
    for (const auto &token : core::tokenize(sql)) {
        if (token.kind != core::TokenKind::Punctuation) continue;
        if (token.text == "(") ++depth;
        if (token.text == ")" && --depth < 0) return std::string("has a \")\" without its \"(\"");
        if (token.text == ";") return std::string("must be one SQL expression, without \";\"");
    }
    if (depth != 0) return std::string("has a \"(\" without its \")\"");
    return std::nullopt;
}

bool compare(Operator op, int64_t actual, int64_t expected) {
    switch (op) {
        case Operator::Eq:
            return actual == expected;
        case Operator::Le:
            return actual <= expected;
        case Operator::Ge:
            return actual >= expected;
        case Operator::Lt:
            return actual < expected;
        case Operator::Gt:
            return actual > expected;
    }
    return false;
}

std::string apply(const ResolvedOperator &op, const std::string &left, const std::string &right) {
    auto cast = [](const std::string &expr, const std::string &type) {
        return type.empty() ? expr : "CAST(" + expr + " AS " + type + ")";
    };
    return "(" + cast(left, op.left_cast) + " " + op.name + " " + cast(right, op.right_cast) + ")";
}

// Everything written here that is not the user's own SQL names its schema: functions,
// aggregates and types as pg_catalog.x, comparison operators as the server resolved them
// from the catalog, so the caller's search_path cannot substitute any of them.
RuleSql build_sql(const Rule &rule, const Resolved &r, int sample_size) {
    RuleSql out;
    const std::string limit = fmt::format(" LIMIT {}", sample_size);
    const std::string count = "pg_catalog.count(*)";
    auto param = [&out](const std::string &value, const std::string &type) {
        out.params.push_back(value);
        return fmt::format("CAST(${} AS {})", out.params.size(), type);
    };
    auto op = [&rule](const std::optional<ResolvedOperator> &o, std::string_view what) {
        if (!o)
            throw RuleError(
                fmt::format("rule \"{}\": the {} operator was not resolved", rule.name, what));
        return *o;
    };
    // pg_catalog's operators between built-in types, for the counts and ages computed here.
    auto builtin = [](std::string_view name, const std::string &left, const std::string &right) {
        return apply({fmt::format("OPERATOR(pg_catalog.{})", name), "", ""}, left, right);
    };
    auto cols = names_of(r.columns);
    auto not_null = [&](const std::vector<std::string> &exprs) {
        std::vector<std::string> conds;
        for (const auto &e : exprs) conds.push_back(e + " IS NOT NULL");
        return conds;
    };
    const std::string more_than_one = " HAVING " + builtin(">", count, "1");
    // Offending values grouped: "value (n rows)", in value order.
    auto grouped_sample = [&](const std::vector<std::string> &keys, const std::string &from_where,
                              const std::string &having) {
        return "SELECT pg_catalog.format('%s (%s %s)', " + sample_text(keys) + ", " + count +
               ", CASE WHEN " + builtin("=", count, "1") + " THEN 'row' ELSE 'rows' END) FROM " +
               from_where + " GROUP BY " + join(keys, ", ") + having + " ORDER BY " +
               join(keys, ", ") + limit;
    };
    // Offending rows as their text, in text order.
    auto row_sample = [&](const std::string &where) {
        return "SELECT pg_catalog.left(CAST(virtuoso_row AS pg_catalog.text), 100) FROM (SELECT * "
               "FROM " +
               r.table + where + ") AS virtuoso_row ORDER BY 1" + limit;
    };

    switch (rule.type) {
        case RuleType::Query:
            out.count = rule.query;
            break;
        case RuleType::NotNull: {
            std::string where = where_clause(rule, {cols[0] + " IS NULL"});
            out.count = "SELECT " + count + " FROM " + r.table + where;
            out.sample = row_sample(where);
            break;
        }
        case RuleType::Unique: {
            for (const auto &c : r.columns) (void)op(c.eq, "equality");
            std::string from_where = r.table + where_clause(rule, not_null(cols));
            out.count =
                "SELECT CAST(coalesce(pg_catalog.sum(virtuoso_n), 0) AS pg_catalog.int8) "
                "FROM (SELECT " +
                count + " AS virtuoso_n FROM " + from_where + " GROUP BY " + join(cols, ", ") +
                more_than_one + ") AS virtuoso_dup";
            out.sample = grouped_sample(cols, from_where, more_than_one);
            break;
        }
        case RuleType::ForeignKey: {
            // Child columns qualified by the table's own name, so that a filter may still name
            // the table; the parent gets an alias no user filter uses.
            auto child = names_of(r.columns, r.table + ".");
            auto parent = names_of(r.parent_columns, "virtuoso_parent.");
            std::vector<std::string> match;
            for (size_t i = 0; i < child.size(); ++i)
                match.push_back(apply(op(r.parent_columns[i].eq, "equality"), parent[i], child[i]));
            auto conds = not_null(child);
            conds.push_back("NOT EXISTS (SELECT 1 FROM " + r.parent + " AS virtuoso_parent WHERE " +
                            join(match, " AND ") + ")");
            std::string from_where = r.table + where_clause(rule, conds);
            out.count = "SELECT " + count + " FROM " + from_where;
            out.sample = grouped_sample(child, from_where, "");
            break;
        }
        case RuleType::AcceptedValues: {
            // NOT (col = ANY (ARRAY[...])): the values hold no NULL, so this is NOT IN.
            auto eq = op(r.columns[0].eq, "equality");
            std::vector<std::string> values;
            for (const auto &v : rule.values) {
                std::string value = param(v, r.columns[0].type);
                values.push_back(
                    eq.right_cast.empty() ? value : "CAST(" + value + " AS " + eq.right_cast + ")");
            }
            std::string left =
                eq.left_cast.empty() ? cols[0] : "CAST(" + cols[0] + " AS " + eq.left_cast + ")";
            std::string from_where =
                r.table + where_clause(rule, {cols[0] + " IS NOT NULL",
                                              "NOT (" + left + " " + eq.name + " ANY (ARRAY[" +
                                                  join(values, ", ") + "]))"});
            out.count = "SELECT " + count + " FROM " + from_where;
            out.sample = grouped_sample(cols, from_where, "");
            break;
        }
        case RuleType::RowCount:
            out.count = "SELECT " + count + " FROM " + r.table + where_clause(rule, {});
            break;
        case RuleType::Range: {
            std::vector<std::string> outside;
            if (rule.min)
                outside.push_back(apply(op(r.columns[0].lt, "less-than"), cols[0],
                                        param(*rule.min, r.columns[0].type)));
            if (rule.max)
                outside.push_back(apply(op(r.columns[0].gt, "greater-than"), cols[0],
                                        param(*rule.max, r.columns[0].type)));
            std::string cond = outside.size() == 1 ? outside[0] : "(" + join(outside, " OR ") + ")";
            std::string from_where = r.table + where_clause(rule, {cols[0] + " IS NOT NULL", cond});
            out.count = "SELECT " + count + " FROM " + from_where;
            out.sample = grouped_sample(cols, from_where, "");
            break;
        }
        case RuleType::Expression: {
            std::string where = where_clause(rule, {"(\n" + rule.expression + "\n) IS FALSE"});
            out.count = "SELECT " + count + " FROM " + r.table + where;
            out.sample = row_sample(where);
            break;
        }
        case RuleType::Freshness: {
            // The newest value as timestamptz (date and timestamp convert as the session's
            // time zone says, as they would in a comparison with now()).
            std::string age = param(rule.max_age, "pg_catalog.interval");
            std::string newest = "pg_catalog.max(" + cols[0] + ")";
            std::string newest_tz = "CAST(" + newest + " AS pg_catalog.timestamptz)";
            std::string now = "pg_catalog.now()";
            auto seconds = [](const std::string &interval) {
                return "CAST(pg_catalog.floor(EXTRACT(epoch FROM " + interval +
                       ")) AS pg_catalog.int8)";
            };
            out.count = "SELECT CAST(" + newest + " AS pg_catalog.text), " +
                        seconds(builtin("-", now, newest_tz)) + ", " + seconds(age) + ", " +
                        builtin(">=", newest_tz, builtin("-", now, age)) + " FROM " + r.table +
                        where_clause(rule, {});
            break;
        }
    }
    return out;
}

Verdict judge(const Rule &rule, const Resolved &r, const Measurement &m) {
    Verdict v;
    bool pass = false;
    const std::string column = r.columns.empty() ? std::string() : join(names_of(r.columns), ", ");
    const int64_t n = m.count.value_or(0);
    v.result_count = n;
    switch (rule.type) {
        case RuleType::Query:
            v.expected_count = rule.expected;
            pass = compare(rule.op, n, rule.expected);
            v.message = fmt::format("{} {} {}: {}", n, operator_text(rule.op), rule.expected,
                                    pass ? "holds" : "does not hold");
            break;
        case RuleType::NotNull:
            pass = n == 0;
            v.message = fmt::format("{} of {} {} NULL in {}", plural(n, "row"), r.table,
                                    n == 1 ? "has" : "have", column);
            break;
        case RuleType::Unique:
            pass = n == 0;
            v.message = fmt::format("{} of {} share their ({}) with another row", plural(n, "row"),
                                    r.table, column);
            break;
        case RuleType::ForeignKey:
            pass = n == 0;
            v.message = fmt::format("{} of {} {} ({}) without a matching row in {} ({})",
                                    plural(n, "row"), r.table, n == 1 ? "has" : "have", column,
                                    r.parent, join(names_of(r.parent_columns), ", "));
            break;
        case RuleType::AcceptedValues:
            pass = n == 0;
            v.message =
                fmt::format("{} of {} {} {} outside the {} accepted values", plural(n, "row"),
                            r.table, n == 1 ? "has" : "have", column, rule.values.size());
            break;
        case RuleType::RowCount: {
            int64_t min = rule.min ? std::stoll(*rule.min) : INT64_MIN;
            int64_t max = rule.max ? std::stoll(*rule.max) : INT64_MAX;
            pass = n >= min && n <= max;
            v.expected_count = n < min || !rule.max ? min : max;
            std::string bounds = rule.min && rule.max ? fmt::format("between {} and {}", min, max)
                                 : rule.min           ? fmt::format("at least {}", min)
                                                      : fmt::format("at most {}", max);
            v.message = fmt::format("{} has {}; expected {}", r.table, plural(n, "row"), bounds);
            break;
        }
        case RuleType::Range: {
            pass = n == 0;
            std::string bounds = rule.min && rule.max
                                     ? fmt::format("[{}, {}]", *rule.min, *rule.max)
                                 : rule.min ? fmt::format("below {}", *rule.min)
                                            : fmt::format("above {}", *rule.max);
            v.message =
                fmt::format("{} of {} {} {} {}", plural(n, "row"), r.table, n == 1 ? "has" : "have",
                            column, rule.min && rule.max ? "outside " + bounds : bounds);
            break;
        }
        case RuleType::Expression:
            pass = n == 0;
            v.message = fmt::format("{} of {} {} ({}) false", plural(n, "row"), r.table,
                                    n == 1 ? "makes" : "make", rule.expression);
            break;
        case RuleType::Freshness:
            pass = m.fresh;
            v.expected_count = m.max_age_s;
            v.result_count = m.age_s.value_or(0);
            if (!m.newest)
                v.message =
                    fmt::format("{} has no {} value to judge freshness by", r.table, column);
            else
                v.message =
                    fmt::format("newest {} of {} is {} ({} s old); max_age {} ({} s)", column,
                                r.table, *m.newest, v.result_count, rule.max_age, m.max_age_s);
            break;
    }
    if (!m.sample.empty() && !pass)
        v.message += fmt::format("; first {}: {}", m.sample.size(), join(m.sample, ", "));
    else if (m.sample_note && !pass)
        v.message += "; " + *m.sample_note;
    v.status = pass ? "PASS" : rule.severity == Severity::Warn ? "WARN" : "FAIL";
    return v;
}

}  // namespace virtuoso::integrity
