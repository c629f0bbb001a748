// tests the structured-output translation across dialects: an OpenAI response_format
// sent to Anthropic as a forced tool (backends/dialect/openai_to_anthropic.cpp) and the
// tool's input returned as content (responses.cpp, anthropic_to_openai_stream.cpp); and
// an OpenAI answer to a forced tool_choice read back by an Anthropic client.
#include <doctest/doctest.h>

#include "backends/dialect/openai_to_anthropic.h"
#include "backends/dialect/responses.h"
#include "backends/dialect/streams.h"
#include "core/sse.h"
#include "tests/dialect/json_test_util.h"

namespace frugal {
namespace {

using test::canon;

constexpr std::string_view kPersonSchema =
    R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false})";

std::string with_format(std::string_view extra) {
  return std::string(R"({"model": "gpt-4o", "messages": [{"role": "user", "content": "Ada, 36"}])") +
         (extra.empty() ? "" : ", ") + std::string(extra) + "}";
}

Result<std::string> translate(const std::string& body) {
  simdjson::dom::parser parser;
  auto req = parse_chat_body(parser, body);
  REQUIRE(req.ok());
  return openai_to_anthropic_request(*req, "claude-sonnet-4-5", {});
}

std::string tool_name(const std::string& body) {
  simdjson::dom::parser parser;
  auto req = parse_chat_body(parser, body);
  REQUIRE(req.ok());
  auto name = response_format_tool(*req);
  REQUIRE(name.ok());
  return *name;
}

TEST_CASE("structured output: json_schema becomes a forced tool named after the schema") {
  const std::string body = with_format(R"("response_format": {"type": "json_schema", "json_schema":
    {"name": "person", "strict": true, "schema": )" + std::string(kPersonSchema) + "}}");
  auto r = translate(body);
  REQUIRE(r.ok());
  CHECK(canon(*r) == canon(R"({"model": "claude-sonnet-4-5", "max_tokens": 4096,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Ada, 36"}]}],
    "tools": [{"name": "person", "description": "Respond with a JSON object that matches this schema.",
               "input_schema": )" + std::string(kPersonSchema) + R"(}],
    "tool_choice": {"type": "tool", "name": "person"}})"));
  CHECK(tool_name(body) == "person");
}

TEST_CASE("structured output: json_object becomes a forced tool with a permissive object schema") {
  const std::string body = with_format(R"("response_format": {"type": "json_object"})");
  auto r = translate(body);
  REQUIRE(r.ok());
  CHECK(canon(*r) == canon(R"({"model": "claude-sonnet-4-5", "max_tokens": 4096,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Ada, 36"}]}],
    "tools": [{"name": "json_object", "description": "Respond with a JSON object.",
               "input_schema": {"type": "object", "additionalProperties": true}}],
    "tool_choice": {"type": "tool", "name": "json_object"}})"));
  CHECK(tool_name(body) == "json_object");
  CHECK(tool_name(with_format(R"("response_format": {"type": "text"})")).empty());
  CHECK(tool_name(with_format("")).empty());
}

TEST_CASE("structured output with the client's own tools: any, or the client's named tool") {
  const std::string tools =
      R"("tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}])";
  const std::string format = R"("response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": {"type": "object"}}})";
  auto any = translate(with_format(tools + ", " + format));
  REQUIRE(any.ok());
  CHECK(any->find(R"("tool_choice":{"type":"any"})") != std::string::npos);
  CHECK(any->find(R"({"name":"lookup","input_schema":{"type":"object"}})") != std::string::npos);
  CHECK(any->find(R"("name":"person")") != std::string::npos);

  auto named = translate(
      with_format(tools + ", " + format + R"(, "tool_choice": {"type": "function", "function": {"name": "lookup"}})"));
  REQUIRE(named.ok());
  CHECK(named->find(R"("tool_choice":{"type":"tool","name":"lookup"})") != std::string::npos);

  auto none = translate(with_format(tools + ", " + format + R"(, "tool_choice": "none")"));
  REQUIRE(none.ok());
  CHECK(none->find(R"("tool_choice":{"type":"tool","name":"person"})") != std::string::npos);
}

TEST_CASE("structured output: what cannot become a tool is a 400 naming the field") {
  struct Case {
    std::string extra;
    const char* param;
  };
  const Case cases[] = {
      {R"("response_format": {"type": "json_schema"})", "response_format.json_schema"},
      {R"("response_format": {"type": "json_schema", "json_schema": {"name": "has space", "schema": {}}})",
       "response_format.json_schema.name"},
      {R"("response_format": {"type": "json_schema", "json_schema": {"schema": {}}})",
       "response_format.json_schema.name"},
      {R"("response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string"}}})",
       "response_format.json_schema.schema"},
      {R"("tools": [{"type": "function", "function": {"name": "x"}}], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})",
       "response_format.json_schema.name"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.extra);
    auto r = translate(with_format(c.extra));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::kInvalidRequest);
    CHECK(r.error().param == c.param);
  }
}

TEST_CASE("structured output: the answer tool's input is the message content, finish_reason stop") {
  const std::string_view message = R"({"id": "msg_01", "type": "message", "role": "assistant",
    "model": "claude-sonnet-4-5", "content": [{"type": "tool_use", "id": "toolu_1", "name": "person",
      "input": {"name": "Ada", "age": 36}}],
    "stop_reason": "tool_use", "usage": {"input_tokens": 30, "output_tokens": 12}})";
  auto r = anthropic_to_openai_response(message, "claude-sonnet-4-5", 1700000000, "person");
  REQUIRE(r.ok());
  CHECK(canon(r->body) == canon(R"({"id": "chatcmpl-01", "object": "chat.completion", "created": 1700000000,
    "model": "claude-sonnet-4-5", "choices": [{"index": 0, "message": {"role": "assistant",
      "content": "{\"name\":\"Ada\",\"age\":36}", "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42,
      "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}})"));
  CHECK(r->stop_reason == "stop");
  // Without the answer tool's name the same message is an ordinary tool call.
  auto plain = anthropic_to_openai_response(message, "claude-sonnet-4-5", 1700000000);
  REQUIRE(plain.ok());
  CHECK(plain->stop_reason == "tool_calls");
  CHECK(plain->body.find(R"("tool_calls":[)") != std::string::npos);
}

std::string anthropic_event(std::string_view name, std::string_view data) {
  return "event: " + std::string(name) + "\ndata: " + std::string(data) + "\n\n";
}

template <class Translator>
std::string pump(Translator& t, std::string_view bytes, size_t piece = 5) {
  SseParser sse;
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += piece)
    sse.feed(bytes.substr(i, piece), [&](const SseEvent& ev) { (void)t.feed(ev, out); });
  return out;
}

TEST_CASE("structured output streamed: input_json_delta pieces become content deltas, finish stop") {
  const std::string stream =
      anthropic_event("message_start", R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"usage":{"input_tokens":30,"output_tokens":1}}})") +
      anthropic_event("content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"person","input":{}}})") +
      anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}})") +
      anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"name\": \"Ada\""}})") +
      anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":", \"age\": 36}"}})") +
      anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":0})") +
      anthropic_event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":12}})") +
      anthropic_event("message_stop", R"({"type":"message_stop"})");
  AnthropicToOpenAiStream t(
      {.model = "m", .id = "c", .created_unix_s = 1, .include_usage = false, .answer_tool = "person"});
  const std::string out = pump(t, stream);
  auto chunk = [](std::string_view delta, std::string_view finish = "null") {
    return R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":)" +
           std::string(delta) + R"(,"logprobs":null,"finish_reason":)" + std::string(finish) + "}]}\n\n";
  };
  CHECK(out == chunk(R"({"role":"assistant","content":""})") + chunk(R"({"content":"{\"name\": \"Ada\""})") +
                   chunk(R"({"content":", \"age\": 36}"})") + chunk("{}", R"("stop")") + "data: [DONE]\n\n");
  CHECK(t.state() == StreamState::kCompleted);
  CHECK(t.current_usage().output_tokens == 12);
}

TEST_CASE("forced tool_choice answered by OpenAI with finish_reason stop reaches Anthropic clients as tool_use") {
  const std::string_view completion = R"({"id": "chatcmpl-9", "object": "chat.completion", "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "record", "arguments": "{\"n\":1}"}}]},
      "finish_reason": "stop"}], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})";
  auto r = openai_to_anthropic_response(completion, "gpt-4o");
  REQUIRE(r.ok());
  CHECK(r->stop_reason == "tool_use");
  CHECK(r->body.find(R"({"type":"tool_use","id":"call_1","name":"record","input":{"n":1}})") != std::string::npos);

  const std::string stream =
      R"(data: {"id":"chatcmpl-9","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"record","arguments":""}}]},"finish_reason":null}]})"
      "\n\n"
      R"(data: {"id":"chatcmpl-9","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"n\":1}"}}]},"finish_reason":null}]})"
      "\n\n"
      R"(data: {"id":"chatcmpl-9","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"
      "\n\ndata: [DONE]\n\n";
  OpenAiToAnthropicStream t({.model = "gpt-4o", .id = "", .input_tokens_hint = 0});
  const std::string out = pump(t, stream);
  CHECK(t.state() == StreamState::kCompleted);
  CHECK(out.find(R"("stop_reason":"tool_use")") != std::string::npos);
  CHECK(out.find(R"("partial_json":"{\"n\":1}")") != std::string::npos);

  // A plain text answer that stops keeps end_turn.
  auto text = openai_to_anthropic_response(
      R"({"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]})",
      "gpt-4o");
  REQUIRE(text.ok());
  CHECK(text->stop_reason == "end_turn");
}

}  // namespace
}  // namespace frugal
