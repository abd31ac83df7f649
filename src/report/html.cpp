// Pure C++ core of the HTML report: escaping, formatting, SVG charts, the document.
#include "db_virtuoso/report/html.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <utility>

#include <fmt/format.h>

namespace virtuoso::report {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid.
std::size_t utf8_length(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    std::size_t n = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    if (n == 0 || i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k)
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
    if (n == 2 && c < 0xC2) return 0;                          // overlong
    if (n == 3 && c == 0xE0 && byte(i + 1) < 0xA0) return 0;   // overlong
    if (n == 3 && c == 0xED && byte(i + 1) >= 0xA0) return 0;  // surrogates
    if (n == 4 &&
        (c > 0xF4 || (c == 0xF0 && byte(i + 1) < 0x90) || (c == 0xF4 && byte(i + 1) >= 0x90)))
        return 0;
    return n;
}

std::string num(double v) {  // coordinates: short, locale-independent
    if (!std::isfinite(v)) v = 0;
    return fmt::format("{:.1f}", v);
}

const char *kReplacement = "\xEF\xBF\xBD";  // U+FFFD

std::string svg_open(const std::string &id, int width, int height, const std::string &title,
                     const std::string &description, const std::string &caption) {
    return fmt::format(
        "<figure class=\"chart\"><figcaption>{c}</figcaption><svg "
        "xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" "
        "viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" "
        "aria-labelledby=\"{id}-title {id}-desc\"><title id=\"{id}-title\">{t}</title>"
        "<desc id=\"{id}-desc\">{d}</desc>",
        fmt::arg("w", width), fmt::arg("h", height), fmt::arg("id", escape(id)),
        fmt::arg("t", escape(title)), fmt::arg("d", escape(description)),
        fmt::arg("c", escape(caption)));
}

const char *kSvgClose = "</svg></figure>\n";

std::string text_el(double x, double y, const std::string &css, const std::string &anchor,
                    const std::string &text, const std::string &extra = "") {
    return fmt::format("<text x=\"{}\" y=\"{}\" class=\"{}\" text-anchor=\"{}\"{}>{}</text>",
                       num(x), num(y), css, anchor, extra, escape(text));
}

std::string format_value(double v, BarChart::Unit unit) {
    switch (unit) {
        case BarChart::Unit::Bytes:
            return format_bytes(v);
        case BarChart::Unit::Seconds:
            return format_duration(v);
        case BarChart::Unit::Percent:
            return format_number(v) + " %";
        case BarChart::Unit::Count:
            break;
    }
    return format_number(v);
}

std::string empty_note(int width, int height) {
    return text_el(width / 2.0, height / 2.0, "empty", "middle", "No data in this period");
}

}  // namespace

std::string escape(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    for (std::size_t i = 0; i < text.size();) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        switch (c) {
            case '&':
                out += "&amp;";
                ++i;
                continue;
            case '<':
                out += "&lt;";
                ++i;
                continue;
            case '>':
                out += "&gt;";
                ++i;
                continue;
            case '"':
                out += "&quot;";
                ++i;
                continue;
            case '\'':
                out += "&#39;";
                ++i;
                continue;
            default:
                break;
        }
        if (c < 0x20 && c != '\t' && c != '\n') {
            out += kReplacement;
            ++i;
            continue;
        }
        if (c == 0x7F) {
            out += kReplacement;
            ++i;
            continue;
        }
        std::size_t n = utf8_length(text, i);
        if (n == 0) {
            out += kReplacement;
            ++i;
            continue;
        }
        out.append(text.substr(i, n));
        i += n;
    }
    return out;
}

std::string shorten(std::string_view text, std::size_t max_chars) {
    std::size_t chars = 0, i = 0;
    while (i < text.size()) {
        if (chars == max_chars) return std::string(text.substr(0, i)) + "\xE2\x80\xA6";
        std::size_t n = utf8_length(text, i);
        i += n == 0 ? 1 : n;
        ++chars;
    }
    return std::string(text);
}

std::string format_number(double value, int decimals) {
    if (!std::isfinite(value)) return "–";
    std::string s = fmt::format("{:.{}f}", std::fabs(value), std::max(0, decimals));
    std::size_t dot = s.find('.');
    if (dot != std::string::npos) {
        while (s.back() == '0') s.pop_back();
        if (s.back() == '.') s.pop_back();
    }
    dot = s.find('.');
    std::string whole = s.substr(0, dot), frac = dot == std::string::npos ? "" : s.substr(dot);
    std::string grouped;
    for (std::size_t i = 0; i < whole.size(); ++i) {
        if (i > 0 && (whole.size() - i) % 3 == 0) grouped += ',';
        grouped += whole[i];
    }
    bool negative = value < 0 && (grouped != "0" || !frac.empty());
    return (negative ? "-" : "") + grouped + frac;
}

std::string format_bytes(double bytes) {
    static const char *units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    if (!std::isfinite(bytes)) return "–";
    int u = 0;
    double v = bytes;
    while (std::fabs(v) >= 1024 && u < 5) {
        v /= 1024;
        ++u;
    }
    return format_number(v, u == 0 ? 0 : (std::fabs(v) < 10 ? 1 : 0)) + " " + units[u];
}

std::string format_duration(double s) {
    if (!std::isfinite(s)) return "–";
    double a = std::fabs(s);
    if (a < 1) return format_number(s * 1000, a < 0.01 ? 2 : 0) + " ms";
    if (a < 60) return format_number(s, 1) + " s";
    if (a < 3600) return format_number(s / 60, 1) + " min";
    if (a < 86400 * 2) return format_number(s / 3600, 1) + " h";
    return format_number(s / 86400, 1) + " d";
}

std::string format_utc(double epoch_seconds, bool with_time) {
    if (!std::isfinite(epoch_seconds)) return "–";
    std::time_t t = static_cast<std::time_t>(std::floor(epoch_seconds));
    std::tm tm{};
    if (gmtime_r(&t, &tm) == nullptr) return "–";
    if (!with_time)
        return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min);
}

std::vector<double> nice_ticks(double max_value, int target_count) {
    if (!std::isfinite(max_value) || max_value <= 0) return {0, 1};
    target_count = std::max(2, target_count);
    double raw = max_value / target_count;
    double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
        step = m * mag;
        if (step >= raw) break;
    }
    std::vector<double> ticks;
    for (int i = 0; i <= target_count + 1; ++i) {
        ticks.push_back(step * i);
        if (step * i >= max_value) break;
    }
    return ticks;
}

std::string tone_of(std::string_view word) {
    std::string out;
    for (char ch : word) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (c >= 'A' && c <= 'Z')
            out += static_cast<char>(c - 'A' + 'a');
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            out += static_cast<char>(c);
        else
            out += '_';
    }
    return out.empty() ? "none" : out;
}

// ---- charts ------------------------------------------------------------------------------

std::string horizontal_bar_chart(const BarChart &chart) {
    const std::size_t n = std::min(chart.bars.size(), chart.max_bars);
    const int label_w = 230, plot_w = 430, value_w = 90, row_h = 22, top = 10, axis_h = 46;
    const int width = label_w + plot_w + value_w;
    const int height = top + static_cast<int>(std::max<std::size_t>(n, 1)) * row_h + axis_h;
    std::string caption = chart.title;
    if (chart.bars.size() > n)
        caption += fmt::format(" (the first {} of {})", n, chart.bars.size());
    std::string out =
        svg_open(chart.chart_id, width, height, chart.title, chart.description, caption);
    double max_value = 0;
    for (std::size_t i = 0; i < n; ++i) max_value = std::max(max_value, chart.bars[i].value);
    std::vector<double> ticks = nice_ticks(max_value, 4);
    double scale_max = ticks.back() > 0 ? ticks.back() : 1;
    const double axis_y = top + std::max<std::size_t>(n, 1) * row_h;
    for (double t : ticks) {
        double x = label_w + plot_w * t / scale_max;
        out += fmt::format("<line class=\"grid\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>",
                           num(x), top, num(axis_y));
        out += text_el(x, axis_y + 14, "tick", "middle", format_value(t, chart.unit));
    }
    for (std::size_t i = 0; i < n; ++i) {
        const Bar &b = chart.bars[i];
        double y = top + i * row_h;
        double w = std::max(0.0, plot_w * std::max(0.0, b.value) / scale_max);
        out += fmt::format("<g><title>{}: {}</title>", escape(b.label),
                           escape(format_value(b.value, chart.unit)));
        out += text_el(label_w - 6, y + row_h * 0.68, "label", "end", shorten(b.label, 30));
        out += fmt::format(
            "<rect class=\"bar s-{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
            tone_of(b.tone.empty() ? "default" : b.tone), label_w, num(y + 3), num(w), row_h - 6);
        out += text_el(label_w + w + 4, y + row_h * 0.68, "value", "start",
                       format_value(b.value, chart.unit));
        out += "</g>";
    }
    out += fmt::format("<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>",
                       label_w, top, num(axis_y));
    out += fmt::format("<line class=\"axis\" x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\"/>",
                       label_w, label_w + plot_w, num(axis_y));
    out += text_el(label_w + plot_w / 2.0, axis_y + 36, "axis-label", "middle", chart.value_axis);
    if (n == 0) out += empty_note(width, height - axis_h / 2);
    return out + kSvgClose;
}

std::string stacked_column_chart(const StackedChart &chart) {
    const int left = 64, right = 16, bottom = 66, plot_h = 220;
    const std::size_t n = chart.columns.size();
    const int plot_w = std::max(560, std::min(900, static_cast<int>(n) * 24));
    const int width = left + plot_w + right;
    // legend entries, wrapped into rows that fit the width
    std::string legend;
    double lx = left, ly = 8;
    for (std::size_t s = 0; s < chart.series.size(); ++s) {
        double w = 28 + 7.5 * static_cast<double>(chart.series[s].size());
        if (lx + w > width && lx > left) {
            lx = left;
            ly += 18;
        }
        legend +=
            fmt::format("<rect class=\"bar s-{}\" x=\"{}\" y=\"{}\" width=\"12\" height=\"12\"/>",
                        tone_of(chart.series[s]), num(lx), num(ly));
        legend += text_el(lx + 16, ly + 10, "legend", "start", chart.series[s]);
        lx += w;
    }
    const int top = static_cast<int>(ly) + 26;
    const int height = top + plot_h + bottom;
    std::string out =
        svg_open(chart.chart_id, width, height, chart.title, chart.description, chart.title);
    out += legend;
    double max_total = 0;
    for (const auto &c : chart.columns) {
        double total = 0;
        for (double v : c.values) total += std::max(0.0, v);
        max_total = std::max(max_total, total);
    }
    std::vector<double> ticks = nice_ticks(max_total, 4);
    double scale_max = ticks.back() > 0 ? ticks.back() : 1;
    const double base = top + plot_h;
    for (double t : ticks) {
        double y = base - plot_h * t / scale_max;
        out += fmt::format("<line class=\"grid\" x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\"/>",
                           left, num(y), left + plot_w);
        out += text_el(left - 6, y + 4, "tick", "end", format_number(t));
    }
    const double slot = n ? static_cast<double>(plot_w) / n : plot_w;
    const double bar_w = std::max(1.0, slot * 0.7);
    // a label every ~80 px, so that dates do not overlap
    const std::size_t label_every =
        std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(80 / slot)));
    for (std::size_t i = 0; i < n; ++i) {
        const auto &c = chart.columns[i];
        double x = left + slot * i + (slot - bar_w) / 2;
        double y = base;
        std::string tip = c.label;
        for (std::size_t s = 0; s < c.values.size() && s < chart.series.size(); ++s)
            if (c.values[s] > 0)
                tip += fmt::format(", {} {}", chart.series[s], format_number(c.values[s]));
        out += fmt::format("<g><title>{}</title>", escape(tip));
        for (std::size_t s = 0; s < c.values.size() && s < chart.series.size(); ++s) {
            double v = std::max(0.0, c.values[s]);
            if (v <= 0) continue;
            double h = plot_h * v / scale_max;
            y -= h;
            out += fmt::format(
                "<rect class=\"bar s-{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
                tone_of(chart.series[s]), num(x), num(y), num(bar_w), num(h));
        }
        out += "</g>";
        if (i % label_every == 0)
            out += text_el(x + bar_w / 2, base + 16, "tick", "middle", shorten(c.label, 16));
    }
    out += fmt::format("<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>", left,
                       top, num(base));
    out += fmt::format("<line class=\"axis\" x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\"/>", left,
                       left + plot_w, num(base));
    out += text_el(left + plot_w / 2.0, base + 44, "axis-label", "middle", chart.x_axis);
    out += text_el(14, top + plot_h / 2.0, "axis-label", "middle", chart.y_axis,
                   fmt::format(" transform=\"rotate(-90 14 {})\"", num(top + plot_h / 2.0)));
    if (n == 0) out += empty_note(width, height);
    return out + kSvgClose;
}

std::string duration_scatter_chart(const ScatterChart &chart) {
    const int left = 70, right = 56, top = 34, bottom = 66, plot_w = kScatterColumns, plot_h = 240;
    const int width = left + plot_w + right, height = top + plot_h + bottom;
    // y: log10 of seconds, whole decades around the data (at least 1 ms .. 10 s)
    double lo = -3, hi = 1;
    for (const auto &p : chart.points) {
        double l = std::log10(std::max(p.y, 1e-4));
        lo = std::min(lo, std::floor(l));
        hi = std::max(hi, std::ceil(l));
    }
    if (hi <= lo) hi = lo + 1;
    double x_min = chart.x_min, x_max = chart.x_max > chart.x_min ? chart.x_max : chart.x_min + 1;
    auto px = [&](double x) {
        return left + plot_w * (std::clamp(x, x_min, x_max) - x_min) / (x_max - x_min);
    };
    auto py = [&](double y) {
        double l = std::log10(std::max(y, 1e-4));
        return top + plot_h - plot_h * (std::clamp(l, lo, hi) - lo) / (hi - lo);
    };
    // thinning: the longest point per (pixel column, series)
    std::map<std::pair<int, std::size_t>, std::size_t> keep;
    for (std::size_t i = 0; i < chart.points.size(); ++i) {
        const auto &p = chart.points[i];
        auto key = std::make_pair(static_cast<int>(px(p.x)), p.series);
        auto it = keep.find(key);
        if (it == keep.end() || chart.points[it->second].y < p.y) keep[key] = i;
    }
    std::string description = chart.description;
    if (keep.size() < chart.points.size())
        description +=
            fmt::format(" {} runs; the longest per series and pixel column are drawn ({}).",
                        chart.points.size(), keep.size());
    std::string out =
        svg_open(chart.chart_id, width, height, chart.title, description, chart.title);
    double lx = left;
    for (std::size_t s = 0; s < chart.series.size(); ++s) {
        out += fmt::format("<circle class=\"dot s-{}\" cx=\"{}\" cy=\"14\" r=\"5\"/>",
                           tone_of(chart.series[s]), num(lx + 6));
        out += text_el(lx + 16, 18, "legend", "start", chart.series[s]);
        lx += 28 + 7.5 * static_cast<double>(chart.series[s].size());
    }
    for (double d = lo; d <= hi + 1e-9; d += 1) {
        double y = py(std::pow(10.0, d));
        out += fmt::format("<line class=\"grid\" x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\"/>",
                           left, num(y), left + plot_w);
        out += text_el(left - 6, y + 4, "tick", "end", format_duration(std::pow(10.0, d)));
    }
    const int xticks = 6;
    bool with_time = (x_max - x_min) < 3 * 86400.0;
    for (int i = 0; i <= xticks; ++i) {
        double t = x_min + (x_max - x_min) * i / xticks;
        double x = px(t);
        out += fmt::format("<line class=\"grid\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>",
                           num(x), top, top + plot_h);
        out += text_el(x, top + plot_h + 16, "tick", "middle", format_utc(t, with_time));
    }
    // failed runs last, so they are drawn on top
    std::vector<std::size_t> order;
    order.reserve(keep.size());
    for (const auto &[key, index] : keep) order.push_back(index);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return chart.points[a].series < chart.points[b].series;
    });
    for (std::size_t index : order) {
        const auto &p = chart.points[index];
        std::string tone =
            p.series < chart.series.size() ? tone_of(chart.series[p.series]) : "none";
        out += fmt::format(
            "<circle class=\"dot s-{}\" cx=\"{}\" cy=\"{}\" r=\"4\"><title>{}</title></circle>",
            tone, num(px(p.x)), num(py(p.y)), escape(p.label));
    }
    out += fmt::format("<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>", left,
                       top, top + plot_h);
    out += fmt::format("<line class=\"axis\" x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\"/>", left,
                       left + plot_w, top + plot_h);
    out += text_el(left + plot_w / 2.0, top + plot_h + 44, "axis-label", "middle", chart.x_axis);
    out += text_el(14, top + plot_h / 2.0, "axis-label", "middle", chart.y_axis,
                   fmt::format(" transform=\"rotate(-90 14 {})\"", num(top + plot_h / 2.0)));
    if (chart.points.empty()) out += empty_note(width, height);
    return out + kSvgClose;
}

// ---- the document ------------------------------------------------------------------------

Document::Document(std::string title, std::string subtitle)
    : title_(std::move(title)), subtitle_(std::move(subtitle)) {}

void Document::add_card(std::string label, std::string value, std::string tone) {
    cards_ += fmt::format(
        "<div class=\"card t-{}\"><div class=\"card-value\">{}</div>"
        "<div class=\"card-label\">{}</div></div>",
        tone_of(tone), escape(value), escape(label));
}

void Document::begin_section(const std::string &id, const std::string &title) {
    if (in_section_) end_section();
    std::string sid = tone_of(id);
    body_ += fmt::format("<section id=\"{}\" aria-labelledby=\"{}-h\"><h2 id=\"{}-h\">{}</h2>\n",
                         sid, sid, sid, escape(title));
    toc_ += fmt::format("<li><a href=\"#{}\">{}</a></li>", sid, escape(title));
    in_section_ = true;
}

void Document::paragraph(const std::string &text, const std::string &css_class) {
    if (css_class.empty())
        body_ += fmt::format("<p>{}</p>\n", escape(text));
    else
        body_ += fmt::format("<p class=\"{}\">{}</p>\n", tone_of(css_class), escape(text));
}

void Document::subheading(const std::string &text) {
    body_ += fmt::format("<h3>{}</h3>\n", escape(text));
}

void Document::raw(const std::string &html) {
    body_ += html;
}

void Document::table(const std::vector<std::string> &headers, const std::vector<TableRow> &rows,
                     std::size_t total_rows) {
    if (rows.empty()) {
        paragraph("Nothing to show.", "empty");
        return;
    }
    body_ += "<div class=\"table-wrap\"><table><thead><tr>";
    for (const auto &h : headers) body_ += fmt::format("<th scope=\"col\">{}</th>", escape(h));
    body_ += "</tr></thead><tbody>\n";
    for (const auto &row : rows) {
        body_ += "<tr>";
        for (const auto &cell : row) {
            if (cell.css_class.empty())
                body_ += fmt::format("<td>{}</td>", escape(cell.text));
            else
                body_ += fmt::format("<td class=\"{}\">{}</td>", tone_of(cell.css_class),
                                     escape(cell.text));
        }
        body_ += "</tr>\n";
    }
    body_ += "</tbody></table></div>\n";
    if (total_rows > rows.size())
        paragraph(fmt::format("{} of {} rows shown.", rows.size(), total_rows), "note");
}

void Document::end_section() {
    if (!in_section_) return;
    body_ += "</section>\n";
    in_section_ = false;
}

namespace {
// Colours as CSS variables: one palette for light, one for dark, and print keeps light.
const char *kStyle = R"CSS(
:root{color-scheme:light dark;--bg:#ffffff;--fg:#1d232b;--muted:#5b6570;--line:#d5dae0;--panel:#f4f6f8;
--success:#2e8540;--failed:#c62828;--rolled_back:#d9822b;--running:#1f6feb;--skipped:#8a939c;--dry_run:#7b4bb7;
--critical:#c62828;--warn:#d9822b;--info:#1f6feb;--default:#3b82b6;--vacuum:#2e8540;--vacuum__freeze_:#7b4bb7;--analyze:#1f6feb;--other:#8a939c}
@media (prefers-color-scheme:dark){:root{--bg:#14181d;--fg:#e6e9ec;--muted:#9aa4ae;--line:#39414a;--panel:#1d232b;
--success:#57c26a;--failed:#ff6b6b;--rolled_back:#f0a04b;--running:#58a6ff;--skipped:#8a939c;--dry_run:#b48cf2;
--critical:#ff6b6b;--warn:#f0a04b;--info:#58a6ff;--default:#6cb0e0;--vacuum:#57c26a;--vacuum__freeze_:#b48cf2;--analyze:#58a6ff}}
@media print{:root{--bg:#fff;--fg:#000;--panel:#fff}nav{display:none}section{break-inside:avoid-page}}
body{margin:0;padding:24px 32px;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
h1{font-size:24px;margin:0 0 4px}h3{font-size:15px;margin:20px 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
.subtitle,.note,.empty,figcaption{color:var(--muted)}.error{color:var(--failed)}
nav ul{display:flex;flex-wrap:wrap;gap:4px 16px;list-style:none;padding:0;margin:12px 0}nav a{color:var(--running)}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}.card{background:var(--panel);border-left:4px solid var(--skipped);padding:8px 14px;min-width:140px}
.card-value{font-size:22px;font-weight:600}.card-label{color:var(--muted)}
.t-failed,.t-critical{border-color:var(--failed)}.t-warn{border-color:var(--warn)}.t-success{border-color:var(--success)}.t-info{border-color:var(--info)}
.table-wrap{overflow-x:auto}table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}th{background:var(--panel)}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.code{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word;max-width:60ch}
td.sev_critical,td.st_failed{color:var(--critical);font-weight:600}td.sev_warn,td.st_rolled_back{color:var(--warn);font-weight:600}td.st_success{color:var(--success)}
figure.chart{margin:16px 0 8px}figcaption{font-weight:600;margin-bottom:4px}figure.chart svg{max-width:100%;height:auto}
svg text{fill:var(--fg);font-size:11px}svg .tick,svg .empty{fill:var(--muted)}svg .axis-label{font-size:12px;font-weight:600}
svg .grid{stroke:var(--line);stroke-width:1}svg .axis{stroke:var(--muted);stroke-width:1}
.s-success{fill:var(--success)}.s-failed{fill:var(--failed)}.s-rolled_back{fill:var(--rolled_back)}.s-running{fill:var(--running)}
.s-skipped{fill:var(--skipped)}.s-dry_run{fill:var(--dry_run)}.s-critical{fill:var(--critical)}.s-warn{fill:var(--warn)}.s-info{fill:var(--info)}
.s-default,.s-none{fill:var(--default)}.s-vacuum{fill:var(--vacuum)}.s-vacuum__freeze_{fill:var(--vacuum__freeze_)}.s-analyze{fill:var(--analyze)}.s-other{fill:var(--other)}
svg .dot{fill-opacity:.75}
)CSS";
}  // namespace

std::string Document::render() const {
    std::string body = body_;
    if (in_section_) body += "</section>\n";
    return fmt::format(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"color-scheme\" content=\"light dark\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        "<title>{}</title><style>{}</style></head>\n<body><header><h1>{}</h1>"
        "<p class=\"subtitle\">{}</p></header>\n<div class=\"cards\">{}</div>\n"
        "<nav aria-label=\"Sections\"><ul>{}</ul></nav>\n<main>\n{}</main>\n"
        "<footer class=\"note\"><p>Generated by db_virtuoso: one self-contained page, no "
        "scripts, nothing loaded from elsewhere.</p></footer></body></html>\n",
        escape(title_), kStyle, escape(title_), escape(subtitle_), cards_, toc_, body);
}

}  // namespace virtuoso::report
