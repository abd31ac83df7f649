// Pure C++ (no postgres.h): parsing of the scheduler's settings.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace virtuoso::core {

// A daily window "HH:MM-HH:MM"; it may wrap past midnight ("22:00-04:00").  The empty
// string is the window that is always open.
class TimeWindow {
public:
    static std::optional<TimeWindow> parse(const std::string &text, std::string *error);
    bool always() const { return always_; }
    // minute_of_day in [0, 1440)
    bool contains(int minute_of_day) const;
    int start_minute() const { return start_; }
    int end_minute() const { return end_; }

private:
    bool always_ = true;
    int start_ = 0;
    int end_ = 0;
};

// "a, b ,c" -> {"a","b","c"}; names may be double-quoted to keep commas or spaces.
std::optional<std::vector<std::string>> parse_name_list(const std::string &text,
                                                        std::string *error);

}  // namespace virtuoso::core
