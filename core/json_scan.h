#pragma once
// Byte-level walking of a JSON object's top-level members, for rewriting a body in place
// (replacing `model`, appending a member) instead of re-encoding every field. It finds
// boundaries only; the text must already have been validated by a real parser.
#include <cstddef>
#include <string_view>

namespace frugal::json_scan {

inline constexpr size_t npos = std::string_view::npos;

// `i` at an opening quote: one past the closing quote, or npos.
size_t skip_string(std::string_view s, size_t i);
// `i` at the first byte of a value: one past its last byte, or npos.
size_t skip_value(std::string_view s, size_t i);
size_t skip_ws(std::string_view s, size_t i);

// Calls fn(key, value_begin, value_end) for each member of the object starting at `i`
// (at its '{' or whitespace before it) in order, with the key as written (escapes not
// decoded); fn returns false to stop. Returns the index of the object's closing brace,
// or npos if the text does not scan as an object or fn stopped.
template <class Fn>
size_t for_each_member(std::string_view s, size_t i, Fn&& fn) {
  i = skip_ws(s, i);
  if (i >= s.size() || s[i] != '{') return npos;
  i = skip_ws(s, i + 1);
  if (i < s.size() && s[i] == '}') return i;
  while (i < s.size() && s[i] == '"') {
    const size_t key_end = skip_string(s, i);
    if (key_end == npos) return npos;
    const std::string_view key = s.substr(i + 1, key_end - i - 2);
    i = skip_ws(s, key_end);
    if (i >= s.size() || s[i] != ':') return npos;
    const size_t v = skip_ws(s, i + 1);
    const size_t v_end = skip_value(s, v);
    if (v_end == npos) return npos;
    if (!fn(key, v, v_end)) return npos;
    i = skip_ws(s, v_end);
    if (i < s.size() && s[i] == '}') return i;
    if (i >= s.size() || s[i] != ',') return npos;
    i = skip_ws(s, i + 1);
  }
  return npos;
}

}  // namespace frugal::json_scan
