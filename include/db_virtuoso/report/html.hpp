// Pure C++ (no postgres.h): the HTML report's building blocks.  HTML escaping, number and
// duration formatting, inline SVG charts (with <title>/<desc>, axis labels and units, colours
// from CSS classes so that the page's light/dark styles apply) and the document around them.
// The server side gathers the data (src/report/pg_report.cpp) and hands plain values here.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace virtuoso::report {

// Text for HTML element content and attribute values: & < > " ' are escaped, and bytes that
// are not valid UTF-8 or are control characters (other than tab and newline) are replaced,
// so that nothing a user wrote can open a tag, end an attribute or break the document.
std::string escape(std::string_view text);

// At most max_chars characters (UTF-8 aware) of text, with "…" when cut.
std::string shorten(std::string_view text, std::size_t max_chars);

// 1234567 -> "1,234,567"; 0.5 -> "0.5"; at most `decimals` decimals, trailing zeros dropped.
std::string format_number(double value, int decimals = 1);
// Bytes as "512 B", "1.5 kB", "12 MB", "3.1 GB" (powers of 1024, as pg_size_pretty).
std::string format_bytes(double bytes);
// Seconds as "850 ms", "12.5 s", "4.2 min", "3.1 h", "2.0 d".
std::string format_duration(double seconds);
// Seconds since the Unix epoch as "YYYY-MM-DD HH:MM" in UTC.
std::string format_utc(double epoch_seconds, bool with_time = true);

// Axis ticks: 0 and nice steps (1, 2, 5 x 10^k) up to at least max_value.
std::vector<double> nice_ticks(double max_value, int target_count = 5);

// ---- charts ------------------------------------------------------------------------------
// Every chart is an <svg role="img"> with <title> and <desc> referenced by aria-labelledby.
// chart_id must be unique in the document (it prefixes the element ids).  Series colours are
// CSS classes "s-<tone>" defined by the document's style sheet.

struct Bar {
    std::string label;  // shown left of the bar, cut to a readable length; full in a tooltip
    double value = 0;
    std::string tone;  // CSS class suffix, e.g. "failed"
};

struct BarChart {
    std::string chart_id, title, description;
    std::string value_axis;  // axis label, e.g. "total execution time"
    enum class Unit { Count, Bytes, Seconds, Percent } unit = Unit::Count;
    std::vector<Bar> bars;  // drawn in this order, at most max_bars of them
    std::size_t max_bars = 25;
};
std::string horizontal_bar_chart(const BarChart &chart);

struct StackedColumn {
    std::string label;           // x-axis category, e.g. a day
    std::vector<double> values;  // one per series
};

struct StackedChart {
    std::string chart_id, title, description;
    std::string x_axis, y_axis;
    std::vector<std::string> series;  // names, also their tone ("SUCCESS" -> s-success)
    std::vector<StackedColumn> columns;
};
std::string stacked_column_chart(const StackedChart &chart);

struct Point {
    double x = 0;  // seconds since the epoch
    double y = 0;  // a duration in seconds
    std::size_t series = 0;
    std::string label;  // tooltip
};

struct ScatterChart {
    std::string chart_id, title, description;
    std::string x_axis, y_axis;
    std::vector<std::string> series;
    double x_min = 0, x_max = 0;  // the time window
    std::vector<Point> points;
};
// Width of the scatter chart's plot in pixels: a caller may thin its points to the longest
// per series and column of this many before handing them over (the chart does it again).
constexpr int kScatterColumns = 760;

// Durations over time on a logarithmic y axis.  Points are thinned to the longest one per
// series and pixel column, so 10,000 runs draw at most a few thousand marks that look the
// same; the description says how many runs are shown.
std::string duration_scatter_chart(const ScatterChart &chart);

// ---- the document ------------------------------------------------------------------------

struct Cell {
    std::string text;
    std::string css_class;  // e.g. "num", "sev-critical", "code"
};
using TableRow = std::vector<Cell>;

class Document {
  public:
    Document(std::string title, std::string subtitle);
    // A summary figure shown at the top ("3 failed migrations").
    void add_card(std::string label, std::string value, std::string tone);
    // Starts a section; its id is the link target of the table of contents.
    void begin_section(const std::string &id, const std::string &title);
    void paragraph(const std::string &text, const std::string &css_class = "");
    void subheading(const std::string &text);
    // Trusted markup produced by this library (charts).
    void raw(const std::string &html);
    void table(const std::vector<std::string> &headers, const std::vector<TableRow> &rows,
               std::size_t total_rows = 0);  // total_rows > rows: "n of total shown"
    void end_section();
    std::string render() const;

  private:
    std::string title_, subtitle_;
    std::string cards_, body_, toc_;
    bool in_section_ = false;
};

// Shared palette of series tones: lower case, non-alphanumerics to '_' ("ROLLED_BACK" ->
// "rolled_back"), so any status word maps to a class name that cannot break out.
std::string tone_of(std::string_view word);

}  // namespace virtuoso::report
