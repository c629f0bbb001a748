#pragma once
// Internal helpers shared by the dialect translators. Not part of the public API:
// include only from backends/dialect/*.cpp.
#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/json.h"

namespace frugal::dialect_detail {

using simdjson::dom::element;

inline std::string_view str_or(element e, std::string_view key, std::string_view fallback = {}) {
  std::string_view s;
  if (e[key].get_string().get(s)) return fallback;
  return s;
}

inline bool has(element e, std::string_view key) {
  element v;
  return !e[key].get(v) && !v.is_null();
}

// An integer field, accepting integral doubles; nullopt when absent, null or not integral.
inline std::optional<int64_t> int_field(element e, std::string_view key) {
  element v;
  if (e[key].get(v)) return std::nullopt;
  if (v.is_int64()) return v.get_int64().value_unsafe();
  if (v.is_uint64()) return static_cast<int64_t>(v.get_uint64().value_unsafe());
  if (v.is_double()) {
    return integral_double(v.get_double().value_unsafe());
  }
  return std::nullopt;
}

// An element or the error of looking it up, so that lookups chain
// (`str_or(ev["delta"], "type")`): a missing or mistyped parent reads as absent. Never
// call value_unsafe() on a lookup in data not validated before: a default element has
// no document, and reading it is undefined (a crash).
using Lookup = simdjson::simdjson_result<element>;

inline std::string_view str_or(Lookup e, std::string_view key, std::string_view fallback = {}) {
  element v;
  return std::move(e).get(v) ? fallback : str_or(v, key, fallback);
}

inline std::optional<int64_t> int_field(Lookup e, std::string_view key) {
  element v;
  if (std::move(e).get(v)) return std::nullopt;
  return int_field(v, key);
}

inline std::optional<double> number_of(element v) {
  if (v.is_double()) return v.get_double().value_unsafe();
  if (v.is_int64()) return static_cast<double>(v.get_int64().value_unsafe());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64().value_unsafe());
  return std::nullopt;
}

inline const char* type_word(element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: return "an array";
    case simdjson::dom::element_type::OBJECT: return "an object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE: return "a number";
    case simdjson::dom::element_type::STRING: return "a string";
    case simdjson::dom::element_type::BOOL: return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

inline Error invalid(std::string param, std::string message) {
  return make_error(ErrorKind::kInvalidRequest, std::move(message), std::move(param));
}

inline Error upstream_garbage(std::string message) {
  return make_error(ErrorKind::kUpstream, std::move(message));
}

// Strips a known id prefix and puts another in front, so ids stay traceable across
// dialects ("msg_abc" <-> "chatcmpl-abc").
inline std::string swap_id_prefix(std::string_view id, std::string_view from, std::string_view to) {
  if (id.substr(0, from.size()) == from) id.remove_prefix(from.size());
  std::string out(to);
  out += id;
  return out;
}

}  // namespace frugal::dialect_detail
