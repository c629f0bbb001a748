#include "core/json_scan.h"

#include <cstring>

namespace frugal::json_scan {
namespace {
bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
}  // namespace

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && is_ws(s[i])) ++i;
  return i;
}

size_t skip_string(std::string_view s, size_t i) {
  // Jump from quote to quote: a quote ends the string unless an odd run of backslashes
  // precedes it.
  for (size_t from = i + 1; from < s.size();) {
    const void* hit = std::memchr(s.data() + from, '"', s.size() - from);
    if (!hit) return npos;
    const size_t q = static_cast<size_t>(static_cast<const char*>(hit) - s.data());
    size_t slashes = 0;
    while (q - slashes > i + 1 && s[q - slashes - 1] == '\\') ++slashes;
    if (slashes % 2 == 0) return q + 1;
    from = q + 1;
  }
  return npos;
}

size_t skip_value(std::string_view s, size_t i) {
  if (i >= s.size()) return npos;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      const char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        if (i == npos) return npos;
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return i + 1;
      }
      ++i;
    }
    return npos;
  }
  const size_t start = i;
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i])) ++i;
  return i == start ? npos : i;
}

}  // namespace frugal::json_scan
