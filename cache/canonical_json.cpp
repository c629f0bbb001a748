#include "cache/canonical_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

#include "core/json.h"

namespace frugal::cache {
namespace {

void write_double(std::string& out, double d) {
  if (!std::isfinite(d)) {  // simdjson never yields these; stay total anyway
    out += "null";
    return;
  }
  constexpr double kExactInt = 9007199254740992.0;  // 2^53
  if (d == std::floor(d) && std::fabs(d) <= kExactInt) {
    const auto i = static_cast<int64_t>(d);
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, i);
    out.append(buf, r.ptr);
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, r.ptr);
}

}  // namespace

void canonical_json_to(std::string& out, simdjson::dom::element e) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::OBJECT: {
      std::vector<std::pair<std::string_view, simdjson::dom::element>> fields;
      const simdjson::dom::object obj = e.get_object().value_unsafe();
      for (auto field : obj) fields.emplace_back(field.key, field.value);
      std::stable_sort(fields.begin(), fields.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      bool first = true;
      for (const auto& [k, v] : fields) {
        if (!first) out += ',';
        first = false;
        out += '"';
        json_escape_to(out, k);
        out += "\":";
        canonical_json_to(out, v);
      }
      out += '}';
      return;
    }
    case element_type::ARRAY: {
      out += '[';
      bool first = true;
      const simdjson::dom::array arr = e.get_array().value_unsafe();
      for (auto v : arr) {
        if (!first) out += ',';
        first = false;
        canonical_json_to(out, v);
      }
      out += ']';
      return;
    }
    case element_type::STRING:
      out += '"';
      json_escape_to(out, e.get_string().value_unsafe());
      out += '"';
      return;
    case element_type::INT64: {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, e.get_int64().value_unsafe());
      out.append(buf, r.ptr);
      return;
    }
    case element_type::UINT64: {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, e.get_uint64().value_unsafe());
      out.append(buf, r.ptr);
      return;
    }
    case element_type::DOUBLE: write_double(out, e.get_double().value_unsafe()); return;
    case element_type::BOOL: out += e.get_bool().value_unsafe() ? "true" : "false"; return;
    case element_type::NULL_VALUE: out += "null"; return;
  }
}

Result<std::string> canonical_json(std::string_view json) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(json.data(), json.size()).get(root))
    return make_error(ErrorKind::kInvalidRequest,
                      std::string("invalid JSON: ") + simdjson::error_message(err));
  std::string out;
  out.reserve(json.size());
  canonical_json_to(out, root);
  return out;
}

std::string canonical_json_or_raw(std::string_view json) {
  auto r = canonical_json(json);
  if (r) return std::move(r).value();
  return std::string(json);
}

}  // namespace frugal::cache
