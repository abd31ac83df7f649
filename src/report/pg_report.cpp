// virtuoso.report_html(since interval, index_advice boolean): one self-contained HTML page.
//
// The data comes from the extension's own tables, views and functions, read as the caller
// (the function is not SECURITY DEFINER): the report shows what the caller could query
// itself, nothing more, and reuses the checks' logic instead of repeating it.  Each section
// reads in its own subtransaction, so a section the caller may not see (no SELECT on a log,
// pg_stat_statements missing) says why and the others still render; a cancel, a timeout or
// running out of resources still ends the call.
#include "db_virtuoso/report/html.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "db_virtuoso/pg/spi.hpp"

namespace {

using namespace virtuoso;
using pg::SpiResult;
using pg::Value;
using report::Cell;
using report::TableRow;

std::string str(const Value &v, const char *null_text = "") {
    return v ? *v : null_text;
}
double dbl(const Value &v, double fallback = 0) {
    return v ? std::strtod(v->c_str(), nullptr) : fallback;
}
Cell num_cell(const Value &v, int decimals = 1) {
    return {v ? report::format_number(dbl(v), decimals) : "", "num"};
}

// Errors that end the whole report instead of one section: those that end any call (the
// user's cancel or timeout, shutdown, out of memory or disk), and also serialization
// failures and deadlocks (the caller retries) and system and internal errors.
bool ends_the_report(int sqlstate) {
    int category = ERRCODE_TO_CATEGORY(sqlstate);
    return pg::ends_the_call(sqlstate) || category == ERRCODE_SYSTEM_ERROR ||
           category == ERRCODE_INTERNAL_ERROR || category == ERRCODE_TRANSACTION_ROLLBACK;
}

// Runs f in a subtransaction; returns the text of an error the reader should see.
template <typename F>
std::optional<std::string> in_section(F &&f) {
    pg::SubTransaction sub;
    std::string message;
    try {
        f();
        sub.commit();
        return std::nullopt;
    } catch (const pg::PgError &e) {
        if (ends_the_report(e.sqlstate())) throw;
        message =
            fmt::format("Not shown: {} (SQLSTATE {})", e.what(), unpack_sql_state(e.sqlstate()));
        if (e.data() && e.data()->hint) message += fmt::format(". Hint: {}", e.data()->hint);
    }
    sub.rollback();
    return message;
}

struct Window {
    std::string since_text;   // the argument as PostgreSQL writes it
    double from = 0, to = 0;  // epoch seconds
    double bucket = 86400;    // seconds per chart column
};

// At most about 60 columns per chart: hours up to 2 days, days up to 2 months, then weeks or
// multiples of 30 days.
double bucket_for(double span) {
    if (span <= 2 * 86400.0) return 3600;
    if (span <= 62 * 86400.0) return 86400;
    if (span <= 366 * 86400.0) return 7 * 86400;
    return 30 * 86400.0 * std::ceil(span / (30 * 86400.0) / 60);
}

std::string bucket_name(double bucket) {
    if (bucket == 3600) return "hour";
    if (bucket == 86400) return "day";
    if (bucket == 7 * 86400) return "week";
    return report::format_number(bucket / 86400, 0) + " days";
}

// "11-30 14:00" for hours, "11-30" for days (the year is in the page's subtitle).
std::string column_label(const Window &w, double t) {
    std::string full = report::format_utc(t, w.bucket < 86400);
    return w.to - w.from > 300 * 86400.0 ? full.substr(0, 10) : full.substr(5);
}

// The columns of the window, one per bucket.
std::vector<report::StackedColumn> empty_columns(const Window &w, std::size_t series) {
    std::vector<report::StackedColumn> cols;
    double first = std::floor(w.from / w.bucket) * w.bucket;
    for (double t = first; t <= w.to && cols.size() < 400; t += w.bucket)
        cols.push_back({column_label(w, t), std::vector<double>(series, 0)});
    if (cols.empty()) cols.push_back({column_label(w, first), std::vector<double>(series, 0)});
    return cols;
}
std::size_t column_of(const Window &w, double t, std::size_t ncols) {
    double first = std::floor(w.from / w.bucket) * w.bucket;
    double i = std::floor((t - first) / w.bucket);
    if (!(i >= 0)) return 0;
    return std::min(ncols - 1, static_cast<std::size_t>(i));
}

struct Counts {
    long migrations = -1, failed = -1, lock_waits = -1, critical = -1, warn = -1, alerts = -1;
    long maintenance = -1;
};

const std::vector<std::string> kStatuses = {"SUCCESS", "FAILED",  "ROLLED_BACK",
                                            "RUNNING", "SKIPPED", "DRY_RUN"};

void migrations_section(pg::InternalSql &sql, const Window &w, report::Document &doc,
                        Counts &counts) {
    doc.begin_section("migrations", "Migrations");
    // Aggregated and thinned in SQL: 10,000 runs come back as a few thousand rows at most.
    SpiResult buckets, points, failures, longest, waits, rollbacks;
    const std::string from = fmt::format("{:.6f}", w.from), to = fmt::format("{:.6f}", w.to),
                      bucket = fmt::format("{:.0f}", w.bucket),
                      columns = std::to_string(report::kScatterColumns);
    auto error = in_section([&] {
        buckets = sql.execute(
            "SELECT floor(date_part('epoch', m.started_at) / $2::float8) * $2::float8, m.status, "
            "       count(*), sum(jsonb_array_length(m.lock_waits)) "
            "FROM virtuoso.migration_log m WHERE m.started_at >= to_timestamp($1::float8) "
            "GROUP BY 1, 2",
            {from, bucket});
        points = sql.execute(
            "SELECT q.started, q.took, q.status, q.name, q.started_at::text FROM ("
            "SELECT DISTINCT ON (p.col, p.status) p.started, p.took, p.status, p.name, "
            "p.started_at "
            "FROM (SELECT m.status, m.name, m.started_at, "
            "             date_part('epoch', m.started_at) AS started, "
            "             date_part('epoch', coalesce(m.duration, m.completed_at - m.started_at, "
            "                                         clock_timestamp() - m.started_at)) AS took, "
            "             floor((date_part('epoch', m.started_at) - $1::float8) "
            "                   / GREATEST(($2::float8 - $1::float8) / $3::int, 1e-6)) AS col "
            "      FROM virtuoso.migration_log m WHERE m.started_at >= to_timestamp($1::float8)) p "
            "ORDER BY p.col, p.status, p.took DESC) q",
            {from, to, columns});
        failures = sql.execute(
            "SELECT m.started_at::text, m.name, m.sqlstate, m.error_message, m.attempts, "
            "m.executed_by, "
            "       count(*) OVER () "
            "FROM virtuoso.migration_log m "
            "WHERE m.started_at >= to_timestamp($1::float8) AND m.status = 'FAILED' "
            "ORDER BY m.started_at DESC LIMIT 20",
            {from});
        longest = sql.execute(
            "SELECT m.started_at::text, m.name, m.status, "
            "       date_part('epoch', coalesce(m.duration, m.completed_at - m.started_at)), "
            "m.attempts "
            "FROM virtuoso.migration_log m "
            "WHERE m.started_at >= to_timestamp($1::float8) "
            "ORDER BY coalesce(m.duration, m.completed_at - m.started_at) DESC NULLS LAST LIMIT 10",
            {from});
        waits = sql.execute(
            "SELECT m.started_at::text, m.name, m.status, jsonb_array_length(m.lock_waits), "
            "       (SELECT sum((x ->> 'waited_ms')::numeric) FROM "
            "jsonb_array_elements(m.lock_waits) x), "
            "       (SELECT string_agg(DISTINCT x ->> 'command', ', ') FROM "
            "jsonb_array_elements(m.lock_waits) x), "
            "       left((m.lock_waits -> -1 -> 'blockers')::text, 300) "
            "FROM virtuoso.migration_log m "
            "WHERE m.started_at >= to_timestamp($1::float8) AND jsonb_array_length(m.lock_waits) > "
            "0 "
            "ORDER BY 4 DESC, m.started_at DESC LIMIT 20",
            {from});
        rollbacks = sql.execute(
            "SELECT m.rollback_at::text, m.name, m.status, m.rollback_reason, "
            "       coalesce(array_to_string(m.backup_tables, ', '), '') "
            "FROM virtuoso.migration_log m "
            "WHERE m.rollback_at >= to_timestamp($1::float8) ORDER BY m.rollback_at DESC LIMIT 50",
            {from});
    });
    if (error) {
        doc.paragraph(*error, "error");
        doc.paragraph(
            "The migration log is readable by the roles granted SELECT on virtuoso.migration_log "
            "(nobody but superusers by default).",
            "note");
        doc.end_section();
        return;
    }
    auto status_index = [](const std::string &status) {
        auto s = static_cast<std::size_t>(std::find(kStatuses.begin(), kStatuses.end(), status) -
                                          kStatuses.begin());
        return s < kStatuses.size() ? s : 0;
    };
    long n = 0;
    counts.failed = 0;
    counts.lock_waits = 0;
    std::vector<long> by_status(kStatuses.size(), 0);
    auto cols = empty_columns(w, kStatuses.size());
    for (const auto &r : buckets.rows) {
        long c = static_cast<long>(dbl(r[2]));
        std::size_t s = status_index(str(r[1]));
        cols[column_of(w, dbl(r[0]), cols.size())].values[s] += c;
        by_status[s] += c;
        n += c;
        counts.lock_waits += static_cast<long>(dbl(r[3]));
    }
    counts.migrations = n;
    counts.failed = by_status[status_index("FAILED")];
    std::string summary = fmt::format("{} runs since {} UTC", report::format_number(double(n), 0),
                                      report::format_utc(w.from));
    for (std::size_t s = 0; s < kStatuses.size(); ++s)
        if (by_status[s])
            summary += fmt::format(", {} {}", report::format_number(double(by_status[s]), 0),
                                   kStatuses[s]);
    doc.paragraph(summary + ".");
    report::StackedChart stacked;
    stacked.chart_id = "migration-runs";
    stacked.title = fmt::format("Migration runs per {} by status", bucket_name(w.bucket));
    stacked.description = summary + ".";
    stacked.x_axis = fmt::format("{} (UTC)", bucket_name(w.bucket));
    stacked.y_axis = "runs";
    stacked.series = kStatuses;
    stacked.columns = std::move(cols);
    doc.raw(report::stacked_column_chart(stacked));

    report::ScatterChart scatter;
    scatter.chart_id = "migration-durations";
    scatter.title = "Migration durations";
    scatter.description = fmt::format(
        "Duration of each migration run (logarithmic scale) by start time and status, {} runs", n);
    if (static_cast<long>(points.rows.size()) < n)
        scatter.description += fmt::format(
            "; the longest per status and pixel column are drawn ({})", points.rows.size());
    scatter.description += ".";
    scatter.x_axis = "start time (UTC)";
    scatter.y_axis = "duration (log scale)";
    scatter.series = kStatuses;
    scatter.x_min = w.from;
    scatter.x_max = w.to;
    for (const auto &r : points.rows)
        scatter.points.push_back({dbl(r[0]), dbl(r[1]), status_index(str(r[2])),
                                  fmt::format("{} {} {} ({})", str(r[4]), str(r[3]), str(r[2]),
                                              report::format_duration(dbl(r[1])))});
    doc.raw(report::duration_scatter_chart(scatter));

    doc.subheading("Failures (latest first)");
    std::vector<TableRow> rows;
    for (const auto &r : failures.rows)
        rows.push_back({{str(r[0])},
                        {str(r[1])},
                        {str(r[2]), "code"},
                        {str(r[3]), "code"},
                        num_cell(r[4], 0),
                        {str(r[5])}});
    doc.table({"started", "migration", "SQLSTATE", "error", "attempts", "by"}, rows,
              failures.rows.empty() ? 0 : static_cast<std::size_t>(dbl(failures.rows[0][6])));

    doc.subheading("Lock waits (most first)");
    rows.clear();
    for (const auto &r : waits.rows)
        rows.push_back({{str(r[0])},
                        {str(r[1])},
                        {str(r[2]), "st-" + report::tone_of(str(r[2]))},
                        num_cell(r[3], 0),
                        {report::format_duration(dbl(r[4]) / 1000), "num"},
                        {str(r[5])},
                        {str(r[6]), "code"}});
    doc.table({"started", "migration", "status", "waits", "waited", "statements", "last blockers"},
              rows);

    doc.subheading("Rollbacks");
    rows.clear();
    for (const auto &r : rollbacks.rows)
        rows.push_back({{str(r[0])},
                        {str(r[1])},
                        {str(r[2]), "st-" + report::tone_of(str(r[2]))},
                        {str(r[3])},
                        {str(r[4]), "code"}});
    doc.table({"rolled back at", "migration", "status", "reason", "backup tables"}, rows);

    doc.subheading("Longest runs");
    rows.clear();
    for (const auto &r : longest.rows)
        rows.push_back({{str(r[0])},
                        {str(r[1])},
                        {str(r[2]), "st-" + report::tone_of(str(r[2]))},
                        {r[3] ? report::format_duration(dbl(r[3])) : "", "num"},
                        num_cell(r[4], 0)});
    doc.table({"started", "migration", "status", "duration", "attempts"}, rows);
    doc.end_section();
}

void maintenance_section(pg::InternalSql &sql, const Window &w, report::Document &doc,
                         Counts &counts) {
    doc.begin_section("maintenance", "Maintenance");
    SpiResult per_bucket, tables, failed;
    const std::string from = fmt::format("{:.6f}", w.from),
                      bucket = fmt::format("{:.0f}", w.bucket);
    auto error = in_section([&] {
        per_bucket = sql.execute(
            "SELECT floor(date_part('epoch', l.started_at) / $2::float8) * $2::float8, "
            "       CASE WHEN l.status IN ('FAILED', 'SKIPPED') THEN l.status ELSE l.action END, "
            "       count(*), "
            "       sum(GREATEST(l.dead_tuples_before - l.dead_tuples_after, 0)) "
            "           FILTER (WHERE l.status = 'SUCCESS') "
            "FROM virtuoso.maintenance_log l WHERE l.started_at >= to_timestamp($1::float8) "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            {from, bucket});
        tables = sql.execute(
            "SELECT format('%I.%I', l.schemaname, l.tablename), count(*), "
            "       count(*) FILTER (WHERE l.action = 'VACUUM'), "
            "       count(*) FILTER (WHERE l.action = 'VACUUM (FREEZE)'), "
            "       count(*) FILTER (WHERE l.action = 'ANALYZE'), "
            "       count(*) FILTER (WHERE l.status IN ('FAILED', 'SKIPPED')), "
            "       sum(GREATEST(l.dead_tuples_before - l.dead_tuples_after, 0)) "
            "           FILTER (WHERE l.status = 'SUCCESS'), max(l.started_at)::text "
            "FROM virtuoso.maintenance_log l WHERE l.started_at >= to_timestamp($1::float8) "
            "GROUP BY l.schemaname, l.tablename ORDER BY 2 DESC, 1 LIMIT 15",
            {from});
        failed = sql.execute(
            "SELECT l.started_at::text, format('%I.%I', l.schemaname, l.tablename), l.action, "
            "l.status, "
            "       coalesce(l.sqlstate || ': ', '') || coalesce(l.error_message, l.reason, ''), "
            "       count(*) OVER () "
            "FROM virtuoso.maintenance_log l "
            "WHERE l.started_at >= to_timestamp($1::float8) AND l.status IN ('FAILED', 'SKIPPED') "
            "ORDER BY l.started_at DESC LIMIT 20",
            {from});
    });
    if (error) {
        doc.paragraph(*error, "error");
        doc.paragraph(
            "The maintenance log is readable by the roles granted SELECT on "
            "virtuoso.maintenance_log (nobody but superusers by default).",
            "note");
        doc.end_section();
        return;
    }
    const std::vector<std::string> series = {"VACUUM", "VACUUM (FREEZE)", "ANALYZE", "SKIPPED",
                                             "FAILED"};
    auto actions = empty_columns(w, series.size());
    auto dead = empty_columns(w, 1);
    long total = 0;
    double removed = 0;
    for (const auto &r : per_bucket.rows) {
        std::size_t c = column_of(w, dbl(r[0]), actions.size());
        auto s = std::find(series.begin(), series.end(), str(r[1])) - series.begin();
        if (static_cast<std::size_t>(s) >= series.size()) s = 0;
        actions[c].values[s] += dbl(r[2]);
        dead[c].values[0] += dbl(r[3]);
        total += static_cast<long>(dbl(r[2]));
        removed += dbl(r[3]);
    }
    counts.maintenance = total;
    std::string summary =
        fmt::format("{} maintenance actions since {} UTC; {} dead tuples removed.", total,
                    report::format_utc(w.from), report::format_number(removed, 0));
    doc.paragraph(summary);
    report::StackedChart chart;
    chart.chart_id = "maintenance-actions";
    chart.title = fmt::format("Maintenance actions per {}", bucket_name(w.bucket));
    chart.description = summary;
    chart.x_axis = fmt::format("{} (UTC)", bucket_name(w.bucket));
    chart.y_axis = "actions";
    chart.series = series;
    chart.columns = std::move(actions);
    doc.raw(report::stacked_column_chart(chart));
    report::StackedChart dead_chart;
    dead_chart.chart_id = "maintenance-dead-tuples";
    dead_chart.title = fmt::format("Dead tuples removed per {}", bucket_name(w.bucket));
    dead_chart.description =
        fmt::format("Dead tuples before minus after each successful action, {} in all.",
                    report::format_number(removed, 0));
    dead_chart.x_axis = chart.x_axis;
    dead_chart.y_axis = "dead tuples removed";
    dead_chart.series = {"VACUUM"};
    dead_chart.columns = std::move(dead);
    doc.raw(report::stacked_column_chart(dead_chart));

    doc.subheading("Tables most often due");
    std::vector<TableRow> rows;
    for (const auto &r : tables.rows)
        rows.push_back({{str(r[0])},
                        num_cell(r[1], 0),
                        num_cell(r[2], 0),
                        num_cell(r[3], 0),
                        num_cell(r[4], 0),
                        num_cell(r[5], 0),
                        num_cell(r[6], 0),
                        {str(r[7])}});
    doc.table({"table", "actions", "VACUUM", "FREEZE", "ANALYZE", "skipped/failed",
               "dead tuples removed", "last"},
              rows);
    doc.subheading("Skipped and failed actions (latest first)");
    rows.clear();
    for (const auto &r : failed.rows)
        rows.push_back({{str(r[0])},
                        {str(r[1])},
                        {str(r[2])},
                        {str(r[3]), "st-" + report::tone_of(str(r[3]))},
                        {str(r[4]), "code"}});
    doc.table({"started", "table", "action", "status", "reason or error"}, rows,
              failed.rows.empty() ? 0 : static_cast<std::size_t>(dbl(failed.rows[0][5])));
    doc.end_section();
}

int severity_rank(const std::string &s) {
    return s == "CRITICAL" ? 0 : s == "WARN" ? 1 : 2;
}

// Health findings; the bloat rows are kept for the sizes section.
void health_section(pg::InternalSql &sql, report::Document &doc, Counts &counts, SpiResult &health,
                    std::optional<std::string> &health_error) {
    doc.begin_section("health", "Health findings");
    health_error = in_section([&] {
        health = sql.execute(
            "SELECT h.check_name, h.severity, h.object, h.value, h.message, h.remedy "
            "FROM virtuoso.check_database_health() h");
    });
    if (health_error) {
        doc.paragraph(*health_error, "error");
        doc.end_section();
        return;
    }
    std::vector<std::size_t> order(health.rows.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return severity_rank(str(health.rows[a][1])) < severity_rank(str(health.rows[b][1]));
    });
    std::map<std::string, long> by_severity;
    std::map<std::string, std::pair<long, int>> by_check;  // count, worst rank
    for (const auto &r : health.rows) {
        ++by_severity[str(r[1])];
        auto &c = by_check[str(r[0])];
        c.first++;
        c.second =
            c.first == 1 ? severity_rank(str(r[1])) : std::min(c.second, severity_rank(str(r[1])));
    }
    counts.critical = by_severity["CRITICAL"];
    counts.warn = by_severity["WARN"];
    doc.paragraph(fmt::format("{} findings: {} CRITICAL, {} WARN, {} INFO.", health.rows.size(),
                              by_severity["CRITICAL"], by_severity["WARN"], by_severity["INFO"]));
    report::BarChart chart;
    chart.chart_id = "health-checks";
    chart.title = "Findings per check";
    chart.description =
        "Number of findings of each health check, coloured by the worst severity among them.";
    chart.value_axis = "findings";
    static const char *tones[] = {"critical", "warn", "info"};
    std::vector<std::pair<std::string, std::pair<long, int>>> checks(by_check.begin(),
                                                                     by_check.end());
    std::stable_sort(checks.begin(), checks.end(), [](const auto &a, const auto &b) {
        return a.second.second != b.second.second ? a.second.second < b.second.second
                                                  : a.second.first > b.second.first;
    });
    for (const auto &[name, c] : checks)
        chart.bars.push_back({name, double(c.first), tones[c.second]});
    doc.raw(report::horizontal_bar_chart(chart));
    std::vector<TableRow> rows;
    for (std::size_t k = 0; k < order.size() && rows.size() < 200; ++k) {
        const auto &r = health.rows[order[k]];
        rows.push_back({{str(r[1]), "sev-" + report::tone_of(str(r[1]))},
                        {str(r[0])},
                        {str(r[2])},
                        {str(r[4])},
                        {str(r[5]), "code"}});
    }
    doc.table({"severity", "check", "object", "finding", "remedy"}, rows, health.rows.size());
    doc.end_section();
}

void sizes_section(pg::InternalSql &sql, report::Document &doc, const SpiResult &health,
                   const std::optional<std::string> &health_error) {
    doc.begin_section("sizes", "Table sizes and bloat");
    SpiResult sizes;
    auto error = in_section([&] {
        sizes = sql.execute(
            "SELECT format('%I.%I', d.schemaname, d.tablename), d.total_bytes, d.table_bytes, "
            "d.index_bytes, "
            "       d.toast_bytes, d.live_tuples, d.dead_tuples, d.dead_tuple_pct, "
            "       GREATEST(d.last_vacuum, d.last_autovacuum)::text, count(*) OVER () "
            "FROM virtuoso.migration_performance_dashboard d "
            "ORDER BY d.total_bytes DESC, 1 LIMIT 15");
    });
    if (error) {
        doc.paragraph(*error, "error");
    } else {
        report::BarChart chart;
        chart.chart_id = "table-sizes";
        chart.title = "Largest tables";
        chart.description =
            "Total size (table, indexes and TOAST) of the largest tables the caller may see.";
        chart.value_axis = "total size";
        chart.unit = report::BarChart::Unit::Bytes;
        std::vector<TableRow> rows;
        for (const auto &r : sizes.rows) {
            chart.bars.push_back({str(r[0]), dbl(r[1]), ""});
            rows.push_back({{str(r[0])},
                            {report::format_bytes(dbl(r[1])), "num"},
                            {report::format_bytes(dbl(r[2])), "num"},
                            {report::format_bytes(dbl(r[3])), "num"},
                            {report::format_bytes(dbl(r[4])), "num"},
                            num_cell(r[5], 0),
                            num_cell(r[6], 0),
                            num_cell(r[7], 1),
                            {str(r[8])}});
        }
        doc.raw(report::horizontal_bar_chart(chart));
        doc.table({"table", "total", "table", "indexes", "TOAST", "live tuples", "dead tuples",
                   "dead %", "last vacuum"},
                  rows, sizes.rows.empty() ? 0 : static_cast<std::size_t>(dbl(sizes.rows[0][9])));
    }
    doc.subheading("Estimated bloat (from check_database_health)");
    if (health_error) {
        doc.paragraph("Not shown: the health check did not run (see above).", "note");
    } else {
        std::vector<TableRow> rows;
        for (const auto &r : health.rows)
            if (str(r[0]) == "table_bloat")
                rows.push_back({{str(r[2])}, num_cell(r[3], 1), {str(r[4])}, {str(r[5]), "code"}});
        doc.table({"table", "estimated free %", "finding", "remedy"}, rows);
    }
    doc.end_section();
}

void index_section(pg::InternalSql &sql, report::Document &doc, bool index_advice) {
    doc.begin_section("indexes", "Index advice");
    if (index_advice) {
        SpiResult advice;
        auto error = in_section([&] {
            advice = sql.execute(
                "SELECT r.table_name, r.index_definition, r.queries_improved, r.total_calls, "
                "       r.improvement_pct, r.estimated_size_bytes, r.cost_before, r.cost_after "
                "FROM virtuoso.recommend_indexes() r");
        });
        if (error) {
            doc.paragraph(*error, "error");
        } else {
            report::BarChart chart;
            chart.chart_id = "index-advice";
            chart.title = "Recommended indexes by estimated gain";
            chart.description =
                "Estimated reduction of the planner cost of the statements each "
                "recommended index improves, in per cent.";
            chart.value_axis = "estimated cost reduction";
            chart.unit = report::BarChart::Unit::Percent;
            std::vector<TableRow> rows;
            for (const auto &r : advice.rows) {
                chart.bars.push_back({str(r[1]), dbl(r[4]), "success"});
                rows.push_back({{str(r[0])},
                                {str(r[1]), "code"},
                                num_cell(r[2], 0),
                                num_cell(r[3], 0),
                                num_cell(r[4], 1),
                                {report::format_bytes(dbl(r[5])), "num"}});
            }
            doc.raw(report::horizontal_bar_chart(chart));
            doc.table(
                {"table", "index", "statements improved", "calls", "gain %", "estimated size"},
                rows);
        }
    } else {
        doc.paragraph(
            "The index advisor plans every pg_stat_statements statement, which can take seconds: "
            "run SELECT virtuoso.report_html(index_advice => true) to include its "
            "recommendations with estimated gains and sizes.",
            "note");
    }
    for (int part = 0; part < 2; ++part) {
        SpiResult r;
        doc.subheading(part == 0 ? "Unused indexes (no scan since the statistics were reset)"
                                 : "Redundant indexes (another index serves the same queries)");
        auto error = in_section([&] {
            r = part == 0
                    ? sql.execute(
                          "SELECT format('%I.%I', u.schemaname, u.indexname), "
                          "       format('%I.%I', u.schemaname, u.tablename), "
                          "       u.index_size_bytes, u.drop_statement, count(*) OVER () "
                          "FROM virtuoso.unused_indexes u ORDER BY 3 DESC, 1 LIMIT 20")
                    : sql.execute(
                          "SELECT r.redundant_index, format('%I.%I', r.schemaname, r.tablename), "
                          "       r.redundant_size_bytes, r.drop_statement, count(*) OVER (), "
                          "       r.reason, r.covering_index "
                          "FROM virtuoso.redundant_indexes r ORDER BY 3 DESC, 1 LIMIT 20");
        });
        if (error) {
            doc.paragraph(*error, "error");
            continue;
        }
        std::vector<TableRow> rows;
        for (const auto &row : r.rows) {
            TableRow t{{str(row[0])}, {str(row[1])}, {report::format_bytes(dbl(row[2])), "num"}};
            if (part == 1) t.push_back({str(row[5]) + " of " + str(row[6])});
            t.push_back({str(row[3]), "code"});
            rows.push_back(std::move(t));
        }
        std::vector<std::string> headers{"index", "table", "size"};
        if (part == 1) headers.push_back("why");
        headers.push_back("remedy");
        doc.table(headers, rows, r.rows.empty() ? 0 : static_cast<std::size_t>(dbl(r.rows[0][4])));
    }
    doc.end_section();
}

void slow_queries_section(pg::InternalSql &sql, report::Document &doc) {
    doc.begin_section("slow_queries", "Slow queries");
    SpiResult q;
    auto error = in_section([&] {
        q = sql.execute(
            "SELECT s.query, s.calls, s.total_exec_time, s.mean_exec_time, s.rows, s.hit_percent, "
            "       count(*) OVER () "
            "FROM virtuoso.slow_queries_analysis s ORDER BY s.total_exec_time DESC LIMIT 15");
    });
    if (error) {
        doc.paragraph(*error, "error");
        doc.end_section();
        return;
    }
    doc.paragraph(
        "Statements of this database by total execution time, from pg_stat_statements (cumulative "
        "since its last reset, not only this period; statements of roles the caller is a "
        "member of, all with pg_read_all_stats).",
        "note");
    report::BarChart chart;
    chart.chart_id = "slow_queries";
    chart.title = "Statements by total execution time";
    chart.description = "Total execution time of the statements that took longest in all.";
    chart.value_axis = "total execution time";
    chart.unit = report::BarChart::Unit::Seconds;
    std::vector<TableRow> rows;
    for (const auto &r : q.rows) {
        chart.bars.push_back({str(r[0]), dbl(r[2]) / 1000, "warn"});
        rows.push_back({{report::shorten(str(r[0]), 600), "code"},
                        num_cell(r[1], 0),
                        {report::format_duration(dbl(r[2]) / 1000), "num"},
                        {report::format_duration(dbl(r[3]) / 1000), "num"},
                        num_cell(r[4], 0),
                        num_cell(r[5], 1)});
    }
    doc.raw(report::horizontal_bar_chart(chart));
    doc.table({"statement", "calls", "total", "mean", "rows", "cache hit %"}, rows,
              q.rows.empty() ? 0 : static_cast<std::size_t>(dbl(q.rows[0][6])));
    doc.end_section();
}

// Sections over objects that may not exist in this version (virtuoso.alerts,
// virtuoso.progress): shown only when they do, with whatever columns they have.
void optional_view_section(pg::InternalSql &sql, report::Document &doc, const char *view,
                           const char *id, const char *title, const char *intro, long *count_out) {
    Value exists = sql.scalar("SELECT to_regclass($1) IS NOT NULL", {std::string(view)});
    if (str(exists) != "t") return;
    doc.begin_section(id, title);
    SpiResult r;
    Value total;
    auto error = in_section([&] {
        r = sql.execute(fmt::format("SELECT * FROM {} LIMIT 200", view));
        total = sql.scalar(fmt::format("SELECT count(*) FROM {}", view));
    });
    if (error) {
        doc.paragraph(*error, "error");
    } else {
        if (count_out) *count_out = static_cast<long>(dbl(total));
        doc.paragraph(intro, "note");
        std::vector<TableRow> rows;
        for (const auto &row : r.rows) {
            TableRow t;
            for (std::size_t c = 0; c < row.size(); ++c) {
                std::string name = c < r.columns.size() ? r.columns[c] : "";
                std::string css = name == "severity" ? "sev-" + report::tone_of(str(row[c])) : "";
                t.push_back({report::shorten(str(row[c]), 400), css});
            }
            rows.push_back(std::move(t));
        }
        doc.table(r.columns, rows, static_cast<std::size_t>(dbl(total)));
    }
    doc.end_section();
}

}  // namespace

// virtuoso.report_html(since interval DEFAULT '7 days', index_advice boolean DEFAULT false)
VIRTUOSO_FUNCTION(virtuoso_report_html) {
    if (PG_ARGISNULL(0))
        throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE, "since must not be NULL", "",
                            "Pass an interval such as '7 days' or '24 hours'.");
    const bool index_advice = PG_NARGS() > 1 && !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
    Datum since = PG_GETARG_DATUM(0);
    Window w;
    w.since_text = pg::pg_call(
        [since] { return std::string(DatumGetCString(DirectFunctionCall1(interval_out, since))); });

    // The page is built while SPI is connected (its memory context is current) and handed to
    // PostgreSQL only after SPI_finish: a Datum palloc'd in SPI's context would be freed with it.
    std::string html;
    {
        pg::InternalSql sql(false);
        auto head = sql.execute(
            "SELECT $1::interval < interval '0', date_part('epoch', now() - $1::interval), "
            "       date_part('epoch', now()), current_database(), current_user, "
            "       to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), pg_is_in_recovery(), "
            "       current_setting('server_version')",
            {w.since_text});
        const auto &h = head.rows.at(0);
        if (str(h[0]) == "t")
            throw pg::UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                                fmt::format("since must not be negative, got {}", w.since_text), "",
                                "Pass how far back the report looks, e.g. '7 days'.");
        w.from = dbl(h[1]);
        w.to = dbl(h[2]);
        w.bucket = bucket_for(w.to - w.from);

        report::Document doc(
            fmt::format("db_virtuoso report: database {}", str(h[3])),
            fmt::format(
                "Period: the last {} (since {} UTC). Generated {} UTC as role {}, PostgreSQL {}{}. "
                "Shows only what this role may see.",
                w.since_text, report::format_utc(w.from), str(h[5]), str(h[4]), str(h[7]),
                str(h[6]) == "t" ? ", on a standby (in recovery)" : ""));
        Counts counts;
        SpiResult health;
        std::optional<std::string> health_error;
        migrations_section(sql, w, doc, counts);
        maintenance_section(sql, w, doc, counts);
        health_section(sql, doc, counts, health, health_error);
        sizes_section(sql, doc, health, health_error);
        index_section(sql, doc, index_advice);
        slow_queries_section(sql, doc);
        optional_view_section(sql, doc, "virtuoso.alerts", "alerts", "Open alerts",
                              "Alerts not yet acknowledged (virtuoso.alerts).", &counts.alerts);
        optional_view_section(sql, doc, "virtuoso.progress", "jobs", "Long jobs",
                              "Long-running jobs and their progress (virtuoso.progress).", nullptr);

        auto card = [&](long v, const char *label, const char *bad_tone) {
            if (v >= 0)
                doc.add_card(label, report::format_number(double(v), 0),
                             v > 0 ? bad_tone : "success");
        };
        if (counts.migrations >= 0)
            doc.add_card("migration runs", report::format_number(double(counts.migrations), 0),
                         "info");
        card(counts.failed, "failed migrations", "failed");
        card(counts.lock_waits, "migration lock waits", "warn");
        if (counts.maintenance >= 0)
            doc.add_card("maintenance actions",
                         report::format_number(double(counts.maintenance), 0), "info");
        card(counts.critical, "critical findings", "critical");
        card(counts.warn, "warnings", "warn");
        card(counts.alerts, "open alerts", "warn");
        html = doc.render();
    }
    return pg::text_datum(html);
}
