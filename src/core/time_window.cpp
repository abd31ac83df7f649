#include "db_virtuoso/core/time_window.hpp"

#include <cctype>

#include <fmt/format.h>

namespace virtuoso::core {
namespace {

std::string trim(const std::string &s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return s.substr(b, e - b);
}

// "HH:MM" -> minutes since midnight
std::optional<int> parse_clock(const std::string &text) {
    std::string t = trim(text);
    size_t colon = t.find(':');
    if (colon == std::string::npos || colon == 0 || colon > 2 || t.size() != colon + 3)
        return std::nullopt;
    for (size_t i = 0; i < t.size(); ++i)
        if (i != colon && !std::isdigit(static_cast<unsigned char>(t[i]))) return std::nullopt;
    int hours = std::stoi(t.substr(0, colon));
    int minutes = std::stoi(t.substr(colon + 1));
    if (hours > 23 || minutes > 59) return std::nullopt;
    return hours * 60 + minutes;
}

}  // namespace

std::optional<TimeWindow> TimeWindow::parse(const std::string &text, std::string *error) {
    TimeWindow w;
    std::string t = trim(text);
    if (t.empty()) return w;
    size_t dash = t.find('-');
    std::optional<int> start, end;
    if (dash != std::string::npos) {
        start = parse_clock(t.substr(0, dash));
        end = parse_clock(t.substr(dash + 1));
    }
    if (!start || !end) {
        if (error)
            *error =
                fmt::format("\"{}\" is not a window of the form HH:MM-HH:MM, e.g. 01:00-05:00", t);
        return std::nullopt;
    }
    if (*start == *end) {
        if (error) *error = fmt::format("window \"{}\" is empty: start and end are equal", t);
        return std::nullopt;
    }
    w.always_ = false;
    w.start_ = *start;
    w.end_ = *end;
    return w;
}

bool TimeWindow::contains(int minute_of_day) const {
    if (always_) return true;
    if (start_ < end_) return minute_of_day >= start_ && minute_of_day < end_;
    return minute_of_day >= start_ || minute_of_day < end_;  // wraps past midnight
}

std::optional<std::vector<std::string>> parse_name_list(const std::string &text,
                                                        std::string *error) {
    std::vector<std::string> names;
    size_t i = 0;
    const size_t n = text.size();
    auto skip_space = [&] {
        while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    };
    skip_space();
    if (i == n) return names;
    for (;;) {
        skip_space();
        std::string name;
        if (i < n && text[i] == '"') {
            ++i;
            for (;;) {
                if (i >= n) {
                    if (error) *error = "unterminated quoted name";
                    return std::nullopt;
                }
                if (text[i] == '"') {
                    if (i + 1 < n && text[i + 1] == '"') {
                        name += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                name += text[i++];
            }
        } else {
            while (i < n && text[i] != ',') name += text[i++];
            name = trim(name);
        }
        if (name.empty()) {
            if (error) *error = "empty name in list";
            return std::nullopt;
        }
        names.push_back(name);
        skip_space();
        if (i == n) break;
        if (text[i] != ',') {
            if (error) *error = fmt::format("unexpected character '{}' after a name", text[i]);
            return std::nullopt;
        }
        ++i;
    }
    return names;
}

}  // namespace virtuoso::core
