#include "db_virtuoso/migrate/options.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace virtuoso::migrate {
namespace {

using json = nlohmann::json;

constexpr const char *kValidOptions =
    "lock_timeout, max_retries, statement_timeout, validation_rules, lint, max_plan_regression, "
    "transactional, dry_run, force";

const char *type_name(const json &v) {
    switch (v.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::boolean:
            return "boolean";
        case json::value_t::string:
            return "string";
        case json::value_t::array:
            return "array";
        case json::value_t::object:
            return "object";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return "integer";
        case json::value_t::number_float:
            return "number";
        default:
            return "value";
    }
}

bool fail(OptionError *error, std::string message, std::string hint = {}) {
    if (error) *error = OptionError{std::move(message), std::move(hint)};
    return false;
}

bool read_bool(const json &v, const std::string &key, bool *out, OptionError *error) {
    if (!v.is_boolean())
        return fail(error,
                    fmt::format("option \"{}\" must be a boolean, got {}", key, type_name(v)));
    *out = v.get<bool>();
    return true;
}

// A duration: a string such as "500ms" or "2s" (checked by the server's own unit parser
// later), or a non-negative integer of milliseconds.
bool read_duration(const json &v, const std::string &key, std::optional<std::string> *out,
                   OptionError *error) {
    if (v.is_string()) {
        std::string s = v.get<std::string>();
        if (s.empty()) return fail(error, fmt::format("option \"{}\" must not be empty", key));
        *out = s;
        return true;
    }
    if (v.is_number_integer() || v.is_number_unsigned()) {
        if (v.is_number_integer() && v.get<long long>() < 0)
            return fail(error, fmt::format("option \"{}\" must not be negative", key));
        *out = fmt::format("{}ms", v.get<long long>());
        return true;
    }
    return fail(error, fmt::format("option \"{}\" must be a duration such as \"500ms\", got {}",
                                   key, type_name(v)));
}

}  // namespace

std::optional<MigrationOptions> parse_options(const std::string &text, OptionError *error) {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception &e) {
        // jsonb accepted it, so it is JSON that this parser cannot hold (a number too big)
        fail(error, fmt::format("options is not valid JSON: {}", e.what()));
        return std::nullopt;
    }
    if (!doc.is_object()) {
        fail(error, "options must be a JSON object",
             "For example: {\"lock_timeout\": \"500ms\", \"max_retries\": 5}.");
        return std::nullopt;
    }
    MigrationOptions o;
    for (auto it = doc.begin(); it != doc.end(); ++it) {
        const std::string &key = it.key();
        const json &v = it.value();
        bool ok = true;
        if (key == "lock_timeout") {
            ok = read_duration(v, key, &o.lock_timeout, error);
        } else if (key == "statement_timeout") {
            ok = read_duration(v, key, &o.statement_timeout, error);
        } else if (key == "max_retries") {
            if (!v.is_number_integer() && !v.is_number_unsigned())
                ok = fail(error, fmt::format("option \"max_retries\" must be an integer, got {}",
                                             type_name(v)));
            else if (v.get<long long>() < 0 || v.get<long long>() > 1000)
                ok = fail(error, "option \"max_retries\" must be between 0 and 1000");
            else
                o.max_retries = static_cast<int>(v.get<long long>());
        } else if (key == "validation_rules") {
            if (!v.is_array())
                ok = fail(error,
                          fmt::format("option \"validation_rules\" must be a JSON array, got {}",
                                      type_name(v)));
            else
                o.validation_rules = v.dump();
        } else if (key == "lint") {
            const std::string word = v.is_string() ? v.get<std::string>() : std::string();
            if (word == "error")
                o.lint = LintMode::Error;
            else if (word == "warn")
                o.lint = LintMode::Warn;
            else if (word == "off")
                o.lint = LintMode::Off;
            else
                ok = fail(error,
                          v.is_string()
                              ? fmt::format("option \"lint\" must be \"error\", \"warn\" or "
                                            "\"off\", got \"{}\"",
                                            word)
                              : fmt::format("option \"lint\" must be \"error\", \"warn\" or "
                                            "\"off\", got {}",
                                            type_name(v)),
                          "\"error\" (the default) refuses a migration with an error finding of "
                          "virtuoso.lint_migration, \"warn\" records the findings and runs it, "
                          "\"off\" does not lint.");
        } else if (key == "max_plan_regression") {
            if (!v.is_number())
                ok = fail(error,
                          fmt::format("option \"max_plan_regression\" must be a number, got {}",
                                      type_name(v)),
                          "A factor such as 2: the migration fails when a top statement of "
                          "pg_stat_statements gets more than twice as expensive.");
            else if (!(v.get<double>() >= 1.0) || !std::isfinite(v.get<double>()))
                ok = fail(error, "option \"max_plan_regression\" must be at least 1",
                          "It is the factor by which a statement's estimated cost may grow: 1 "
                          "allows no growth, 2 allows doubling.");
            else
                o.max_plan_regression = v.get<double>();
        } else if (key == "transactional") {
            ok = read_bool(v, key, &o.transactional, error);
        } else if (key == "dry_run") {
            ok = read_bool(v, key, &o.dry_run, error);
        } else if (key == "force") {
            ok = read_bool(v, key, &o.force, error);
        } else {
            ok = fail(error, fmt::format("unknown option \"{}\"", key),
                      fmt::format("Valid options are: {}.", kValidOptions));
        }
        if (!ok) return std::nullopt;
    }
    if (o.dry_run && !o.transactional) {
        fail(error, "option \"dry_run\" needs a transactional migration",
             "Statements of a non-transactional migration commit one by one and cannot be "
             "rolled back.");
        return std::nullopt;
    }
    if (o.max_plan_regression && !o.transactional) {
        fail(error, "option \"max_plan_regression\" needs a transactional migration",
             "Plans are compared before the migration commits; statements of a "
             "non-transactional migration commit one by one.");
        return std::nullopt;
    }
    return o;
}

long backoff_ms(int attempt, long base_ms, long cap_ms, std::mt19937_64 &rng) {
    long exp = base_ms;
    for (int i = 1; i < attempt && exp < cap_ms; ++i) exp *= 2;
    exp = std::min(exp, cap_ms);
    std::uniform_int_distribution<long> jitter(exp / 2, std::max(exp / 2, exp));
    return jitter(rng);
}

}  // namespace virtuoso::migrate
