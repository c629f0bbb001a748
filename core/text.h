#pragma once
// Small byte-level string checks used on hot paths.
#include <cstring>
#include <string_view>

namespace frugal {

// True if `s` holds CR or LF (which would end an HTTP header line). Two vectorised
// memchr scans; std::string_view::find_first_of("\r\n") calls memchr once per byte.
inline bool has_line_break(std::string_view s) {
  return std::memchr(s.data(), '\n', s.size()) != nullptr || std::memchr(s.data(), '\r', s.size()) != nullptr;
}

}  // namespace frugal
