// tests backends/dialect/openai_to_anthropic.cpp
#include "backends/dialect/openai_to_anthropic.h"

#include <doctest/doctest.h>

#include "tests/dialect/json_test_util.h"

namespace frugal {
namespace {

using test::canon;

Result<std::string> translate(std::string_view openai, AnthropicDefaults d = {}) {
  simdjson::dom::parser parser;
  auto req = parse_chat_body(parser, openai);
  REQUIRE(req.ok());
  return openai_to_anthropic_request(*req, "claude-sonnet-4-5", d);
}

TEST_CASE("system and developer messages hoist to system blocks, same-role turns merge") {
  auto r = translate(R"({"model": "gpt-4o", "messages": [
    {"role": "system", "content": "Be terse."},
    {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
    {"role": "user", "content": "Hi"},
    {"role": "user", "content": [{"type": "text", "text": "there"}]},
    {"role": "assistant", "content": "Bonjour"},
    {"role": "user", "content": "Count"}],
    "stop": "END", "temperature": 0.3, "top_p": 0.8, "user": "u-1", "stream": true,
    "stream_options": {"include_usage": true}, "seed": 7})");
  REQUIRE(r.ok());
  CHECK(canon(*r) == canon(R"({"model": "claude-sonnet-4-5", "max_tokens": 4096,
    "system": [{"type": "text", "text": "Be terse."}, {"type": "text", "text": "Answer in French."}],
    "messages": [
      {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
      {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]},
      {"role": "user", "content": [{"type": "text", "text": "Count"}]}],
    "stop_sequences": ["END"], "temperature": 0.3, "top_p": 0.8,
    "metadata": {"user_id": "u-1"}, "stream": true})"));
}

TEST_CASE("max_tokens: the client's, else the route default") {
  auto r = translate(R"({"model": "x", "max_completion_tokens": 77, "messages": [{"role": "user", "content": "q"}]})");
  REQUIRE(r.ok());
  CHECK(r->find(R"("max_tokens":77)") != std::string::npos);
  AnthropicDefaults d;
  d.max_tokens = 8192;
  auto def = translate(R"({"model": "x", "messages": [{"role": "user", "content": "q"}]})", d);
  REQUIRE(def.ok());
  CHECK(def->find(R"("max_tokens":8192)") != std::string::npos);
}

TEST_CASE("tool calls and tool results") {
  auto r = translate(R"({"model": "gpt-4o", "messages": [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
      {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
    {"role": "user", "content": "Which is warmer?"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
      {"type": "function", "function": {"name": "noop"}}],
    "tool_choice": "required", "parallel_tool_calls": false})");
  REQUIRE(r.ok());
  CHECK(canon(*r) == canon(R"({"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": [
    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
    {"role": "assistant", "content": [
      {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
      {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}}]},
    {"role": "user", "content": [
      {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
      {"type": "tool_result", "tool_use_id": "call_2", "content": "21C"},
      {"type": "text", "text": "Which is warmer?"}]}],
    "tools": [
      {"name": "get_weather", "description": "Weather",
       "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
      {"name": "noop", "input_schema": {"type": "object", "properties": {}}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": true}})"));
}

TEST_CASE("tool_choice: named function → tool, auto/none kept, no tools → 400") {
  const auto with = [](const char* choice) {
    return std::string(R"({"model": "x", "messages": [{"role": "user", "content": "q"}],
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "tool_choice": )") +
           choice + "}";
  };
  auto named = translate(with(R"({"type": "function", "function": {"name": "f"}})"));
  REQUIRE(named.ok());
  CHECK(named->find(R"("tool_choice":{"type":"tool","name":"f"})") != std::string::npos);
  auto none = translate(with(R"("none")"));
  REQUIRE(none.ok());
  CHECK(none->find(R"("tool_choice":{"type":"none"})") != std::string::npos);
  auto no_tools = translate(R"({"model": "x", "messages": [{"role": "user", "content": "q"}], "tool_choice": "required"})");
  REQUIRE_FALSE(no_tools.ok());
  CHECK(no_tools.error().param == "tool_choice");
}

TEST_CASE("images: data: URI → base64 source, https → url source, others 400") {
  auto r = translate(R"({"model": "x", "messages": [{"role": "user", "content": [
    {"type": "text", "text": "Compare"},
    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "high"}},
    {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}}]}]})");
  REQUIRE(r.ok());
  CHECK(canon(*r) == canon(R"({"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": [
    {"role": "user", "content": [{"type": "text", "text": "Compare"},
      {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
      {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}}]}]})"));

  auto ftp = translate(R"({"model": "x", "messages": [{"role": "user", "content": [
    {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]})");
  REQUIRE_FALSE(ftp.ok());
  CHECK(ftp.error().param == "messages[0].content[0].image_url");
  auto audio = translate(R"({"model": "x", "messages": [{"role": "user", "content": [
    {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}]})");
  REQUIRE_FALSE(audio.ok());
  CHECK(audio.error().param == "messages[0].content[0].type");
}

TEST_CASE("cache_control on parts and on messages reaches Anthropic") {
  auto r = translate(R"({"model": "x", "messages": [
    {"role": "system", "content": [{"type": "text", "text": "Long policy", "cache_control": {"type": "ephemeral"}}]},
    {"role": "user", "content": [{"type": "text", "text": "doc"}, {"type": "text", "text": "q",
      "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
    {"role": "assistant", "content": "a", "cache_control": {"type": "ephemeral"}}]})");
  REQUIRE(r.ok());
  CHECK(canon(*r) == canon(R"({"model": "claude-sonnet-4-5", "max_tokens": 4096,
    "system": [{"type": "text", "text": "Long policy", "cache_control": {"type": "ephemeral"}}],
    "messages": [
      {"role": "user", "content": [{"type": "text", "text": "doc"},
        {"type": "text", "text": "q", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
      {"role": "assistant", "content": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}]}]})"));
}

TEST_CASE("what Anthropic cannot express is a 400 naming the parameter") {
  struct Case {
    const char* extra;
    const char* param;
  };
  const Case cases[] = {
      {R"("n": 2)", "n"},
      {R"("logprobs": true)", "logprobs"},
      {R"("top_logprobs": 3)", "top_logprobs"},
      {R"("presence_penalty": 0.5)", "presence_penalty"},
      {R"("frequency_penalty": -1)", "frequency_penalty"},
      {R"("temperature": 1.5)", "temperature"},
      {R"("response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}})",
       "response_format.json_schema.schema"},
      {R"("response_format": {"type": "xml"})", "response_format.type"},
      {R"("logit_bias": {"50256": -100})", "logit_bias"},
      {R"("reasoning_effort": "high")", "reasoning_effort"},
      {R"("modalities": ["text", "audio"])", "modalities"},
      {R"("made_up": 1)", "made_up"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.extra);
    auto r = translate(std::string(R"({"model": "x", "messages": [{"role": "user", "content": "q"}], )") + c.extra + "}");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::kInvalidRequest);
    CHECK(r.error().param == c.param);
    CHECK(r.error().message.find(c.param) != std::string::npos);
  }
  // Neutral values of the same parameters are fine.
  auto neutral = translate(R"({"model": "x", "messages": [{"role": "user", "content": "q"}], "n": 1,
    "logprobs": false, "presence_penalty": 0, "frequency_penalty": 0, "response_format": {"type": "text"},
    "logit_bias": {}, "modalities": ["text"], "store": false, "top_k": 5})");
  REQUIRE(neutral.ok());
  CHECK(neutral->find(R"("top_k":5)") != std::string::npos);
}

TEST_CASE("invalid tool-call arguments are a 400, not a guess") {
  auto r = translate(R"({"model": "x", "messages": [
    {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
      "function": {"name": "f", "arguments": "{\"a\": "}}]}]})");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().param == "messages[0].tool_calls[0].function.arguments");
  auto arr = translate(R"({"model": "x", "messages": [
    {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
      "function": {"name": "f", "arguments": "[1]"}}]}]})");
  CHECK_FALSE(arr.ok());
}

}  // namespace
}  // namespace frugal
