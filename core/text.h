#pragma once
// Small byte-level string checks used on hot paths.
#include <cstring>
#include <string_view>

namespace frugal {

// True if `s` holds CR or LF (which would end an HTTP header line). Short values (most
// header values) in one loop; longer ones in two vectorised memchr scans.
// std::string_view::find_first_of("\r\n") calls memchr once per byte.
inline bool has_line_break(std::string_view s) {
  if (s.size() <= 64) {
    bool found = false;
    for (char c : s) found |= (c == '\n') | (c == '\r');
    return found;
  }
  return std::memchr(s.data(), '\n', s.size()) != nullptr || std::memchr(s.data(), '\r', s.size()) != nullptr;
}

}  // namespace frugal
