// tests backends/dialect/anthropic_request.cpp
#include "backends/dialect/anthropic_request.h"

#include <doctest/doctest.h>

#include "tests/dialect/json_test_util.h"

namespace frugal {
namespace {

using test::canon;

Result<std::string> translate(std::string_view anthropic, const AnthropicToOpenAiOptions& opt = {}) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  REQUIRE(parser.parse(anthropic.data(), anthropic.size()).get(root) == simdjson::SUCCESS);
  return anthropic_to_openai_request(root, "gpt-4o-mini", opt);
}

Result<AnthropicRequestInfo> parse(simdjson::dom::parser& parser, std::string_view anthropic) {
  simdjson::dom::element root;
  REQUIRE(parser.parse(anthropic.data(), anthropic.size()).get(root) == simdjson::SUCCESS);
  return parse_anthropic_request(root);
}

TEST_CASE("system string, multi-turn, sampling, stop sequences, metadata, stream") {
  auto r = translate(R"({
    "model": "claude-sonnet-4-5", "max_tokens": 256, "system": "Be terse.",
    "messages": [
      {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "!"}]},
      {"role": "user", "content": [{"type": "text", "text": "Count to 3"}]}
    ],
    "temperature": 0.2, "top_p": 0.9, "stop_sequences": ["\n\n", "END"],
    "metadata": {"user_id": "u-42"}, "stream": true})");
  REQUIRE(r.ok());
  CHECK(canon(*r) == canon(R"({
    "model": "gpt-4o-mini",
    "messages": [
      {"role": "system", "content": "Be terse."},
      {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Hello!"},
      {"role": "user", "content": [{"type": "text", "text": "Count to 3"}]}
    ],
    "max_tokens": 256, "temperature": 0.2, "top_p": 0.9, "stop": ["\n\n", "END"],
    "user": "u-42", "stream": true, "stream_options": {"include_usage": true}})"));
}

TEST_CASE("system blocks: cache_control dropped by default, forwarded when the upstream takes it") {
  const char* req = R"({"model": "m", "max_tokens": 10,
    "system": [{"type": "text", "text": "You are a librarian."},
               {"type": "text", "text": "<book>...</book>", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [
      {"type": "text", "text": "Summarise", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}]})";
  auto plain = translate(req);
  REQUIRE(plain.ok());
  CHECK(canon(*plain) == canon(R"({"model": "gpt-4o-mini", "messages": [
    {"role": "system", "content": [{"type": "text", "text": "You are a librarian."},
                                   {"type": "text", "text": "<book>...</book>"}]},
    {"role": "user", "content": [{"type": "text", "text": "Summarise"}]}], "max_tokens": 10})"));

  AnthropicToOpenAiOptions opt;
  opt.forward_cache_control = true;
  auto fwd = translate(req, opt);
  REQUIRE(fwd.ok());
  CHECK(canon(*fwd) == canon(R"({"model": "gpt-4o-mini", "messages": [
    {"role": "system", "content": [{"type": "text", "text": "You are a librarian."},
      {"type": "text", "text": "<book>...</book>", "cache_control": {"type": "ephemeral"}}]},
    {"role": "user", "content": [{"type": "text", "text": "Summarise",
      "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}], "max_tokens": 10})"));
}

TEST_CASE("tools, tool_use history and tool_result splitting keep order") {
  auto r = translate(R"({"model": "m", "max_tokens": 100,
    "tools": [{"name": "get_weather", "description": "Weather for a city",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
              {"name": "get_time", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
    "messages": [
      {"role": "user", "content": "Weather and time in Paris?"},
      {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "two tools", "signature": "sig"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, cloudy"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
         "content": [{"type": "text", "text": "clock offline"}, {"type": "text", "text": "retry later"}]},
        {"type": "text", "text": "Now summarise."}]}]})");
  REQUIRE(r.ok());
  CHECK(canon(*r) == canon(R"({"model": "gpt-4o-mini", "messages": [
    {"role": "user", "content": "Weather and time in Paris?"},
    {"role": "assistant", "content": "Checking.", "tool_calls": [
      {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
      {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C, cloudy"},
    {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: clock offline\nretry later"},
    {"role": "user", "content": [{"type": "text", "text": "Now summarise."}]}],
    "max_tokens": 100,
    "tools": [
      {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
      {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}],
    "tool_choice": "required", "parallel_tool_calls": false})"));
}

TEST_CASE("text before a tool_result becomes its own user message, in order") {
  auto r = translate(R"({"model": "m", "max_tokens": 5, "messages": [
    {"role": "user", "content": [{"type": "text", "text": "a"},
      {"type": "tool_result", "tool_use_id": "t1"}, {"type": "text", "text": "b"}]}]})");
  REQUIRE(r.ok());
  CHECK(canon(*r) == canon(R"({"model": "gpt-4o-mini", "messages": [
    {"role": "user", "content": [{"type": "text", "text": "a"}]},
    {"role": "tool", "tool_call_id": "t1", "content": ""},
    {"role": "user", "content": [{"type": "text", "text": "b"}]}], "max_tokens": 5})"));
}

TEST_CASE("tool_choice variants") {
  const auto with_choice = [](const char* choice) {
    return std::string(R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
      "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": )") + choice + "}";
  };
  auto a = translate(with_choice(R"({"type": "auto"})"));
  REQUIRE(a.ok());
  CHECK(a->find(R"("tool_choice":"auto")") != std::string::npos);
  auto n = translate(with_choice(R"({"type": "none"})"));
  REQUIRE(n.ok());
  CHECK(n->find(R"("tool_choice":"none")") != std::string::npos);
  auto t = translate(with_choice(R"({"type": "tool", "name": "f"})"));
  REQUIRE(t.ok());
  CHECK(t->find(R"("tool_choice":{"type":"function","function":{"name":"f"}})") != std::string::npos);
  CHECK(t->find("parallel_tool_calls") == std::string::npos);
  auto bad = translate(with_choice(R"({"type": "sometimes"})"));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().param == "tool_choice.type");
}

TEST_CASE("images: base64 → data: URI, url → url") {
  auto r = translate(R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    {"type": "text", "text": "Same animal?"}]}]})");
  REQUIRE(r.ok());
  CHECK(canon(*r) == canon(R"({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    {"type": "text", "text": "Same animal?"}]}], "max_tokens": 5})"));
}

TEST_CASE("top_k is a 400 unless the upstream is known to support it") {
  const char* req = R"({"model": "m", "max_tokens": 5, "top_k": 40, "messages": [{"role": "user", "content": "x"}]})";
  auto r = translate(req);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::kInvalidRequest);
  CHECK(r.error().param == "top_k");
  AnthropicToOpenAiOptions opt;
  opt.upstream_supports_top_k = true;
  opt.use_max_completion_tokens = true;
  auto ok = translate(req, opt);
  REQUIRE(ok.ok());
  CHECK(canon(*ok) == canon(R"({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}],
    "max_completion_tokens": 5, "top_k": 40})"));
}

TEST_CASE("thinking: 400 by default, reasoning_effort when the upstream has it") {
  const char* req = R"({"model": "m", "max_tokens": 20000, "thinking": {"type": "enabled", "budget_tokens": 8000},
    "messages": [{"role": "user", "content": "x"}]})";
  auto r = translate(req);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().param == "thinking");
  AnthropicToOpenAiOptions opt;
  opt.upstream_supports_reasoning_effort = true;
  auto ok = translate(req, opt);
  REQUIRE(ok.ok());
  CHECK(ok->find(R"("reasoning_effort":"medium")") != std::string::npos);
  auto disabled = translate(R"({"model": "m", "max_tokens": 5, "thinking": {"type": "disabled"},
    "messages": [{"role": "user", "content": "x"}]})");
  CHECK(disabled.ok());
}

TEST_CASE("features with no OpenAI equivalent are 400s naming the field") {
  auto doc = translate(R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}]}]})");
  REQUIRE_FALSE(doc.ok());
  CHECK(doc.error().param == "messages.0.content.0.type");

  auto server_tool = translate(R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
    "tools": [{"type": "web_search_20250305", "name": "web_search"}]})");
  REQUIRE_FALSE(server_tool.ok());
  CHECK(server_tool.error().param == "tools.0.type");

  auto unknown = translate(R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
    "mcp_servers": []})");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().param == "mcp_servers");

  auto image_in_result = translate(R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": "t", "content": [
      {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}]}]})");
  REQUIRE_FALSE(image_in_result.ok());
  CHECK(image_in_result.error().param == "messages.0.content.0.content.0.type");
}

TEST_CASE("parse_anthropic_request: required fields and shapes, Anthropic-style errors") {
  simdjson::dom::parser p;
  struct Case {
    const char* body;
    const char* param;
    const char* message;
  };
  const Case cases[] = {
      {R"({"max_tokens": 5, "messages": []})", "model", "model: Field required"},
      {R"({"model": "m", "messages": [{"role": "user", "content": "x"}]})", "max_tokens",
       "max_tokens: Field required"},
      {R"({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]})", "max_tokens",
       "max_tokens: Input should be greater than or equal to 1"},
      {R"({"model": "m", "max_tokens": "5", "messages": [{"role": "user", "content": "x"}]})", "max_tokens",
       "max_tokens: Input should be a valid integer (got a string)"},
      {R"({"model": "m", "max_tokens": 5})", "messages", "messages: Field required"},
      {R"({"model": "m", "max_tokens": 5, "messages": []})", "messages",
       "messages: at least one message is required"},
      {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]})",
       "messages.0.role", "messages.0.role: Input should be 'user' or 'assistant'"},
      {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user"}]})", "messages.0.content",
       "messages.0.content: Field required"},
      {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]})",
       "messages.0.content.0.text", "messages.0.content.0.text: Field required"},
      {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
          {"type": "image", "source": {"type": "base64", "media_type": "image/png"}}]}]})",
       "messages.0.content.0.source.data", "messages.0.content.0.source.data: Field required"},
      {R"({"model": "m", "max_tokens": 5, "temperature": 1.5, "messages": [{"role": "user", "content": "x"}]})",
       "temperature", "temperature: Input should be between 0 and 1"},
      {R"({"model": "m", "max_tokens": 5, "system": [{"type": "image"}], "messages": [{"role": "user", "content": "x"}]})",
       "system.0.type", "system.0.type: Input tag 'image' does not match the expected tag 'text'"},
      {R"({"model": "m", "max_tokens": 5, "tools": [{"name": "f"}], "messages": [{"role": "user", "content": "x"}]})",
       "tools.0.input_schema", "tools.0.input_schema: Field required"},
      {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": [
          {"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]}]})",
       "messages.0.content.0.input", "messages.0.content.0.input: Input should be a valid dictionary (got a string)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    auto r = parse(p, c.body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::kInvalidRequest);
    CHECK(r.error().param == c.param);
    CHECK(r.error().message == c.message);
  }
}

TEST_CASE("parse_anthropic_request: info for routing, unknown fields pass") {
  simdjson::dom::parser p;
  auto r = parse(p, R"({"model": "claude-haiku-4-5", "max_tokens": 64, "stream": true, "stop_sequences": ["###"],
    "metadata": {"user_id": "abc"}, "future_param": {"x": 1},
    "tools": [{"name": "f", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [
      {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
      {"type": "brand_new_block", "whatever": true}]}]})");
  REQUIRE(r.ok());
  CHECK(r->model == "claude-haiku-4-5");
  CHECK(r->max_tokens == 64);
  CHECK(r->stream);
  CHECK(r->stop_sequences == std::vector<std::string>{"###"});
  CHECK(r->has_tools);
  CHECK(r->has_images);
  CHECK(r->uses_cache_control);
  CHECK_FALSE(r->thinking_enabled);
  CHECK(r->user_id == "abc");
  CHECK(r->root["future_param"].is_object());
}

}  // namespace
}  // namespace frugal
