#pragma once
// A small append-only JSON writer. Output is compact; strings are escaped per RFC 8259,
// and each byte of ill-formed UTF-8 in them becomes U+FFFD, so the output is always
// valid JSON text whatever bytes a string held.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace frugal {

// d as an int64 when it is integral and in range (2e48 and NaN are not); casting an
// out-of-range double is undefined behaviour.
inline std::optional<int64_t> integral_double(double d) {
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != std::trunc(d)) return std::nullopt;
  return static_cast<int64_t>(d);
}

void json_escape_to(std::string& out, std::string_view s);  // without quotes
std::string json_quote(std::string_view s);                 // with quotes

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}
  JsonWriter& begin_object() { sep(); out_ += '{'; first_ = true; return *this; }
  JsonWriter& end_object() { out_ += '}'; first_ = false; return *this; }
  JsonWriter& begin_array() { sep(); out_ += '['; first_ = true; return *this; }
  JsonWriter& end_array() { out_ += ']'; first_ = false; return *this; }
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(int64_t v);
  JsonWriter& value(int v) { return value(static_cast<int64_t>(v)); }
  JsonWriter& value(double v);
  JsonWriter& value(bool b);
  JsonWriter& null();
  JsonWriter& raw(std::string_view json);  // an already-serialised value

 private:
  void sep() {
    if (const char c = take_sep()) out_ += c;
  }
  // The separator owed before the next element (',' or none), and forget it.
  char take_sep() {
    const char c = !first_ && !after_key_ ? ',' : '\0';
    first_ = false;
    after_key_ = false;
    return c;
  }
  bool quoted_fast(std::string_view s, char before, std::string_view after);
  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace frugal
