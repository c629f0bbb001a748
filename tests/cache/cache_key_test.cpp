#include "cache/cache_key.h"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "cache/canonical_json.h"
#include "core/embeddings.h"
#include "test_util.h"

using namespace frugal;
using namespace frugal::cache;
using frugal::cache::test::parse_request;

namespace {

const KeyScope kScope{"support", "gpt-4o-mini", "tenant-a", false};

CacheKey key_of(std::string_view body, const KeyScope& scope = kScope) {
  return make_cache_key(parse_request(body), scope);
}

// A request that sets every field the key covers.
const char* kBase = R"({
  "model": "frugal-auto",
  "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "name": "ann", "content": [{"type": "text", "text": "Weather?"},
      {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\", \"unit\": \"c\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "4 degrees"}
  ],
  "tools": [{"type": "function", "function": {"name": "weather", "description": "Get weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}}}}],
  "tool_choice": {"type": "function", "function": {"name": "weather"}},
  "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object", "b": 1, "a": 2}}},
  "temperature": 0, "top_p": 0.9, "presence_penalty": 0.1, "frequency_penalty": 0.2,
  "seed": 42, "n": 1, "logprobs": true, "top_logprobs": 3, "max_tokens": 100, "stop": ["END"]
})";

}  // namespace

TEST_CASE("canonical JSON sorts keys recursively and ignores whitespace and escaping") {
  auto a = canonical_json(R"({"b": [1, {"y": 2, "x": "\u0041"}], "a": 1.0, "c": null})");
  auto b = canonical_json(R"({"a":1,"c":null,"b":[1,{"x":"A","y":2}]})");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(*a == R"({"a":1,"b":[1,{"x":"A","y":2}],"c":null})");
  CHECK(*a == *b);
  CHECK(*canonical_json("[3, 2, 1]") == "[3,2,1]");  // arrays keep their order
  CHECK(*canonical_json("0.5") == "0.5");
  CHECK_FALSE(canonical_json("{").ok());
  CHECK(canonical_json_or_raw("{\"a\":") == "{\"a\":");
}

TEST_CASE("the key ignores JSON key order, whitespace and escaping") {
  const char* reordered = R"({"stop":["END"],"max_tokens":100,"top_logprobs":3,"logprobs":true,"n":1,"seed":42,
    "frequency_penalty":0.2,"presence_penalty":0.1,"top_p":0.9,"temperature":0.0,
    "response_format":{"json_schema":{"schema":{"a":2,"b":1,"type":"object"},"name":"w"},"type":"json_schema"},
    "tool_choice":{"function":{"name":"weather"},"type":"function"},
    "tools":[{"function":{"parameters":{"properties":{"unit":{"enum":["c","f"]},"city":{"type":"string"}},"type":"object"},
      "description":"Get weather","name":"weather"},"type":"function"}],
    "messages":[{"content":"You are terse.","role":"system"},
      {"content":[{"text":"Weather?","type":"text"},{"image_url":{"detail":"low","url":"https://x/y.png"},"type":"image_url"}],"name":"ann","role":"user"},
      {"tool_calls":[{"function":{"arguments":"{\"unit\":\"c\",\"city\":\"Oslo\"}","name":"weather"},"type":"function","id":"call_1"}],"role":"assistant"},
      {"content":"4 degrees","tool_call_id":"call_1","role":"tool"}],
    "model":"frugal-auto"})";
  CHECK(key_of(kBase) == key_of(reordered));
}

TEST_CASE("every field that changes the answer changes the key") {
  const std::string base = kBase;
  auto replace = [&](std::string_view from, std::string_view to) {
    std::string s = base;
    const auto pos = s.find(from);
    REQUIRE_MESSAGE(pos != std::string::npos, from);
    s.replace(pos, from.size(), to);
    return s;
  };
  const std::vector<std::pair<const char*, std::string>> variants = {
      {"system text", replace("You are terse.", "You are verbose.")},
      {"role", replace(R"("role": "system")", R"("role": "developer")")},
      {"name", replace(R"("name": "ann")", R"("name": "bob")")},
      {"text part", replace("Weather?", "Weather!")},
      {"image url", replace("https://x/y.png", "https://x/z.png")},
      {"image detail", replace(R"("detail": "low")", R"("detail": "high")")},
      {"tool call id", replace(R"("id": "call_1")", R"("id": "call_2")")},
      {"tool call name", replace(R"("name": "weather", "arguments")", R"("name": "forecast", "arguments")")},
      {"tool call arguments", replace("Oslo", "Bergen")},
      {"tool_call_id", replace(R"("tool_call_id": "call_1")", R"("tool_call_id": "call_9")")},
      {"tool result", replace("4 degrees", "5 degrees")},
      {"message dropped", replace(R"({"role": "system", "content": "You are terse."},)", "")},
      {"tool name", replace(R"("name": "weather", "description")", R"("name": "weather2", "description")")},
      {"tool description", replace("Get weather", "Get the weather")},
      {"tool parameters", replace(R"(["c", "f"])", R"(["c", "f", "k"])")},
      {"tool_choice", replace(R"("tool_choice": {"type": "function", "function": {"name": "weather"}})", R"("tool_choice": "auto")")},
      {"response_format", replace(R"("a": 2)", R"("a": 3)")},
      {"temperature", replace(R"("temperature": 0)", R"("temperature": 0.7)")},
      {"top_p", replace(R"("top_p": 0.9)", R"("top_p": 0.8)")},
      {"presence_penalty", replace(R"("presence_penalty": 0.1)", R"("presence_penalty": 0.3)")},
      {"frequency_penalty", replace(R"("frequency_penalty": 0.2)", R"("frequency_penalty": 0.4)")},
      {"seed", replace(R"("seed": 42)", R"("seed": 43)")},
      {"n", replace(R"("n": 1)", R"("n": 2)")},
      {"logprobs", replace(R"("logprobs": true)", R"("logprobs": false)")},
      {"top_logprobs", replace(R"("top_logprobs": 3)", R"("top_logprobs": 4)")},
      {"max_tokens", replace(R"("max_tokens": 100)", R"("max_tokens": 101)")},
      {"stop", replace(R"(["END"])", R"(["END", "STOP"])")},
      {"temperature absent", replace(R"("temperature": 0, )", "")},
      {"a field frugal does not model", replace(R"("seed": 42)", R"("seed": 42, "reasoning_effort": "high")")},
  };
  std::set<CacheKey> keys{key_of(base)};
  for (const auto& [what, body] : variants) {
    INFO(what);
    CHECK(keys.insert(key_of(body)).second);
  }
}

TEST_CASE("the key does not depend on streaming, user or the client-facing model alias") {
  const std::string base = kBase;
  std::string streamed = base;
  streamed.insert(1, R"("stream": true, "stream_options": {"include_usage": true}, "user": "u-1", "metadata": {"a": "b"},)");
  CHECK(key_of(base) == key_of(streamed));
  std::string aliased = base;
  aliased.replace(aliased.find("frugal-auto"), 11, "other-alias");
  CHECK(key_of(base) == key_of(aliased));
  // Unmodelled fields count, independent of their key order.
  const std::string m = R"("messages":[{"role":"user","content":"hi"}])";
  CHECK(key_of(R"({"model":"m",)" + m + R"(,"x_a":{"p":1,"q":2},"x_b":3})") ==
        key_of(R"({"x_b":3,"model":"m","x_a":{"q":2,"p":1},)" + m + "}"));
  CHECK(key_of(R"({"model":"m",)" + m + R"(,"x_b":3})") != key_of(R"({"model":"m",)" + m + R"(,"x_b":4})"));
  // String content and a single text part are the same prompt.
  CHECK(key_of(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})") ==
        key_of(R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]})"));
}

TEST_CASE("keys are scoped by tenant unless shared, and by route and upstream model") {
  KeyScope other_tenant = kScope;
  other_tenant.tenant = "tenant-b";
  CHECK(key_of(kBase) != key_of(kBase, other_tenant));

  KeyScope shared_a = kScope, shared_b = other_tenant;
  shared_a.shared = shared_b.shared = true;
  CHECK(key_of(kBase, shared_a) == key_of(kBase, shared_b));
  CHECK(key_of(kBase, shared_a) != key_of(kBase));

  KeyScope route = kScope;
  route.route = "sales";
  CHECK(key_of(kBase) != key_of(kBase, route));
  KeyScope model = kScope;
  model.upstream_model = "gpt-4o";
  CHECK(key_of(kBase) != key_of(kBase, model));
}

TEST_CASE("is_cacheable_by_default: temperature 0 or a seed, and n <= 1") {
  auto req = [](std::string_view extra) {
    return parse_request(std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"}])") +
                         std::string(extra) + "}");
  };
  CHECK(is_cacheable_by_default(req(R"(,"temperature":0)")));
  CHECK(is_cacheable_by_default(req(R"(,"temperature":0.0,"n":1)")));
  CHECK(is_cacheable_by_default(req(R"(,"temperature":1,"seed":7)")));
  CHECK_FALSE(is_cacheable_by_default(req("")));
  CHECK_FALSE(is_cacheable_by_default(req(R"(,"temperature":0.2)")));
  CHECK_FALSE(is_cacheable_by_default(req(R"(,"temperature":0,"n":2)")));
}

TEST_CASE("keys are pinned: a change to the canonical form must be deliberate") {
  // Stored entries are found again after a restart only if this stays the same.
  // Changing the canonical form? Bump kKeyFormat in cache_key.cpp and update this.
  CHECK(key_of(kBase).to_hex() == "0a435ff8aeb3faa11a3cfa73677b4278");
  CHECK(key_of(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0})").to_hex() ==
        "e7fcd8082cf6b270b50d08597d5422a9");
}

namespace {

ChatRequest parse_embeddings(std::string_view body) {
  static std::deque<simdjson::dom::parser> parsers;
  auto r = parse_embeddings_body(parsers.emplace_back(), body);
  if (!r) FAIL("parse failed: " << r.error().message << " in " << body);
  return std::move(r).value();
}

}  // namespace

TEST_CASE("embeddings keys: their own key space, keyed by input, format and dimensions") {
  const CacheKey base = make_cache_key(parse_embeddings(R"({"model":"e","input":["a","b"]})"), kScope);
  // Order, whitespace and `user` do not matter.
  CHECK(make_cache_key(parse_embeddings(R"({ "input": [ "a", "b" ], "model": "x", "user": "u" })"), kScope) == base);
  CHECK(is_cacheable_by_default(parse_embeddings(R"({"model":"e","input":"a"})")));
  std::set<CacheKey> keys{base};
  for (const char* body : {R"({"model":"e","input":["a","c"]})", R"({"model":"e","input":["b","a"]})",
                           R"({"model":"e","input":"a"})", R"({"model":"e","input":[1,2]})",
                           R"({"model":"e","input":["a","b"],"encoding_format":"base64"})",
                           R"({"model":"e","input":["a","b"],"dimensions":8})"}) {
    CAPTURE(body);
    CHECK(keys.insert(make_cache_key(parse_embeddings(body), kScope)).second);
  }
  // A chat request carrying the same fields is never the same key: the key formats differ.
  ChatRequest chat = parse_request(R"({"model":"e","messages":[{"role":"user","content":"a"}]})");
  const std::string chat_material = cache_key_material(chat, kScope);
  const std::string emb_material = cache_key_material(parse_embeddings(R"({"model":"e","input":"a"})"), kScope);
  CHECK(chat_material.find("frugal.cache.key.v2") != std::string::npos);
  CHECK(emb_material.find("frugal.cache.embeddings.v1") != std::string::npos);
  CHECK(emb_material.find("frugal.cache.key.v2") == std::string::npos);
}
