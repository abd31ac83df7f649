#include "db_virtuoso/plan/plan.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "db_virtuoso/core/sql_lexer.hpp"

namespace virtuoso::plan {
namespace {

using json = nlohmann::json;
using core::Token;
using core::TokenKind;

constexpr size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1

const char *kTypes =
    "create_table, alter_table, create_index, migrate_data, sql, validate, scaffold";

std::optional<StepType> step_type(const std::string &s) {
    if (s == "create_table") return StepType::CreateTable;
    if (s == "alter_table") return StepType::AlterTable;
    if (s == "create_index") return StepType::CreateIndex;
    if (s == "migrate_data") return StepType::MigrateData;
    if (s == "sql") return StepType::Sql;
    if (s == "validate") return StepType::Validate;
    if (s == "scaffold") return StepType::Scaffold;
    return std::nullopt;
}

bool blank(const std::string &s) {
    return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

// Collects problems of one step, prefixed with where they are.
struct Problems {
    std::vector<std::string> &out;
    std::string where;
    void add(const std::string &what) { out.push_back(where + what); }
};

std::optional<std::string> string_field(const json &obj, const char *key, Problems &p,
                                        bool required) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
        if (required) p.add(fmt::format("definition needs \"{}\"", key));
        return std::nullopt;
    }
    if (!it->is_string() || blank(it->get<std::string>())) {
        p.add(fmt::format("\"{}\" must be a non-empty string", key));
        return std::nullopt;
    }
    return it->get<std::string>();
}

// {"schema"?: ..., "<key>": ...} as a qualified name.
std::optional<QualifiedName> name_field(const json &obj, const char *key, const char *schema_key,
                                        Problems &p) {
    auto name = string_field(obj, key, p, true);
    auto schema = string_field(obj, schema_key, p, false);
    if (!name) return std::nullopt;
    for (const auto *part : {&*name, schema ? &*schema : nullptr}) {
        if (part && part->size() > kMaxIdentifierBytes) {
            p.add(fmt::format("name \"{}\" is longer than {} bytes", *part, kMaxIdentifierBytes));
            return std::nullopt;
        }
    }
    return QualifiedName{schema, *name};
}

// A SQL fragment of a structured definition (a type, a default, a predicate): one
// expression, never a statement separator outside quotes.
bool fragment_ok(const std::string &sql) {
    int depth = 0;
    for (const Token &t : core::tokenize(sql)) {
        if (t.kind != TokenKind::Punctuation) continue;
        if (t.text == ";") return false;
        if (t.text == "(") ++depth;
        if (t.text == ")" && --depth < 0) return false;
    }
    return depth == 0;
}

std::string column_sql(const json &c, Problems &p, std::vector<std::string> *inline_key) {
    if (!c.is_object()) {
        p.add("each column must be an object {\"name\", \"type\", ...}");
        return {};
    }
    auto name = string_field(c, "name", p, true);
    auto type = string_field(c, "type", p, true);
    if (!name || !type) return {};
    if (name->size() > kMaxIdentifierBytes)
        p.add(
            fmt::format("column name \"{}\" is longer than {} bytes", *name, kMaxIdentifierBytes));
    if (!fragment_ok(*type)) p.add(fmt::format("column \"{}\": type is not one type", *name));
    std::string out = quote_identifier(*name) + " " + *type;
    if (auto nn = c.find("not_null"); nn != c.end() && !nn->is_null()) {
        if (!nn->is_boolean())
            p.add(fmt::format("column \"{}\": not_null must be a boolean", *name));
        else if (nn->get<bool>())
            out += " NOT NULL";
    }
    if (auto d = string_field(c, "default", p, false)) {
        if (!fragment_ok(*d))
            p.add(fmt::format("column \"{}\": default is not one expression", *name));
        out += " DEFAULT " + *d;
    }
    if (auto r = c.find("references"); r != c.end() && !r->is_null()) {
        std::optional<QualifiedName> target;
        std::optional<std::string> column;
        if (r->is_string() && !blank(r->get<std::string>())) {
            target = QualifiedName{std::nullopt, r->get<std::string>()};
        } else if (r->is_object()) {
            target = name_field(*r, "table", "schema", p);
            column = string_field(*r, "column", p, false);
        } else {
            p.add(
                fmt::format("column \"{}\": references must be a table name or "
                            "{{\"schema\", \"table\", \"column\"}}",
                            *name));
        }
        if (target) {
            out += " REFERENCES " + target->sql();
            if (column) out += " (" + quote_identifier(*column) + ")";
        }
    }
    if (auto pk = c.find("primary_key");
        pk != c.end() && pk->is_boolean() && pk->get<bool>() && inline_key)
        inline_key->push_back(*name);
    return out;
}

std::string name_list(const json &arr, Problems &p, const char *what) {
    std::string out;
    if (!arr.is_array() || arr.empty()) {
        p.add(fmt::format("\"{}\" must be a non-empty array of names", what));
        return out;
    }
    for (const auto &n : arr) {
        if (!n.is_string() || blank(n.get<std::string>())) {
            p.add(fmt::format("\"{}\" must hold names", what));
            continue;
        }
        out += (out.empty() ? "" : ", ") + quote_identifier(n.get<std::string>());
    }
    return out;
}

void create_table_from(const json &d, Step &step, Problems &p) {
    auto table = name_field(d, "table", "schema", p);
    auto cols = d.find("columns");
    if (cols == d.end() || !cols->is_array() || cols->empty()) {
        p.add("definition needs \"columns\", a non-empty array");
        return;
    }
    std::vector<std::string> parts, inline_key;
    for (const auto &c : *cols) parts.push_back(column_sql(c, p, &inline_key));
    if (auto pk = d.find("primary_key"); pk != d.end() && !pk->is_null()) {
        parts.push_back("PRIMARY KEY (" + name_list(*pk, p, "primary_key") + ")");
    } else if (!inline_key.empty()) {
        json keys = inline_key;
        parts.push_back("PRIMARY KEY (" + name_list(keys, p, "primary_key") + ")");
    }
    if (!table) return;
    step.sql = "CREATE TABLE " + table->sql() + " (\n    ";
    for (size_t i = 0; i < parts.size(); ++i) step.sql += (i ? ",\n    " : "") + parts[i];
    step.sql += "\n)";
    step.creates_table = table;
}

void alter_table_from(const json &d, Step &step, Problems &p) {
    auto table = name_field(d, "table", "schema", p);
    auto cols = d.find("add_columns");
    if (cols == d.end() || !cols->is_array() || cols->empty()) {
        p.add(
            "a structured alter_table definition needs \"add_columns\", a non-empty array "
            "(write other changes as SQL text with a rollback)");
        return;
    }
    std::string add, drop;
    for (const auto &c : *cols) {
        std::string col = column_sql(c, p, nullptr);
        if (col.empty()) continue;
        add += (add.empty() ? " " : ", ") + ("ADD COLUMN " + col);
        drop += (drop.empty() ? " " : ", ") +
                ("DROP COLUMN IF EXISTS " + quote_identifier(c["name"].get<std::string>()));
    }
    if (!table) return;
    step.sql = "ALTER TABLE " + table->sql() + add;
    step.rollback = "ALTER TABLE " + table->sql() + drop;
    step.rollback_derived = true;
}

void create_index_from(const json &d, Step &step, Problems &p) {
    auto table = name_field(d, "table", "schema", p);
    auto name = string_field(d, "name", p, true);
    auto cols = d.find("columns");
    std::string columns = cols == d.end() ? (p.add("definition needs \"columns\""), "")
                                          : name_list(*cols, p, "columns");
    bool unique = false;
    if (auto u = d.find("unique"); u != d.end() && !u->is_null()) {
        if (!u->is_boolean())
            p.add("\"unique\" must be a boolean");
        else
            unique = u->get<bool>();
    }
    auto method = string_field(d, "using", p, false);
    auto where = string_field(d, "where", p, false);
    if (where && !fragment_ok(*where)) p.add("\"where\" is not one expression");
    if (name && name->size() > kMaxIdentifierBytes)
        p.add(fmt::format("index name \"{}\" is longer than {} bytes", *name, kMaxIdentifierBytes));
    if (!table || !name) return;
    step.sql = fmt::format("CREATE {}INDEX CONCURRENTLY {} ON {}{} ({}){}", unique ? "UNIQUE " : "",
                           quote_identifier(*name), table->sql(),
                           method ? " USING " + quote_identifier(*method) : "", columns,
                           where ? " WHERE " + *where : "");
    QualifiedName index{table->schema, *name};
    step.rollback = "DROP INDEX CONCURRENTLY IF EXISTS " + index.sql();
    step.rollback_derived = true;
}

void migrate_data_from(const json &d, const Plan &plan, Step &step, Problems &p) {
    auto source = string_field(d, "source_query", p, true);
    auto target = name_field(d, "target_table", "target_schema", p);
    auto key = string_field(d, "key_column", p, false);
    auto int_field = [&](const char *k, long dflt) {
        auto it = d.find(k);
        if (it == d.end() || it->is_null()) return dflt;
        if (!it->is_number_integer() || it->get<long>() < 1) {
            p.add(fmt::format("\"{}\" must be a positive integer", k));
            return dflt;
        }
        return it->get<long>();
    };
    long batch = int_field("batch_size", 10000);
    long workers = int_field("parallel_workers", 1);
    if (!source || !target) return;
    step.sql =
        fmt::format("CALL virtuoso.migrate_data_batched({}, {}, {}, {}, {}, {})",
                    quote_literal(*source), quote_literal(target->sql()), batch, workers,
                    quote_literal(key.value_or("id")), quote_literal(migration_name(plan, step)));
    step.transactional = false;
}

}  // namespace

std::string QualifiedName::sql() const {
    return schema ? quote_identifier(*schema) + "." + quote_identifier(name)
                  : quote_identifier(name);
}

std::string quote_identifier(const std::string &ident) {
    // Always quoted: safe for keywords, upper case and any byte, as the server reads it.
    std::string out = "\"";
    for (char c : ident) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::string quote_literal(const std::string &literal) {
    bool backslash = literal.find('\\') != std::string::npos;
    std::string out = backslash ? "E'" : "'";
    for (char c : literal) {
        if (c == '\'' || (backslash && c == '\\')) out += c;
        out += c;
    }
    return out + "'";
}

std::string migration_name(const Plan &plan, const Step &step) {
    return plan.name + "/" + step.name;
}

bool Plan::needs_procedure() const {
    return std::any_of(steps.begin(), steps.end(), [](const Step &s) { return !s.transactional; });
}

namespace {

// One statement's tokens (a trailing semicolon dropped); nullopt for several statements.
std::optional<std::vector<Token>> single_statement(const std::string &sql) {
    std::vector<Token> tokens = core::tokenize(sql);
    while (!tokens.empty() && tokens.back().text == ";") tokens.pop_back();
    for (const Token &t : tokens)
        if (t.kind == TokenKind::Punctuation && t.text == ";") return std::nullopt;
    return tokens;
}

bool is_name(const Token &t) {
    return t.kind == TokenKind::Word || t.kind == TokenKind::QuotedIdentifier;
}

// The identifier a name token stands for (unquoted words fold to lower case).
std::string identifier(const Token &t) {
    std::string out;
    if (t.kind == TokenKind::QuotedIdentifier) {
        std::string_view body = t.text.substr(1, t.text.size() >= 2 ? t.text.size() - 2 : 0);
        for (size_t i = 0; i < body.size(); ++i) {
            out += body[i];
            if (body[i] == '"' && i + 1 < body.size() && body[i + 1] == '"') ++i;
        }
        return out;
    }
    for (char c : t.text) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// name or schema.name at tokens[i]; advances i.
std::optional<QualifiedName> read_name(const std::vector<Token> &t, size_t &i) {
    if (i >= t.size() || !is_name(t[i])) return std::nullopt;
    QualifiedName q{std::nullopt, identifier(t[i])};
    ++i;
    if (i + 1 < t.size() && t[i].text == "." && is_name(t[i + 1])) {
        q.schema = q.name;
        q.name = identifier(t[i + 1]);
        i += 2;
    }
    return q;
}

bool keyword(const std::vector<Token> &t, size_t &i, std::string_view kw) {
    if (i < t.size() && t[i].is_keyword(kw)) {
        ++i;
        return true;
    }
    return false;
}

}  // namespace

std::optional<QualifiedName> created_table(const std::string &sql) {
    auto tokens = single_statement(sql);
    if (!tokens) return std::nullopt;
    const auto &t = *tokens;
    size_t i = 0;
    if (!keyword(t, i, "CREATE")) return std::nullopt;
    keyword(t, i, "UNLOGGED");
    if (!keyword(t, i, "TABLE")) return std::nullopt;
    // IF NOT EXISTS: the table may have been there before; dropping it is not an undo.
    if (i < t.size() && t[i].is_keyword("IF")) return std::nullopt;
    auto name = read_name(t, i);
    if (!name || i >= t.size() || t[i].text != "(") return std::nullopt;
    return name;
}

std::optional<std::string> derive_rollback(const std::string &sql) {
    if (auto table = created_table(sql)) return "DROP TABLE " + table->sql();
    auto tokens = single_statement(sql);
    if (!tokens) return std::nullopt;
    const auto &t = *tokens;
    size_t i = 0;
    if (keyword(t, i, "CREATE")) {
        keyword(t, i, "UNIQUE");
        if (!keyword(t, i, "INDEX")) return std::nullopt;
        keyword(t, i, "CONCURRENTLY");
        if (i < t.size() && (t[i].is_keyword("IF") || t[i].is_keyword("ON"))) return std::nullopt;
        if (i >= t.size() || !is_name(t[i])) return std::nullopt;
        std::string index = identifier(t[i++]);
        if (!keyword(t, i, "ON")) return std::nullopt;
        keyword(t, i, "ONLY");
        auto table = read_name(t, i);
        if (!table) return std::nullopt;
        return "DROP INDEX CONCURRENTLY IF EXISTS " + QualifiedName{table->schema, index}.sql();
    }
    i = 0;
    if (!keyword(t, i, "ALTER") || !keyword(t, i, "TABLE")) return std::nullopt;
    if (i < t.size() && t[i].is_keyword("IF")) return std::nullopt;
    keyword(t, i, "ONLY");
    auto table = read_name(t, i);
    if (!table) return std::nullopt;
    // Actions separated by commas at depth 0; each must be ADD [COLUMN] name ...
    std::string drops;
    while (i < t.size()) {
        if (!keyword(t, i, "ADD")) return std::nullopt;
        keyword(t, i, "COLUMN");
        if (i >= t.size() || !is_name(t[i])) return std::nullopt;
        for (auto kw : {"IF", "CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE"})
            if (t[i].is_keyword(kw)) return std::nullopt;
        drops += (drops.empty() ? " " : ", ") +
                 ("DROP COLUMN IF EXISTS " + quote_identifier(identifier(t[i])));
        ++i;
        int depth = 0;
        while (i < t.size() && !(depth == 0 && t[i].text == ",")) {
            if (t[i].text == "(") ++depth;
            if (t[i].text == ")") --depth;
            ++i;
        }
        if (i < t.size()) ++i;  // the comma
    }
    if (drops.empty()) return std::nullopt;
    return "ALTER TABLE " + table->sql() + drops;
}

ParseResult parse_plan(const std::string &text) {
    ParseResult result;
    auto &problems = result.problems;
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        problems.push_back("the plan must be a JSON object {\"name\", \"changes\", ...}");
        return result;
    }
    Plan &plan = result.plan;
    Problems top{problems, ""};
    for (auto it = doc.begin(); it != doc.end(); ++it)
        if (it.key() != "name" && it.key() != "changes" && it.key() != "validation_rules" &&
            it.key() != "options")
            top.add(
                fmt::format("unknown key \"{}\" (valid: name, changes, validation_rules, "
                            "options)",
                            it.key()));
    if (auto name = string_field(doc, "name", top, true)) plan.name = *name;

    if (auto rules = doc.find("validation_rules"); rules != doc.end() && !rules->is_null()) {
        if (!rules->is_array())
            top.add("\"validation_rules\" must be an array of rules");
        else
            plan.validation_rules = rules->dump();
    }

    if (auto opts = doc.find("options"); opts != doc.end() && !opts->is_null()) {
        if (!opts->is_object()) {
            top.add("\"options\" must be an object");
        } else {
            PlanOptions &o = plan.options;
            for (auto it = opts->begin(); it != opts->end(); ++it) {
                const std::string &k = it.key();
                const json &v = it.value();
                auto want_bool = [&](bool *out) {
                    if (v.is_boolean())
                        *out = v.get<bool>();
                    else
                        top.add(fmt::format("option \"{}\" must be a boolean", k));
                };
                auto want_number = [&](double *out) {
                    if (v.is_number() && v.get<double>() >= 0)
                        *out = v.get<double>();
                    else
                        top.add(fmt::format("option \"{}\" must be a non-negative number", k));
                };
                auto want_duration = [&](std::optional<std::string> *out) {
                    if (v.is_string() && !blank(v.get<std::string>()))
                        *out = v.get<std::string>();
                    else if (v.is_number_unsigned())
                        *out = std::to_string(v.get<unsigned long>()) + "ms";
                    else
                        top.add(
                            fmt::format("option \"{}\" must be a duration such as \"500ms\"", k));
                };
                if (k == "lint") {
                    if (v.is_string() && (v == "error" || v == "warn" || v == "off"))
                        o.lint = v.get<std::string>();
                    else
                        top.add("option \"lint\" must be \"error\", \"warn\" or \"off\"");
                } else if (k == "undo_on_failure") {
                    want_bool(&o.undo_on_failure);
                } else if (k == "preserve_data_on_undo") {
                    want_bool(&o.preserve_data_on_undo);
                } else if (k == "prechecks") {
                    want_bool(&o.prechecks);
                } else if (k == "lock_timeout") {
                    want_duration(&o.lock_timeout);
                } else if (k == "statement_timeout") {
                    want_duration(&o.statement_timeout);
                } else if (k == "max_retries") {
                    if (v.is_number_integer() && v.get<long>() >= 0 && v.get<long>() <= 1000)
                        o.max_retries = v.get<int>();
                    else
                        top.add("option \"max_retries\" must be an integer from 0 to 1000");
                } else if (k == "max_connection_ratio") {
                    want_number(&o.max_connection_ratio);
                } else if (k == "max_replication_lag_seconds") {
                    want_number(&o.max_replication_lag_seconds);
                } else {
                    top.add(fmt::format(
                        "unknown option \"{}\" (valid: lint, undo_on_failure, "
                        "preserve_data_on_undo, prechecks, lock_timeout, statement_timeout, "
                        "max_retries, max_connection_ratio, max_replication_lag_seconds)",
                        k));
                }
            }
        }
    }

    auto changes = doc.find("changes");
    if (changes == doc.end() || !changes->is_array() || changes->empty()) {
        top.add("\"changes\" must be a non-empty array of steps");
    } else {
        std::set<std::string> names;
        std::vector<QualifiedName> created;
        int number = 0;
        for (const auto &c : *changes) {
            ++number;
            Step step;
            step.number = number;
            Problems p{problems, fmt::format("step {}: ", number)};
            if (!c.is_object()) {
                p.add("must be an object {\"name\", \"type\", \"definition\", \"rollback\"?}");
                continue;
            }
            for (auto it = c.begin(); it != c.end(); ++it)
                if (it.key() != "name" && it.key() != "type" && it.key() != "definition" &&
                    it.key() != "rollback")
                    p.add(
                        fmt::format("unknown key \"{}\" (valid: name, type, definition, "
                                    "rollback)",
                                    it.key()));
            if (auto name = string_field(c, "name", p, true)) {
                step.name = *name;
                p.where = fmt::format("step {} (\"{}\"): ", number, *name);
                if (!names.insert(*name).second) p.add("duplicate step name");
                // "<plan>/<step>" names the step's migration: one reading only
                if (name->find('/') != std::string::npos) p.add("a step name must not contain '/'");
            }
            std::optional<StepType> type;
            if (auto it = c.find("type"); it == c.end() || !it->is_string()) {
                p.add(fmt::format("needs a \"type\" (one of {})", kTypes));
            } else {
                step.type_name = it->get<std::string>();
                type = step_type(step.type_name);
                if (!type)
                    p.add(fmt::format("unknown type \"{}\" (valid: {})", step.type_name, kTypes));
            }
            if (auto it = c.find("rollback"); it != c.end() && !it->is_null()) {
                if (!it->is_string() || blank(it->get<std::string>()))
                    p.add("\"rollback\" must be SQL text");
                else
                    step.rollback = it->get<std::string>();
            }
            auto def = c.find("definition");
            const bool has_def = def != c.end() && !def->is_null() &&
                                 !(def->is_string() && blank(def->get<std::string>()));
            if (!has_def) {
                p.add("missing definition");
                if (type) step.type = *type;
                continue;
            }
            if (!type) continue;
            step.type = *type;
            const std::optional<std::string> user_rollback = step.rollback;
            const bool text = def->is_string();
            switch (*type) {
                case StepType::CreateTable:
                case StepType::AlterTable:
                case StepType::Sql:
                    if (text) {
                        step.sql = def->get<std::string>();
                        if (*type == StepType::CreateTable)
                            step.creates_table = created_table(step.sql);
                    } else if (*type == StepType::Sql || !def->is_object()) {
                        p.add("definition must be SQL text" +
                              std::string(*type == StepType::Sql ? "" : " or an object"));
                    } else {
                        step.generated = true;
                        (*type == StepType::CreateTable ? create_table_from : alter_table_from)(
                            *def, step, p);
                    }
                    break;
                case StepType::CreateIndex:
                    if (text) {
                        std::string why;
                        auto concurrent = core::with_concurrently(def->get<std::string>(), &why);
                        if (!concurrent)
                            p.add(fmt::format("definition: {}", why));
                        else
                            step.sql = *concurrent;
                    } else if (def->is_object()) {
                        step.generated = true;
                        create_index_from(*def, step, p);
                    } else {
                        p.add("definition must be a CREATE INDEX statement or an object");
                    }
                    step.transactional = false;
                    break;
                case StepType::MigrateData:
                    if (text) {
                        step.sql = def->get<std::string>();
                    } else if (def->is_object()) {
                        step.generated = true;
                        migrate_data_from(*def, plan, step, p);
                    } else {
                        p.add(
                            "definition must be SQL text or {\"source_query\", \"target_table\", "
                            "...}");
                    }
                    break;
                case StepType::Validate: {
                    const json *rules = def->is_array() ? &*def : nullptr;
                    if (def->is_object() && def->contains("rules") && (*def)["rules"].is_array())
                        rules = &(*def)["rules"];
                    if (!rules || rules->empty()) {
                        p.add(
                            "definition must be a non-empty array of integrity rules (or "
                            "{\"rules\": [...]})");
                        break;
                    }
                    step.validation_rules = rules->dump();
                    // What the step's migration runs: the rules are its validation; the text
                    // names them so that a changed rule set is a changed step.
                    step.sql = "SELECT " + quote_literal(*step.validation_rules) +
                               "::pg_catalog.text AS rules";
                    break;
                }
                case StepType::Scaffold: {
                    if (!def->is_object()) {
                        p.add("definition must be {\"table\", \"schema\"?, \"api_schema\"}");
                        break;
                    }
                    step.scaffold_table = name_field(*def, "table", "schema", p);
                    auto api = string_field(*def, "api_schema", p, true);
                    if (api && api->size() > kMaxIdentifierBytes)
                        p.add(
                            fmt::format("api_schema is longer than {} bytes", kMaxIdentifierBytes));
                    if (api) step.scaffold_schema = *api;
                    if (step.scaffold_table && std::find(created.begin(), created.end(),
                                                         *step.scaffold_table) == created.end())
                        p.add(
                            fmt::format("scaffold is for a table an earlier create_table step of "
                                        "this plan creates; {} is not one",
                                        step.scaffold_table->sql()));
                    if (user_rollback)
                        p.add("a scaffold step's rollback is generated; remove \"rollback\"");
                    break;
                }
            }
            if (step.creates_table) created.push_back(*step.creates_table);
            // Rollback: the user's wins; otherwise derive the obvious one or require it.
            if (user_rollback) {
                step.rollback = user_rollback;
                step.rollback_derived = false;
            } else if (!step.rollback && !step.sql.empty() && *type != StepType::Validate) {
                if (!step.generated || *type == StepType::CreateTable) {
                    step.rollback = derive_rollback(step.sql);
                    step.rollback_derived = step.rollback.has_value();
                }
                if (!step.rollback)
                    p.add(fmt::format(
                        "needs a \"rollback\": none can be derived from its definition (derived "
                        "only for CREATE TABLE, CREATE INDEX and ALTER TABLE ... ADD COLUMN)"));
            }
            plan.steps.push_back(std::move(step));
        }
    }
    return result;
}

std::optional<Scaffold> scaffold_sql(const TableShape &t, const std::string &schema,
                                     bool create_schema, std::string *error) {
    auto fail = [&](std::string why) -> std::optional<Scaffold> {
        if (error) *error = std::move(why);
        return std::nullopt;
    };
    if (t.key.empty() || t.key.size() != t.key_equality.size())
        return fail(
            fmt::format("table {} has no primary key: the data-access layer reads, "
                        "updates and deletes by it",
                        t.table.sql()));
    const std::string &base = t.table.name;
    for (const char *verb : {"insert_", "update_", "delete_"})
        if (std::string(verb).size() + base.size() > kMaxIdentifierBytes)
            return fail(fmt::format("function name {}{} would be longer than {} bytes", verb, base,
                                    kMaxIdentifierBytes));
    auto is_key = [&](const std::string &c) {
        return std::find(t.key.begin(), t.key.end(), c) != t.key.end();
    };
    auto type_of = [&](const std::string &c) {
        for (const auto &col : t.columns)
            if (col.name == c) return col.type;
        return std::string("pg_catalog.text");
    };
    const std::string table = t.table.sql();
    const std::string q_schema = quote_identifier(schema);
    auto fn = [&](const char *verb) { return q_schema + "." + quote_identifier(verb + base); };
    auto param = [](size_t i) { return fmt::format("${}", i); };

    // key parameters and the WHERE clause over them
    std::string where;
    std::vector<std::string> key_types;
    for (size_t i = 0; i < t.key.size(); ++i) {
        key_types.push_back(type_of(t.key[i]));
        where += (i ? " AND " : "") + fmt::format("{} {} {}", quote_identifier(t.key[i]),
                                                  t.key_equality[i], param(i + 1));
    }
    std::string key_sig;
    for (size_t i = 0; i < key_types.size(); ++i) key_sig += (i ? ", " : "") + key_types[i];

    std::vector<const ColumnShape *> insertable, updatable;
    for (const auto &c : t.columns) {
        if (c.generated) continue;
        if (!c.has_default) insertable.push_back(&c);
        if (!is_key(c.name)) updatable.push_back(&c);
    }
    std::string ins_sig, ins_cols, ins_vals;
    for (size_t i = 0; i < insertable.size(); ++i) {
        ins_sig += (i ? ", " : "") + insertable[i]->type;
        ins_cols += (i ? ", " : "") + quote_identifier(insertable[i]->name);
        ins_vals += (i ? ", " : "") + param(i + 1);
    }
    std::string upd_sig = key_sig, upd_set;
    for (size_t i = 0; i < updatable.size(); ++i) {
        upd_sig += ", " + updatable[i]->type;
        upd_set += (i ? ", " : "") + fmt::format("{} = {}", quote_identifier(updatable[i]->name),
                                                 param(t.key.size() + i + 1));
    }

    Scaffold out;
    if (create_schema) out.sql += "CREATE SCHEMA " + q_schema + ";\n";
    auto define = [&](const char *verb, const std::string &sig, const std::string &returns,
                      const std::string &body, const std::string &what) {
        std::string signature = fn(verb) + "(" + sig + ")";
        out.sql += fmt::format(
            "CREATE FUNCTION {} RETURNS {} LANGUAGE sql VOLATILE SET search_path = pg_catalog, "
            "pg_temp AS {};\n",
            signature, returns, quote_literal(body));
        out.sql += fmt::format(
            "COMMENT ON FUNCTION {} IS {};\n", signature,
            quote_literal(what + " (generated by virtuoso.execute_database_implementation)"));
        out.sql += fmt::format("REVOKE ALL ON FUNCTION {} FROM PUBLIC;\n", signature);
        out.functions.push_back(signature);
    };
    define("get_", key_sig, table, fmt::format("SELECT * FROM {} WHERE {}", table, where),
           fmt::format("The row of {} with this primary key ({}), or NULL.", table, key_sig));
    if (!insertable.empty())
        define(
            "insert_", ins_sig, table,
            fmt::format("INSERT INTO {} ({}) VALUES ({}) RETURNING *", table, ins_cols, ins_vals),
            fmt::format("Inserts a row into {} (columns without a default, in table order) "
                        "and returns it.",
                        table));
    if (!updatable.empty())
        define("update_", upd_sig, table,
               fmt::format("UPDATE {} SET {} WHERE {} RETURNING *", table, upd_set, where),
               fmt::format("Sets every non-key column of the row of {} with this primary key; "
                           "returns the row, or NULL when there is none.",
                           table));
    define("delete_", key_sig, "boolean",
           fmt::format("WITH d AS (DELETE FROM {} WHERE {} RETURNING 1) SELECT pg_catalog.count(*) "
                       "OPERATOR(pg_catalog.>) 0 FROM d",
                       table, where),
           fmt::format("Deletes the row of {} with this primary key; true when there was one.",
                       table));
    for (auto it = out.functions.rbegin(); it != out.functions.rend(); ++it)
        out.rollback += "DROP FUNCTION IF EXISTS " + *it + ";\n";
    if (create_schema) out.rollback += "DROP SCHEMA IF EXISTS " + q_schema + ";\n";
    return out;
}

}  // namespace virtuoso::plan
