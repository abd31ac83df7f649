// Pure C++ (no postgres.h): JSON text written by hand where the extension builds JSON with fmt.
#pragma once

#include <string>
#include <string_view>

namespace virtuoso::core {

// A JSON string literal of s: quotes, backslashes and control characters escaped.
std::string json_quote(std::string_view s);

}  // namespace virtuoso::core
