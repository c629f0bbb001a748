#include "policies/json_schema.h"

#include <cmath>

namespace frugal::policies {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

constexpr int kMaxDepth = 64;

bool is_number(element e) {
  const auto t = e.type();
  return t == element_type::INT64 || t == element_type::UINT64 || t == element_type::DOUBLE;
}

double as_double(element e) {
  switch (e.type()) {
    case element_type::INT64: return static_cast<double>(int64_t(e));
    case element_type::UINT64: return static_cast<double>(uint64_t(e));
    default: return double(e);
  }
}

bool is_integer(element e) {
  if (e.type() == element_type::INT64 || e.type() == element_type::UINT64) return true;
  if (e.type() != element_type::DOUBLE) return false;
  const double d = double(e);
  return std::isfinite(d) && std::floor(d) == d;
}

const char* type_name(element e) {
  switch (e.type()) {
    case element_type::ARRAY: return "array";
    case element_type::OBJECT: return "object";
    case element_type::INT64:
    case element_type::UINT64: return "integer";
    case element_type::DOUBLE: return "number";
    case element_type::STRING: return "string";
    case element_type::BOOL: return "boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "?";
}

bool has_type(element inst, std::string_view t) {
  if (t == "integer") return is_integer(inst);
  if (t == "number") return is_number(inst);
  if (t == "string") return inst.type() == element_type::STRING;
  if (t == "object") return inst.type() == element_type::OBJECT;
  if (t == "array") return inst.type() == element_type::ARRAY;
  if (t == "boolean") return inst.type() == element_type::BOOL;
  if (t == "null") return inst.type() == element_type::NULL_VALUE;
  return false;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

class Validator {
 public:
  explicit Validator(element root) : root_(root) {}

  // Returns false and sets error_ on the first violation.
  bool check(element schema, element inst, std::string& path, int depth) {
    if (depth > kMaxDepth) return fail(path, "schema nesting deeper than 64 levels");
    if (schema.type() == element_type::BOOL) {
      return bool(schema) ? true : fail(path, "schema 'false' accepts nothing");
    }
    simdjson::dom::object s;
    if (schema.get(s)) return fail(path, "schema is not an object");

    std::string_view ref;
    if (!s["$ref"].get(ref)) {
      if (ref.empty() || ref[0] != '#') return fail(path, "only local $ref is supported");
      element target;
      if (root_.at_pointer(ref.substr(1)).get(target))
        return fail(path, "unresolved $ref '" + std::string(ref) + "'");
      if (!check(target, inst, path, depth + 1)) return false;
    }

    element v;
    if (!s["type"].get(v)) {
      bool ok = false;
      std::string want;
      if (v.type() == element_type::STRING) {
        ok = has_type(inst, std::string_view(v));
        want = std::string(std::string_view(v));
      } else if (v.type() == element_type::ARRAY) {
        for (element t : simdjson::dom::array(v)) {
          std::string_view tn;
          if (t.get(tn)) continue;
          want += (want.empty() ? "" : " or ") + std::string(tn);
          if (has_type(inst, tn)) ok = true;
        }
      }
      if (!ok) return fail(path, "expected " + want + ", got " + type_name(inst));
    }
    if (!s["const"].get(v) && !json_equal(v, inst)) return fail(path, "value differs from const");
    if (!s["enum"].get(v) && v.type() == element_type::ARRAY) {
      bool found = false;
      for (element e : simdjson::dom::array(v)) found = found || json_equal(e, inst);
      if (!found) return fail(path, "value is not one of the enum values");
    }
    if (is_number(inst)) {
      const double x = as_double(inst);
      if (!s["minimum"].get(v) && is_number(v) && x < as_double(v))
        return fail(path, "below minimum " + std::string(simdjson::minify(v)));
      if (!s["maximum"].get(v) && is_number(v) && x > as_double(v))
        return fail(path, "above maximum " + std::string(simdjson::minify(v)));
      if (!s["exclusiveMinimum"].get(v) && is_number(v) && x <= as_double(v))
        return fail(path, "not above exclusiveMinimum " + std::string(simdjson::minify(v)));
      if (!s["exclusiveMaximum"].get(v) && is_number(v) && x >= as_double(v))
        return fail(path, "not below exclusiveMaximum " + std::string(simdjson::minify(v)));
    }
    if (inst.type() == element_type::STRING) {
      const size_t len = utf8_length(std::string_view(inst));
      int64_t n;
      if (!s["minLength"].get(n) && static_cast<int64_t>(len) < n)
        return fail(path, "shorter than minLength " + std::to_string(n));
      if (!s["maxLength"].get(n) && static_cast<int64_t>(len) > n)
        return fail(path, "longer than maxLength " + std::to_string(n));
    }
    if (inst.type() == element_type::OBJECT && !check_object(s, simdjson::dom::object(inst), path, depth))
      return false;
    if (inst.type() == element_type::ARRAY && !check_array(s, simdjson::dom::array(inst), path, depth))
      return false;

    if (!s["allOf"].get(v) && v.type() == element_type::ARRAY) {
      for (element sub : simdjson::dom::array(v))
        if (!check(sub, inst, path, depth + 1)) return false;
    }
    if (!s["anyOf"].get(v) && v.type() == element_type::ARRAY) {
      if (count_matches(simdjson::dom::array(v), inst, path, depth, 1) == 0)
        return fail(path, "matches none of anyOf");
    }
    if (!s["oneOf"].get(v) && v.type() == element_type::ARRAY) {
      const int n = count_matches(simdjson::dom::array(v), inst, path, depth, 2);
      if (n != 1) return fail(path, n == 0 ? "matches none of oneOf" : "matches more than one of oneOf");
    }
    if (!s["not"].get(v)) {
      std::string p = path;
      Validator sub(root_);
      if (sub.check(v, inst, p, depth + 1)) return fail(path, "matches the 'not' schema");
    }
    return true;
  }

  std::string error_;

 private:
  int count_matches(simdjson::dom::array subs, element inst, const std::string& path, int depth,
                    int stop_at) {
    int n = 0;
    for (element sub : subs) {
      Validator v(root_);
      std::string p = path;
      if (v.check(sub, inst, p, depth + 1) && ++n >= stop_at) break;
    }
    return n;
  }

  bool check_object(simdjson::dom::object s, simdjson::dom::object inst, std::string& path, int depth) {
    element v;
    if (!s["required"].get(v) && v.type() == element_type::ARRAY) {
      for (element r : simdjson::dom::array(v)) {
        std::string_view name;
        if (r.get(name)) continue;
        element dummy;
        if (inst[name].get(dummy)) return fail(path, "missing required property '" + std::string(name) + "'");
      }
    }
    simdjson::dom::object props;
    const bool has_props = !s["properties"].get(props);
    element additional;
    const bool has_additional = !s["additionalProperties"].get(additional);
    for (auto field : inst) {
      const size_t len = path.size();
      path += '/';
      path += field.key;
      element sub;
      bool ok = true;
      if (has_props && !props[field.key].get(sub)) {
        ok = check(sub, field.value, path, depth + 1);
      } else if (has_additional) {
        if (additional.type() == element_type::BOOL && !bool(additional)) {
          path.resize(len);
          return fail(path, "additional property '" + std::string(field.key) + "' is not allowed");
        }
        ok = check(additional, field.value, path, depth + 1);
      }
      if (!ok) return false;
      path.resize(len);
    }
    return true;
  }

  bool check_array(simdjson::dom::object s, simdjson::dom::array inst, std::string& path, int depth) {
    int64_t n;
    const auto size = static_cast<int64_t>(inst.size());
    if (!s["minItems"].get(n) && size < n) return fail(path, "fewer than minItems " + std::to_string(n));
    if (!s["maxItems"].get(n) && size > n) return fail(path, "more than maxItems " + std::to_string(n));
    element items;
    if (!s["items"].get(items) && items.type() != element_type::ARRAY) {
      size_t i = 0;
      for (element e : inst) {
        const size_t len = path.size();
        path += '/' + std::to_string(i++);
        if (!check(items, e, path, depth + 1)) return false;
        path.resize(len);
      }
    }
    return true;
  }

  bool fail(const std::string& path, const std::string& what) {
    error_ = "at " + (path.empty() ? std::string("/") : path) + ": " + what;
    return false;
  }

  element root_;
};

}  // namespace

bool json_equal(element a, element b) {
  if (is_number(a) && is_number(b)) {
    if (a.type() != element_type::DOUBLE && b.type() != element_type::DOUBLE) {
      if (a.type() == b.type()) return a.type() == element_type::INT64 ? int64_t(a) == int64_t(b)
                                                                        : uint64_t(a) == uint64_t(b);
      // int64 vs uint64: equal only if the signed one is non-negative and values match.
      const element s = a.type() == element_type::INT64 ? a : b;
      const element u = a.type() == element_type::INT64 ? b : a;
      return int64_t(s) >= 0 && static_cast<uint64_t>(int64_t(s)) == uint64_t(u);
    }
    return as_double(a) == as_double(b);
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case element_type::STRING: return std::string_view(a) == std::string_view(b);
    case element_type::BOOL: return bool(a) == bool(b);
    case element_type::NULL_VALUE: return true;
    case element_type::ARRAY: {
      simdjson::dom::array x(a), y(b);
      if (x.size() != y.size()) return false;
      auto it = y.begin();
      for (element e : x) {
        if (!json_equal(e, *it)) return false;
        ++it;
      }
      return true;
    }
    case element_type::OBJECT: {
      simdjson::dom::object x(a), y(b);
      if (x.size() != y.size()) return false;
      for (auto f : x) {
        element other;
        if (y[f.key].get(other) || !json_equal(f.value, other)) return false;
      }
      return true;
    }
    default: return false;
  }
}

SchemaResult validate_json_schema(element schema, element instance) {
  Validator v(schema);
  std::string path;
  SchemaResult r;
  r.valid = v.check(schema, instance, path, 0);
  if (!r.valid) r.error = std::move(v.error_);
  return r;
}

SchemaResult validate_json_text(std::string_view schema_json, std::string_view instance_json) {
  thread_local simdjson::dom::parser schema_parser;
  thread_local simdjson::dom::parser instance_parser;
  element schema, inst;
  if (auto err = schema_parser.parse(schema_json.data(), schema_json.size()).get(schema))
    return {false, std::string("schema is not valid JSON: ") + simdjson::error_message(err)};
  if (auto err = instance_parser.parse(instance_json.data(), instance_json.size()).get(inst))
    return {false, std::string("answer is not valid JSON: ") + simdjson::error_message(err)};
  return validate_json_schema(schema, inst);
}

}  // namespace frugal::policies
