#include "db_virtuoso/maintenance/planner.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace virtuoso::maintenance {

const char *action_name(Action action) {
    switch (action) {
        case Action::Vacuum:
            return "VACUUM";
        case Action::VacuumFreeze:
            return "VACUUM (FREEZE)";
        case Action::Analyze:
            return "ANALYZE";
        case Action::None:
            break;
    }
    return "";
}

double dead_tuple_pct(int64_t dead, int64_t live) {
    if (dead <= 0) return 0;
    if (live <= 0) return 100;
    return 100.0 * static_cast<double>(dead) / static_cast<double>(live);
}

int64_t due_count(int64_t live, const Thresholds &t) {
    const double scaled =
        t.dead_tuple_pct / 100.0 * static_cast<double>(std::max<int64_t>(live, 0));
    return t.dead_tuple_threshold + static_cast<int64_t>(scaled);
}

namespace {

// Base plus scale, as autovacuum: the count alone would vacuum big tables for a handful of
// dead rows, the percentage alone tiny ones all the time.
bool passes(int64_t count, int64_t live, const Thresholds &t) {
    return count > 0 && count >= due_count(live, t);
}

// Whether the last action of the kind was too recent to do it again.
bool too_soon(const std::optional<double> &since, const Thresholds &t) {
    return t.min_interval_s > 0 && since && *since < t.min_interval_s;
}

int rank(Action action) {
    switch (action) {
        case Action::VacuumFreeze:
            return 0;
        case Action::Vacuum:
            return 1;
        case Action::Analyze:
            return 2;
        case Action::None:
            break;
    }
    return 3;
}

// How far past its freeze limit a table is, as a fraction of that limit: the more, the sooner.
double freeze_urgency(const TableStats &t, const Thresholds &th) {
    double x = th.freeze_xid_age > 0 ? double(t.xid_age) / double(th.freeze_xid_age) : 0;
    double m = th.freeze_mxid_age > 0 ? double(t.mxid_age) / double(th.freeze_mxid_age) : 0;
    return std::max(x, m);
}

}  // namespace

Decision decide(const TableStats &table, const Thresholds &t) {
    Decision d;
    d.table = table;
    d.dead_pct = dead_tuple_pct(table.dead_tuples, table.live_tuples);
    const bool analyze_due = passes(table.modified_since_analyze, table.live_tuples, t) &&
                             !too_soon(table.seconds_since_analyze, t);
    const bool vacuum_due =
        passes(table.dead_tuples, table.live_tuples, t) && !too_soon(table.seconds_since_vacuum, t);
    const int64_t due = due_count(table.live_tuples, t);
    std::string analyze_note =
        analyze_due ? fmt::format(
                          "{} rows changed since the last analyze (due at {} = {} + {:g}% "
                          "of {} live rows)",
                          table.modified_since_analyze, due, t.dead_tuple_threshold,
                          t.dead_tuple_pct, table.live_tuples)
                    : std::string();

    const bool xid_old = t.freeze_xid_age > 0 && table.xid_age >= t.freeze_xid_age;
    const bool mxid_old = t.freeze_mxid_age > 0 && table.mxid_age >= t.freeze_mxid_age;
    if (xid_old || mxid_old) {
        d.action = Action::VacuumFreeze;
        d.reason = xid_old ? fmt::format("transaction ID age {} reached the freeze limit {}",
                                         table.xid_age, t.freeze_xid_age)
                           : fmt::format("multixact ID age {} reached the freeze limit {}",
                                         table.mxid_age, t.freeze_mxid_age);
    } else if (vacuum_due) {
        d.action = Action::Vacuum;
        d.reason = fmt::format("{} dead tuples = {:.1f}% of {} live (due at {} = {} + {:g}%)",
                               table.dead_tuples, d.dead_pct, table.live_tuples, due,
                               t.dead_tuple_threshold, t.dead_tuple_pct);
    } else if (analyze_due) {
        d.action = Action::Analyze;
        d.reason = analyze_note;
        return d;
    } else {
        return d;
    }
    if (analyze_due) {
        d.also_analyze = true;
        d.reason += "; also analyzes: " + analyze_note;
    }
    return d;
}

std::vector<Decision> plan(const std::vector<TableStats> &tables, const Thresholds &t) {
    std::vector<Decision> out;
    for (const auto &table : tables) {
        Decision d = decide(table, t);
        if (d.action != Action::None) out.push_back(std::move(d));
    }
    std::stable_sort(out.begin(), out.end(), [&t](const Decision &a, const Decision &b) {
        if (rank(a.action) != rank(b.action)) return rank(a.action) < rank(b.action);
        switch (a.action) {
            case Action::VacuumFreeze:
                return freeze_urgency(a.table, t) > freeze_urgency(b.table, t);
            case Action::Vacuum:
                return a.table.dead_tuples > b.table.dead_tuples;
            default:
                return a.table.modified_since_analyze > b.table.modified_since_analyze;
        }
    });
    return out;
}

void skip_truncation(Decision &d, const std::string &why) {
    if (d.action != Action::Vacuum && d.action != Action::VacuumFreeze) return;
    d.truncate = false;
    d.reason += fmt::format("; without truncation: {}", why);
}

std::string command_for(const Decision &d,
                        const std::function<std::string(const std::string &)> &quote_ident) {
    const std::string target = quote_ident(d.table.schema) + "." + quote_ident(d.table.name);
    std::vector<std::string> options;
    switch (d.action) {
        case Action::VacuumFreeze:
            options.push_back("FREEZE");
            [[fallthrough]];
        case Action::Vacuum:
            if (d.also_analyze) options.push_back("ANALYZE");
            if (!d.truncate) options.push_back("TRUNCATE false");
            if (options.empty()) return "VACUUM " + target;
            return fmt::format("VACUUM ({}) {}", fmt::join(options, ", "), target);
        case Action::Analyze:
            return "ANALYZE " + target;
        case Action::None:
            break;
    }
    return {};
}

std::vector<RoundRow> run_round(const std::vector<Decision> &decisions,
                                const RoundSettings &settings, Executor &executor,
                                const std::function<double()> &elapsed_seconds) {
    std::vector<RoundRow> rows;
    rows.reserve(decisions.size());
    const bool window_open = settings.window.contains(settings.minute_of_day);
    for (const auto &d : decisions) {
        RoundRow row{d, {}};
        if (!d.table.may_maintain) {
            row.outcome = {kSkipped,
                           "permission denied: only the table owner, a superuser or the "
                           "database owner may maintain this table",
                           0};
        } else if (!window_open) {
            row.outcome = {kSkipped,
                           fmt::format("outside the maintenance window {}", settings.window_text),
                           0};
        } else if (settings.dry_run) {
            row.outcome = {kDryRun, d.reason, 0};
        } else if (settings.budget_seconds > 0 && elapsed_seconds() >= settings.budget_seconds) {
            row.outcome = {kSkipped,
                           fmt::format("time budget of {:g} s for this round used up; next "
                                       "round",
                                       settings.budget_seconds),
                           0};
        } else {
            row.outcome = executor.perform(d);
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

}  // namespace virtuoso::maintenance
