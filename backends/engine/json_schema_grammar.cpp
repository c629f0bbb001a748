#include "backends/engine/json_schema_grammar.h"

#include <simdjson.h>

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include "core/json.h"

namespace frugal::engine {
namespace {

constexpr int32_t kMaxNfaStates = 200'000;
constexpr int kMaxIndent = 16;
constexpr int kMaxIntDigits = 15;
constexpr int kMaxFracDigits = 15;
constexpr int kMaxExpDigits = 2;
constexpr int64_t kMaxItemsBound = 128;
constexpr int64_t kMaxLengthBound = 2048;
constexpr int kMaxSchemaDepth = 48;

const std::set<std::string_view> kAnnotations = {"title",    "description", "default",  "examples", "format",
                                                  "$schema",  "$id",         "$comment", "deprecated",
                                                  "readOnly", "writeOnly",   "$defs",    "definitions"};
const std::set<std::string_view> kKeywords = {"type",     "properties", "required",  "additionalProperties",
                                               "items",    "minItems",   "maxItems",  "minLength",
                                               "maxLength", "enum",      "const",     "anyOf",
                                               "$ref"};

struct Frag {
  int32_t in, out;
};

class Builder {
 public:
  explicit Builder(ByteNfa& nfa) : nfa_(nfa) {}

  int32_t state() { return nfa_.add_state(); }
  Frag empty() {
    const int32_t s = state();
    return {s, s};
  }
  Frag lit(std::string_view bytes) {
    const int32_t in = state();
    return {in, nfa_.literal(in, bytes)};
  }
  Frag seq(std::initializer_list<Frag> parts) {
    const Frag* prev = nullptr;
    for (const Frag& f : parts) {
      if (prev) nfa_.epsilon(prev->out, f.in);
      prev = &f;
    }
    return {parts.begin()->in, prev->out};
  }
  Frag alt(const std::vector<Frag>& options) {
    const int32_t in = state(), out = state();
    for (const Frag& f : options) {
      nfa_.epsilon(in, f.in);
      nfa_.epsilon(f.out, out);
    }
    return {in, out};
  }
  // Nothing, one space, or a newline and up to kMaxIndent spaces or tabs.
  Frag ws() {
    const int32_t in = state(), out = state();
    nfa_.epsilon(in, out);
    nfa_.range(in, ' ', ' ', out);
    int32_t at = state();
    nfa_.range(in, '\n', '\n', at);
    for (int i = 0; i < kMaxIndent; ++i) {
      nfa_.epsilon(at, out);
      const int32_t to = state();
      nfa_.range(at, ' ', ' ', to);
      nfa_.range(at, '\t', '\t', to);
      at = to;
    }
    nfa_.epsilon(at, out);
    return {in, out};
  }

  // Edges from `from` to `to` for one JSON string character: unescaped UTF-8 (no
  // control characters, no '"' or '\'), or an escape.
  void string_char(int32_t from, int32_t to) {
    nfa_.range(from, 0x20, 0x21, to);
    nfa_.range(from, 0x23, 0x5B, to);
    nfa_.range(from, 0x5D, 0x7F, to);
    const int32_t c1 = state(), c2 = state(), c3 = state();
    nfa_.range(c1, 0x80, 0xBF, to);
    nfa_.range(c2, 0x80, 0xBF, c1);
    nfa_.range(c3, 0x80, 0xBF, c2);
    nfa_.range(from, 0xC2, 0xDF, c1);
    const int32_t e0 = state(), ed = state(), f0 = state(), f4 = state();
    nfa_.range(from, 0xE0, 0xE0, e0);
    nfa_.range(e0, 0xA0, 0xBF, c1);
    nfa_.range(from, 0xE1, 0xEC, c2);
    nfa_.range(from, 0xED, 0xED, ed);
    nfa_.range(ed, 0x80, 0x9F, c1);
    nfa_.range(from, 0xEE, 0xEF, c2);
    nfa_.range(from, 0xF0, 0xF0, f0);
    nfa_.range(f0, 0x90, 0xBF, c2);
    nfa_.range(from, 0xF1, 0xF3, c3);
    nfa_.range(from, 0xF4, 0xF4, f4);
    nfa_.range(f4, 0x80, 0x8F, c2);
    const int32_t esc = state();
    nfa_.range(from, '\\', '\\', esc);
    for (char c : std::string_view("\"\\/bfnrt")) nfa_.range(esc, static_cast<uint8_t>(c), static_cast<uint8_t>(c), to);
    // \uXXXX, but not a surrogate (U+D800..DFFF): a lone one is not valid text.
    const int32_t u = state(), ud = state(), h3 = state(), h2 = state(), h1 = state();
    nfa_.range(esc, 'u', 'u', u);
    hex(u, h3, /*exclude_d=*/true);
    nfa_.range(u, 'd', 'd', ud);
    nfa_.range(u, 'D', 'D', ud);
    nfa_.range(ud, '0', '7', h2);
    hex(h3, h2, false);
    hex(h2, h1, false);
    hex(h1, to, false);
  }
  void hex(int32_t from, int32_t to, bool exclude_d) {
    nfa_.range(from, '0', '9', to);
    nfa_.range(from, 'a', exclude_d ? 'c' : 'f', to);
    nfa_.range(from, 'A', exclude_d ? 'C' : 'F', to);
    if (exclude_d) {
      nfa_.range(from, 'e', 'f', to);
      nfa_.range(from, 'E', 'F', to);
    }
  }
  // A JSON string of min..max characters (max < 0: unbounded).
  Frag string(int64_t min, int64_t max) {
    const Frag open = lit("\"");
    const int32_t close_in = state();
    const int32_t out = nfa_.literal(close_in, "\"");
    int32_t at = open.out;
    const int64_t chain = max < 0 ? min : max;
    for (int64_t i = 0; i < chain; ++i) {
      if (i >= min) nfa_.epsilon(at, close_in);
      const int32_t to = state();
      string_char(at, to);
      at = to;
    }
    if (max < 0) string_char(at, at);
    nfa_.epsilon(at, close_in);
    return {open.in, out};
  }
  // `digits` of [lo-9] then up to `more` further digits.
  void digits(int32_t from, int32_t to, char first_lo, int more) {
    int32_t at = state();
    nfa_.range(from, static_cast<uint8_t>(first_lo), '9', at);
    for (int i = 0; i < more; ++i) {
      nfa_.epsilon(at, to);
      const int32_t next = state();
      nfa_.range(at, '0', '9', next);
      at = next;
    }
    nfa_.epsilon(at, to);
  }
  Frag integer() {
    const int32_t in = state(), sign = state(), out = state();
    nfa_.epsilon(in, sign);
    nfa_.range(in, '-', '-', sign);
    nfa_.range(sign, '0', '0', out);
    digits(sign, out, '1', kMaxIntDigits - 1);
    return {in, out};
  }
  Frag number() {
    const Frag i = integer();
    const int32_t frac_done = state(), out = state();
    nfa_.epsilon(i.out, frac_done);
    const int32_t dot = state();
    nfa_.range(i.out, '.', '.', dot);
    digits(dot, frac_done, '0', kMaxFracDigits - 1);
    nfa_.epsilon(frac_done, out);
    const int32_t e = state(), esign = state();
    nfa_.range(frac_done, 'e', 'e', e);
    nfa_.range(frac_done, 'E', 'E', e);
    nfa_.epsilon(e, esign);
    nfa_.range(e, '+', '+', esign);
    nfa_.range(e, '-', '-', esign);
    digits(esign, out, '0', kMaxExpDigits - 1);
    return {i.in, out};
  }

  // Any JSON value; containers at most `depth` deep.
  Frag any_value(int depth) {
    std::vector<Frag> options{string(0, -1), number(), lit("true"), lit("false"), lit("null")};
    if (depth > 0) {
      options.push_back(any_object(depth));
      options.push_back(any_array(depth));
    }
    return alt(options);
  }
  // Members of an object separated by commas: `member` builds one "key": value.
  template <class Member>
  Frag members(Member member) {
    const Frag open = seq({lit("{"), ws()});
    const Frag close = seq({ws(), lit("}")});
    nfa_.epsilon(open.out, close.in);
    const Frag first = member();
    nfa_.epsilon(open.out, first.in);
    const int32_t after = state();
    nfa_.epsilon(first.out, after);
    nfa_.epsilon(after, close.in);
    const Frag more = seq({lit(","), ws(), member()});
    nfa_.epsilon(after, more.in);
    nfa_.epsilon(more.out, after);
    return {open.in, close.out};
  }
  Frag any_object(int depth) {
    return members([&] { return seq({string(0, -1), lit(":"), ws(), any_value(depth - 1)}); });
  }
  Frag any_array(int depth) {
    return array([&] { return Result<Frag>(any_value(depth - 1)); }, 0, -1).value();
  }
  // '[' items ']' with min..max items (max < 0: unbounded); `item` builds one.
  template <class Item>
  Result<Frag> array(Item item, int64_t min, int64_t max) {
    const Frag open = seq({lit("["), ws()});
    const Frag close = seq({ws(), lit("]")});
    if (max == 0) {
      nfa_.epsilon(open.out, close.in);
      return Frag{open.in, close.out};
    }
    if (min == 0) nfa_.epsilon(open.out, close.in);
    auto first = item();
    if (!first) return std::move(first).error();
    nfa_.epsilon(open.out, first->in);
    int32_t at = first->out;
    const int64_t chain = max < 0 ? std::max<int64_t>(min, 1) : max;
    for (int64_t n = 1; n < chain; ++n) {
      if (n >= min) nfa_.epsilon(at, close.in);
      auto next = item();
      if (!next) return std::move(next).error();
      const Frag sep = seq({lit(","), ws()});
      nfa_.epsilon(at, sep.in);
      nfa_.epsilon(sep.out, next->in);
      at = next->out;
      if (too_big()) return size_error();
    }
    if (max < 0) {  // loop: , item
      auto again = item();
      if (!again) return std::move(again).error();
      const Frag sep = seq({lit(","), ws()});
      nfa_.epsilon(at, sep.in);
      nfa_.epsilon(sep.out, again->in);
      nfa_.epsilon(again->out, at);
    }
    nfa_.epsilon(at, close.in);
    return Frag{open.in, close.out};
  }

  bool too_big() const { return nfa_.size() > kMaxNfaStates; }
  Error size_error() const {
    return make_error(ErrorKind::kInvalidRequest,
                      "The schema is too large for the local engine's constrained decoding (over " +
                          std::to_string(kMaxNfaStates) + " automaton states).",
                      param_, "unsupported_parameter");
  }

  // --- JSON Schema ---
  std::string param_;
  simdjson::dom::element root_;
  std::vector<std::string> refs_;  // $refs being expanded (recursion check)

  Error bad(const std::string& where, const std::string& what) const {
    return make_error(ErrorKind::kInvalidRequest,
                      "Invalid schema for the local engine at '" + where + "': " + what, param_,
                      "unsupported_parameter");
  }

  Result<int64_t> bound(simdjson::dom::object o, const char* key, const std::string& at, int64_t limit,
                        int64_t dflt) const {
    simdjson::dom::element v;
    if (o[key].get(v)) return dflt;
    int64_t n = 0;
    if (v.is_int64()) n = v.get_int64().value_unsafe();
    else if (v.is_uint64()) n = limit + 1;
    else return bad(at + "/" + key, std::string("'") + key + "' must be a non-negative integer.");
    if (n < 0) return bad(at + "/" + key, std::string("'") + key + "' must be a non-negative integer.");
    if (n > limit) return bad(at + "/" + key, std::string("'") + key + "' above " + std::to_string(limit) + " is not supported.");
    return n;
  }

  Result<Frag> schema(simdjson::dom::element s, const std::string& at, int depth) {
    if (depth > kMaxSchemaDepth) return bad(at, "the schema nests too deeply.");
    if (too_big()) return size_error();
    if (s.is_bool()) {
      if (!s.get_bool().value_unsafe()) return bad(at, "the schema 'false' accepts nothing.");
      return any_value(kAnyDepth);
    }
    simdjson::dom::object o;
    if (s.get_object().get(o)) return bad(at, "a schema must be an object or a boolean.");
    bool has_type_keywords = false;
    for (auto field : o) {
      if (kAnnotations.contains(field.key)) continue;
      if (!kKeywords.contains(field.key))
        return bad(at, "the keyword '" + std::string(field.key) + "' is not supported.");
      if (field.key != "$ref" && field.key != "anyOf") has_type_keywords = true;
    }
    simdjson::dom::element v;
    if (!o["$ref"].get(v)) {
      if (has_type_keywords || !o["anyOf"].error()) return bad(at, "'$ref' with other keywords beside it is not supported.");
      std::string_view ref;
      if (v.get_string().get(ref) || ref.empty() || ref[0] != '#')
        return bad(at + "/$ref", "only local references ('#' or '#/...') are supported.");
      const std::string key(ref);
      if (std::find(refs_.begin(), refs_.end(), key) != refs_.end())
        return bad(at + "/$ref", "the recursive reference '" + key + "' is not supported.");
      simdjson::dom::element target;
      if (root_.at_pointer(ref.substr(1)).get(target)) return bad(at + "/$ref", "'" + key + "' does not resolve.");
      refs_.push_back(key);
      auto f = schema(target, key, depth + 1);
      refs_.pop_back();
      return f;
    }
    if (!o["anyOf"].get(v)) {
      if (has_type_keywords) return bad(at, "'anyOf' with other keywords beside it is not supported (put them in each alternative).");
      simdjson::dom::array a;
      if (v.get_array().get(a) || a.size() == 0) return bad(at + "/anyOf", "'anyOf' must be a non-empty array of schemas.");
      std::vector<Frag> options;
      size_t i = 0;
      for (auto alt_schema : a) {
        auto f = schema(alt_schema, at + "/anyOf/" + std::to_string(i++), depth + 1);
        if (!f) return std::move(f).error();
        options.push_back(*f);
      }
      return alt(options);
    }
    if (!o["const"].get(v)) return lit(simdjson::to_string(v));
    if (!o["enum"].get(v)) {
      simdjson::dom::array a;
      if (v.get_array().get(a) || a.size() == 0) return bad(at + "/enum", "'enum' must be a non-empty array.");
      std::vector<Frag> options;
      for (auto e : a) options.push_back(lit(simdjson::to_string(e)));
      return alt(options);
    }
    std::vector<std::string_view> types;
    if (!o["type"].get(v)) {
      std::string_view t;
      simdjson::dom::array a;
      if (!v.get_string().get(t)) {
        types.push_back(t);
      } else if (!v.get_array().get(a) && a.size() > 0) {
        for (auto e : a) {
          if (e.get_string().get(t)) return bad(at + "/type", "'type' must be a string or an array of strings.");
          types.push_back(t);
        }
      } else {
        return bad(at + "/type", "'type' must be a string or an array of strings.");
      }
    } else if (!o["properties"].error() || !o["additionalProperties"].error() || !o["required"].error()) {
      types.push_back("object");
    } else if (!o["items"].error() || !o["minItems"].error() || !o["maxItems"].error()) {
      types.push_back("array");
    } else if (!o["minLength"].error() || !o["maxLength"].error()) {
      types.push_back("string");
    } else {
      return any_value(kAnyDepth);
    }
    std::vector<Frag> options;
    for (std::string_view t : types) {
      Result<Frag> f = typed(o, t, at, depth);
      if (!f) return std::move(f).error();
      options.push_back(*f);
    }
    return options.size() == 1 ? options[0] : alt(options);
  }

  Result<Frag> typed(simdjson::dom::object o, std::string_view type, const std::string& at, int depth) {
    if (type == "null") return lit("null");
    if (type == "boolean") return alt({lit("true"), lit("false")});
    if (type == "integer") return integer();
    if (type == "number") return number();
    if (type == "string") {
      auto min = bound(o, "minLength", at, kMaxLengthBound, 0);
      if (!min) return std::move(min).error();
      auto max = bound(o, "maxLength", at, kMaxLengthBound, -1);
      if (!max) return std::move(max).error();
      if (*max >= 0 && *max < *min) return bad(at, "'maxLength' is below 'minLength'.");
      return string(*min, *max);
    }
    if (type == "array") {
      auto min = bound(o, "minItems", at, kMaxItemsBound, 0);
      if (!min) return std::move(min).error();
      auto max = bound(o, "maxItems", at, kMaxItemsBound, -1);
      if (!max) return std::move(max).error();
      if (*max >= 0 && *max < *min) return bad(at, "'maxItems' is below 'minItems'.");
      simdjson::dom::element items;
      const bool has_items = !o["items"].get(items);
      if (has_items && items.is_array()) return bad(at + "/items", "tuple 'items' (an array of schemas) is not supported.");
      return array(
          [&]() -> Result<Frag> {
            if (!has_items) return any_value(kAnyDepth - 1);
            return schema(items, at + "/items", depth + 1);
          },
          *min, *max);
    }
    if (type == "object") return object(o, at, depth);
    return bad(at + "/type", "unknown type '" + std::string(type) + "'.");
  }

  Result<Frag> object(simdjson::dom::object o, const std::string& at, int depth) {
    simdjson::dom::object props;
    simdjson::dom::element v;
    const bool has_props = !o["properties"].get(v);
    if (has_props && v.get_object().get(props)) return bad(at + "/properties", "'properties' must be an object.");
    std::set<std::string> required;
    if (!o["required"].get(v)) {
      simdjson::dom::array a;
      if (v.get_array().get(a)) return bad(at + "/required", "'required' must be an array of strings.");
      for (auto e : a) {
        std::string_view name;
        if (e.get_string().get(name)) return bad(at + "/required", "'required' must be an array of strings.");
        simdjson::dom::element p;
        if (!has_props || props[name].get(p))
          return bad(at + "/required", "the required property '" + std::string(name) + "' is not in 'properties'.");
        required.emplace(name);
      }
    }
    simdjson::dom::element extra;
    const bool has_extra = !o["additionalProperties"].get(extra);
    if (has_extra && !extra.is_bool() && !extra.is_object())
      return bad(at + "/additionalProperties", "'additionalProperties' must be a boolean or a schema.");
    const bool no_props = !has_props || props.size() == 0;
    if (no_props) {
      if (has_extra && extra.is_bool() && !extra.get_bool().value_unsafe())
        return seq({lit("{"), ws(), lit("}")});
      if (has_extra && extra.is_object()) {
        Error err = bad(at, "");
        bool failed = false;
        Frag f = members([&] {
          auto value = schema(extra, at + "/additionalProperties", depth + 1);
          if (!value) {
            if (!failed) err = std::move(value).error();
            failed = true;
            return empty();
          }
          return seq({string(0, -1), lit(":"), ws(), *value});
        });
        if (failed) return err;
        return f;
      }
      return any_object(kAnyDepth);
    }
    // Properties in schema order; optional ones may be left out. Junction (i, any) is
    // "before property i, `any` of the earlier ones written": a comma precedes a
    // property exactly when one was written before it.
    const size_t n = props.size();
    std::vector<std::array<int32_t, 2>> j(n + 1);
    for (auto& p : j) p = {state(), state()};
    const Frag open = seq({lit("{"), ws()});
    nfa_.epsilon(open.out, j[0][0]);
    size_t i = 0;
    for (auto field : props) {
      const std::string key = json_quote(field.key);
      auto value = schema(field.value, at + "/properties/" + std::string(field.key), depth + 1);
      if (!value) return std::move(value).error();
      // Both junctions share the value: only the comma before the key differs.
      const Frag first = seq({lit(key), lit(":"), ws()});
      const Frag later = seq({lit(","), ws(), lit(key), lit(":"), ws()});
      nfa_.epsilon(j[i][0], first.in);
      nfa_.epsilon(j[i][1], later.in);
      nfa_.epsilon(first.out, value->in);
      nfa_.epsilon(later.out, value->in);
      nfa_.epsilon(value->out, j[i + 1][1]);
      if (!required.contains(std::string(field.key))) {
        nfa_.epsilon(j[i][0], j[i + 1][0]);
        nfa_.epsilon(j[i][1], j[i + 1][1]);
      }
      ++i;
    }
    const Frag close = seq({ws(), lit("}")});
    nfa_.epsilon(j[n][0], close.in);
    nfa_.epsilon(j[n][1], close.in);
    return Frag{open.in, close.out};
  }

 private:
  ByteNfa& nfa_;
};

void finish(ByteNfa& nfa, Builder& b, Frag top) {
  nfa.start = top.in;
  nfa.accept = b.state();
  nfa.epsilon(top.out, nfa.accept);
}

Result<Frag> parse_and_compile(Builder& b, simdjson::dom::parser& parser, std::string_view json,
                               const std::string& param) {
  simdjson::dom::element root;
  if (parser.parse(json).get(root))
    return make_error(ErrorKind::kInvalidRequest, "Invalid schema: not valid JSON.", param);
  b.param_ = param;
  b.root_ = root;
  b.refs_.clear();
  return b.schema(root, "#", 0);
}

}  // namespace

Result<ByteNfa> json_schema_nfa(std::string_view schema_json, const std::string& param) {
  ByteNfa nfa;
  Builder b(nfa);
  simdjson::dom::parser parser;
  auto top = parse_and_compile(b, parser, schema_json, param);
  if (!top) return std::move(top).error();
  if (b.too_big()) return b.size_error();
  finish(nfa, b, *top);
  return nfa;
}

ByteNfa json_object_nfa() {
  ByteNfa nfa;
  Builder b(nfa);
  const Frag top = b.any_object(kAnyDepth);
  finish(nfa, b, top);
  return nfa;
}

std::string tool_call_prefix(std::string_view name) {
  return "{\"name\":" + json_quote(name) + ",\"arguments\":";
}

Result<ByteNfa> tool_call_nfa(std::span<const ToolSchema> tools, bool allow_text) {
  ByteNfa nfa;
  Builder b(nfa);
  std::vector<Frag> calls;
  for (const ToolSchema& t : tools) {
    Frag args;
    if (t.parameters_json.empty()) {
      args = b.lit("{}");
    } else {
      simdjson::dom::parser parser;
      auto f = parse_and_compile(b, parser, t.parameters_json, t.param);
      if (!f) return std::move(f).error();
      args = *f;
    }
    calls.push_back(b.seq({b.lit(tool_call_prefix(t.name)), args, b.lit("}")}));
    if (b.too_big()) return b.size_error();
  }
  Frag top = b.alt(calls);
  if (allow_text) {
    // Leading whitespace, then a tool call or text whose first byte is not '{'; or
    // nothing at all.
    const int32_t in = b.state(), lead = b.state(), text = b.state(), out = b.state();
    nfa.epsilon(in, lead);
    nfa.epsilon(in, out);
    for (uint8_t c : {' ', '\t', '\n', '\r'}) nfa.range(lead, c, c, lead);
    nfa.epsilon(lead, top.in);
    nfa.epsilon(top.out, out);
    nfa.range(lead, 0x00, 0x08, text);
    nfa.range(lead, 0x0B, 0x0C, text);
    nfa.range(lead, 0x0E, 0x1F, text);
    nfa.range(lead, 0x21, 0x7A, text);
    nfa.range(lead, 0x7C, 0xFF, text);
    nfa.range(text, 0x00, 0xFF, text);
    nfa.epsilon(text, out);
    top = {in, out};
  }
  finish(nfa, b, top);
  return nfa;
}

}  // namespace frugal::engine
