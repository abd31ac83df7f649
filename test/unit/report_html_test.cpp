#include "db_virtuoso/report/html.hpp"

#include <gtest/gtest.h>

#include <regex>

using namespace virtuoso::report;

namespace {
std::size_t count(const std::string &haystack, const std::string &needle) {
    std::size_t n = 0;
    for (auto pos = haystack.find(needle); pos != std::string::npos;
         pos = haystack.find(needle, pos + needle.size()))
        ++n;
    return n;
}
}  // namespace

TEST(ReportEscape, MarkupBecomesText) {
    EXPECT_EQ(escape("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
    EXPECT_EQ(escape("a & \"b\" 'c'"), "a &amp; &quot;b&quot; &#39;c&#39;");
    EXPECT_EQ(escape("plain"), "plain");
    EXPECT_EQ(escape("Ünïcödé 😀"), "Ünïcödé 😀");
}

TEST(ReportEscape, InvalidUtf8AndControlCharactersAreReplaced) {
    const std::string bad =
        "a\xC0\xAF"
        "b\x01"
        "c\xED\xA0\x80"
        "d\xF8";
    std::string out = escape(bad);
    EXPECT_EQ(out.find('\x01'), std::string::npos);
    EXPECT_EQ(out.find('\xC0'), std::string::npos);
    EXPECT_EQ(count(out, "\xEF\xBF\xBD"), 7u);  // 2 + 1 + 3 + 1 bytes replaced
    EXPECT_EQ(escape("tab\tnew\nline"), "tab\tnew\nline");
    EXPECT_EQ(escape(std::string("nul\0x", 5)), "nul\xEF\xBF\xBDx");
}

TEST(ReportFormat, NumbersBytesDurations) {
    EXPECT_EQ(format_number(1234567), "1,234,567");
    EXPECT_EQ(format_number(0.5), "0.5");
    EXPECT_EQ(format_number(-1234.25, 2), "-1,234.25");
    EXPECT_EQ(format_number(12.0), "12");
    EXPECT_EQ(format_bytes(512), "512 B");
    EXPECT_EQ(format_bytes(1536), "1.5 kB");
    EXPECT_EQ(format_bytes(12.0 * 1024 * 1024), "12 MB");
    EXPECT_EQ(format_duration(0.85), "850 ms");
    EXPECT_EQ(format_duration(12.5), "12.5 s");
    EXPECT_EQ(format_duration(252), "4.2 min");
    EXPECT_EQ(format_duration(3 * 86400), "3 d");
    EXPECT_EQ(format_utc(0), "1970-01-01 00:00");
    EXPECT_EQ(format_utc(86400 * 365, false), "1971-01-01");
}

TEST(ReportFormat, TruncateCountsCharactersNotBytes) {
    EXPECT_EQ(shorten("€€€€", 2), "€€…");
    EXPECT_EQ(shorten("abc", 3), "abc");
}

TEST(ReportTicks, NiceStepsCoverTheMaximum) {
    auto t = nice_ticks(87, 4);
    EXPECT_EQ(t.front(), 0);
    EXPECT_GE(t.back(), 87);
    EXPECT_EQ(t[1], 50);  // steps of 1, 2 or 5 x 10^k
    EXPECT_EQ(nice_ticks(0).back(), 1);
}

TEST(ReportTone, AnyWordIsASafeClassName) {
    EXPECT_EQ(tone_of("ROLLED_BACK"), "rolled_back");
    EXPECT_EQ(tone_of("VACUUM (FREEZE)"), "vacuum__freeze_");
    EXPECT_EQ(tone_of("\"><script>"), "___script_");
    EXPECT_EQ(tone_of(""), "none");
}

TEST(ReportCharts, BarChartIsAccessibleAndEscapesLabels) {
    BarChart c;
    c.chart_id = "sizes";
    c.title = "Largest tables";
    c.description = "Total size per table";
    c.value_axis = "total size";
    c.unit = BarChart::Unit::Bytes;
    c.bars = {{"<script>alert(1)</script>", 2048, ""}, {"orders", 1024, "warn"}};
    std::string svg = horizontal_bar_chart(c);
    EXPECT_NE(svg.find("role=\"img\""), std::string::npos);
    EXPECT_NE(svg.find("aria-labelledby=\"sizes-title sizes-desc\""), std::string::npos);
    EXPECT_NE(svg.find("<title id=\"sizes-title\">Largest tables</title>"), std::string::npos);
    EXPECT_NE(svg.find("<desc id=\"sizes-desc\">"), std::string::npos);
    EXPECT_EQ(svg.find("<script"), std::string::npos);
    EXPECT_NE(svg.find("&lt;script&gt;"), std::string::npos);
    EXPECT_EQ(count(svg, "<rect class=\"bar"), 2u);
    EXPECT_NE(svg.find(">total size</text>"), std::string::npos);  // axis label
    EXPECT_NE(svg.find("2 kB"), std::string::npos);                // unit on values
}

TEST(ReportCharts, EmptyChartsSaySo) {
    BarChart b;
    b.chart_id = "b";
    EXPECT_NE(horizontal_bar_chart(b).find("No data in this period"), std::string::npos);
    StackedChart s;
    s.chart_id = "s";
    s.series = {"SUCCESS"};
    EXPECT_NE(stacked_column_chart(s).find("No data in this period"), std::string::npos);
    ScatterChart p;
    p.chart_id = "p";
    EXPECT_NE(duration_scatter_chart(p).find("No data in this period"), std::string::npos);
}

TEST(ReportCharts, BarChartIsBounded) {
    BarChart c;
    c.chart_id = "many";
    c.max_bars = 10;
    for (int i = 0; i < 1000; ++i) c.bars.push_back({"t" + std::to_string(i), double(i), ""});
    std::string svg = horizontal_bar_chart(c);
    EXPECT_EQ(count(svg, "<rect class=\"bar"), 10u);
    EXPECT_NE(svg.find("the first 10 of 1000"), std::string::npos);
}

TEST(ReportCharts, StackedColumnsHaveOneRectPerNonZeroValue) {
    StackedChart s;
    s.chart_id = "m";
    s.title = "Runs per day";
    s.x_axis = "day (UTC)";
    s.y_axis = "runs";
    s.series = {"SUCCESS", "FAILED"};
    s.columns = {{"2026-11-30", {3, 1}}, {"2026-12-01", {0, 2}}};
    std::string svg = stacked_column_chart(s);
    EXPECT_EQ(count(svg, "<rect class=\"bar s-success\""), 2u);  // legend + one column
    EXPECT_EQ(count(svg, "<rect class=\"bar s-failed\""), 3u);   // legend + two columns
    EXPECT_NE(svg.find(">day (UTC)</text>"), std::string::npos);
    EXPECT_NE(svg.find(">runs</text>"), std::string::npos);
}

TEST(ReportCharts, ScatterThinsTenThousandPoints) {
    ScatterChart p;
    p.chart_id = "d";
    p.series = {"SUCCESS", "FAILED"};
    p.x_min = 1'700'000'000;
    p.x_max = p.x_min + 7 * 86400;
    for (int i = 0; i < 10000; ++i)
        p.points.push_back({p.x_min + i * 60.0, 0.001 * (1 + i % 5000), std::size_t(i % 7 == 0),
                            "run " + std::to_string(i)});
    std::string svg = duration_scatter_chart(p);
    std::size_t dots = count(svg, "<circle class=\"dot") - 2;  // minus the legend
    EXPECT_LE(dots, 2u * 760u + 2u);
    EXPECT_GT(dots, 500u);
    EXPECT_NE(svg.find("10000 runs"), std::string::npos);
    EXPECT_LT(svg.size(), 400'000u);
    // the longest run (5 s) is among the drawn points
    EXPECT_NE(svg.find("run 4999<"), std::string::npos);
}

TEST(ReportDocument, SelfContainedAndEscaped) {
    Document d("Report <db>", "since 7 days");
    d.add_card("failed migrations", "3", "failed");
    d.begin_section("migrations", "Migrations & runs");
    d.paragraph("error: <img src=x onerror=alert(1)>");
    d.table({"name", "status"}, {{{"<script>alert(1)</script>", ""}, {"FAILED", "st-failed"}}}, 5);
    d.end_section();
    std::string html = d.render();
    EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_EQ(html.find("<script"), std::string::npos);
    EXPECT_EQ(html.find("<img"), std::string::npos);
    EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
    EXPECT_NE(html.find("prefers-color-scheme:dark"), std::string::npos);
    EXPECT_NE(html.find("href=\"#migrations\""), std::string::npos);
    EXPECT_NE(html.find("1 of 5 rows shown"), std::string::npos);
    EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org"));  // no external resource
    EXPECT_FALSE(std::regex_search(html, std::regex("(src|href)=\"(https?:)?//")));
}
