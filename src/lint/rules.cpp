// The rules of virtuoso.lint_migration over neutral statement descriptions (see lint.hpp).
#include "db_virtuoso/lint/lint.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

namespace virtuoso::lint {

std::string_view lock_mode_name(LockMode mode) {
    switch (mode) {
        case LockMode::None:
            return "";
        case LockMode::AccessShare:
            return "ACCESS SHARE";
        case LockMode::RowShare:
            return "ROW SHARE";
        case LockMode::RowExclusive:
            return "ROW EXCLUSIVE";
        case LockMode::ShareUpdateExclusive:
            return "SHARE UPDATE EXCLUSIVE";
        case LockMode::Share:
            return "SHARE";
        case LockMode::ShareRowExclusive:
            return "SHARE ROW EXCLUSIVE";
        case LockMode::Exclusive:
            return "EXCLUSIVE";
        case LockMode::AccessExclusive:
            return "ACCESS EXCLUSIVE";
    }
    return "";
}

std::optional<LockMode> lock_mode_from_pg(std::string_view m) {
    static const std::pair<std::string_view, LockMode> names[] = {
        {"AccessShareLock", LockMode::AccessShare},
        {"RowShareLock", LockMode::RowShare},
        {"RowExclusiveLock", LockMode::RowExclusive},
        {"ShareUpdateExclusiveLock", LockMode::ShareUpdateExclusive},
        {"ShareLock", LockMode::Share},
        {"ShareRowExclusiveLock", LockMode::ShareRowExclusive},
        {"ExclusiveLock", LockMode::Exclusive},
        {"AccessExclusiveLock", LockMode::AccessExclusive}};
    for (const auto &[name, mode] : names)
        if (name == m) return mode;
    return std::nullopt;
}

bool lock_conflicts(LockMode held, LockMode requested) {
    // PostgreSQL's conflict table (lock.c, LockConflicts), by mode number 1..8.
    static const int conflicts[9] = {
        0,
        1 << 8,                                                           // AccessShare
        (1 << 7) | (1 << 8),                                              // RowShare
        (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8),                        // RowExclusive
        (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8),             // ShareUpdateExclusive
        (1 << 3) | (1 << 4) | (1 << 6) | (1 << 7) | (1 << 8),             // Share
        (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8),  // ShareRowExclusive
        (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8),  // Exclusive
        (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) |
            (1 << 8),  // AccessExclusive
    };
    int r = static_cast<int>(requested), h = static_cast<int>(held);
    if (r <= 0 || h <= 0 || r > 8 || h > 8) return false;
    return (conflicts[r] & (1 << h)) != 0;
}

bool blocks_reads(LockMode mode) {
    return lock_conflicts(mode, LockMode::AccessShare);
}
bool blocks_writes(LockMode mode) {
    return lock_conflicts(mode, LockMode::RowExclusive);
}

std::string_view severity_name(Severity s) {
    switch (s) {
        case Severity::Info:
            return "info";
        case Severity::Warning:
            return "warning";
        case Severity::Error:
            return "error";
    }
    return "info";
}

std::string human_bytes(int64_t bytes) {
    if (bytes < 0) return "unknown size";
    static const char *units[] = {"bytes", "kB", "MB", "GB", "TB", "PB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 10240 && u < 5) {
        v /= 1024;
        ++u;
    }
    return fmt::format("{} {}", static_cast<int64_t>(std::llround(v)), units[u]);
}

namespace {

bool starts_with(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}

}  // namespace

std::optional<TypeAdvice> type_advice(std::string_view t, bool key) {
    if (t == "json")
        return TypeAdvice{"prefer_jsonb",
                          "type json stores text, has no equality operator (DISTINCT, GROUP BY and "
                          "UNION fail) and is re-parsed on every access",
                          "use jsonb"};
    if (starts_with(t, "character(") || t == "character" || starts_with(t, "bpchar"))
        return TypeAdvice{"prefer_text_over_char",
                          "char(n) pads with blanks, compares surprisingly and is no faster than "
                          "text",
                          "use text (with a CHECK (length(col) <= n) if the limit matters)"};
    if (starts_with(t, "timestamp") && t.find("with time zone") == std::string_view::npos &&
        t.find("without time zone") != std::string_view::npos)
        return TypeAdvice{"prefer_timestamptz",
                          "timestamp without time zone stores wall-clock time with no zone: "
                          "values change meaning when the server or client zone differs",
                          "use timestamptz"};
    if (t == "timestamp" || starts_with(t, "timestamp("))
        return TypeAdvice{"prefer_timestamptz",
                          "timestamp without time zone stores wall-clock time with no zone: "
                          "values change meaning when the server or client zone differs",
                          "use timestamptz"};
    if (key && (t == "integer" || t == "smallint" || t == "serial" || t == "smallserial"))
        return TypeAdvice{
            "prefer_bigint_key",
            fmt::format("{} {} key runs out at {} values; changing it later "
                        "rewrites the table and every referencing table",
                        t == "integer" ? "an" : "a", t,
                        (t == "smallint" || t == "smallserial") ? "32,767" : "2,147,483,647"),
            "use bigint (bigint GENERATED ALWAYS AS IDENTITY for a surrogate key)"};
    if (t == "serial" || t == "bigserial" || t == "smallserial")
        return TypeAdvice{"prefer_identity",
                          "serial creates a separately owned sequence whose privileges and "
                          "ownership do not follow the table",
                          "use bigint GENERATED ALWAYS AS IDENTITY"};
    return std::nullopt;
}

namespace {

// A JSON object built field by field.
class Json {
  public:
    Json &str(std::string_view key, std::string_view value) {
        sep();
        out_ += json_quote(key) + ":" + json_quote(value);
        return *this;
    }
    Json &num(std::string_view key, double value) {
        sep();
        if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 9e15)
            out_ += json_quote(key) + ":" + fmt::format("{}", static_cast<int64_t>(value));
        else
            out_ += json_quote(key) + ":" + fmt::format("{:.3f}", value);
        return *this;
    }
    Json &boolean(std::string_view key, bool value) {
        sep();
        out_ += json_quote(key) + ":" + (value ? "true" : "false");
        return *this;
    }
    Json &raw(std::string_view key, std::string_view json) {
        sep();
        out_ += json_quote(key) + ":" + std::string(json);
        return *this;
    }
    std::string done() const { return "{" + out_ + "}"; }

  private:
    void sep() {
        if (!out_.empty()) out_ += ",";
    }
    std::string out_;
};

std::string facts_json(const RelationFacts &f) {
    Json j;
    j.str("name", f.name).boolean("exists", f.exists);
    if (f.exists && f.visible) {
        if (f.size_bytes >= 0) j.num("size_bytes", static_cast<double>(f.size_bytes));
        if (f.rows >= 0) j.num("rows_estimate", std::round(f.rows));
    } else if (f.exists) {
        j.boolean("facts_withheld", true);
    }
    return j.done();
}

std::string lockers_json(const std::vector<LockHolder> &lockers) {
    std::string out = "[";
    for (size_t i = 0; i < lockers.size(); ++i) {
        const auto &l = lockers[i];
        if (i) out += ",";
        Json j;
        j.num("pid", l.pid).str("mode", lock_mode_name(l.mode)).boolean("granted", l.granted);
        if (l.xact_seconds >= 0) j.num("transaction_seconds", l.xact_seconds);
        if (!l.state.empty()) j.str("state", l.state);
        out += j.done();
    }
    return out + "]";
}

// Per-migration state the rules need.
struct Context {
    Context(const Options &o, const OldestTransaction &t) : options(o), oldest(t) {}
    const Options &options;
    const OldestTransaction &oldest;
    bool in_block = false;        // inside an explicit or implicit transaction
    bool explicit_block = false;  // BEGIN seen and not yet ended
    bool lock_timeout_set = false;
    bool warned_lock_timeout = false;
    std::set<std::string> created;          // relations created by this migration
    std::set<std::string> not_valid_in_tx;  // constraints added NOT VALID in this transaction
    // The relation held ACCESS EXCLUSIVE by an earlier statement of this transaction.
    std::string access_exclusive_held;
    int access_exclusive_statement = 0;
    bool warned_after_exclusive = false;
    bool trace_skipped = false;  // the trace did not run an earlier statement
    // Indexes created by the migration: table -> leading columns.
    std::multimap<std::string, std::vector<std::string>> new_indexes;
    // Validated CHECK (col IS NOT NULL) added by the migration: table.column.
    std::set<std::string> not_null_checks;
};

class Linter {
  public:
    Linter(const Options &o, bool transactional, const OldestTransaction &oldest)
        : ctx_(o, oldest), transactional_(transactional) {
        ctx_.in_block = transactional;
        ctx_.lock_timeout_set = o.lock_timeout_set;
    }

    void run(const Statement &s);
    std::vector<Finding> take() { return std::move(findings_); }

  private:
    bool is_new(const std::string &name) const { return ctx_.created.count(name) > 0; }

    std::string describe(const RelationFacts &f, const std::string &name) const {
        if (is_new(name)) return fmt::format("{} (created by this migration)", name);
        if (!f.exists) return fmt::format("{} (not in the database now)", name);
        if (!f.visible) return fmt::format("{} (size withheld: no privilege on it)", name);
        std::string rows = f.rows >= 0 ? fmt::format("~{} rows", static_cast<int64_t>(f.rows))
                                       : std::string("rows unknown: never analysed");
        return fmt::format("{} ({}, {})", name, human_bytes(f.size_bytes), rows);
    }

    // Lowers a severity for a table that is new, empty or tiny; says why in `why`.
    Severity adjust(Severity s, const RelationFacts &f, const std::string &name,
                    std::string &why) const {
        if (s == Severity::Info) return s;
        if (is_new(name)) {
            why =
                " Lowered to info: the table is created by this migration, nobody else uses "
                "it yet.";
            return Severity::Info;
        }
        if (!f.exists || !f.visible) return s;
        if (f.size_bytes == 0 || (f.rows == 0 && f.size_bytes >= 0 && f.size_bytes <= 8192)) {
            why = " Lowered to info: the table is empty now.";
            return Severity::Info;
        }
        // A table never analysed has no row estimate; its size alone then says it is tiny.
        if (f.rows < ctx_.options.tiny_rows && f.size_bytes >= 0 &&
            f.size_bytes < ctx_.options.tiny_bytes) {
            why = f.rows >= 0
                      ? fmt::format(" Lowered one level: the table is tiny now (~{} rows, {}).",
                                    static_cast<int64_t>(f.rows), human_bytes(f.size_bytes))
                      : fmt::format(" Lowered one level: the table is tiny now ({}, never "
                                    "analysed).",
                                    human_bytes(f.size_bytes));
            return s == Severity::Error ? Severity::Warning : Severity::Info;
        }
        return s;
    }

    void add(const Statement &s, std::string rule, Severity sev, const std::string &object,
             const RelationFacts &facts, LockMode lock, std::string message,
             std::string alternative, Json extra = {}, bool adjustable = true) {
        std::string why;
        if (adjustable) sev = adjust(sev, facts, object, why);
        Finding f;
        f.statement_no = s.no;
        f.rule = std::move(rule);
        f.severity = sev;
        f.object = object;
        f.lock = lock;
        f.message = std::move(message) + why;
        f.safe_alternative = std::move(alternative);
        extra.str("statement", s.tag);
        if (s.line > 0) extra.num("line", s.line);
        if (lock != LockMode::None) {
            extra.str("lock_mode", lock_mode_name(lock))
                .boolean("blocks_reads", blocks_reads(lock))
                .boolean("blocks_writes", blocks_writes(lock));
        }
        if (!object.empty()) extra.raw("relation", facts_json(facts));
        if (!why.empty()) extra.str("severity_lowered", why.substr(1));
        if (lock >= LockMode::ShareUpdateExclusive && ctx_.oldest.seconds >= 0)
            extra.raw("oldest_transaction", Json()
                                                .num("pid", ctx_.oldest.pid)
                                                .num("seconds", std::round(ctx_.oldest.seconds))
                                                .str("state", ctx_.oldest.state)
                                                .done());
        extra.str("source", s.trace.ran ? "trace" : "static");
        if (s.trace.attempted) extra.raw("trace", trace_json(s.trace));
        f.details = extra.done();
        f.statement_sql = s.text;
        findings_.push_back(std::move(f));
    }

    static std::string trace_json(const Statement::Trace &t) {
        Json j;
        j.boolean("ran", t.ran);
        if (!t.skipped.empty()) j.str("skipped", t.skipped);
        if (!t.error.empty()) j.str("error", t.error).str("sqlstate", t.sqlstate);
        if (t.ran || !t.error.empty()) j.num("milliseconds", t.milliseconds);
        std::string locks = "[";
        for (size_t i = 0; i < t.locks.size(); ++i) {
            if (i) locks += ",";
            locks += Json()
                         .str("object", t.locks[i].object)
                         .str("mode", lock_mode_name(t.locks[i].mode))
                         .done();
        }
        j.raw("locks", locks + "]");
        std::string rw = "[";
        for (size_t i = 0; i < t.rewritten.size(); ++i)
            rw += (i ? "," : "") + json_quote(t.rewritten[i]);
        j.raw("rewritten", rw + "]");
        return j.done();
    }

    // The lock really taken on `object` when traced, else the static one.
    static LockMode traced_lock(const Statement &s, const std::string &object, LockMode fallback) {
        if (!s.trace.ran) return fallback;
        LockMode best = LockMode::None;
        for (const auto &l : s.trace.locks)
            if (l.object == object && l.mode > best) best = l.mode;
        // A lock already held from an earlier statement does not show up again.
        return best == LockMode::None ? fallback : best;
    }
    static bool traced_rewrite(const Statement &s, const std::string &object, bool fallback) {
        if (!s.trace.ran) return fallback;
        return std::find(s.trace.rewritten.begin(), s.trace.rewritten.end(), object) !=
               s.trace.rewritten.end();
    }

    void lock_checks(const Statement &s, const std::string &object, const RelationFacts &facts,
                     LockMode lock);
    void type_check(const Statement &s, const std::string &object, const RelationFacts &facts,
                    const std::string &column, const std::string &type, bool key);
    void alter_table(const Statement &s);
    void fk_index_check(const Statement &s, const std::string &table, const RelationFacts &facts,
                        const Action &a);
    void fk_index_finding(const Statement &s, const std::string &table, const RelationFacts &facts,
                          const Action &a);

  public:
    void finish();

  private:
    struct DeferredFk {
        Statement statement;
        std::string table;
        RelationFacts facts;
        Action action;
    };
    std::vector<DeferredFk> deferred_fk_;

    Context ctx_;
    bool transactional_;
    std::vector<Finding> findings_;
    // CHECK (col IS NOT NULL) added NOT VALID: table.constraint -> column.
    std::map<std::string, std::string> pending_checks_;
};

std::string join(const std::vector<std::string> &v, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += sep;
        out += v[i];
    }
    return out;
}

// Rules about the lock itself: lock_timeout, who is in the way now, locks held on.
void Linter::lock_checks(const Statement &s, const std::string &object, const RelationFacts &facts,
                         LockMode lock) {
    if (lock == LockMode::None || object.empty() || is_new(object) || !facts.exists) return;
    if (lock >= LockMode::Share && !ctx_.lock_timeout_set && !ctx_.warned_lock_timeout) {
        ctx_.warned_lock_timeout = true;
        add(s, "missing_lock_timeout", Severity::Warning, object, facts, lock,
            fmt::format("{} waits for {} on {} with no lock_timeout: while it waits, every "
                        "later query on the table queues behind it{}.",
                        s.tag, lock_mode_name(lock), describe(facts, object),
                        ctx_.oldest.seconds >= 0
                            ? fmt::format(" (the oldest transaction now, pid {}, is {:.0f} s old)",
                                          ctx_.oldest.pid, ctx_.oldest.seconds)
                            : std::string()),
            "SET lock_timeout = '2s' before the DDL (execute_migration_with_monitoring does this "
            "and retries)",
            {}, false);
    }
    std::vector<LockHolder> in_way;
    for (const auto &l : facts.lockers)
        if (lock_conflicts(l.mode, lock) || (!l.granted && lock >= LockMode::Share))
            in_way.push_back(l);
    if (!in_way.empty()) {
        std::vector<std::string> who;
        for (const auto &l : in_way)
            who.push_back(fmt::format(
                "pid {} {} {}{}", l.pid, l.granted ? "holds" : "waits for", lock_mode_name(l.mode),
                l.xact_seconds >= 0 ? fmt::format(" (transaction {:.0f} s old)", l.xact_seconds)
                                    : std::string()));
        Json j;
        j.raw("lockers", lockers_json(in_way));
        add(s, "lock_conflict_now", Severity::Warning, object, facts, lock,
            fmt::format("{} needs {} on {}, which conflicts right now with: {}. It would wait, and "
                        "queries arriving after it would wait behind it.",
                        s.tag, lock_mode_name(lock), object, join(who, "; ")),
            "run it when those sessions are done, with a short lock_timeout and retries", j, false);
    } else if (lock == LockMode::AccessExclusive &&
               ctx_.oldest.seconds >= ctx_.options.long_transaction_seconds) {
        Json j;
        j.num("pid", ctx_.oldest.pid).num("transaction_seconds", ctx_.oldest.seconds);
        add(s, "long_running_transaction", Severity::Warning, object, facts, lock,
            fmt::format("pid {} has had a transaction open for {:.0f} s: if it touches {}, {} "
                        "waits for it and every query on the table queues behind.",
                        ctx_.oldest.pid, ctx_.oldest.seconds, object, lock_mode_name(lock)),
            "wait for it to end, or set a short lock_timeout", j, false);
    }
}

void Linter::type_check(const Statement &s, const std::string &object, const RelationFacts &facts,
                        const std::string &column, const std::string &type, bool key) {
    auto advice = type_advice(type, key);
    if (!advice) return;
    Json j;
    j.str("column", column).str("type", type);
    add(s, advice->rule, Severity::Warning, object, facts, LockMode::None,
        fmt::format("Column {} of {}: {}.", column, object, advice->message), advice->alternative,
        j, false);
}

void Linter::fk_index_check(const Statement &s, const std::string &table,
                            const RelationFacts &facts, const Action &a) {
    if (a.fk_columns.empty() || a.fk_has_index) return;
    deferred_fk_.push_back({s, table, facts, a});
}

// At the end of the migration: an index created after the foreign key counts as well.
void Linter::finish() {
    for (const auto &d : deferred_fk_) fk_index_finding(d.statement, d.table, d.facts, d.action);
    std::stable_sort(findings_.begin(), findings_.end(), [](const Finding &a, const Finding &b) {
        return a.statement_no < b.statement_no;
    });
}

void Linter::fk_index_finding(const Statement &s, const std::string &table,
                              const RelationFacts &facts, const Action &a) {
    bool indexed = a.fk_has_index;
    auto range = ctx_.new_indexes.equal_range(table);
    for (auto it = range.first; it != range.second && !indexed; ++it) {
        const auto &cols = it->second;
        if (cols.size() >= a.fk_columns.size() &&
            std::equal(a.fk_columns.begin(), a.fk_columns.end(), cols.begin()))
            indexed = true;
    }
    if (indexed) return;
    Json j;
    std::string cols = join(a.fk_columns, ", ");
    j.str("columns", cols).str("referenced", a.referenced);
    add(s, "foreign_key_without_index", Severity::Warning, table, facts, LockMode::None,
        fmt::format("No index of {} starts with the referencing columns ({}): every DELETE or key "
                    "UPDATE on {} scans {} under lock, and joins cannot use an index.",
                    table, cols, a.referenced, table),
        fmt::format("CREATE INDEX CONCURRENTLY ON {} ({})", table, cols), j, false);
}

void Linter::alter_table(const Statement &s) {
    const std::string &t = s.object;
    const RelationFacts &f = s.facts;
    std::string desc = describe(f, t);
    for (const auto &a : s.actions) {
        LockMode lock = traced_lock(s, t, a.lock);
        bool rewrites = traced_rewrite(s, t, a.rewrites);
        Json j;
        if (!a.column.empty()) j.str("column", a.column);
        j.boolean("rewrites", rewrites).boolean("scans", a.scans);
        if (s.trace.ran && rewrites != a.rewrites)
            j.str("trace_overrides", rewrites ? "static analysis predicted no rewrite"
                                              : "static analysis predicted a rewrite");
        switch (a.kind) {
            case ActionKind::AddColumn: {
                if (a.not_null && !a.has_default && !a.identity && !a.serial &&
                    !a.generated_stored && f.exists && !is_new(t)) {
                    add(s, "add_column_not_null_without_default", Severity::Error, t, f, lock,
                        fmt::format("ADD COLUMN {} NOT NULL without a default fails on {} as soon "
                                    "as it has a row.",
                                    a.column, desc),
                        "add the column nullable (or with a constant default), backfill in "
                        "batches, then add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it and "
                        "SET NOT NULL",
                        j);
                }
                if (rewrites) {
                    std::string rule = a.volatile_default ? "add_column_volatile_default"
                                                          : "add_column_rewrites_table";
                    add(s, rule, Severity::Error, t, f, lock,
                        fmt::format("ADD COLUMN {} rewrites {} under {} ({}): reads and writes "
                                    "wait for the whole rewrite.",
                                    a.column, desc, lock_mode_name(lock), a.rewrite_reason),
                        a.volatile_default
                            ? "add the column without a default (or with a constant one), set "
                              "the default afterwards, backfill existing rows in batches"
                            : "add a plain nullable column, fill it in batches, then attach the "
                              "default/identity/generation",
                        j);
                } else if (a.unknown) {
                    add(s, "add_column_unknown", Severity::Info, t, f, lock,
                        fmt::format("Could not tell whether ADD COLUMN {} rewrites {}: {}.",
                                    a.column, desc, a.rewrite_reason),
                        "", j);
                }
                type_check(s, t, f, a.column, a.type_name, false);
                if (a.constraint == ConstraintKind::ForeignKey) fk_index_check(s, t, f, a);
                break;
            }
            case ActionKind::DropColumn:
                add(s, "drop_column", Severity::Warning, t, f, lock,
                    fmt::format("DROP COLUMN {} on {}: clients and views still selecting it "
                                "break at once, and the drop cannot be undone with its data.",
                                a.column, desc),
                    "stop using the column in the application first (deploy), then drop it", j,
                    false);
                break;
            case ActionKind::AlterColumnType:
                if (rewrites) {
                    add(s, "column_type_change_rewrites", Severity::Error, t, f, lock,
                        fmt::format("ALTER COLUMN {} TYPE {} rewrites {} and rebuilds its "
                                    "indexes under {} ({}).",
                                    a.column, a.type_name, desc, lock_mode_name(lock),
                                    a.rewrite_reason),
                        "add a new column of the new type, backfill it in batches, keep it in "
                        "sync with a trigger, then switch names in a short transaction",
                        j);
                } else if (a.unknown) {
                    add(s, "column_type_change_unknown", Severity::Warning, t, f, lock,
                        fmt::format("Could not tell whether ALTER COLUMN {} TYPE {} rewrites {}: "
                                    "{}.",
                                    a.column, a.type_name, desc, a.rewrite_reason),
                        "run lint_migration with trace => true to find out", j, false);
                } else {
                    add(s, "column_type_change", Severity::Info, t, f, lock,
                        fmt::format("ALTER COLUMN {} TYPE {} on {} needs no rewrite ({}), but "
                                    "takes {} briefly; clients may still see the old type "
                                    "in cached plans.",
                                    a.column, a.type_name, desc, a.rewrite_reason,
                                    lock_mode_name(lock)),
                        "", j, false);
                }
                type_check(s, t, f, a.column, a.type_name, false);
                break;
            case ActionKind::SetNotNull: {
                bool implied =
                    a.implied_by_check || ctx_.not_null_checks.count(t + "." + a.column) > 0;
                if (a.already_not_null) break;
                if (implied) {
                    add(s, "set_not_null", Severity::Info, t, f, lock,
                        fmt::format("SET NOT NULL on {}.{} skips the scan: validated CHECK "
                                    "constraints prove {} IS NOT NULL; it takes {} briefly.",
                                    t, a.column, a.column, lock_mode_name(lock)),
                        "", j, false);
                } else {
                    add(s, "set_not_null_scans", Severity::Error, t, f, lock,
                        fmt::format("SET NOT NULL on column {} scans all of {} under {}: reads "
                                    "and writes wait for the scan.",
                                    a.column, desc, lock_mode_name(lock)),
                        fmt::format("ADD CONSTRAINT {0}_not_null CHECK ({0} IS NOT NULL) NOT "
                                    "VALID; then VALIDATE CONSTRAINT in another transaction; then "
                                    "SET NOT NULL (no scan) and drop the CHECK",
                                    a.column),
                        j);
                }
                break;
            }
            case ActionKind::DropNotNull:
                break;
            case ActionKind::AddConstraint: {
                j.str("constraint", a.constraint_name);
                if (a.constraint == ConstraintKind::Check && !a.not_valid) {
                    add(s, "constraint_without_not_valid", Severity::Error, t, f, lock,
                        fmt::format("ADD CONSTRAINT {} CHECK without NOT VALID scans all of {} "
                                    "under {}.",
                                    a.constraint_name, desc, lock_mode_name(lock)),
                        "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a separate "
                        "transaction (SHARE UPDATE EXCLUSIVE: reads and writes go on)",
                        j);
                } else if (a.constraint == ConstraintKind::ForeignKey) {
                    if (!a.not_valid) {
                        add(s, "foreign_key_without_not_valid", Severity::Error, t, f, lock,
                            fmt::format("ADD FOREIGN KEY without NOT VALID scans all of {} under "
                                        "{} on it and on {}: writes to both wait.",
                                        desc, lock_mode_name(lock), a.referenced),
                            "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE "
                            "CONSTRAINT in a separate transaction",
                            j);
                    }
                    fk_index_check(s, t, f, a);
                } else if ((a.constraint == ConstraintKind::Unique ||
                            a.constraint == ConstraintKind::PrimaryKey ||
                            a.constraint == ConstraintKind::Exclusion) &&
                           !a.using_index) {
                    add(s, "constraint_builds_index", Severity::Error, t, f, lock,
                        fmt::format("ADD {} builds its index on {} under {}: reads and writes "
                                    "wait for the whole build.",
                                    a.constraint == ConstraintKind::Unique       ? "UNIQUE"
                                    : a.constraint == ConstraintKind::PrimaryKey ? "PRIMARY KEY"
                                                                                 : "EXCLUDE",
                                    desc, lock_mode_name(lock)),
                        a.constraint == ConstraintKind::Exclusion
                            ? "no concurrent form exists: build on a new table and swap, or run "
                              "it in a quiet window"
                            : "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING "
                              "INDEX",
                        j);
                }
                if (a.not_valid) {
                    ctx_.not_valid_in_tx.insert(t + "." + a.constraint_name);
                } else if (!a.check_not_null_column.empty()) {
                    ctx_.not_null_checks.insert(t + "." + a.check_not_null_column);
                }
                if (a.not_valid && !a.check_not_null_column.empty())
                    pending_checks_[t + "." + a.constraint_name] = a.check_not_null_column;
                break;
            }
            case ActionKind::ValidateConstraint: {
                std::string key = t + "." + a.column;
                auto p = pending_checks_.find(key);
                if (p != pending_checks_.end()) ctx_.not_null_checks.insert(t + "." + p->second);
                if (ctx_.in_block && ctx_.not_valid_in_tx.count(key)) {
                    add(s, "validate_in_same_transaction", Severity::Warning, t, f, lock,
                        fmt::format("VALIDATE CONSTRAINT {} runs in the same transaction that "
                                    "added it NOT VALID: the strong lock of the ADD is still held "
                                    "during the whole validation scan of {}.",
                                    a.column, desc),
                        "commit after ADD ... NOT VALID and validate in a separate transaction", j,
                        false);
                }
                break;
            }
            case ActionKind::DropConstraint:
                break;
            case ActionKind::SetLogged:
            case ActionKind::SetUnlogged:
                add(s, a.kind == ActionKind::SetLogged ? "set_logged" : "set_unlogged",
                    Severity::Error, t, f, lock,
                    fmt::format("SET {} rewrites {} under {}{}.",
                                a.kind == ActionKind::SetLogged ? "LOGGED" : "UNLOGGED", desc,
                                lock_mode_name(lock),
                                a.kind == ActionKind::SetUnlogged
                                    ? "; an unlogged table is emptied by a crash and not "
                                      "replicated"
                                    : " and writes all of it to WAL"),
                    "avoid switching persistence of a live table; copy into a new table instead",
                    j);
                break;
            case ActionKind::SetTablespace:
                add(s, "set_tablespace", Severity::Error, t, f, lock,
                    fmt::format("SET TABLESPACE copies {} under {}.", desc, lock_mode_name(lock)),
                    "use pg_repack --tablespace, or move it in a quiet window", j);
                break;
            case ActionKind::AttachPartition:
                j.str("partition", a.partition);
                add(s, "attach_partition", Severity::Info, t, f, lock,
                    fmt::format("ATTACH PARTITION {} takes {} on {} (reads and writes go on) and "
                                "ACCESS EXCLUSIVE on the partition, which it scans unless a "
                                "validated CHECK proves the partition bound.",
                                a.partition, lock_mode_name(lock), desc),
                    "add a CHECK matching the bound NOT VALID and VALIDATE it first", j, false);
                break;
            case ActionKind::DetachPartition:
                j.str("partition", a.partition);
                if (!a.concurrently)
                    add(s, "detach_partition_not_concurrent", Severity::Warning, t, f, lock,
                        fmt::format("DETACH PARTITION {} takes {} on {}: every query on the "
                                    "partitioned table waits.",
                                    a.partition, lock_mode_name(lock), desc),
                        "DETACH PARTITION ... CONCURRENTLY (outside a transaction block)", j);
                else if (ctx_.in_block)
                    add(s, "concurrently_in_transaction", Severity::Error, t, f, lock,
                        "DETACH PARTITION CONCURRENTLY cannot run inside a transaction block: "
                        "this migration would fail.",
                        "run it on its own, outside a transaction (\"transactional\": false)", j,
                        false);
                break;
            case ActionKind::AddIdentity:
                break;
            default:
                break;
        }
    }
}

void Linter::run(const Statement &s) {
    const size_t before = findings_.size();
    const std::string &t = s.object;
    const RelationFacts &f = s.facts;
    std::string desc = describe(f, t);
    LockMode lock = traced_lock(s, t, s.lock);

    // Statements after one that holds ACCESS EXCLUSIVE, in the same transaction.
    if (ctx_.in_block && !ctx_.access_exclusive_held.empty() && !ctx_.warned_after_exclusive &&
        s.kind != Kind::TransactionCommit && s.kind != Kind::TransactionRollback &&
        s.kind != Kind::SetLockTimeout && s.kind != Kind::SetStatementTimeout &&
        s.kind != Kind::SetOther) {
        ctx_.warned_after_exclusive = true;
        Json j;
        j.num("locked_by_statement", ctx_.access_exclusive_statement);
        add(s, "statements_after_access_exclusive", Severity::Warning, ctx_.access_exclusive_held,
            RelationFacts{}, LockMode::AccessExclusive,
            fmt::format("Statement {} took ACCESS EXCLUSIVE on {} and the transaction goes on: "
                        "the lock is held, blocking all reads and writes of it, until COMMIT.",
                        ctx_.access_exclusive_statement, ctx_.access_exclusive_held),
            "commit right after the statement that takes ACCESS EXCLUSIVE (one such statement "
            "per transaction)",
            j, false);
    }

    switch (s.kind) {
        case Kind::Unknown:
            add(s, "not_analysed", Severity::Info, t, f, lock,
                fmt::format("{} is not analysed by the linter{}.", s.tag,
                            s.reason.empty() ? "" : ": " + s.reason),
                "", {}, false);
            break;
        case Kind::Unanalysable:
            add(s, "cannot_analyse", Severity::Info, t, f, lock,
                fmt::format("{} cannot be analysed statically: {}. Its locks and rewrites are "
                            "unknown{}.",
                            s.tag, s.reason,
                            s.trace.ran ? " to static analysis; the trace shows what it did"
                                        : "; try trace => true"),
                "", {}, false);
            break;
        case Kind::TransactionBegin:
            if (ctx_.explicit_block)
                add(s, "transaction_nesting", Severity::Warning, "", {}, LockMode::None,
                    "BEGIN inside a transaction block does nothing (WARNING: there is already a "
                    "transaction in progress); the COMMIT meant for it ends the outer one.",
                    "remove the nested BEGIN/COMMIT", {}, false);
            ctx_.explicit_block = true;
            ctx_.in_block = true;
            break;
        case Kind::TransactionCommit:
        case Kind::TransactionRollback:
            ctx_.explicit_block = false;
            ctx_.in_block = transactional_;
            ctx_.not_valid_in_tx.clear();
            if (!transactional_) {
                ctx_.access_exclusive_held.clear();
                ctx_.warned_after_exclusive = false;
            }
            break;
        case Kind::SetLockTimeout:
            ctx_.lock_timeout_set =
                s.setting != "0" && s.setting != "'0'" && s.setting != "DEFAULT";
            break;
        case Kind::CreateTable:
            if (!t.empty()) ctx_.created.insert(t);
            if (!s.parent.empty() && !s.other_locks.empty()) {
                const auto &p = s.other_locks.back();
                LockMode plock = traced_lock(s, p.object, p.lock);
                if (plock == LockMode::AccessExclusive)
                    add(s, "create_partition_locks_parent", Severity::Warning, p.object, p.facts,
                        plock,
                        fmt::format("CREATE TABLE ... PARTITION OF takes ACCESS EXCLUSIVE on the "
                                    "partitioned table {}: every query on it waits.",
                                    describe(p.facts, p.object)),
                        "CREATE TABLE ... (LIKE parent INCLUDING ALL), add a CHECK matching the "
                        "bound, then ATTACH PARTITION (SHARE UPDATE EXCLUSIVE on the parent)");
                lock_checks(s, p.object, p.facts, plock);
            }
            for (const auto &c : s.column_types) type_check(s, t, f, c.column, c.type_name, c.key);
            for (const auto &a : s.table_constraints) {
                if (a.constraint == ConstraintKind::ForeignKey) {
                    fk_index_check(s, t, f, a);
                    for (const auto &o : s.other_locks) lock_checks(s, o.object, o.facts, o.lock);
                }
            }
            break;
        case Kind::CreateIndex:
            if (!s.columns.empty()) ctx_.new_indexes.emplace(t, s.columns);
            if (s.concurrently && f.exists && f.relkind == 'p') {
                add(s, "concurrently_on_partitioned_table", Severity::Error, t, f, lock,
                    fmt::format("CREATE INDEX CONCURRENTLY is not supported on the partitioned "
                                "table {}: the statement fails.",
                                desc),
                    "CREATE INDEX ON ONLY the parent (invalid), CREATE INDEX CONCURRENTLY on each "
                    "partition, then ALTER INDEX ... ATTACH PARTITION for each",
                    {}, false);
            } else if (s.concurrently) {
                if (ctx_.in_block)
                    add(s, "concurrently_in_transaction", Severity::Error, t, f, lock,
                        "CREATE INDEX CONCURRENTLY cannot run inside a transaction block: this "
                        "migration would fail.",
                        "run it on its own, outside a transaction block: CALL "
                        "virtuoso.run_migration(..., '{\"transactional\": false}') or CALL "
                        "virtuoso.build_index_concurrently(...)",
                        {}, false);
            } else if (f.exists || is_new(t)) {
                add(s, "create_index_not_concurrent", Severity::Error, t, f, lock,
                    fmt::format("CREATE INDEX without CONCURRENTLY takes {} on {}: writes wait "
                                "for the whole build.",
                                lock_mode_name(lock), desc),
                    "CREATE INDEX CONCURRENTLY (outside a transaction block)");
            }
            break;
        case Kind::DropIndex:
            if (s.concurrently) {
                if (ctx_.in_block)
                    add(s, "concurrently_in_transaction", Severity::Error, t, f, lock,
                        "DROP INDEX CONCURRENTLY cannot run inside a transaction block: this "
                        "migration would fail.",
                        "run it on its own, outside a transaction", {}, false);
            } else if (f.exists) {
                add(s, "drop_index_not_concurrent", Severity::Warning, t, f, lock,
                    fmt::format("DROP INDEX without CONCURRENTLY takes {} on the table of {}: all "
                                "reads and writes of the table wait.",
                                lock_mode_name(lock), desc),
                    "DROP INDEX CONCURRENTLY (outside a transaction block)");
            }
            break;
        case Kind::Reindex:
            if (s.concurrently) {
                if (ctx_.in_block)
                    add(s, "concurrently_in_transaction", Severity::Error, t, f, lock,
                        "REINDEX CONCURRENTLY cannot run inside a transaction block: this "
                        "migration would fail.",
                        "run it on its own, outside a transaction", {}, false);
            } else {
                add(s, "reindex_not_concurrent", Severity::Error, t, f, lock,
                    fmt::format("REINDEX without CONCURRENTLY locks {} ({}): writes wait (and "
                                "reads that would use the index) for the whole rebuild.",
                                t.empty() ? s.reason : desc, lock_mode_name(lock)),
                    "REINDEX ... CONCURRENTLY (outside a transaction block)");
            }
            break;
        case Kind::DropTable:
            if (f.exists && !is_new(t))
                add(s, "drop_table", Severity::Warning, t, f, lock,
                    fmt::format("DROP TABLE {}: clients still using it break at once and the "
                                "data cannot be recovered by a rollback migration.",
                                desc),
                    "stop using the table first; rename it away, and drop it in a later "
                    "release",
                    {}, false);
            break;
        case Kind::AlterTable:
            alter_table(s);
            break;
        case Kind::RenameTable:
            if (f.exists && !is_new(t))
                add(s, "rename_table", Severity::Warning, t, f, lock,
                    fmt::format("Renaming {} to {} breaks every client and stored query that "
                                "uses the old name.",
                                desc, s.rename_to),
                    "create the new table or a view under the new name, move clients, then drop "
                    "the old name",
                    {}, false);
            break;
        case Kind::RenameColumn:
            if (f.exists && !is_new(t))
                add(s, "rename_column", Severity::Warning, t, f, lock,
                    fmt::format("Renaming a column of {} to {} breaks every client that uses the "
                                "old name.",
                                desc, s.rename_to),
                    "add the new column, write both, backfill, move readers, then drop the old "
                    "one",
                    {}, false);
            break;
        case Kind::Truncate:
            if (f.exists && !is_new(t))
                add(s, s.cascade ? "truncate_cascade" : "truncate",
                    s.cascade ? Severity::Error : Severity::Warning, t, f, lock,
                    fmt::format("TRUNCATE{} takes {} on {}{}.", s.cascade ? " CASCADE" : "",
                                lock_mode_name(lock), desc,
                                s.cascade ? " and silently empties every table that references "
                                            "it, recursively"
                                          : " and empties it; the data cannot be recovered "
                                            "after commit"),
                    s.cascade ? "TRUNCATE the referencing tables explicitly, by name"
                              : "DELETE in batches if the table is in use",
                    {}, !s.cascade);
            break;
        case Kind::Vacuum:
            if (ctx_.in_block)
                add(s, "vacuum_in_transaction", Severity::Error, t, f, lock,
                    "VACUUM cannot run inside a transaction block: this migration would fail.",
                    "leave VACUUM to autovacuum or run it outside the migration", {}, false);
            if (s.full)
                add(s, "vacuum_full", Severity::Error, t, f, lock,
                    fmt::format("VACUUM FULL rewrites {} under ACCESS EXCLUSIVE.",
                                t.empty() ? std::string("every table of the database") : desc),
                    "pg_repack, or plain VACUUM");
            break;
        case Kind::Cluster:
            add(s, "cluster", Severity::Error, t, f, lock,
                fmt::format("CLUSTER rewrites {} under ACCESS EXCLUSIVE.",
                            t.empty() ? std::string("every clustered table") : desc),
                "pg_repack");
            break;
        case Kind::LockTable:
            add(s, "lock_table", Severity::Warning, t, f, lock,
                fmt::format("LOCK TABLE {} IN {} MODE blocks {} until the transaction ends.", desc,
                            lock_mode_name(lock),
                            blocks_reads(lock)    ? "all reads and writes of it"
                            : blocks_writes(lock) ? "all writes to it"
                                                  : "conflicting DDL"),
                "let the statements take the locks they need, as late as possible");
            break;
        case Kind::Update:
        case Kind::Delete:
            if (!s.has_where && f.exists && !is_new(t)) {
                bool big = f.rows >= ctx_.options.big_rows ||
                           (f.rows < 0 && f.size_bytes >= 8 * ctx_.options.tiny_bytes);
                add(s, s.kind == Kind::Update ? "unbounded_update" : "unbounded_delete",
                    big ? Severity::Error : Severity::Warning, t, f, lock,
                    fmt::format("{} without WHERE touches every row of {} in one transaction: "
                                "row locks on all of them, WAL and bloat for the whole table.",
                                s.tag, desc),
                    "update/delete in batches by key (WHERE key > last ORDER BY key LIMIT n), "
                    "committing each batch");
            }
            break;
        case Kind::RefreshMatView:
            if (!s.concurrently && f.exists)
                add(s, "refresh_materialized_view", Severity::Warning, t, f, lock,
                    fmt::format("REFRESH MATERIALIZED VIEW without CONCURRENTLY takes ACCESS "
                                "EXCLUSIVE on {}: reads of it wait for the whole refresh.",
                                desc),
                    "REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index)", {},
                    false);  // its duration is the query's, not the view's size
            else if (s.concurrently && ctx_.in_block)
                add(s, "concurrently_in_transaction", Severity::Info, t, f, lock,
                    "REFRESH MATERIALIZED VIEW CONCURRENTLY runs in the transaction (it is "
                    "allowed there), holding its EXCLUSIVE lock until commit.",
                    "", {}, false);
            break;
        case Kind::DropDatabase:
            add(s, "drop_database", Severity::Error, t, f, lock,
                fmt::format("DROP DATABASE {} in a migration.", t),
                "never drop databases from a migration", {}, false);
            break;
        case Kind::DropSchema:
            if (s.cascade)
                add(s, "drop_schema_cascade", Severity::Error, t, f, lock,
                    fmt::format("DROP SCHEMA {} CASCADE drops every object in it.", t),
                    "drop the objects by name", {}, false);
            break;
        case Kind::AlterDomainAddConstraint:
            add(s, "alter_domain_add_constraint", Severity::Warning, t, f, lock,
                "ALTER DOMAIN ADD CONSTRAINT checks every column of the domain in every table, "
                "under locks that block writes.",
                "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT separately", {}, false);
            break;
        case Kind::CreateDomainWithConstraint:
            add(s, "create_domain_with_constraint", Severity::Info, t, f, lock,
                "A domain with a CHECK constraint cannot later be changed without checking every "
                "column that uses it.",
                "prefer a CHECK on the table column", {}, false);
            break;
        case Kind::AlterTypeAddValue:
            if (ctx_.in_block)
                add(s, "enum_value_in_transaction", Severity::Info, t, f, lock,
                    "ALTER TYPE ... ADD VALUE: the new value cannot be used until the transaction "
                    "commits.",
                    "", {}, false);
            break;
        case Kind::CreateTrigger:
            break;
        default:
            break;
    }

    // What the trace saw when it ran the statement.
    if (!s.trace.error.empty()) {
        bool timeout = s.trace.sqlstate == "55P03";
        Json j;
        j.str("error", s.trace.error).str("sqlstate", s.trace.sqlstate);
        add(s, timeout ? "trace_lock_timeout" : "trace_failed",
            timeout || ctx_.trace_skipped ? Severity::Warning : Severity::Error, t, f, lock,
            timeout ? fmt::format("When traced, {} could not get its lock within lock_timeout: {}. "
                                  "Other sessions hold conflicting locks now; run as is, it would "
                                  "wait and block every query queued behind it.",
                                  s.tag, s.trace.error)
                    : fmt::format("When traced, {} failed: {} (SQLSTATE {}).{}", s.tag,
                                  s.trace.error, s.trace.sqlstate,
                                  ctx_.trace_skipped ? " An earlier statement was not run by the "
                                                       "trace, which may be the cause."
                                                     : " The migration would fail here."),
            timeout ? "retry with a short lock_timeout when the blocking sessions are done" : "", j,
            false);
    }
    if (!s.trace.skipped.empty() && s.kind != Kind::TransactionBegin &&
        s.kind != Kind::TransactionCommit && s.kind != Kind::TransactionRollback &&
        s.kind != Kind::Savepoint)
        ctx_.trace_skipped = true;
    if (s.kind == Kind::Unanalysable && s.trace.ran && !s.trace.locks.empty()) {
        std::map<std::string, LockMode> strongest;
        for (const auto &l : s.trace.locks)
            strongest[l.object] = std::max(strongest[l.object], l.mode);
        std::vector<std::string> seen;
        for (const auto &[object, mode] : strongest)
            seen.push_back(fmt::format("{} on {}", lock_mode_name(mode), object));
        add(s, "traced_locks", Severity::Info, "", {}, LockMode::None,
            fmt::format("When traced, {} took: {}.", s.tag, join(seen, ", ")), "", {}, false);
    }

    for (const auto &fn : s.user_functions) {
        Json j;
        j.str("function", fn);
        add(s, "calls_user_function", Severity::Info, t, f, lock,
            fmt::format("{} calls {}: what that function does (locks, dynamic SQL) is not "
                        "analysed{}.",
                        s.tag, fn, s.trace.ran ? "; the trace shows the locks it took" : ""),
            "", j, false);
    }

    // A relation that is not there now and not created earlier in the migration.
    if (!t.empty() && !f.exists && !is_new(t) &&
        (s.kind == Kind::AlterTable || s.kind == Kind::CreateIndex || s.kind == Kind::Update ||
         s.kind == Kind::Delete || s.kind == Kind::Insert || s.kind == Kind::RenameTable ||
         s.kind == Kind::RenameColumn || s.kind == Kind::Truncate || s.kind == Kind::LockTable ||
         s.kind == Kind::CreateTrigger))
        add(s, "relation_missing", Severity::Info, t, f, lock,
            fmt::format("{} does not exist now and is not created earlier in this migration: the "
                        "statement fails unless something else creates it first, and its size "
                        "and locks cannot be checked.",
                        t),
            "", {}, false);

    // Lock rules for the main object and the other relations the statement locks.
    if (s.kind != Kind::CreateTable) {
        lock_checks(s, t, f, lock);
        for (const auto &o : s.other_locks)
            lock_checks(s, o.object, o.facts, traced_lock(s, o.object, o.lock));
    }
    // Every statement that locks an existing relation says so, hazard or not.
    if (findings_.size() == before && lock != LockMode::None && !t.empty() && f.exists &&
        !is_new(t) && s.kind != Kind::CreateTable) {
        add(s, "lock", Severity::Info, t, f, lock,
            fmt::format("{} takes {} on {}: {}.", s.tag, lock_mode_name(lock), desc,
                        blocks_reads(lock)    ? "reads and writes wait while it is held"
                        : blocks_writes(lock) ? "writes wait while it is held, reads go on"
                                              : "reads and writes go on"),
            "", {}, false);
    }
    if (lock == LockMode::AccessExclusive && ctx_.in_block && f.exists && !is_new(t) &&
        ctx_.access_exclusive_held.empty()) {
        ctx_.access_exclusive_held = t;
        ctx_.access_exclusive_statement = s.no;
    }
}

}  // namespace

std::string details_json(const Finding &f, bool with_sql) {
    std::string details = f.details.empty() ? "{}" : f.details;
    if (!with_sql || f.statement_sql.empty()) return details;
    details.pop_back();  // the closing brace
    if (details.size() > 1) details += ",";
    return details + json_quote("sql") + ":" + json_quote(f.statement_sql) + "}";
}

std::string findings_json(const std::vector<Finding> &findings, bool with_sql) {
    std::string out = "[";
    for (size_t i = 0; i < findings.size(); ++i) {
        const auto &f = findings[i];
        if (i) out += ",";
        Json j;
        j.num("statement_no", f.statement_no)
            .str("rule", f.rule)
            .str("severity", severity_name(f.severity));
        if (f.object.empty())
            j.raw("object", "null");
        else
            j.str("object", f.object);
        if (f.lock == LockMode::None)
            j.raw("lock_mode", "null");
        else
            j.str("lock_mode", lock_mode_name(f.lock));
        j.str("message", f.message);
        if (f.safe_alternative.empty())
            j.raw("safe_alternative", "null");
        else
            j.str("safe_alternative", f.safe_alternative);
        j.raw("details", details_json(f, with_sql));
        out += j.done();
    }
    return out + "]";
}

Severity worst(const std::vector<Finding> &findings) {
    Severity w = Severity::Info;
    for (const auto &f : findings) w = std::max(w, f.severity);
    return w;
}

bool top_level_only(const Statement &s) {
    switch (s.kind) {
        case Kind::CreateIndex:
        case Kind::DropIndex:
            return s.concurrently;
        case Kind::Reindex:  // REINDEX SCHEMA/DATABASE/SYSTEM name no single relation
            return s.concurrently || s.object.empty();
        case Kind::AlterTable:
            for (const auto &a : s.actions)
                if (a.kind == ActionKind::DetachPartition && a.concurrently) return true;
            return false;
        case Kind::Vacuum:
        case Kind::DropDatabase:
            return true;
        case Kind::Cluster:
            return s.object.empty();
        default:
            return false;
    }
}

struct Session::Impl {
    Options options;
    OldestTransaction oldest;
    Linter linter;
    Impl(const Options &o, const OldestTransaction &t)
        : options(o), oldest(t), linter(options, o.transactional.value_or(true), oldest) {}
};

Session::Session(const Options &options, const OldestTransaction &oldest)
    : impl_(std::make_unique<Impl>(options, oldest)) {}
Session::~Session() = default;
void Session::add(const Statement &s) {
    impl_->linter.run(s);
}
std::vector<Finding> Session::finish() {
    impl_->linter.finish();
    return impl_->linter.take();
}

std::vector<Finding> lint(const std::vector<Statement> &statements, const Options &options,
                          const OldestTransaction &oldest) {
    bool transactional = true;
    if (options.transactional)
        transactional = *options.transactional;
    else
        for (const auto &s : statements)
            if (top_level_only(s) || s.kind == Kind::TransactionBegin ||
                s.kind == Kind::TransactionCommit)
                transactional = false;
    Linter linter(options, transactional, oldest);
    for (const auto &s : statements) linter.run(s);
    linter.finish();
    return linter.take();
}

}  // namespace virtuoso::lint
