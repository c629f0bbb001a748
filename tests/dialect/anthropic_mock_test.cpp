// tests bench/mock_anthropic/anthropic_mock.cpp, and the mock against the translators
// (what the gateway will see when the lead's HTTP mock serves these bytes).
#include "bench/mock_anthropic/anthropic_mock.h"

#include <doctest/doctest.h>

#include "backends/dialect/responses.h"
#include "backends/dialect/streams.h"
#include "tests/dialect/json_test_util.h"

namespace frugal {
namespace {

using test::canon;

AnthropicRequestInfo request(simdjson::dom::parser& p, std::string_view body) {
  simdjson::dom::element root;
  REQUIRE(p.parse(body.data(), body.size()).get(root) == simdjson::SUCCESS);
  auto info = parse_anthropic_request(root);
  REQUIRE(info.ok());
  return *info;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += e;
  return s;
}

TEST_CASE("mock: exact stream for text plus a tool call") {
  simdjson::dom::parser p;
  const auto req = request(p, R"({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": true,
    "messages": [{"role": "user", "content": "Weather?"}]})");
  mock::AnthropicScript s;
  s.text = "Checking.";
  s.tool_call = mock::AnthropicScript::ToolCall{"toolu_9", "get_weather", R"({"city":"Paris"})"};
  s.chunk_size = 8;
  s.input_tokens = 20;
  s.cache_read_input_tokens = 100;
  s.cache_write_1h_tokens = 50;
  s.output_tokens = 30;
  const auto events = mock::anthropic_mock_events(req, s);
  const std::vector<std::string> expected = {
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":50,\"cache_read_input_tokens\":100,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":50},\"output_tokens\":1}}}\n\n",
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
      "event: ping\ndata: {\"type\": \"ping\"}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking\"}}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\".\"}}\n\n",
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\"}}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n",
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":30}}\n\n",
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
  };
  CHECK(events == expected);

  // Through the pass-through tracker: usage merged from both places.
  AnthropicUsageTracker tracker;
  SseParser sse;
  sse.feed(join(events), [&](const SseEvent& ev) { tracker.observe(ev); });
  CHECK(tracker.finish().ok());
  const Usage u = tracker.current_usage();
  CHECK(u.input_tokens == 170);
  CHECK(u.cached_input_tokens == 100);
  CHECK(u.cache_write_1h_tokens == 50);
  CHECK(u.output_tokens == 30);
}

TEST_CASE("mock: non-stream body, stop sequences and the OpenAI view of it") {
  simdjson::dom::parser p;
  const auto req = request(p, R"({"model": "claude-haiku-4-5", "max_tokens": 100, "stop_sequences": ["STOP"],
    "messages": [{"role": "user", "content": "Go"}]})");
  mock::AnthropicScript s;
  s.text = "one two STOP three";
  s.input_tokens = 5;
  s.output_tokens = 3;
  const std::string body = mock::anthropic_mock_message(req, s);
  CHECK(canon(body) == canon(R"({"id": "msg_mock_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
    "content": [{"type": "text", "text": "one two "}], "stop_reason": "stop_sequence", "stop_sequence": "STOP",
    "usage": {"input_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
      "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "output_tokens": 3}})"));
  auto openai = anthropic_to_openai_response(body, "alias", 1);
  REQUIRE(openai.ok());
  CHECK(openai->stop_reason == "stop");
  CHECK(openai->body.find(R"("content":"one two ")") != std::string::npos);
}

TEST_CASE("mock: UTF-8 is never split, thinking carries a signature, failures inject") {
  simdjson::dom::parser p;
  const auto req = request(p, R"({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]})");
  mock::AnthropicScript s;
  s.thinking = "ok";
  s.text = "héllo wörld";
  s.chunk_size = 2;
  s.output_tokens = 4;
  const auto events = mock::anthropic_mock_events(req, s);

  AnthropicToOpenAiStream t({.model = "alias", .id = "", .created_unix_s = 1, .include_usage = true});
  SseParser sse;
  std::string out;
  sse.feed(join(events), [&](const SseEvent& ev) { REQUIRE(t.feed(ev, out).ok()); });
  CHECK(t.state() == StreamState::kCompleted);
  CHECK(join(events).find("signature_delta") != std::string::npos);
  // Reassemble the text the OpenAI client would see; every delta was valid JSON/UTF-8.
  std::string text;
  SseParser down;
  simdjson::dom::parser cp;
  down.feed(out, [&](const SseEvent& ev) {
    if (ev.data == "[DONE]") return;
    simdjson::dom::element c;
    REQUIRE(cp.parse(ev.data.data(), ev.data.size()).get(c) == simdjson::SUCCESS);
    simdjson::dom::array choices;
    if (c["choices"].get_array().get(choices) || choices.size() == 0) return;
    std::string_view piece;
    if (!choices.at(0)["delta"]["content"].get_string().get(piece)) text += piece;
  });
  CHECK(text == "héllo wörld");

  s.fail_after_events = 4;
  s.error_type = "overloaded_error";
  const auto failed = mock::anthropic_mock_events(req, s);
  REQUIRE(failed.size() == 5);
  CHECK(failed.back() == "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"mock: injected overloaded_error\"}}\n\n");
  s.error_type.clear();
  const auto cut = mock::anthropic_mock_events(req, s);
  REQUIRE(cut.size() == 4);
  AnthropicUsageTracker tracker;
  for (const auto& e : cut) sse.feed(e, [&](const SseEvent& ev) { tracker.observe(ev); });
  CHECK_FALSE(tracker.finish().ok());
}

}  // namespace
}  // namespace frugal
