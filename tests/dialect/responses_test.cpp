// tests backends/dialect/responses.cpp, usage_json.cpp and errors.cpp
#include "backends/dialect/responses.h"

#include <doctest/doctest.h>

#include "backends/dialect/errors.h"
#include "tests/dialect/json_test_util.h"

namespace frugal {
namespace {

using test::canon;

TEST_CASE("Anthropic message with text, thinking and tool_use → chat.completion") {
  auto r = anthropic_to_openai_response(R"({
    "id": "msg_01ABC", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [
      {"type": "thinking", "thinking": "Need weather.", "signature": "EqQB"},
      {"type": "text", "text": "Let me check."},
      {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris", "unit": "c"}}],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 20, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000,
              "cache_creation": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40},
              "output_tokens": 35}})",
                                        "my-alias", 1700000000);
  REQUIRE(r.ok());
  CHECK(canon(r->body) == canon(R"({"id": "chatcmpl-01ABC", "object": "chat.completion", "created": 1700000000,
    "model": "my-alias", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Let me check.",
      "reasoning_content": "Need weather.",
      "tool_calls": [{"id": "toolu_01", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"c\"}"}}],
      "refusal": null},
      "logprobs": null, "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 1120, "completion_tokens": 35, "total_tokens": 1155,
      "prompt_tokens_details": {"cached_tokens": 1000}, "completion_tokens_details": {"reasoning_tokens": 0}}})"));
  CHECK(r->stop_reason == "tool_calls");
  CHECK(r->usage.input_tokens == 1120);
  CHECK(r->usage.cached_input_tokens == 1000);
  CHECK(r->usage.cache_write_5m_tokens == 60);
  CHECK(r->usage.cache_write_1h_tokens == 40);
  CHECK(r->usage.output_tokens == 35);
}

TEST_CASE("Anthropic stop reasons map to OpenAI finish reasons") {
  CHECK(std::string(openai_finish_reason_for("end_turn")) == "stop");
  CHECK(std::string(openai_finish_reason_for("stop_sequence")) == "stop");
  CHECK(std::string(openai_finish_reason_for("max_tokens")) == "length");
  CHECK(std::string(openai_finish_reason_for("tool_use")) == "tool_calls");
  CHECK(std::string(openai_finish_reason_for("refusal")) == "content_filter");
  CHECK(std::string(anthropic_stop_reason_for("stop")) == "end_turn");
  CHECK(std::string(anthropic_stop_reason_for("length")) == "max_tokens");
  CHECK(std::string(anthropic_stop_reason_for("tool_calls")) == "tool_use");
  CHECK(std::string(anthropic_stop_reason_for("content_filter")) == "refusal");

  auto tool_only = anthropic_to_openai_response(R"({"id": "msg_1", "content": [
    {"type": "tool_use", "id": "t", "name": "f", "input": {}}], "stop_reason": "tool_use",
    "usage": {"input_tokens": 3, "output_tokens": 4}})", "m", 1);
  REQUIRE(tool_only.ok());
  CHECK(tool_only->body.find(R"("content":null)") != std::string::npos);
  // Without a ttl breakdown, cache writes count as the default 5-minute TTL.
  auto old = anthropic_to_openai_response(R"({"id": "msg_1", "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "max_tokens", "usage": {"input_tokens": 3, "cache_creation_input_tokens": 7, "output_tokens": 4}})", "m", 1);
  REQUIRE(old.ok());
  CHECK(old->usage.cache_write_5m_tokens == 7);
  CHECK(old->usage.input_tokens == 10);
  CHECK(old->stop_reason == "length");
}

TEST_CASE("chat.completion with tool calls → Anthropic message") {
  auto r = openai_to_anthropic_response(R"({
    "id": "chatcmpl-9xyz", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Checking both.",
      "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
      "logprobs": null, "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 1200, "completion_tokens": 40, "total_tokens": 1240,
      "prompt_tokens_details": {"cached_tokens": 1024}, "completion_tokens_details": {"reasoning_tokens": 0}}})",
                                        "claude-alias");
  REQUIRE(r.ok());
  CHECK(canon(r->body) == canon(R"({"id": "msg_9xyz", "type": "message", "role": "assistant", "model": "claude-alias",
    "content": [
      {"type": "text", "text": "Checking both."},
      {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
      {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}}],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 176, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1024,
      "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "output_tokens": 40}})"));
  CHECK(r->usage.input_tokens == 1200);
  CHECK(r->usage.cached_input_tokens == 1024);
}

TEST_CASE("chat.completion edge cases: length, refusal, reasoning, bad arguments, garbage") {
  auto len = openai_to_anthropic_response(R"({"id": "chatcmpl-1", "choices": [{"index": 0,
    "message": {"role": "assistant", "content": "partial", "reasoning_content": "hmm"}, "finish_reason": "length"}]})", "m");
  REQUIRE(len.ok());
  CHECK(canon(len->body) == canon(R"({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
    "content": [{"type": "thinking", "thinking": "hmm", "signature": ""}, {"type": "text", "text": "partial"}],
    "stop_reason": "max_tokens", "stop_sequence": null,
    "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
      "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "output_tokens": 0}})"));
  CHECK_FALSE(len->usage.reported);

  auto refusal = openai_to_anthropic_response(R"({"id": "x", "choices": [{"index": 0,
    "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."}, "finish_reason": "stop"}]})", "m");
  REQUIRE(refusal.ok());
  CHECK(refusal->stop_reason == "refusal");
  CHECK(refusal->body.find(R"({"type":"text","text":"I can't help with that."})") != std::string::npos);

  auto bad_args = openai_to_anthropic_response(R"({"id": "x", "choices": [{"index": 0,
    "message": {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
      "function": {"name": "f", "arguments": "{\"a\":"}}]}, "finish_reason": "tool_calls"}]})", "m");
  REQUIRE_FALSE(bad_args.ok());
  CHECK(bad_args.error().kind == ErrorKind::kUpstream);

  CHECK_FALSE(openai_to_anthropic_response("<html>", "m").ok());
  CHECK_FALSE(openai_to_anthropic_response(R"({"choices": []})", "m").ok());
  CHECK_FALSE(anthropic_to_openai_response(R"({"type": "error"})", "m", 0).ok());
}

TEST_CASE("error bodies render in each dialect") {
  Error e = make_error(ErrorKind::kInvalidRequest, "max_tokens: Field required", "max_tokens");
  CHECK(render_anthropic_error(e) ==
        R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}})");
  CHECK(render_openai_error(e) ==
        R"({"error":{"message":"max_tokens: Field required","type":"invalid_request_error","param":"max_tokens","code":null}})");
  Error plain = make_error(ErrorKind::kRateLimited, "slow down");
  CHECK(render_openai_error(plain) ==
        R"({"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":null}})");
  CHECK(render_anthropic_error_event(make_error(ErrorKind::kUnavailable, "Overloaded")) ==
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
  CHECK(render_openai_error_event(plain) ==
        "data: {\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":null}}\n\n");
}

TEST_CASE("upstream error bodies become Errors with status and message kept") {
  Error a = error_from_anthropic_body(
      529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"})");
  CHECK(a.kind == ErrorKind::kUnavailable);
  CHECK(a.http_status() == 529);
  CHECK(a.message == "Overloaded");
  CHECK(std::string(a.openai_type()) == "upstream_error");

  Error a400 = error_from_anthropic_body(
      400, R"({"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}})");
  CHECK(a400.kind == ErrorKind::kInvalidRequest);
  CHECK(render_openai_error(a400) ==
        R"({"error":{"message":"prompt is too long","type":"invalid_request_error","param":null,"code":null}})");

  Error o = error_from_openai_body(429, R"({"error":{"message":"Rate limit reached","type":"requests",
    "param":null,"code":"rate_limit_exceeded"}})");
  CHECK(o.kind == ErrorKind::kRateLimited);
  CHECK(o.http_status() == 429);
  CHECK(o.code == "rate_limit_exceeded");
  CHECK(render_anthropic_error(o) ==
        R"({"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}})");

  Error o400 = error_from_openai_body(400, R"({"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":null}})");
  CHECK(o400.param == "messages");

  Error vllm = error_from_openai_body(500, R"({"error":"engine crashed"})");
  CHECK(vllm.kind == ErrorKind::kUpstream);
  CHECK(vllm.message == "engine crashed");

  Error html = error_from_anthropic_body(502, "<html>Bad Gateway</html>");
  CHECK(html.kind == ErrorKind::kUpstream);
  CHECK(html.http_status() == 502);
  CHECK(html.message == "upstream returned HTTP 502: (an HTML or XML page, not shown)");
  Error text = error_from_openai_body(503, "upstream connect error or disconnect/reset before headers");
  CHECK(text.message == "upstream returned HTTP 503: upstream connect error or disconnect/reset before headers");
  Error binary = error_from_openai_body(500, std::string("\x1f\x8b\x08\x00", 4));
  CHECK(binary.message == "upstream returned HTTP 500: (a binary body, not shown)");

  // Mid-stream (no HTTP status): the kind comes from the error type.
  Error mid = error_from_anthropic_body(0, R"({"type":"error","error":{"type":"rate_limit_error","message":"x"}})");
  CHECK(mid.kind == ErrorKind::kRateLimited);
  CHECK(mid.http_status() == 429);
}

}  // namespace
}  // namespace frugal
