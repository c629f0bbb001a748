// Constrained decoding: the byte automaton and its token masks (against testing every
// token by hand), the JSON Schema compiler (what it accepts and rejects), the tool-call
// reader, and 200 random schemas generated from a seed, each answered by the llama-2
// fixture (random weights, real 32k vocabulary) — every answer is checked by simdjson
// (an independent parser) and by a small validator written here for the schema subset.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include "backends/engine/chat_constraints.h"
#include "backends/engine/grammar.h"
#include "backends/engine/json_schema_grammar.h"
#include "backends/engine/openai_output.h"
#include "backends/engine/service.h"
#include "core/json.h"

using namespace frugal;
using namespace frugal::engine;

namespace {

const std::string kFixture = std::string(FRUGAL_FIXTURES_DIR) + "/llama-2-tiny-random.gguf";

// A small vocabulary: every single byte, some multi-byte pieces, a control token with no
// text and an end-of-sequence token.
class FakeText final : public TokenText {
 public:
  FakeText() {
    for (int b = 0; b < 256; ++b) pieces_.emplace_back(1, static_cast<char>(b));
    for (const char* p : {"{\"", "\":", "\",\"", "true", "false", "null", " {", "ab", "\"}", "}}", "12", "\"a\":",
                          "\"name\":\"f\"", "\xC3\xA9", "\xE2\x82", "[1,", "],", "\\u00", "\\ud8", "\n  "})
      pieces_.emplace_back(p);
    control_ = static_cast<int32_t>(pieces_.size());
    pieces_.emplace_back();
    eos_ = static_cast<int32_t>(pieces_.size());
    pieces_.emplace_back();
  }
  std::string piece(int32_t t) const override { return pieces_[t]; }
  bool is_end_of_generation(int32_t t) const override { return t == eos_; }
  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  int32_t eos() const { return eos_; }
  int32_t control() const { return control_; }
  int32_t find(std::string_view p) const {
    for (size_t i = 256; i < pieces_.size(); ++i)
      if (pieces_[i] == p) return static_cast<int32_t>(i);
    return -1;
  }

 private:
  std::vector<std::string> pieces_;
  int32_t control_ = -1, eos_ = -1;
};

const FakeText& fake() {
  static FakeText t;
  return t;
}
std::shared_ptr<const VocabTrie> fake_vocab() {
  static auto v = VocabTrie::build(fake(), fake().n_vocab());
  return v;
}

ByteNfa schema_nfa(const std::string& schema) {
  auto nfa = json_schema_nfa(schema, "schema");
  REQUIRE_MESSAGE(nfa.ok(), (nfa.ok() ? "" : nfa.error().message));
  return std::move(nfa).value();
}

// Whether the grammar accepts exactly `text`.
bool accepts(ByteNfa nfa, std::string_view text) {
  Grammar g(std::move(nfa), fake_vocab());
  const int32_t s = g.next(g.start(), text);
  return s >= 0 && g.accepting(s);
}
bool accepts(const std::string& schema, std::string_view text) { return accepts(schema_nfa(schema), text); }

Error schema_error(const std::string& schema) {
  auto nfa = json_schema_nfa(schema, "response_format.json_schema.schema");
  REQUIRE_FALSE(nfa.ok());
  return nfa.error();
}

// --- an independent validator for the subset, over simdjson's DOM ---

size_t code_points(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool validate(simdjson::dom::element v, simdjson::dom::element s, simdjson::dom::element root, std::string& why);

bool matches_type(simdjson::dom::element v, std::string_view t, simdjson::dom::element s, simdjson::dom::element root,
                  std::string& why) {
  simdjson::dom::element kw;
  if (t == "null") return v.is_null();
  if (t == "boolean") return v.is_bool();
  if (t == "integer") return v.is_int64() || v.is_uint64();
  if (t == "number") return v.is_number();
  if (t == "string") {
    if (!v.is_string()) return false;
    const size_t n = code_points(v.get_string().value_unsafe());
    int64_t b;
    if (!s["minLength"].get_int64().get(b) && static_cast<int64_t>(n) < b) return (why = "minLength"), false;
    if (!s["maxLength"].get_int64().get(b) && static_cast<int64_t>(n) > b) return (why = "maxLength"), false;
    return true;
  }
  if (t == "array") {
    simdjson::dom::array a;
    if (v.get_array().get(a)) return false;
    int64_t b;
    if (!s["minItems"].get_int64().get(b) && static_cast<int64_t>(a.size()) < b) return (why = "minItems"), false;
    if (!s["maxItems"].get_int64().get(b) && static_cast<int64_t>(a.size()) > b) return (why = "maxItems"), false;
    if (!s["items"].get(kw))
      for (auto e : a)
        if (!validate(e, kw, root, why)) return false;
    return true;
  }
  if (t == "object") {
    simdjson::dom::object o;
    if (v.get_object().get(o)) return false;
    simdjson::dom::object props;
    const bool has_props = !s["properties"].get_object().get(props);
    simdjson::dom::array req;
    if (!s["required"].get_array().get(req))
      for (auto r : req) {
        simdjson::dom::element x;
        if (o[r.get_string().value_unsafe()].get(x)) return (why = "required"), false;
      }
    std::set<std::string_view> seen;
    for (auto f : o) {
      if (!seen.insert(f.key).second) return (why = "duplicate key"), false;
      simdjson::dom::element ps;
      if (has_props && !props[f.key].get(ps)) {
        if (!validate(f.value, ps, root, why)) return false;
      } else if (!s["additionalProperties"].get(kw)) {
        if (kw.is_bool() && !kw.get_bool().value_unsafe()) return (why = "additionalProperties"), false;
        if (kw.is_object() && !validate(f.value, kw, root, why)) return false;
      }
    }
    return true;
  }
  return false;
}

bool validate(simdjson::dom::element v, simdjson::dom::element s, simdjson::dom::element root, std::string& why) {
  if (s.is_bool()) return s.get_bool().value_unsafe();
  simdjson::dom::element kw;
  if (!s["$ref"].get(kw)) {
    simdjson::dom::element target;
    REQUIRE(root.at_pointer(std::string_view(kw.get_string().value_unsafe()).substr(1)).get(target) ==
            simdjson::SUCCESS);
    return validate(v, target, root, why);
  }
  if (!s["anyOf"].get(kw)) {
    for (auto alt : simdjson::dom::array(kw.get_array().value_unsafe()))
      if (validate(v, alt, root, why)) return true;
    return (why = "anyOf"), false;
  }
  if (!s["const"].get(kw)) return simdjson::minify(v) == simdjson::minify(kw) || ((why = "const"), false);
  if (!s["enum"].get(kw)) {
    for (auto e : simdjson::dom::array(kw.get_array().value_unsafe()))
      if (simdjson::minify(v) == simdjson::minify(e)) return true;
    return (why = "enum"), false;
  }
  if (!s["type"].get(kw)) {
    std::string_view t;
    if (!kw.get_string().get(t)) return matches_type(v, t, s, root, why) || (why.empty() && ((why = "type"), false));
    for (auto e : simdjson::dom::array(kw.get_array().value_unsafe())) {
      std::string inner;
      if (matches_type(v, e.get_string().value_unsafe(), s, root, inner)) return true;
    }
    return (why = "type"), false;
  }
  return true;
}

// --- a seeded generator of schemas in the subset ---

class SchemaGen {
 public:
  explicit SchemaGen(uint64_t seed) : rng_(seed) {}

  // A root object schema, sometimes with $defs referenced from its properties.
  std::string root() {
    defs_.clear();
    const bool with_defs = pick(3) == 0;
    if (with_defs) {
      defs_.push_back(value(2));
      defs_.push_back(value(2));
    }
    std::string props = object(0, /*strict=*/pick(2) == 0);
    if (!with_defs) return props;
    props.pop_back();  // add $defs to the object
    props += R"(,"$defs":{"d0":)" + defs_[0] + R"(,"d1":)" + defs_[1] + "}}";
    return props;
  }

 private:
  int pick(int n) { return static_cast<int>(rng_.next() % static_cast<uint64_t>(n)); }

  std::string object(int depth, bool strict) {
    static const char* kNames[] = {"id", "name", "x", "tags", "naïve", "q\"uote", "emoji😀", "a_b", "n", "ok"};
    const int n = 1 + pick(3);
    std::vector<std::string> names;
    while (static_cast<int>(names.size()) < n) {
      std::string k = kNames[pick(10)];
      if (std::find(names.begin(), names.end(), k) == names.end()) names.push_back(k);
    }
    std::string props, req;
    for (const std::string& k : names) {
      if (!props.empty()) props += ',';
      props += json_quote(k) + ":" + value(depth + 1);
      if (strict || pick(2) == 0) req += (req.empty() ? "" : ",") + json_quote(k);
    }
    std::string out = R"({"type":"object","properties":{)" + props + R"(},"required":[)" + req + "]";
    if (strict || pick(2) == 0) out += R"(,"additionalProperties":false)";
    return out + "}";
  }

  std::string value(int depth) {
    const int kinds = depth >= 2 ? 11 : 14;
    switch (pick(kinds + (defs_.empty() ? 0 : 2))) {
      case 0: return R"({"type":"string"})";
      case 1: return R"({"type":"integer"})";
      case 2: return R"({"type":"number","description":"any number"})";
      case 3: return R"({"type":"boolean"})";
      case 4: return R"({"type":"null"})";
      case 5: return R"({"type":"string","enum":["red","green","bl\"ue","ünï"]})";
      case 6: return R"({"const":42})";
      case 7: return R"({"type":["string","null"]})";
      case 8: return R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":3}]})";
      case 9: return R"({"type":"string","minLength":1,"maxLength":)" + std::to_string(1 + pick(6)) + "}";
      case 10: return R"({"enum":[1,"two",true,null,{"k":[1]}]})";
      case 11: return object(depth, pick(2) == 0);
      case 12: return R"({"type":"array","items":)" + value(depth + 1) + R"(,"minItems":)" + std::to_string(pick(2)) +
                      R"(,"maxItems":)" + std::to_string(2 + pick(2)) + "}";
      case 13: return R"({"type":"object","additionalProperties":{"type":"integer"}})";
      default: return R"({"$ref":"#/$defs/d)" + std::to_string(pick(2)) + R"("})";
    }
  }

  Rng rng_;
  std::vector<std::string> defs_;
};

std::shared_ptr<EngineService> service() {
  static std::shared_ptr<EngineService> s = [] {
    ServiceConfig cfg;
    cfg.model_path = kFixture;
    cfg.threads = 2;
    cfg.kv_memory_bytes = 32u << 20;
    cfg.context_length = 1024;
    cfg.max_batch = 32;
    auto r = EngineService::load(cfg);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return std::move(r).value();
  }();
  return s;
}

}  // namespace

TEST_CASE("grammar masks from the trie equal testing every token by hand") {
  const auto vocab = fake_vocab();
  Grammar g(schema_nfa(R"({"type":"object","properties":{"a":{"type":"array","items":{"type":"integer"}},)"
                       R"("s":{"type":"string"},"b":{"type":"boolean"}},"required":["a"]})"),
            vocab);
  // Walk a valid document; at every prefix compare steps() with a brute-force scan.
  const std::string doc = "{\"a\":[1,\n  23],\"s\":\"h\xC3\xA9\\u00e9\\n\",\"b\":true}";
  int32_t s = g.start();
  for (size_t i = 0; i <= doc.size(); ++i) {
    std::map<int32_t, int32_t> want;
    for (int32_t t = 0; t < vocab->n_vocab(); ++t) {
      if (vocab->piece(t).empty()) continue;
      const int32_t ns = g.next(s, vocab->piece(t));
      if (ns >= 0) want[t] = ns;
    }
    std::map<int32_t, int32_t> got;
    for (const Grammar::Step& st : g.steps(s)) got[st.token] = st.next;
    CAPTURE(doc.substr(0, i));
    CHECK(got == want);
    CHECK(&g.steps(s) == &g.steps(s));  // cached per state
    if (i < doc.size()) {
      s = g.next(s, static_cast<uint8_t>(doc[i]));
      REQUIRE(s >= 0);
    }
  }
  CHECK(g.accepting(s));
  CHECK(g.terminal(s));  // after the closing brace nothing may follow
  CHECK(g.steps(s).empty());
}

TEST_CASE("the matcher allows end-of-sequence only when complete and never control tokens") {
  auto g = std::make_shared<Grammar>(schema_nfa(R"({"type":"integer"})"), fake_vocab());
  GrammarMatcher m(g);
  const int32_t eos = fake().eos();
  CHECK_FALSE(m.allows(eos));
  CHECK_FALSE(m.allows(fake().control()));
  CHECK_FALSE(m.allows('a'));
  CHECK(m.allows('7'));
  REQUIRE(m.accept('7'));
  CHECK(m.accepting());
  CHECK_FALSE(m.complete());  // more digits may follow
  CHECK(m.allows(eos));
  std::vector<float> logits(static_cast<size_t>(fake().n_vocab()), 0.0f);
  m.mask(logits);
  CHECK(std::isfinite(logits[eos]));
  CHECK(std::isfinite(logits['0']));
  CHECK_FALSE(std::isfinite(logits['a']));
  CHECK_FALSE(std::isfinite(logits[fake().control()]));
}

TEST_CASE("the token budget forces the value closed before max_tokens") {
  auto g = std::make_shared<Grammar>(schema_nfa(R"({"type":"object","properties":{"s":{"type":"string"}},)"
                                                R"("required":["s"],"additionalProperties":false})"),
                                     fake_vocab());
  // Shortest document: {"s":""} = 8 bytes; one more token for the bound's end-of-sequence.
  CHECK(g->min_bytes() == 8);
  CHECK(g->tokens_to_finish(g->start()) == 9);
  GrammarMatcher m(g);
  const int32_t quote_brace = fake().find("\"}"), quote_comma_quote = fake().find("\",\"");
  auto allowed_by_mask = [&] {
    std::vector<float> logits(static_cast<size_t>(fake().n_vocab()), 0.0f);
    m.mask(logits);
    std::vector<int32_t> out;
    for (int32_t t = 0; t < fake().n_vocab(); ++t)
      if (std::isfinite(logits[t])) out.push_back(t);
    return out;
  };
  for (char c : std::string("{\"s\":\"abc")) REQUIRE(m.accept(static_cast<uint8_t>(c)));
  // Inside the string with two tokens left after the next: a token that closes the
  // string (then '}' and maybe an end-of-sequence) or '"}' (complete); one that only
  // adds characters would leave too little.
  m.set_budget(2);
  CHECK(m.allows('"'));
  CHECK(m.allows(quote_brace));
  CHECK_FALSE(m.allows('x'));
  const auto two = allowed_by_mask();
  // ('{"' too: a '{' in the string, then the closing quote.)
  CHECK(two == std::vector<int32_t>{'"', fake().find("{\""), quote_brace});
  m.set_budget(1);
  CHECK_FALSE(m.allows('"'));
  CHECK(allowed_by_mask() == std::vector<int32_t>{quote_brace});
  // The sampler honours the filter, greedy and sampled, and reports raw logprobs.
  std::vector<float> prefer_x(static_cast<size_t>(fake().n_vocab()), 0.0f);
  prefer_x['x'] = 10.0f;
  m.set_budget(2);
  Sampler greedy({.temperature = 0.0f}, 1, 0, {});
  const SampledToken t = greedy.sample(prefer_x, m);
  CHECK(t.token == '"');
  CHECK(t.logprob < -5.0f);  // the raw distribution put almost everything on 'x'
  Sampler warm({.temperature = 1.0f}, 7, 0, {});
  for (int i = 0; i < 20; ++i) CHECK(m.allows(warm.sample(prefer_x, m).token));
  // Where nothing fits the budget, the mask keeps the quickest way to the end: after
  // {"s": with no token to spare, only '","' (a one-character string, then '}').
  GrammarMatcher early(g);
  for (char c : std::string("{\"s\":")) REQUIRE(early.accept(static_cast<uint8_t>(c)));
  early.set_budget(0);
  std::vector<float> logits(static_cast<size_t>(fake().n_vocab()), 0.0f);
  early.mask(logits);
  std::vector<int32_t> left;
  for (int32_t i = 0; i < fake().n_vocab(); ++i)
    if (std::isfinite(logits[i])) left.push_back(i);
  CHECK(left == std::vector<int32_t>{quote_comma_quote});
}

TEST_CASE("json schema subset: what the compiled grammar accepts") {
  const std::string obj = R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"enum":["x","y"]}},)"
                          R"("required":["a"],"additionalProperties":false})";
  CHECK(accepts(obj, R"({"a":1})"));
  CHECK(accepts(obj, "{ \"a\": -12, \"b\": \"y\"\n}"));
  CHECK(accepts(obj, "{\n    \"a\":0,\n    \"b\":\"x\"}"));
  CHECK_FALSE(accepts(obj, R"({"b":"x"})"));          // a is required
  CHECK_FALSE(accepts(obj, R"({"b":"x","a":1})"));    // properties come in schema order
  CHECK_FALSE(accepts(obj, R"({"a":1,"c":2})"));
  CHECK_FALSE(accepts(obj, R"({"a":01})"));
  CHECK_FALSE(accepts(obj, R"({"a":1.5})"));
  CHECK_FALSE(accepts(obj, R"({"a":1,})"));
  CHECK_FALSE(accepts(obj, R"({"a":1,"b":"z"})"));
  CHECK_FALSE(accepts(obj, R"( {"a":1})"));            // no whitespace around the top value
  CHECK_FALSE(accepts(obj, R"({"a":1} )"));
  const std::string opt = R"({"type":"object","properties":{"a":{"type":"null"},"b":{"type":"boolean"},)"
                          R"("c":{"type":"number"}}})";
  for (const char* ok : {"{}", R"({"b":true})", R"({"a":null,"c":1e5})", R"({"c":-0.25E-3})", R"({"a":null,"b":false,"c":0})"})
    CHECK_MESSAGE(accepts(opt, ok), ok);
  for (const char* bad : {R"({,"b":true})", R"({"a":null,,"b":true})", R"({"c":1e})", R"({"c":.5})", R"({"c":1e123})"})
    CHECK_FALSE_MESSAGE(accepts(opt, bad), bad);
  const std::string str = R"({"type":"string","minLength":2,"maxLength":3})";
  CHECK(accepts(str, "\"ab\""));
  CHECK(accepts(str, "\"\xC3\xA9\\n\\u00e9\""));  // three characters: é, \n, \u00e9
  CHECK_FALSE(accepts(str, "\"a\""));
  CHECK_FALSE(accepts(str, "\"abcd\""));
  CHECK_FALSE(accepts(str, "\"\\ud800x\""));  // a lone surrogate escape
  CHECK_FALSE(accepts(str, "\"a\x01\""));     // a control character
  CHECK_FALSE(accepts(str, "\"\xC3\x28\""));  // broken UTF-8
  CHECK_FALSE(accepts(str, "\"\xED\xA0\x80\""));  // an encoded surrogate
  const std::string arr = R"({"type":"array","items":{"type":"boolean"},"minItems":1,"maxItems":2})";
  CHECK(accepts(arr, "[true]"));
  CHECK(accepts(arr, "[ true, false ]"));
  CHECK_FALSE(accepts(arr, "[]"));
  CHECK_FALSE(accepts(arr, "[true,true,true]"));
  CHECK(accepts(R"({"type":"array"})", R"([1,"a",{"k":[null]}])"));
  const std::string any = R"({"anyOf":[{"type":"integer"},{"$ref":"#/$defs/p"}],"$defs":{"p":{"type":"object",)"
                          R"("properties":{"x":{"type":["string","null"]}},"required":["x"]}}})";
  CHECK(accepts(any, "7"));
  CHECK(accepts(any, R"({"x":null})"));
  CHECK(accepts(any, R"({"x":"s"})"));
  CHECK_FALSE(accepts(any, R"({"x":1})"));
  CHECK(accepts(R"({"const":{"k":[1,"two"]}})", R"({"k":[1,"two"]})"));
  CHECK(accepts(R"({"type":"object","properties":{"q\"k":{"type":"integer"}},"required":["q\"k"]})", R"({"q\"k":1})"));
  CHECK(accepts(R"({"type":"object","additionalProperties":{"type":"integer"}})", R"({"any":1,"other":2})"));
  CHECK_FALSE(accepts(R"({"type":"object","additionalProperties":{"type":"integer"}})", R"({"any":"1"})"));
  CHECK(accepts(R"({"type":"object","additionalProperties":false})", "{}"));
  // json_object: any object, nested up to kAnyDepth containers.
  CHECK(accepts(json_object_nfa(), R"({"a":[1,{"b":null}],"c":"d"})"));
  CHECK_FALSE(accepts(json_object_nfa(), "[1]"));
  CHECK_FALSE(accepts(json_object_nfa(), R"({"a":[[[[[1]]]]]})"));
}

TEST_CASE("json schema subset: unsupported keywords are errors naming the keyword and place") {
  struct Case {
    std::string schema, needle;
  };
  const std::vector<Case> cases = {
      {R"({"type":"string","pattern":"^a"})", "'pattern'"},
      {R"({"type":"object","properties":{"n":{"type":"integer","minimum":3}}})", "#/properties/n"},
      {R"({"oneOf":[{"type":"string"}]})", "'oneOf'"},
      {R"({"type":"object","properties":{"a":{"$ref":"#"}}})", "recursive"},
      {R"({"$ref":"#/$defs/missing"})", "does not resolve"},
      {R"({"$ref":"http://example.com/s.json"})", "local references"},
      {R"({"type":"object","required":["zz"],"properties":{"a":{}}})", "'zz'"},
      {R"({"type":"array","maxItems":100000})", "maxItems"},
      {R"({"type":"tuple"})", "unknown type"},
      {R"({"type":"array","items":[{"type":"string"}]})", "tuple"},
      {R"(false)", "accepts nothing"},
      {R"({"type":"string","anyOf":[{}]})", "anyOf"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.schema);
    const Error e = schema_error(c.schema);
    CHECK(e.kind == ErrorKind::kInvalidRequest);
    CHECK(e.http_status() == 400);
    CHECK(e.param == "response_format.json_schema.schema");
    CHECK(e.code == "unsupported_parameter");
    CHECK_MESSAGE(e.message.find(c.needle) != std::string::npos, e.message);
  }
  CHECK(schema_error("{not json").message.find("not valid JSON") != std::string::npos);
  // A schema whose automaton would be too large.
  std::string big = R"({"type":"string","maxLength":2000})";
  for (int i = 0; i < 8; ++i) big = R"({"type":"array","maxItems":128,"items":)" + big + "}";
  CHECK(schema_error(big).message.find("too large") != std::string::npos);
}

TEST_CASE("tool-call grammar: a call of a listed tool, or text under auto") {
  const std::vector<ToolSchema> tools = {
      {"get_weather", R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})", "p0"},
      {"noop", "", "p1"}};
  auto required = tool_call_nfa(tools, false);
  REQUIRE(required.ok());
  CHECK(accepts(*required, R"({"name":"get_weather","arguments":{"city":"Paris"}})"));
  CHECK(accepts(*required, R"({"name":"noop","arguments":{}})"));
  CHECK_FALSE(accepts(*required, R"({"name":"noop","arguments":{"x":1}})"));
  CHECK_FALSE(accepts(*required, R"({"name":"other","arguments":{}})"));
  CHECK_FALSE(accepts(*required, "Sure"));
  auto automatic = tool_call_nfa(tools, true);
  REQUIRE(automatic.ok());
  CHECK(accepts(*automatic, "Sure, here you go {not a call}"));
  CHECK(accepts(*automatic, ""));
  CHECK(accepts(*automatic, "\n " R"({"name":"noop","arguments":{}})"));
  CHECK_FALSE(accepts(*automatic, R"( {"text": 1})"));  // a '{' commits to a call
}

TEST_CASE("tool-call splitter streams a call's name and arguments, or text") {
  ToolCallSplitter call(true);
  std::string args;
  auto d = call.feed(" {\"name\":\"get_");
  CHECK(d.text.empty());
  CHECK_FALSE(d.call_started);
  d = call.feed("weather\",\"arguments\":{\"ci");
  CHECK(d.call_started);
  CHECK(d.name == "get_weather");
  args += d.arguments;
  d = call.feed("ty\":\"Paris\"}}");
  args += d.arguments;
  d = call.finish(true);
  args += d.arguments;
  CHECK(args == R"({"city":"Paris"})");
  CHECK(call.is_call());

  // A character split over two feeds is never cut in two.
  ToolCallSplitter utf8(false);
  std::string u = utf8.feed("{\"name\":\"f\",\"arguments\":{\"a\":\"\xE3").arguments;
  CHECK(u == "{\"a\":\"");
  u += utf8.feed("\x83\x8B\"}").arguments;
  CHECK(u == "{\"a\":\"\xE3\x83\x8B\"");
  u += utf8.feed("}").arguments;
  u += utf8.finish(true).arguments;
  CHECK(u == "{\"a\":\"\xE3\x83\x8B\"}");

  ToolCallSplitter text(true);
  d = text.feed("\n");
  CHECK(d.text.empty());
  d = text.feed("Hello {x}");
  CHECK(d.text == "\nHello {x}");
  CHECK_FALSE(text.is_call());

  ToolCallSplitter cut(false);
  args = cut.feed("{\"name\":\"f\",\"arguments\":{\"a\":").arguments;
  args += cut.finish(false).arguments;  // max_tokens cut it: the partial arguments are kept as they are
  CHECK(cut.is_call());
  CHECK(args == "{\"a\":");
}

TEST_CASE("chat messages carry tool calls and tool results as text") {
  simdjson::dom::parser parser;
  auto req = parse_chat_body(parser, R"({"model":"m","messages":[{"role":"system","content":"Be brief."},)"
                                     R"({"role":"user","content":"Weather in Paris?"},)"
                                     R"({"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",)"
                                     R"("function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},)"
                                     R"({"role":"tool","tool_call_id":"c1","content":"21C"},)"
                                     R"({"role":"user","content":"Thanks"}],)"
                                     R"("tools":[{"type":"function","function":{"name":"get_weather",)"
                                     R"("description":"Current weather","parameters":{"type":"object"}}}]})");
  REQUIRE(req.ok());
  auto c = output_constraint(*req, fake_vocab());
  REQUIRE(c.ok());
  CHECK(c->tools == ToolOutput::kAuto);
  CHECK(c->tools_prompt.find(R"({"name":"get_weather","description":"Current weather","parameters":{"type":"object"}})") !=
        std::string::npos);
  auto m = chat_messages(*req, c->tools_prompt);
  REQUIRE(m.ok());
  REQUIRE(m->size() == 4);  // system, user, assistant, user (tool result + user merged)
  CHECK((*m)[0].content.find("Be brief.\n\nYou can call functions.") == 0);
  CHECK((*m)[2].content == R"({"name":"get_weather","arguments":{"city":"Paris"}})");
  CHECK((*m)[3].content == "Result of get_weather: 21C\n\nThanks");
}

// Shortest documents: from the start state, one byte at a time along the shortest way
// to the end (ties broken by `rng`), as generation under a tight budget would go.
std::string shortest_document(Grammar& g, Rng& rng) {
  std::string doc;
  int32_t s = g.start();
  while (!g.accepting(s)) {
    int32_t best = 1 << 30;
    std::vector<uint8_t> ties;
    for (int b = 0; b < 256; ++b) {
      const int32_t ns = g.next(s, static_cast<uint8_t>(b));
      if (ns < 0) continue;
      const int32_t need = g.tokens_to_finish(ns);
      if (need < best) ties.clear();
      if (need <= best) {
        best = need;
        ties.push_back(static_cast<uint8_t>(b));
      }
    }
    REQUIRE_FALSE(ties.empty());
    const uint8_t b = ties[rng.next() % ties.size()];
    doc += static_cast<char>(b);
    s = g.next(s, b);
  }
  return doc;
}

TEST_CASE("200 random schemas: every answer of the fixture parses and validates") {
  // Seeded random schemas. For each: the grammar's shortest document, and an answer
  // from the random-weight fixture (greedy, each prompt different), all submitted at
  // once so the engine batches them. max_tokens is the schema's shortest completion
  // (in tokens, at worst one per byte, plus end-of-sequence) + kSlack, so the budget
  // guarantee applies: every answer must end with `stop` — no `length` outcome is
  // excluded. Every text is parsed by simdjson and checked by validate() above.
  //
  // Generation costs a forward pass over the 32k vocabulary per token (about 20 tokens
  // an answer): optimised builds generate for all 200 schemas, Debug and sanitizer
  // builds for every 20th (FRUGAL_GRAMMAR_ANSWERS=200 asks for all of them anywhere).
  constexpr int kSchemas = 200;
  constexpr int kSlack = 4;
#ifdef NDEBUG
  int answers = kSchemas;
#else
  int answers = kSchemas / 20;
#endif
  if (const char* env = std::getenv("FRUGAL_GRAMMAR_ANSWERS")) answers = std::clamp(std::atoi(env), 0, kSchemas);
  const int every = answers > 0 ? kSchemas / answers : kSchemas + 1;
  auto svc = service();
  SchemaGen gen(20261206);
  Rng tie_break(7);
  std::vector<std::string> schemas;
  std::vector<int> asked;  // schema index of each answer
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> texts(kSchemas);
  std::vector<FinishReason> reasons(kSchemas, FinishReason::kError);
  int done = 0;
  int64_t tokens = 0;
  std::vector<Engine::Handle> handles;
  for (int i = 0; i < kSchemas; ++i) {
    schemas.push_back(gen.root());
    CAPTURE(schemas.back());
    auto nfa = json_schema_nfa(schemas.back(), "schema");
    REQUIRE_MESSAGE(nfa.ok(), (nfa.ok() ? "" : nfa.error().message));
    Grammar probe(std::move(nfa).value(), svc->vocab());
    {
      const std::string doc = shortest_document(probe, tie_break);
      CAPTURE(doc);
      simdjson::dom::parser vp, sp;
      simdjson::dom::element v, sc;
      REQUIRE(sp.parse(schemas.back()).get(sc) == simdjson::SUCCESS);
      REQUIRE(vp.parse(doc).get(v) == simdjson::SUCCESS);
      std::string why;
      CHECK_MESSAGE(validate(v, sc, sc, why), why);
    }
    if (i % every != 0) continue;
    asked.push_back(i);
    const int32_t max_tokens = probe.tokens_to_finish(probe.start()) + kSlack;
    const std::string body = R"({"model":"m","messages":[{"role":"user","content":"Answer in JSON )" +
                             std::to_string(i) + R"("}],"temperature":0,"max_tokens":)" +
                             std::to_string(max_tokens) +
                             R"(,"response_format":{"type":"json_schema","json_schema":{"name":"s","strict":true,)"
                             R"("schema":)" + schemas.back() + "}}}";
    simdjson::dom::parser parser;
    auto req = parse_chat_body(parser, body);
    REQUIRE_MESSAGE(req.ok(), body);
    auto prep = svc->prepare(*req);
    REQUIRE_MESSAGE(prep.ok(), (prep.ok() ? "" : prep.error().message));
    REQUIRE(prep->gen.grammar != nullptr);
    handles.push_back(svc->engine().submit(std::move(prep->gen), [&, i](const GenerateEvent& ev) {
      std::lock_guard lock(mu);
      if (!ev.is_final) {
        texts[i] += ev.token.text;
        return;
      }
      texts[i] += ev.final.text;
      reasons[i] = ev.final.reason;
      tokens += ev.final.usage.completion_tokens;
      ++done;
      cv.notify_all();
    }));
  }
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(600), [&] { return done == static_cast<int>(asked.size()); }));
  }
  int valid = 0;
  for (int i : asked) {
    CAPTURE(i);
    CAPTURE(schemas[i]);
    CAPTURE(texts[i]);
    CHECK(reasons[i] == FinishReason::kStop);
    simdjson::dom::parser vp, sp;
    simdjson::dom::element v, s;
    REQUIRE(sp.parse(schemas[i]).get(s) == simdjson::SUCCESS);
    if (vp.parse(texts[i]).get(v) != simdjson::SUCCESS) {
      FAIL_CHECK("the answer does not parse");
      continue;
    }
    std::string why;
    const bool ok = validate(v, s, s, why);
    CHECK_MESSAGE(ok, why);
    valid += ok;
  }
  CHECK(valid == static_cast<int>(asked.size()));
  MESSAGE("answers valid: " << valid << "/" << asked.size() << " (" << tokens << " tokens)");
}

TEST_CASE("a grammar that accepts nothing allows no token and the sampler says so") {
  ByteNfa nfa;
  nfa.start = nfa.add_state();
  const int32_t dead_end = nfa.add_state();
  nfa.range(nfa.start, 'a', 'a', dead_end);
  nfa.accept = nfa.add_state();  // unreachable
  auto g = std::make_shared<Grammar>(std::move(nfa), fake_vocab());
  CHECK_FALSE(g->accepting(g->start()));
  CHECK(g->steps(g->start()).empty());
  GrammarMatcher m(g);
  CHECK_FALSE(m.allows('a'));
  CHECK_FALSE(m.allows(fake().eos()));
  Sampler s({.temperature = 0.0f}, 1, 0, {});
  std::vector<float> logits(static_cast<size_t>(fake().n_vocab()), 0.0f);
  CHECK(s.sample(logits, m).token == -1);
}
